//! `gorescue journal NAME`: the dumps, panics and fatal errors already in a unit's journal
//! ("it crashed last night"). Reads only; sends nothing to any process.
//!
//! The unit's lines are rejoined where journald split them ([`LineJoiner`]) and fed, one
//! process (invocation and PID) at a time, to the streaming dump parser, each line with its
//! own journal timestamp: a dump's time is the timestamp of its first line. A first pass
//! finds every dump; `--list` prints them, otherwise a second pass renders the newest.
//!
//! [`LineJoiner`]: crate::capture::journal::LineJoiner

use std::collections::HashMap;
use std::io::{self, Write};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Local, NaiveTime, TimeZone};

use crate::capture::journal::{Filter, Journal, LogicalLine};
use crate::cli::{Format, JournalArgs};
use crate::dump::render::{JsonRenderer, RawRenderer, Renderer, Tally, TextRenderer, Zone};
use crate::dump::{DumpInfo, DumpKind, Goroutine, LineTime, Parser, Sink, TimePolicy, TimeSource};
use crate::error::Error;
use crate::offline;

/// The unit types systemctl knows by their suffix.
const UNIT_SUFFIXES: &[&str] = &[
    "service",
    "socket",
    "device",
    "mount",
    "automount",
    "swap",
    "target",
    "path",
    "timer",
    "slice",
    "scope",
];

/// Normalise a unit name as systemctl does: a name without a unit type suffix is a service.
pub fn normalize_unit(name: &str) -> String {
    match name.rsplit_once('.') {
        Some((stem, suffix)) if !stem.is_empty() && UNIT_SUFFIXES.contains(&suffix) => {
            name.to_string()
        }
        _ => format!("{name}.service"),
    }
}

/// Parse `--since`: what `--at` takes, `now`, `today`, `yesterday`, or `DURATION ago`.
pub fn parse_since(s: &str) -> Result<DateTime<FixedOffset>, Error> {
    let bad = || Error::BadSince(s.to_string());
    let t = s.trim();
    let now = Local::now();
    let midnight = |days: i64| {
        let d = now.date_naive() - chrono::Duration::days(days);
        Local
            .from_local_datetime(&d.and_time(NaiveTime::MIN))
            .earliest()
            .map(|t| t.fixed_offset())
    };
    match t {
        "now" => return Ok(now.fixed_offset()),
        "today" => return midnight(0).ok_or_else(bad),
        "yesterday" => return midnight(1).ok_or_else(bad),
        _ => {}
    }
    let ago = t
        .strip_suffix(" ago")
        .or_else(|| t.strip_prefix('-'))
        .map(str::trim);
    if let Some(d) = ago {
        let d = humantime::parse_duration(d).map_err(|_| bad())?;
        let d = chrono::Duration::from_std(d).map_err(|_| bad())?;
        return Ok((now - d).fixed_offset());
    }
    offline::parse_at(t).map_err(|_| bad())
}

/// The process whose lines a parser reads: invocation and PID.
type Key = (Option<String>, Option<i32>);

/// A dump found in the journal.
#[derive(Debug, Clone)]
pub struct Found {
    pub invocation_id: Option<String>,
    pub pid: Option<i32>,
    /// Index of the dump among that process's dumps.
    pub index: usize,
    pub kind: DumpKind,
    pub reason: Option<String>,
    /// The journal timestamp of the dump's first line.
    pub time: Option<DateTime<FixedOffset>>,
    pub goroutines: u64,
    pub complete: bool,
}

/// Records the dumps of one process.
struct ListSink<'a> {
    key: &'a Key,
    found: &'a mut Vec<Found>,
    /// The dump the process is in.
    current: &'a mut Option<Found>,
}

/// One process's parser and the dump it is in.
struct Proc {
    parser: Parser,
    current: Option<Found>,
}

impl Sink for ListSink<'_> {
    fn dump_start(&mut self, info: &DumpInfo) -> io::Result<()> {
        *self.current = Some(Found {
            invocation_id: self.key.0.clone(),
            pid: self.key.1,
            index: info.index,
            kind: info.kind,
            reason: info.reason.clone(),
            time: info.time.map(|t| t.time),
            goroutines: 0,
            complete: false,
        });
        Ok(())
    }
    fn dump_line(&mut self, _: &[u8]) -> io::Result<()> {
        Ok(())
    }
    fn goroutine(&mut self, _: &Goroutine) -> io::Result<()> {
        if let Some(f) = self.current.as_mut() {
            f.goroutines += 1;
        }
        Ok(())
    }
    fn dump_end(&mut self, info: &DumpInfo, complete: bool) -> io::Result<()> {
        if let Some(mut f) = self.current.take() {
            f.complete = complete;
            // A panic's reason is complete only at its end.
            f.reason = info.reason.clone().or(f.reason);
            self.found.push(f);
        }
        Ok(())
    }
}

