//! Burrow's native layer, loaded by the shim through ffi-rs. It does what JavaScript cannot:
//! clone into namespaces, mount and pivot_root, set credentials, and reap exactly the children
//! it cloned. All unsafe code of the project lives in this crate.
//!
//! Calling convention for ffi-rs: inputs are C strings and numbers; results are an i32 (≥ 0 ok,
//! < 0 a negated errno or -1) plus text written into a caller-owned buffer, because returning
//! a C string through ffi-rs leaks it.

/// `c"..."` literals need Rust 1.77; Debian 12's rustc is 1.63.
macro_rules! cstr {
    ($s:literal) => {
        {
            // SAFETY: concat! appends the only NUL; the literals passed here have none inside.
            #[allow(unused_unsafe)]
            let s: &'static std::ffi::CStr =
                unsafe { std::ffi::CStr::from_bytes_with_nul_unchecked(concat!($s, "\0").as_bytes()) };
            s
        }
    };
}

mod child;
mod control;
mod devicefilter;
mod hooks;
mod hostmount;
mod mountinfo;
mod oom;
mod plan;
mod prepared;
mod reaper;
mod relay;
mod report;
mod seccomp;
mod spawn;
mod sys;

use libc::{c_char, c_int};
use std::ffi::CStr;
use std::panic::catch_unwind;

/// Copies `text` into the caller's buffer, NUL-terminated and truncated to fit.
fn write_out(out: *mut u8, out_len: c_int, text: &str) {
    if out.is_null() || out_len <= 0 {
        return;
    }
    let n = text.len().min(out_len as usize - 1);
    // SAFETY: the caller guarantees `out` holds `out_len` bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), out, n);
        *out.add(n) = 0;
    }
}

/// # Safety
/// `p` must be null or a valid NUL-terminated string.
unsafe fn cstr<'a>(p: *const c_char) -> &'a CStr {
    if p.is_null() {
        cstr!("")
    } else {
        CStr::from_ptr(p)
    }
}

/// Spawns a container process from a JSON LaunchPlan. Returns the pid and writes
/// `{"pid":…,"syncFd":…,"controlFd":…}` to `out`; on failure returns -1 and writes the message.
#[no_mangle]
pub extern "C" fn burrow_spawn(plan_json: *const c_char, out: *mut u8, out_len: c_int) -> c_int {
    let r = catch_unwind(|| {
        // SAFETY: ffi-rs passes a valid C string.
        let plan = unsafe { cstr(plan_json) }.to_str().map_err(|_| "launch plan is not UTF-8".to_string())?;
        spawn::spawn(plan)
    });
    match r {
        Ok(Ok(s)) => {
            write_out(
                out,
                out_len,
                &format!("{{\"pid\":{},\"syncFd\":{},\"controlFd\":{}}}", s.pid, s.sync_fd, s.control_fd),
            );
            s.pid
        }
        Ok(Err(e)) => {
            write_out(out, out_len, &e);
            -1
        }
        Err(_) => {
            write_out(out, out_len, "panic in burrow_spawn");
            -1
        }
    }
}

/// Starts the reaper (once) and returns the read end of its exit-record pipe, or -1.
#[no_mangle]
pub extern "C" fn burrow_reaper_fd() -> c_int {
    match catch_unwind(reaper::reaper) {
        Ok(Ok(r)) => r.notify_r,
        _ => -1,
    }
}

/// Signals a child spawned by burrow_spawn through its pidfd. 0, or -errno (-ESRCH once reaped).
#[no_mangle]
pub extern "C" fn burrow_signal(pid: c_int, sig: c_int) -> c_int {
    match catch_unwind(|| reaper::reaper().map(|r| r.signal(pid, sig))) {
        Ok(Ok(rc)) => rc,
        _ => -libc::ESRCH,
    }
}

/// Duplicates fd `fd` of our child `pid` into the shim (its pty master). The new fd, or -errno.
#[no_mangle]
pub extern "C" fn burrow_take_fd(pid: c_int, fd: c_int) -> c_int {
    match catch_unwind(|| reaper::reaper().map(|r| r.take_fd(pid, fd))) {
        Ok(Ok(rc)) => rc,
        _ => -libc::ESRCH,
    }
}

/// Starts a thread copying pty master ↔ FIFOs; it owns (and closes) the three fds. 0 or -1.
#[no_mangle]
pub extern "C" fn burrow_pty_relay(master: c_int, stdin: c_int, stdout: c_int) -> c_int {
    match catch_unwind(|| relay::start(master, stdin, stdout)) {
        Ok(Ok(())) => 0,
        _ => -1,
    }
}

