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
    let needs_control = plan.wait_for_start || prepared.new_user_ns || plan.pause_before_pivot;
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
    let fds = ChildFds { sync_w: sync.w, ctl_r: ctl.r, devnull };
    let flags = plan.clone_flags;

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
    close(ctl.r);
    close(devnull);
    let (pid, pidfd) = match result {
        Ok(v) => v,
        Err(e) => {
            close(sync.r);
            close(ctl.w);
            return Err(format!("container {}: {}", plan.id, e));
        }
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
    if prepared.new_user_ns {
        if let Err(e) = write_id_maps(pid, &plan, ctl.w) {
            // SAFETY: the child is ours; the reaper reports its exit.
            unsafe { sys::pidfd_send_signal(pidfd, libc::SIGKILL) };
            close(sync.r);
            close(ctl.w);
            return Err(format!("container {}: {}", plan.id, e));
        }
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
