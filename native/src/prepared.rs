//! Converts a LaunchPlan into C strings and pointer arrays before the clone, because the child
//! may not allocate: after a fork-like clone of a multithreaded process, the allocator's locks
//! may be held by threads that do not exist in the child.

use crate::plan::{CapabilityPlan, DeviceOp, HookOp, LaunchPlan, MountOp, SymlinkOp};
use std::ffi::CString;
use std::os::raw::c_char;

pub struct PreparedMount {
    pub source: CString,
    pub target: CString,
    pub fstype: CString,
    pub data: CString,
    pub flags: u64,
    pub remount_flags: u64,
    pub propagation: Vec<u64>,
    pub file_target: bool,
    pub keep_mode: bool,
    pub has_data: bool,
}

pub struct PreparedDevice {
    pub path: CString,
    pub mode: u32,
    pub dev: libc::dev_t,
    pub uid: u32,
    pub gid: u32,
}

pub struct PreparedSymlink {
    pub target: CString,
    pub path: CString,
}

/// Capability sets as bitmasks, limited to what the running kernel knows.
pub struct PreparedCaps {
    pub bounding: u64,
    pub effective: u64,
    pub inheritable: u64,
    pub permitted: u64,
    pub ambient: u64,
}

pub struct PreparedHook {
    pub path: CString,
    #[allow(dead_code)] // owns the strings argv points into
    pub args: Vec<CString>,
    #[allow(dead_code)] // owns the strings envp points into
    pub env: Vec<CString>,
    pub argv: Vec<*const c_char>,
    pub envp: Vec<*const c_char>,
    pub timeout_secs: u64,
}

pub struct Prepared {
    pub join_namespaces: Vec<(u64, CString)>,
    pub rootfs: Option<CString>,
    pub root_propagation: u64,
    pub root_propagation_after_pivot: u64,
    pub readonly_root: bool,
    pub mounts: Vec<PreparedMount>,
    pub devices: Vec<PreparedDevice>,
    pub symlinks: Vec<PreparedSymlink>,
    pub masked_paths: Vec<CString>,
    pub readonly_paths: Vec<CString>,
    pub hostname: Option<CString>,
    pub domainname: Option<CString>,
    pub cwd: CString,
    pub argv0: CString,
    pub path_env: CString,
    /// Own the strings argv/envp point into.
    #[allow(dead_code)]
    pub args: Vec<CString>,
    #[allow(dead_code)]
    pub env: Vec<CString>,
    pub argv: Vec<*const c_char>,
    pub envp: Vec<*const c_char>,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<libc::gid_t>,
    pub umask: libc::mode_t,
    pub caps: Option<PreparedCaps>,
    pub rlimits: Vec<(u32, libc::rlimit64)>,
    pub no_new_privileges: bool,
    /// The decimal text to write to /proc/self/oom_score_adj.
    pub oom_score_adj: Option<CString>,
    pub stdio: [i32; 3],
    pub wait_for_start: bool,
    pub terminal: bool,
    pub console_rows: u16,
    pub console_cols: u16,
    /// The child unshares a new user namespace itself (after its joins) and waits for the
    /// shim to write its maps.
    pub new_user_ns: bool,
    /// A user namespace is new or joined: the clone creates no namespace and the child makes
    /// them in runc's order — joins (user first), then a new user namespace, then the others
    /// by unshare, so that each is owned by the container's user namespace. See child.rs.
    pub staged: bool,
    /// Staged: CLONE_NEW* flags the child unshares after the user namespace (not pid).
    pub unshare_flags: u64,
    /// Staged with a new pid namespace: the child forks the container's init into it.
    pub fork_pid_ns: bool,
    /// Staged with a new cgroup namespace: the child asks the shim to put it in the
    /// container's cgroup and waits for that before it unshares (spawn.rs, control.rs).
    pub join_cgroup_first: bool,
    pub sysctl: Vec<(CString, CString)>,
    pub personality: Option<u64>,
    pub pause_before_pivot: bool,
    pub create_container_hooks: Vec<PreparedHook>,
    pub start_container_hooks: Vec<PreparedHook>,
    /// The compiled seccomp filter the child loads (see child.rs for when).
    pub seccomp: Option<crate::seccomp::PreparedSeccomp>,
}

