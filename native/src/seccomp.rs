//! `linux.seccomp`: the container's seccomp profile, compiled to a BPF program before the clone
//! and loaded by the child with a raw seccomp(2) call.
//!
//! The compilation follows runc (libcontainer/seccomp): libseccomp builds the filter from the
//! profile (the native architecture is always in it, as libseccomp does by itself; syscall names
//! libseccomp does not know are skipped; a rule whose action is the default action is skipped;
//! several conditions on the same argument become one rule each), and runc's -ENOSYS stub
//! (enosys.rs) is prepended so that syscalls newer than the profile fail with ENOSYS instead of
//! the default errno — which is what lets glibc fall back from e.g. clone3 to clone.
//!
//! Everything that allocates or calls into libseccomp happens in `prepare`; the child only
//! calls `load_in_child`, one syscall on memory prepared here.

mod enosys;
mod ffi;

use crate::report::Report;
use crate::sys::errno;
use libc::{c_int, c_uint, c_ulong};
use serde::Deserialize;
use std::ffi::CString;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::io::FromRawFd;

/// The filter as validated and converted by shim/sandbox/seccomp.ts: one rule per syscall name.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeccompPlan {
    pub default_action: Action,
    /// The errno of SCMP_ACT_ERRNO (and the message of SCMP_ACT_TRACE); EPERM when absent.
    pub default_errno_ret: Option<u32>,
    /// OCI names (SCMP_ARCH_X86_64…); the native architecture is added in any case.
    #[serde(default)]
    pub architectures: Vec<String>,
    /// OCI flag names; absent (None) = the spec has no flags field: runc's default applies.
    pub flags: Option<Vec<Flag>>,
    #[serde(default)]
    pub syscalls: Vec<SyscallRule>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyscallRule {
    pub name: String,
    pub action: Action,
    pub errno_ret: Option<u32>,
    #[serde(default)]
    pub args: Vec<ArgRule>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArgRule {
    pub index: u32,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: Op,
}

/// SCMP_ACT_NOTIFY is refused by the TypeScript layer (no seccomp agent support).
#[derive(Deserialize, Debug, Clone, Copy, PartialEq)]
pub enum Action {
    #[serde(rename = "SCMP_ACT_KILL")]
    Kill,
    #[serde(rename = "SCMP_ACT_KILL_THREAD")]
    KillThread,
    #[serde(rename = "SCMP_ACT_KILL_PROCESS")]
    KillProcess,
    #[serde(rename = "SCMP_ACT_TRAP")]
    Trap,
    #[serde(rename = "SCMP_ACT_ERRNO")]
    Errno,
    #[serde(rename = "SCMP_ACT_TRACE")]
    Trace,
    #[serde(rename = "SCMP_ACT_ALLOW")]
    Allow,
    #[serde(rename = "SCMP_ACT_LOG")]
    Log,
}

#[derive(Deserialize, Debug, Clone, Copy)]
pub enum Op {
    #[serde(rename = "SCMP_CMP_NE")]
    Ne,
    #[serde(rename = "SCMP_CMP_LT")]
    Lt,
    #[serde(rename = "SCMP_CMP_LE")]
    Le,
    #[serde(rename = "SCMP_CMP_EQ")]
    Eq,
    #[serde(rename = "SCMP_CMP_GE")]
    Ge,
    #[serde(rename = "SCMP_CMP_GT")]
    Gt,
    #[serde(rename = "SCMP_CMP_MASKED_EQ")]
    MaskedEq,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq)]
pub enum Flag {
    #[serde(rename = "SECCOMP_FILTER_FLAG_TSYNC")]
    Tsync,
    #[serde(rename = "SECCOMP_FILTER_FLAG_LOG")]
    Log,
    #[serde(rename = "SECCOMP_FILTER_FLAG_SPEC_ALLOW")]
    SpecAllow,
}

/// `struct sock_filter`: one classic BPF instruction.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const SockFilter,
}

