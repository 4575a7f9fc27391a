//! Renderers: the annotated text, JSON and raw bytes. Each is a [`Sink`] that writes as
//! the parser reports, so the text and JSON of a dump stream out without holding it.

use std::collections::HashMap;
use std::io::{self, Write};

use chrono::{DateTime, FixedOffset, Local, SecondsFormat, Utc};

use super::annotate::{self, Summary};
use super::group::{Group, Grouper};
use super::model::{DumpInfo, DumpKind, Goroutine, Sink};

/// How times are shown.
#[derive(Debug, Clone, Copy, Default)]
pub struct Zone {
    pub utc: bool,
}

impl Zone {
    pub fn convert(self, t: DateTime<FixedOffset>) -> DateTime<FixedOffset> {
        if self.utc {
            t.with_timezone(&Utc).fixed_offset()
        } else {
            t.with_timezone(&Local).fixed_offset()
        }
    }

    /// `2026-11-28 10:35:12 +01:00` (or `... UTC`).
    pub fn full(self, t: DateTime<FixedOffset>) -> String {
        let t = self.convert(t);
        if self.utc {
            t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
        } else {
            t.format("%Y-%m-%d %H:%M:%S %:z").to_string()
        }
    }

    /// `2026-11-28 10:35 +01:00`: minutes are all a wait time can tell.
    pub fn minute(self, t: DateTime<FixedOffset>) -> String {
        let t = self.convert(t);
        if self.utc {
            t.format("%Y-%m-%d %H:%M UTC").to_string()
        } else {
            t.format("%Y-%m-%d %H:%M %:z").to_string()
        }
    }

    pub fn rfc3339(self, t: DateTime<FixedOffset>) -> String {
        self.convert(t).to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }
}

/// Options shared by the renderers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub zone: Zone,
    pub group: bool,
}

/// Whether the input as a whole produced any dump, and how many were incomplete.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub dumps: usize,
    pub incomplete: usize,
    pub goroutines: u64,
}

/// A renderer that can also report what it saw.
pub trait Renderer: Sink {
    fn finish(&mut self) -> io::Result<Tally>;
    /// Mark every dump still to be ended as incomplete (the strace log lost bytes).
    fn force_incomplete(&mut self);
}

const APPROX_NOTE: &str = "Times are approximate: Go floors the minutes and dates a wait from the garbage \
collection that first saw the goroutine blocked, so each goroutine blocked up to a minute before, \
or about two minutes after, the time shown.";

// ---------------------------------------------------------------------------------------
// Text

/// Lines a service logged around a time: `(when, line)`, for the onset's context.
pub type ContextFn = Box<dyn FnMut(DateTime<FixedOffset>) -> Vec<(DateTime<FixedOffset>, Vec<u8>)>>;

/// The dump with every line kept, `# blocked since ~...` added to headers with minutes,
/// and a summary after each dump.
pub struct TextRenderer<W: Write> {
    /// Prints what the service logged around the likely onset (`gorescue unit --context`).
    pub context: Option<ContextFn>,
    out: W,
    opts: Options,
    info: Option<DumpInfo>,
    summary: Summary,
    tally: Tally,
    force_incomplete: bool,
    /// `# blocked since ...` per minute value, formatted once.
    suffixes: HashMap<u64, String>,
    grouper: Grouper,
    /// Group mode: the dump's lines other than goroutines, before and after the first one.
    head: Vec<Vec<u8>>,
    tail: Vec<Vec<u8>>,
    seen_goroutine: bool,
}

impl<W: Write> TextRenderer<W> {
    pub fn new(out: W, opts: Options) -> Self {
        TextRenderer {
            context: None,
            out,
            opts,
            info: None,
            summary: Summary::default(),
            tally: Tally::default(),
            force_incomplete: false,
            suffixes: HashMap::new(),
            grouper: Grouper::default(),
            head: Vec::new(),
            tail: Vec::new(),
            seen_goroutine: false,
        }
    }

    fn dump_time(&self) -> Option<DateTime<FixedOffset>> {
        self.info.as_ref()?.time.map(|t| t.time)
    }

    fn suffix(&mut self, minutes: u64) -> Option<&str> {
        let t = self.dump_time()?;
        let zone = self.opts.zone;
        Some(self.suffixes.entry(minutes).or_insert_with(|| {
            format!(
                "  # blocked since ~{}",
                zone.minute(annotate::blocked_since(t, minutes))
            )
        }))
    }

