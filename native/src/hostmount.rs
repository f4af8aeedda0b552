//! Mounts in the shim's own (host) mount namespace: the container's rootfs from the snapshotter.

use crate::sys::errno;
use libc::c_int;
use std::ffi::CStr;

/// mount(2); with `chdir` set, the mount runs in a short-lived child that first changes into
/// that directory — how containerd fits an overlay with many layers into one page of options
/// (lowerdir paths made relative). A child, because the shim's cwd is shared by all threads.
///
/// Returns 0 or -errno.
pub fn mount(
    source: &CStr,
    target: &CStr,
    fstype: &CStr,
    flags: u64,
    data: &CStr,
    chdir: Option<&CStr>,
) -> c_int {
    let data_ptr = if data.to_bytes().is_empty() {
        std::ptr::null()
    } else {
        data.as_ptr() as *const libc::c_void
    };
    let src = if source.to_bytes().is_empty() { std::ptr::null() } else { source.as_ptr() };
    let fst = if fstype.to_bytes().is_empty() { std::ptr::null() } else { fstype.as_ptr() };
    let dir = match chdir {
        Some(dir) => dir,
        None => {
            // SAFETY: all pointers are valid C strings or null.
            let rc = unsafe { libc::mount(src, target.as_ptr(), fst, flags as libc::c_ulong, data_ptr) };
            return if rc < 0 { -errno() } else { 0 };
        }
    };
    // SAFETY: fork-like clone; the child only makes raw syscalls on prepared pointers.
    unsafe {
        let pid = libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_ulong, 0usize, 0usize, 0usize, 0usize);
        if pid < 0 {
            return -errno();
        }
        if pid == 0 {
            if libc::chdir(dir.as_ptr()) < 0 {
                libc::_exit(errno());
            }
            if libc::mount(src, target.as_ptr(), fst, flags as libc::c_ulong, data_ptr) < 0 {
                libc::_exit(errno());
            }
            libc::_exit(0);
        }
        let mut status: c_int = 0;
        // Waiting for this one pid only: it is ours, and libuv never waits for it.
        loop {
            let rc = libc::waitpid(pid as libc::pid_t, &mut status, 0);
            if rc < 0 && errno() == libc::EINTR {
                continue;
            }
            if rc < 0 {
                return -errno();
            }
            break;
        }
        if libc::WIFEXITED(status) {
            -libc::WEXITSTATUS(status)
        } else {
            -libc::EINTR
        }
    }
}

/// umount2(2); returns 0 or -errno.
pub fn umount(target: &CStr, flags: c_int) -> c_int {
    // SAFETY: valid C string.
    let rc = unsafe { libc::umount2(target.as_ptr(), flags) };
    if rc < 0 {
        -errno()
    } else {
        0
    }
}
