//! `gorescue pid`: inspect a live process, say what will happen, signal it through a pidfd,
//! capture its dump (from its stderr file, or by pointing its fd 2 at a file of ours with
//! ptrace), keep the raw bytes, then annotate them like `annotate` does.

use std::fs::{self, File, OpenOptions};
use std::io::{self, IsTerminal, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, FixedOffset, Local, Utc};

use crate::capture::pidfd::PidFd;
use crate::capture::pprof;
use crate::capture::ptrace::Tracee;
use crate::cli::{CaptureArgs, Format, PidArgs, Via};
use crate::dump::render::Tally;
use crate::dump::{DumpTime, TimePolicy, TimeSource};
use crate::error::Error;
use crate::offline::{self, LineFeeder};
use crate::stderr::{self, Stderr};
use crate::target::{GoBuildInfo, InspectError, ProcessInfo};

/// Set by SIGINT, SIGTERM and SIGHUP while a capture runs.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static INTERRUPT_SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
    INTERRUPT_SIGNAL.store(sig, Ordering::SeqCst);
}

/// Catch SIGINT, SIGTERM and SIGHUP: they set a flag that every wait loop checks, so that
/// the target is restored and released before gorescue exits. No SA_RESTART: a prompt's
/// read returns EINTR.
fn catch_interrupts() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to atomics.
        let _ = unsafe { sigaction(sig, &action) };
    }
}

fn interrupted() -> Option<&'static str> {
    if !INTERRUPTED.load(Ordering::SeqCst) {
        return None;
    }
    Some(match INTERRUPT_SIGNAL.load(Ordering::SeqCst) {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    })
}

/// How the dump will be captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    File,
    Ptrace,
    Journal,
    /// `--keep-running`: a forked copy of the process prints the dump.
    Snapshot,
    /// `--keep-running`: the listing from the process's own net/http/pprof listener.
    Pprof,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::File => "file",
            Method::Ptrace => "ptrace",
            Method::Journal => "journal",
            Method::Snapshot => "snapshot",
            Method::Pprof => "pprof",
        }
    }
}

/// What `--keep-running` found and estimated before choosing a route.
pub struct KeepRunning {
    /// From the process's RssAnon ([`ProcessInfo::rss_anon`]).
    pub fork_estimate: Duration,
    /// The listeners were probed (not with --via snapshot).
    pub probed: bool,
    /// What probing each TCP listener found.
    pub probes: Vec<pprof::Probe>,
    /// Why the listeners could not be listed, if they could not.
    pub probe_error: Option<String>,
    pub endpoint: Option<pprof::Endpoint>,
    pub pprof_estimate: Option<Duration>,
}

/// What inspection found, and what gorescue will do.
pub struct Plan {
    pub info: ProcessInfo,
    pub build: Option<GoBuildInfo>,
    pub stderr: Stderr,
    pub method: Method,
    pub why: String,
    /// Reasons not to go ahead (each one refuses unless --force lifts it).
    pub blockers: Vec<(String, bool)>,
    /// Things that change the dump but do not prevent it.
    pub notes: Vec<String>,
    /// With --keep-running.
    pub keep: Option<KeepRunning>,
}

fn inspect_error(e: InspectError) -> Error {
    match e {
        InspectError::NoSuchProcess { pid } => Error::NoSuchProcess(pid),
        InspectError::PermissionDenied { .. } => Error::NotPermitted(e.to_string()),
        other => Error::Live(other.to_string()),
    }
}

/// Inspect the process and decide how to capture its dump. Sends nothing.
pub fn plan(pid: i32, via: Via, keep_running: bool) -> Result<Plan, Error> {
    let keep_running = keep_running || matches!(via, Via::Snapshot | Via::Pprof);
    if keep_running && matches!(via, Via::File | Via::Ptrace | Via::Journal) {
        return Err(Error::Usage(format!(
            "--keep-running does not go with --via {}, which ends the process: use --via auto, \
snapshot or pprof",
            match via {
                Via::File => "file",
                Via::Ptrace => "ptrace",
                _ => "journal",
            }
        )));
    }
    let info = ProcessInfo::read(pid).map_err(inspect_error)?;
    let build = info.go_build_info().map_err(inspect_error)?;
    let stderr = stderr::classify(pid, 2).map_err(inspect_error)?;
    let mut blockers = Vec::new();
    let mut notes = Vec::new();
    match &build {
        None => blockers.push((
            "it does not look like a Go program (no Go build info in its executable): SIGQUIT would \
only kill it or make it dump core; --force sends it anyway"
                .to_string(),
            true,
        )),
        Some(b) => {
            let secure_prints_nothing = b.version_tuple().is_none_or(|v| v >= (1, 21));
            if info.secure_mode() && secure_prints_nothing {
                blockers.push((
                    format!(
                        "it runs in secure mode (setuid/setgid or file capabilities): {} prints \
nothing but 'SIGQUIT: quit' then",
                        b.go_version
                    ),
                    false,
                ));
            }
        }
    }
    if info.state.is_gone() {
        blockers.push((format!("it is {}", info.state.describe()), false));
    } else if info.state.is_stopped() {
        blockers.push((
            format!(
                "it is {}: it would not print the dump until continued",
                info.state.describe()
            ),
            true,
        ));
    }
    if info.sigquit.ignored {
        blockers.push((
            "it ignores SIGQUIT (SIG_IGN): the signal would do nothing".to_string(),
            false,
        ));
    } else if info.sigquit.blocked {
        blockers.push((
            "SIGQUIT is blocked in all of its threads: the signal would stay pending".to_string(),
            true,
        ));
    }
    if let Some(t) = info.tracer_pid {
        notes.push(format!(
            "it is already traced by PID {t} ({}): that tracer sees the signal first",
            stderr::comm(t)
        ));
    }
    if info.traceback_crash() {
        notes.push(
            "GOTRACEBACK=crash: the dump gets one extra section per thread, then the process \
aborts (SIGABRT, exit status 134) and may dump core"
                .to_string(),
        );
    }
    let (method, why, keep) = if keep_running {
        let (m, why, k) = choose_keep_running(&info, via)?;
        (m, why, Some(k))
    } else {
        let (m, why) = choose_method(via, &stderr, info.tracer_pid)?;
        (m, why, None)
    };
    if method == Method::Pprof {
        // No signal is sent: what would make SIGQUIT useless does not matter.
        blockers.retain(|(b, _)| !b.contains("SIGQUIT") && !b.contains("secure mode"));
    }
    Ok(Plan {
        info,
        build,
        stderr,
        method,
        why,
        blockers,
        notes,
        keep,
    })
}

