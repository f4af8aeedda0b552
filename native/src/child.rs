//! Everything the cloned child does between clone3 and execve.
//!
//! The shim is a multithreaded Node process and the child is a fork-like copy of one of its
//! threads: allocator and stdio locks may be held by threads that do not exist here. So this
//! module never allocates, never panics, never takes a lock: it makes raw syscalls on memory
//! prepared before the clone (see prepared.rs) and on fixed-size stack buffers. glibc's setuid
//! family is avoided on purpose — it broadcasts to the parent's (absent) threads and would hang.

use crate::control::{self, CGROUP_JOINED, CONTINUE, MAPS_WRITTEN, START};
use crate::hooks;
use crate::prepared::{Prepared, PreparedDevice, PreparedMount, PreparedSymlink};
use crate::report::{format_u64, Report, HOOK_POINT, READY, TERMINAL};
use crate::sys::{self, errno, OpenHow};
use libc::{c_char, c_int};
use std::ffi::CStr;

const PATH_BUF: usize = 4096;
// Room for the OCI state JSON the shim sends for in-container hooks (annotations included).
const STATE_BUF: usize = 32 * 1024;

pub struct ChildFds {
    pub sync_w: c_int,
    /// Write end of the namespace pipe of a staged spawn (control.rs), -1 otherwise.
    pub ns_w: c_int,
    /// Read end of the control pipe (control.rs), -1 when the plan needs no messages.
    pub ctl_r: c_int,
    pub devnull: c_int,
}

#[derive(Clone, Copy, PartialEq)]
enum Create {
    Nothing,
    Dir,
    File,
}

/// Runs in the child; never returns.
///
/// # Safety
/// Must only be called in the child of a fork-like clone, with `p` and `fds` prepared before it.
pub unsafe fn run(p: &Prepared, fds: &ChildFds) -> ! {
    let sync = fds.sync_w;
    reset_signals();
    // Through the shim's /proc, before the container's own /proc exists, and with the host's
    // privileges (before any user namespace), as runc's nsexec does.
    if let Some(adj) = &p.oom_score_adj {
        write_file(cstr!("/proc/self/oom_score_adj"), adj, sync);
    }
    for &(resource, ref lim) in p.rlimits.iter() {
        if libc::prlimit64(0, resource as libc::__rlimit_resource_t, lim, std::ptr::null_mut()) < 0 {
            let mut d = [0u8; 20];
            Report::new().push_str("setrlimit ").push(format_u64(resource as u64, &mut d)).fail(sync, errno());
        }
    }
    for (flag, path) in p.join_namespaces.iter() {
        join_namespace(*flag, path, sync);
    }
    if p.staged {
        enter_new_namespaces(p, fds);
    }
    let mut state = [0u8; STATE_BUF];
    // Device nodes and mount points get exactly the modes the plan asks for.
    libc::umask(0);
    if libc::setsid() < 0 {
        Report::new().push_str("setsid").fail(sync, errno());
    }
    for (i, &src) in p.stdio.iter().enumerate() {
        let src = if src >= 0 { src } else { fds.devnull };
        if libc::dup2(src, i as c_int) < 0 {
            Report::new().push_str("dup2 stdio").fail(sync, errno());
        }
    }
    if let Some(rootfs) = &p.rootfs {
        setup_rootfs(p, rootfs, sync, fds.ctl_r, &mut state);
    }
    if let Some(h) = &p.hostname {
        if libc::sethostname(h.as_ptr(), h.to_bytes().len()) < 0 {
            Report::new().push_str("sethostname ").push(h.to_bytes()).fail(sync, errno());
        }
    }
    if let Some(d) = &p.domainname {
        if libc::setdomainname(d.as_ptr(), d.to_bytes().len()) < 0 {
            Report::new().push_str("setdomainname ").push(d.to_bytes()).fail(sync, errno());
        }
    }
    let master = if p.terminal { open_console(p, sync) } else { -1 };
    // chdir as root first (the directory may be reachable only before dropping privileges),
    // and again after switching user when that is what fails, as runc does.
    let cwd_done = libc::chdir(p.cwd.as_ptr()) == 0;
    let mut exe_buf = [0u8; PATH_BUF];
    let exe = find_executable(p, &mut exe_buf, sync);
    // Without no_new_privs, installing a filter needs CAP_SYS_ADMIN: load it before dropping
    // capabilities and switching user, as runc does. With it, see right before execve.
    if !p.no_new_privileges {
        crate::seccomp::load_in_child(&p.seccomp, sync);
    }
    if let Some(caps) = &p.caps {
        drop_bounding(caps.bounding, sync);
        // Keep the permitted set across the uid change; capset below then sets it exactly.
        libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0);
    }
    set_credentials(p, sync);
    if let Some(caps) = &p.caps {
        libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0);
        set_capabilities(caps, sync);
    }
    if p.no_new_privileges && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 {
        Report::new().push_str("set no_new_privs").fail(sync, errno());
    }
    if !cwd_done && libc::chdir(p.cwd.as_ptr()) < 0 {
        Report::new().push_str("chdir to cwd ").push(p.cwd.to_bytes()).fail(sync, errno());
    }
    if let Some(persona) = p.personality {
        if libc::personality(persona as libc::c_ulong) < 0 {
            Report::new().push_str("set personality").fail(sync, errno());
        }
    }
    close_other_fds(&[sync, fds.ctl_r, master]);
    libc::umask(p.umask);
    if master >= 0 {
        let mut msg = [TERMINAL, 0, 0, 0, 0];
        msg[1..5].copy_from_slice(&(master as u32).to_le_bytes());
        if libc::write(sync, msg.as_ptr() as *const libc::c_void, msg.len()) != msg.len() as isize {
            libc::_exit(126);
        }
    }
    if p.wait_for_start {
        let ready = [READY];
        if libc::write(sync, ready.as_ptr() as *const libc::c_void, 1) != 1 {
            libc::_exit(126);
        }
        // EOF: the shim went away (or the container was deleted) before Start — never run.
        let n = match control::read_message(fds.ctl_r, START, &mut state) {
            Some(n) => n,
            None => libc::_exit(126),
        };
        libc::close(fds.ctl_r);
        hooks::run_all("startContainer", &p.start_container_hooks, &state[..n], sync);
    }
    // The shim holds its own copy of the master by now (taken before it sent start).
    if master >= 0 {
        libc::close(master);
    }
    // With no_new_privs the filter goes last, so that as few of our own syscalls as possible
    // (start wait, hooks, closing fds) run under the container's profile, as in runc.
    if p.no_new_privileges {
        crate::seccomp::load_in_child(&p.seccomp, sync);
    }
    libc::execve(exe, p.argv.as_ptr(), p.envp.as_ptr());
    Report::new()
        .push_str("exec ")
        .push(p.argv0.to_bytes())
        .fail(sync, errno());
}

