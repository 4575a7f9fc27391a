//! `--keep-running`, route 1: a goroutine dump of a live Go process that keeps running.
//!
//! ```text
//! parent (the target)                          child (a copy-on-write snapshot)
//! seize, stop every thread         ┐
//! clone(exit_signal=0) on one      │ pause     auto-attached (PTRACE_O_TRACECLONE), stopped
//! restore registers, detach all    ┘           registers := the parent thread's own
//! runs on                                      mmap scratch, memfd_create, dup3(memfd, 2)
//!                                              prctl(PR_SET_DUMPABLE, 0)   (no core dump)
//!                                              tgkill(SIGQUIT), detach
//!                                              the runtime prints its dump into the memfd,
//!                                              exit(2): a zombie of the parent
//! seize ONE thread, wait4(child, NULL,          gorescue drains the memfd until the child
//! WNOHANG|__WALL), detach                       exits (SIGKILL after the bound)
//! ```
//!
//! The child is a copy of ONE thread of the parent and shares nothing writable with it except
//! the open file descriptions it inherited (sockets, the epoll instance, pipes). It never runs
//! Go code of the program: it is resumed only with SIGQUIT pending, and the runtime's SIGQUIT
//! handler prints every goroutine and exits. `freezetheworld` signals the other Ms by `tgkill`
//! with the child's PID as thread group, which fails (those threads belong to the parent), and
//! gives up after a few milliseconds.
//!
//! Zombie: a process is reaped only by its parent. The child is made with exit signal 0, so
//! its exit sends the target no SIGCHLD (a program with `signal.Notify(SIGCHLD)` sees
//! nothing), and reaping it needs `__WALL`: after it exits, one thread of the target (only
//! one: the others run on) is seized and made to run `wait4(child, NULL, WNOHANG|__WALL,
//! NULL)`. Go's own `os/exec` only waits for the PIDs it started, so it never races this.
//!
//! Costs and risks:
//! - The pause is the seize (well under 1 ms for a handful of threads) plus the fork, which
//!   copies the page tables: about 40-50 ms per GiB of resident anonymous memory with 4 KiB
//!   pages on the development VM (2 vCPUs, Linux 6.18), much less with transparent huge pages.
//! - While the child lives (its dump takes about as long as a SIGQUIT dump: ~2 s for 10,000
//!   goroutines), every page the parent writes is copied (copy-on-write), charged to the
//!   target's memory cgroup: up to the parent's write working set over that time. The child
//!   also takes one CPU of the target's cgroup.
//! - The child runs the runtime's SIGQUIT handler only; a goroutine that was running on
//!   another thread shows as `goroutine running on other thread; stack unavailable`, as in a
//!   plain SIGQUIT dump. If another thread held a lock the handler needs (the runtime's print
//!   lock, say), the child blocks: it is killed at the bound and a new attempt may succeed.
//! - A child that is not yet a zombie when the reap is tried (its teardown takes time) is
//!   reaped again every 2 s for up to 10 s; after that it stays a zombie of the target until
//!   the target exits (gorescue says so).
//!
//! Safety: the parent is detached right after the clone, on every path (its `Tracee` is
//! dropped). A child that cannot be set up is SIGKILLed while still ptrace-stopped, before it
//! runs a single instruction. A child that does not exit within the bound (a program that
//! catches SIGQUIT with `signal.Notify`: the signal goes to a goroutine that never runs in the
//! child) is SIGKILLed. Both are then reaped as above.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use crate::capture::pidfd::PidFd;
use crate::capture::ptrace::{self, DEFAULT_STOP_TIMEOUT, Tracee};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Ptrace(#[from] ptrace::Error),
    #[error("snapshot of process {pid}: {what}: {source}")]
    Io {
        pid: i32,
        what: String,
        #[source]
        source: io::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// What a snapshot dump did.
#[derive(Debug, Clone)]
pub struct SnapshotReport {
    /// From the start of seizing the target to the last of its threads detached.
    pub pause: Duration,
    /// Of which: seizing and stopping every thread, and the injected clone (the kernel copying
    /// the page tables: proportional to the resident memory).
    pub seize: Duration,
    pub fork: Duration,
    /// Threads stopped.
    pub threads: usize,
    /// From the child's release with SIGQUIT pending to its exit (or kill).
    pub dump_time: Duration,
    /// Bytes of dump copied to `out`.
    pub bytes: u64,
    /// The child's exit status as waitpid(2) reports it (`exit(2)` is `Some(512)`), if read.
    pub child_exit: Option<i32>,
    /// The child's PID (gone once reaped).
    pub child_pid: i32,
    /// The child did not exit within the bound and was killed.
    pub killed: bool,
    /// The injected wait4 in the target reaped the child.
    pub reaped: bool,
    /// How long the one thread seized for the wait4 was stopped (summed over the attempts).
    pub reap_pause: Duration,
}

impl SnapshotReport {
    /// `exit(2)` from the runtime's SIGQUIT handler.
    pub fn child_exit_code(&self) -> Option<i32> {
        self.child_exit
            .filter(|s| libc::WIFEXITED(*s))
            .map(|s| libc::WEXITSTATUS(s))
    }
}

/// How long to keep trying to reap the child.
const REAP_BOUND: Duration = Duration::from_secs(10);

/// The child of the target, until it is reaped from inside the target.
struct Child<'a> {
    parent: &'a PidFd,
    pid: i32,
    /// Its PID in the target's PID namespace, for the wait4 injected there.
    pid_in_target: i32,
    /// Still attached to this thread: killing it needs a wait as tracer too.
    traced: bool,
    done: bool,
}

impl Child<'_> {
    /// SIGKILL (if not yet exited), wait for the exit, reap. Returns (reaped, reap pause).
    fn finish(&mut self, kill: bool) -> (bool, Duration) {
        self.done = true;
        if kill {
            if self.traced {
                ptrace::kill_traced_child(self.pid);
            } else {
                // SAFETY: kill with integer arguments; the PID cannot be reused before the
                // target reaps it.
                unsafe { libc::kill(self.pid, libc::SIGKILL) };
            }
        }
        // A killed child is a zombie only once the kernel has torn it down, which can take a
        // while (a large address space to free, an uninterruptible sleep): retry the reap,
        // seizing one thread of the target each time, until REAP_BOUND.
        let deadline = Instant::now() + REAP_BOUND;
        let mut pause = Duration::ZERO;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            wait_zombie(self.pid, left.min(Duration::from_secs(2)));
            let (reaped, p) = reap_in(self.parent, self.pid_in_target);
            pause += p;
            if reaped || state(self.pid).is_none() || Instant::now() >= deadline {
                return (reaped, pause);
            }
            // Not when the seize itself fails at once: no busy loop on the target.
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Child<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.finish(true);
        }
    }
}

