//! A streaming parser for Go goroutine dumps.
//!
//! Feed it lines (already unwrapped from any journal prefix, without line ends); it finds
//! the dumps among other output and reports them to a [`Sink`] as it goes. It keeps one
//! goroutine in memory at a time, so its memory does not grow with the input.

use std::io;

use chrono::{DateTime, FixedOffset};
use memchr::memmem;

use super::model::{
    CreatedBy, DumpInfo, DumpKind, DumpTime, Frame, Goroutine, Sink, Span, TimeSource,
};

/// How many lines a `panic:` or `fatal error:` line may be followed by before a goroutine
/// header confirms it as the start of a dump.
const PENDING_LIMIT: usize = 64;

/// The time carried by one input line, if any.
#[derive(Debug, Clone, Copy)]
pub struct LineTime {
    pub time: DateTime<FixedOffset>,
    pub source: TimeSource,
}

/// Where dump times come from when lines carry none of their own.
#[derive(Debug, Clone, Copy, Default)]
pub struct TimePolicy {
    /// Wins over everything: `--at`, or the capture clock of a live capture.
    pub argument: Option<DumpTime>,
    /// Used when the dump's first line carries no time (e.g. the file's mtime).
    pub fallback: Option<DumpTime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not in a dump.
    Outside,
    /// In a dump, before its first goroutine (signal line, PC=, panic message).
    Preamble,
    /// In a goroutine; `mid_frame` says a function line still waits for its location.
    Goroutine,
    /// After `runtime stack:`: frames that belong to no goroutine.
    RuntimeStack,
    /// In the register block of a SIGQUIT dump.
    Registers,
    /// After the register block: the dump is over unless `-----` follows.
    AfterRegisters,
}

/// The streaming dump parser. See the module documentation.
pub struct Parser {
    policy: TimePolicy,
    state: State,
    info: DumpInfo,
    dumps: usize,
    g: Goroutine,
    in_goroutine: bool,
    /// A function line was read; its location line has not come yet.
    mid_frame: bool,
    /// The goroutine's frames after `[originating from goroutine N]:` are an ancestor's.
    in_ancestors: bool,
    pending_created_by: bool,
    /// The register block ended at its architecture's last register.
    registers_complete: bool,
    saw_goroutine: bool,
    /// Blank lines seen after the register block, held until we know whether the dump goes on.
    held_blank: usize,
    /// The last line was `-----`: a crash section's `SIGQUIT: quit` may follow.
    after_separator: bool,
    register_arch: RegisterArch,
    /// `panic:`/`fatal error:` lines waiting for a goroutine header.
    pending: Vec<(Vec<u8>, Option<LineTime>)>,
    pending_kind: DumpKind,
    /// The pending dump was found in the middle of a line, so it is only a guess.
    pending_midline: bool,
    /// The journal source (`ident[pid]`) of the dump's first line, if it had one.
    source: Option<Vec<u8>>,
    sigquit: memmem::Finder<'static>,
}

impl Parser {
    pub fn new(policy: TimePolicy) -> Self {
        Parser {
            policy,
            state: State::Outside,
            info: DumpInfo {
                kind: DumpKind::Sigquit,
                reason: None,
                time: None,
                index: 0,
            },
            dumps: 0,
            g: Goroutine::default(),
            in_goroutine: false,
            mid_frame: false,
            in_ancestors: false,
            pending_created_by: false,
            registers_complete: false,
            saw_goroutine: false,
            held_blank: 0,
            after_separator: false,
            register_arch: RegisterArch::Other,
            pending: Vec::new(),
            pending_kind: DumpKind::Panic,
            pending_midline: false,
            source: None,
            sigquit: memmem::Finder::new(b"SIGQUIT: quit"),
        }
    }

    /// How many dumps have started so far.
    pub fn dumps_seen(&self) -> usize {
        self.dumps
    }

    /// Feed one line: no line end, `\r` already removed. `source` is the journal
    /// `ident[pid]` of the line, when the input is journalctl output.
    pub fn feed(
        &mut self,
        line: &[u8],
        time: &dyn Fn() -> Option<LineTime>,
        source: Option<&[u8]>,
        sink: &mut dyn Sink,
    ) -> io::Result<()> {
        if self.state != State::Outside
            && let (Some(want), Some(have)) = (&self.source, source)
            && want.as_slice() != have
        {
            // Another process's line inside this dump (journalctl of several units).
            return Ok(());
        }
        match self.state {
            State::Outside => self.outside(line, time, source, sink),
            State::AfterRegisters => self.after_registers(line, time, source, sink),
            _ => self.inside(line, time, source, sink),
        }
    }