/// Opens a pty in the container's own devpts (as runc does: `tty` inside shows /dev/pts/N),
/// makes its slave our stdio and controlling terminal, and returns the master's fd.
unsafe fn open_console(p: &Prepared, sync: c_int) -> c_int {
    let master = libc::open(cstr!("/dev/ptmx").as_ptr(), libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
    if master < 0 {
        Report::new().push_str("open /dev/ptmx for the terminal").fail(sync, errno());
    }
    let mut unlock: c_int = 0;
    let mut n: libc::c_uint = 0;
    if libc::ioctl(master, libc::TIOCSPTLCK, &mut unlock) < 0 || libc::ioctl(master, libc::TIOCGPTN, &mut n) < 0 {
        Report::new().push_str("unlock the terminal").fail(sync, errno());
    }
    let mut path = [0u8; 32];
    let prefix = b"/dev/pts/";
    path[..prefix.len()].copy_from_slice(prefix);
    let mut d = [0u8; 20];
    let digits = format_u64(n as u64, &mut d);
    path[prefix.len()..prefix.len() + digits.len()].copy_from_slice(digits);
    let slave = libc::open(path.as_ptr() as *const c_char, libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
    if slave < 0 {
        Report::new().push_str("open the terminal's slave ").push(&path[..prefix.len() + digits.len()]).fail(sync, errno());
    }
    // The process's user owns its terminal (it switches to that user later).
    libc::fchown(slave, p.uid, p.gid);
    if p.console_rows > 0 && p.console_cols > 0 {
        let ws = libc::winsize { ws_row: p.console_rows, ws_col: p.console_cols, ws_xpixel: 0, ws_ypixel: 0 };
        libc::ioctl(slave, libc::TIOCSWINSZ, &ws);
    }
    for i in 0..3 {
        if libc::dup2(slave, i) < 0 {
            Report::new().push_str("dup2 terminal").fail(sync, errno());
        }
    }
    libc::close(slave);
    // setsid() ran first thing: we lead a session without a terminal, so this one becomes ours.
    if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
        Report::new().push_str("make the terminal the controlling terminal").fail(sync, errno());
    }
    master
}

unsafe fn reset_signals() {
    for sig in 1..65 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = libc::SIG_DFL;
        // glibc-reserved real-time signals return EINVAL; nothing to reset there.
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
    let mut empty: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut empty);
    libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
}

