//! The command line, declared with clap's derive API.
//!
//! This is also the single source of the man page (`man/gorescue.1`, via clap_mangen)
//! and of the shell completions (via clap_complete).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Capture and read Go goroutine dumps, and date every stuck goroutine.
///
/// gorescue reads the all-goroutine stack dump that the Go runtime prints on SIGQUIT
/// (and the dumps of panics, fatal errors and net/http/pprof's goroutine?debug=2),
/// turns every "[chan receive, 1390 minutes]" into the wall-clock time the goroutine
/// got stuck, and points at the moment the trouble began.
#[derive(Debug, Parser)]
#[command(
    name = "gorescue",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read a saved goroutine dump (a file, a log, journalctl output) and annotate it.
    ///
    /// Finds every SIGQUIT dump, panic, fatal error and goroutine listing in the input,
    /// including dumps wrapped in journalctl output (short, short-iso, short-iso-precise,
    /// short-precise, cat), interleaved with other output, or cut off.
    Annotate(AnnotateArgs),
    /// Reassemble a goroutine dump from the log of strace -e write, then annotate it.
    ///
    /// Accepts logs made with or without -f, with -t, -tt, -ttt or -r timestamps, with
    /// -x or -xx escapes, and with <unfinished ...> / <... write resumed> pairs. Strings
    /// that strace cut at its -s limit cannot be recovered: the dump is then marked
    /// incomplete and a warning says how many writes were cut (strace -s 65536 avoids it).
    Strace(StraceArgs),
    /// Make a running Go process print its goroutine dump (SIGQUIT) and capture it.
    ///
    /// Inspects /proc/PID first: is it a Go program, which Go version, what would change or
    /// prevent the dump (GOTRACEBACK=crash, secure mode, SIGQUIT blocked or ignored, a
    /// stopped or traced process), and where fd 2 goes. Then it says how it will capture the
    /// dump and asks before sending SIGQUIT, which ends the process (exit status 2). The raw
    /// capture is saved (mode 0600) before anything parses it.
    Pid(PidArgs),
    /// Capture the goroutine dump of a systemd service's main process.
    ///
    /// Resolves the unit over D-Bus (NAME without a suffix means NAME.service; templates and
    /// aliases resolve too), shows its state, MainPID, InvocationID, Restart= and logging
    /// settings together with the process inspection of pid, then captures as pid does.
    /// When the service logs to the journal it also checks the journal's own copy of the
    /// dump, which journald's rate limit often cuts, prints what the service logged around
    /// the onset (--context), and says what systemd did next (restart, failed, inactive).
    Unit(UnitArgs),
    /// Find the goroutine dumps, panics and fatal errors already in a service's journal.
    ///
    /// Searches every invocation of the unit (across restarts), rejoins lines journald split
    /// at its LineMax, and prints the newest dump annotated with its journal timestamp, or
    /// with --list one line per dump: time, invocation, PID, kind, goroutines, complete.
    /// It sends nothing to any process: this is the "it crashed last night" workflow.
    Journal(JournalArgs),
    /// Print a shell completion script to standard output.
    Completions {
        /// The shell to generate completions for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct AnnotateArgs {
    /// The file to read; standard input when it is - or not given.
    #[arg(value_name = "FILE|-")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct StraceArgs {
    /// The strace log to read; standard input when it is - or not given.
    #[arg(value_name = "FILE|-")]
    pub file: Option<PathBuf>,
    /// The file descriptor whose writes carry the dump.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub fd: u32,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Options of the commands that read a dump someone saved.
#[derive(Debug, Args, Clone)]
pub struct OutputArgs {
    /// When the dump was taken: RFC 3339 (2026-11-28T10:35:00+01:00), local
    /// "YYYY-MM-DD HH:MM[:SS]", or @UNIXSECONDS. Overrides any time found in the input.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    #[command(flatten)]
    pub render: RenderArgs,
}

/// Options shared by every command that prints a dump.
#[derive(Debug, Args, Clone)]
pub struct RenderArgs {
    /// Output format: the annotated dump, JSON for scripts, or the dump bytes unchanged.
    #[arg(long, value_enum, default_value_t = Format::Text, value_name = "FORMAT")]
    pub format: Format,
    /// Print identical stacks once, with their count, ids and range of waits.
    #[arg(long)]
    pub group: bool,
    /// Show times in UTC instead of the local time zone.
    #[arg(long)]
    pub utc: bool,
}

/// How `gorescue pid` captures the dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Via {
    /// The file method when fd 2 is a regular file, ptrace otherwise. With --keep-running:
    /// pprof or snapshot, whichever is estimated to pause the process less.
    Auto,
    /// Read what the process appends to its stderr file.
    File,
    /// Point the process's fd 2 at a file of gorescue's (ptrace), then signal it.
    Ptrace,
    /// Read the dump back from the journal (fd 2 must be a journal stream). journald's rate
    /// limit may drop lines; used by itself when ptrace is not permitted.
    Journal,
    /// Keep the process running: fork a copy-on-write snapshot of it that alone gets SIGQUIT
    /// (ptrace). The process pauses while the kernel copies its page tables. Implies
    /// --keep-running.
    Snapshot,
    /// Keep the process running: fetch /debug/pprof/goroutine?debug=2 from a net/http/pprof
    /// listener of the process (found among its own sockets). No ptrace, no signal; the Go
    /// runtime stops its world while it lists the goroutines. Implies --keep-running.
    Pprof,
}

