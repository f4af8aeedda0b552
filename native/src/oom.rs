//! cgroup v1 OOM notifications. The memory controller signals an eventfd registered through
//! `cgroup.event_control` on `memory.oom_control` whenever the cgroup hits an OOM (and once
//! more when the cgroup is removed). Reading an eventfd blocks, so Node cannot read it itself
//! (libuv cannot poll it, and a blocking read would pin a thread of its pool): one thread epolls
//! every registered eventfd and writes a record per notification to a pipe Node reads as a
//! stream, as the reaper does for exits.
//!
//! Records: 8 bytes, little-endian u32 token (from `register`) and u32 number of notifications
//! the eventfd counted since the last read (saturated).

use crate::sys::errno;
use libc::c_int;
use std::collections::HashMap;
use std::ffi::CStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::Mutex;

pub struct OomMonitor {
    epfd: c_int,
    pub notify_r: c_int,
    /// token → eventfd. The lock orders a notification's read against the close in
    /// `unregister`, so the thread never reads an fd number that was closed and reused.
    fds: Mutex<Registrations>,
}

struct Registrations {
    next: u32,
    by_token: HashMap<u32, c_int>,
}

static MONITOR: Mutex<Option<&'static Result<OomMonitor, String>>> = Mutex::new(None);

pub fn monitor() -> Result<&'static OomMonitor, String> {
    crate::sys::init_once(&MONITOR, start).as_ref().map_err(|e| e.clone())
}

fn start() -> Result<OomMonitor, String> {
    let (epfd, p) = crate::sys::watcher_fds()?;
    let m = OomMonitor {
        epfd,
        notify_r: p[0],
        fds: Mutex::new(Registrations { next: 0, by_token: HashMap::new() }),
    };
    std::thread::Builder::new()
        .name("burrow-oom".into())
        .spawn(move || watch_loop(epfd, p[1]))
        .map_err(|e| format!("start oom thread: {}", e))?;
    Ok(m)
}

/// open(2) of `dir/name` with O_CLOEXEC; the fd or -errno.
fn open_in(dir: &CStr, name: &str, flags: c_int) -> c_int {
    let mut path = dir.to_bytes().to_vec();
    path.push(b'/');
    path.extend_from_slice(std::ffi::OsStr::new(name).as_bytes());
    path.push(0);
    // SAFETY: `path` is NUL-terminated.
    let fd = unsafe { libc::open(path.as_ptr() as *const libc::c_char, flags | libc::O_CLOEXEC) };
    if fd < 0 {
        -errno()
    } else {
        fd
    }
}

impl OomMonitor {
    /// Registers a new eventfd for the memory cgroup `dir` (cgroup v1) and starts watching it.
    /// Returns its token (≥ 0) or -errno; `step` says what failed.
    pub fn register(&self, dir: &CStr) -> Result<u32, (c_int, &'static str)> {
        let control = open_in(dir, "memory.oom_control", libc::O_RDONLY);
        if control < 0 {
            return Err((control, "open memory.oom_control"));
        }
        let events = open_in(dir, "cgroup.event_control", libc::O_WRONLY);
        if events < 0 {
            // SAFETY: we own `control`.
            unsafe { libc::close(control) };
            return Err((events, "open cgroup.event_control"));
        }
        // SAFETY: plain syscall creating an fd we own.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if efd < 0 {
            let e = -errno();
            // SAFETY: we own both fds.
            unsafe {
                libc::close(control);
                libc::close(events);
            }
            return Err((e, "eventfd"));
        }
        let line = format!("{} {}", efd, control);
        // SAFETY: writing a valid buffer to an fd we own.
        let n = unsafe { libc::write(events, line.as_ptr() as *const libc::c_void, line.len()) };
        let write_err = if n < 0 { -errno() } else { 0 };
        // The kernel keeps its own references (to the eventfd context and the cgroup), not to
        // these two files: runc's and containerd's registrations close them right away too.
        // SAFETY: we own both fds.
        unsafe {
            libc::close(control);
            libc::close(events);
        }
        if write_err < 0 {
            // SAFETY: we own efd.
            unsafe { libc::close(efd) };
            return Err((write_err, "write cgroup.event_control"));
        }
        let mut regs = self.fds.lock().unwrap_or_else(|e| e.into_inner());
        // Tokens stay positive i32s for the FFI, and are never reused while registered.
        let mut token = regs.next;
        while regs.by_token.contains_key(&token) {
            token = token.wrapping_add(1) & 0x7fff_ffff;
        }
        regs.next = token.wrapping_add(1) & 0x7fff_ffff;
        let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: token as u64 };
        // SAFETY: epfd and efd are valid fds we own.
        if unsafe { libc::epoll_ctl(self.epfd, libc::EPOLL_CTL_ADD, efd, &mut ev) } < 0 {
            let e = -errno();
            // Closing the eventfd also ends the kernel's registration (it sees POLLHUP).
            // SAFETY: we own efd.
            unsafe { libc::close(efd) };
            return Err((e, "epoll_ctl"));
        }
        regs.by_token.insert(token, efd);
        Ok(token)
    }

    /// Stops watching: closes the eventfd, which also drops the kernel's registration.
    /// 0, or -ENOENT for a token that is not registered.
    pub fn unregister(&self, token: u32) -> c_int {
        let mut regs = self.fds.lock().unwrap_or_else(|e| e.into_inner());
        match regs.by_token.remove(&token) {
            Some(efd) => {
                // SAFETY: we own efd; removing it first keeps the epoll set exact.
                unsafe {
                    libc::epoll_ctl(self.epfd, libc::EPOLL_CTL_DEL, efd, std::ptr::null_mut());
                    libc::close(efd);
                }
                0
            }
            None => -libc::ENOENT,
        }
    }

    pub fn registered(&self) -> usize {
        self.fds.lock().unwrap_or_else(|e| e.into_inner()).by_token.len()
    }
}

fn watch_loop(epfd: c_int, notify_w: c_int) {
    crate::sys::epoll_dispatch(epfd, |data| notify_one(data as u32, notify_w));
}

fn notify_one(token: u32, notify_w: c_int) {
    let m = match monitor() {
        Ok(m) => m,
        _ => return,
    };
    let regs = m.fds.lock().unwrap_or_else(|e| e.into_inner());
    let efd = match regs.by_token.get(&token) {
        Some(&efd) => efd,
        _ => return,
    };
    let mut count = 0u64;
    // SAFETY: efd is open while it is in the map and we hold the lock; 8-byte read of a u64.
    let n = unsafe { libc::read(efd, &mut count as *mut u64 as *mut libc::c_void, 8) };
    drop(regs);
    if n != 8 {
        // EAGAIN: another wakeup already consumed it.
        return;
    }
    let mut rec = [0u8; 8];
    rec[0..4].copy_from_slice(&token.to_le_bytes());
    rec[4..8].copy_from_slice(&(count.min(u32::MAX as u64) as u32).to_le_bytes());
    // 8 bytes < PIPE_BUF: atomic; it blocks only if Node stops reading.
    loop {
        // SAFETY: rec is a valid buffer.
        let w = unsafe { libc::write(notify_w, rec.as_ptr() as *const libc::c_void, rec.len()) };
        if w < 0 && errno() == libc::EINTR {
            continue;
        }
        return;
    }
}
