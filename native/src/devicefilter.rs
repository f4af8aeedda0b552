//! cgroup v2 device rules: v2 has no devices.allow, so the rules become an eBPF program of type
//! BPF_PROG_TYPE_CGROUP_DEVICE attached to the container's cgroup (BPF_CGROUP_DEVICE), as
//! runc's libcontainer/cgroups/devices (devicefilter + ebpf) does. The instructions are
//! assembled here by hand and loaded with raw bpf(2) calls.
//!
//! The program gets the kernel's struct bpf_cgroup_dev_ctx { u32 access_type; u32 major;
//! u32 minor } in R1 (access_type: device type in the low 16 bits, access in the high ones),
//! tries one block per rule, in order, and returns 1 (allow) or 0 (deny, EPERM for the caller).
//! The rules arrive already reduced (the sandbox's deviceState, runc's emulator): a default
//! action plus exceptions that all take the other action, so their order does not matter.

use crate::sys::errno;
use libc::{c_int, c_long};
use serde::Deserialize;
use std::ffi::CString;

const BPF_PROG_LOAD: c_long = 5;
const BPF_PROG_ATTACH: c_long = 8;
const BPF_PROG_DETACH: c_long = 9;
const BPF_PROG_GET_FD_BY_ID: c_long = 13;
const BPF_OBJ_GET_INFO_BY_FD: c_long = 15;
const BPF_PROG_QUERY: c_long = 16;

const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;
const BPF_F_REPLACE: u32 = 4;

const BPF_DEVCG_ACC_MKNOD: i32 = 1;
const BPF_DEVCG_ACC_READ: i32 = 2;
const BPF_DEVCG_ACC_WRITE: i32 = 4;
const BPF_DEVCG_DEV_BLOCK: i32 = 1;
const BPF_DEVCG_DEV_CHAR: i32 = 2;

// Opcodes (linux/bpf_common.h, linux/bpf.h).
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const ALU32_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const ALU32_MOV_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
const ALU32_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const JMP_JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JMP_JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

/// struct bpf_insn.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Insn {
    pub code: u8,
    /// dst_reg in the low nibble, src_reg in the high one (little-endian bitfields).
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { code, regs: (src << 4) | dst, off, imm }
}

/// One exception of the reduced rule set.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// "c" or "b".
    #[serde(rename = "type")]
    pub kind: String,
    /// -1: any.
    pub major: i64,
    pub minor: i64,
    /// Some of "rwm".
    pub access: String,
}

/// What the sandbox sends: the default action and the exceptions (which take the other one).
#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeviceFilter {
    pub default_allow: bool,
    pub exceptions: Vec<Rule>,
}

