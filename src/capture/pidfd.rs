//! A pidfd: a file descriptor that refers to one process, not to a PID number.
//!
//! Everything that signals or inspects the target goes through this handle, so that a PID that
//! was reused after the target exited is never hit (`pidfd_send_signal` fails with ESRCH on a
//! pidfd whose process has exited, even if its PID now belongs to someone else).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// An open pidfd (`pidfd_open(2)`), closed on drop.
#[derive(Debug)]
pub struct PidFd {
    fd: OwnedFd,
    pid: i32,
}

impl PidFd {
    /// `pidfd_open(pid, 0)`. Fails with ESRCH if there is no such process (or it is a thread,
    /// not a thread-group leader).
    pub fn open(pid: i32) -> io::Result<PidFd> {
        // SAFETY: plain syscall with integer arguments.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just gave us this descriptor; nobody else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        Ok(PidFd { fd, pid })
    }

    /// The PID this pidfd was opened for (in gorescue's PID namespace).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// `pidfd_send_signal(fd, sig, NULL, 0)`: the target sees `si_code == SI_USER`, as from
    /// kill(2) (the Go runtime prints `sigcode=0`). ESRCH if the process has exited, even if
    /// its PID has been reused.
    pub fn send_signal(&self, sig: i32) -> io::Result<()> {
        // SAFETY: plain syscall; a NULL siginfo is allowed.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// `pidfd_getfd(fd, targetfd, 0)`: a copy, in gorescue, of the target's descriptor
    /// `targetfd` (the same open file description: same offset, same flags). Needs
    /// PTRACE_MODE_ATTACH_REALCREDS over the target (root, CAP_SYS_PTRACE, or being its tracer).
    /// The copy is close-on-exec.
    pub fn getfd(&self, targetfd: i32) -> io::Result<OwnedFd> {
        // SAFETY: plain syscall with integer arguments.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, self.fd.as_raw_fd(), targetfd, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor from the kernel.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
    }

    /// Wait until the process has exited (the pidfd becomes readable). `None` waits forever.
    /// Returns true if it exited, false on timeout. EINTR is retried (with the time left).
    pub fn wait_exit(&self, timeout: Option<Duration>) -> io::Result<bool> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let ms: i32 = match deadline {
                None => -1,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    // Round up so that a short positive remainder does not become a busy 0.
                    let ms = left.as_micros().div_ceil(1000);
                    ms.min(i32::MAX as u128) as i32
                }
            };
            let mut p = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut p, 1, ms) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if r > 0 {
                return Ok(true);
            }
            if ms == 0 || deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
        }
    }

    /// True while the process has not exited (it may be a zombie not yet reaped: that counts
    /// as exited).
    pub fn is_alive(&self) -> bool {
        !matches!(self.wait_exit(Some(Duration::ZERO)), Ok(true))
    }
}

impl AsFd for PidFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for PidFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl PidFd {
    /// Another handle on the same process (dup of the pidfd).
    pub fn try_clone(&self) -> io::Result<PidFd> {
        Ok(PidFd {
            fd: self.fd.try_clone()?,
            pid: self.pid,
        })
    }
}