    fn write_group(&mut self, grp: &Group) -> io::Result<()> {
        let g = &grp.first;
        let n = grp.count();
        write!(
            self.out,
            "{} goroutine{} [{}",
            n,
            plural(n),
            String::from_utf8_lossy(g.state())
        )?;
        match (grp.min_wait, grp.max_wait) {
            (Some(a), Some(b)) if a == b => write!(self.out, ", {a} minutes")?,
            (Some(a), Some(b)) => write!(self.out, ", {a}-{b} minutes")?,
            _ => {}
        }
        write!(self.out, "]: ")?;
        write_ids(&mut self.out, &grp.ids, 100)?;
        if let (Some(t), Some(a), Some(b)) = (self.dump_time(), grp.max_wait, grp.min_wait) {
            let zone = self.opts.zone;
            let from = zone.minute(annotate::blocked_since(t, a));
            if a == b {
                write!(self.out, "  # blocked since ~{from}")?;
            } else {
                let to = zone.minute(annotate::blocked_since(t, b));
                write!(self.out, "  # blocked since ~{from} .. ~{to}")?;
            }
        }
        writeln!(self.out)?;
        if n > 1 {
            writeln!(
                self.out,
                "# arguments below are goroutine {}'s; the others' may differ",
                g.id
            )?;
        }
        for line in g.lines().skip(1) {
            self.out.write_all(line)?;
            self.out.write_all(b"\n")?;
        }
        writeln!(self.out)
    }

