//! Copies between a container's pty master and the client's FIFOs on a thread of its own:
//! blocking reads on a tty must never occupy Node's threads or libuv's pool.

use crate::sys::errno;
use libc::c_int;

/// Takes ownership of all three fds. `stdin` may be -1 (no input). Output goes to `stdout`
/// until the pty's slave side is closed by every process (read fails with EIO), then every
/// fd is closed, which the client sees as EOF.
pub fn start(master: c_int, stdin: c_int, stdout: c_int) -> Result<(), String> {
    std::thread::Builder::new()
        .name("burrow-pty".into())
        .spawn(move || {
            relay(master, stdin, stdout);
            for fd in [master, stdin, stdout] {
                if fd >= 0 {
                    // SAFETY: the fds were handed to this thread.
                    unsafe { libc::close(fd) };
                }
            }
        })
        .map(|_| ())
        .map_err(|e| format!("start pty relay thread: {}", e))
}

fn write_all(fd: c_int, mut buf: &[u8]) -> bool {
    while !buf.is_empty() {
        // SAFETY: writing from a valid buffer.
        let n = unsafe { libc::write(fd, buf.as_ptr() as *const libc::c_void, buf.len()) };
        if n < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return false;
        }
        buf = &buf[n as usize..];
    }
    true
}

fn relay(master: c_int, stdin: c_int, stdout: c_int) {
    let mut buf = [0u8; 32 * 1024];
    let mut input = stdin;
    loop {
        let mut fds = [
            libc::pollfd { fd: master, events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: input, events: libc::POLLIN, revents: 0 },
        ];
        let nfds = if input >= 0 { 2 } else { 1 };
        // SAFETY: fds is a valid array of nfds entries.
        if unsafe { libc::poll(fds.as_mut_ptr(), nfds, -1) } < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return;
        }
        if fds[0].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
            // SAFETY: reading into our buffer.
            let n = unsafe { libc::read(master, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
            if n < 0 && errno() == libc::EINTR {
                continue;
            }
            if n <= 0 {
                // EIO: every process closed the slave side — the output is complete.
                return;
            }
            if stdout >= 0 && !write_all(stdout, &buf[..n as usize]) {
                // The client went away for good; keep draining so the container never blocks.
            }
        }
        if nfds == 2 && fds[1].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
            // SAFETY: reading into our buffer.
            let n = unsafe { libc::read(input, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
            if n < 0 && errno() == libc::EINTR {
                continue;
            }
            if n <= 0 || !write_all(master, &buf[..n as usize]) {
                // stdin closed (CloseIO and the client both done): stop forwarding input.
                // SAFETY: closing our own fd.
                unsafe { libc::close(input) };
                input = -1;
            }
        }
    }
}
