//! `pause`: the process a CRI pod sandbox runs to hold the pod's namespaces.
//!
//! It does what Kubernetes' own pause does, without any dependency at run time
//! (the image holds this one static binary and nothing else):
//! - it is normally pid 1 of the pod's pid namespace, so orphans are reparented
//!   to it: every SIGCHLD reaps all exited children;
//! - SIGINT and SIGTERM make it exit 0 (the runtime's StopPodSandbox);
//! - every other signal is ignored.
//!
//! All signals are blocked and taken synchronously with `sigwaitinfo`. Blocked
//! signals are queued even for a namespace's init (the kernel drops only the
//! signals whose disposition is SIG_DFL there), and nothing runs in a signal
//! handler.

use std::io::Write;

fn main() {
    let mut args = std::env::args().skip(1);
    if let Some(arg) = args.next() {
        if arg == "-v" || arg == "--version" {
            println!("pause (burrow) {}", env!("CARGO_PKG_VERSION"));
            return;
        }
        fail(&format!("unexpected argument {arg:?} (usage: pause [-v])"), 2);
    }

    // SAFETY: plain libc calls on local, zero-initialised signal sets.
    let waited = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            fail(&format!("sigprocmask: {}", std::io::Error::last_os_error()), 1);
        }
        set
    };

    loop {
        // SAFETY: `waited` is a valid signal set; siginfo is written by the kernel.
        let sig = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::sigwaitinfo(&waited, &mut info)
        };
        if sig < 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            fail(&format!("sigwaitinfo: {err}"), 1);
        }
        match sig {
            libc::SIGCHLD => reap(),
            libc::SIGINT | libc::SIGTERM => {
                reap();
                std::process::exit(0);
            }
            _ => {}
        }
    }
}

/// Collect every child that has exited; SIGCHLD is not queued per child.
fn reap() {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid status pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return; // 0: children left but none exited; -1/ECHILD: no children
        }
    }
}

fn fail(msg: &str, code: i32) -> ! {
    let _ = writeln!(std::io::stderr(), "pause: {msg}");
    std::process::exit(code);
}
