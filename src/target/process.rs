//! What `/proc/PID` says about a process, before anything is sent to it.
//!
//! [`ProcessInfo::read`] gathers everything that changes or prevents a SIGQUIT dump: the
//! executable, the process state, whether it is traced, its credentials and secure mode, how it
//! treats SIGQUIT, and the `GOTRACEBACK`/`GODEBUG` it was started with. Reading `exe`,
//! `environ` and `auxv` of another user's process needs root or `CAP_SYS_PTRACE`
//! (a `PTRACE_MODE_READ` check); failures say so through [`InspectError`].

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use procfs::ProcError;
use procfs::process::Process;

/// SIGQUIT's number on Linux (all architectures).
pub const SIGQUIT: u32 = 3;
/// The auxiliary vector entry the kernel sets to 1 for setuid/setgid/file-capability execs.
pub const AT_SECURE: u64 = 23;

/// Why a process could not be inspected.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// There is no process with that PID (or it exited while being inspected).
    #[error("no such process: PID {pid}")]
    NoSuchProcess {
        /// The PID asked for.
        pid: i32,
    },
    /// The PID names a thread of another process, not a process.
    #[error("PID {pid} is a thread of process {tgid}, not a process; use {tgid}")]
    Thread {
        /// The thread ID asked for.
        pid: i32,
        /// The process it belongs to.
        tgid: i32,
    },
    /// The kernel refused access to a `/proc/PID` file.
    #[error(
        "not permitted to read {}: {}",
        path.display(),
        permission_hint(*ptrace_scope)
    )]
    PermissionDenied {
        /// The PID asked for.
        pid: i32,
        /// The file that could not be read.
        path: PathBuf,
        /// The value of `/proc/sys/kernel/yama/ptrace_scope`, if Yama is there.
        ptrace_scope: Option<u8>,
    },
    /// Any other I/O error.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// What is needed to inspect and trace another user's process, given Yama's `ptrace_scope`.
pub fn permission_hint(ptrace_scope: Option<u8>) -> String {
    let base =
        "run as root, or with CAP_SYS_PTRACE (and CAP_KILL to signal another user's process)";
    match ptrace_scope {
        None => format!("{base}; kernel.yama.ptrace_scope is not set (no Yama)"),
        Some(0) => format!("{base}; kernel.yama.ptrace_scope = 0 (classic ptrace permissions)"),
        Some(1) => format!(
            "{base}; kernel.yama.ptrace_scope = 1 (a non-root user may only ptrace its own descendants)"
        ),
        Some(2) => format!("{base}; kernel.yama.ptrace_scope = 2 (only CAP_SYS_PTRACE may ptrace)"),
        Some(3) => {
            format!("{base}; kernel.yama.ptrace_scope = 3 (ptrace attach is disabled for everyone)")
        }
        Some(n) => format!("{base}; kernel.yama.ptrace_scope = {n}"),
    }
}

/// The value of `/proc/sys/kernel/yama/ptrace_scope`, if the Yama LSM is present.
pub fn ptrace_scope() -> Option<u8> {
    std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .ok()?
        .trim()
        .parse()
        .ok()
}

impl InspectError {
    /// Map a procfs error for `pid`, reading `file` of it (e.g. `"exe"`).
    pub(crate) fn from_proc(pid: i32, file: &str, e: ProcError) -> InspectError {
        let path = PathBuf::from(format!("/proc/{pid}/{file}"));
        let gone = !Path::new(&format!("/proc/{pid}")).exists();
        match e {
            _ if gone => InspectError::NoSuchProcess { pid },
            ProcError::PermissionDenied(p) => InspectError::PermissionDenied {
                pid,
                path: p.unwrap_or(path),
                ptrace_scope: ptrace_scope(),
            },
            ProcError::NotFound(p) => InspectError::Io {
                path: p.unwrap_or(path),
                source: io::Error::from(io::ErrorKind::NotFound),
            },
            ProcError::Io(source, p) => InspectError::from_io(pid, p.unwrap_or(path), source),
            other => InspectError::Io {
                path,
                source: io::Error::other(other.to_string()),
            },
        }
    }

