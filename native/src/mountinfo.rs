//! The mount that holds a path, from /proc/self/mountinfo, read without allocation (the cloned
//! child uses it): runc makes that mount private when it is shared, before bind-mounting the
//! rootfs onto itself, so that the bind does not propagate out and pivot_root accepts it.

use crate::sys::errno;
use libc::c_int;

/// True when mount point `mp` is `path` or one of its parent directories.
fn holds(mp: &[u8], path: &[u8]) -> bool {
    mp == b"/" || (path.starts_with(mp) && (path.len() == mp.len() || path[mp.len()] == b'/'))
}

/// One mountinfo line: its mount point and whether it is shared, when it holds `path`.
pub fn line_holding<'a>(line: &'a [u8], path: &[u8]) -> Option<(&'a [u8], bool)> {
    let mut fields = line.split(|&b| b == b' ');
    let mp = fields.nth(4)?;
    if !holds(mp, path) {
        return None;
    }
    // Field 5 is the per-mount options; optional fields follow until "-".
    fields.next()?;
    let shared = fields.take_while(|f| *f != b"-").any(|f| f.starts_with(b"shared:"));
    Some((mp, shared))
}

/// Finds the mount holding `path` (the deepest mount point; the top one of a stack) in
/// /proc/self/mountinfo; copies its mount point, NUL-terminated, into `out`. Returns whether it
/// is shared, or an errno.
///
/// # Safety
/// Raw syscalls only; safe in the cloned child.
pub unsafe fn holding_mount(path: &[u8], out: &mut [u8]) -> Result<bool, c_int> {
    let fd = libc::open(cstr!("/proc/self/mountinfo").as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
    if fd < 0 {
        return Err(errno());
    }
    let mut buf = [0u8; 16384];
    let mut have = 0; // bytes in buf not yet consumed
    let mut skipping = false; // inside a line longer than buf: it cannot be ours
    let mut best: Option<(usize, bool)> = None;
    let mut eof = false;
    while !eof || have > 0 {
        if !eof && have < buf.len() {
            let n = libc::read(fd, buf.as_mut_ptr().add(have) as *mut libc::c_void, buf.len() - have);
            if n < 0 {
                if errno() == libc::EINTR {
                    continue;
                }
                let e = errno();
                libc::close(fd);
                return Err(e);
            }
            if n == 0 {
                eof = true;
            }
            have += n as usize;
        }
        let mut start = 0;
        while let Some(nl) = buf[start..have].iter().position(|&b| b == b'\n') {
            let line = &buf[start..start + nl];
            if !skipping {
                if let Some((mp, shared)) = line_holding(line, path) {
                    if mp.len() + 1 <= out.len() && best.map_or(true, |(len, _)| mp.len() >= len) {
                        out[..mp.len()].copy_from_slice(mp);
                        out[mp.len()] = 0;
                        best = Some((mp.len(), shared));
                    }
                }
            }
            skipping = false;
            start += nl + 1;
        }
        if start == 0 && have == buf.len() {
            // No newline in a full buffer: drop it and skip to the end of that line.
            skipping = true;
            have = 0;
            continue;
        }
        buf.copy_within(start..have, 0);
        have -= start;
        if eof && have > 0 {
            // A last line without newline.
            if !skipping {
                if let Some((mp, shared)) = line_holding(&buf[..have], path) {
                    if mp.len() + 1 <= out.len() && best.map_or(true, |(len, _)| mp.len() >= len) {
                        out[..mp.len()].copy_from_slice(mp);
                        out[mp.len()] = 0;
                        best = Some((mp.len(), shared));
                    }
                }
            }
            have = 0;
        }
    }
    libc::close(fd);
    match best {
        Some((_, shared)) => Ok(shared),
        None => Err(libc::ENOENT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &[u8] = b"36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue";

    #[test]
    fn finds_the_holding_mount_and_its_sharing() {
        assert_eq!(line_holding(LINE, b"/mnt/parent/rootfs"), Some((&b"/mnt/parent"[..], true)));
        assert_eq!(line_holding(LINE, b"/mnt/parent"), Some((&b"/mnt/parent"[..], true)));
        assert_eq!(line_holding(LINE, b"/mnt/parentx/rootfs"), None);
        let private = b"22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw";
        assert_eq!(line_holding(private, b"/any/where"), Some((&b"/"[..], false)));
        // "shared:" after the separator is a super option, not a propagation field.
        let odd = b"22 1 8:1 / /x rw - ext4 shared:3 rw";
        assert_eq!(line_holding(odd, b"/x/y"), Some((&b"/x"[..], false)));
    }

    #[test]
    fn reads_its_own_mountinfo() {
        let mut out = [0u8; 4096];
        // SAFETY: plain reads of /proc.
        let r = unsafe { holding_mount(b"/proc/self", &mut out) };
        assert!(r.is_ok(), "{:?}", r);
        let len = out.iter().position(|&b| b == 0).unwrap();
        assert!(b"/proc/self".starts_with(&out[..len]));
    }
}