/// The compiled filter, ready for seccomp(SECCOMP_SET_MODE_FILTER, flags, …) in the child.
pub struct PreparedSeccomp {
    pub filter: Vec<SockFilter>,
    /// SECCOMP_FILTER_FLAG_* bits.
    pub flags: c_ulong,
}

const SECCOMP_SET_MODE_FILTER: c_uint = 1;
const SECCOMP_FILTER_FLAG_LOG: c_ulong = 2;
const SECCOMP_FILTER_FLAG_SPEC_ALLOW: c_ulong = 4;
/// The kernel refuses longer programs (BPF_MAXINSNS).
const BPF_MAXINSNS: usize = 4096;
/// Above this many rules runc asks libseccomp for a binary-tree filter (libseccomp ≤ 2.5.4
/// misbehaves with the optimization and no rules, hence not always).
const OPTIMIZE_ABOVE: usize = 32;

const FIELD: &str = "linux.seccomp";

fn action_value(action: Action, errno_ret: Option<u32>) -> u32 {
    let data = errno_ret.unwrap_or(libc::EPERM as u32) & 0xffff;
    match action {
        // runc maps SCMP_ACT_KILL to killing the thread, libseccomp's own meaning of it.
        Action::Kill | Action::KillThread => ffi::SCMP_ACT_KILL_THREAD,
        Action::KillProcess => ffi::SCMP_ACT_KILL_PROCESS,
        Action::Trap => ffi::SCMP_ACT_TRAP,
        Action::Errno => ffi::SCMP_ACT_ERRNO | data,
        Action::Trace => ffi::SCMP_ACT_TRACE | data,
        Action::Allow => ffi::SCMP_ACT_ALLOW,
        Action::Log => ffi::SCMP_ACT_LOG,
    }
}

fn op_value(op: Op) -> c_int {
    match op {
        Op::Ne => ffi::SCMP_CMP_NE,
        Op::Lt => ffi::SCMP_CMP_LT,
        Op::Le => ffi::SCMP_CMP_LE,
        Op::Eq => ffi::SCMP_CMP_EQ,
        Op::Ge => ffi::SCMP_CMP_GE,
        Op::Gt => ffi::SCMP_CMP_GT,
        Op::MaskedEq => ffi::SCMP_CMP_MASKED_EQ,
    }
}

fn os_error(rc: c_int) -> std::io::Error {
    std::io::Error::from_raw_os_error(-rc)
}

fn cstring(what: &str, s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("{}: {} {:?} contains a NUL byte", FIELD, what, s))
}

/// A libseccomp filter context, released on drop.
struct Filter(ffi::Ctx);

impl Drop for Filter {
    fn drop(&mut self) {
        // SAFETY: the context came from seccomp_init and is released once.
        unsafe { ffi::seccomp_release(self.0) };
    }
}

/// libseccomp's token of an OCI architecture name: SCMP_ARCH_X86_64 → "x86_64".
fn arch_token(oci: &str) -> Result<u32, String> {
    let name = oci
        .strip_prefix("SCMP_ARCH_")
        .ok_or_else(|| format!("{}.architectures: {:?} is not an SCMP_ARCH_* name", FIELD, oci))?
        .to_ascii_lowercase();
    let c = cstring("architecture", &name)?;
    // SAFETY: valid C string.
    let token = unsafe { ffi::seccomp_arch_resolve_name(c.as_ptr()) };
    if token == 0 {
        return Err(format!("{}.architectures: {} is not known to libseccomp", FIELD, oci));
    }
    Ok(token)
}

