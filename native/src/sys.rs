//! Raw syscall numbers and thin wrappers the libc crate (0.2.139, Debian's) does not carry.
//! The numbers below are from the unified syscall table (424+) and are the same on x86_64 and
//! aarch64.

use libc::{c_int, c_long, c_uint};

pub const SYS_PIDFD_SEND_SIGNAL: c_long = 424;
pub const SYS_PIDFD_OPEN: c_long = 434;
pub const SYS_CLONE3: c_long = 435;
pub const SYS_CLOSE_RANGE: c_long = 436;
pub const SYS_OPENAT2: c_long = 437;
pub const SYS_PIDFD_GETFD: c_long = 438;

pub const CLONE_PIDFD: u64 = 0x1000;
pub const P_PIDFD: libc::idtype_t = 3;

pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub const RESOLVE_IN_ROOT: u64 = 0x10;

/// `struct clone_args`, version 0 layout (64 bytes) — all we need: flags, pidfd, exit_signal.
#[repr(C)]
#[derive(Default)]
pub struct CloneArgs {
    pub flags: u64,
    pub pidfd: u64,
    pub child_tid: u64,
    pub parent_tid: u64,
    pub exit_signal: u64,
    pub stack: u64,
    pub stack_size: u64,
    pub tls: u64,
}

#[repr(C)]
pub struct OpenHow {
    pub flags: u64,
    pub mode: u64,
    pub resolve: u64,
}

/// Fork-like clone3 (no CLONE_VM, no new stack): returns twice, like fork(2), but without
/// glibc's atfork handlers — the child must only make raw syscalls afterwards.
///
/// # Safety
/// The caller must guarantee that the child only calls async-signal-safe functions.
pub unsafe fn clone3(args: &mut CloneArgs) -> c_long {
    libc::syscall(
        SYS_CLONE3,
        args as *mut CloneArgs,
        std::mem::size_of::<CloneArgs>(),
    )
}

/// openat2(2); returns the fd or -1 with errno set.
///
/// # Safety
/// `path` must be a valid NUL-terminated string.
pub unsafe fn openat2(dirfd: c_int, path: *const libc::c_char, how: &OpenHow) -> c_int {
    libc::syscall(
        SYS_OPENAT2,
        dirfd,
        path,
        how as *const OpenHow,
        std::mem::size_of::<OpenHow>(),
    ) as c_int
}

/// # Safety
/// Plain syscall; safe to call with any values.
pub unsafe fn close_range(first: c_uint, last: c_uint) -> c_int {
    libc::syscall(SYS_CLOSE_RANGE, first, last, 0 as c_uint) as c_int
}

/// # Safety
/// Plain syscall; safe to call with any values.
pub unsafe fn pidfd_send_signal(pidfd: c_int, sig: c_int) -> c_int {
    libc::syscall(
        SYS_PIDFD_SEND_SIGNAL,
        pidfd,
        sig,
        std::ptr::null::<libc::siginfo_t>(),
        0 as c_uint,
    ) as c_int
}

pub fn errno() -> c_int {
    // SAFETY: __errno_location always returns a valid thread-local pointer.
    unsafe { *libc::__errno_location() }
}

/// A watcher thread's fds: the epoll set it waits on, and a pipe whose read end (the first) the
/// shim polls for what the thread writes into the other. Nothing is left open on failure.
pub fn watcher_fds() -> Result<(c_int, [c_int; 2]), String> {
    // SAFETY: plain syscalls creating fds we own.
    unsafe {
        let epfd = libc::epoll_create1(libc::EPOLL_CLOEXEC);
        if epfd < 0 {
            return Err(format!("epoll_create1: errno {}", errno()));
        }
        let mut p = [0 as c_int; 2];
        if libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) < 0 {
            let e = errno();
            libc::close(epfd);
            return Err(format!("pipe2: errno {}", e));
        }
        Ok((epfd, p))
    }
}

/// Waits on `epfd` forever, handing each ready registration's data word to `on_ready`:
/// the loop of every native watcher thread (reaper, OOM monitor).
pub fn epoll_dispatch(epfd: c_int, mut on_ready: impl FnMut(u64)) {
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 32];
    loop {
        // SAFETY: events is a valid buffer of the length we pass.
        let n = unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), events.len() as c_int, -1) };
        if n < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return;
        }
        for ev in events[..n as usize].iter() {
            on_ready(ev.u64);
        }
    }
}

/// A process-wide value made on first use and kept for the life of the process (what
/// `OnceLock` does from Rust 1.70; Debian 12's rustc is 1.63, where `Mutex::new` is const).
pub fn init_once<T>(cell: &std::sync::Mutex<Option<&'static T>>, make: impl FnOnce() -> T) -> &'static T {
    let mut slot = cell.lock().unwrap_or_else(|e| e.into_inner());
    match *slot {
        Some(v) => v,
        None => {
            let v: &'static T = Box::leak(Box::new(make()));
            *slot = Some(v);
            v
        }
    }
}
