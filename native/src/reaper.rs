//! Learns of container exits without stealing Node's own child_process exits: every process we
//! clone comes with a pidfd (CLONE_PIDFD), one thread epolls those pidfds and reaps exactly that
//! process with waitid(P_PIDFD). Never wait(-1): libuv waits for its own children by pid.
//!
//! Exit records go to a pipe whose read end Node reads as a stream: 12 bytes, little-endian
//! i32 pid, i32 si_code (CLD_EXITED / CLD_KILLED / CLD_DUMPED), i32 si_status.

use crate::sys::{self, errno};
use libc::c_int;
use std::collections::HashMap;
use std::sync::Mutex;

pub struct Reaper {
    epfd: c_int,
    pub notify_r: c_int,
    /// pid → pidfd of every live child we cloned. Signals go through the pidfd so that a
    /// recycled pid can never be hit; the lock also orders a signal against the close.
    pidfds: Mutex<HashMap<i32, c_int>>,
}

static REAPER: Mutex<Option<&'static Result<Reaper, String>>> = Mutex::new(None);

pub fn reaper() -> Result<&'static Reaper, String> {
    crate::sys::init_once(&REAPER, start).as_ref().map_err(|e| e.clone())
}

fn start() -> Result<Reaper, String> {
    let (epfd, p) = crate::sys::watcher_fds()?;
    let r = Reaper { epfd, notify_r: p[0], pidfds: Mutex::new(HashMap::new()) };
    std::thread::Builder::new()
        .name("burrow-reaper".into())
        .spawn(move || reap_loop(epfd, p[1]))
        .map_err(|e| format!("start reaper thread: {}", e))?;
    Ok(r)
}

impl Reaper {
    pub fn register(&self, pid: i32, pidfd: c_int) -> Result<(), String> {
        let mut map = self.pidfds.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(pid, pidfd);
        let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: pid as u64 };
        // SAFETY: epfd and pidfd are valid fds we own.
        if unsafe { libc::epoll_ctl(self.epfd, libc::EPOLL_CTL_ADD, pidfd, &mut ev) } < 0 {
            map.remove(&pid);
            return Err(format!("epoll_ctl pid {}: errno {}", pid, errno()));
        }
        Ok(())
    }

    /// Sends `sig` to a live child of ours; ESRCH once it has been reaped (or was never ours).
    pub fn signal(&self, pid: i32, sig: c_int) -> c_int {
        let map = self.pidfds.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(&pid) {
            // SAFETY: the pidfd stays open while we hold the lock.
            Some(&fd) => unsafe {
                if sys::pidfd_send_signal(fd, sig) < 0 {
                    -errno()
                } else {
                    0
                }
            },
            None => -libc::ESRCH,
        }
    }

    /// Duplicates fd `fd` of our child `pid` into the shim (pidfd_getfd), e.g. its pty master.
    pub fn take_fd(&self, pid: i32, fd: c_int) -> c_int {
        let map = self.pidfds.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(&pid) {
            // SAFETY: the pidfd stays open while we hold the lock.
            Some(&pidfd) => unsafe {
                let r = libc::syscall(sys::SYS_PIDFD_GETFD, pidfd, fd, 0) as c_int;
                if r < 0 {
                    -errno()
                } else {
                    r
                }
            },
            None => -libc::ESRCH,
        }
    }

    pub fn tracked(&self) -> usize {
        self.pidfds.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

fn reap_loop(epfd: c_int, notify_w: c_int) {
    sys::epoll_dispatch(epfd, |data| reap_one(data as i32, notify_w));
}

fn reap_one(pid: i32, notify_w: c_int) {
    let r = match reaper() {
        Ok(r) => r,
        _ => return,
    };
    let mut map = r.pidfds.lock().unwrap_or_else(|e| e.into_inner());
    let pidfd = match map.get(&pid) {
        Some(&pidfd) => pidfd,
        _ => return,
    };
    // SAFETY: siginfo is plain data; pidfd is valid while in the map.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let rc = unsafe {
        libc::waitid(sys::P_PIDFD, pidfd as libc::id_t, &mut info, libc::WEXITED | libc::WNOHANG)
    };
    // SAFETY: si_pid/si_status are valid for SIGCHLD siginfo filled by waitid.
    let (got, code, status) = unsafe { (info.si_pid(), info.si_code, info.si_status()) };
    if rc < 0 || got == 0 {
        if rc < 0 && errno() == libc::ECHILD {
            // Someone else reaped it; report it as lost rather than leaving a waiter hanging.
            map.remove(&pid);
            unsafe { libc::close(pidfd) };
            write_record(notify_w, pid, 0, 255);
        }
        return;
    }
    map.remove(&pid);
    // SAFETY: we own pidfd; closing it also removes it from the epoll set.
    unsafe { libc::close(pidfd) };
    drop(map);
    write_record(notify_w, pid, code, status);
}

fn write_record(fd: c_int, pid: i32, code: i32, status: i32) {
    let mut rec = [0u8; 12];
    rec[0..4].copy_from_slice(&pid.to_le_bytes());
    rec[4..8].copy_from_slice(&code.to_le_bytes());
    rec[8..12].copy_from_slice(&status.to_le_bytes());
    // 12 bytes < PIPE_BUF: the write is atomic; it blocks only if Node stops reading.
    loop {
        // SAFETY: rec is a valid buffer.
        let n = unsafe { libc::write(fd, rec.as_ptr() as *const libc::c_void, rec.len()) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        return;
    }
}
