//! OCI hooks that run inside the container's namespaces (createContainer, startContainer),
//! executed by the container's init itself between clone and execve: fork-like clone, execve
//! of the hook with the state JSON on stdin, wait with its timeout. No allocation.

use crate::prepared::PreparedHook;
use crate::report::{format_u64, Report};
use crate::sys::errno;
use libc::c_int;

fn monotonic_ms() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime fills our timespec (vDSO, async-signal-safe).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// Runs `hooks` in order; a failing hook fails the container (the child reports and exits).
///
/// # Safety
/// Only in the cloned child.
pub unsafe fn run_all(kind: &str, hooks: &[PreparedHook], state: &[u8], sync: c_int) {
    for h in hooks.iter() {
        run_one(kind, h, state, sync);
    }
}

unsafe fn run_one(kind: &str, h: &PreparedHook, state: &[u8], sync: c_int) {
    let fail = |what: &str, e: c_int| -> ! {
        Report::new().push_str(kind).push_str(" hook ").push(h.path.to_bytes()).push_str(what).fail(sync, e)
    };
    let mut p = [0 as c_int; 2];
    if libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) < 0 {
        fail(": pipe", errno());
    }
    let pid = libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_ulong, 0usize, 0usize, 0usize, 0usize);
    if pid < 0 {
        fail(": fork", errno());
    }
    if pid == 0 {
        libc::dup2(p[0], 0);
        // A hook's output is not the container's: keep it out of the process's stdout/stderr.
        let null = libc::open(cstr!("/dev/null").as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 1);
            libc::dup2(null, 2);
        }
        libc::execve(h.path.as_ptr(), h.argv.as_ptr(), h.envp.as_ptr());
        libc::_exit(127);
    }
    libc::close(p[0]);
    // The state is a few KiB at most: it fits the pipe buffer, so this cannot block.
    libc::write(p[1], state.as_ptr() as *const libc::c_void, state.len());
    libc::close(p[1]);
    let deadline = if h.timeout_secs > 0 { monotonic_ms() + h.timeout_secs * 1000 } else { 0 };
    let mut status: c_int = 0;
    loop {
        let rc = libc::waitpid(pid as libc::pid_t, &mut status, if deadline > 0 { libc::WNOHANG } else { 0 });
        if rc == pid as libc::pid_t {
            break;
        }
        if rc < 0 && errno() != libc::EINTR {
            fail(": wait", errno());
        }
        if deadline > 0 && monotonic_ms() >= deadline {
            libc::kill(pid as libc::pid_t, libc::SIGKILL);
            libc::waitpid(pid as libc::pid_t, &mut status, 0);
            fail(": timed out", libc::ETIMEDOUT);
        }
        if deadline > 0 {
            let ts = libc::timespec { tv_sec: 0, tv_nsec: 5_000_000 };
            libc::nanosleep(&ts, std::ptr::null_mut());
        }
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        let mut d = [0u8; 20];
        let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) };
        Report::new()
            .push_str(kind)
            .push_str(" hook ")
            .push(h.path.to_bytes())
            .push_str(" exited with status ")
            .push(format_u64(code as u64, &mut d))
            .fail(sync, 0);
    }
}