/// The second half of a staged spawn, after the joins (the user namespace's first): as runc's
/// nsexec, a new user namespace is unshared and mapped (by the shim) before the other new
/// namespaces, so that they are owned by it and made by its root — /dev/mqueue of a new ipc
/// namespace, for one, belongs to whoever created the namespace. A new pid namespace only
/// takes effect for children: the container's init is forked into it, as a child of the shim
/// (CLONE_PARENT), and this process reports its pid and exits. A new cgroup namespace is rooted
/// at the cgroup of whoever unshares it: the shim puts this process in the container's cgroup
/// first (runc's SYNC_CGROUPNS), so the container sees its own cgroup as "/".
unsafe fn enter_new_namespaces(p: &Prepared, fds: &ChildFds) {
    let sync = fds.sync_w;
    if p.new_user_ns {
        if libc::unshare(libc::CLONE_NEWUSER) < 0 {
            Report::new().push_str("unshare the user namespace").fail(sync, errno());
        }
        let msg = [control::USERNS_UNSHARED];
        if libc::write(fds.ns_w, msg.as_ptr() as *const libc::c_void, 1) != 1 {
            libc::_exit(126);
        }
        // In a new user namespace we are nobody until the shim has written our id maps.
        if control::read_message(fds.ctl_r, MAPS_WRITTEN, &mut []).is_none() {
            libc::_exit(126);
        }
        // The uid only, exactly as runc's nsexec (stage 1): the namespaces unshared next are
        // made with these credentials (/dev/mqueue's owner shows them: 0 and the unmapped gid).
        if libc::syscall(libc::SYS_setresuid, 0, 0, 0) < 0 {
            Report::new().push_str("become root of the new user namespace").fail(sync, errno());
        }
    }
    if p.join_cgroup_first {
        let msg = [control::JOIN_CGROUP];
        if libc::write(fds.ns_w, msg.as_ptr() as *const libc::c_void, 1) != 1 {
            libc::_exit(126);
        }
        if control::read_message(fds.ctl_r, CGROUP_JOINED, &mut []).is_none() {
            libc::_exit(126);
        }
    }
    if p.unshare_flags != 0 && libc::unshare(p.unshare_flags as c_int) < 0 {
        Report::new().push_str("unshare the container's namespaces").fail(sync, errno());
    }
    if p.fork_pid_ns {
        let flags = (libc::CLONE_PARENT | libc::CLONE_NEWPID | libc::SIGCHLD) as libc::c_ulong;
        let pid = libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize);
        if pid < 0 {
            Report::new().push_str("fork into the new pid namespace").fail(sync, errno());
        }
        if pid > 0 {
            let mut msg = [control::FORKED, 0, 0, 0, 0];
            msg[1..5].copy_from_slice(&(pid as u32).to_le_bytes());
            let ok = libc::write(fds.ns_w, msg.as_ptr() as *const libc::c_void, msg.len()) == msg.len() as isize;
            libc::_exit(if ok { 0 } else { 126 });
        }
    }
    libc::close(fds.ns_w);
    // Our ids may still be the host's root, which the container's user namespace (new or
    // joined) does not map (files we create would fail with EOVERFLOW): become its root, as
    // runc's init (stage 2) does.
    if libc::syscall(libc::SYS_setresgid, 0, 0, 0) < 0 || libc::syscall(libc::SYS_setresuid, 0, 0, 0) < 0 {
        Report::new().push_str("become root of the container's user namespace").fail(sync, errno());
    }
}

unsafe fn join_namespace(flag: u64, path: &CStr, sync: c_int) {
    let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
    if fd < 0 {
        Report::new().push_str("open namespace ").push(path.to_bytes()).fail(sync, errno());
    }
    if libc::setns(fd, flag as c_int) < 0 {
        Report::new().push_str("setns ").push(path.to_bytes()).fail(sync, errno());
    }
    libc::close(fd);
}