    /// End of input.
    pub fn finish(&mut self, sink: &mut dyn Sink) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.pending.clear();
        }
        match self.state {
            State::Outside => Ok(()),
            State::AfterRegisters => self.end_dump(self.registers_complete, sink),
            State::Registers => {
                let complete = self.registers_complete;
                self.end_dump(complete, sink)
            }
            _ => {
                let complete = self.info.kind != DumpKind::Sigquit
                    && self.saw_goroutine
                    && !self.mid_frame
                    && !self.pending_created_by;
                self.end_dump(complete, sink)
            }
        }
    }

    fn outside(
        &mut self,
        line: &[u8],
        time: &dyn Fn() -> Option<LineTime>,
        source: Option<&[u8]>,
        sink: &mut dyn Sink,
    ) -> io::Result<()> {
        if let Some(pos) = self.sigquit.find(line) {
            self.pending.clear();
            let line = &line[pos..];
            self.start_dump(
                DumpKind::Sigquit,
                Some(lossy(trim_end(line))),
                time(),
                source,
                sink,
            )?;
            return sink.dump_line(line);
        }
        if !self.pending.is_empty() {
            if parse_header_prefix(line).is_some() || line == b"runtime stack:" {
                let pending = std::mem::take(&mut self.pending);
                let reason = reason_of(self.pending_kind, &pending);
                let first_time = pending[0].1;
                self.start_dump(self.pending_kind, Some(reason), first_time, source, sink)?;
                for (l, _) in &pending {
                    sink.dump_line(l)?;
                }
                return self.inside(line, time, source, sink);
            }
            // A dump that starts at the beginning of a line replaces one that was only
            // guessed from the middle of a line; nested panics (`\tpanic: ...`) stay.
            if self.pending_midline
                && let Some((kind, 0)) = signal_or_panic_start(line)
            {
                self.pending.clear();
                self.pending_kind = kind;
                self.pending_midline = false;
                self.pending.push((line.to_vec(), time()));
                return Ok(());
            }
            self.pending.push((line.to_vec(), time()));
            if self.pending.len() > PENDING_LIMIT {
                self.pending.clear();
            }
            return Ok(());
        }
        if let Some((kind, start)) = signal_or_panic_start(line) {
            self.pending_kind = kind;
            self.pending_midline = start > 0;
            self.pending.push((line[start..].to_vec(), time()));
            return Ok(());
        }
        if parse_header_prefix(line).is_some() {
            self.start_dump(DumpKind::GoroutineListing, None, time(), source, sink)?;
            return self.inside(line, time, source, sink);
        }
        Ok(())
    }

    fn after_registers(
        &mut self,
        line: &[u8],
        time: &dyn Fn() -> Option<LineTime>,
        source: Option<&[u8]>,
        sink: &mut dyn Sink,
    ) -> io::Result<()> {
        if line.is_empty() {
            self.held_blank += 1;
            return Ok(());
        }
        if line == b"-----" {
            // GOTRACEBACK=crash: another thread's section of the same dump follows.
            for _ in 0..std::mem::take(&mut self.held_blank) {
                sink.dump_line(b"")?;
            }
            self.registers_complete = false;
            self.after_separator = true;
            self.state = State::Preamble;
            return sink.dump_line(line);
        }
        self.held_blank = 0;
        let complete = self.registers_complete;
        self.end_dump(complete, sink)?;
        self.outside(line, time, source, sink)
    }

    fn inside(
        &mut self,
        line: &[u8],
        time: &dyn Fn() -> Option<LineTime>,
        source: Option<&[u8]>,
        sink: &mut dyn Sink,
    ) -> io::Result<()> {
        // A new dump starting ends this one: it was cut off. The exception is the
        // `SIGQUIT: quit` that opens a GOTRACEBACK=crash section after `-----`. (One that
        // starts in the middle of a line is found by `unrecognized`.)
        if line.starts_with(b"SIGQUIT: quit") {
            if self.after_separator && line == b"SIGQUIT: quit" {
                self.after_separator = false;
                return sink.dump_line(line);
            }
            self.end_dump(false, sink)?;
            return self.outside(line, time, source, sink);
        }
        if self.state != State::Preamble
            && self.state != State::RuntimeStack
            && (line.starts_with(b"panic: ") || line.starts_with(b"fatal error: "))
        {
            self.end_dump(false, sink)?;
            return self.outside(line, time, source, sink);
        }

        if line.is_empty() {
            self.flush_goroutine(sink)?;
            self.mid_frame = false;
            self.pending_created_by = false;
            if self.state == State::RuntimeStack {
                self.state = State::Preamble;
            }
            return sink.dump_line(line);
        }
        if let Some(hdr) = parse_header_prefix(line) {
            self.flush_goroutine(sink)?;
            self.begin_goroutine(line, hdr);
            self.state = State::Goroutine;
            return Ok(());
        }
        if self.info.kind == DumpKind::Sigquit
            && let Some(name) = register_name(line)
        {
            self.flush_goroutine(sink)?;
            if self.state != State::Registers {
                self.state = State::Registers;
                self.register_arch = match name {
                    b"rax" => RegisterArch::Amd64,
                    b"r0" => RegisterArch::Arm64,
                    _ => RegisterArch::Other,
                };
            }
            let last = match self.register_arch {
                RegisterArch::Amd64 => name == b"gs",
                RegisterArch::Arm64 => name == b"fault",
                RegisterArch::Other => false,
            };
            if last {
                self.registers_complete = true;
                self.state = State::AfterRegisters;
            }
            return sink.dump_line(line);
        }
        if self.state == State::Registers {
            // A line that is not a register ends the block. Only a block of an
            // architecture whose last register we do not know counts as complete then.
            self.state = State::AfterRegisters;
            self.registers_complete = self.register_arch == RegisterArch::Other;
            return self.after_registers(line, time, source, sink);
        }
        if line == b"runtime stack:" {
            self.flush_goroutine(sink)?;
            self.state = State::RuntimeStack;
            return sink.dump_line(line);
        }
        match self.state {
            State::Goroutine if self.in_goroutine => self.goroutine_line(line, time, source, sink),
            State::RuntimeStack if is_location_line(line) || is_function_line(line) => {
                sink.dump_line(line)
            }
            _ => self.unrecognized(line, time, source, sink),
        }
    }

    /// A line that is neither a goroutine's nor a known dump line.
    fn unrecognized(
        &mut self,
        line: &[u8],
        time: &dyn Fn() -> Option<LineTime>,
        source: Option<&[u8]>,
        sink: &mut dyn Sink,
    ) -> io::Result<()> {
        if self.sigquit.find(line).is_some() {
            // Another dump starts in the middle of this line: this one was cut off.
            self.end_dump(false, sink)?;
            return self.outside(line, time, source, sink);
        }
        let at_boundary = !self.mid_frame && !self.pending_created_by;
        if self.info.kind != DumpKind::Sigquit && self.saw_goroutine && at_boundary {
            // The goroutine list of a panic or a listing is over: other output follows.
            self.flush_goroutine(sink)?;
            self.end_dump(true, sink)?;
            return self.outside(line, time, source, sink);
        }
        if self.in_goroutine {
            // Interleaved output from another writer: keep it with the goroutine's text.
            self.push_text(line);
            Ok(())
        } else {
            sink.dump_line(line)
        }
    }

    fn goroutine_line(
        &mut self,
        line: &[u8],
        time: &dyn Fn() -> Option<LineTime>,
        source: Option<&[u8]>,
        sink: &mut dyn Sink,
    ) -> io::Result<()> {
        let base = self.g.text.len() as u32;
        let trimmed_start = line
            .iter()
            .take_while(|&&b| b == b'\t' || b == b' ')
            .count();
        if trimmed_start > 0 {
            let body = &line[trimmed_start..];
            if body == b"goroutine running on other thread; stack unavailable" {
                self.g.stack_unavailable = true;
                self.push_text(line);
                return Ok(());
            }
            if (self.mid_frame || self.pending_created_by)
                && let Some(loc) = parse_location(body)
            {
                let off = base + trimmed_start as u32;
                let file = shift(&loc.file, off);
                if self.pending_created_by {
                    if let Some(cb) = self.g.created_by.as_mut() {
                        cb.file = file;
                        cb.line = loc.line;
                    }
                    self.pending_created_by = false;
                } else if !self.in_ancestors
                    && let Some(f) = self.g.frames.last_mut()
                {
                    f.file = file;
                    f.line = loc.line;
                    f.offset = loc.offset.map(|o| shift(&o, off));
                }
                self.mid_frame = false;
                self.push_text(line);
                return Ok(());
            }
            return self.unrecognized(line, time, source, sink);
        }
        if let Some(rest) = line.strip_prefix(b"created by ") {
            // Function names hold no spaces, so ` in goroutine N` follows the first one.
            let (func, gid) = match memchr::memchr(b' ', rest) {
                Some(p) if rest[p..].starts_with(b" in goroutine ") => {
                    (&rest[..p], parse_u64(&rest[p + 14..]))
                }
                _ => (rest, None),
            };
            let start = base + 11;
            if !self.in_ancestors {
                self.g.created_by = Some(CreatedBy {
                    function: start..start + func.len() as u32,
                    file: 0..0,
                    line: 0,
                    goroutine: gid,
                });
                self.pending_created_by = true;
            }
            self.mid_frame = false;
            self.push_text(line);
            return Ok(());
        }
        if line.starts_with(b"...") && line.ends_with(b"elided...") {
            if !self.in_ancestors {
                self.g.elided_frames = true;
            }
            self.mid_frame = false;
            self.push_text(line);
            return Ok(());
        }
        if line.starts_with(b"[originating from goroutine ") {
            self.in_ancestors = true;
            self.mid_frame = false;
            self.pending_created_by = false;
            self.push_text(line);
            return Ok(());
        }
        if let Some((func, args)) = split_function_line(line) {
            if !self.in_ancestors {
                self.g.frames.push(Frame {
                    function: base..base + func as u32,
                    args: base + func as u32 + 1..base + args as u32,
                    file: 0..0,
                    line: 0,
                    offset: None,
                });
            }
            self.mid_frame = true;
            self.pending_created_by = false;
            self.push_text(line);
            return Ok(());
        }
        self.unrecognized(line, time, source, sink)
    }

    fn push_text(&mut self, line: &[u8]) {
        self.g.text.extend_from_slice(line);
        self.g.text.push(b'\n');
    }

    fn begin_goroutine(&mut self, line: &[u8], hdr: Header) {
        self.g.clear();
        self.g.text.extend_from_slice(line);
        self.g.header_end = line.len() as u32;
        self.g.text.push(b'\n');
        self.g.id = hdr.id;
        self.g.state = hdr.state;
        self.g.wait_minutes = hdr.wait_minutes;
        self.g.locked_to_thread = hdr.locked;
        self.g.labels = hdr.labels;
        self.in_goroutine = true;
        self.mid_frame = false;
        self.in_ancestors = false;
        self.pending_created_by = false;
        self.saw_goroutine = true;
    }

    fn flush_goroutine(&mut self, sink: &mut dyn Sink) -> io::Result<()> {
        if self.in_goroutine {
            self.in_goroutine = false;
            sink.goroutine(&self.g)?;
        }
        Ok(())
    }

    fn start_dump(
        &mut self,
        kind: DumpKind,
        reason: Option<String>,
        time: Option<LineTime>,
        source: Option<&[u8]>,
        sink: &mut dyn Sink,
    ) -> io::Result<()> {
        let time = match (self.policy.argument, time) {
            (Some(t), _) => Some(t),
            (None, Some(lt)) => Some(DumpTime {
                time: lt.time,
                source: lt.source,
            }),
            (None, None) => self.policy.fallback,
        };
        self.info = DumpInfo {
            kind,
            reason,
            time,
            index: self.dumps,
        };
        self.dumps += 1;
        self.state = State::Preamble;
        self.saw_goroutine = false;
        self.in_goroutine = false;
        self.mid_frame = false;
        self.pending_created_by = false;
        self.registers_complete = false;
        self.held_blank = 0;
        self.after_separator = false;
        self.source = source.map(<[u8]>::to_vec);
        sink.dump_start(&self.info)
    }

    fn end_dump(&mut self, complete: bool, sink: &mut dyn Sink) -> io::Result<()> {
        self.flush_goroutine(sink)?;
        self.state = State::Outside;
        self.held_blank = 0;
        self.source = None;
        sink.dump_end(&self.info, complete)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RegisterArch {
    Amd64,
    Arm64,
    Other,
}

/// The start of a `panic:`/`fatal error:`/fatal-signal dump in this line, and its kind.
fn signal_or_panic_start(line: &[u8]) -> Option<(DumpKind, usize)> {
    if line.starts_with(b"panic: ") {
        return Some((DumpKind::Panic, 0));
    }
    if line.starts_with(b"fatal error: ") {
        return Some((DumpKind::Fatal, 0));
    }
    // Another fatal signal, printed like SIGQUIT: `SIGABRT: abort`, `SIGSEGV: segmentation violation`.
    if line.starts_with(b"SIG") {
        let colon = memchr::memchr(b':', line)?;
        if colon > 3 && line[3..colon].iter().all(u8::is_ascii_uppercase) {
            return Some((DumpKind::Fatal, 0));
        }
    }
    if let Some(p) = memmem::find(line, b"panic: ")
        && p > 0
    {
        return Some((DumpKind::Panic, p));
    }
    if let Some(p) = memmem::find(line, b"fatal error: ")
        && p > 0
    {
        return Some((DumpKind::Fatal, p));
    }
    None
}

/// The reason of a panic or fatal dump: its message lines, up to the first blank line.
fn reason_of(kind: DumpKind, pending: &[(Vec<u8>, Option<LineTime>)]) -> String {
    let mut lines = Vec::new();
    for (l, _) in pending {
        if l.is_empty() {
            break;
        }
        lines.push(lossy(trim_end(l)));
        if kind == DumpKind::Fatal {
            break;
        }
    }
    lines.join("\n")
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn trim_end(b: &[u8]) -> &[u8] {
    let n = b
        .iter()
        .rev()
        .take_while(|c| c.is_ascii_whitespace())
        .count();
    &b[..b.len() - n]
}

fn shift(s: &Span, by: u32) -> Span {
    s.start + by..s.end + by
}

fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(v)
}

/// A parsed goroutine header.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Header {
    pub id: u64,
    pub state: Span,
    pub wait_minutes: Option<u64>,
    pub locked: bool,
    pub labels: Vec<(String, String)>,
}

