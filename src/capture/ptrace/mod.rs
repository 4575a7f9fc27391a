//! Freeze a process with ptrace, run syscalls inside it, and let it go again.
//!
//! [`Tracee::seize`] PTRACE_SEIZEs every thread of the process and stops each with
//! PTRACE_INTERRUPT: the process is frozen. [`Tracee::inject`] makes one stopped thread execute
//! one syscall and puts its registers back. [`Tracee::redirect_fd`] and
//! [`Tracee::redirect_fd_to_memfd`] (in `redirect.rs`) build on that to point the target's fd 2
//! somewhere gorescue reads, so that the runtime writes its dump there at full speed, with no
//! ptrace stop per write.
//!
//! Safety net: a `Tracee` undoes every change not explicitly kept (fds created, fd 2 redirected,
//! the scratch page) and detaches every thread when it is dropped, on every path. If gorescue is
//! killed outright, the kernel detaches the threads itself (exit_ptrace); changes already made
//! inside the target stay (see `redirect.rs` for what that means for fd 2).
//!
//! A `Tracee` must be used and dropped on the thread that created it: the kernel only accepts
//! ptrace requests from the tracing *thread*. It is therefore neither `Send` nor `Sync`.

mod arch;
mod mem;
mod redirect;

pub use redirect::{MemfdSink, Redirect};

use std::collections::BTreeMap;
use std::io;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use crate::capture::pidfd::PidFd;
use arch::Regs;

/// How long [`Tracee::seize`] waits for every thread to stop. A thread in uninterruptible sleep
/// (state D: NFS, a stuck disk, a FUSE server) does not stop until its syscall finishes.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("process {pid} has exited")]
    Gone { pid: i32 },
    #[error(
        "not permitted to trace process {pid}: {source} (needs root or CAP_SYS_PTRACE; the process must not already be traced)"
    )]
    NotPermitted {
        pid: i32,
        #[source]
        source: io::Error,
    },
    #[error(
        "process {pid}: thread(s) {tids:?} did not stop within {timeout:?} (uninterruptible sleep?)"
    )]
    StopTimeout {
        pid: i32,
        tids: Vec<i32>,
        timeout: Duration,
    },
    #[error(
        "process {pid}: no thread can run an injected syscall (all are in signal-delivery or job-control stops)"
    )]
    NoUsableThread { pid: i32 },
    #[error("process {pid}: no syscall instruction found in its executable mappings")]
    NoSyscallInstruction { pid: i32 },
    #[error("process {pid}: injected {name} failed: {source}")]
    Syscall {
        pid: i32,
        name: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("process {pid}: {what}: {source}")]
    Io {
        pid: i32,
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("process {pid}: {0}", pid = .1)]
    Invalid(String, i32),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Where a thread is stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// PTRACE_EVENT_STOP with SIGTRAP: our PTRACE_INTERRUPT. Usable for injection.
    Interrupt,
    /// The syscall-exit stop of a syscall we injected; registers put back. Usable.
    Injected,
    /// PTRACE_EVENT_STOP with a stop signal: the process is in a job-control stop. Left alone.
    Group(i32),
    /// Signal-delivery stop: the signal is handed back on PTRACE_DETACH. Left alone.
    Signal(i32),
    /// Another ptrace-stop (none expected: no PTRACE_O_TRACE* option is set). Left alone.
    Other,
}

#[derive(Debug)]
struct Thread {
    stop: Stop,
    /// The registers the thread had before we first injected into it.
    original: Option<Regs>,
}

/// One change made inside the target, undone on drop unless kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Undo {
    /// munmap(addr, len).
    Unmap { addr: u64, len: u64 },
    /// close(fd).
    Close(i32),
    /// dup3(saved, fd, cloexec ? O_CLOEXEC : 0); close(saved).
    Restore { fd: i32, saved: i32, cloexec: bool },
}