/// Take a goroutine dump of the Go process `pid` through a forked copy of it; `pid` keeps
/// running (see the module docs). `timeout` bounds the child's dump.
pub fn snapshot_dump(pid: i32, out: &mut impl Write, timeout: Duration) -> Result<SnapshotReport> {
    let pidfd = PidFd::open(pid).map_err(|e| Error::Io {
        pid,
        what: "pidfd_open".into(),
        source: e,
    })?;
    snapshot_dump_pidfd(&pidfd, out, timeout)
}

/// [`snapshot_dump`] of the process a pidfd refers to (no PID-reuse race).
pub fn snapshot_dump_pidfd(
    pidfd: &PidFd,
    out: &mut impl Write,
    timeout: Duration,
) -> Result<SnapshotReport> {
    let pid = pidfd.pid();
    let t0 = Instant::now();
    let forked = {
        let mut parent = Tracee::seize_pidfd(pidfd, DEFAULT_STOP_TIMEOUT)?;
        let seize = t0.elapsed();
        let threads = parent.thread_count();
        let forked = parent.fork(0);
        let fork = t0.elapsed() - seize;
        let detached = parent.detach();
        let pause = t0.elapsed();
        match (forked, detached) {
            (Ok(f), Ok(())) => (f, pause, seize, fork, threads),
            // Forked's Drop kills the child.
            (Err(e), _) | (Ok(_), Err(e)) => return Err(e.into()),
        }
    };
    let (forked, pause, seize, fork, threads) = forked;
    let mut child = Child {
        parent: pidfd,
        pid: forked.pid(),
        pid_in_target: forked.pid_in_target(),
        traced: true,
        done: false,
    };
    let cpid = child.pid;

    // Set the child up while it is stopped. On any error the Child guard SIGKILLs it before
    // its Tracee (dropped later) lets it go.
    let mut ct = forked.attach(DEFAULT_STOP_TIMEOUT)?;
    let setup = (|| -> Result<(ptrace::MemfdSink, PidFd)> {
        let child_pidfd = ct.pidfd().try_clone().map_err(|e| Error::Io {
            pid,
            what: "dup of the child's pidfd".into(),
            source: e,
        })?;
        let (redirect, sink) = ct.redirect_fd_to_memfd(2, "gorescue-snapshot")?;
        redirect.keep(&mut ct);
        // The child's copies of every other descriptor: closing them does nothing to the
        // parent's (another fd table; sockets are not shut down, POSIX locks belong to the
        // parent's table), and the child can then touch none of the parent's sockets, pipes,
        // epoll instance or files, nor a runtime/debug.SetCrashOutput file, whatever it runs.
        // ENOSYS (before Linux 5.9): left open.
        let _ = ct.inject(libc::SYS_close_range, &[0, 1, 0]);
        let _ = ct.inject(libc::SYS_close_range, &[3, u32::MAX as u64, 0]);
        // No core dump (GOTRACEBACK=crash) of a copy of the whole heap.
        ct.syscall(
            "prctl(PR_SET_DUMPABLE)",
            libc::SYS_prctl,
            &[libc::PR_SET_DUMPABLE as u64, 0],
        )?;
        // Pending while stopped; delivered as soon as the child is detached. kill(2), not
        // tgkill: the child has one thread either way, and the dump's header then reads
        // `sigcode=0` (SI_USER), as after `kill -QUIT`.
        // SAFETY: kill with integer arguments; the child is stopped and ours.
        if unsafe { libc::kill(cpid, libc::SIGQUIT) } < 0 {
            return Err(Error::Io {
                pid,
                what: format!("kill SIGQUIT to the child {cpid}"),
                source: io::Error::last_os_error(),
            });
        }
        Ok((sink, child_pidfd))
    })();
    let (mut sink, child_pidfd) = match setup {
        Ok(s) => s,
        Err(e) => {
            child.finish(true);
            drop(ct);
            return Err(e);
        }
    };
    ct.detach()?;
    child.traced = false;

    // Drain until the child exits, or the bound.
    let released = Instant::now();
    let deadline = released + timeout;
    let mut bytes = 0u64;
    let mut killed = false;
    let io_err = |what: &str, e| Error::Io {
        pid,
        what: what.into(),
        source: e,
    };
    loop {
        bytes += sink
            .drain(out)
            .map_err(|e| io_err("copy out of the memfd", e))?;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            killed = true;
            break;
        }
        if child_pidfd
            .wait_exit(Some(left.min(Duration::from_millis(5))))
            .map_err(|e| io_err("wait for the child", e))?
        {
            break;
        }
    }
    if killed {
        let _ = child_pidfd.send_signal(libc::SIGKILL);
        let _ = child_pidfd.wait_exit(Some(Duration::from_secs(2)));
    }
    bytes += sink
        .drain(out)
        .map_err(|e| io_err("copy out of the memfd", e))?;
    let dump_time = released.elapsed();
    let child_exit = exit_status(cpid);
    let (reaped, reap_pause) = child.finish(false);
    Ok(SnapshotReport {
        pause,
        seize,
        fork,
        threads,
        dump_time,
        bytes,
        child_exit,
        child_pid: cpid,
        killed,
        reaped,
        reap_pause,
    })
}