/// Parse `goroutine N [gp=.. m=.. mp=..] [STATUS, ...] {labels}:`. Spans are into `line`.
pub(crate) fn parse_header_prefix(line: &[u8]) -> Option<Header> {
    let rest = line.strip_prefix(b"goroutine ")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let id = parse_u64(&rest[..digits])?;
    if !line.ends_with(b":") {
        return None;
    }
    let mut pos = 10 + digits;
    // Optional ` gp=0x.. m=N mp=0x..` or ` gp=0x.. m=nil` (Go 1.22+).
    if line[pos..].starts_with(b" gp=") {
        let open = memmem::find(&line[pos..], b" [")?;
        pos += open;
    }
    if !line[pos..].starts_with(b" [") {
        return None;
    }
    pos += 2;
    let status_start = pos;
    // The status runs to the first `,`, `]` or ` labels:{` (Go 1.26 without minutes).
    let mut end = pos;
    while end < line.len() {
        let c = line[end];
        if c == b',' || c == b']' || (c == b' ' && line[end..].starts_with(b" labels:{")) {
            break;
        }
        end += 1;
    }
    if end >= line.len() || end == status_start {
        return None;
    }
    let mut h = Header {
        id,
        state: status_start as u32..end as u32,
        ..Header::default()
    };
    pos = end;
    loop {
        let rest = &line[pos..];
        if rest.starts_with(b"]") {
            pos += 1;
            break;
        }
        if let Some(r) = rest.strip_prefix(b" labels:{") {
            let (labels, used) = parse_labels(r)?;
            h.labels = labels;
            pos += 9 + used;
            continue;
        }
        let item = rest.strip_prefix(b", ")?;
        let mut n = 0;
        while n < item.len()
            && item[n] != b','
            && item[n] != b']'
            && !item[n..].starts_with(b" labels:{")
        {
            n += 1;
        }
        let word = &item[..n];
        if let Some(m) = word.strip_suffix(b" minutes") {
            h.wait_minutes = Some(parse_u64(m)?);
        } else if word == b"locked to thread" {
            h.locked = true;
        }
        // `synctest group G` (1.24) and `synctest bubble N` (1.25+) are kept in the text only.
        pos += 2 + n;
    }
    let rest = &line[pos..];
    if rest == b":" {
        return Some(h);
    }
    // Go 1.27: ` {k: v, ...}:` after the brackets.
    let r = rest.strip_prefix(b" {")?;
    let (labels, used) = parse_labels(r)?;
    if &r[used..] != b":" {
        return None;
    }
    h.labels = labels;
    Some(h)
}