unsafe fn setup_rootfs(p: &Prepared, rootfs: &CStr, sync: c_int, ctl: c_int, state: &mut [u8]) {
    let null = std::ptr::null::<c_char>();
    if p.root_propagation != 0
        && libc::mount(null, cstr!("/").as_ptr(), null, p.root_propagation as libc::c_ulong, std::ptr::null()) < 0
    {
        Report::new().push_str("set propagation of / in the container's mount namespace").fail(sync, errno());
    }
    // As runc: the mount holding the rootfs is made private if it is (still) shared, so that
    // the bind below does not propagate out and pivot_root accepts the new root.
    let mut holder = [0u8; PATH_BUF];
    match crate::mountinfo::holding_mount(rootfs.to_bytes(), &mut holder) {
        Ok(false) => {}
        Ok(true) => {
            let at = holder.as_ptr() as *const c_char;
            if libc::mount(null, at, null, libc::MS_PRIVATE as libc::c_ulong, std::ptr::null()) < 0 {
                let len = holder.iter().position(|&b| b == 0).unwrap_or(0);
                Report::new().push_str("make the rootfs' parent mount private: ").push(&holder[..len]).fail(sync, errno());
            }
        }
        Err(e) => Report::new().push_str("find the mount holding the rootfs in /proc/self/mountinfo").fail(sync, e),
    }
    // pivot_root needs the new root to be a mount point of its own.
    let rbind = (libc::MS_BIND | libc::MS_REC) as libc::c_ulong;
    if libc::mount(rootfs.as_ptr(), rootfs.as_ptr(), null, rbind, std::ptr::null()) < 0 {
        Report::new().push_str("bind mount rootfs ").push(rootfs.to_bytes()).fail(sync, errno());
    }
    let rootfd = libc::open(rootfs.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC);
    if rootfd < 0 {
        Report::new().push_str("open rootfs ").push(rootfs.to_bytes()).fail(sync, errno());
    }
    for m in p.mounts.iter() {
        do_mount(rootfd, m, sync);
    }
    for d in p.devices.iter() {
        make_device(rootfd, d, sync);
    }
    for s in p.symlinks.iter() {
        make_symlink(rootfd, s, sync);
    }
    for (path, value) in p.sysctl.iter() {
        write_sysctl(rootfd, path, value, sync);
    }
    if p.pause_before_pivot {
        // The shim runs prestart and createRuntime hooks now (namespaces exist, rootfs is
        // mounted), then sends the state for the createContainer hooks we run here.
        let h = [HOOK_POINT];
        if libc::write(sync, h.as_ptr() as *const libc::c_void, 1) != 1 {
            libc::_exit(126);
        }
        let n = match control::read_message(ctl, CONTINUE, state) {
            Some(n) => n,
            None => libc::_exit(126),
        };
        hooks::run_all("createContainer", &p.create_container_hooks, &state[..n], sync);
    }
    // Readonly first, as runc: a recursive bind of a readonly path would copy masks inside it.
    for r in p.readonly_paths.iter() {
        readonly_path(rootfd, r, sync);
    }
    for m in p.masked_paths.iter() {
        mask_path(rootfd, m, sync);
    }
    pivot(rootfd, sync);
    libc::close(rootfd);
    // The requested propagation, now on the container's own "/" (the rootfs bind, private so
    // far): before pivot_root it applied to the host's "/" copy, not to the new root.
    if p.root_propagation_after_pivot != 0
        && libc::mount(null, cstr!("/").as_ptr(), null, p.root_propagation_after_pivot as libc::c_ulong, std::ptr::null()) < 0
    {
        Report::new().push_str("set linux.rootfsPropagation on the container's /").fail(sync, errno());
    }
    if p.readonly_root {
        remount_readonly_root(sync);
    }
}