/// TIOCSWINSZ on a pty master. 0 or -errno.
#[no_mangle]
pub extern "C" fn burrow_resize_pty(master: c_int, cols: c_int, rows: c_int) -> c_int {
    let ws = libc::winsize { ws_row: rows as u16, ws_col: cols as u16, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: ioctl on an fd the caller owns, with a valid winsize.
    if unsafe { libc::ioctl(master, libc::TIOCSWINSZ, &ws) } < 0 {
        -sys::errno()
    } else {
        0
    }
}

/// Number of live children tracked by the reaper (diagnostics and leak tests).
#[no_mangle]
pub extern "C" fn burrow_tracked_children() -> c_int {
    reaper::reaper().map(|r| r.tracked() as c_int).unwrap_or(0)
}

/// mount(2) in the shim's namespace; `chdir` non-empty runs it from that directory. 0 or -errno.
#[no_mangle]
pub extern "C" fn burrow_mount(
    source: *const c_char,
    target: *const c_char,
    fstype: *const c_char,
    flags: i64,
    data: *const c_char,
    chdir: *const c_char,
) -> c_int {
    catch_unwind(|| {
        // SAFETY: ffi-rs passes valid C strings.
        let (s, t, f, d, c) = unsafe { (cstr(source), cstr(target), cstr(fstype), cstr(data), cstr(chdir)) };
        let dir = if c.to_bytes().is_empty() { None } else { Some(c) };
        hostmount::mount(s, t, f, flags as u64, d, dir)
    })
    .unwrap_or(-libc::EIO)
}

/// umount2(2). 0 or -errno.
#[no_mangle]
pub extern "C" fn burrow_umount(target: *const c_char, flags: c_int) -> c_int {
    // SAFETY: ffi-rs passes a valid C string.
    catch_unwind(|| hostmount::umount(unsafe { cstr(target) }, flags)).unwrap_or(-libc::EIO)
}

/// Starts the cgroup v1 OOM monitor (once) and returns the read end of its record pipe, or -1.
#[no_mangle]
pub extern "C" fn burrow_oom_fd() -> c_int {
    match catch_unwind(oom::monitor) {
        Ok(Ok(m)) => m.notify_r,
        _ => -1,
    }
}

/// Registers an eventfd on `dir`/memory.oom_control (a cgroup v1 memory cgroup) with the OOM
/// monitor. Returns its token (≥ 0), or -errno with the failed step written to `out`.
#[no_mangle]
pub extern "C" fn burrow_oom_register(dir: *const c_char, out: *mut u8, out_len: c_int) -> c_int {
    // SAFETY: ffi-rs passes a valid C string.
    let r = catch_unwind(|| oom::monitor().map(|m| m.register(unsafe { cstr(dir) })));
    match r {
        Ok(Ok(Ok(token))) => token as c_int,
        Ok(Ok(Err((rc, step)))) => {
            write_out(out, out_len, step);
            rc
        }
        Ok(Err(e)) => {
            write_out(out, out_len, &e);
            -libc::EIO
        }
        Err(_) => {
            write_out(out, out_len, "panic in burrow_oom_register");
            -libc::EIO
        }
    }
}

/// Stops watching a registration (closes its eventfd). 0, or -ENOENT if it is not registered.
#[no_mangle]
pub extern "C" fn burrow_oom_unregister(token: c_int) -> c_int {
    match catch_unwind(|| oom::monitor().map(|m| m.unregister(token as u32))) {
        Ok(Ok(rc)) => rc,
        _ => -libc::ENOENT,
    }
}

/// Number of live OOM registrations (leak tests).
#[no_mangle]
pub extern "C" fn burrow_oom_registered() -> c_int {
    oom::monitor().map(|m| m.registered() as c_int).unwrap_or(0)
}

/// Makes the cgroup v2 directory `dir`'s device rules those of `filter_json` (the sandbox's
/// reduced rule set: defaultAllow + exceptions) with an eBPF device program, replacing the one
/// attached before. Returns the new program's id (≥ 0), or -errno with the failed step in `out`.
#[no_mangle]
pub extern "C" fn burrow_cgroup_device_filter(dir: *const c_char, filter_json: *const c_char, out: *mut u8, out_len: c_int) -> c_int {
    let r = catch_unwind(|| {
        // SAFETY: ffi-rs passes valid C strings.
        let (dir, json) = unsafe { (cstr(dir).to_string_lossy().into_owned(), cstr(filter_json).to_string_lossy().into_owned()) };
        let filter: devicefilter::DeviceFilter =
            serde_json::from_str(&json).map_err(|e| (-libc::EINVAL, format!("invalid device filter: {}", e)))?;
        devicefilter::apply(&dir, &filter)
    });
    match r {
        Ok(Ok(id)) => id as c_int,
        Ok(Err((rc, text))) => {
            write_out(out, out_len, &text);
            rc
        }
        Err(_) => {
            write_out(out, out_len, "panic in burrow_cgroup_device_filter");
            -libc::EIO
        }
    }
}

/// Writes the ids of the device programs attached to the cgroup `dir` (space-separated) into
/// `out`. 0, or -errno with the reason in `out`.
#[no_mangle]
pub extern "C" fn burrow_cgroup_device_programs(dir: *const c_char, out: *mut u8, out_len: c_int) -> c_int {
    // SAFETY: ffi-rs passes a valid C string.
    let r = catch_unwind(|| devicefilter::attached(&unsafe { cstr(dir) }.to_string_lossy()));
    match r {
        Ok(Ok(ids)) => {
            let text: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
            write_out(out, out_len, &text.join(" "));
            0
        }
        Ok(Err((rc, text))) => {
            write_out(out, out_len, &text);
            rc
        }
        Err(_) => -libc::EIO,
    }
}

/// 1 if a bpf program with this id exists, 0 if not, -errno on error.
#[no_mangle]
pub extern "C" fn burrow_bpf_program_exists(id: c_int) -> c_int {
    match catch_unwind(|| devicefilter::exists(id as u32)) {
        Ok(Ok(true)) => 1,
        Ok(Ok(false)) => 0,
        Ok(Err((rc, _))) => rc,
        Err(_) => -libc::EIO,
    }
}
