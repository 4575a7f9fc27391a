//! Errors and the exit codes they map to (documented in the man page, EXIT STATUS).

use std::path::PathBuf;

/// Exit codes. 2 is also what clap uses for usage errors.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const INPUT: u8 = 3;
    pub const NO_DUMP: u8 = 4;
    pub const NO_PROCESS: u8 = 5;
    pub const NOT_PERMITTED: u8 = 6;
    pub const REFUSED: u8 = 7;
    pub const TARGET_EXITED: u8 = 8;
    pub const INTERRUPTED: u8 = 9;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {}: {source}", name(.path))]
    Read {
        path: Option<PathBuf>,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is a directory: give a file that holds a goroutine dump, or - for standard input", .0.display())]
    IsDirectory(PathBuf),
    #[error("{} is empty: expected a Go goroutine dump (SIGQUIT output, a panic, a fatal error or a goroutine listing)", name(.0))]
    Empty(Option<PathBuf>),
    #[error("no goroutine dump found in {}: expected lines such as 'SIGQUIT: quit', 'panic: ...', 'fatal error: ...' or 'goroutine 1 [running]:'{hint}", name(.path))]
    NoDump { path: Option<PathBuf>, hint: String },
    #[error(
        "invalid --at '{0}': give RFC 3339 (2026-11-28T10:35:00+01:00), local 'YYYY-MM-DD HH:MM[:SS]', or @UNIXSECONDS"
    )]
    BadTime(String),
    #[error("cannot write the output: {0}")]
    Write(#[source] std::io::Error),
    #[error(
        "no such process: PID {0} (check the PID with ps, or use 'gorescue unit' for a service)"
    )]
    NoSuchProcess(i32),
    #[error("{0}")]
    NotPermitted(String),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    TargetExited(String),
    #[error("interrupted: {0}")]
    Interrupted(String),
    #[error("{0}")]
    Live(String),
    /// Options that do not go together (exit code 2, like clap's own usage errors).
    #[error("{0}")]
    Usage(String),
    /// A systemd unit could not be used; `code` is its exit code.
    #[error("{message}")]
    Unit { code: u8, message: String },
    #[error(
        "invalid --since '{0}': give RFC 3339, local 'YYYY-MM-DD HH:MM[:SS]', @UNIXSECONDS, 'today', 'yesterday' or e.g. '2h ago'"
    )]
    BadSince(String),
    #[error("cannot read the journal: {0}")]
    Journal(String),
    #[error("no journal entries of {unit}{since}: {hint}")]
    NoJournalEntries {
        unit: String,
        since: String,
        hint: String,
    },
    #[error(
        "no goroutine dump in the journal of {unit} ({lines} line{} read{since}): {hint}",
        if *.lines == 1 { "" } else { "s" }
    )]
    NoJournalDump {
        unit: String,
        lines: u64,
        since: String,
        hint: String,
    },
}

fn name(p: &Option<PathBuf>) -> String {
    match p {
        Some(p) => p.display().to_string(),
        None => "standard input".to_string(),
    }
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Read { .. } | Error::IsDirectory(_) => exit::INPUT,
            Error::Empty(_) | Error::NoDump { .. } => exit::NO_DUMP,
            Error::BadTime(_) | Error::BadSince(_) | Error::Usage(_) => exit::USAGE,
            Error::Write(_) | Error::Live(_) | Error::Journal(_) => exit::FAILURE,
            Error::NoJournalEntries { .. } | Error::NoJournalDump { .. } => exit::NO_DUMP,
            Error::NoSuchProcess(_) => exit::NO_PROCESS,
            Error::Unit { code, .. } => *code,
            Error::NotPermitted(_) => exit::NOT_PERMITTED,
            Error::Refused(_) => exit::REFUSED,
            Error::TargetExited(_) => exit::TARGET_EXITED,
            Error::Interrupted(_) => exit::INTERRUPTED,
        }
    }
}