/// Opens `rel` (relative to the container root) with every symlink resolved inside the root,
/// creating missing directories (and, with Create::File, a missing last component as a file).
/// Resolving in the root is what keeps an image's symlinks from redirecting mounts to the host.
unsafe fn open_in_root(rootfd: c_int, rel: &CStr, create: Create) -> Result<c_int, c_int> {
    let how = OpenHow {
        flags: (libc::O_PATH | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: sys::RESOLVE_IN_ROOT | sys::RESOLVE_NO_MAGICLINKS,
    };
    let fd = sys::openat2(rootfd, rel.as_ptr(), &how);
    if fd >= 0 {
        return Ok(fd);
    }
    let e = errno();
    if e != libc::ENOENT || create == Create::Nothing {
        return Err(e);
    }
    let bytes = rel.to_bytes();
    let n = bytes.len();
    let mut buf = [0u8; PATH_BUF];
    if n + 1 > buf.len() {
        return Err(libc::ENAMETOOLONG);
    }
    buf[..n].copy_from_slice(bytes);
    let mut parent = -1; // -1 = the root itself
    let mut i = 0;
    while i < n {
        while i < n && buf[i] == b'/' {
            i += 1;
        }
        let start = i;
        while i < n && buf[i] != b'/' {
            i += 1;
        }
        if start == i {
            break;
        }
        let last = buf[i..n].iter().all(|&b| b == b'/');
        let saved = buf[i];
        buf[i] = 0;
        let mut fd = sys::openat2(rootfd, buf.as_ptr() as *const c_char, &how);
        if fd < 0 && errno() == libc::ENOENT {
            let dir = if parent >= 0 { parent } else { rootfd };
            let name = buf.as_ptr().add(start) as *const c_char;
            if last && create == Create::File {
                let f = libc::openat(
                    dir,
                    name,
                    libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                    0o755,
                );
                if f >= 0 {
                    libc::close(f);
                }
            } else if libc::mkdirat(dir, name, 0o755) < 0 && errno() != libc::EEXIST {
                let e = errno();
                if parent >= 0 {
                    libc::close(parent);
                }
                return Err(e);
            }
            fd = sys::openat2(rootfd, buf.as_ptr() as *const c_char, &how);
        }
        let e = errno();
        buf[i] = saved;
        if parent >= 0 {
            libc::close(parent);
        }
        if fd < 0 {
            return Err(e);
        }
        parent = fd;
        if last {
            break;
        }
    }
    if parent < 0 {
        return Err(libc::EINVAL);
    }
    Ok(parent)
}

/// "/proc/self/fd/<fd>" in `buf`: the path through which mount(2) reaches an fd's file.
fn fd_path(fd: c_int, buf: &mut [u8; 64]) -> *const c_char {
    let prefix = b"/proc/self/fd/";
    buf[..prefix.len()].copy_from_slice(prefix);
    let mut digits = [0u8; 20];
    let d = format_u64(fd as u64, &mut digits);
    let end = prefix.len() + d.len();
    buf[prefix.len()..end].copy_from_slice(d);
    buf[end] = 0;
    buf.as_ptr() as *const c_char
}

unsafe fn do_mount(rootfd: c_int, m: &PreparedMount, sync: c_int) {
    let create = if m.file_target { Create::File } else { Create::Dir };
    let fd = match open_in_root(rootfd, &m.target, create) {
        Ok(fd) => fd,
        Err(e) => mount_fail(m, "create mount point for ", sync, e),
    };
    let mut pbuf = [0u8; 64];
    let target = fd_path(fd, &mut pbuf);
    let mut covered: libc::stat = std::mem::zeroed();
    if m.keep_mode && libc::fstat(fd, &mut covered) < 0 {
        mount_fail(m, "stat mount point for ", sync, errno());
    }
    let data = if m.has_data { m.data.as_ptr() as *const libc::c_void } else { std::ptr::null() };
    if libc::mount(m.source.as_ptr(), target, m.fstype.as_ptr(), m.flags as libc::c_ulong, data) < 0 {
        mount_fail(m, "mount ", sync, errno());
    }
    libc::close(fd);
    if m.keep_mode {
        let top = match open_in_root(rootfd, &m.target, Create::Nothing) {
            Ok(fd) => fd,
            Err(e) => mount_fail(m, "reopen mount point ", sync, e),
        };
        if libc::chmod(fd_path(top, &mut pbuf), covered.st_mode & 0o7777) < 0 {
            mount_fail(m, "chmod the root of ", sync, errno());
        }
        libc::close(top);
    }
    if m.remount_flags == 0 && m.propagation.is_empty() {
        return;
    }
    // The fd above still names the directory underneath the new mount; reopen to reach the mount.
    let fd = match open_in_root(rootfd, &m.target, Create::Nothing) {
        Ok(fd) => fd,
        Err(e) => mount_fail(m, "reopen mount point ", sync, e),
    };
    let target = fd_path(fd, &mut pbuf);
    let null = std::ptr::null::<c_char>();
    if m.remount_flags != 0 {
        let flags = (libc::MS_BIND | libc::MS_REMOUNT) as u64 | m.remount_flags;
        if libc::mount(null, target, null, flags as libc::c_ulong, std::ptr::null()) < 0 {
            mount_fail(m, "remount ", sync, errno());
        }
    }
    for &flags in m.propagation.iter() {
        if libc::mount(null, target, null, flags as libc::c_ulong, std::ptr::null()) < 0 {
            mount_fail(m, "set propagation of ", sync, errno());
        }
    }
    libc::close(fd);
}

unsafe fn mount_fail(m: &PreparedMount, what: &str, sync: c_int, e: c_int) -> ! {
    Report::new()
        .push_str(what)
        .push(m.source.to_bytes())
        .push_str(" on /")
        .push(m.target.to_bytes())
        .push_str(" (type ")
        .push(m.fstype.to_bytes())
        .push_str(")")
        .fail(sync, e)
}

/// Splits `rel` into its parent (opened in the root, created if missing) and its last name,
/// copied NUL-terminated into `name`.
unsafe fn open_parent(rootfd: c_int, rel: &CStr, name: &mut [u8; 256]) -> Result<c_int, c_int> {
    let bytes = rel.to_bytes();
    let (dir, base) = match bytes.iter().rposition(|&b| b == b'/') {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (&bytes[..0], bytes),
    };
    if base.is_empty() || base.len() + 1 > name.len() {
        return Err(libc::EINVAL);
    }
    name[..base.len()].copy_from_slice(base);
    name[base.len()] = 0;
    let mut dbuf = [0u8; PATH_BUF];
    if dir.len() + 1 > dbuf.len() {
        return Err(libc::ENAMETOOLONG);
    }
    let len = if dir.is_empty() {
        dbuf[0] = b'.';
        1
    } else {
        dbuf[..dir.len()].copy_from_slice(dir);
        dir.len()
    };
    dbuf[len] = 0;
    let dir_c = CStr::from_bytes_with_nul(&dbuf[..=len]).map_err(|_| libc::EINVAL)?;
    open_in_root(rootfd, dir_c, Create::Dir)
}

unsafe fn make_device(rootfd: c_int, d: &PreparedDevice, sync: c_int) {
    let mut name = [0u8; 256];
    let dir = match open_parent(rootfd, &d.path, &mut name) {
        Ok(fd) => fd,
        Err(e) => Report::new().push_str("create parent of device /").push(d.path.to_bytes()).fail(sync, e),
    };
    let np = name.as_ptr() as *const c_char;
    // An image may ship its own node at this path; the plan's device wins, as with runc.
    libc::unlinkat(dir, np, 0);
    if libc::mknodat(dir, np, d.mode, d.dev) < 0 {
        if errno() != libc::EPERM {
            Report::new().push_str("mknod /").push(d.path.to_bytes()).fail(sync, errno());
        }
        // In a user namespace device nodes cannot be made: bind the host's node instead, as
        // runc does. Before pivot_root the host's /dev is still reachable at the same path.
        bind_host_device(dir, np, d, sync);
        libc::close(dir);
        return;
    }
    if libc::fchownat(dir, np, d.uid, d.gid, libc::AT_SYMLINK_NOFOLLOW) < 0 {
        Report::new().push_str("chown device /").push(d.path.to_bytes()).fail(sync, errno());
    }
    libc::close(dir);
}

unsafe fn bind_host_device(dir: c_int, name: *const c_char, d: &PreparedDevice, sync: c_int) {
    let f = libc::openat(dir, name, libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW, 0o644);
    if f < 0 {
        Report::new().push_str("create mount point for device /").push(d.path.to_bytes()).fail(sync, errno());
    }
    let mut pbuf = [0u8; 64];
    let target = fd_path(f, &mut pbuf);
    let mut host = [0u8; PATH_BUF];
    let rel = d.path.to_bytes();
    if rel.len() + 2 > host.len() {
        Report::new().push_str("device path too long").fail(sync, libc::ENAMETOOLONG);
    }
    host[0] = b'/';
    host[1..rel.len() + 1].copy_from_slice(rel);
    let src = host.as_ptr() as *const c_char;
    if libc::mount(src, target, std::ptr::null(), libc::MS_BIND, std::ptr::null()) < 0 {
        Report::new().push_str("bind host device /").push(rel).fail(sync, errno());
    }
    libc::close(f);
}

unsafe fn make_symlink(rootfd: c_int, s: &PreparedSymlink, sync: c_int) {
    let mut name = [0u8; 256];
    let dir = match open_parent(rootfd, &s.path, &mut name) {
        Ok(fd) => fd,
        Err(e) => Report::new().push_str("create parent of symlink /").push(s.path.to_bytes()).fail(sync, e),
    };
    let np = name.as_ptr() as *const c_char;
    if libc::symlinkat(s.target.as_ptr(), dir, np) < 0 && errno() != libc::EEXIST {
        Report::new().push_str("symlink /").push(s.path.to_bytes()).fail(sync, errno());
    }
    libc::close(dir);
}

/// pivot_root(".", ".") then detach the old root stacked underneath: no temporary directory
/// inside the container is needed (the trick runc uses).
unsafe fn pivot(rootfd: c_int, sync: c_int) {
    let null = std::ptr::null::<c_char>();
    let dot = cstr!(".").as_ptr();
    if libc::fchdir(rootfd) < 0 {
        Report::new().push_str("chdir to rootfs").fail(sync, errno());
    }
    if libc::syscall(libc::SYS_pivot_root, dot, dot) < 0 {
        Report::new().push_str("pivot_root").fail(sync, errno());
    }
    // The old root must not propagate our unmount back to the host.
    if libc::mount(null, dot, null, (libc::MS_SLAVE | libc::MS_REC) as libc::c_ulong, std::ptr::null()) < 0 {
        Report::new().push_str("make old root rslave").fail(sync, errno());
    }
    if libc::umount2(dot, libc::MNT_DETACH) < 0 {
        Report::new().push_str("detach old root").fail(sync, errno());
    }
    if libc::chdir(cstr!("/").as_ptr()) < 0 {
        Report::new().push_str("chdir to new root").fail(sync, errno());
    }
}

unsafe fn remount_readonly_root(sync: c_int) {
    if remount_readonly(cstr!("/").as_ptr()) < 0 {
        Report::new().push_str("remount / read-only").fail(sync, errno());
    }
}

/// Bind-remounts `target` read-only, keeping its other lock flags; 0 or -1 with errno.
unsafe fn remount_readonly(target: *const c_char) -> c_int {
    // glibc's statvfs takes the flags straight from statfs(2) (ST_VALID kernels): no file reads.
    let mut st: libc::statvfs = std::mem::zeroed();
    if libc::statvfs(target, &mut st) < 0 {
        return -1;
    }
    // Keep the root's existing lock flags (nosuid, nodev…): a bind remount replaces them all.
    let f = st.f_flag as u64;
    let mut keep: u64 = 0;
    for (st_flag, ms_flag) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if f & st_flag as u64 != 0 {
            keep |= ms_flag as u64;
        }
    }
    let flags = (libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY) as u64 | keep;
    let null = std::ptr::null::<c_char>();
    libc::mount(null, target, null, flags as libc::c_ulong, std::ptr::null())
}

