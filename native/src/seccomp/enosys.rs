//! runc's -ENOSYS stub (libcontainer/seccomp/patchbpf), prepended to libseccomp's program.
//!
//! A profile lists the syscalls its author knew. With a non-permissive default action, a
//! syscall newer than all of them would get the default errno (usually EPERM), and programs
//! that probe a new syscall and fall back on ENOSYS (glibc with clone3, faccessat2…) break.
//! The stub answers ENOSYS for any syscall number above the largest one the profile names,
//! per architecture, and lets everything else through to the real filter. Behaving exactly like
//! runc here is what makes a container behave the same under both runtimes.

use super::ffi;
use super::{Action, SeccompPlan, SockFilter};
use std::collections::BTreeMap;
use std::ffi::CString;

const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const BPF_JA: u16 = 0x05; // BPF_JMP | BPF_JA
const BPF_JEQ_K: u16 = 0x15;
const BPF_JGT_K: u16 = 0x25;
const BPF_JSET_K: u16 = 0x45;
const BPF_RET_K: u16 = 0x06;

/// Offsets in `struct seccomp_data`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
/// x32 syscalls are x86_64 syscalls with this bit set in their number.
const X32_SYSCALL_BIT: u32 = 1 << 30;

pub const RET_ERRNO_ENOSYS: u32 = ffi::SCMP_ACT_ERRNO | libc::ENOSYS as u32;

fn ld(off: u32) -> SockFilter {
    SockFilter { code: BPF_LD_W_ABS, jt: 0, jf: 0, k: off }
}
fn ja(k: u32) -> SockFilter {
    SockFilter { code: BPF_JA, jt: 0, jf: 0, k }
}
fn jeq(k: u32, jt: u8, jf: u8) -> SockFilter {
    SockFilter { code: BPF_JEQ_K, jt, jf, k }
}
fn jgt(k: u32, jt: u8, jf: u8) -> SockFilter {
    SockFilter { code: BPF_JGT_K, jt, jf, k }
}
fn jset(k: u32, jt: u8, jf: u8) -> SockFilter {
    SockFilter { code: BPF_JSET_K, jt, jf, k }
}
fn ret(k: u32) -> SockFilter {
    SockFilter { code: BPF_RET_K, jt: 0, jf: 0, k }
}

fn prepend(head: Vec<SockFilter>, tail: Vec<SockFilter>) -> Vec<SockFilter> {
    let mut v = head;
    v.extend(tail);
    v
}

/// runc adds the stub unless the default action lets unknown syscalls through anyway (allow,
/// log, trace: a tracer handles new syscalls itself) or already answers ENOSYS.
pub fn wanted(plan: &SeccompPlan) -> bool {
    let permissive = matches!(plan.default_action, Action::Allow | Action::Log | Action::Trace);
    let enosys_default = plan.default_action == Action::Errno && plan.default_errno_ret == Some(libc::ENOSYS as u32);
    !permissive && !enosys_default
}

/// The kernel's AUDIT_ARCH_* value for a libseccomp token (they are the same but for x32,
/// which is x86_64 with X32_SYSCALL_BIT in the syscall number).
fn audit_arch(token: u32) -> u32 {
    if token == ffi::SCMP_ARCH_X32 {
        ffi::AUDIT_ARCH_X86_64
    } else {
        token
    }
}

