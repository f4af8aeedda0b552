//! Failure reports from the cloned child to the shim, written with no allocation.
//!
//! Wire format on the sync pipe: b'R' = set up and waiting for start; b'H' = paused before
//! pivot_root for runtime-namespace hooks; b'E', errno (u32 LE),
//! length (u16 LE), message bytes = the step that failed (the child exits right after); errno 0
//! means the message needs no strerror appended.
//! EOF without either after start means execve succeeded (the pipe is close-on-exec).

pub const READY: u8 = b'R';
/// Paused before pivot_root for the shim's runtime-namespace hooks (plan.pause_before_pivot).
pub const HOOK_POINT: u8 = b'H';
/// b'T' + u32 LE: the child's fd number of its pty master, for the shim to take (pidfd_getfd).
pub const TERMINAL: u8 = b'T';
pub const ERROR: u8 = b'E';
const CAP: usize = 1024;

/// A fixed-size message builder usable between clone and execve.
pub struct Report {
    buf: [u8; CAP],
    len: usize,
}

impl Report {
    pub fn new() -> Self {
        Report { buf: [0; CAP], len: 7 }
    }

    pub fn push(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes {
            if self.len >= CAP {
                break;
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        self
    }

    pub fn push_str(&mut self, s: &str) -> &mut Self {
        self.push(s.as_bytes())
    }

    /// Sends the report with `errno` and terminates the child.
    pub fn fail(&mut self, fd: libc::c_int, errno: libc::c_int) -> ! {
        let msg_len = (self.len - 7) as u16;
        self.buf[0] = ERROR;
        self.buf[1..5].copy_from_slice(&(errno as u32).to_le_bytes());
        self.buf[5..7].copy_from_slice(&msg_len.to_le_bytes());
        // SAFETY: raw write(2) and _exit(2) on our own buffer; both async-signal-safe.
        unsafe {
            libc::write(fd, self.buf.as_ptr() as *const libc::c_void, self.len);
            libc::_exit(126);
        }
    }
}

/// Formats a non-negative integer into `out` (no allocation); returns the digits used.
pub fn format_u64(mut n: u64, out: &mut [u8; 20]) -> &[u8] {
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    &out[i..]
}