/// The program for `f`, as runc's DeviceFilter builds it.
pub fn assemble(f: &DeviceFilter) -> Result<Vec<Insn>, String> {
    let mut p = vec![
        // R2 <- device type (low 16 bits of access_type)
        insn(LDX_MEM_W, R2, R1, 0, 0),
        insn(ALU32_AND_K, R2, 0, 0, 0xFFFF),
        // R3 <- access (high 16 bits of access_type)
        insn(LDX_MEM_W, R3, R1, 0, 0),
        insn(ALU32_RSH_K, R3, 0, 0, 16),
        // R4 <- major, R5 <- minor
        insn(LDX_MEM_W, R4, R1, 4, 0),
        insn(LDX_MEM_W, R5, R1, 8, 0),
    ];
    let verdict = if f.default_allow { 0 } else { 1 };
    for r in &f.exceptions {
        let dev_type = match r.kind.as_str() {
            "c" => BPF_DEVCG_DEV_CHAR,
            "b" => BPF_DEVCG_DEV_BLOCK,
            other => return Err(format!("device rule type {:?}: only c and b rules can be exceptions", other)),
        };
        let mut access = 0;
        for a in r.access.chars() {
            access |= match a {
                'r' => BPF_DEVCG_ACC_READ,
                'w' => BPF_DEVCG_ACC_WRITE,
                'm' => BPF_DEVCG_ACC_MKNOD,
                other => return Err(format!("device rule access {:?}: unknown access {:?}", r.access, other)),
            };
        }
        for (what, n) in [("major", r.major), ("minor", r.minor)] {
            if n < -1 || n > u32::MAX as i64 {
                return Err(format!("device rule {}: {} {} out of range", r.kind, what, n));
            }
        }
        // Each check jumps to the next block when it fails; the block's length is known first.
        let has_access = access != BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD;
        let mut checks: Vec<(u8, u8, u8, i32)> = vec![(JMP_JNE_K, R2, 0, dev_type)];
        let mut body = Vec::new();
        if has_access {
            // if (R3 & access) != R3: the access asked for is not all in the rule's
            body.push(insn(ALU32_MOV_X, R1, R3, 0, 0));
            body.push(insn(ALU32_AND_K, R1, 0, 0, access));
        }
        let start = p.len();
        p.push(insn(checks[0].0, checks[0].1, checks[0].2, 0, checks[0].3));
        checks.clear();
        p.extend(body);
        if has_access {
            checks.push((JMP_JNE_X, R1, R3, 0));
        }
        if r.major >= 0 {
            checks.push((JMP_JNE_K, R4, 0, r.major as u32 as i32));
        }
        if r.minor >= 0 {
            checks.push((JMP_JNE_K, R5, 0, r.minor as u32 as i32));
        }
        for (code, dst, src, imm) in checks {
            p.push(insn(code, dst, src, 0, imm));
        }
        p.push(insn(ALU32_MOV_K, R0, 0, 0, verdict));
        p.push(insn(JMP_EXIT, 0, 0, 0, 0));
        // Every jump of this block goes to the first instruction after it.
        let next = p.len();
        for (i, ins) in p.iter_mut().enumerate().skip(start) {
            if ins.code == JMP_JNE_K || ins.code == JMP_JNE_X {
                ins.off = (next - (i + 1)) as i16;
            }
        }
    }
    p.push(insn(ALU32_MOV_K, R0, 0, 0, if f.default_allow { 1 } else { 0 }));
    p.push(insn(JMP_EXIT, 0, 0, 0, 0));
    Ok(p)
}

/// bpf(2) with a zero-padded attribute buffer (the kernel wants unused bytes zero).
fn bpf(cmd: c_long, attr: &mut [u8; 128]) -> Result<c_int, c_int> {
    // SAFETY: attr is a valid, writable buffer of the size passed.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len() as u32) };
    if rc < 0 {
        Err(errno())
    } else {
        Ok(rc as c_int)
    }
}

fn put_u32(a: &mut [u8; 128], at: usize, v: u32) {
    a[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

fn put_u64(a: &mut [u8; 128], at: usize, v: u64) {
    a[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

struct Fd(c_int);

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: closing an fd we own.
        unsafe { libc::close(self.0) };
    }
}

fn errtext(e: c_int) -> String {
    std::io::Error::from_raw_os_error(e).to_string()
}

fn open_dir(dir: &str) -> Result<Fd, (c_int, String)> {
    let c = CString::new(dir).map_err(|_| (-libc::EINVAL, format!("cgroup {:?} contains a NUL byte", dir)))?;
    // SAFETY: valid C string.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if fd < 0 {
        let e = errno();
        return Err((-e, format!("open cgroup {}: {}", dir, errtext(e))));
    }
    Ok(Fd(fd))
}

/// Ids of the device programs attached to the cgroup `dir` itself.
pub fn attached(dir: &str) -> Result<Vec<u32>, (c_int, String)> {
    let cg = open_dir(dir)?;
    query(&cg, dir)
}

fn query(cg: &Fd, dir: &str) -> Result<Vec<u32>, (c_int, String)> {
    let mut ids = [0u32; 64];
    let mut a = [0u8; 128];
    put_u32(&mut a, 0, cg.0 as u32);
    put_u32(&mut a, 4, BPF_CGROUP_DEVICE);
    put_u64(&mut a, 16, ids.as_mut_ptr() as u64);
    put_u32(&mut a, 24, ids.len() as u32);
    bpf(BPF_PROG_QUERY, &mut a).map_err(|e| (-e, format!("query the device programs of {}: {}", dir, errtext(e))))?;
    let n = u32::from_ne_bytes([a[24], a[25], a[26], a[27]]) as usize;
    Ok(ids[..n.min(ids.len())].to_vec())
}

fn prog_fd(id: u32) -> Result<Fd, c_int> {
    let mut a = [0u8; 128];
    put_u32(&mut a, 0, id);
    bpf(BPF_PROG_GET_FD_BY_ID, &mut a).map(Fd)
}

/// Whether a program with this id still exists (leak checks).
pub fn exists(id: u32) -> Result<bool, (c_int, String)> {
    match prog_fd(id) {
        Ok(_) => Ok(true),
        Err(libc::ENOENT) => Ok(false),
        Err(e) => Err((-e, format!("look up bpf program {}: {}", id, errtext(e)))),
    }
}

fn prog_id(fd: &Fd) -> Result<u32, c_int> {
    // struct bpf_prog_info starts with u32 type, u32 id.
    let mut info = [0u8; 16];
    let mut a = [0u8; 128];
    put_u32(&mut a, 0, fd.0 as u32);
    put_u32(&mut a, 4, info.len() as u32);
    put_u64(&mut a, 8, info.as_mut_ptr() as u64);
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut a)?;
    Ok(u32::from_ne_bytes([info[4], info[5], info[6], info[7]]))
}