/// maskedPaths: a read-only tmpfs over a directory, /dev/null over anything else; paths the
/// image does not have are skipped (runc does the same).
unsafe fn mask_path(rootfd: c_int, rel: &CStr, sync: c_int) {
    let fd = match open_in_root(rootfd, rel, Create::Nothing) {
        Ok(fd) => fd,
        Err(libc::ENOENT) => return,
        Err(e) => Report::new().push_str("open masked path /").push(rel.to_bytes()).fail(sync, e),
    };
    let mut st: libc::stat = std::mem::zeroed();
    if libc::fstat(fd, &mut st) < 0 {
        Report::new().push_str("stat masked path /").push(rel.to_bytes()).fail(sync, errno());
    }
    let mut pbuf = [0u8; 64];
    let target = fd_path(fd, &mut pbuf);
    let rc = if (st.st_mode & libc::S_IFMT) == libc::S_IFDIR {
        libc::mount(cstr!("tmpfs").as_ptr(), target, cstr!("tmpfs").as_ptr(), libc::MS_RDONLY, std::ptr::null())
    } else {
        // The container's own /dev/null, never the host's (whose devtmpfs would show through).
        let null = match open_in_root(rootfd, cstr!("dev/null"), Create::Nothing) {
            Ok(fd) => fd,
            Err(e) => Report::new().push_str("open the container's /dev/null to mask /").push(rel.to_bytes()).fail(sync, e),
        };
        let mut nbuf = [0u8; 64];
        let rc = libc::mount(fd_path(null, &mut nbuf), target, std::ptr::null(), libc::MS_BIND, std::ptr::null());
        libc::close(null);
        rc
    };
    if rc < 0 {
        Report::new().push_str("mask path /").push(rel.to_bytes()).fail(sync, errno());
    }
    libc::close(fd);
}