    fn write_summary(&mut self, info: &DumpInfo, complete: bool) -> io::Result<()> {
        let zone = self.opts.zone;
        let s = &self.summary;
        let o = &mut self.out;
        writeln!(o)?;
        let what = match info.kind {
            DumpKind::Sigquit => "SIGQUIT dump",
            DumpKind::Panic => "panic",
            DumpKind::Fatal => "fatal error",
            DumpKind::GoroutineListing => "goroutine listing",
        };
        writeln!(o, "== gorescue: dump {} ({what}) ==", info.index + 1)?;
        if let Some(r) = &info.reason {
            writeln!(o, "Reason:      {}", r.replace('\n', "\n             "))?;
        }
        let t = info.time.map(|t| t.time);
        match info.time {
            Some(dt) => writeln!(
                o,
                "Dump time:   {} ({})",
                zone.full(dt.time),
                dt.source.describe()
            )?,
            None => writeln!(
                o,
                "Dump time:   unknown. Waits are shown as minutes before the dump; give the time \
the dump was taken with --at TIME (e.g. --at '2026-11-28 10:35') to date them."
            )?,
        }
        let complete_text = if complete {
            "yes"
        } else if info.kind == DumpKind::Sigquit {
            "NO: the dump ends before its register block; goroutines may be missing"
        } else {
            "NO: the dump is cut off; goroutines may be missing"
        };
        writeln!(o, "Complete:    {complete_text}")?;
        write!(o, "Goroutines:  {}", s.goroutines)?;
        for (i, (state, n)) in s.states().iter().enumerate() {
            let sep = if i == 0 { ": " } else { ", " };
            write!(o, "{sep}{n} {}", String::from_utf8_lossy(state))?;
        }
        writeln!(o)?;
        if s.waiters.is_empty() {
            writeln!(
                o,
                "Waits:       no goroutine shows a wait of a minute or more (the runtime prints \
minutes only once a garbage collection has seen the goroutine blocked for that long)"
            )?;
            return Ok(());
        }
        let when = |m: u64| match t {
            Some(t) => format!("since ~{}", zone.minute(annotate::blocked_since(t, m))),
            None => format!("{m} minutes before the dump"),
        };
        writeln!(o, "Longest waits:")?;
        for w in s.longest(5) {
            writeln!(
                o,
                "  goroutine {:<8} {:>7} min  {:<28} {}  in {}",
                w.id,
                w.minutes,
                String::from_utf8_lossy(s.name(w.state)),
                when(w.minutes),
                String::from_utf8_lossy(s.name(w.key))
            )?;
        }
        let clusters = s.clusters();
        let onset = annotate::likely_onset(&clusters);
        writeln!(
            o,
            "Onset clusters (blocked-since times at most {} minutes apart), oldest first:",
            annotate::CLUSTER_GAP_MINUTES
        )?;
        const SHOWN: usize = 12;
        for (i, c) in clusters.iter().enumerate() {
            if i >= SHOWN && Some(i) != onset {
                continue;
            }
            let span = if c.max_minutes == c.min_minutes {
                format!("{} min", c.max_minutes)
            } else {
                format!("{}-{} min", c.min_minutes, c.max_minutes)
            };
            let note = if Some(i) == onset {
                "  <- the trouble likely began here"
            } else if i == 0 && clusters.len() > 1 {
                "  (the oldest waits: probably since the program started)"
            } else {
                ""
            };
            writeln!(
                o,
                "  {:<34} {:>5} goroutine{:<1} ({span}){note}",
                when(c.max_minutes),
                c.size,
                plural(c.size)
            )?;
            writeln!(o, "      {}", counted(s, &c.states, 4))?;
            writeln!(o, "      in {}", counted(s, &c.frames, 4))?;
        }
        if clusters.len() > SHOWN {
            writeln!(o, "  ... and {} more clusters", clusters.len() - SHOWN)?;
        }
        if let Some(i) = onset {
            let c = &clusters[i];
            let names: Vec<String> = c
                .frames
                .iter()
                .take(3)
                .map(|(k, _)| String::from_utf8_lossy(s.name(*k)).into_owned())
                .collect();
            let at = match t {
                Some(t) => format!(
                    "at about {}",
                    zone.minute(annotate::blocked_since(t, c.max_minutes))
                ),
                None => format!("about {} minutes before the dump", c.max_minutes),
            };
            writeln!(
                o,
                "The trouble likely began {at}: {} goroutine{} {} been stuck since then in {}.",
                c.size,
                plural(c.size),
                if c.size == 1 { "has" } else { "have" },
                names.join(", ")
            )?;
            if let (Some(t), Some(ctx)) = (t, self.context.as_mut()) {
                let at = annotate::blocked_since(t, c.max_minutes);
                let lines = ctx(at);
                if lines.is_empty() {
                    writeln!(o, "The service logged nothing around that time.")?;
                } else {
                    writeln!(o, "What the service logged around that time:")?;
                    for (when, line) in lines {
                        write!(o, "  {}  ", zone.full(when))?;
                        o.write_all(&line)?;
                        writeln!(o)?;
                    }
                }
            }
        }
        writeln!(o, "{APPROX_NOTE}")?;
        Ok(())
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn counted(s: &Summary, items: &[(u32, usize)], max: usize) -> String {
    let mut parts: Vec<String> = items
        .iter()
        .take(max)
        .map(|(k, n)| format!("{} x{n}", String::from_utf8_lossy(s.name(*k))))
        .collect();
    if items.len() > max {
        parts.push(format!("and {} more", items.len() - max));
    }
    parts.join(", ")
}

fn write_ids(out: &mut impl Write, ids: &[u64], max: usize) -> io::Result<()> {
    write!(out, "goroutine{} ", plural(ids.len()))?;
    for (i, id) in ids.iter().take(max).enumerate() {
        if i > 0 {
            out.write_all(b", ")?;
        }
        write!(out, "{id}")?;
    }
    if ids.len() > max {
        write!(out, " and {} more", ids.len() - max)?;
    }
    Ok(())
}

impl<W: Write> Sink for TextRenderer<W> {
    fn dump_start(&mut self, info: &DumpInfo) -> io::Result<()> {
        if self.tally.dumps > 0 {
            writeln!(self.out)?;
        }
        self.tally.dumps += 1;
        self.info = Some(info.clone());
        self.summary = Summary::default();
        self.seen_goroutine = false;
        self.suffixes.clear();
        Ok(())
    }

    fn dump_line(&mut self, line: &[u8]) -> io::Result<()> {
        if self.opts.group {
            if line.is_empty() && self.seen_goroutine {
                return Ok(());
            }
            let v = if self.seen_goroutine {
                &mut self.tail
            } else {
                &mut self.head
            };
            v.push(line.to_vec());
            return Ok(());
        }
        self.out.write_all(line)?;
        self.out.write_all(b"\n")
    }

    fn goroutine(&mut self, g: &Goroutine) -> io::Result<()> {
        self.summary.add(g);
        self.tally.goroutines += 1;
        self.seen_goroutine = true;
        if self.opts.group {
            self.grouper.add(g);
            return Ok(());
        }
        let header_end = g.header_end as usize;
        self.out.write_all(&g.text[..header_end])?;
        if let Some(m) = g.wait_minutes
            && let Some(s) = self.suffix(m)
        {
            let s = s.as_bytes().to_vec();
            self.out.write_all(&s)?;
        }
        self.out.write_all(&g.text[header_end..])
    }

    fn dump_end(&mut self, info: &DumpInfo, complete: bool) -> io::Result<()> {
        let complete = complete && !self.force_incomplete;
        if !complete {
            self.tally.incomplete += 1;
        }
        if self.opts.group {
            for l in std::mem::take(&mut self.head) {
                self.out.write_all(&l)?;
                self.out.write_all(b"\n")?;
            }
            for grp in self.grouper.finish() {
                self.write_group(&grp)?;
            }
            for l in std::mem::take(&mut self.tail) {
                self.out.write_all(&l)?;
                self.out.write_all(b"\n")?;
            }
        }
        self.write_summary(info, complete)?;
        self.info = None;
        Ok(())
    }
}

impl<W: Write> Renderer for TextRenderer<W> {
    fn finish(&mut self) -> io::Result<Tally> {
        self.out.flush()?;
        Ok(self.tally)
    }
    fn force_incomplete(&mut self) {
        self.force_incomplete = true;
    }
}

// ---------------------------------------------------------------------------------------
// Raw

/// The dump's lines exactly as read, nothing added.
pub struct RawRenderer<W: Write> {
    out: W,
    tally: Tally,
}

impl<W: Write> RawRenderer<W> {
    pub fn new(out: W) -> Self {
        RawRenderer {
            out,
            tally: Tally::default(),
        }
    }
}

impl<W: Write> Sink for RawRenderer<W> {
    fn dump_start(&mut self, _: &DumpInfo) -> io::Result<()> {
        self.tally.dumps += 1;
        Ok(())
    }
    fn dump_line(&mut self, line: &[u8]) -> io::Result<()> {
        self.out.write_all(line)?;
        self.out.write_all(b"\n")
    }
    fn goroutine(&mut self, g: &Goroutine) -> io::Result<()> {
        self.tally.goroutines += 1;
        self.out.write_all(&g.text)
    }
    fn dump_end(&mut self, _: &DumpInfo, complete: bool) -> io::Result<()> {
        if !complete {
            self.tally.incomplete += 1;
        }
        Ok(())
    }
}

impl<W: Write> Renderer for RawRenderer<W> {
    fn finish(&mut self) -> io::Result<Tally> {
        self.out.flush()?;
        Ok(self.tally)
    }
    fn force_incomplete(&mut self) {}
}

// ---------------------------------------------------------------------------------------
// JSON

/// `{"dumps": [...]}`, written one goroutine at a time. A dump's `complete` comes after
/// its goroutines, since it is known only at the end.
pub struct JsonRenderer<W: Write> {
    out: W,
    opts: Options,
    tally: Tally,
    started: bool,
    first_goroutine: bool,
    dump_time: Option<DateTime<FixedOffset>>,
    force_incomplete: bool,
    grouper: Grouper,
    /// One goroutine's JSON, built here and written at once.
    buf: Vec<u8>,
    /// Extra top-level members of each dump object (the capture record of live captures).
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
}

impl<W: Write> JsonRenderer<W> {
    pub fn new(out: W, opts: Options) -> Self {
        JsonRenderer {
            out,
            opts,
            tally: Tally::default(),
            started: false,
            first_goroutine: true,
            dump_time: None,
            force_incomplete: false,
            grouper: Grouper::default(),
            buf: Vec::new(),
            extra: None,
        }
    }
}

fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// Append `b` as a JSON string. Invalid UTF-8 becomes U+FFFD.
fn json_str(out: &mut Vec<u8>, b: &[u8]) {
    let plain = b
        .iter()
        .all(|&c| c >= 0x20 && c != b'"' && c != b'\\' && c < 0x80);
    if plain {
        out.push(b'"');
        out.extend_from_slice(b);
        out.push(b'"');
    } else {
        // serde_json's escaping, for the rare strings that need it.
        serde_json::to_writer(&mut *out, &lossy(b)).expect("writing to a Vec cannot fail");
    }
}

fn json_opt_u64(out: &mut Vec<u8>, v: Option<u64>) {
    match v {
        Some(v) => {
            let _ = write!(out, "{v}");
        }
        None => out.extend_from_slice(b"null"),
    }
}

fn json_frames(out: &mut Vec<u8>, g: &Goroutine) {
    out.push(b'[');
    for (i, f) in g.frames.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"function\":");
        json_str(out, g.bytes(&f.function));
        out.extend_from_slice(b",\"args\":");
        json_str(out, g.bytes(&f.args));
        out.extend_from_slice(b",\"file\":");
        json_str(out, g.bytes(&f.file));
        let _ = write!(out, ",\"line\":{},\"offset\":", f.line);
        match &f.offset {
            Some(o) => json_str(out, g.bytes(o)),
            None => out.extend_from_slice(b"null"),
        }
        out.push(b'}');
    }
    out.push(b']');
}