/// Passes on only the dump with index `want`.
struct Select<'a> {
    want: usize,
    inside: bool,
    done: bool,
    inner: &'a mut dyn Renderer,
}

impl Sink for Select<'_> {
    fn dump_start(&mut self, info: &DumpInfo) -> io::Result<()> {
        self.inside = info.index == self.want;
        if self.inside {
            self.inner.dump_start(info)?;
        }
        Ok(())
    }
    fn dump_line(&mut self, line: &[u8]) -> io::Result<()> {
        if self.inside {
            self.inner.dump_line(line)?;
        }
        Ok(())
    }
    fn goroutine(&mut self, g: &Goroutine) -> io::Result<()> {
        if self.inside {
            self.inner.goroutine(g)?;
        }
        Ok(())
    }
    fn dump_end(&mut self, info: &DumpInfo, complete: bool) -> io::Result<()> {
        if self.inside {
            self.inner.dump_end(info, complete)?;
            self.inside = false;
            self.done = true;
        }
        Ok(())
    }
}

fn journal_err(e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::PermissionDenied => Error::NotPermitted(format!(
            "cannot read the journal: {e}: run as root, or as a member of the systemd-journal or adm group"
        )),
        _ => Error::Journal(e.to_string()),
    }
}

fn line_time(l: &LogicalLine) -> LineTime {
    LineTime {
        time: l.time,
        source: TimeSource::Journal,
    }
}

/// What the first pass saw.
struct Scan {
    lines: u64,
    found: Vec<Found>,
}

/// Find every dump in `unit`'s journal from `since` on.
fn scan(unit: &str, user: bool, since: Option<DateTime<FixedOffset>>) -> Result<Scan, Error> {
    let mut j = Journal::open(user).map_err(journal_err)?;
    j.read_unit(&Filter::unit(unit, user), since)
        .map_err(journal_err)?;
    let mut procs: HashMap<Key, Proc> = HashMap::new();
    let mut found = Vec::new();
    let mut lines = 0;
    let parse_err = |e: io::Error| Error::Journal(e.to_string());
    for line in j.lines() {
        let line = line.map_err(journal_err)?;
        lines += 1;
        let key: Key = (line.invocation_id.clone(), line.pid);
        let Proc { parser, current } = procs.entry(key.clone()).or_insert_with(|| Proc {
            parser: Parser::new(TimePolicy::default()),
            current: None,
        });
        let t = line_time(&line);
        let mut sink = ListSink {
            key: &key,
            found: &mut found,
            current,
        };
        parser
            .feed(&line.bytes, &|| Some(t), None, &mut sink)
            .map_err(parse_err)?;
    }
    // Dumps still open at the end of the journal (the process logged no more).
    for (key, Proc { parser, current }) in procs.iter_mut() {
        let mut sink = ListSink {
            key,
            found: &mut found,
            current,
        };
        parser.finish(&mut sink).map_err(parse_err)?;
    }
    found.sort_by_key(|f| f.time);
    Ok(Scan { lines, found })
}

fn since_text(since: Option<DateTime<FixedOffset>>, zone: Zone) -> String {
    since
        .map(|t| format!(" since {}", zone.full(t)))
        .unwrap_or_default()
}