// SAFETY: the raw pointers in argv/envp point into CStrings owned by the same struct, which is
// only read (never mutated) while it is shared with the thread that clones a pid-joining child.
unsafe impl Sync for Prepared {}

fn cstring(what: &str, s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("{} {:?} contains a NUL byte", what, s))
}

/// Relative form of an absolute in-container path ("/dev/pts" → "dev/pts").
fn relative(what: &str, p: &str) -> Result<CString, String> {
    if !p.starts_with('/') {
        return Err(format!("{} {:?} must be an absolute path", what, p));
    }
    let trimmed = p.trim_start_matches('/');
    cstring(what, if trimmed.is_empty() { "." } else { trimmed })
}

fn prepare_mount(m: &MountOp) -> Result<PreparedMount, String> {
    Ok(PreparedMount {
        source: cstring("mount source", &m.source)?,
        target: relative("mount destination", &m.target)?,
        fstype: cstring("mount type", &m.fstype)?,
        data: cstring("mount options", &m.data)?,
        has_data: !m.data.is_empty(),
        flags: m.flags,
        remount_flags: m.remount_flags,
        propagation: m.propagation.clone(),
        file_target: m.file_target,
        keep_mode: m.keep_mode,
    })
}

fn prepare_device(d: &DeviceOp) -> Result<PreparedDevice, String> {
    Ok(PreparedDevice {
        path: relative("device path", &d.path)?,
        mode: d.mode,
        dev: libc::makedev(d.major as u32, d.minor as u32),
        uid: d.uid,
        gid: d.gid,
    })
}

fn prepare_symlink(s: &SymlinkOp) -> Result<PreparedSymlink, String> {
    Ok(PreparedSymlink {
        target: cstring("symlink target", &s.target)?,
        path: relative("symlink path", &s.path)?,
    })
}

fn cap_last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

fn prepare_caps(c: &CapabilityPlan) -> PreparedCaps {
    let last = cap_last_cap();
    // Capabilities the kernel does not know are dropped, as runc does (with a warning there).
    let mask = |bits: &[u32]| bits.iter().filter(|&&b| b <= last && b < 64).fold(0u64, |m, &b| m | (1u64 << b));
    PreparedCaps {
        bounding: mask(&c.bounding),
        effective: mask(&c.effective),
        inheritable: mask(&c.inheritable),
        permitted: mask(&c.permitted),
        ambient: mask(&c.ambient),
    }
}

fn rlim(v: f64) -> u64 {
    if v >= u64::MAX as f64 || v < 0.0 {
        u64::MAX // RLIM64_INFINITY
    } else {
        v as u64
    }
}

fn prepare_hook(h: &HookOp) -> Result<PreparedHook, String> {
    let args = h.args.iter().map(|a| cstring("hook argument", a)).collect::<Result<Vec<_>, _>>()?;
    let env = h.env.iter().map(|e| cstring("hook environment entry", e)).collect::<Result<Vec<_>, _>>()?;
    let mut argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    Ok(PreparedHook { path: cstring("hook path", &h.path)?, args, env, argv, envp, timeout_secs: h.timeout })
}

fn relative_all(what: &str, paths: &[String]) -> Result<Vec<CString>, String> {
    paths.iter().map(|p| relative(what, p)).collect()
}