fn fmt_ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

fn fmt_size(b: u64) -> String {
    if b >= 1 << 30 {
        format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64)
    } else {
        format!("{} MiB", b >> 20)
    }
}

/// The route for --keep-running: probe the listeners for net/http/pprof (not with --via
/// snapshot), estimate both pauses, choose.
fn choose_keep_running(
    info: &ProcessInfo,
    via: Via,
) -> Result<(Method, String, KeepRunning), Error> {
    let pid = info.pid;
    let rss = info.rss_anon;
    let mut k = KeepRunning {
        fork_estimate: pprof::estimate_fork_pause(rss.unwrap_or(0)),
        probed: via != Via::Snapshot,
        probes: Vec::new(),
        probe_error: None,
        endpoint: None,
        pprof_estimate: None,
    };
    if k.probed {
        match pprof::probe(pid, Duration::from_secs(1)) {
            Ok(p) => k.probes = p,
            Err(e) => k.probe_error = Some(e.to_string()),
        }
        k.endpoint = k.probes.iter().find_map(|p| match p {
            pprof::Probe::Pprof(e) => Some(e.clone()),
            _ => None,
        });
        k.pprof_estimate = k
            .endpoint
            .as_ref()
            .and_then(|e| e.goroutines)
            .map(pprof::estimate_pprof_pause);
    }
    let fork_why = || {
        format!(
            "the process is frozen and forked (about {} for {} resident); only the copy gets \
SIGQUIT, with its fd 2 pointed at gorescue's memfd, and is reaped afterwards; the process's own \
stderr gets nothing",
            fmt_ms(k.fork_estimate),
            rss.map(fmt_size)
                .unwrap_or_else(|| "an unknown size".into())
        )
    };
    let pprof_why = |ep: &pprof::Endpoint| {
        format!(
            "GET {}: the Go runtime stops its world while it lists {} goroutines (about {}); \
gorescue stops, traces and signals nothing",
            ep.listing_url(),
            ep.goroutines
                .map(|g| g.to_string())
                .unwrap_or_else(|| "its".into()),
            k.pprof_estimate
                .map(fmt_ms)
                .unwrap_or_else(|| "time unknown".into())
        )
    };
    let traced = |what: &str| -> Result<(), Error> {
        match info.tracer_pid {
            Some(t) => Err(Error::Refused(format!(
                "{what} needs ptrace, but the process is already traced by PID {t}{}",
                if via == Via::Auto {
                    " (and no listener of it serves net/http/pprof)"
                } else {
                    ""
                }
            ))),
            None => Ok(()),
        }
    };
    match (via, &k.endpoint) {
        (Via::Pprof, Some(ep)) => {
            let why = format!("--via pprof: {}", pprof_why(ep));
            Ok((Method::Pprof, why, k))
        }
        (Via::Pprof, None) => Err(Error::Refused(format!(
            "--via pprof: no listener of PID {pid} serves net/http/pprof ({}); --via snapshot \
forks a copy instead",
            probes_summary(&k)
        ))),
        (Via::Auto, Some(ep))
            if info.tracer_pid.is_some()
                || k.pprof_estimate.is_some_and(|p| p <= k.fork_estimate) =>
        {
            let why = format!(
                "--keep-running: {} (a fork would pause it about {})",
                pprof_why(ep),
                fmt_ms(k.fork_estimate)
            );
            Ok((Method::Pprof, why, k))
        }
        (Via::Auto, ep) => {
            traced("--keep-running")?;
            let alt = match (ep, k.pprof_estimate) {
                (Some(_), Some(p)) => format!(
                    " (less than the {} the pprof listing would stop the Go world)",
                    fmt_ms(p)
                ),
                (Some(_), None) => " (the pprof index did not tell how many goroutines)".into(),
                (None, _) => String::new(),
            };
            let why = format!("--keep-running: {}{alt}", fork_why());
            Ok((Method::Snapshot, why, k))
        }
        _ => {
            traced("--via snapshot")?;
            let why = format!("--via snapshot: {}", fork_why());
            Ok((Method::Snapshot, why, k))
        }
    }
}