/// SECCOMP_FILTER_FLAG_* bits for the plan. TSYNC is accepted and not passed: it synchronizes
/// the filter to the caller's other threads, and the cloned child has none.
fn filter_flags(plan: &SeccompPlan, api: c_uint) -> Result<c_ulong, String> {
    let flags = match &plan.flags {
        Some(flags) => flags,
        // No flags field at all: SPEC_ALLOW when the kernel and libseccomp support it, as
        // runc (≥ 1.2) and crun do — the SSB mitigation seccomp would otherwise force costs a
        // lot of performance and is not what the profile asked for.
        None => return Ok(if api >= 4 { SECCOMP_FILTER_FLAG_SPEC_ALLOW } else { 0 }),
    };
    let mut bits = 0;
    for f in flags {
        match f {
            Flag::Tsync => {}
            Flag::Log if api >= 3 => bits |= SECCOMP_FILTER_FLAG_LOG,
            Flag::SpecAllow if api >= 4 => bits |= SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            _ => {
                return Err(format!(
                    "{}.flags: {:?} is not supported by this kernel or libseccomp (API level {})",
                    FIELD, f, api
                ))
            }
        }
    }
    Ok(bits)
}

fn add_rule(f: &Filter, rule: &SyscallRule, default: u32) -> Result<(), String> {
    let action = action_value(rule.action, rule.errno_ret);
    // A rule that does what the default does is redundant (and libseccomp refuses it).
    if action == default {
        return Ok(());
    }
    let name = cstring("syscall name", &rule.name)?;
    // SAFETY: valid C string.
    let nr = unsafe { ffi::seccomp_syscall_resolve_name(name.as_ptr()) };
    if nr == ffi::NR_SCMP_ERROR {
        // Not a syscall of this architecture or too new for libseccomp: runc skips it too, so
        // one profile serves every architecture and kernel.
        return Ok(());
    }
    let conds: Vec<ffi::ArgCmp> = rule
        .args
        .iter()
        .map(|a| ffi::ArgCmp { arg: a.index, op: op_value(a.op), datum_a: a.value, datum_b: a.value_two })
        .collect();
    let mut seen = [0u32; 6];
    for a in rule.args.iter() {
        if a.index as usize >= seen.len() {
            return Err(format!("{}: syscall {}: argument index {} is not 0 to 5", FIELD, rule.name, a.index));
        }
        seen[a.index as usize] += 1;
    }
    // Conditions all on different arguments make one rule (all must match); when one argument
    // is tested twice, runc adds one rule per condition (any may match): libseccomp cannot
    // combine two tests of the same argument in one rule.
    let groups: Vec<&[ffi::ArgCmp]> = if seen.iter().any(|&n| n > 1) {
        conds.chunks(1).collect()
    } else {
        vec![&conds[..]]
    };
    for g in groups {
        // SAFETY: g points to g.len() valid scmp_arg_cmp structs (or none).
        let rc = unsafe { ffi::seccomp_rule_add_array(f.0, action, nr, g.len() as c_uint, g.as_ptr()) };
        if rc < 0 {
            return Err(format!("{}: add rule for syscall {}: {}", FIELD, rule.name, os_error(rc)));
        }
    }
    Ok(())
}