fn load(prog: &[Insn], dir: &str) -> Result<Fd, (c_int, String)> {
    let license = b"Apache\0";
    let mut log = vec![0u8; 64 * 1024];
    let attempt = |log_level: u32, log: &mut Vec<u8>| {
        let mut a = [0u8; 128];
        put_u32(&mut a, 0, BPF_PROG_TYPE_CGROUP_DEVICE);
        put_u32(&mut a, 4, prog.len() as u32);
        put_u64(&mut a, 8, prog.as_ptr() as u64);
        put_u64(&mut a, 16, license.as_ptr() as u64);
        if log_level > 0 {
            put_u32(&mut a, 24, log_level);
            put_u32(&mut a, 28, log.len() as u32);
            put_u64(&mut a, 32, log.as_mut_ptr() as u64);
        }
        put_u32(&mut a, 68, BPF_CGROUP_DEVICE); // expected_attach_type
        bpf(BPF_PROG_LOAD, &mut a).map(Fd)
    };
    match attempt(0, &mut log) {
        Ok(fd) => Ok(fd),
        Err(e) => {
            // Again with the verifier's log, for the error message.
            let _ = attempt(1, &mut log);
            let end = log.iter().position(|&b| b == 0).unwrap_or(0);
            let text = String::from_utf8_lossy(&log[..end]);
            Err((-e, format!("load the device program for {}: {}{}", dir, errtext(e), if text.is_empty() { String::new() } else { format!(": {}", text.trim()) })))
        }
    }
}

fn attach_raw(cg: &Fd, prog: &Fd, replace: Option<&Fd>) -> Result<(), c_int> {
    let mut a = [0u8; 128];
    put_u32(&mut a, 0, cg.0 as u32);
    put_u32(&mut a, 4, prog.0 as u32);
    put_u32(&mut a, 8, BPF_CGROUP_DEVICE);
    put_u32(&mut a, 12, BPF_F_ALLOW_MULTI | if replace.is_some() { BPF_F_REPLACE } else { 0 });
    if let Some(old) = replace {
        put_u32(&mut a, 16, old.0 as u32);
    }
    bpf(BPF_PROG_ATTACH, &mut a).map(|_| ())
}

fn detach_raw(cg: &Fd, prog: &Fd) -> Result<(), c_int> {
    let mut a = [0u8; 128];
    put_u32(&mut a, 0, cg.0 as u32);
    put_u32(&mut a, 4, prog.0 as u32);
    put_u32(&mut a, 8, BPF_CGROUP_DEVICE);
    bpf(BPF_PROG_DETACH, &mut a).map(|_| ())
}