#[derive(Debug, Args)]
pub struct PidArgs {
    /// The process to rescue the dump of.
    #[arg(value_name = "PID")]
    pub pid: i32,
    #[command(flatten)]
    pub capture: CaptureArgs,
}

/// The options of a live capture, shared by `pid` and `unit`.
#[derive(Debug, Args, Clone)]
pub struct CaptureArgs {
    /// How to capture the dump.
    #[arg(long, value_enum, default_value_t = Via::Auto, value_name = "METHOD")]
    pub via: Via,
    /// Do not ask before sending SIGQUIT (needed without a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Inspect the process and say what would happen; send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Signal the process even if it does not look like a Go program.
    #[arg(long)]
    pub force: bool,
    /// Leave the process running: fetch the listing from its net/http/pprof listener, or dump
    /// a copy-on-write snapshot of it (a fork that alone gets SIGQUIT), whichever is
    /// estimated to pause it less (--via pprof or --via snapshot chooses). Each TCP listener
    /// of the process is probed with GET /debug/pprof/, which stops nothing.
    #[arg(long)]
    pub keep_running: bool,
    /// Give up when no new dump bytes arrive for this long (e.g. 30s, 2m).
    #[arg(long, value_name = "DUR", default_value = "30s", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// Write the rendered output to FILE instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Where the raw capture is kept (default: /var/lib/gorescue as root,
    /// $XDG_STATE_HOME/gorescue otherwise).
    #[arg(long, value_name = "DIR")]
    pub save_dir: Option<PathBuf>,
    #[command(flatten)]
    pub render: RenderArgs,
}

#[derive(Debug, Args)]
pub struct UnitArgs {
    /// The service: NAME, NAME.service, a template instance or an alias.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Talk to the user's service manager instead of the system's.
    #[arg(long)]
    pub user: bool,
    /// Print the unit's own journal lines this long around the likely onset (0: off).
    #[arg(long, value_name = "DUR", default_value = "2m", value_parser = parse_duration)]
    pub context: std::time::Duration,
    #[command(flatten)]
    pub capture: CaptureArgs,
}

#[derive(Debug, Args)]
pub struct JournalArgs {
    /// The service whose journal to search: NAME or NAME.service.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Search the user's journal instead of the system's.
    #[arg(long)]
    pub user: bool,
    /// Only look at entries from TIME on (as --at takes it, or e.g. "2h ago").
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// List every dump found (time, invocation, kind, goroutines) instead of printing the newest.
    #[arg(long)]
    pub list: bool,
    #[command(flatten)]
    pub render: RenderArgs,
}

pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
    }
    humantime::parse_duration(s).map_err(|e| format!("{e} (give e.g. 30s, 2m or 500ms)"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The dump with every line kept, blocked-since times added, and a summary.
    Text,
    /// One JSON document: {"dumps": [...]}.
    Json,
    /// The dump bytes exactly as the process wrote them.
    Raw,
}

impl CaptureArgs {
    /// True when the process is to be left running (--keep-running, --via snapshot or pprof).
    pub fn keeps_running(&self) -> bool {
        self.keep_running || matches!(self.via, Via::Snapshot | Via::Pprof)
    }
}