unsafe fn readonly_path(rootfd: c_int, rel: &CStr, sync: c_int) {
    let fd = match open_in_root(rootfd, rel, Create::Nothing) {
        Ok(fd) => fd,
        Err(libc::ENOENT) => return,
        Err(e) => Report::new().push_str("open readonly path /").push(rel.to_bytes()).fail(sync, e),
    };
    let mut pbuf = [0u8; 64];
    let target = fd_path(fd, &mut pbuf);
    let rbind = (libc::MS_BIND | libc::MS_REC) as libc::c_ulong;
    if libc::mount(target, target, std::ptr::null(), rbind, std::ptr::null()) < 0 {
        Report::new().push_str("bind readonly path /").push(rel.to_bytes()).fail(sync, errno());
    }
    libc::close(fd);
    // Reopen: the old fd names the directory under the new bind mount.
    let fd = match open_in_root(rootfd, rel, Create::Nothing) {
        Ok(fd) => fd,
        Err(e) => Report::new().push_str("reopen readonly path /").push(rel.to_bytes()).fail(sync, e),
    };
    let target = fd_path(fd, &mut pbuf);
    if remount_readonly(target) < 0 {
        Report::new().push_str("remount read-only /").push(rel.to_bytes()).fail(sync, errno());
    }
    libc::close(fd);
}

/// Writes a /proc/sys value through the container's own /proc (mounted in its root by now).
unsafe fn write_sysctl(rootfd: c_int, rel: &CStr, value: &CStr, sync: c_int) {
    let how = OpenHow {
        flags: (libc::O_WRONLY | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: sys::RESOLVE_IN_ROOT | sys::RESOLVE_NO_MAGICLINKS,
    };
    let fd = sys::openat2(rootfd, rel.as_ptr(), &how);
    if fd < 0 {
        Report::new().push_str("open sysctl /").push(rel.to_bytes()).fail(sync, errno());
    }
    let b = value.to_bytes();
    if libc::write(fd, b.as_ptr() as *const libc::c_void, b.len()) < 0 {
        Report::new().push_str("write sysctl /").push(rel.to_bytes()).fail(sync, errno());
    }
    libc::close(fd);
}

unsafe fn write_file(path: &CStr, text: &CStr, sync: c_int) {
    let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
    if fd < 0 {
        Report::new().push_str("open ").push(path.to_bytes()).fail(sync, errno());
    }
    let b = text.to_bytes();
    if libc::write(fd, b.as_ptr() as *const libc::c_void, b.len()) < 0 {
        Report::new().push_str("write ").push(b).push_str(" to ").push(path.to_bytes()).fail(sync, errno());
    }
    libc::close(fd);
}

unsafe fn drop_bounding(keep: u64, sync: c_int) {
    for cap in 0..64u64 {
        if keep & (1 << cap) != 0 {
            continue;
        }
        // EINVAL: a capability this kernel does not have — nothing to drop.
        if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno() != libc::EINVAL {
            let mut d = [0u8; 20];
            Report::new().push_str("drop bounding capability ").push(format_u64(cap, &mut d)).fail(sync, errno());
        }
    }
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

unsafe fn set_capabilities(c: &crate::prepared::PreparedCaps, sync: c_int) {
    const VERSION_3: u32 = 0x2008_0522;
    let hdr = CapHeader { version: VERSION_3, pid: 0 };
    let data = [
        CapData { effective: c.effective as u32, permitted: c.permitted as u32, inheritable: c.inheritable as u32 },
        CapData {
            effective: (c.effective >> 32) as u32,
            permitted: (c.permitted >> 32) as u32,
            inheritable: (c.inheritable >> 32) as u32,
        },
    ];
    if libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr()) < 0 {
        Report::new().push_str("capset").fail(sync, errno());
    }
    for cap in 0..64u64 {
        if c.ambient & (1 << cap) != 0 {
            // Ambient needs the capability permitted and inheritable; runc only warns, so do we
            // (silently: there is no channel back but failure).
            libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong, cap, 0, 0);
        }
    }
}