pub fn prepare(plan: &LaunchPlan) -> Result<Prepared, String> {
    if plan.args.is_empty() {
        return Err("process.args must not be empty".into());
    }
    for fd in plan.stdio.iter() {
        // fds 0-2 belong to the shim itself; a stdio source there would be clobbered by dup2.
        if *fd >= 0 && *fd < 3 {
            return Err(format!("stdio fd {} collides with the shim's own stdio", fd));
        }
    }
    let args = plan
        .args
        .iter()
        .map(|a| cstring("argument", a))
        .collect::<Result<Vec<_>, _>>()?;
    let env = plan
        .env
        .iter()
        .map(|e| cstring("environment entry", e))
        .collect::<Result<Vec<_>, _>>()?;
    let mut argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    let path_env = plan
        .env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    Ok(Prepared {
        join_namespaces: plan
            .join_namespaces
            .iter()
            .map(|j| Ok((j.flag, cstring("namespace path", &j.path)?)))
            .collect::<Result<Vec<_>, String>>()?,
        rootfs: match &plan.rootfs {
            Some(r) => Some(cstring("rootfs", r)?),
            None => None,
        },
        root_propagation: plan.root_propagation,
        root_propagation_after_pivot: plan.root_propagation_after_pivot,
        readonly_root: plan.readonly_root,
        mounts: plan.mounts.iter().map(prepare_mount).collect::<Result<_, _>>()?,
        devices: plan.devices.iter().map(prepare_device).collect::<Result<_, _>>()?,
        symlinks: plan.symlinks.iter().map(prepare_symlink).collect::<Result<_, _>>()?,
        masked_paths: relative_all("masked path", &plan.masked_paths)?,
        readonly_paths: relative_all("readonly path", &plan.readonly_paths)?,
        hostname: match &plan.hostname {
            Some(h) => Some(cstring("hostname", h)?),
            None => None,
        },
        domainname: match &plan.domainname {
            Some(d) => Some(cstring("domainname", d)?),
            None => None,
        },
        cwd: cstring("cwd", &plan.cwd)?,
        argv0: args[0].clone(),
        path_env: cstring("PATH", path_env)?,
        args,
        env,
        argv,
        envp,
        uid: plan.uid,
        gid: plan.gid,
        groups: plan.additional_gids.clone(),
        umask: plan.umask as libc::mode_t,
        caps: plan.capabilities.as_ref().map(prepare_caps),
        rlimits: plan
            .rlimits
            .iter()
            .map(|r| (r.resource, libc::rlimit64 { rlim_cur: rlim(r.soft), rlim_max: rlim(r.hard) }))
            .collect(),
        no_new_privileges: plan.no_new_privileges,
        oom_score_adj: match plan.oom_score_adj {
            Some(v) => Some(cstring("oomScoreAdj", &v.to_string())?),
            None => None,
        },
        stdio: plan.stdio,
        wait_for_start: plan.wait_for_start,
        terminal: plan.terminal,
        console_rows: plan.console_rows,
        console_cols: plan.console_cols,
        new_user_ns: plan.clone_flags & libc::CLONE_NEWUSER as u64 != 0,
        staged: staged(plan),
        unshare_flags: plan.clone_flags & !((libc::CLONE_NEWUSER | libc::CLONE_NEWPID) as u64),
        fork_pid_ns: staged(plan) && plan.clone_flags & libc::CLONE_NEWPID as u64 != 0,
        join_cgroup_first: cgroup_first(plan),
        sysctl: plan
            .sysctl
            .iter()
            .map(|s| Ok((relative("sysctl path", &s.path)?, cstring("sysctl value", &s.value)?)))
            .collect::<Result<_, String>>()?,
        personality: plan.personality,
        pause_before_pivot: plan.pause_before_pivot,
        create_container_hooks: plan.create_container_hooks.iter().map(prepare_hook).collect::<Result<_, _>>()?,
        start_container_hooks: plan.start_container_hooks.iter().map(prepare_hook).collect::<Result<_, _>>()?,
        seccomp: plan.seccomp.as_ref().map(crate::seccomp::prepare).transpose()?,
    })
}

/// Whether the namespaces are made by the child in stages (see `Prepared::staged`): with a
/// user namespace, or with a new cgroup namespace to be rooted at the container's cgroup
/// (clone would root it at the shim's own).
pub fn staged(plan: &LaunchPlan) -> bool {
    let user = libc::CLONE_NEWUSER as u64;
    plan.clone_flags & user != 0 || plan.join_namespaces.iter().any(|j| j.flag == user) || cgroup_first(plan)
}

fn cgroup_first(plan: &LaunchPlan) -> bool {
    plan.clone_flags & libc::CLONE_NEWCGROUP as u64 != 0 && !plan.cgroup_namespace_dirs.is_empty()
}
