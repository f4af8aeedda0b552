//! Clones a container process according to a LaunchPlan.

use crate::child::{self, ChildFds};
use crate::prepared::{prepare, Prepared};
use crate::reaper::reaper;
use crate::sys::{self, errno, CloneArgs};
use libc::c_int;

pub struct Spawned {
    pub pid: i32,
    /// Read end of the child's report pipe (see report.rs).
    pub sync_fd: c_int,
    /// Write end of the control pipe (control.rs); -1 when the plan needs no messages.
    pub control_fd: c_int,
}

struct Pipe {
    r: c_int,
    w: c_int,
}

fn pipe() -> Result<Pipe, String> {
    let mut p = [0 as c_int; 2];
    // SAFETY: p is a valid 2-int buffer.
    if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(format!("pipe2: {}", std::io::Error::last_os_error()));
    }
    Ok(Pipe { r: p[0], w: p[1] })
}

fn close(fd: c_int) {
    if fd >= 0 {
        // SAFETY: closing an fd we own.
        unsafe { libc::close(fd) };
    }
}

pub fn spawn(plan_json: &str) -> Result<Spawned, String> {
    let plan: crate::plan::LaunchPlan =
        serde_json::from_str(plan_json).map_err(|e| format!("invalid launch plan: {}", e))?;
    let mut prepared = prepare(&plan).map_err(|e| format!("container {}: {}", plan.id, e))?;
    // setns(CLONE_NEWPID) only changes the namespace of the caller's future children, per
    // thread: do it on a throwaway thread so Node's threads keep their own.
    let pid_join = prepared
        .join_namespaces
        .iter()
        .position(|(flag, _)| *flag == libc::CLONE_NEWPID as u64)
        .map(|i| prepared.join_namespaces.remove(i).1);
    let reaper = reaper()?;

    // SAFETY: opening /dev/null.
    let devnull = unsafe { libc::open(cstr!("/dev/null").as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if devnull < 0 {
        return Err(format!("open /dev/null: {}", std::io::Error::last_os_error()));
    }
    let sync = pipe().map_err(|e| {
        close(devnull);
        e
    })?;
    let needs_control =
        plan.wait_for_start || prepared.new_user_ns || prepared.join_cgroup_first || plan.pause_before_pivot;
    let ctl = if needs_control {
        pipe().map_err(|e| {
            close(devnull);
            close(sync.r);
            close(sync.w);
            e
        })?
    } else {
        Pipe { r: -1, w: -1 }
    };
    let ns = if prepared.staged {
        pipe().map_err(|e| {
            close(devnull);
            close(sync.r);
            close(sync.w);
            close(ctl.r);
            close(ctl.w);
            e
        })?
    } else {
        Pipe { r: -1, w: -1 }
    };
    let fds = ChildFds { sync_w: sync.w, ns_w: ns.w, ctl_r: ctl.r, devnull };
    // Staged: the child makes every namespace itself, in order (child::enter_new_namespaces).
    let flags = if prepared.staged { 0 } else { plan.clone_flags };

    let result = match pid_join {
        None => clone_child(flags, &prepared, &fds),
        Some(path) => std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: plain open/setns on this thread only.
                unsafe {
                    let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
                    if fd < 0 {
                        return Err(format!(
                            "open pid namespace {:?}: {}",
                            path,
                            std::io::Error::last_os_error()
                        ));
                    }
                    let rc = libc::setns(fd, libc::CLONE_NEWPID);
                    let err = std::io::Error::last_os_error();
                    libc::close(fd);
                    if rc < 0 {
                        return Err(format!("setns pid namespace {:?}: {}", path, err));
                    }
                }
                clone_child(flags, &prepared, &fds)
            })
            .join()
            .unwrap_or_else(|_| Err("clone thread panicked".into()))
        }),
    };
    // The child's ends stay only in the child.
    close(sync.w);
    close(ns.w);
    close(ctl.r);
    close(devnull);
    let (pid, pidfd) = match result {
        Ok(v) => v,
        Err(e) => {
            close(sync.r);
            close(ns.r);
            close(ctl.w);
            return Err(format!("container {}: {}", plan.id, e));
        }
    };
    let (pid, pidfd) = if prepared.staged {
        let staged = follow_staged_child(pid, pidfd, ns.r, &plan, ctl.w);
        close(ns.r);
        match staged {
            Ok(v) => v,
            Err(e) => {
                close(sync.r);
                close(ctl.w);
                return Err(format!("container {}: {}", plan.id, e));
            }
        }
    } else {
        (pid, pidfd)
    };
    if let Err(e) = reaper.register(pid, pidfd) {
        // SAFETY: the child is ours and not yet reaped.
        unsafe {
            sys::pidfd_send_signal(pidfd, libc::SIGKILL);
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(sys::P_PIDFD, pidfd as libc::id_t, &mut info, libc::WEXITED);
        }
        close(pidfd);
        close(sync.r);
        close(ctl.w);
        return Err(e);
    }
    Ok(Spawned { pid, sync_fd: sync.r, control_fd: ctl.w })
}

/// clone3 (or clone on kernels without it) with every signal blocked across the call, so no
/// Node signal handler can run in the child before it resets them.
fn clone_child(flags: u64, p: &Prepared, fds: &ChildFds) -> Result<(i32, c_int), String> {
    // SAFETY: sigprocmask on this thread; the child branch only runs child::run.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let mut pidfd: c_int = -1;
        let mut args = CloneArgs {
            flags: flags | sys::CLONE_PIDFD,
            pidfd: &mut pidfd as *mut c_int as u64,
            exit_signal: libc::SIGCHLD as u64,
            ..Default::default()
        };
        let mut rc = sys::clone3(&mut args);
        if rc < 0 && errno() == libc::ENOSYS {
            rc = libc::syscall(
                libc::SYS_clone,
                (flags | sys::CLONE_PIDFD | libc::SIGCHLD as u64) as libc::c_ulong,
                0usize,
                &mut pidfd as *mut c_int,
                0usize,
                0usize,
            );
        }
        if rc == 0 {
            child::run(p, fds);
        }
        let err = std::io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        if rc < 0 {
            return Err(format!("clone: {}", err));
        }
        Ok((rc as i32, pidfd))
    }
}

