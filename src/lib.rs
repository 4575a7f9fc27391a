//! gorescue: capture and read Go goroutine dumps, and date every stuck goroutine.
//!
//! The pipeline (see DESIGN.md): a source of bytes (a file, standard input, an strace log)
//! is split into lines ([`input`]), the dumps in them are parsed as they stream by
//! ([`dump::parse`]), annotated with blocked-since times and onset clusters
//! ([`dump::annotate`]) and rendered as text, JSON or raw bytes ([`dump::render`]).

pub mod capture;
pub mod cli;
pub mod docs;
pub mod dump;
pub mod error;
pub mod input;
pub mod journal_cmd;
pub mod live;
pub mod offline;
pub mod sock_diag;
pub mod stderr;
pub mod strace_log;
pub mod target;
pub mod unit_cmd;

pub use error::Error;