/// A process whose threads are all ptrace-stopped by gorescue.
#[derive(Debug)]
pub struct Tracee {
    pid: i32,
    pidfd: PidFd,
    threads: BTreeMap<i32, Thread>,
    undo: Vec<Undo>,
    injector: Option<i32>,
    insn: Option<u64>,
    /// Signals taken from a signal-delivery stop to inject on that thread: sent again with
    /// tgkill before the thread is detached.
    requeue: Vec<(i32, i32)>,
    released: bool,
    /// Set by [`Tracee::fork`] while its clone runs: the PID of the child the
    /// PTRACE_EVENT_FORK / PTRACE_EVENT_CLONE stop reported.
    fork_event: Option<Option<i32>>,
    /// ptrace requests are only accepted from the tracing thread.
    _not_send: PhantomData<*const ()>,
}

impl Tracee {
    /// Seize and stop every thread of `pid` (see the module docs).
    pub fn seize(pid: i32) -> Result<Tracee> {
        let pidfd = PidFd::open(pid).map_err(|e| open_error(pid, e))?;
        Self::seize_with(pidfd, DEFAULT_STOP_TIMEOUT)
    }

    /// Seize the process `pidfd` refers to. If it has exited (and its PID was perhaps reused)
    /// by the time every thread is stopped, this fails with [`Error::Gone`]: what is seized is
    /// the process the pidfd was opened on.
    pub fn seize_pidfd(pidfd: &PidFd, stop_timeout: Duration) -> Result<Tracee> {
        let pid = pidfd.pid();
        let own = pidfd.try_clone().map_err(|e| Error::Io {
            pid,
            what: "dup of the pidfd".into(),
            source: e,
        })?;
        Self::seize_with(own, stop_timeout)
    }

    /// A tracee of `threads` (already stopped), with nothing changed in it yet.
    fn with_threads(pid: i32, pidfd: PidFd, threads: BTreeMap<i32, Thread>) -> Tracee {
        Tracee {
            pid,
            pidfd,
            threads,
            undo: Vec::new(),
            injector: None,
            insn: None,
            requeue: Vec::new(),
            released: false,
            fork_event: None,
            _not_send: PhantomData,
        }
    }

    fn seize_with(pidfd: PidFd, stop_timeout: Duration) -> Result<Tracee> {
        Self::seize_limited(pidfd, stop_timeout, usize::MAX)
    }

    /// Seize and stop ONE thread of the process `pidfd` refers to; the others run on. Enough to
    /// inject a syscall that touches no memory the other threads use (a `wait4` with no status
    /// pointer, say).
    pub fn seize_one_thread(pidfd: &PidFd, stop_timeout: Duration) -> Result<Tracee> {
        let own = pidfd.try_clone().map_err(|e| Error::Io {
            pid: pidfd.pid(),
            what: "dup of the pidfd".into(),
            source: e,
        })?;
        Self::seize_limited(own, stop_timeout, 1)
    }