fn json_created_by(out: &mut Vec<u8>, g: &Goroutine) {
    match &g.created_by {
        None => out.extend_from_slice(b"null"),
        Some(c) => {
            out.extend_from_slice(b"{\"function\":");
            json_str(out, g.bytes(&c.function));
            out.extend_from_slice(b",\"file\":");
            json_str(out, g.bytes(&c.file));
            let _ = write!(out, ",\"line\":{},\"goroutine\":", c.line);
            json_opt_u64(out, c.goroutine);
            out.push(b'}');
        }
    }
}

/// One goroutine in the documented schema.
fn json_goroutine(out: &mut Vec<u8>, g: &Goroutine, blocked_since: Option<&str>) {
    let _ = write!(out, "{{\"id\":{},\"state\":", g.id);
    json_str(out, g.state());
    out.extend_from_slice(b",\"wait_minutes\":");
    json_opt_u64(out, g.wait_minutes);
    out.extend_from_slice(b",\"blocked_since\":");
    match blocked_since {
        Some(t) => json_str(out, t.as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    let _ = write!(
        out,
        ",\"locked_to_thread\":{},\"labels\":{{",
        g.locked_to_thread
    );
    for (i, (k, v)) in g.labels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_str(out, k.as_bytes());
        out.push(b':');
        json_str(out, v.as_bytes());
    }
    out.extend_from_slice(b"},\"frames\":");
    json_frames(out, g);
    let _ = write!(
        out,
        ",\"elided_frames\":{},\"created_by\":",
        g.elided_frames
    );
    json_created_by(out, g);
    out.push(b'}');
}

impl<W: Write> JsonRenderer<W> {
    fn blocked_since(&self, g: &Goroutine) -> Option<String> {
        let t = self.dump_time?;
        let m = g.wait_minutes?;
        Some(self.opts.zone.rfc3339(annotate::blocked_since(t, m)))
    }

    fn write_groups(&mut self) -> io::Result<()> {
        let buf = &mut self.buf;
        buf.clear();
        buf.extend_from_slice(b",\"groups\":[");
        let zone = self.opts.zone;
        let since =
            |m: Option<u64>| Some(zone.rfc3339(annotate::blocked_since(self.dump_time?, m?)));
        for (i, grp) in self.grouper.finish().iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            let g = &grp.first;
            let _ = write!(buf, "\n{{\"count\":{},\"ids\":", grp.count());
            serde_json::to_writer(&mut *buf, &grp.ids)?;
            buf.extend_from_slice(b",\"state\":");
            json_str(buf, g.state());
            buf.extend_from_slice(b",\"wait_minutes\":{\"min\":");
            json_opt_u64(buf, grp.min_wait);
            buf.extend_from_slice(b",\"max\":");
            json_opt_u64(buf, grp.max_wait);
            buf.extend_from_slice(b"},\"blocked_since\":{\"first\":");
            serde_json::to_writer(&mut *buf, &since(grp.max_wait))?;
            buf.extend_from_slice(b",\"last\":");
            serde_json::to_writer(&mut *buf, &since(grp.min_wait))?;
            // The frames and creator are the first goroutine's, arguments and all.
            buf.extend_from_slice(b"},\"frames\":");
            json_frames(buf, g);
            buf.extend_from_slice(b",\"created_by\":");
            json_created_by(buf, g);
            buf.push(b'}');
        }
        buf.push(b']');
        self.out.write_all(buf)
    }
}