    /// Map an I/O error on `path`, which belongs to `pid`.
    pub(crate) fn from_io(pid: i32, path: PathBuf, source: io::Error) -> InspectError {
        if !Path::new(&format!("/proc/{pid}")).exists()
            || source.raw_os_error() == Some(libc::ESRCH)
        {
            InspectError::NoSuchProcess { pid }
        } else if source.kind() == io::ErrorKind::PermissionDenied {
            InspectError::PermissionDenied {
                pid,
                path,
                ptrace_scope: ptrace_scope(),
            }
        } else {
            InspectError::Io { path, source }
        }
    }
}

/// The scheduler state of a process (`/proc/PID/stat` field 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    /// `R`: running or runnable.
    Running,
    /// `S`: interruptible sleep (what a wedged Go program usually shows).
    Sleeping,
    /// `D`: uninterruptible sleep (usually I/O); a signal waits until it ends.
    DiskSleep,
    /// `T`: stopped by a job-control signal; SIGQUIT stays pending until SIGCONT.
    Stopped,
    /// `t`: stopped by a tracer.
    TracingStop,
    /// `Z`: exited, not yet reaped; there is nothing left to dump.
    Zombie,
    /// `X`: dead.
    Dead,
    /// `I`: idle kernel thread.
    Idle,
    /// Any other letter.
    Other(char),
}

impl ProcState {
    /// From the letter the kernel prints.
    pub fn from_char(c: char) -> ProcState {
        match c {
            'R' => ProcState::Running,
            'S' => ProcState::Sleeping,
            'D' => ProcState::DiskSleep,
            'T' => ProcState::Stopped,
            't' => ProcState::TracingStop,
            'Z' => ProcState::Zombie,
            'X' | 'x' => ProcState::Dead,
            'I' => ProcState::Idle,
            c => ProcState::Other(c),
        }
    }

    /// The kernel's letter.
    pub fn letter(self) -> char {
        match self {
            ProcState::Running => 'R',
            ProcState::Sleeping => 'S',
            ProcState::DiskSleep => 'D',
            ProcState::Stopped => 'T',
            ProcState::TracingStop => 't',
            ProcState::Zombie => 'Z',
            ProcState::Dead => 'X',
            ProcState::Idle => 'I',
            ProcState::Other(c) => c,
        }
    }

    /// A few words for humans, e.g. "sleeping".
    pub fn describe(self) -> &'static str {
        match self {
            ProcState::Running => "running",
            ProcState::Sleeping => "sleeping",
            ProcState::DiskSleep => "in uninterruptible sleep (D)",
            ProcState::Stopped => "stopped (T)",
            ProcState::TracingStop => "stopped by its tracer (t)",
            ProcState::Zombie => "a zombie (exited, not reaped)",
            ProcState::Dead => "dead",
            ProcState::Idle => "an idle kernel thread",
            ProcState::Other(_) => "in an unknown state",
        }
    }

    /// Stopped, by job control or by a tracer: a signal is not acted on until it resumes.
    pub fn is_stopped(self) -> bool {
        matches!(self, ProcState::Stopped | ProcState::TracingStop)
    }

    /// Zombie or dead: there is no live program to dump.
    pub fn is_gone(self) -> bool {
        matches!(self, ProcState::Zombie | ProcState::Dead)
    }
}

/// Real, effective, saved and filesystem IDs (user or group).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    /// Real ID.
    pub real: u32,
    /// Effective ID.
    pub effective: u32,
    /// Saved set-ID.
    pub saved: u32,
    /// Filesystem ID.
    pub fs: u32,
}

/// The signal masks of `/proc/PID/status`: bit `n-1` stands for signal `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalMasks {
    /// `SigBlk` of the main thread.
    pub blocked: u64,
    /// `SigIgn`: process-wide, disposition SIG_IGN.
    pub ignored: u64,
    /// `SigCgt`: process-wide, a handler is installed.
    pub caught: u64,
    /// `ShdPnd`: pending for the process as a whole.
    pub pending: u64,
}

impl SignalMasks {
    /// Whether `sig` is set in `mask`.
    pub fn has(mask: u64, sig: u32) -> bool {
        (1..=64).contains(&sig) && mask & (1u64 << (sig - 1)) != 0
    }
}

/// How the process treats SIGQUIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigquitState {
    /// Blocked in every thread: a SIGQUIT would stay pending and nothing would be printed.
    pub blocked: bool,
    /// Blocked in some threads but not all (the kernel delivers it to one that does not block it).
    pub blocked_in_some: bool,
    /// Ignored (SIG_IGN): the signal is discarded and nothing happens. (The Go runtime installs
    /// its handler for SIGQUIT even when it was ignored at exec, so for a Go program this means
    /// it called `signal.Ignore(syscall.SIGQUIT)`.)
    pub ignored: bool,
    /// A handler is installed (every Go program catches SIGQUIT unless it was ignored at start).
    pub caught: bool,
    /// A SIGQUIT is already pending.
    pub pending: bool,
}