    fn seize_limited(pidfd: PidFd, stop_timeout: Duration, limit: usize) -> Result<Tracee> {
        let pid = pidfd.pid();
        check_native(pid)?;
        let mut t = Tracee::with_threads(pid, pidfd, BTreeMap::new());
        let deadline = Instant::now() + stop_timeout;
        // Go starts threads at any time. Seize and stop what /proc lists, then look again: once
        // a scan finds nothing new after every thread listed before it had stopped, no thread
        // is left that could have started another.
        loop {
            let tids = list_tasks(pid).map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => Error::Gone { pid },
                _ => Error::Io {
                    pid,
                    what: format!("cannot list /proc/{pid}/task"),
                    source: e,
                },
            })?;
            let mut fresh = Vec::new();
            for tid in tids {
                if t.threads.contains_key(&tid) {
                    continue;
                }
                if t.threads.len() >= limit {
                    break;
                }
                if let Err(e) = ptrace_int(
                    libc::PTRACE_SEIZE,
                    tid,
                    libc::PTRACE_O_TRACESYSGOOD as usize,
                ) {
                    match e.raw_os_error() {
                        Some(libc::ESRCH) => continue,
                        Some(libc::EPERM) if thread_gone(pid, tid) => continue,
                        _ => {
                            if !t.pidfd.is_alive() {
                                return Err(Error::Gone { pid });
                            }
                            return Err(Error::NotPermitted { pid, source: e });
                        }
                    }
                }
                t.threads.insert(
                    tid,
                    Thread {
                        stop: Stop::Other,
                        original: None,
                    },
                );
                // ESRCH: the thread exited; the wait below sees that.
                let _ = ptrace_int(libc::PTRACE_INTERRUPT, tid, 0);
                fresh.push(tid);
            }
            if fresh.is_empty() {
                break;
            }
            let mut stuck = Vec::new();
            for tid in fresh {
                match wait_tid(pid, tid, Some(deadline)) {
                    Waited::Stopped(stop) => t.threads.get_mut(&tid).unwrap().stop = stop,
                    Waited::Syscall => t.threads.get_mut(&tid).unwrap().stop = Stop::Other,
                    Waited::Gone => {
                        t.threads.remove(&tid);
                    }
                    Waited::TimedOut => stuck.push(tid),
                }
            }
            if !stuck.is_empty() {
                return Err(Error::StopTimeout {
                    pid,
                    tids: stuck,
                    timeout: stop_timeout,
                });
            }
            if !t.pidfd.is_alive() {
                return Err(Error::Gone { pid });
            }
            if t.threads.len() >= limit {
                break;
            }
        }
        if t.threads.is_empty() || !t.pidfd.is_alive() {
            return Err(Error::Gone { pid });
        }
        Ok(t)
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The pidfd of the traced process (opened before seizing).
    pub fn pidfd(&self) -> &PidFd {
        &self.pidfd
    }

    /// How many threads are stopped.
    pub fn thread_count(&self) -> usize {
        self.threads.len()
    }

    /// Run syscall `nr(args...)` (at most 6 arguments) in one stopped thread and return the raw
    /// result (`-errno` on failure). The thread's registers are put back afterwards, fixed up
    /// so that a syscall it was interrupted in restarts as the kernel would have restarted it.
    pub fn inject(&mut self, nr: i64, args: &[u64]) -> Result<i64> {
        if self.released {
            return Err(Error::Invalid("already detached".into(), self.pid));
        }
        if args.len() > 6 {
            return Err(Error::Invalid(
                format!("{} syscall arguments (at most 6)", args.len()),
                self.pid,
            ));
        }
        let mut a = [0u64; 6];
        a[..args.len()].copy_from_slice(args);
        // Each retry follows a thread that went into another stop (a signal arrived for it),
        // or an injected syscall that a signal interrupted before it did anything.
        for _ in 0..(2 * self.threads.len() + 4) {
            let tid = self.injector()?;
            let insn = self.syscall_insn(tid)?;
            if let Some(v) = self.inject_on(tid, insn, nr, &a)? {
                return Ok(v);
            }
        }
        Err(Error::NoUsableThread { pid: self.pid })
    }

    /// [`Tracee::inject`], with a negative result turned into [`Error::Syscall`].
    pub fn syscall(&mut self, name: &'static str, nr: i64, args: &[u64]) -> Result<u64> {
        let r = self.inject(nr, args)?;
        if r < 0 {
            return Err(Error::Syscall {
                pid: self.pid,
                name,
                source: io::Error::from_raw_os_error(-r as i32),
            });
        }
        Ok(r as u64)
    }

    /// The thread to inject into: the last one used if still usable; else one stopped by our
    /// interrupt, preferring one that stopped in a syscall (its instruction is right there).
    fn injector(&mut self) -> Result<i32> {
        if let Some(tid) = self.injector
            && self
                .threads
                .get(&tid)
                .is_some_and(|t| matches!(t.stop, Stop::Interrupt | Stop::Injected))
        {
            return Ok(tid);
        }
        let usable: Vec<i32> = self
            .threads
            .iter()
            .filter(|(_, t)| matches!(t.stop, Stop::Interrupt | Stop::Injected))
            .map(|(&tid, _)| tid)
            .collect();
        let mut chosen = None;
        for &tid in &usable {
            if let Ok(r) = arch::get_regs(tid)
                && let Some(at) = arch::syscall_insn_before_pc(&r)
                && self.is_syscall_insn(at)
            {
                chosen = Some(tid);
                self.insn.get_or_insert(at);
                break;
            }
        }
        let tid = match chosen.or_else(|| usable.first().copied()) {
            Some(tid) => tid,
            None => {
                // Every thread is in a signal-delivery stop (a single-threaded target with a
                // signal pending, say). Take one: its signal is discarded when it is resumed
                // for the injection, and sent again (tgkill) just before it is detached. The
                // signal number survives; its siginfo becomes SI_TKILL from gorescue.
                let (&tid, th) = self
                    .threads
                    .iter_mut()
                    .find(|(_, t)| matches!(t.stop, Stop::Signal(_)))
                    .ok_or(Error::NoUsableThread { pid: self.pid })?;
                if let Stop::Signal(sig) = th.stop {
                    self.requeue.push((tid, sig));
                }
                th.stop = Stop::Interrupt;
                tid
            }
        };
        self.injector = Some(tid);
        Ok(tid)
    }

    fn is_syscall_insn(&self, at: u64) -> bool {
        let mut b = [0u8; 4];
        let want = arch::SYSCALL_INSN;
        at.is_multiple_of(arch::INSN_ALIGN)
            && mem::read(self.pid, at, &mut b[..want.len()]).is_ok()
            && &b[..want.len()] == want
    }

    /// The address of a syscall instruction in the target: the one the injecting thread
    /// stopped after, or else one found in the vDSO or another executable mapping.
    fn syscall_insn(&mut self, tid: i32) -> Result<u64> {
        if let Some(at) = self.insn {
            return Ok(at);
        }
        if let Ok(r) = arch::get_regs(tid)
            && let Some(at) = arch::syscall_insn_before_pc(&r)
            && self.is_syscall_insn(at)
        {
            self.insn = Some(at);
            return Ok(at);
        }
        // Not where a stopped thread's pc is (see arch::syscall_insn_before_pc on aarch64).
        let avoid: Vec<u64> = self
            .threads
            .keys()
            .filter_map(|&t| arch::get_regs(t).ok())
            .map(|r| arch::pc(&r))
            .collect();
        let at = mem::find_in_executable(self.pid, arch::SYSCALL_INSN, arch::INSN_ALIGN, &avoid)
            .ok_or(Error::NoSyscallInstruction { pid: self.pid })?;
        self.insn = Some(at);
        Ok(at)
    }

    fn io(&self, what: impl Into<String>, e: io::Error) -> Error {
        if e.raw_os_error() == Some(libc::ESRCH) && !self.pidfd.is_alive() {
            return Error::Gone { pid: self.pid };
        }
        Error::Io {
            pid: self.pid,
            what: what.into(),
            source: e,
        }
    }

    /// One attempt on one thread. `Ok(None)`: try again (possibly on another thread).
    fn inject_on(&mut self, tid: i32, insn: u64, nr: i64, a: &[u64; 6]) -> Result<Option<i64>> {
        let pid = self.pid;
        let th = self.threads.get_mut(&tid).unwrap();
        if th.original.is_none() {
            th.original = Some(arch::get_regs(tid).map_err(|e| Error::Io {
                pid,
                what: format!("cannot read the registers of thread {tid}"),
                source: e,
            })?);
        }
        let original = th.original.unwrap();
        let resume = arch::restart_fixup(&original);
        let mut r = resume;
        arch::prepare(&mut r, insn, nr, a);
        arch::set_regs(tid, &r)
            .map_err(|e| self.io(format!("cannot set the registers of thread {tid}"), e))?;

        // To the syscall-entry stop.
        ptrace_syscall(tid).map_err(|e| self.io(format!("PTRACE_SYSCALL thread {tid}"), e))?;
        match wait_tid(pid, tid, None) {
            Waited::Syscall => {}
            Waited::Stopped(stop) => {
                // A signal (or a job-control stop) came first; the syscall has not run. Give
                // the thread its own registers back, in that stop the kernel's own restart
                // logic still runs, and leave it there: PTRACE_DETACH hands the signal back.
                let th = self.threads.get_mut(&tid).unwrap();
                th.stop = stop;
                arch::set_regs(tid, &original)
                    .map_err(|e| self.io(format!("cannot restore thread {tid}"), e))?;
                self.injector = None;
                return Ok(None);
            }
            Waited::Gone | Waited::TimedOut => {
                self.threads.remove(&tid);
                return Err(Error::Gone { pid });
            }
        }
        // To the syscall-exit stop.
        ptrace_syscall(tid).map_err(|e| self.io(format!("PTRACE_SYSCALL thread {tid}"), e))?;
        let mut waited = wait_tid(pid, tid, None);
        if matches!(waited, Waited::Stopped(Stop::Other)) && self.fork_event.is_some() {
            // The PTRACE_EVENT_FORK / _CLONE stop of an injected fork (Tracee::fork): note
            // the child, then on to the syscall-exit stop.
            let child = event_msg(tid)
                .map_err(|e| self.io(format!("PTRACE_GETEVENTMSG thread {tid}"), e))?;
            self.fork_event = Some(Some(child as i32));
            ptrace_syscall(tid).map_err(|e| self.io(format!("PTRACE_SYSCALL thread {tid}"), e))?;
            waited = wait_tid(pid, tid, None);
        }
        match waited {
            Waited::Syscall => {}
            Waited::Stopped(stop) => {
                // Not expected between entry and exit. Be conservative.
                self.threads.get_mut(&tid).unwrap().stop = stop;
                let _ = arch::set_regs(tid, &original);
                self.injector = None;
                return Err(self.io(
                    format!("thread {tid} stopped unexpectedly during an injected syscall"),
                    io::Error::other(format!("{stop:?}")),
                ));
            }
            Waited::Gone | Waited::TimedOut => {
                self.threads.remove(&tid);
                return Err(Error::Gone { pid });
            }
        }
        let out = arch::get_regs(tid)
            .map_err(|e| self.io(format!("cannot read the registers of thread {tid}"), e))?;
        let th = self.threads.get_mut(&tid).unwrap();
        th.stop = Stop::Injected;
        arch::set_regs(tid, &resume)
            .map_err(|e| self.io(format!("cannot restore thread {tid}"), e))?;
        let v = arch::result(&out);
        if arch::is_restart_code(v) {
            // Interrupted before it did anything: a signal is pending for this thread.
            return Ok(None);
        }
        Ok(Some(v))
    }

    /// Make one stopped thread fork: `clone(exit_signal, 0, 0, 0, 0)` (exit_signal SIGCHLD is
    /// fork(2); 0 makes a child whose exit sends its parent no signal, reaped only with
    /// `__WALL`/`__WCLONE`). PTRACE_O_TRACEFORK and PTRACE_O_TRACECLONE are set on that thread
    /// for the syscall only, so the kernel attaches the child to gorescue before it runs a
    /// single instruction. The child is a copy of that one thread, stopped; see
    /// [`Forked::attach`]. The parent's thread gets its registers back as after any injection.
    pub fn fork(&mut self, exit_signal: i32) -> Result<Forked> {
        if self.released {
            return Err(Error::Invalid("already detached".into(), self.pid));
        }
        let opts =
            libc::PTRACE_O_TRACESYSGOOD | libc::PTRACE_O_TRACEFORK | libc::PTRACE_O_TRACECLONE;
        let a = [exit_signal as u64, 0, 0, 0, 0, 0];
        for _ in 0..(2 * self.threads.len() + 4) {
            let tid = self.injector()?;
            let insn = self.syscall_insn(tid)?;
            set_options(tid, opts)
                .map_err(|e| self.io(format!("PTRACE_SETOPTIONS thread {tid}"), e))?;
            self.fork_event = Some(None);
            let r = self.inject_on(tid, insn, libc::SYS_clone, &a);
            let child = self.fork_event.take().flatten();
            let _ = set_options(tid, libc::PTRACE_O_TRACESYSGOOD);
            let v = match r {
                Ok(Some(v)) => v,
                Ok(None) if child.is_none() => continue,
                Ok(None) | Err(_) => {
                    if let Some(c) = child {
                        kill_traced_child(c);
                    }
                    return Err(match r {
                        Err(e) => e,
                        _ => Error::Invalid("clone interrupted after forking".into(), self.pid),
                    });
                }
            };
            if v < 0 {
                return Err(Error::Syscall {
                    pid: self.pid,
                    name: "clone",
                    source: io::Error::from_raw_os_error(-v as i32),
                });
            }
            let resume = self
                .threads
                .get(&tid)
                .and_then(|t| t.original)
                .map(|o| arch::restart_fixup(&o));
            let (Some(child), Some(resume)) = (child, resume) else {
                kill_traced_child(v as i32);
                return Err(Error::Invalid(
                    format!("clone returned {v} without a fork event"),
                    self.pid,
                ));
            };
            return Ok(Forked {
                pid: child,
                pid_in_target: v as i32,
                resume,
            });
        }
        Err(Error::NoUsableThread { pid: self.pid })
    }

    /// Read target memory.
    pub fn read_memory(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        mem::read(self.pid, addr, buf).map_err(|e| self.io(format!("read memory at {addr:#x}"), e))
    }

    /// Write target memory (even read-only pages, through PTRACE_POKEDATA).
    pub fn write_memory(&self, addr: u64, data: &[u8]) -> Result<()> {
        mem::write(self.pid, addr, data)
            .map_err(|e| self.io(format!("write memory at {addr:#x}"), e))
    }

    /// Undo every change not kept, then detach every thread. Errors are reported, but every
    /// step is attempted.
    pub fn detach(mut self) -> Result<()> {
        self.release()
    }

    fn release(&mut self) -> Result<()> {
        if self.released {
            return Ok(());
        }
        let mut first_err = None;
        // Undo, newest first. A failure here leaves the change in place (and is reported),
        // but never the process stopped.
        while let Some(u) = self.undo.pop() {
            if let Err(e) = self.apply_undo(u) {
                first_err.get_or_insert(e);
                if matches!(first_err, Some(Error::Gone { .. })) {
                    break;
                }
            }
        }
        self.undo.clear();
        self.released = true;
        let pid = self.pid;
        for (&tid, th) in &mut self.threads {
            // Signals taken from this thread for an injection: send them again.
            for &(_, s) in self.requeue.iter().filter(|(t, _)| *t == tid) {
                // SAFETY: tgkill with integer arguments.
                unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, s) };
            }
            // Every thread we injected into gets exactly the registers it had when it stopped,
            // an interrupted syscall still showing -ERESTART*. PTRACE_DETACH of a stopped
            // tracee always sets TIF_SIGPENDING (__ptrace_unlink -> ptrace_signal_wake_up), so
            // on its way back to user space the thread runs the kernel's signal code, which
            // restarts the syscall (no signal, or an SA_RESTART handler) or fails it with
            // EINTR (a handler without SA_RESTART), exactly as if it had never been stopped.
            if let Some(orig) = &th.original {
                let _ = arch::set_regs(tid, orig);
            }
            let sig = match th.stop {
                Stop::Signal(s) => s,
                _ => 0,
            };
            if let Err(e) = ptrace_detach(tid, sig) {
                if e.raw_os_error() == Some(libc::ESRCH) {
                    if thread_gone(pid, tid) {
                        reap(tid);
                        continue;
                    }
                    // Not in a ptrace-stop (should not happen): stop it, then detach.
                    let _ = ptrace_int(libc::PTRACE_INTERRUPT, tid, 0);
                    let sig =
                        match wait_tid(pid, tid, Some(Instant::now() + Duration::from_secs(1))) {
                            Waited::Stopped(Stop::Signal(s)) => s,
                            _ => 0,
                        };
                    if let Err(e) = ptrace_detach(tid, sig)
                        && !thread_gone(pid, tid)
                    {
                        first_err.get_or_insert(Error::Io {
                            pid,
                            what: format!("cannot detach thread {tid}"),
                            source: e,
                        });
                    }
                } else {
                    first_err.get_or_insert(Error::Io {
                        pid,
                        what: format!("cannot detach thread {tid}"),
                        source: e,
                    });
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn apply_undo(&mut self, u: Undo) -> Result<()> {
        match u {
            Undo::Unmap { addr, len } => {
                self.syscall("munmap", libc::SYS_munmap, &[addr, len])?;
            }
            Undo::Close(fd) => {
                self.syscall("close", libc::SYS_close, &[fd as u64])?;
            }
            Undo::Restore { fd, saved, cloexec } => {
                let flags = if cloexec { libc::O_CLOEXEC as u64 } else { 0 };
                self.syscall("dup3", libc::SYS_dup3, &[saved as u64, fd as u64, flags])?;
                self.syscall("close", libc::SYS_close, &[saved as u64])?;
            }
        }
        Ok(())
    }

    fn push_undo(&mut self, u: Undo) {
        self.undo.push(u);
    }

    fn forget_undo(&mut self, u: Undo) {
        if let Some(i) = self.undo.iter().rposition(|x| *x == u) {
            self.undo.remove(i);
        }
    }
}

/// A child forked by [`Tracee::fork`]: attached to gorescue (the thread that made the
/// Tracee), not yet waited for. Killed on drop unless attached.
#[derive(Debug)]
pub struct Forked {
    /// The child's PID as gorescue sees it.
    pid: i32,
    /// As the target sees it (clone's result): differs when the target is in another PID
    /// namespace (a container). This is the one to wait4 from inside the target.
    pid_in_target: i32,
    /// The registers the forking thread of the parent resumes with; the child gets them too.
    resume: Regs,
}

impl Forked {
    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn pid_in_target(&self) -> i32 {
        self.pid_in_target
    }

    /// Wait for the child's first stop, give it the registers its parent's thread resumes
    /// with (as if it had been forked right where that thread was stopped), and hand it back as
    /// a [`Tracee`] of its one thread: inject into it, then drop it to let it run.
    pub fn attach(self, stop_timeout: Duration) -> Result<Tracee> {
        let pid = self.pid;
        let deadline = Instant::now() + stop_timeout;
        let stop = match wait_tid(pid, pid, Some(deadline)) {
            Waited::Stopped(s) => s,
            Waited::Syscall => Stop::Other,
            Waited::Gone => return Err(Error::Gone { pid }),
            Waited::TimedOut => {
                return Err(Error::StopTimeout {
                    pid,
                    tids: vec![pid],
                    timeout: stop_timeout,
                });
            }
        };
        let io = |what: &str, e| Error::Io {
            pid,
            what: what.into(),
            source: e,
        };
        set_options(pid, libc::PTRACE_O_TRACESYSGOOD).map_err(|e| io("PTRACE_SETOPTIONS", e))?;
        arch::set_regs(pid, &self.resume).map_err(|e| io("set the registers", e))?;
        let pidfd = PidFd::open(pid).map_err(|e| io("pidfd_open of the child", e))?;
        let mut threads = BTreeMap::new();
        threads.insert(
            pid,
            Thread {
                stop: if stop == Stop::Other {
                    Stop::Interrupt
                } else {
                    stop
                },
                original: None,
            },
        );
        let t = Tracee::with_threads(pid, pidfd, threads);
        std::mem::forget(self);
        Ok(t)
    }
}

impl Drop for Forked {
    fn drop(&mut self) {
        kill_traced_child(self.pid);
    }
}

/// SIGKILL a child attached to this thread and wait (as its tracer) until it has exited; it is
/// then a zombie of its real parent, which must reap it.
pub(crate) fn kill_traced_child(pid: i32) {
    // SAFETY: kill with integer arguments.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let mut st = 0;
        // SAFETY: waitpid with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut st, libc::__WALL | libc::WNOHANG) };
        if r < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
        if r == pid && (libc::WIFEXITED(st) || libc::WIFSIGNALED(st)) {
            return;
        }
        if Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// A ptrace request whose `addr` is unused and whose `data` is an integer (SEIZE, INTERRUPT,
/// SETOPTIONS, SYSCALL, DETACH).
fn ptrace_int(req: libc::c_uint, tid: i32, data: usize) -> io::Result<()> {
    // SAFETY: for these requests the kernel reads no memory: addr is ignored and data is a
    // plain integer (options or a signal number).
    let r = unsafe {
        libc::ptrace(
            req,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            data as *mut libc::c_void,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn set_options(tid: i32, opts: i32) -> io::Result<()> {
    ptrace_int(libc::PTRACE_SETOPTIONS, tid, opts as usize)
}

fn event_msg(tid: i32) -> io::Result<u64> {
    let mut msg: libc::c_ulong = 0;
    // SAFETY: PTRACE_GETEVENTMSG writes one unsigned long to a valid pointer.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_GETEVENTMSG,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            &mut msg as *mut libc::c_ulong,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(msg)
}

impl Drop for Tracee {
    fn drop(&mut self) {
        let _ = self.release();
    }
}

fn open_error(pid: i32, e: io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::ESRCH) => Error::Gone { pid },
        Some(libc::EPERM) | Some(libc::EACCES) => Error::NotPermitted { pid, source: e },
        _ => Error::Io {
            pid,
            what: "pidfd_open".into(),
            source: e,
        },
    }
}

/// The injection uses this machine's syscall numbers and register layout: refuse a 32-bit
/// process (a GOARCH=386 or arm binary) rather than run the wrong syscalls in it.
fn check_native(pid: i32) -> Result<()> {
    let mut head = [0u8; 5];
    let read = std::fs::File::open(format!("/proc/{pid}/exe"))
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head));
    match read {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::Gone { pid }),
        // Unreadable (a kernel thread, a deleted executable, permissions): let seize decide.
        Err(_) => Ok(()),
        Ok(()) if &head[..4] == b"\x7fELF" && head[4] != 2 => Err(Error::Invalid(
            "a 32-bit process: the ptrace capture supports 64-bit processes only".into(),
            pid,
        )),
        Ok(()) => Ok(()),
    }
}