/// Field 52 of /proc/PID/stat, `exit_code`: the status waitpid will report (while a zombie).
fn exit_status(pid: i32) -> Option<i32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    // Fields from 3 (state) on; exit_code is field 52.
    rest.split_whitespace().nth(52 - 3)?.parse().ok()
}

fn state(pid: i32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s[s.rfind(')')? + 2..].chars().next()
}

/// Wait (polling /proc) until `pid` is a zombie or gone.
fn wait_zombie(pid: i32, bound: Duration) {
    let deadline = Instant::now() + bound;
    while !matches!(state(pid), None | Some('Z') | Some('X')) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// Make the target reap its child `child`: seize one of its threads, inject
/// `wait4(child, NULL, WNOHANG|__WALL, NULL)`, detach.
fn reap_in(parent: &PidFd, child: i32) -> (bool, Duration) {
    let t0 = Instant::now();
    let Ok(mut t) = Tracee::seize_one_thread(parent, DEFAULT_STOP_TIMEOUT) else {
        return (false, t0.elapsed());
    };
    let r = t.inject(
        libc::SYS_wait4,
        &[child as u64, 0, (libc::WNOHANG | libc::__WALL) as u64, 0],
    );
    drop(t);
    (matches!(r, Ok(v) if v == child as i64), t0.elapsed())
}