/// Everything gorescue needs to know about a process before signalling it.
#[derive(Debug, Clone)]
pub struct ProcessInfo {
    /// The PID.
    pub pid: i32,
    /// The executable's path (`/proc/PID/exe`), without the kernel's ` (deleted)` suffix;
    /// `None` for kernel threads and zombies.
    pub exe: Option<PathBuf>,
    /// The executable was deleted (or replaced) since the process started.
    pub exe_deleted: bool,
    /// `comm` (the first 15 bytes of the program name, or what the program set).
    pub comm: String,
    /// The command line, split at NULs.
    pub cmdline: Vec<String>,
    /// The scheduler state.
    pub state: ProcState,
    /// The parent PID.
    pub ppid: i32,
    /// The PID of the process tracing this one (`TracerPid`), if any.
    pub tracer_pid: Option<i32>,
    /// User IDs.
    pub uid: Ids,
    /// Group IDs.
    pub gid: Ids,
    /// `AT_SECURE` from `/proc/PID/auxv`, when it could be read: `Some(true)` for an exec of a
    /// setuid/setgid file or a file with capabilities (Go's `isSecureMode()`).
    pub at_secure: Option<bool>,
    /// The signal masks.
    pub signals: SignalMasks,
    /// SIGQUIT's fate, from the masks of every thread.
    pub sigquit: SigquitState,
    /// `GOTRACEBACK` in the environment the process was started with (`/proc/PID/environ`).
    pub gotraceback: Option<String>,
    /// `GODEBUG` in the environment the process was started with.
    pub godebug: Option<String>,
    /// `JOURNAL_STREAM` (`DEV:INODE`), which systemd sets when stdout or stderr is the journal.
    pub journal_stream: Option<String>,
    /// Number of threads.
    pub threads: u64,
    /// Resident anonymous memory in bytes (`RssAnon`, Linux 4.5 and later): what a fork copies
    /// the page tables of.
    pub rss_anon: Option<u64>,
    /// When the process started (boot time + `stat` field 22; accurate to about a second).
    pub start_time: SystemTime,
}

impl ProcessInfo {
    /// Inspect process `pid` through `/proc/PID`.
    pub fn read(pid: i32) -> Result<ProcessInfo, InspectError> {
        if pid <= 0 {
            return Err(InspectError::NoSuchProcess { pid });
        }
        let proc_ = Process::new(pid).map_err(|e| InspectError::from_proc(pid, "", e))?;
        let stat = proc_
            .stat()
            .map_err(|e| InspectError::from_proc(pid, "stat", e))?;
        let status = proc_
            .status()
            .map_err(|e| InspectError::from_proc(pid, "status", e))?;
        if status.tgid != pid {
            return Err(InspectError::Thread {
                pid,
                tgid: status.tgid,
            });
        }
        let state = ProcState::from_char(stat.state);

        let (exe, exe_deleted) = match proc_.exe() {
            Ok(p) => {
                let bytes = p.as_os_str().as_bytes();
                match bytes.strip_suffix(b" (deleted)") {
                    Some(b) => (Some(PathBuf::from(OsStr::from_bytes(b))), true),
                    None => (Some(p), false),
                }
            }
            // kernel threads and zombies have no exe
            Err(ProcError::NotFound(_)) if Path::new(&format!("/proc/{pid}")).exists() => {
                (None, false)
            }
            Err(e) => return Err(InspectError::from_proc(pid, "exe", e)),
        };

        let cmdline = proc_.cmdline().unwrap_or_default();
        let env = match proc_.environ() {
            Ok(env) => env,
            // a zombie's environ gives ESRCH
            Err(_) if state.is_gone() => Default::default(),
            Err(e) => return Err(InspectError::from_proc(pid, "environ", e)),
        };
        let var = |k: &str| {
            env.get(OsStr::new(k))
                .map(|v| v.to_string_lossy().into_owned())
        };

        let at_secure = match proc_.auxv() {
            Ok(aux) if !aux.is_empty() => Some(aux.get(&AT_SECURE).is_some_and(|&v| v != 0)),
            // empty (kernel thread), unreadable, or gone (a zombie's gives ESRCH): unknown
            _ => None,
        };

        let signals = SignalMasks {
            blocked: status.sigblk,
            ignored: status.sigign,
            caught: status.sigcgt,
            pending: status.shdpnd,
        };
        let (blocked_threads, total_threads) = blocked_in_threads(&proc_, SIGQUIT);
        let sigquit = SigquitState {
            blocked: total_threads > 0 && blocked_threads == total_threads,
            blocked_in_some: blocked_threads > 0 && blocked_threads < total_threads,
            ignored: SignalMasks::has(signals.ignored, SIGQUIT),
            caught: SignalMasks::has(signals.caught, SIGQUIT),
            pending: SignalMasks::has(signals.pending, SIGQUIT),
        };

        let tps = procfs::ticks_per_second().max(1);
        let boot =
            procfs::boot_time_secs().map_err(|e| InspectError::from_proc(pid, "../stat", e))?;
        let start_time = SystemTime::UNIX_EPOCH
            + Duration::from_secs(boot)
            + Duration::from_nanos(
                (u128::from(stat.starttime) * 1_000_000_000 / u128::from(tps)) as u64,
            );

        Ok(ProcessInfo {
            pid,
            exe,
            exe_deleted,
            comm: stat.comm,
            cmdline,
            state,
            ppid: stat.ppid,
            tracer_pid: (status.tracerpid != 0).then_some(status.tracerpid),
            uid: Ids {
                real: status.ruid,
                effective: status.euid,
                saved: status.suid,
                fs: status.fuid,
            },
            gid: Ids {
                real: status.rgid,
                effective: status.egid,
                saved: status.sgid,
                fs: status.fgid,
            },
            at_secure,
            signals,
            sigquit,
            gotraceback: var("GOTRACEBACK"),
            godebug: var("GODEBUG"),
            journal_stream: var("JOURNAL_STREAM"),
            threads: status.threads,
            rss_anon: status.rssanon.map(|kib| kib * 1024),
            start_time,
        })
    }

