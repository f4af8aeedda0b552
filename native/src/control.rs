//! Messages from the shim to the child on the control pipe, read without allocation.
//!
//! Each message is one command byte, a u32 LE length and that many bytes (the OCI state JSON
//! for hooks, or nothing): b'M' = user-namespace maps written; b'C' = runtime-namespace hooks
//! ran, continue (carries the state for createContainer hooks); b'S' = start (carries the state
//! for startContainer hooks); b'G' = you are in the container's cgroup (unshare the cgroup
//! namespace now).

use crate::sys::errno;
use libc::c_int;

pub const MAPS_WRITTEN: u8 = b'M';
pub const CGROUP_JOINED: u8 = b'G';

/// Child → shim on the namespace pipe of a staged spawn (spawn.rs): b'U' = I unshared my user
/// namespace, write its maps; b'G' = put me in the container's cgroup (before I unshare a new
/// cgroup namespace, as runc's SYNC_CGROUPNS); b'P' + u32 LE pid = the container's init, forked into the new
/// pid namespace (I exit now). EOF without b'P' = no fork (or the child failed: see its report).
pub const USERNS_UNSHARED: u8 = b'U';
pub const JOIN_CGROUP: u8 = b'G';
pub const FORKED: u8 = b'P';
pub const CONTINUE: u8 = b'C';
pub const START: u8 = b'S';

/// Reads exactly `buf.len()` bytes; false on EOF or error.
unsafe fn read_exact(fd: c_int, buf: &mut [u8]) -> bool {
    let mut off = 0;
    while off < buf.len() {
        let n = libc::read(fd, buf.as_mut_ptr().add(off) as *mut libc::c_void, buf.len() - off);
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            return false;
        }
        off += n as usize;
    }
    true
}

/// Waits for message `want`; returns the payload length copied into `buf`, or None when the
/// shim went away (EOF), sent something else, or a payload larger than `buf`.
///
/// # Safety
/// Raw reads on `fd`; safe in the cloned child.
pub unsafe fn read_message(fd: c_int, want: u8, buf: &mut [u8]) -> Option<usize> {
    let mut head = [0u8; 5];
    if !read_exact(fd, &mut head) || head[0] != want {
        return None;
    }
    let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > buf.len() || !read_exact(fd, &mut buf[..len]) {
        return None;
    }
    Some(len)
}

/// The shim's side, used right after the clone (user-namespace maps).
pub fn write_message(fd: c_int, cmd: u8, payload: &[u8]) -> std::io::Result<()> {
    let mut msg = Vec::with_capacity(5 + payload.len());
    msg.push(cmd);
    msg.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    msg.extend_from_slice(payload);
    // SAFETY: writing our own buffer to a pipe we own.
    let n = unsafe { libc::write(fd, msg.as_ptr() as *const libc::c_void, msg.len()) };
    if n < 0 || n as usize != msg.len() {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