/// The largest syscall number the profile names, per kernel architecture and libseccomp token.
fn last_syscalls(tokens: &[u32], plan: &SeccompPlan) -> Result<BTreeMap<u32, BTreeMap<u32, u32>>, String> {
    let names = plan
        .syscalls
        .iter()
        .map(|r| CString::new(r.name.as_str()).map_err(|_| format!("linux.seccomp: syscall name {:?} contains a NUL byte", r.name)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut last: BTreeMap<u32, BTreeMap<u32, u32>> = BTreeMap::new();
    for &token in tokens {
        let mut largest: i32 = 0;
        for n in names.iter() {
            // SAFETY: valid C string; unknown names give a negative number, ignored like
            // libseccomp's negative pseudo-syscalls (multiplexed socketcall/ipc).
            let nr = unsafe { ffi::seccomp_syscall_resolve_name_arch(token, n.as_ptr()) };
            if nr > largest {
                largest = nr;
            }
        }
        if largest > 0 {
            last.entry(audit_arch(token)).or_default().insert(token, largest as u32);
        }
    }
    Ok(last)
}

/// The stub for the architectures `tokens` (the native one first). A port of runc's
/// generateEnosysStub: sections are built back to front because classic BPF jumps only
/// forward, and every jump is measured from the end of the stub.
pub fn stub(tokens: &[u32], plan: &SeccompPlan) -> Result<Vec<SockFilter>, String> {
    build(&last_syscalls(tokens, plan)?)
}

fn build(last: &BTreeMap<u32, BTreeMap<u32, u32>>) -> Result<Vec<SockFilter>, String> {
    // Falling through jumps over the ENOSYS return into the real filter.
    let mut tail = vec![ja(1), ret(RET_ERRNO_ENOSYS)];
    let mut jump_table: BTreeMap<u32, u32> = BTreeMap::new();
    for (&arch, maxes) in last.iter() {
        // Instructions from the end of this section to the ENOSYS return, and to the filter.
        let base_enosys = tail.len() as u32 - 1;
        let base_filter = base_enosys + 1;
        let mut section = vec![ld(OFF_NR)];
        match maxes.len() {
            0 => continue,
            1 => {
                let (&token, &sysno) = maxes.iter().next().expect("one entry");
                // s390(x) multiplexes syscalls the kernel does not know onto number 0.
                if token == ffi::SCMP_ARCH_S390 || token == ffi::SCMP_ARCH_S390X {
                    section.push(jeq(0, 0, 1));
                    section.push(ret(RET_ERRNO_ENOSYS));
                }
                let mut sec_tail = if base_enosys + 1 <= 255 {
                    vec![jgt(sysno, (base_enosys + 1) as u8, 0), ja(base_filter)]
                } else {
                    vec![jgt(sysno, 0, 1), ja(base_enosys + 1), ja(base_filter)]
                };
                if arch == ffi::AUDIT_ARCH_X86_64 {
                    // x86_64 and x32 share the audit arch: skip the section in the other mode.
                    let skip = (sec_tail.len() - 1) as u8;
                    let check = if token == ffi::SCMP_ARCH_X32 {
                        jset(X32_SYSCALL_BIT, 0, skip)
                    } else {
                        jset(X32_SYSCALL_BIT, skip, 0)
                    };
                    sec_tail = prepend(vec![check], sec_tail);
                }
                section.extend(sec_tail);
            }
            2 => {
                if arch != ffi::AUDIT_ARCH_X86_64 {
                    return Err(format!("linux.seccomp: unexpected architecture overlap on {:#x}", arch));
                }
                let x32 = *maxes.get(&ffi::SCMP_ARCH_X32).ok_or("linux.seccomp: x86_64 overlap without x32")?;
                let x86_64 = *maxes.get(&ffi::AUDIT_ARCH_X86_64).ok_or("linux.seccomp: x32 overlap without x86_64")?;
                if base_enosys + 2 <= 255 {
                    section.extend([
                        jset(X32_SYSCALL_BIT, 1, 0),
                        jgt(x86_64, (base_enosys + 2) as u8, 1),
                        jgt(x32, (base_enosys + 1) as u8, 0),
                        ja(base_filter),
                    ]);
                } else {
                    section.extend([
                        jset(X32_SYSCALL_BIT, 1, 0),
                        jgt(x86_64, 1, 2),
                        jgt(x32, 0, 1),
                        ja(base_enosys + 1),
                        ja(base_filter),
                    ]);
                }
            }
            n => return Err(format!("linux.seccomp: {} architectures overlap on {:#x}", n, arch)),
        }
        tail = prepend(section, tail);
        jump_table.insert(arch, tail.len() as u32);
    }
    // Architectures without a section go straight to the filter (and its bad-arch action).
    tail = prepend(vec![ja(tail.len() as u32)], tail);
    for &arch in jump_table.keys() {
        let jump = tail.len() as u32 - jump_table[&arch];
        tail = if jump <= 255 {
            prepend(vec![jeq(arch, jump as u8, 0)], tail)
        } else {
            prepend(vec![jeq(arch, 0, 1), ja(jump)], tail)
        };
    }
    Ok(prepend(vec![ld(OFF_ARCH)], tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUDIT_ARCH_I386: u32 = 0x4000_0003;
    const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
    /// What a program ends in when it falls off the stub: the real filter's first instruction.
    const FILTER: u32 = u32::MAX;

    /// A classic BPF interpreter for the instructions the stub uses, on (arch, nr).
    fn run(prog: &[SockFilter], arch: u32, nr: u32) -> u32 {
        let mut pc = 0usize;
        let mut a = 0u32;
        loop {
            if pc == prog.len() {
                return FILTER;
            }
            let i = prog[pc];
            pc += 1;
            match i.code {
                BPF_LD_W_ABS => a = if i.k == OFF_ARCH { arch } else { nr },
                BPF_JA => pc += i.k as usize,
                BPF_JEQ_K => pc += if a == i.k { i.jt } else { i.jf } as usize,
                BPF_JGT_K => pc += if a > i.k { i.jt } else { i.jf } as usize,
                BPF_JSET_K => pc += if a & i.k != 0 { i.jt } else { i.jf } as usize,
                BPF_RET_K => return i.k,
                c => panic!("unexpected opcode {:#x}", c),
            }
            assert!(pc <= prog.len(), "jump past the end");
        }
    }

    fn table(entries: &[(u32, u32, u32)]) -> BTreeMap<u32, BTreeMap<u32, u32>> {
        let mut t: BTreeMap<u32, BTreeMap<u32, u32>> = BTreeMap::new();
        for &(arch, token, max) in entries {
            t.entry(arch).or_default().insert(token, max);
        }
        t
    }

    #[test]
    fn newer_syscalls_get_enosys_per_architecture() {
        let prog = build(&table(&[
            (ffi::AUDIT_ARCH_X86_64, ffi::AUDIT_ARCH_X86_64, 300),
            (ffi::AUDIT_ARCH_X86_64, ffi::SCMP_ARCH_X32, X32_SYSCALL_BIT | 200),
            (AUDIT_ARCH_I386, AUDIT_ARCH_I386, 400),
        ]))
        .unwrap();
        let x86_64 = ffi::AUDIT_ARCH_X86_64;
        assert_eq!(run(&prog, x86_64, 300), FILTER);
        assert_eq!(run(&prog, x86_64, 301), RET_ERRNO_ENOSYS);
        assert_eq!(run(&prog, x86_64, X32_SYSCALL_BIT | 200), FILTER);
        assert_eq!(run(&prog, x86_64, X32_SYSCALL_BIT | 201), RET_ERRNO_ENOSYS);
        assert_eq!(run(&prog, AUDIT_ARCH_I386, 400), FILTER);
        assert_eq!(run(&prog, AUDIT_ARCH_I386, 401), RET_ERRNO_ENOSYS);
        // Not in the profile: left to the filter's bad-architecture action.
        assert_eq!(run(&prog, AUDIT_ARCH_AARCH64, 9999), FILTER);
    }

    #[test]
    fn x86_64_alone_leaves_x32_to_the_filter() {
        let x86_64 = ffi::AUDIT_ARCH_X86_64;
        let prog = build(&table(&[(x86_64, x86_64, 300)])).unwrap();
        assert_eq!(run(&prog, x86_64, 1), FILTER);
        assert_eq!(run(&prog, x86_64, 435), RET_ERRNO_ENOSYS);
        assert_eq!(run(&prog, x86_64, X32_SYSCALL_BIT | 435), FILTER);
    }

    #[test]
    fn s390x_multiplexed_syscall_zero_gets_enosys() {
        let prog = build(&table(&[(ffi::SCMP_ARCH_S390X, ffi::SCMP_ARCH_S390X, 300)])).unwrap();
        assert_eq!(run(&prog, ffi::SCMP_ARCH_S390X, 0), RET_ERRNO_ENOSYS);
        assert_eq!(run(&prog, ffi::SCMP_ARCH_S390X, 1), FILTER);
        assert_eq!(run(&prog, ffi::SCMP_ARCH_S390X, 301), RET_ERRNO_ENOSYS);
    }

    #[test]
    fn long_jumps_when_many_architectures_are_present() {
        // Enough architectures that the later jumps exceed the 8-bit jt/jf range.
        let entries: Vec<(u32, u32, u32)> = (0..100u32).map(|i| (0x1000 + i, 0x1000 + i, 50 + i)).collect();
        let prog = build(&table(&entries)).unwrap();
        for i in 0..100u32 {
            assert_eq!(run(&prog, 0x1000 + i, 50 + i), FILTER, "arch {}", i);
            assert_eq!(run(&prog, 0x1000 + i, 51 + i), RET_ERRNO_ENOSYS, "arch {}", i);
        }
    }

    #[test]
    fn no_stub_for_permissive_or_enosys_defaults() {
        let p = |json: &str| -> SeccompPlan { serde_json::from_str(json).unwrap() };
        assert!(!wanted(&p(r#"{"defaultAction":"SCMP_ACT_ALLOW","defaultErrnoRet":null,"flags":null}"#)));
        assert!(!wanted(&p(r#"{"defaultAction":"SCMP_ACT_LOG","defaultErrnoRet":null,"flags":null}"#)));
        assert!(!wanted(&p(r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"flags":null}"#)));
        assert!(wanted(&p(r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":null,"flags":null}"#)));
        assert!(wanted(&p(r#"{"defaultAction":"SCMP_ACT_KILL_PROCESS","defaultErrnoRet":null,"flags":null}"#)));
    }
}