/// Parse `k: v, "k 2": "v 2"}`; returns the labels and the bytes used, up to and with `}`.
fn parse_labels(s: &[u8]) -> Option<(Vec<(String, String)>, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    if s.first() == Some(&b'}') {
        return Some((out, 1));
    }
    loop {
        let (k, used) = parse_label_word(&s[pos..])?;
        pos += used;
        pos += s[pos..].strip_prefix(b": ").map(|_| 2)?;
        let (v, used) = parse_label_word(&s[pos..])?;
        pos += used;
        out.push((k, v));
        match s.get(pos)? {
            b'}' => return Some((out, pos + 1)),
            b',' if s.get(pos + 1) == Some(&b' ') => pos += 2,
            _ => return None,
        }
    }
}

/// A label key or value: Go-quoted, or bare up to `:`, `,` or `}`.
fn parse_label_word(s: &[u8]) -> Option<(String, usize)> {
    if s.first() == Some(&b'"') {
        return unquote_go(s);
    }
    let n = s
        .iter()
        .take_while(|&&c| c != b':' && c != b',' && c != b'}')
        .count();
    if n == 0 {
        return None;
    }
    Some((lossy(&s[..n]), n))
}

/// Undo Go's strconv.Quote; returns the string and the bytes used, with both quotes.
fn unquote_go(s: &[u8]) -> Option<(String, usize)> {
    let mut out: Vec<u8> = Vec::new();
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'"' => return Some((lossy(&out), i + 1)),
            b'\\' => {
                let c = *s.get(i + 1)?;
                i += 2;
                match c {
                    b'a' => out.push(7),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'v' => out.push(11),
                    b'\\' | b'"' | b'\'' => out.push(c),
                    b'x' | b'u' | b'U' => {
                        let n = match c {
                            b'x' => 2,
                            b'u' => 4,
                            _ => 8,
                        };
                        let hex = std::str::from_utf8(s.get(i..i + n)?).ok()?;
                        let v = u32::from_str_radix(hex, 16).ok()?;
                        i += n;
                        if c == b'x' {
                            out.push(v as u8);
                        } else {
                            let ch = char::from_u32(v).unwrap_or(char::REPLACEMENT_CHARACTER);
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                    }
                    b'0'..=b'7' => {
                        let oct = std::str::from_utf8(s.get(i - 1..i + 2)?).ok()?;
                        out.push(u8::from_str_radix(oct, 8).ok()?);
                        i += 2;
                    }
                    _ => return None,
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    None
}

/// A location line's parts, with spans relative to the trimmed line.
#[derive(Debug, PartialEq)]
pub(crate) struct Location {
    pub file: Span,
    pub line: u32,
    pub offset: Option<Span>,
}

/// Parse `FILE:LINE [+0xOFF] [fp=0x.. sp=0x.. pc=0x..]` (leading whitespace removed).
/// Read from the right, since FILE may contain spaces and colons.
pub(crate) fn parse_location(s: &[u8]) -> Option<Location> {
    let mut end = s.len();
    let mut offset = None;
    // At most three `fp=`/`sp=`/`pc=` words, then at most one `+0x..`.
    for _ in 0..4 {
        let Some(sp) = memchr::memrchr(b' ', &s[..end]) else {
            break;
        };
        let word = &s[sp + 1..end];
        if word.len() > 5
            && matches!(&word[..5], b"fp=0x" | b"sp=0x" | b"pc=0x")
            && offset.is_none()
        {
            end = sp;
            continue;
        }
        if word.len() > 3 && word.starts_with(b"+0x") && word[3..].iter().all(u8::is_ascii_hexdigit)
        {
            offset = Some(sp as u32 + 2..end as u32);
            end = sp;
        }
        break;
    }
    let colon = memchr::memrchr(b':', &s[..end])?;
    let line = parse_u64(&s[colon + 1..end])?;
    if colon == 0 {
        return None;
    }
    Some(Location {
        file: 0..colon as u32,
        line: u32::try_from(line).ok()?,
        offset,
    })
}

fn is_location_line(line: &[u8]) -> bool {
    let n = line
        .iter()
        .take_while(|&&b| b == b'\t' || b == b' ')
        .count();
    n > 0 && parse_location(&line[n..]).is_some()
}

fn is_function_line(line: &[u8]) -> bool {
    split_function_line(line).is_some()
}

/// `FUNC(ARGS)`: the index of the `(` that opens the arguments and of the final `)`.
/// Arguments never contain `(`, so it is the last one.
pub(crate) fn split_function_line(line: &[u8]) -> Option<(usize, usize)> {
    let close = line.len().checked_sub(1)?;
    if line[close] != b')' {
        return None;
    }
    let open = memchr::memrchr(b'(', line)?;
    if open == 0 || line[0] == b' ' || line[0] == b'\t' {
        return None;
    }
    Some((open, close))
}

/// If this line is a register line (`rax    0x0`, `r0      0x1`), its register name.
pub(crate) fn register_name(line: &[u8]) -> Option<&[u8]> {
    let n = line
        .iter()
        .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        .count();
    if n == 0 || n > 8 || !line[0].is_ascii_lowercase() {
        return None;
    }
    let rest = &line[n..];
    let sp = rest.iter().take_while(|&&c| c == b' ').count();
    if sp == 0 {
        return None;
    }
    let hex = rest[sp..].strip_prefix(b"0x")?;
    if hex.is_empty() || !hex.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    Some(&line[..n])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::model::{DumpInfo, Goroutine};

    fn header(line: &str) -> Header {
        parse_header_prefix(line.as_bytes()).unwrap_or_else(|| panic!("not a header: {line}"))
    }

    fn state<'a>(line: &'a str, h: &Header) -> &'a str {
        &line[h.state.start as usize..h.state.end as usize]
    }

    #[test]
    fn header_forms() {
        let cases: &[(&str, u64, &str, Option<u64>, bool)] = &[
            ("goroutine 0 [idle]:", 0, "idle", None, false),
            (
                "goroutine 1 [chan receive, 21508 minutes]:",
                1,
                "chan receive",
                Some(21508),
                false,
            ),
            (
                "goroutine 16 gp=0x12223f7490e0 m=nil [chan receive, 1 minutes, locked to thread]:",
                16,
                "chan receive",
                Some(1),
                true,
            ),
            (
                "goroutine 14 gp=0x12223f748d20 m=0 mp=0x629520 [syscall, 1 minutes]:",
                14,
                "syscall",
                Some(1),
                false,
            ),
            (
                "goroutine 40 gp=0xc0000eca80 m=6 mp=0xc00007c008 [running]:",
                40,
                "running",
                None,
                false,
            ),
            (
                "goroutine 7 [chan receive (synctest), 1 minutes, synctest group 20]:",
                7,
                "chan receive (synctest)",
                Some(1),
                false,
            ),
            (
                "goroutine 8 gp=0x1 m=nil [synctest.Run (durable), 1 minutes, synctest bubble 1]:",
                8,
                "synctest.Run (durable)",
                Some(1),
                false,
            ),
            (
                "goroutine 9 [sync.Mutex.Lock, 3 minutes, synctest bubble 1]:",
                9,
                "sync.Mutex.Lock",
                Some(3),
                false,
            ),
            (
                "goroutine 10 [chan send (scan)]:",
                10,
                "chan send (scan)",
                None,
                false,
            ),
            (
                "goroutine 11 [chan receive (leaked), 2 minutes]:",
                11,
                "chan receive (leaked)",
                Some(2),
                false,
            ),
            (
                "goroutine 12 [waiting for cgo callback]:",
                12,
                "waiting for cgo callback",
                None,
                false,
            ),
            (
                "goroutine 18446744073709551615 [???]:",
                u64::MAX,
                "???",
                None,
                false,
            ),
        ];
        for &(line, id, st, wait, locked) in cases {
            let h = header(line);
            assert_eq!(h.id, id, "{line}");
            assert_eq!(state(line, &h), st, "{line}");
            assert_eq!(h.wait_minutes, wait, "{line}");
            assert_eq!(h.locked, locked, "{line}");
            assert!(h.labels.is_empty(), "{line}");
        }
        for bad in [
            "goroutine running on other thread; stack unavailable",
            "goroutine 1 [running]",
            "goroutine x [running]:",
            "goroutine 1 []:",
            "goroutine 1 [running",
            "goroutine 99999999999999999999999 [running]:",
            "[originating from goroutine 5]:",
        ] {
            assert!(parse_header_prefix(bad.as_bytes()).is_none(), "{bad}");
        }
    }

    #[test]
    fn labels_126_and_127() {
        let l126 = r#"goroutine 30 gp=0x129cecafaf00 m=nil [chan receive, 1 minutes labels:{"req id": "a b", "worker": "w1", "odd": "x], \"y\""}]:"#;
        let h = header(l126);
        assert_eq!(state(l126, &h), "chan receive");
        assert_eq!(h.wait_minutes, Some(1));
        assert_eq!(
            h.labels,
            vec![
                ("req id".into(), "a b".into()),
                ("worker".into(), "w1".into()),
                ("odd".into(), "x], \"y\"".into())
            ]
        );
        let l126b = r#"goroutine 31 [select labels:{"k": "v"}]:"#;
        let h = header(l126b);
        assert_eq!(state(l126b, &h), "select");
        assert_eq!(h.labels, vec![("k".into(), "v".into())]);
        let l127 = r#"goroutine 16 gp=0xfd11175d0e0 m=nil [chan receive, 1 minutes] {"req id": "a b", worker: w1, path: /api/v1.2/x_y, "u": "\u00e9\x41"}:"#;
        let h = header(l127);
        assert_eq!(h.wait_minutes, Some(1));
        assert_eq!(
            h.labels,
            vec![
                ("req id".into(), "a b".into()),
                ("worker".into(), "w1".into()),
                ("path".into(), "/api/v1.2/x_y".into()),
                ("u".into(), "\u{e9}A".into())
            ]
        );
    }

    #[test]
    fn locations() {
        let loc = |s: &str| parse_location(s.as_bytes()).unwrap();
        let l = loc(
            "/usr/lib/go/src/runtime/proc.go:435 +0xce fp=0xc0000a1f38 sp=0xc0000a1f18 pc=0x43c0ce",
        );
        assert_eq!((l.file, l.line, l.offset), (0..31, 435, Some(37..41)));
        let l = loc("/src/prog/main.go:35");
        assert_eq!((l.file, l.line, l.offset), (0..17, 35, None));
        let l = loc("/src/prog/main.go:59 fp=0x1 sp=0x2 pc=0x3");
        assert_eq!((l.line, l.offset), (59, None));
        let l = loc("_cgo_gotypes.go:56 +0x4d");
        assert_eq!((l.file, l.line), (0..15, 56));
        let l = loc("/home/my dir/a:b/x.go:7 +0x1");
        assert_eq!((l.file, l.line), (0..21, 7));
        let l = loc("?:0");
        assert_eq!((l.file, l.line), (0..1, 0));
        assert!(parse_location(b"no line number").is_none());
        assert!(parse_location(b":12").is_none());
    }

    #[test]
    fn function_lines() {
        fn f(s: &str) -> Option<(&str, &str)> {
            split_function_line(s.as_bytes()).map(|(o, c)| (&s[..o], &s[o + 1..c]))
        }
        assert_eq!(f("main.main()"), Some(("main.main", "")));
        assert_eq!(
            f("main.(*Box[...]).Wait(0xc0000a0000)"),
            Some(("main.(*Box[...]).Wait", "0xc0000a0000"))
        );
        assert_eq!(
            f(
                "runtime/pprof.Do({0x62bd10?, 0x659360?}, {{0xfd11174c0c0?, 0x0?, 0x0?}}, 0xfd1116fc0b0)"
            ),
            Some((
                "runtime/pprof.Do",
                "{0x62bd10?, 0x659360?}, {{0xfd11174c0c0?, 0x0?, 0x0?}}, 0xfd1116fc0b0"
            ))
        );
        assert_eq!(
            f("main.inlinedRecv(...)"),
            Some(("main.inlinedRecv", "..."))
        );
        assert_eq!(
            f("panic({0x55a808?, 0x4a4958?})"),
            Some(("panic", "{0x55a808?, 0x4a4958?}"))
        );
        assert_eq!(f("\tmain.main()"), None);
        assert_eq!(f("exit status 2"), None);
    }

    #[test]
    fn registers() {
        assert_eq!(register_name(b"rax    0x12223f76e038"), Some(&b"rax"[..]));
        assert_eq!(register_name(b"rflags 0x246"), Some(&b"rflags"[..]));
        assert_eq!(register_name(b"r0      0x1"), Some(&b"r0"[..]));
        assert_eq!(register_name(b"fault   0x0"), Some(&b"fault"[..]));
        assert_eq!(register_name(b"main.main()"), None);
        assert_eq!(register_name(b"rax 12"), None);
        assert_eq!(register_name(b"exit status 2"), None);
    }

    /// Collects what the parser reports.
    #[derive(Default)]
    struct Collect {
        events: Vec<String>,
        goroutines: Vec<Goroutine>,
    }

    impl Sink for Collect {
        fn dump_start(&mut self, info: &DumpInfo) -> io::Result<()> {
            self.events
                .push(format!("start {} {:?}", info.kind.as_str(), info.reason));
            Ok(())
        }
        fn dump_line(&mut self, line: &[u8]) -> io::Result<()> {
            self.events
                .push(format!("line {}", String::from_utf8_lossy(line)));
            Ok(())
        }
        fn goroutine(&mut self, g: &Goroutine) -> io::Result<()> {
            self.events.push(format!("goroutine {}", g.id));
            self.goroutines.push(g.clone());
            Ok(())
        }
        fn dump_end(&mut self, _: &DumpInfo, complete: bool) -> io::Result<()> {
            self.events.push(format!("end {complete}"));
            Ok(())
        }
    }

    fn parse(text: &str) -> Collect {
        let mut p = Parser::new(TimePolicy::default());
        let mut c = Collect::default();
        for line in text.lines() {
            p.feed(line.as_bytes(), &|| None, None, &mut c).unwrap();
        }
        p.finish(&mut c).unwrap();
        c
    }

    #[test]
    fn stack_unavailable_cgo_and_inlined() {
        let c = parse(
            "SIGQUIT: quit\nPC=0x4a5b6c m=3 sigcode=0\n[signal arrived during cgo execution]\n\n\
goroutine 40 gp=0xc0000eca80 m=6 mp=0xc00007c008 [running]:\n\tgoroutine running on other thread; stack unavailable\n\
created by main.main in goroutine 1\n\t/src/prog/main.go:135 +0x6b1\n\n\
goroutine 7 [syscall]:\nmain._Cfunc_cspin()\n\t_cgo_gotypes.go:56 +0x4d\nmain.inlinedRecv(...)\n\t/src/prog/main.go:35\n\
main.main.gowrap1()\n\t/src/prog/main.go:60 +0x17\ncreated by main.main in goroutine 1\n\t/src/prog/main.go:59 +0x25\n\n\
rax    0x0\nrbx    0x0\ngs     0x0\n",
        );
        assert_eq!(c.goroutines.len(), 2);
        let g = &c.goroutines[0];
        assert!(g.stack_unavailable && g.frames.is_empty());
        let cb = g.created_by.as_ref().unwrap();
        assert_eq!(
            (g.bytes(&cb.function), cb.line, cb.goroutine),
            (&b"main.main"[..], 135, Some(1))
        );
        let g = &c.goroutines[1];
        let names: Vec<&[u8]> = g.frames.iter().map(|f| g.bytes(&f.function)).collect();
        assert_eq!(
            names,
            [
                &b"main._Cfunc_cspin"[..],
                b"main.inlinedRecv",
                b"main.main.gowrap1"
            ]
        );
        assert_eq!(g.bytes(&g.frames[0].file), b"_cgo_gotypes.go");
        assert_eq!(g.frames[1].offset, None);
        assert!(
            c.events
                .contains(&"line [signal arrived during cgo execution]".to_string())
        );
        assert_eq!(c.events.last().unwrap(), "end true");
    }

    #[test]
    fn fatal_error_with_runtime_stack_and_ancestors() {
        let c = parse(
            "fatal error: unexpected signal during runtime execution\n[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x1]\n\n\
runtime stack:\nruntime.throw({0x4a1, 0x2a})\n\t/go/src/runtime/panic.go:1047 +0x5d fp=0x1 sp=0x2 pc=0x3\n\n\
goroutine 1 [running]:\nmain.main()\n\t/x/main.go:9 +0x1\n\n\
goroutine 6 [chan receive]:\nmain.worker()\n\t/x/main.go:20 +0x2\ncreated by main.main in goroutine 1\n\t/x/main.go:8 +0x3\n\
[originating from goroutine 1]:\nmain.main()\n\t/x/main.go:8 +0x3\n\nexit status 2\n",
        );
        assert_eq!(c.goroutines.len(), 2);
        assert_eq!(
            c.goroutines[1].frames.len(),
            1,
            "ancestor frames are not the goroutine's"
        );
        assert!(c.events[0].starts_with("start fatal Some(\"fatal error: unexpected signal"));
        assert!(
            c.events
                .contains(&"line runtime.throw({0x4a1, 0x2a})".to_string())
        );
        assert_eq!(c.events.last().unwrap(), "end true");
    }

    #[test]
    fn journal_lines_without_blank_separators() {
        // journald keeps no blank lines and prints tabs as 8 spaces.
        let c = parse(
            "SIGQUIT: quit\nPC=0x1 m=0 sigcode=0\ngoroutine 1 [chan receive, 5 minutes]:\nmain.main()\n        /x/main.go:9 +0x1\n\
goroutine 2 [select]:\nmain.f()\n        /x/main.go:12 +0x1\ncreated by main.main\n        /x/main.go:8 +0x3\nrax    0x0\ngs     0x0\n",
        );
        assert_eq!(c.goroutines.len(), 2);
        let g = &c.goroutines[1];
        assert_eq!(g.bytes(&g.frames[0].file), b"/x/main.go");
        assert_eq!(g.created_by.as_ref().unwrap().goroutine, None);
        assert_eq!(c.events.last().unwrap(), "end true");
    }
}