fn list_tasks(pid: i32) -> io::Result<Vec<i32>> {
    let mut v: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    v.sort_unstable();
    Ok(v)
}

/// The thread no longer exists, or is a zombie / dead (it will never stop).
fn thread_gone(pid: i32, tid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")) {
        Err(_) => true,
        Ok(s) => {
            let state = s
                .rfind(')')
                .and_then(|i| s[i + 1..].trim_start().chars().next());
            matches!(state, Some('Z') | Some('X') | Some('x') | None)
        }
    }
}

fn reap(tid: i32) {
    let mut st = 0;
    // SAFETY: waitpid with a valid status pointer; WNOHANG never blocks.
    unsafe { libc::waitpid(tid, &mut st, libc::__WALL | libc::WNOHANG) };
}

enum Waited {
    /// A syscall-entry or syscall-exit stop (SIGTRAP | 0x80).
    Syscall,
    Stopped(Stop),
    Gone,
    TimedOut,
}

/// Wait for thread `tid` to stop or exit. `deadline`: poll (the thread may never stop, or be a
/// zombie leader whose exit is only reported once its siblings are reaped); `None`: block.
fn wait_tid(pid: i32, tid: i32, deadline: Option<Instant>) -> Waited {
    let mut spins = 0u32;
    loop {
        let mut status = 0;
        let flags = libc::__WALL | if deadline.is_some() { libc::WNOHANG } else { 0 };
        // SAFETY: waitpid with a valid status pointer.
        let r = unsafe { libc::waitpid(tid, &mut status, flags) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Waited::Gone; // ECHILD: not ours any more (exited and reaped)
        }
        if r == 0 {
            if thread_gone(pid, tid) {
                reap(tid);
                return Waited::Gone;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Waited::TimedOut;
            }
            spins += 1;
            if spins < 50 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(200));
            }
            continue;
        }
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            return Waited::Gone;
        }
        if !libc::WIFSTOPPED(status) {
            continue;
        }
        let sig = libc::WSTOPSIG(status);
        let event = (status >> 16) & 0xffff;
        if sig == (libc::SIGTRAP | 0x80) {
            return Waited::Syscall;
        }
        if event == libc::PTRACE_EVENT_STOP {
            return Waited::Stopped(
                if matches!(
                    sig,
                    libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
                ) {
                    Stop::Group(sig)
                } else {
                    Stop::Interrupt
                },
            );
        }
        if event == 0 {
            return Waited::Stopped(Stop::Signal(sig));
        }
        if event == libc::PTRACE_EVENT_EXIT {
            return Waited::Gone;
        }
        return Waited::Stopped(Stop::Other);
    }
}

fn ptrace_syscall(tid: i32) -> io::Result<()> {
    ptrace_int(libc::PTRACE_SYSCALL, tid, 0)
}

fn ptrace_detach(tid: i32, sig: i32) -> io::Result<()> {
    ptrace_int(libc::PTRACE_DETACH, tid, sig as usize)
}