/// `gorescue journal`.
pub fn journal(args: &JournalArgs, mut out: Box<dyn Write>) -> Result<Tally, Error> {
    let unit = normalize_unit(&args.name);
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let opts = offline::options(&args.render);
    let zone = opts.zone;
    let scan = scan(&unit, args.user, since)?;
    if scan.lines == 0 {
        let hint = if args.user {
            format!(
                "check the name with 'systemctl --user list-units --all {unit}', or leave out --user for a system service"
            )
        } else {
            format!(
                "check the name with 'systemctl list-units --all {unit}' or 'journalctl -u {unit}'; add --user for a user service; as a user who is not in the systemd-journal group, run as root"
            )
        };
        return Err(Error::NoJournalEntries {
            unit,
            since: since_text(since, zone),
            hint,
        });
    }
    if scan.found.is_empty() {
        return Err(Error::NoJournalDump {
            unit: unit.clone(),
            lines: scan.lines,
            since: since_text(since, zone),
            hint: format!(
                "nothing there starts with 'SIGQUIT: quit', 'panic:', 'fatal error:' or 'goroutine 1 [...]:' (journald may have dropped it past its rate limit); 'gorescue unit {unit}' captures a new one from the running service"
            ),
        });
    }
    if args.list {
        list(&unit, &scan.found, args.render.format, zone, &mut out)?;
        let incomplete = 0; // The list says which are incomplete.
        return Ok(Tally {
            dumps: scan.found.len(),
            incomplete,
            goroutines: scan.found.iter().map(|f| f.goroutines).sum(),
        });
    }
    let newest = scan.found.last().expect("found is not empty").clone();
    render_one(args, &unit, since, &newest, scan.found.len(), out)
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn list(
    unit: &str,
    found: &[Found],
    format: Format,
    zone: Zone,
    out: &mut Box<dyn Write>,
) -> Result<(), Error> {
    let w = |e| Error::Write(e);
    if format == Format::Json {
        let v: Vec<serde_json::Value> = found
            .iter()
            .map(|f| {
                serde_json::json!({
                    "time": f.time.map(|t| zone.rfc3339(t)),
                    "time_source": "journal",
                    "unit": unit,
                    "invocation_id": f.invocation_id,
                    "pid": f.pid,
                    "kind": f.kind.as_str(),
                    "reason": f.reason,
                    "goroutines": f.goroutines,
                    "complete": f.complete,
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut *out, &v).map_err(|e| Error::Write(e.into()))?;
        writeln!(out).map_err(w)?;
        return out.flush().map_err(w);
    }
    let times: Vec<String> = found
        .iter()
        .map(|f| f.time.map(|t| zone.full(t)).unwrap_or_else(|| "-".into()))
        .collect();
    let tw = times.iter().map(String::len).max().unwrap_or(4).max(4);
    writeln!(
        out,
        "{:tw$}  {:32}  {:>7}  {:8}  {:>10}  COMPLETE",
        "TIME", "INVOCATION", "PID", "KIND", "GOROUTINES"
    )
    .map_err(w)?;
    for (f, t) in found.iter().zip(&times) {
        writeln!(
            out,
            "{t:tw$}  {:32}  {:>7}  {:8}  {:>10}  {}",
            f.invocation_id.as_deref().unwrap_or("-"),
            f.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            f.kind.as_str(),
            f.goroutines,
            yes_no(f.complete)
        )
        .map_err(w)?;
    }
    out.flush().map_err(w)
}

/// Render the dump `which`: read its process's lines again, pass on only that dump.
fn render_one(
    args: &JournalArgs,
    unit: &str,
    since: Option<DateTime<FixedOffset>>,
    which: &Found,
    total: usize,
    mut out: Box<dyn Write>,
) -> Result<Tally, Error> {
    let opts = offline::options(&args.render);
    let mut r: Box<dyn Renderer> = match args.render.format {
        Format::Text => {
            writeln!(
                out,
                "# gorescue journal: the newest of {total} dump{} in the journal of {unit}: invocation {}, PID {} ('gorescue journal {} --list' shows all)",
                if total == 1 { "" } else { "s" },
                which.invocation_id.as_deref().unwrap_or("-"),
                which.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                args.name,
            )
            .map_err(Error::Write)?;
            if !which.complete {
                writeln!(
                    out,
                    "# The journal's copy of this dump is INCOMPLETE ({} goroutine{} stored): most likely journald dropped lines past its rate limit (RateLimitBurst=, the unit's LogRateLimitBurst=), which it reports only when the unit logs again; 'gorescue unit' captures a whole dump",
                    which.goroutines,
                    if which.goroutines == 1 { "" } else { "s" },
                )
                .map_err(Error::Write)?;
            }
            Box::new(TextRenderer::new(out, opts))
        }
        Format::Json => {
            let mut j = JsonRenderer::new(out, opts);
            let mut extra = serde_json::Map::new();
            extra.insert(
                "journal".into(),
                serde_json::json!({
                    "unit": unit,
                    "invocation_id": which.invocation_id,
                    "pid": which.pid,
                }),
            );
            j.extra = Some(extra);
            Box::new(j)
        }
        Format::Raw => Box::new(RawRenderer::new(out)),
    };
    let mut j = Journal::open(args.user).map_err(journal_err)?;
    let filter = Filter {
        invocation_id: which.invocation_id.clone(),
        pid: which.pid,
        ..Filter::unit(unit, args.user)
    };
    j.read_unit(&filter, since).map_err(journal_err)?;
    let mut parser = Parser::new(TimePolicy::default());
    let mut sink = Select {
        want: which.index,
        inside: false,
        done: false,
        inner: r.as_mut(),
    };
    let out_err = Error::Write;
    for line in j.lines() {
        let line = line.map_err(journal_err)?;
        if line.invocation_id != which.invocation_id || line.pid != which.pid {
            continue;
        }
        let t = line_time(&line);
        parser
            .feed(&line.bytes, &|| Some(t), None, &mut sink)
            .map_err(out_err)?;
        if sink.done {
            break;
        }
    }
    if !sink.done {
        parser.finish(&mut sink).map_err(out_err)?;
    }
    r.finish().map_err(Error::Write)
}

/// True when `line` starts a dump's goroutines or is its signal line: where the service's
/// own lines end.
fn starts_dump(line: &[u8]) -> bool {
    if memchr::memmem::find(line, b"SIGQUIT: quit").is_some() {
        return true;
    }
    line.strip_prefix(b"goroutine ").is_some_and(|rest| {
        let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        digits > 0 && rest[digits..].starts_with(b" [")
    })
}

/// A journal line and its time.
pub type TimedLine = (DateTime<FixedOffset>, Vec<u8>);

/// The unit's own journal lines within `span` of `at` (for `gorescue unit --context`),
/// rejoined where journald split them. Stops where a dump starts (`SIGQUIT: quit`, or a
/// panic's first goroutine), so the dump's own lines are left out.
pub fn lines_around(
    unit: &str,
    user: bool,
    at: DateTime<FixedOffset>,
    span: Duration,
) -> Result<Vec<TimedLine>, Error> {
    let mut j = Journal::open(user).map_err(journal_err)?;
    lines_around_in(&mut j, unit, user, at, span)
}

/// [`lines_around`] in a journal already open (e.g. [`Journal::open_root`]).
pub fn lines_around_in(
    j: &mut Journal,
    unit: &str,
    user: bool,
    at: DateTime<FixedOffset>,
    span: Duration,
) -> Result<Vec<TimedLine>, Error> {
    let unit = normalize_unit(unit);
    let span = chrono::Duration::from_std(span).unwrap_or(chrono::Duration::days(365));
    j.read_unit(&Filter::unit(&unit, user), Some(at - span))
        .map_err(journal_err)?;
    let end = at + span;
    let mut v = Vec::new();
    for line in j.lines() {
        let line = line.map_err(journal_err)?;
        if line.time > end || starts_dump(&line.bytes) {
            break;
        }
        v.push((line.time, line.bytes));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_names() {
        assert_eq!(normalize_unit("wedge1"), "wedge1.service");
        assert_eq!(normalize_unit("wedge1.service"), "wedge1.service");
        assert_eq!(normalize_unit("foo.scope"), "foo.scope");
        assert_eq!(normalize_unit("my.app"), "my.app.service");
        assert_eq!(normalize_unit("getty@tty1"), "getty@tty1.service");
    }

    #[test]
    fn since_forms() {
        let now = Local::now().fixed_offset();
        let t = parse_since("2h ago").unwrap();
        let d = now - t;
        assert!(d >= chrono::Duration::minutes(119) && d <= chrono::Duration::minutes(121));
        assert!(parse_since("today").unwrap() <= now);
        assert!(parse_since("yesterday").unwrap() < parse_since("today").unwrap());
        assert_eq!(
            parse_since("@1700000000").unwrap().timestamp(),
            1_700_000_000
        );
        assert!(matches!(parse_since("soon"), Err(Error::BadSince(_))));
    }

    #[test]
    fn dump_starts() {
        assert!(starts_dump(b"SIGQUIT: quit"));
        assert!(starts_dump(b"goroutine 1 [running]:"));
        assert!(!starts_dump(b"goroutine leak suspected"));
        assert!(!starts_dump(b"hello"));
    }
}