/// Loads the program for `f` and makes it the only device program of the cgroup `dir`, as
/// runc does: attached with BPF_F_ALLOW_MULTI, replacing the one program there atomically
/// (BPF_F_REPLACE), or attached next to the old ones, which are then detached. Returns the new
/// program's id.
pub fn apply(dir: &str, f: &DeviceFilter) -> Result<u32, (c_int, String)> {
    let prog = assemble(f).map_err(|e| (-libc::EINVAL, e))?;
    let cg = open_dir(dir)?;
    let old_ids = query(&cg, dir)?;
    let mut old = Vec::new();
    for id in old_ids {
        match prog_fd(id) {
            Ok(fd) => old.push(fd),
            Err(libc::ENOENT) => {} // went away meanwhile
            Err(e) => return Err((-e, format!("open device program {} of {}: {}", id, dir, errtext(e)))),
        }
    }
    let new = load(&prog, dir)?;
    let id = prog_id(&new).map_err(|e| (-e, format!("id of the new device program for {}: {}", dir, errtext(e))))?;
    let replaced = old.len() == 1 && attach_raw(&cg, &new, Some(&old[0])).is_ok();
    if !replaced {
        attach_raw(&cg, &new, None)
            .map_err(|e| (-e, format!("attach the device program to {} (BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI): {}", dir, errtext(e))))?;
        for o in &old {
            if let Err(e) = detach_raw(&cg, o) {
                // The new program is attached next to one we could not remove: undo, so the
                // cgroup keeps exactly its previous rules rather than a mix.
                let _ = detach_raw(&cg, &new);
                return Err((-e, format!("detach the previous device program of {}: {}", dir, errtext(e))));
            }
        }
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(kind: &str, major: i64, minor: i64, access: &str) -> Rule {
        Rule { kind: kind.into(), major, minor, access: access.into() }
    }

    #[test]
    fn allow_list_blocks_jump_to_the_next_block_and_deny_by_default() {
        let f = DeviceFilter { default_allow: false, exceptions: vec![rule("c", 1, 3, "rwm"), rule("c", 136, -1, "rw")] };
        let p = assemble(&f).unwrap();
        // prologue 6; block 1: type, major, minor, mov, exit (5); block 2: type, mov, and,
        // jne-access, major, mov, exit (7); epilogue 2.
        assert_eq!(p.len(), 6 + 5 + 7 + 2);
        assert_eq!(p[6], insn(JMP_JNE_K, R2, 0, 4, BPF_DEVCG_DEV_CHAR));
        assert_eq!(p[7], insn(JMP_JNE_K, R4, 0, 3, 1));
        assert_eq!(p[8], insn(JMP_JNE_K, R5, 0, 2, 3));
        assert_eq!(p[9], insn(ALU32_MOV_K, R0, 0, 0, 1));
        assert_eq!(p[10].code, JMP_EXIT);
        assert_eq!(p[11], insn(JMP_JNE_K, R2, 0, 6, BPF_DEVCG_DEV_CHAR));
        assert_eq!(p[12], insn(ALU32_MOV_X, R1, R3, 0, 0));
        assert_eq!(p[13], insn(ALU32_AND_K, R1, 0, 0, BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE));
        assert_eq!(p[14], insn(JMP_JNE_X, R1, R3, 3, 0));
        assert_eq!(p[15], insn(JMP_JNE_K, R4, 0, 2, 136));
        assert_eq!(p[18], insn(ALU32_MOV_K, R0, 0, 0, 0));
        assert_eq!(p[19].code, JMP_EXIT);
    }

    #[test]
    fn deny_list_exceptions_return_zero_and_the_default_one() {
        let f = DeviceFilter { default_allow: true, exceptions: vec![rule("b", -1, -1, "m")] };
        let p = assemble(&f).unwrap();
        assert_eq!(p[6], insn(JMP_JNE_K, R2, 0, 5, BPF_DEVCG_DEV_BLOCK));
        assert_eq!(p[9], insn(JMP_JNE_X, R1, R3, 2, 0));
        assert_eq!(p[10], insn(ALU32_MOV_K, R0, 0, 0, 0));
        assert_eq!(p[p.len() - 2], insn(ALU32_MOV_K, R0, 0, 0, 1));
    }

    #[test]
    fn refuses_what_the_kernel_cannot_express() {
        let bad = |r: Rule| assemble(&DeviceFilter { default_allow: false, exceptions: vec![r] }).unwrap_err();
        assert!(bad(rule("a", -1, -1, "rwm")).contains("only c and b"));
        assert!(bad(rule("c", 1, 3, "rx")).contains("unknown access"));
        assert!(bad(rule("c", 1 << 33, 3, "r")).contains("out of range"));
    }

    #[test]
    fn instructions_are_eight_bytes() {
        assert_eq!(std::mem::size_of::<Insn>(), 8);
    }
}
