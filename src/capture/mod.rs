//! Live capture of a dump from a running process.
//!
//! - [`pidfd`]: a race-free handle on the target (signal it, copy one of its fds, wait for it to
//!   exit), so that a PID that has been reused is never hit.
//! - [`ptrace`]: freeze the target, inject a few syscalls to point its fd 2 somewhere gorescue
//!   reads, and let it go again. Nothing else in gorescue touches ptrace.
//! - [`journal`]: read the systemd journal (sd-journal): the position before the signal, the
//!   entries after it, and lines rejoined where journald split them.
//! - [`snapshot`] and [`pprof`]: `--keep-running`, a dump of a forked copy, or the listing
//!   from the process's own net/http/pprof listener.

pub mod journal;
pub mod pidfd;
pub mod pprof;
pub mod ptrace;
pub mod snapshot;