/// What probing the listeners found, in a few words.
fn probes_summary(k: &KeepRunning) -> String {
    if let Some(e) = &k.probe_error {
        return format!("cannot list its sockets: {e}");
    }
    if k.probes.is_empty() {
        return "it has no TCP listener".into();
    }
    k.probes
        .iter()
        .map(|p| match p {
            pprof::Probe::Pprof(e) => format!(
                "{}: net/http/pprof{}",
                e.addr,
                e.goroutines
                    .map(|g| format!(", {g} goroutines"))
                    .unwrap_or_default()
            ),
            pprof::Probe::Other(a, what) => format!("{a}: {what}"),
            pprof::Probe::Failed(a, what) => format!("{a}: {what}"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn choose_method(
    via: Via,
    stderr: &Stderr,
    tracer: Option<i32>,
) -> Result<(Method, String), Error> {
    let traced = |m: Method| -> Result<(), Error> {
        if m == Method::Ptrace
            && let Some(t) = tracer
        {
            return Err(Error::Refused(format!(
                "cannot use ptrace: the process is already traced by PID {t}; detach that tracer first"
            )));
        }
        Ok(())
    };
    match (via, stderr) {
        (Via::File, Stderr::File { .. }) => Ok((
            Method::File,
            "--via file: read what the process appends to its stderr file".into(),
        )),
        (Via::File, other) => Err(Error::Refused(format!(
            "--via file needs fd 2 to be a regular file, but it is {}; use --via ptrace",
            other.describe()
        ))),
        (Via::Journal, Stderr::JournalStream { .. }) => Ok((
            Method::Journal,
            "--via journal: read the dump back from the journal (journald's rate limit may drop \
lines of a large dump)"
                .into(),
        )),
        (Via::Journal, other) => Err(Error::Refused(format!(
            "--via journal needs fd 2 to be a journal stream, but it is {}; use --via ptrace",
            other.describe()
        ))),
        // Planned by choose_keep_running.
        (Via::Snapshot | Via::Pprof, _) => Err(Error::Usage(
            "--via snapshot and --via pprof leave the process running".into(),
        )),
        (Via::Ptrace, _) => {
            traced(Method::Ptrace)?;
            Ok((
                Method::Ptrace,
                "--via ptrace: point the process's fd 2 at gorescue's file, then signal it".into(),
            ))
        }
        (Via::Auto, Stderr::File { other_writers, .. }) if other_writers.is_empty() || tracer.is_some() => Ok((
            Method::File,
            "fd 2 is a regular file: gorescue reads what the process appends to it, and the file \
keeps its own copy"
                .into(),
        )),
        (Via::Auto, Stderr::File { .. }) => Ok((
            Method::Ptrace,
            "fd 2 is a file that other processes also write to: their lines could interleave \
with the dump, so gorescue points the process's fd 2 at a file of its own (ptrace)"
                .into(),
        )),
        (Via::Auto, Stderr::Closed) => Err(Error::Refused(
            "fd 2 of the process is closed: the runtime would write the dump nowhere; --via ptrace \
gives it a file to write to"
                .into(),
        )),
        (Via::Auto, other) => {
            traced(Method::Ptrace)?;
            let copy = match other {
                Stderr::DevNull => "",
                _ => "; what it writes is also copied to the original destination afterwards",
            };
            Ok((
                Method::Ptrace,
                format!(
                    "fd 2 is {}: gorescue points the process's fd 2 at a file of its own (ptrace) \
for the dump{copy}",
                    other.describe()
                ),
            ))
        }
    }
}

fn fmt_time(t: SystemTime) -> String {
    DateTime::<Local>::from(t)
        .format("%Y-%m-%d %H:%M:%S %:z")
        .to_string()
}

fn fmt_age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h {} min", s / 3600, s / 60 % 60),
        _ => format!("{} days {} h", s / 86400, s / 3600 % 24),
    }
}

impl Plan {
    /// What gorescue found and what it will do, one fact a line.
    pub fn describe(&self, save_path: &Path) -> String {
        let i = &self.info;
        let mut s = String::new();
        let exe = i
            .exe
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "?".into());
        s += &format!(
            "process:    {} ({}), {exe}{}\n",
            i.pid,
            i.comm,
            if i.exe_deleted { " (deleted)" } else { "" }
        );
        s += &format!(
            "            {}, {} threads, started {} ({} ago)\n",
            i.state.describe(),
            i.threads,
            fmt_time(i.start_time),
            fmt_age(i.age())
        );
        match &self.build {
            Some(b) => {
                s += &format!(
                    "go:         {}, main module {}\n",
                    b.go_version,
                    b.main_path.as_deref().unwrap_or("unknown")
                )
            }
            None => s += "go:         no Go build info found: not a Go program?\n",
        }
        s += &format!("stderr:     fd 2 is {}\n", self.stderr.describe());
        s += &format!(
            "GOTRACEBACK: {}\n",
            i.gotraceback
                .as_deref()
                .unwrap_or("not set (the normal dump)")
        );
        for n in &self.notes {
            s += &format!("note:       {n}\n");
        }
        for (b, _) in &self.blockers {
            s += &format!("problem:    {b}\n");
        }
        if let Some(k) = self.keep.as_ref().filter(|k| k.probed) {
            s += &format!(
                "pprof:      probed GET {} on each TCP listener: {}\n",
                pprof::INDEX_PATH,
                probes_summary(k)
            );
        }
        s += &format!("capture:    {} ({})\n", self.method.as_str(), self.why);
        s += &format!("raw dump:   saved to {} (mode 0600)\n", save_path.display());
        s += if self.method == Method::Pprof {
            "effect:     the process keeps running and is not signalled, stopped or traced; its \
Go runtime stops the world while it lists the goroutines\n"
        } else if self.method == Method::Snapshot {
            "effect:     the process keeps running: it pauses while the kernel copies its page \
tables for the fork; the copy prints the dump and exits\n"
        } else if i.traceback_crash() {
            "effect:     SIGQUIT ends the process: the Go runtime prints every goroutine's stack \
and aborts (exit status 134)\n"
        } else {
            "effect:     SIGQUIT ends the process: the Go runtime prints every goroutine's stack \
and exits with status 2\n"
        };
        s
    }
}

/// The default place for raw captures: /var/lib/gorescue as root, else
/// $XDG_STATE_HOME/gorescue (~/.local/state/gorescue).
pub fn default_save_dir() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/gorescue");
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("gorescue");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
    PathBuf::from(home).join(".local/state/gorescue")
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The raw capture file: created under a temporary name (0600), renamed into place when done.
struct RawFile {
    dir: PathBuf,
    tmp: PathBuf,
    path: PathBuf,
    file: File,
    kept: bool,
}

impl RawFile {
    fn create(dir: &Path, name: &str) -> Result<RawFile, Error> {
        let err = |what: &str, e: io::Error| {
            Error::Live(format!(
                "cannot {what} {}: {e}; choose another with --save-dir",
                dir.display()
            ))
        };
        // A directory gorescue creates is 0700; an existing one keeps its mode.
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| err("create the save directory", e))?;
        let tmp = dir.join(format!(".{name}.part"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| err("create a file in", e))?;
        Ok(RawFile {
            dir: dir.to_path_buf(),
            path: dir.join(name),
            tmp,
            file,
            kept: false,
        })
    }

    /// Give the file its final name (atomically) once its bytes are on disk.
    fn keep(&mut self) -> io::Result<()> {
        self.file.sync_all()?;
        fs::rename(&self.tmp, &self.path)?;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        self.kept = true;
        Ok(())
    }
}

impl Drop for RawFile {
    fn drop(&mut self) {
        if !self.kept {
            // Nothing was captured: leave no empty file behind.
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// What a capture produced.
struct Captured {
    bytes: u64,
    first_bytes_at: Option<DateTime<FixedOffset>>,
    exited: bool,
    interrupted: Option<&'static str>,
    timed_out: bool,
    /// For the file method: other writers' bytes may be mixed in.
    note: Option<String>,
    /// For the journal method: the dump time is the journal's, not the capture clock.
    time_source: TimeSource,
    /// For the snapshot method: how long the process was paused; for pprof, an upper bound
    /// of how long its Go world was stopped (the time to the response's first byte).
    pause: Option<Duration>,
    /// Extra members of the JSON `capture` object.
    json: serde_json::Map<String, serde_json::Value>,
}

const POLL: Duration = Duration::from_millis(20);

/// Collect the dump: call `pull` (which moves whatever new bytes there are into the raw
/// file and returns how many) until the process has exited and nothing more comes, gorescue
/// is interrupted, or no byte arrives for `timeout`.
fn collect(
    pidfd: &PidFd,
    timeout: Duration,
    mut pull: impl FnMut() -> io::Result<u64>,
) -> io::Result<Captured> {
    let mut c = Captured {
        bytes: 0,
        first_bytes_at: None,
        exited: false,
        interrupted: None,
        timed_out: false,
        note: None,
        time_source: TimeSource::Capture,
        pause: None,
        json: serde_json::Map::new(),
    };
    let mut last_progress = Instant::now();
    loop {
        // Look before pulling: bytes written before the exit are all there to pull.
        let exited = !pidfd.is_alive();
        let n = pull()?;
        if n > 0 {
            c.first_bytes_at
                .get_or_insert_with(|| Local::now().fixed_offset());
            c.bytes += n;
            last_progress = Instant::now();
        }
        if exited {
            c.exited = true;
            return Ok(c);
        }
        if let Some(sig) = interrupted() {
            c.interrupted = Some(sig);
            return Ok(c);
        }
        if n == 0 {
            if last_progress.elapsed() >= timeout {
                c.timed_out = true;
                return Ok(c);
            }
            let _ = pidfd.wait_exit(Some(POLL));
        }
    }
}

/// Ask on the terminal; the default is no.
fn confirm(plan: &Plan) -> Result<(), Error> {
    let stdin = io::stdin();
    if !stdin.is_terminal() {
        return Err(Error::Refused(
            "not sending SIGQUIT without confirmation: standard input is not a terminal; add --yes \
to go ahead, or --dry-run to only look"
                .into(),
        ));
    }
    if plan.method == Method::Snapshot {
        eprint!(
            "Pause {} ({}) briefly to fork a copy that prints the dump? [y/N] ",
            plan.info.pid, plan.info.comm
        );
    } else if let Some(ep) = plan.keep.as_ref().and_then(|k| k.endpoint.as_ref())
        && plan.method == Method::Pprof
    {
        eprint!(
            "Fetch the goroutine listing of {} ({}) from {}? [y/N] ",
            plan.info.pid,
            plan.info.comm,
            ep.listing_url()
        );
    } else {
        eprint!(
            "Send SIGQUIT to {} ({})? This ends the process. [y/N] ",
            plan.info.pid, plan.info.comm
        );
    }
    let _ = io::stderr().flush();
    // Read the answer with read(2) itself: std retries on EINTR, and a Ctrl-C at the prompt
    // must end it.
    let mut line = Vec::new();
    loop {
        // Poll with a timeout, so that a signal that lands between the check and the read
        // cannot leave gorescue waiting at the prompt.
        if interrupted().is_none() {
            let mut pfd = libc::pollfd {
                fd: 0,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one pollfd we own.
            if unsafe { libc::poll(&mut pfd, 1, 100) } == 0 {
                continue;
            }
        }
        let mut b = [0u8; 1];
        if let Some(sig) = interrupted() {
            return Err(Error::Interrupted(format!(
                "{sig} at the prompt: nothing was sent"
            )));
        }
        // SAFETY: reading into a 1-byte buffer we own.
        let n = unsafe { libc::read(0, b.as_mut_ptr().cast(), 1) };
        if let Some(sig) = interrupted() {
            return Err(Error::Interrupted(format!(
                "{sig} at the prompt: nothing was sent"
            )));
        }
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(Error::Live(format!("cannot read the answer: {e}")));
        }
        if n == 0 || b[0] == b'\n' {
            break;
        }
        line.push(b[0]);
    }
    match String::from_utf8_lossy(&line).trim() {
        "y" | "Y" | "yes" | "Yes" | "YES" => Ok(()),
        _ => Err(Error::Refused("not confirmed: nothing was sent".into())),
    }
}

/// What a command that wraps a live capture (`unit`) adds to it.
pub trait Hooks {
    /// Lines printed before the process plan.
    fn describe(&self) -> String {
        String::new()
    }
    /// Called right before the signal is sent (arm readers here).
    fn before_signal(&mut self) -> Result<(), Error> {
        Ok(())
    }
    /// Called once the raw dump is saved, before it is rendered.
    fn after_capture(&mut self, _raw: &Path, _plan: &Plan) -> AfterCapture {
        AfterCapture::default()
    }
    /// The lines to print around an onset time in the text summary (`unit --context`).
    fn context(&self) -> Option<crate::dump::render::ContextFn> {
        None
    }
}

/// What [`Hooks::after_capture`] found.
#[derive(Default)]
pub struct AfterCapture {
    /// A better dump time than the capture clock (the journal's).
    pub time: Option<DumpTime>,
    /// Extra members of the JSON `capture` object.
    pub json: serde_json::Map<String, serde_json::Value>,
    /// Lines for standard error.
    pub notes: Vec<String>,
}

/// No hooks: `gorescue pid`.
pub struct NoHooks;
impl Hooks for NoHooks {}

/// `gorescue pid`.
pub fn pid(args: &PidArgs, out: Box<dyn Write>) -> Result<Tally, Error> {
    capture(args.pid, &args.capture, &mut NoHooks, out)
}

/// Inspect, plan, confirm, signal, capture, save, render: the live capture of process `pid`.
pub fn capture(
    pid: i32,
    args: &CaptureArgs,
    hooks: &mut dyn Hooks,
    out: Box<dyn Write>,
) -> Result<Tally, Error> {
    catch_interrupts();
    let mut plan = plan(pid, args.via, args.keep_running)?;
    let dir = args.save_dir.clone().unwrap_or_else(default_save_dir);
    let stamp = Utc::now().format("%Y%m%dT%H%M%SZ");
    let name = format!(
        "{}-{}-{stamp}.dump",
        sanitize(&plan.info.comm),
        plan.info.pid
    );
    eprint!("{}", hooks.describe());
    eprint!("{}", plan.describe(&dir.join(&name)));
    let refusing: Vec<&str> = plan
        .blockers
        .iter()
        .filter(|(_, forceable)| !(*forceable && args.force))
        .map(|(b, _)| b.as_str())
        .collect();
    if args.dry_run {
        eprintln!("dry run: nothing was sent");
        return Ok(Tally::default());
    }
    if let Some(first) = refusing.first() {
        return Err(Error::Refused(format!(
            "not signalling PID {}: {first}",
            plan.info.pid
        )));
    }
    if !args.yes {
        confirm(&plan)?;
    }
    if let Some(sig) = interrupted() {
        return Err(Error::Interrupted(format!(
            "{sig} before the signal: nothing was sent"
        )));
    }

    let pidfd = PidFd::open(plan.info.pid).map_err(|e| match e.raw_os_error() {
        Some(libc::ESRCH) => Error::TargetExited(format!(
            "PID {} exited before it was signalled",
            plan.info.pid
        )),
        _ => Error::Live(format!("pidfd_open({}): {e}", plan.info.pid)),
    })?;
    // The PID could have been reused between the inspection and pidfd_open.
    let again = ProcessInfo::read(plan.info.pid).map_err(inspect_error)?;
    if again.start_time != plan.info.start_time {
        return Err(Error::TargetExited(format!(
            "PID {} is no longer the process inspected (it exited and the PID was reused): nothing was sent",
            plan.info.pid
        )));
    }
    let mut raw = RawFile::create(&dir, &name)?;
    hooks.before_signal()?;
    let sent_at = Local::now().fixed_offset();
    let captured = match plan.method {
        Method::File => capture_file(&plan, &pidfd, &mut raw, args.timeout)?,
        Method::Journal => capture_journal(&plan, &pidfd, &mut raw, args.timeout)?,
        Method::Snapshot => capture_snapshot(&plan, &pidfd, &mut raw, args.timeout)?,
        Method::Pprof => capture_pprof(&plan, &mut raw, args.timeout)?,
        Method::Ptrace => match capture_ptrace(&plan, &pidfd, &mut raw, args.timeout) {
            // Not allowed to ptrace, but the dump goes to the journal: read it back from there.
            Err(Error::NotPermitted(why))
                if matches!(plan.stderr, Stderr::JournalStream { .. }) =>
            {
                eprintln!(
                    "ptrace is not permitted ({why}); reading the dump back from the journal instead"
                );
                plan.method = Method::Journal;
                capture_journal(&plan, &pidfd, &mut raw, args.timeout)?
            }
            other => other?,
        },
    };
    finish(args, &plan, &pidfd, raw, captured, sent_at, hooks, out)
}

fn signal(plan: &Plan, pidfd: &PidFd) -> Result<(), Error> {
    pidfd
        .send_signal(libc::SIGQUIT)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ESRCH) => Error::TargetExited(format!(
                "PID {} exited before it was signalled",
                plan.info.pid
            )),
            Some(libc::EPERM) => Error::NotPermitted(format!(
                "not permitted to signal PID {}: run as root, or with CAP_KILL",
                plan.info.pid
            )),
            _ => Error::Live(format!(
                "pidfd_send_signal(SIGQUIT) to {}: {e}",
                plan.info.pid
            )),
        })?;
    eprintln!("sent SIGQUIT to {} ({})", plan.info.pid, plan.info.comm);
    Ok(())
}

fn capture_file(
    plan: &Plan,
    pidfd: &PidFd,
    raw: &mut RawFile,
    timeout: Duration,
) -> Result<Captured, Error> {
    // Through /proc/PID/fd/2, so that a deleted file works too. Armed before the signal.
    let fd_path = format!("/proc/{}/fd/2", plan.info.pid);
    let mut src =
        File::open(&fd_path).map_err(|e| Error::Live(format!("cannot open {fd_path}: {e}")))?;
    // Only what is appended from now on is the dump.
    src.seek(SeekFrom::End(0))
        .map_err(|e| Error::Live(format!("reading {fd_path}: {e}")))?;
    signal(plan, pidfd)?;
    let mut buf = vec![0u8; 1 << 20];
    let raw_file = &mut raw.file;
    let mut c = collect(pidfd, timeout, || {
        let mut total = 0u64;
        loop {
            let n = src.read(&mut buf)?;
            if n == 0 {
                return Ok(total);
            }
            raw_file.write_all(&buf[..n])?;
            total += n as u64;
        }
    })
    .map_err(|e| Error::Live(format!("reading {fd_path}: {e}")))?;
    if let Stderr::File { other_writers, .. } = &plan.stderr
        && !other_writers.is_empty()
    {
        c.note = Some(format!(
            "other processes write to the same file ({}): their lines may be mixed into the \
capture; the parser keeps only the dump's lines",
            other_writers
                .iter()
                .map(|(p, c)| format!("{p} ({c})"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(c)
}

/// Writes to the raw file and, where there is one, to a copy of the original fd 2.
struct Tee<'a> {
    raw: &'a mut File,
    forward: Option<&'a mut File>,
}

impl Write for Tee<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.raw.write_all(buf)?;
        if let Some(f) = self.forward.as_deref_mut() {
            // The original reader's copy is best effort: a closed pipe must not cost the dump.
            if f.write_all(buf).is_err() {
                self.forward = None;
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.raw.flush()
    }
}

/// Point the target's fd 2 at a memfd (ptrace), signal it while it is still frozen, let it go,
/// and drain the memfd into the raw file as the runtime writes. A memfd needs no path the
/// target could be denied, and its pages are freed as they are drained.
fn capture_ptrace(
    plan: &Plan,
    pidfd: &PidFd,
    raw: &mut RawFile,
    timeout: Duration,
) -> Result<Captured, Error> {
    use crate::capture::ptrace::Error as PtraceError;
    // A copy of the original fd 2, so that its reader (pipe, tty, socket) still gets the dump.
    let mut forward: Option<File> = match plan.stderr {
        Stderr::DevNull | Stderr::Closed => None,
        _ => pidfd.getfd(2).ok().map(File::from),
    };
    let ptrace_err = |e: PtraceError| match e {
        PtraceError::Gone { pid } => Error::TargetExited(format!(
            "PID {pid} exited before the capture was set up: nothing was sent"
        )),
        PtraceError::NotPermitted { .. } => Error::NotPermitted(format!(
            "{e}: {}",
            crate::target::process::permission_hint(crate::target::process::ptrace_scope())
        )),
        other => Error::Live(format!("{other}; nothing was sent")),
    };
    let (redirect, mut memfd) = {
        let mut tracee = Tracee::seize_pidfd(pidfd, Duration::from_secs(5)).map_err(ptrace_err)?;
        if let Some(sig) = interrupted() {
            // Dropping the tracee detaches: nothing changed.
            drop(tracee);
            return Err(Error::Interrupted(format!(
                "{sig} before the signal: nothing was sent"
            )));
        }
        let (redirect, memfd) = tracee
            .redirect_fd_to_memfd(2, "gorescue-dump")
            .map_err(ptrace_err)?;
        // Signal while every thread is still stopped: any error before this point drops the
        // tracee, which puts fd 2 back. The signal is delivered once the threads resume.
        signal(plan, pidfd)?;
        redirect.keep(&mut tracee);
        tracee.detach().map_err(ptrace_err)?;
        (redirect, memfd)
    };
    let mut out = Tee {
        raw: &mut raw.file,
        forward: forward.as_mut(),
    };
    let c = collect(pidfd, timeout, || memfd.drain(&mut out))
        .map_err(|e| Error::Live(format!("reading the capture: {e}")))?;
    if !c.exited && c.bytes == 0 {
        // No dump came (the program may handle SIGQUIT itself): give fd 2 back.
        match Tracee::seize_pidfd(pidfd, Duration::from_secs(5)) {
            Ok(mut t) => {
                if let Err(e) = redirect.restore(&mut t) {
                    eprintln!(
                        "gorescue: warning: could not give PID {} its fd 2 back: {e}",
                        plan.info.pid
                    );
                }
            }
            Err(e) => eprintln!(
                "gorescue: warning: could not give PID {} its fd 2 back: {e}",
                plan.info.pid
            ),
        }
    }
    Ok(c)
}

/// Signal the process and read its dump back from the journal: the entries logged by that
/// PID after the journal's position before the signal, with lines journald split at
/// LineMax rejoined. What journald dropped (its rate limit) is missing; the parser then
/// marks the dump incomplete.
fn capture_journal(
    plan: &Plan,
    pidfd: &PidFd,
    raw: &mut RawFile,
    timeout: Duration,
) -> Result<Captured, Error> {
    use crate::capture::journal::{Filter, Journal, LineJoiner};
    let jerr = |e: io::Error| Error::Live(format!("cannot read the journal: {e}"));
    let mut j = Journal::open(false).map_err(jerr)?;
    let cursor = j.cursor_now().map_err(jerr)?;
    let filter = Filter {
        pid: Some(plan.info.pid),
        ..Filter::default()
    };
    j.follow_from(cursor.as_deref(), &filter).map_err(jerr)?;
    signal(plan, pidfd)?;
    let mut joiner = LineJoiner::default();
    let mut first: Option<DateTime<FixedOffset>> = None;
    let raw_file = &mut raw.file;
    let mut write_line = |bytes: &[u8], time: DateTime<FixedOffset>| -> io::Result<u64> {
        first.get_or_insert(time);
        raw_file.write_all(bytes)?;
        raw_file.write_all(b"\n")?;
        Ok(bytes.len() as u64 + 1)
    };
    let mut pull = || -> io::Result<u64> {
        let mut n = 0;
        while let Some(e) = j.next_entry()? {
            if let Some(line) = joiner.push(e) {
                n += write_line(&line.bytes, line.time)?;
            }
        }
        Ok(n)
    };
    let mut c = collect(pidfd, timeout, &mut pull).map_err(jerr)?;
    if c.exited {
        // journald may still be reading the stream: take what comes until it is quiet.
        let mut quiet = Instant::now();
        let end = Instant::now() + Duration::from_secs(30);
        while quiet.elapsed() < Duration::from_secs(1) && Instant::now() < end {
            let n = pull().map_err(jerr)?;
            if n > 0 {
                c.bytes += n;
                quiet = Instant::now();
            } else {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        for line in joiner.finish() {
            c.bytes += write_line(&line.bytes, line.time).map_err(jerr)?;
        }
    }
    c.first_bytes_at = first;
    c.time_source = TimeSource::Journal;
    Ok(c)
}

/// `--keep-running`: fork a copy-on-write snapshot of the frozen process and let the copy
/// alone print the dump into gorescue's memfd (src/capture/snapshot.rs).
fn capture_snapshot(
    plan: &Plan,
    pidfd: &PidFd,
    raw: &mut RawFile,
    timeout: Duration,
) -> Result<Captured, Error> {
    use crate::capture::ptrace::Error as PtraceError;
    use crate::capture::snapshot::{self, Error as SnapError};
    let at = Local::now().fixed_offset();
    let report =
        snapshot::snapshot_dump_pidfd(pidfd, &mut raw.file, timeout).map_err(|e| match e {
            SnapError::Ptrace(PtraceError::Gone { pid }) => {
                Error::TargetExited(format!("PID {pid} exited before the snapshot was taken"))
            }
            SnapError::Ptrace(PtraceError::NotPermitted { .. }) => Error::NotPermitted(format!(
                "{e}: {}",
                crate::target::process::permission_hint(crate::target::process::ptrace_scope())
            )),
            other => Error::Live(format!(
                "the snapshot failed: {other}; PID {} keeps running",
                plan.info.pid
            )),
        })?;
    if !report.reaped {
        eprintln!(
            "gorescue: warning: the copy (PID {}) could not be reaped: it stays a zombie child of \
PID {} until that process exits",
            report.child_pid, plan.info.pid
        );
    }
    eprintln!(
        "took a snapshot of {} ({}): paused {:.1} ms; the copy printed {} bytes{}",
        plan.info.pid,
        plan.info.comm,
        report.pause.as_secs_f64() * 1e3,
        report.bytes,
        if report.killed {
            " and was killed at --timeout"
        } else {
            ""
        }
    );
    Ok(Captured {
        bytes: report.bytes,
        first_bytes_at: Some(at),
        exited: true,
        interrupted: None,
        timed_out: false,
        note: None,
        time_source: TimeSource::Capture,
        pause: Some(report.pause),
        json: serde_json::Map::new(),
    })
}

/// `--keep-running` through net/http/pprof: GET the listing from the process's own listener
/// into the raw file (src/capture/pprof.rs). Nothing is sent to the process but the request.
fn capture_pprof(plan: &Plan, raw: &mut RawFile, timeout: Duration) -> Result<Captured, Error> {
    let Some(ep) = plan.keep.as_ref().and_then(|k| k.endpoint.as_ref()) else {
        return Err(Error::Live("no net/http/pprof endpoint was found".into()));
    };
    let url = ep.listing_url();
    let at = Local::now().fixed_offset();
    let f =
        pprof::fetch(plan.info.pid, ep, &mut raw.file, timeout).map_err(|e| {
            match interrupted() {
                Some(sig) => Error::Interrupted(format!(
                    "{sig} during the fetch of {url}: nothing was saved; PID {} keeps running",
                    plan.info.pid
                )),
                None => Error::Live(format!(
                    "cannot fetch {url}: {e}; PID {} keeps running; --via snapshot forks a copy \
instead",
                    plan.info.pid
                )),
            }
        })?;
    eprintln!(
        "fetched the goroutine listing of {} ({}) from {url}: {} bytes in {}; its Go world was \
stopped at most {} (the time to the first byte)",
        plan.info.pid,
        plan.info.comm,
        f.body_bytes,
        fmt_ms(f.total),
        fmt_ms(f.first_byte)
    );
    let mut json = serde_json::Map::new();
    json.insert("pprof_url".into(), url.into());
    json.insert("pause_is_upper_bound".into(), true.into());
    let cut = f.body_bytes >= pprof::RUNTIME_CAP;
    json.insert("listing_cut_at_64mib".into(), cut.into());
    Ok(Captured {
        bytes: f.body_bytes,
        first_bytes_at: Some(at),
        exited: false,
        interrupted: None,
        timed_out: false,
        note: cut.then(|| {
            "the listing reached 64 MiB, where runtime/pprof cuts it: the goroutines past that \
point are missing; --via snapshot has no such limit"
                .to_string()
        }),
        time_source: TimeSource::Capture,
        pause: Some(f.first_byte),
        json,
    })
}

#[allow(clippy::too_many_arguments)]
fn finish(
    args: &CaptureArgs,
    plan: &Plan,
    pidfd: &PidFd,
    mut raw: RawFile,
    c: Captured,
    sent_at: DateTime<FixedOffset>,
    hooks: &mut dyn Hooks,
    out: Box<dyn Write>,
) -> Result<Tally, Error> {
    if c.bytes == 0 && plan.method == Method::Snapshot {
        return Err(Error::Live(format!(
            "the snapshot's copy printed nothing within {}: the program may catch SIGQUIT itself \
(signal.Notify); PID {} keeps running",
            humantime::format_duration(args.timeout),
            plan.info.pid
        )));
    }
    if c.bytes == 0 && plan.method == Method::Pprof {
        return Err(Error::Live(format!(
            "the pprof listing was empty; PID {} keeps running; --via snapshot forks a copy \
instead",
            plan.info.pid
        )));
    }
    if c.bytes == 0 {
        let state = match ProcessInfo::read(plan.info.pid) {
            Ok(i) if pidfd.is_alive() => format!("it is still running ({})", i.state.describe()),
            _ => "it has exited".to_string(),
        };
        return Err(match (c.interrupted, c.exited) {
            (Some(sig), _) => Error::Interrupted(format!(
                "{sig} while waiting for the dump; no dump bytes had arrived; {state}"
            )),
            (None, true) => Error::TargetExited(format!(
                "PID {} exited without printing a dump (did it catch SIGQUIT with signal.Notify and exit?)",
                plan.info.pid
            )),
            (None, false) => Error::NoDump {
                path: None,
                hint: format!(
                    ": no dump arrived within {} of SIGQUIT; the program may catch SIGQUIT itself \
(signal.Notify); {state}",
                    humantime::format_duration(args.timeout)
                ),
            },
        });
    }
    raw.keep().map_err(|e| {
        Error::Live(format!(
            "cannot save the raw dump to {}: {e}",
            raw.path.display()
        ))
    })?;
    eprintln!(
        "saved the raw dump ({} bytes) to {}",
        c.bytes,
        raw.path.display()
    );
    if let Some(n) = &c.note {
        eprintln!("note: {n}");
    }
    let after = hooks.after_capture(&raw.path, plan);
    for n in &after.notes {
        eprintln!("{n}");
    }
    let time = after.time.unwrap_or(DumpTime {
        time: c.first_bytes_at.unwrap_or(sent_at),
        source: c.time_source,
    });
    let policy = TimePolicy {
        argument: Some(time),
        fallback: None,
    };
    let mut capture = serde_json::Map::new();
    capture.insert("method".into(), plan.method.as_str().into());
    capture.insert("pid".into(), plan.info.pid.into());
    capture.insert(
        "exe".into(),
        plan.info
            .exe
            .as_ref()
            .map(|p| p.display().to_string())
            .into(),
    );
    capture.insert(
        "go_version".into(),
        plan.build.as_ref().map(|b| b.go_version.clone()).into(),
    );
    capture.insert(
        "stderr".into(),
        serde_json::json!({
            "kind": plan.stderr.kind(),
            "path": plan.stderr.path().map(|p| p.display().to_string()),
        }),
    );
    capture.insert("raw_file".into(), raw.path.display().to_string().into());
    if let Some(p) = c.pause {
        capture.insert(
            "pause_ms".into(),
            ((p.as_secs_f64() * 1e4).round() / 10.0).into(),
        );
    }
    capture.extend(c.json);
    capture.extend(after.json);
    let tally = render_saved(args, &raw.path, policy, capture, hooks.context(), out)?;
    if let Some(sig) = c.interrupted {
        return Err(Error::Interrupted(format!(
            "{sig} during the capture: what arrived was saved to {} and printed",
            raw.path.display()
        )));
    }
    if c.timed_out {
        return Err(Error::Live(format!(
            "no new dump bytes for {}: the capture stopped early; what arrived was saved to {}",
            humantime::format_duration(args.timeout),
            raw.path.display()
        )));
    }
    if (tally.incomplete > 0 || tally.dumps == 0) && plan.method == Method::Snapshot {
        return Err(Error::Live(format!(
            "the snapshot's dump is incomplete (the copy was stopped after --timeout, or the \
program catches SIGQUIT); PID {} keeps running; what arrived was saved to {}",
            plan.info.pid,
            raw.path.display()
        )));
    }
    if plan.method == Method::Pprof
        && (tally.incomplete > 0 || tally.dumps == 0 || c.note.is_some())
    {
        return Err(Error::Live(format!(
            "the pprof listing is incomplete{}; PID {} keeps running; what arrived was saved to \
{}; --via snapshot has no size limit",
            if c.note.is_some() {
                " (runtime/pprof cut it at 64 MiB)"
            } else {
                ""
            },
            plan.info.pid,
            raw.path.display()
        )));
    }
    if tally.incomplete > 0 || tally.dumps == 0 {
        return Err(Error::TargetExited(format!(
            "PID {} exited before its dump was complete; what arrived was saved to {}",
            plan.info.pid,
            raw.path.display()
        )));
    }
    Ok(tally)
}

fn render_saved(
    args: &CaptureArgs,
    path: &Path,
    policy: TimePolicy,
    capture: serde_json::Map<String, serde_json::Value>,
    context: Option<crate::dump::render::ContextFn>,
    out: Box<dyn Write>,
) -> Result<Tally, Error> {
    let opts = offline::options(&args.render);
    let file = File::open(path).map_err(|e| Error::Read {
        path: Some(path.to_path_buf()),
        source: e,
    })?;
    let (out, mut output) = match &args.output {
        None => (out, None),
        Some(p) => {
            let (w, o) = OutputFile::open(p)?;
            (w, Some(o))
        }
    };
    let mut r: Box<dyn crate::dump::render::Renderer> = match args.render.format {
        Format::Json => {
            let mut j = crate::dump::render::JsonRenderer::new(out, opts);
            j.extra = Some(
                [("capture".to_string(), serde_json::Value::Object(capture))]
                    .into_iter()
                    .collect(),
            );
            Box::new(j)
        }
        Format::Text => {
            let mut t = crate::dump::render::TextRenderer::new(out, opts);
            t.context = context;
            Box::new(t)
        }
        f => offline::renderer(f, out, opts),
    };
    let reference = Local::now().fixed_offset();
    let mut feeder = LineFeeder::new(policy, reference);
    feeder.feed_all(file, r.as_mut()).map_err(Error::Write)?;
    let tally = r.finish().map_err(Error::Write)?;
    drop(r);
    if let Some(o) = output.as_mut() {
        o.commit()?;
    }
    Ok(tally)
}

/// The file of `-o FILE`. A regular file (or a new one) is written under a temporary name
/// beside it and renamed into place once complete, so that a failed run leaves no
/// half-written file (the temporary one is removed). Anything else that exists, /dev/null, a
/// FIFO, a terminal, is written to directly: a rename would replace the device node or FIFO
/// with a plain file. A symlink to a regular file keeps pointing at the (replaced) file.
struct OutputFile {
    /// (temporary, final) names while not yet renamed.
    pending: Option<(PathBuf, PathBuf)>,
}

impl OutputFile {
    fn open(p: &Path) -> Result<(Box<dyn Write>, OutputFile), Error> {
        let err =
            |q: &Path, e: io::Error| Error::Live(format!("cannot write {}: {e}", q.display()));
        if let Ok(m) = fs::metadata(p)
            && !m.is_file()
        {
            let f = OpenOptions::new()
                .write(true)
                .open(p)
                .map_err(|e| err(p, e))?;
            return Ok((
                Box::new(io::BufWriter::new(f)),
                OutputFile { pending: None },
            ));
        }
        let target = fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let tmp = target.with_file_name(format!(
            ".{}.part",
            target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| err(&tmp, e))?;
        Ok((
            Box::new(io::BufWriter::new(f)),
            OutputFile {
                pending: Some((tmp, target)),
            },
        ))
    }

    fn commit(&mut self) -> Result<(), Error> {
        if let Some((tmp, p)) = self.pending.take() {
            fs::rename(&tmp, &p).map_err(|e| {
                let _ = fs::remove_file(&tmp);
                Error::Live(format!("cannot write {}: {e}", p.display()))
            })?;
        }
        Ok(())
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if let Some((tmp, _)) = self.pending.take() {
            let _ = fs::remove_file(tmp);
        }
    }
}