fn kill_and_reap(pidfd: c_int) {
    // SAFETY: the child is ours, not registered with the reaper, and not yet reaped.
    unsafe {
        sys::pidfd_send_signal(pidfd, libc::SIGKILL);
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::waitid(sys::P_PIDFD, pidfd as libc::id_t, &mut info, libc::WEXITED);
    }
    close(pidfd);
}

/// The shim's side of a staged spawn (child::enter_new_namespaces): writes the id maps once the
/// child unshared its user namespace, and, when it forks the init into a new pid namespace,
/// reaps it and returns the init (our child too, by CLONE_PARENT) with a pidfd of its own.
/// Returns the child itself when it ends the pipe without forking — done, or failed, in which
/// case its report says why and the reaper reports its exit.
fn follow_staged_child(
    pid: i32,
    pidfd: c_int,
    ns_r: c_int,
    plan: &crate::plan::LaunchPlan,
    ctl: c_int,
) -> Result<(i32, c_int), String> {
    follow(pid, pidfd, ns_r, plan, ctl).map_err(|e| {
        kill_and_reap(pidfd);
        e
    })
}

/// Errs only while `pidfd` is still the child's and open.
fn follow(
    pid: i32,
    pidfd: c_int,
    ns_r: c_int,
    plan: &crate::plan::LaunchPlan,
    ctl: c_int,
) -> Result<(i32, c_int), String> {
    loop {
        let mut head = [0u8; 1];
        if !read_full(ns_r, &mut head)? {
            return Ok((pid, pidfd));
        }
        match head[0] {
            crate::control::USERNS_UNSHARED => write_id_maps(pid, plan, ctl)?,
            crate::control::JOIN_CGROUP => join_cgroup(pid, plan, ctl)?,
            crate::control::FORKED => {
                let mut b = [0u8; 4];
                if !read_full(ns_r, &mut b)? {
                    return Ok((pid, pidfd));
                }
                let init = i32::from_le_bytes(b);
                // SAFETY: the init is our child (CLONE_PARENT) and unreaped, so its pid is its
                // own until the reaper waits for it through this pidfd.
                let fd = unsafe { libc::syscall(sys::SYS_PIDFD_OPEN, init, 0) } as c_int;
                if fd < 0 {
                    let err = std::io::Error::last_os_error();
                    // SAFETY: as above; nothing else would ever reap it.
                    unsafe {
                        libc::kill(init, libc::SIGKILL);
                        let mut info: libc::siginfo_t = std::mem::zeroed();
                        libc::waitid(libc::P_PID, init as libc::id_t, &mut info, libc::WEXITED);
                    }
                    return Err(format!("pidfd_open of the init {}: {}", init, err));
                }
                // The intermediate child exits right after its message.
                // SAFETY: pidfd is that child's, open and unreaped.
                unsafe {
                    let mut info: libc::siginfo_t = std::mem::zeroed();
                    libc::waitid(sys::P_PIDFD, pidfd as libc::id_t, &mut info, libc::WEXITED);
                }
                close(pidfd);
                return Ok((init, fd));
            }
            other => return Err(format!("unexpected message {:?} on the namespace pipe", other as char)),
        }
    }
}

/// Reads exactly `buf.len()` bytes; Ok(false) on EOF before the first byte.
fn read_full(fd: c_int, buf: &mut [u8]) -> Result<bool, String> {
    let mut off = 0;
    while off < buf.len() {
        // SAFETY: reading into our own buffer.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().add(off) as *mut libc::c_void, buf.len() - off) };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("read the namespace pipe: {}", err));
        }
        if n == 0 {
            return if off == 0 { Ok(false) } else { Err("short message on the namespace pipe".into()) };
        }
        off += n as usize;
    }
    Ok(true)
}

/// Puts the child in the container's cgroup (every hierarchy) before it unshares a new cgroup
/// namespace; the init it may fork inherits both.
fn join_cgroup(pid: i32, plan: &crate::plan::LaunchPlan, ctl: c_int) -> Result<(), String> {
    for dir in &plan.cgroup_namespace_dirs {
        let path = format!("{}/cgroup.procs", dir);
        std::fs::write(&path, pid.to_string()).map_err(|e| format!("add {} to cgroup {}: {}", pid, dir, e))?;
    }
    crate::control::write_message(ctl, crate::control::CGROUP_JOINED, &[])
        .map_err(|e| format!("signal cgroup joined: {}", e))
}

/// Maps the new user namespace's ids (the child waits for this before anything else).
fn write_id_maps(pid: i32, plan: &crate::plan::LaunchPlan, ctl: c_int) -> Result<(), String> {
    let render = |maps: &[crate::plan::IdMapping]| -> String {
        maps.iter().map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size)).collect()
    };
    for (file, maps) in [("uid_map", &plan.uid_mappings), ("gid_map", &plan.gid_mappings)] {
        let path = format!("/proc/{}/{}", pid, file);
        std::fs::write(&path, render(maps)).map_err(|e| format!("write {}: {}", path, e))?;
    }
    crate::control::write_message(ctl, crate::control::MAPS_WRITTEN, &[])
        .map_err(|e| format!("signal id maps written: {}", e))
}
