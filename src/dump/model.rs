//! The dump model: what the parser produces and every renderer consumes.
//!
//! A goroutine keeps the exact text of its lines in one buffer, and its parsed fields as
//! byte ranges into that buffer. The parser reuses one `Goroutine` for every goroutine of
//! a dump, so parsing allocates nothing per line once the buffers have grown; a consumer
//! that needs to keep a goroutine copies what it needs.

use std::ops::Range;

use chrono::{DateTime, FixedOffset};

/// What kind of output a dump is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DumpKind {
    /// The all-goroutine dump printed on SIGQUIT (`SIGQUIT: quit`, registers at the end).
    Sigquit,
    /// An unrecovered panic (`panic: ...`).
    Panic,
    /// A fatal runtime error (`fatal error: ...`), or another fatal signal (`SIGABRT: abort`).
    Fatal,
    /// A bare goroutine listing, as net/http/pprof's `goroutine?debug=2` serves it.
    GoroutineListing,
}

impl DumpKind {
    /// The name used in JSON and in the text summary.
    pub fn as_str(self) -> &'static str {
        match self {
            DumpKind::Sigquit => "sigquit",
            DumpKind::Panic => "panic",
            DumpKind::Fatal => "fatal",
            DumpKind::GoroutineListing => "goroutine-listing",
        }
    }
}

/// Where a dump's time came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSource {
    /// Given by the user with `--at`.
    Argument,
    /// The journal timestamp of the dump's first line.
    Journal,
    /// The strace timestamp of the write that carried the dump's first line.
    Strace,
    /// gorescue's own clock when the dump's first bytes arrived.
    Capture,
    /// The modification time of the file the dump was read from (an upper bound).
    FileMtime,
}

impl TimeSource {
    pub fn as_str(self) -> &'static str {
        match self {
            TimeSource::Argument => "argument",
            TimeSource::Journal => "journal",
            TimeSource::Strace => "strace",
            TimeSource::Capture => "capture",
            TimeSource::FileMtime => "file-mtime",
        }
    }

    /// A phrase for the text summary: "dump time 10:35 (from ...)".
    pub fn describe(self) -> &'static str {
        match self {
            TimeSource::Argument => "given with --at",
            TimeSource::Journal => "journal timestamp of the dump's first line",
            TimeSource::Strace => "strace timestamp of the dump's first write",
            TimeSource::Capture => "gorescue's clock when the dump arrived",
            TimeSource::FileMtime => {
                "the file's modification time: an upper bound, the dump may be older"
            }
        }
    }
}

/// A dump time and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DumpTime {
    pub time: DateTime<FixedOffset>,
    pub source: TimeSource,
}

/// What is known of a dump when its first line is seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpInfo {
    pub kind: DumpKind,
    /// `SIGQUIT: quit`, the panic lines, `fatal error: ...`; None for a listing.
    pub reason: Option<String>,
    pub time: Option<DumpTime>,
    /// 0-based index of the dump in the input.
    pub index: usize,
}

/// A byte range into [`Goroutine::text`].
pub type Span = Range<u32>;

/// One frame of a goroutine's stack.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame {
    pub function: Span,
    pub args: Span,
    pub file: Span,
    pub line: u32,
    /// `0x1bf` of ` +0x1bf`, without the `+`; None for inlined frames and entry pcs.
    pub offset: Option<Span>,
}

/// The `created by` record of a goroutine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreatedBy {
    pub function: Span,
    pub file: Span,
    pub line: u32,
    /// `in goroutine N` (Go 1.21 and later).
    pub goroutine: Option<u64>,
}

/// One goroutine: its lines exactly as read, and what was parsed from them.
#[derive(Debug, Clone, Default)]
pub struct Goroutine {
    /// The goroutine's lines, each followed by `\n`, starting with the header line.
    pub text: Vec<u8>,
    /// Where the header line ends in `text` (without its `\n`).
    pub header_end: u32,
    pub id: u64,
    /// The status as printed before the first comma: `chan receive (durable)`, `running`.
    pub state: Span,
    pub wait_minutes: Option<u64>,
    pub locked_to_thread: bool,
    /// Labels, unquoted (Go 1.26 `labels:{...}` inside the brackets, Go 1.27 `{...}` after).
    pub labels: Vec<(String, String)>,
    pub frames: Vec<Frame>,
    pub elided_frames: bool,
    pub created_by: Option<CreatedBy>,
    /// `goroutine running on other thread; stack unavailable`.
    pub stack_unavailable: bool,
}

impl Goroutine {
    pub fn bytes(&self, span: &Span) -> &[u8] {
        &self.text[span.start as usize..span.end as usize]
    }

    pub fn header(&self) -> &[u8] {
        &self.text[..self.header_end as usize]
    }

    pub fn state(&self) -> &[u8] {
        self.bytes(&self.state)
    }

    /// The lines of the goroutine (without their `\n`).
    pub fn lines(&self) -> impl Iterator<Item = &[u8]> {
        let body = self.text.strip_suffix(b"\n").unwrap_or(&self.text);
        body.split(|&b| b == b'\n')
    }

    pub(crate) fn clear(&mut self) {
        self.text.clear();
        self.header_end = 0;
        self.id = 0;
        self.state = 0..0;
        self.wait_minutes = None;
        self.locked_to_thread = false;
        self.labels.clear();
        self.frames.clear();
        self.elided_frames = false;
        self.created_by = None;
        self.stack_unavailable = false;
    }
}

/// What the parser reports, in input order. Every line of a dump reaches the consumer
/// exactly once: as a dump line, or inside a goroutine's text.
pub trait Sink {
    /// A dump starts. Its lines follow.
    fn dump_start(&mut self, info: &DumpInfo) -> std::io::Result<()>;
    /// A line of the dump that belongs to no goroutine (the `SIGQUIT: quit` line, `PC=`,
    /// blank separators, registers, `-----`, panic messages, `runtime stack:` frames).
    fn dump_line(&mut self, line: &[u8]) -> std::io::Result<()>;
    /// A whole goroutine.
    fn goroutine(&mut self, g: &Goroutine) -> std::io::Result<()>;
    /// The dump ended; `complete` says whether its end was seen.
    fn dump_end(&mut self, info: &DumpInfo, complete: bool) -> std::io::Result<()>;
}
