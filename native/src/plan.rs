//! The launch plan: what the sandbox layer (TypeScript) decided, as data. All policy — which
//! namespaces, which mounts with which flags, default devices — lives in TypeScript where it is
//! unit-tested; this crate only carries the plan out.

use serde::Deserialize;

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LaunchPlan {
    /// Container (or exec) id, used in error messages only.
    pub id: String,
    /// CLONE_NEW* flags of the namespaces to create.
    #[serde(default)]
    pub clone_flags: u64,
    /// Namespaces to join by path, in order (user first, mount last).
    #[serde(default)]
    pub join_namespaces: Vec<NamespaceJoin>,
    /// Host path of the container's root; absent when joining an existing container (exec).
    pub rootfs: Option<String>,
    /// Propagation applied recursively to "/" of the new mount namespace before any mount.
    #[serde(default)]
    pub root_propagation: u64,
    /// Propagation applied to the container's "/" after pivot_root (linux.rootfsPropagation
    /// when shared or unbindable); 0 = none.
    #[serde(default)]
    pub root_propagation_after_pivot: u64,
    #[serde(default)]
    pub readonly_root: bool,
    #[serde(default)]
    pub mounts: Vec<MountOp>,
    #[serde(default)]
    pub devices: Vec<DeviceOp>,
    #[serde(default)]
    pub symlinks: Vec<SymlinkOp>,
    /// Paths hidden from the container (tmpfs over directories, /dev/null over files).
    #[serde(default)]
    pub masked_paths: Vec<String>,
    #[serde(default)]
    pub readonly_paths: Vec<String>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub cwd: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub uid: u32,
    pub gid: u32,
    #[serde(default)]
    pub additional_gids: Vec<u32>,
    pub umask: u32,
    /// Capability bit numbers per set; absent = leave the shim's own sets untouched.
    pub capabilities: Option<CapabilityPlan>,
    #[serde(default)]
    pub rlimits: Vec<RlimitOp>,
    #[serde(default)]
    pub no_new_privileges: bool,
    pub oom_score_adj: Option<i32>,
    /// Host fds for the process's stdin, stdout, stderr; -1 means /dev/null.
    pub stdio: [i32; 3],
    /// Give the process a pty from the container's own devpts as its controlling terminal.
    #[serde(default)]
    pub terminal: bool,
    /// Initial pty size (rows, columns); 0 = leave the kernel's default.
    #[serde(default)]
    pub console_rows: u16,
    #[serde(default)]
    pub console_cols: u16,
    /// Stop before execve until the start pipe is written (the OCI "created" state).
    pub wait_for_start: bool,
    /// Written to /proc/<pid>/{uid,gid}_map by the shim when the plan creates a user namespace.
    #[serde(default)]
    pub uid_mappings: Vec<IdMapping>,
    /// With a new cgroup namespace: host directories of the container's cgroup (one per
    /// hierarchy). The shim puts the child in them before it unshares the namespace, which is
    /// then rooted at the container's cgroup, as runc's init does after its parent's cgroup join.
    #[serde(default)]
    pub cgroup_namespace_dirs: Vec<String>,
    #[serde(default)]
    pub gid_mappings: Vec<IdMapping>,
    /// /proc/sys files (relative to the container root) and the values to write.
    #[serde(default)]
    pub sysctl: Vec<SysctlOp>,
    /// personality(2) execution domain (PER_LINUX, PER_LINUX32).
    pub personality: Option<u64>,
    /// Stop before pivot_root until the shim ran the runtime-namespace hooks (prestart,
    /// createRuntime) and sent the state for the createContainer hooks.
    #[serde(default)]
    pub pause_before_pivot: bool,
    #[serde(default)]
    pub create_container_hooks: Vec<HookOp>,
    #[serde(default)]
    pub start_container_hooks: Vec<HookOp>,
    /// linux.seccomp, compiled to BPF by seccomp.rs before the clone; absent = no filter.
    #[serde(default)]
    pub seccomp: Option<crate::seccomp::SeccompPlan>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespaceJoin {
    /// CLONE_NEW* flag of the namespace type.
    pub flag: u64,
    pub path: String,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MountOp {
    pub source: String,
    /// Absolute path inside the container.
    pub target: String,
    pub fstype: String,
    /// MS_* flags for the first mount(2) call.
    pub flags: u64,
    pub data: String,
    /// For bind mounts: MS_* flags that need a MS_BIND|MS_REMOUNT pass (ro, nosuid, …); 0 = none.
    #[serde(default)]
    pub remount_flags: u64,
    /// Propagation changes (MS_SHARED, MS_PRIVATE, … possibly |MS_REC) applied after mounting.
    #[serde(default)]
    pub propagation: Vec<u64>,
    /// Create a file (not a directory) as the mount point: bind mount of a file.
    #[serde(default)]
    pub file_target: bool,
    /// chmod the new mount's root to the mode of the directory it covers (tmpfs, as runc).
    #[serde(default)]
    pub keep_mode: bool,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeviceOp {
    pub path: String,
    /// Full st_mode: file type bits (S_IFCHR, S_IFBLK, S_IFIFO) | permissions.
    pub mode: u32,
    pub major: u64,
    pub minor: u64,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SymlinkOp {
    /// The link's content.
    pub target: String,
    /// Absolute path of the link inside the container.
    pub path: String,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct CapabilityPlan {
    pub bounding: Vec<u32>,
    pub effective: Vec<u32>,
    pub inheritable: Vec<u32>,
    pub permitted: Vec<u32>,
    pub ambient: Vec<u32>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RlimitOp {
    pub resource: u32,
    /// Numbers above 2^53 arrive as floats from JSON; RLIM_INFINITY is u64::MAX.
    pub soft: f64,
    pub hard: f64,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdMapping {
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SysctlOp {
    /// Absolute path inside the container, e.g. /proc/sys/net/ipv4/ip_forward.
    pub path: String,
    pub value: String,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HookOp {
    pub path: String,
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    /// Seconds; 0 = no timeout.
    #[serde(default)]
    pub timeout: u64,
}