impl<W: Write> Sink for JsonRenderer<W> {
    fn dump_start(&mut self, info: &DumpInfo) -> io::Result<()> {
        self.out.write_all(if self.started {
            b",\n{"
        } else {
            b"{\"dumps\":[\n{"
        })?;
        self.started = true;
        self.tally.dumps += 1;
        self.dump_time = info.time.map(|t| t.time);
        let zone = self.opts.zone;
        write!(self.out, "\"kind\":\"{}\",\"reason\":", info.kind.as_str())?;
        serde_json::to_writer(&mut self.out, &info.reason)?;
        self.out.write_all(b",\"dump_time\":")?;
        serde_json::to_writer(&mut self.out, &info.time.map(|t| zone.rfc3339(t.time)))?;
        self.out.write_all(b",\"dump_time_source\":")?;
        serde_json::to_writer(&mut self.out, &info.time.map(|t| t.source.as_str()))?;
        if let Some(extra) = &self.extra {
            for (k, v) in extra {
                self.out.write_all(b",")?;
                serde_json::to_writer(&mut self.out, k)?;
                self.out.write_all(b":")?;
                serde_json::to_writer(&mut self.out, v)?;
            }
        }
        self.out.write_all(b",\"goroutines\":[")?;
        self.first_goroutine = true;
        Ok(())
    }