    /// Whether Go's runtime will consider this process to be in secure mode (and, from Go 1.21,
    /// print nothing but `SIGQUIT: quit` on SIGQUIT): `AT_SECURE` when known, else a real/effective
    /// user or group ID mismatch.
    pub fn secure_mode(&self) -> bool {
        self.at_secure.unwrap_or(false)
            || self.uid.real != self.uid.effective
            || self.gid.real != self.gid.effective
    }

    /// `GOTRACEBACK=crash` (or `wer`, Windows-only but treated alike by the runtime): the dump
    /// gets extra sections, the process dumps core and exits with status 134 (SIGABRT).
    pub fn traceback_crash(&self) -> bool {
        matches!(self.gotraceback.as_deref(), Some("crash") | Some("wer"))
    }

    /// `/proc/PID/exe`: the executable, readable even when it was deleted or replaced.
    pub fn exe_link(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/exe", self.pid))
    }

    /// How long ago the process started, as of now.
    pub fn age(&self) -> Duration {
        SystemTime::now()
            .duration_since(self.start_time)
            .unwrap_or_default()
    }
}

/// In how many of the process's threads `sig` is blocked, out of how many threads.
fn blocked_in_threads(proc_: &Process, sig: u32) -> (usize, usize) {
    let Ok(tasks) = proc_.tasks() else {
        return (0, 0);
    };
    let (mut blocked, mut total) = (0, 0);
    for task in tasks.flatten() {
        if let Ok(st) = task.status() {
            total += 1;
            if SignalMasks::has(st.sigblk, sig) {
                blocked += 1;
            }
        }
    }
    (blocked, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_self() {
        let me = ProcessInfo::read(std::process::id() as i32).unwrap();
        assert_eq!(
            me.exe.as_deref(),
            Some(std::env::current_exe().unwrap().as_path())
        );
        assert!(me.threads >= 1);
        assert!(me.age() < Duration::from_secs(3600));
        assert!(!me.secure_mode());
    }

    #[test]
    fn no_such_process() {
        assert!(matches!(
            ProcessInfo::read(i32::MAX),
            Err(InspectError::NoSuchProcess { .. })
        ));
    }

    #[test]
    fn masks() {
        assert!(SignalMasks::has(0x4, 3));
        assert!(!SignalMasks::has(0x4, 2));
        assert!(!SignalMasks::has(u64::MAX, 0));
    }
}