/// Resolves argv[0] against the container's PATH, as execvp would, so that a missing binary
/// fails Create with a clear message instead of an exit status after Start.
unsafe fn find_executable(p: &Prepared, buf: &mut [u8; PATH_BUF], sync: c_int) -> *const c_char {
    let name = p.argv0.to_bytes();
    if name.contains(&b'/') {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::stat(p.argv0.as_ptr(), &mut st) < 0 {
            Report::new().push_str("exec: \"").push(name).push_str("\": stat").fail(sync, errno());
        }
        if (st.st_mode & libc::S_IFMT) != libc::S_IFREG || st.st_mode & 0o111 == 0 {
            Report::new().push_str("exec: \"").push(name).push_str("\": not an executable file").fail(sync, libc::EACCES);
        }
        return p.argv0.as_ptr();
    }
    let mut last_err = libc::ENOENT;
    if !name.is_empty() {
        for dir in p.path_env.to_bytes().split(|&b| b == b':') {
            let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
            let len = dir.len() + 1 + name.len();
            if len + 1 > buf.len() {
                continue;
            }
            buf[..dir.len()].copy_from_slice(dir);
            buf[dir.len()] = b'/';
            buf[dir.len() + 1..len].copy_from_slice(name);
            buf[len] = 0;
            let path = buf.as_ptr() as *const c_char;
            let mut st: libc::stat = std::mem::zeroed();
            if libc::stat(path, &mut st) == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFREG {
                if st.st_mode & 0o111 != 0 {
                    return path;
                }
                last_err = libc::EACCES;
            }
        }
    }
    Report::new()
        .push_str("exec: \"")
        .push(name)
        .push_str("\": executable file not found in $PATH")
        // errno 0: the message is complete (Go's LookPath wording), no strerror to append.
        .fail(sync, if last_err == libc::ENOENT { 0 } else { last_err })
}

unsafe fn set_credentials(p: &Prepared, sync: c_int) {
    if libc::syscall(libc::SYS_setgroups, p.groups.len(), p.groups.as_ptr()) < 0 {
        Report::new().push_str("setgroups").fail(sync, errno());
    }
    if libc::syscall(libc::SYS_setresgid, p.gid, p.gid, p.gid) < 0 {
        Report::new().push_str("setgid").fail(sync, errno());
    }
    if libc::syscall(libc::SYS_setresuid, p.uid, p.uid, p.uid) < 0 {
        Report::new().push_str("setuid").fail(sync, errno());
    }
}

/// Closes every fd but stdio and `keep`: the shim's sockets, pipes and epoll fds must not leak
/// into the container, and closing (not just CLOEXEC) also drops them while we wait for Start.
unsafe fn close_other_fds(keep: &[c_int]) {
    // A few fds at most: sort them on the stack (no allocation here).
    let mut sorted = [-1 as c_int; 4];
    let mut n = 0;
    for &k in keep {
        if k >= 3 && n < sorted.len() {
            sorted[n] = k;
            n += 1;
        }
    }
    sorted[..n].sort_unstable();
    let mut lo: u32 = 3;
    for &k in sorted[..n].iter() {
        let k = k as u32;
        if k > lo {
            close_span(lo, k - 1);
        }
        if k + 1 > lo {
            lo = k + 1;
        }
    }
    close_span(lo, u32::MAX);
}

unsafe fn close_span(first: u32, last: u32) {
    if sys::close_range(first, last) == 0 {
        return;
    }
    // close_range(2) is Linux ≥ 5.9; fall back to closing a bounded range one by one.
    let end = if last > 65535 { 65535 } else { last };
    let mut fd = first;
    while fd <= end {
        libc::close(fd as c_int);
        fd += 1;
    }
}