    fn dump_line(&mut self, _: &[u8]) -> io::Result<()> {
        Ok(())
    }

    fn goroutine(&mut self, g: &Goroutine) -> io::Result<()> {
        self.tally.goroutines += 1;
        if self.opts.group {
            self.grouper.add(g);
        }
        if !self.first_goroutine {
            self.out.write_all(b",")?;
        }
        self.first_goroutine = false;
        let since = self.blocked_since(g);
        let buf = &mut self.buf;
        buf.clear();
        buf.push(b'\n');
        json_goroutine(buf, g, since.as_deref());
        self.out.write_all(buf)
    }

    fn dump_end(&mut self, _: &DumpInfo, complete: bool) -> io::Result<()> {
        let complete = complete && !self.force_incomplete;
        if !complete {
            self.tally.incomplete += 1;
        }
        self.out.write_all(b"]")?;
        if self.opts.group {
            self.write_groups()?;
        }
        write!(self.out, ",\"complete\":{complete}}}")
    }
}

impl<W: Write> Renderer for JsonRenderer<W> {
    fn finish(&mut self) -> io::Result<Tally> {
        if !self.started {
            self.out.write_all(b"{\"dumps\":[")?;
        }
        self.out.write_all(b"]}\n")?;
        self.out.flush()?;
        Ok(self.tally)
    }
    fn force_incomplete(&mut self) {
        self.force_incomplete = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::{DumpTime, LineTime, Parser, TimePolicy, TimeSource};

    const SEED: &[u8] = include_bytes!("../../tests/fixtures/seed/sigquit.txt");

    fn render(context: Option<ContextFn>) -> String {
        let at = DateTime::parse_from_rfc3339("2022-02-26T09:45:00Z").unwrap();
        let mut out = Vec::new();
        {
            let mut r = TextRenderer::new(
                &mut out,
                Options {
                    zone: Zone { utc: true },
                    group: false,
                },
            );
            r.context = context;
            let mut p = Parser::new(TimePolicy {
                argument: Some(DumpTime {
                    time: at,
                    source: TimeSource::Argument,
                }),
                fallback: None,
            });
            for line in SEED.split(|&b| b == b'\n') {
                p.feed(line, &|| None::<LineTime>, None, &mut r).unwrap();
            }
            p.finish(&mut r).unwrap();
            r.finish().unwrap();
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn context_of_the_onset_is_printed_after_the_summary() {
        let asked = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let seen = asked.clone();
        let ctx: ContextFn = Box::new(move |at| {
            seen.borrow_mut().push(at);
            vec![(at, b"netlink: subscription lost, retrying".to_vec())]
        });
        let text = render(Some(ctx));
        // Asked once, for the likely onset: 1390 minutes before the dump.
        let want = DateTime::parse_from_rfc3339("2022-02-25T10:35:00Z").unwrap();
        assert_eq!(*asked.borrow(), vec![want]);
        assert!(text.contains(
            "What the service logged around that time:\n  2022-02-25 10:35:00 UTC  netlink: subscription lost, retrying\n"
        ), "{text}");
        // Without a context function nothing of the kind is printed.
        assert!(!render(None).contains("logged around"));
    }
}