/// seccomp_export_bpf into a memfd, read back as instructions.
fn export(f: &Filter) -> Result<Vec<SockFilter>, String> {
    // SAFETY: memfd_create with a static name; the fd is owned by `file` right after.
    let fd = unsafe { libc::memfd_create(cstr!("burrow-seccomp").as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(format!("{}: memfd_create: {}", FIELD, std::io::Error::last_os_error()));
    }
    // SAFETY: fd is a fresh fd we own.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    // SAFETY: valid context and fd.
    let rc = unsafe { ffi::seccomp_export_bpf(f.0, fd) };
    if rc < 0 {
        return Err(format!("{}: export BPF: {}", FIELD, os_error(rc)));
    }
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(|e| format!("{}: read exported BPF: {}", FIELD, e))?;
    if bytes.len() % 8 != 0 {
        return Err(format!("{}: exported BPF is {} bytes, not whole instructions", FIELD, bytes.len()));
    }
    // libseccomp writes host-endian struct sock_filter.
    Ok(bytes
        .chunks_exact(8)
        .map(|b| SockFilter {
            code: u16::from_ne_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
        })
        .collect())
}

/// Compiles the profile. Runs in the shim before the clone (allocates, calls libseccomp).
pub fn prepare(plan: &SeccompPlan) -> Result<PreparedSeccomp, String> {
    // SAFETY: plain query, no arguments.
    let api = unsafe { ffi::seccomp_api_get() };
    let flags = filter_flags(plan, api)?;
    let default = action_value(plan.default_action, plan.default_errno_ret);
    // SAFETY: seccomp_init has no preconditions; NULL on failure.
    let ctx = unsafe { ffi::seccomp_init(default) };
    if ctx.is_null() {
        return Err(format!(
            "{}.defaultAction: libseccomp refused {:?} (not supported by this kernel?)",
            FIELD, plan.default_action
        ));
    }
    let filter = Filter(ctx);
    // SAFETY: plain query.
    let native = unsafe { ffi::seccomp_arch_native() };
    let mut tokens = vec![native];
    for a in plan.architectures.iter() {
        let token = arch_token(a)?;
        // SAFETY: valid context. EEXIST: already there (the native one) — nothing to do.
        let rc = unsafe { ffi::seccomp_arch_add(filter.0, token) };
        if rc < 0 && rc != -libc::EEXIST {
            return Err(format!("{}.architectures: add {}: {}", FIELD, a, os_error(rc)));
        }
        if !tokens.contains(&token) {
            tokens.push(token);
        }
    }
    if plan.syscalls.len() > OPTIMIZE_ABOVE {
        // SAFETY: valid context. Older libseccomp lacks the attribute: a slower filter, same
        // meaning, so the error is ignored (as runc does).
        unsafe { ffi::seccomp_attr_set(filter.0, ffi::SCMP_FLTATR_CTL_OPTIMIZE, 2) };
    }
    for rule in plan.syscalls.iter() {
        add_rule(&filter, rule, default)?;
    }
    let mut program = if enosys::wanted(plan) { enosys::stub(&tokens, plan)? } else { Vec::new() };
    program.extend(export(&filter)?);
    drop(filter);
    if program.len() > BPF_MAXINSNS {
        return Err(format!(
            "{}: the compiled filter has {} instructions, more than the kernel's limit of {}",
            FIELD,
            program.len(),
            BPF_MAXINSNS
        ));
    }
    Ok(PreparedSeccomp { filter: program, flags })
}

/// Loads the prepared filter into the calling (child) process; on failure reports on `sync`
/// and exits. No allocation: the program and its header live in prepared memory and on the
/// stack.
///
/// # Safety
/// Only in the cloned child, with `s` prepared before the clone.
pub unsafe fn load_in_child(s: &Option<PreparedSeccomp>, sync: c_int) {
    let s = match s {
        Some(s) => s,
        _ => return,
    };
    let prog = SockFprog { len: s.filter.len() as u16, filter: s.filter.as_ptr() };
    if libc::syscall(libc::SYS_seccomp, SECCOMP_SET_MODE_FILTER, s.flags, &prog as *const SockFprog) < 0 {
        Report::new().push_str("load seccomp filter").fail(sync, errno());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(json: &str) -> SeccompPlan {
        serde_json::from_str(json).expect("plan parses")
    }

    #[test]
    fn compiles_a_small_profile_with_arguments() {
        let p = plan(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","defaultErrnoRet":null,"architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
                "flags":null,"syscalls":[
                {"name":"mkdir","action":"SCMP_ACT_ERRNO","errnoRet":1,"args":[]},
                {"name":"personality","action":"SCMP_ACT_ERRNO","errnoRet":null,
                 "args":[{"index":0,"value":8,"valueTwo":0,"op":"SCMP_CMP_EQ"}]},
                {"name":"no_such_syscall_at_all","action":"SCMP_ACT_ERRNO","errnoRet":null,"args":[]}]}"#,
        );
        let s = prepare(&p).expect("prepares");
        assert!(!s.filter.is_empty());
        // Default allow: no -ENOSYS stub, the program starts with libseccomp's arch check.
        assert_eq!(s.filter[0], SockFilter { code: 0x20, jt: 0, jf: 0, k: 4 });
    }

    #[test]
    fn refuses_unknown_architectures() {
        let p = plan(r#"{"defaultAction":"SCMP_ACT_ALLOW","defaultErrnoRet":null,"architectures":["SCMP_ARCH_VAX"],"flags":null}"#);
        let e = prepare(&p).err().expect("fails");
        assert!(e.contains("linux.seccomp.architectures: SCMP_ARCH_VAX"), "{}", e);
    }

    #[test]
    fn refuses_argument_indexes_above_five() {
        let p = plan(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","defaultErrnoRet":null,"flags":[],"syscalls":[
                {"name":"read","action":"SCMP_ACT_ERRNO","errnoRet":null,"args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
        );
        assert!(prepare(&p).err().expect("fails").contains("argument index 6"));
    }

    /// The whole program (stub + libseccomp's filter) loaded the way the child loads it, in a
    /// forked process that only makes raw syscalls and reports through its exit status.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_loaded_filter_allows_refuses_and_answers_enosys_above_the_profile() {
        let p = plan(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":null,"flags":null,"syscalls":[
                {"name":"exit_group","action":"SCMP_ACT_ALLOW","errnoRet":null,"args":[]},
                {"name":"getpid","action":"SCMP_ACT_ALLOW","errnoRet":null,"args":[]},
                {"name":"getppid","action":"SCMP_ACT_ERRNO","errnoRet":13,"args":[]},
                {"name":"umask","action":"SCMP_ACT_ERRNO","errnoRet":22,
                 "args":[{"index":0,"value":63,"valueTwo":0,"op":"SCMP_CMP_EQ"}]}]}"#,
        );
        let s = Some(prepare(&p).expect("prepares"));
        // SAFETY: the forked child makes raw syscalls only and always _exits.
        unsafe {
            let pid = libc::fork();
            assert!(pid >= 0);
            if pid == 0 {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                load_in_child(&s, -1);
                let check = |nr: libc::c_long, arg: libc::c_long, want: c_int| -> bool {
                    let rc = libc::syscall(nr, arg);
                    if want == 0 {
                        rc >= 0
                    } else {
                        rc == -1 && errno() == want
                    }
                };
                let mut bad = 0;
                bad |= (!check(libc::SYS_getpid, 0, 0)) as i32;
                bad |= (!check(libc::SYS_getppid, 0, libc::EACCES) as i32) << 1;
                // Not in the profile, below its largest number (exit_group 231): the default.
                bad |= (!check(libc::SYS_getuid, 0, libc::EPERM) as i32) << 2;
                // Above every syscall the profile names: the stub's ENOSYS.
                bad |= (!check(crate::sys::SYS_CLONE3, 0, libc::ENOSYS) as i32) << 3;
                bad |= (!check(libc::SYS_umask, 63, libc::EINVAL) as i32) << 4;
                // umask(0o22) matches no rule of umask: the default action.
                bad |= (!check(libc::SYS_umask, 0o22, libc::EPERM) as i32) << 5;
                libc::_exit(bad);
            }
            let mut status = 0;
            assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
            assert!(libc::WIFEXITED(status), "child status {:#x}", status);
            assert_eq!(libc::WEXITSTATUS(status), 0, "failed checks (bits): {:#b}", libc::WEXITSTATUS(status));
        }
    }

    #[test]
    fn flags() {
        let mut p = plan(r#"{"defaultAction":"SCMP_ACT_ALLOW","defaultErrnoRet":null,"flags":null}"#);
        assert_eq!(filter_flags(&p, 6).unwrap(), SECCOMP_FILTER_FLAG_SPEC_ALLOW);
        assert_eq!(filter_flags(&p, 2).unwrap(), 0);
        p.flags = Some(vec![Flag::Tsync, Flag::Log]);
        assert_eq!(filter_flags(&p, 6).unwrap(), SECCOMP_FILTER_FLAG_LOG);
        p.flags = Some(vec![]);
        assert_eq!(filter_flags(&p, 6).unwrap(), 0);
        p.flags = Some(vec![Flag::SpecAllow]);
        assert!(filter_flags(&p, 3).is_err());
    }
}
