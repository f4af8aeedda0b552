//! The part of libseccomp's C API (seccomp.h, 2.5) Burrow uses, declared by hand: no crate
//! beyond Debian's packaged ones is available. Linked by build.rs.

use libc::{c_char, c_int, c_uint, c_void};

/// `scmp_filter_ctx`.
pub type Ctx = *mut c_void;

/// `struct scmp_arg_cmp` (`enum scmp_compare` is an int).
#[repr(C)]
pub struct ArgCmp {
    pub arg: c_uint,
    pub op: c_int,
    pub datum_a: u64,
    pub datum_b: u64,
}

/// `enum scmp_compare`.
pub const SCMP_CMP_NE: c_int = 1;
pub const SCMP_CMP_LT: c_int = 2;
pub const SCMP_CMP_LE: c_int = 3;
pub const SCMP_CMP_EQ: c_int = 4;
pub const SCMP_CMP_GE: c_int = 5;
pub const SCMP_CMP_GT: c_int = 6;
pub const SCMP_CMP_MASKED_EQ: c_int = 7;

/// `enum scmp_filter_attr`: the filter optimization level (2 = binary tree).
pub const SCMP_FLTATR_CTL_OPTIMIZE: c_int = 8;

/// Actions (`SCMP_ACT_*`); ERRNO and TRACE carry 16 bits of data.
pub const SCMP_ACT_KILL_PROCESS: u32 = 0x8000_0000;
pub const SCMP_ACT_KILL_THREAD: u32 = 0x0000_0000;
pub const SCMP_ACT_TRAP: u32 = 0x0003_0000;
pub const SCMP_ACT_ERRNO: u32 = 0x0005_0000;
pub const SCMP_ACT_TRACE: u32 = 0x7ff0_0000;
pub const SCMP_ACT_LOG: u32 = 0x7ffc_0000;
pub const SCMP_ACT_ALLOW: u32 = 0x7fff_0000;

/// Architecture tokens that are not the kernel's AUDIT_ARCH_* value or need special cases.
pub const SCMP_ARCH_X32: u32 = 0x4000_003e; // EM_X86_64 | __AUDIT_ARCH_LE, not a kernel value
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub const SCMP_ARCH_S390: u32 = 0x0000_0016;
pub const SCMP_ARCH_S390X: u32 = 0x8000_0016;

/// seccomp_syscall_resolve_name*: the name is unknown.
pub const NR_SCMP_ERROR: c_int = -1;

extern "C" {
    pub fn seccomp_api_get() -> c_uint;
    pub fn seccomp_init(def_action: u32) -> Ctx;
    pub fn seccomp_release(ctx: Ctx);
    pub fn seccomp_arch_resolve_name(arch_name: *const c_char) -> u32;
    pub fn seccomp_arch_native() -> u32;
    pub fn seccomp_arch_add(ctx: Ctx, arch_token: u32) -> c_int;
    pub fn seccomp_attr_set(ctx: Ctx, attr: c_int, value: u32) -> c_int;
    pub fn seccomp_syscall_resolve_name(name: *const c_char) -> c_int;
    pub fn seccomp_syscall_resolve_name_arch(arch_token: u32, name: *const c_char) -> c_int;
    pub fn seccomp_rule_add_array(
        ctx: Ctx,
        action: u32,
        syscall: c_int,
        arg_cnt: c_uint,
        arg_array: *const ArgCmp,
    ) -> c_int;
    pub fn seccomp_export_bpf(ctx: Ctx, fd: c_int) -> c_int;
}
