//! The offline commands, `annotate` and `strace`: input in, rendered dumps out.
//! The I/O lives here; the parsing and rendering it drives are pure.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, Local, NaiveDate, NaiveDateTime, TimeZone, Utc};

use crate::cli::{Format, OutputArgs, RenderArgs};
use crate::dump::render::{
    JsonRenderer, Options, RawRenderer, Renderer, Tally, TextRenderer, Zone,
};
use crate::dump::{DumpTime, LineTime, Parser, TimePolicy, TimeSource};
use crate::error::Error;
use crate::input::{self, StampClock};
use crate::strace_log::{Reassembler, Timestamp};

/// An opened input: a file or standard input, and the file's modification time.
pub struct Input {
    pub path: Option<PathBuf>,
    pub reader: Box<dyn Read>,
    pub mtime: Option<DateTime<FixedOffset>>,
}

impl Input {
    /// Open `path` (`None` or `-` is standard input).
    pub fn open(path: Option<&Path>) -> Result<Input, Error> {
        let path = path.filter(|p| p.as_os_str() != "-");
        let Some(path) = path else {
            return Ok(Input {
                path: None,
                reader: Box::new(io::stdin().lock()),
                mtime: None,
            });
        };
        let read_err = |source| Error::Read {
            path: Some(path.to_path_buf()),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read_err)?;
        if meta.is_dir() {
            return Err(Error::IsDirectory(path.to_path_buf()));
        }
        let file = File::open(path).map_err(read_err)?;
        let mtime = meta
            .modified()
            .ok()
            .map(|t| DateTime::<Local>::from(t).fixed_offset());
        Ok(Input {
            path: Some(path.to_path_buf()),
            reader: Box::new(file),
            mtime,
        })
    }
}

/// Parse `--at`: RFC 3339, local `YYYY-MM-DD HH:MM[:SS]`, or `@UNIXSECONDS`.
pub fn parse_at(s: &str) -> Result<DateTime<FixedOffset>, Error> {
    let bad = || Error::BadTime(s.to_string());
    let t = s.trim();
    if let Some(secs) = t.strip_prefix('@') {
        let v: f64 = secs.parse().map_err(|_| bad())?;
        let whole = v.floor();
        let nanos = ((v - whole) * 1e9).round() as u32;
        return DateTime::<Utc>::from_timestamp(whole as i64, nanos.min(999_999_999))
            .map(|t| t.fixed_offset())
            .ok_or_else(bad);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(t) {
        return Ok(t);
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, fmt) {
            return Local
                .from_local_datetime(&n)
                .earliest()
                .map(|t| t.fixed_offset())
                .ok_or_else(bad);
        }
    }
    Err(bad())
}

pub fn renderer(format: Format, out: Box<dyn Write>, opts: Options) -> Box<dyn Renderer> {
    match format {
        Format::Text => Box::new(TextRenderer::new(out, opts)),
        Format::Json => Box::new(JsonRenderer::new(out, opts)),
        Format::Raw => Box::new(RawRenderer::new(out)),
    }
}

pub fn options(args: &RenderArgs) -> Options {
    Options {
        zone: Zone { utc: args.utc },
        group: args.group,
    }
}

fn policy(args: &OutputArgs, input: &Input) -> Result<TimePolicy, Error> {
    Ok(TimePolicy {
        argument: args
            .at
            .as_deref()
            .map(parse_at)
            .transpose()?
            .map(|time| DumpTime {
                time,
                source: TimeSource::Argument,
            }),
        fallback: input.mtime.map(|time| DumpTime {
            time,
            source: TimeSource::FileMtime,
        }),
    })
}

/// The verdict on what was read: an error when it held no dump.
fn verdict(path: Option<PathBuf>, bytes: u64, tally: Tally, hint: String) -> Result<Tally, Error> {
    if bytes == 0 {
        return Err(Error::Empty(path));
    }
    if tally.dumps == 0 {
        return Err(Error::NoDump { path, hint });
    }
    Ok(tally)
}

fn read_err(path: &Option<PathBuf>) -> impl Fn(io::Error) -> Error + '_ {
    move |e| {
        if e.kind() == io::ErrorKind::BrokenPipe || e.kind() == io::ErrorKind::WriteZero {
            Error::Write(e)
        } else if is_output_error(&e) {
            Error::Write(unwrap_output_error(e))
        } else {
            Error::Read {
                path: path.clone(),
                source: e,
            }
        }
    }
}

/// Errors of the output side are tagged so that they are not reported as read errors.
#[derive(Debug)]
struct OutputError(io::Error);
impl std::fmt::Display for OutputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
impl std::error::Error for OutputError {}

fn out_err(e: io::Error) -> io::Error {
    io::Error::other(OutputError(e))
}
fn is_output_error(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<OutputError>())
}
fn unwrap_output_error(e: io::Error) -> io::Error {
    match e.into_inner() {
        Some(inner) => match inner.downcast::<OutputError>() {
            Ok(o) => o.0,
            Err(other) => io::Error::other(other),
        },
        None => io::Error::other("output error"),
    }
}

/// A [`Sink`](crate::dump::Sink) adaptor that tags the renderer's I/O errors as output errors.
struct Tagged<'a>(&'a mut dyn Renderer);
impl crate::dump::Sink for Tagged<'_> {
    fn dump_start(&mut self, info: &crate::dump::DumpInfo) -> io::Result<()> {
        self.0.dump_start(info).map_err(out_err)
    }
    fn dump_line(&mut self, line: &[u8]) -> io::Result<()> {
        self.0.dump_line(line).map_err(out_err)
    }
    fn goroutine(&mut self, g: &crate::dump::Goroutine) -> io::Result<()> {
        self.0.goroutine(g).map_err(out_err)
    }
    fn dump_end(&mut self, info: &crate::dump::DumpInfo, complete: bool) -> io::Result<()> {
        self.0.dump_end(info, complete).map_err(out_err)
    }
}

/// Feeds unwrapped lines to the parser: journalctl prefixes are removed and their
/// timestamps kept for the dump time. Pure: the caller supplies the lines.
pub struct LineFeeder {
    pub parser: Parser,
    clock: StampClock,
}

impl LineFeeder {
    /// `reference` dates journal stamps that carry no year (journalctl's `short` modes).
    pub fn new(policy: TimePolicy, reference: DateTime<FixedOffset>) -> Self {
        LineFeeder {
            parser: Parser::new(policy),
            clock: StampClock { reference },
        }
    }

    pub fn feed(&mut self, line: &[u8], sink: &mut dyn crate::dump::Sink) -> io::Result<()> {
        if let Some(j) = input::parse_journal_line(line) {
            let clock = self.clock;
            let time = move || {
                clock.resolve(j.stamp).map(|time| LineTime {
                    time,
                    source: TimeSource::Journal,
                })
            };
            return self.parser.feed(j.message, &time, Some(j.source), sink);
        }
        if input::is_journal_marker(line) {
            return Ok(());
        }
        self.parser.feed(line, &|| None, None, sink)
    }

    /// Feed every line of `r`, then end the input. Returns the bytes read.
    pub fn feed_all<R: Read>(&mut self, r: R, sink: &mut dyn crate::dump::Sink) -> io::Result<u64> {
        let n = input::for_each_line(r, |line| self.feed(line, sink))?;
        self.parser.finish(sink)?;
        Ok(n)
    }
}

/// `gorescue annotate`.
pub fn annotate(
    file: Option<&Path>,
    args: &OutputArgs,
    out: Box<dyn Write>,
) -> Result<Tally, Error> {
    let input = Input::open(file)?;
    let policy = policy(args, &input)?;
    let mut r = renderer(args.render.format, out, options(&args.render));
    let reference = input.mtime.unwrap_or_else(|| Local::now().fixed_offset());
    let mut feeder = LineFeeder::new(policy, reference);
    let path = input.path.clone();
    let bytes = feeder
        .feed_all(input.reader, &mut Tagged(r.as_mut()))
        .map_err(read_err(&path))?;
    let tally = r.finish().map_err(Error::Write)?;
    verdict(path, bytes, tally, String::new())
}

/// Turns strace timestamps into dump times: `-t`/`-tt` give only a time of day, dated with
/// the log's modification date (or today for standard input).
fn strace_time(ts: Timestamp, reference: DateTime<FixedOffset>) -> Option<DateTime<FixedOffset>> {
    match ts {
        Timestamp::Unix { secs, nanos } => {
            DateTime::<Utc>::from_timestamp(secs, nanos).map(|t| t.fixed_offset())
        }
        Timestamp::TimeOfDay { secs_of_day, nanos } => {
            let reference = reference.with_timezone(&Local);
            let time = chrono::NaiveTime::from_num_seconds_from_midnight_opt(secs_of_day, nanos)?;
            let mut date: NaiveDate = reference.date_naive();
            // A time of day later than the reference belongs to the day before.
            if time > reference.time() + chrono::Duration::minutes(1) {
                date = date.pred_opt()?;
            }
            Local
                .from_local_datetime(&date.and_time(time))
                .earliest()
                .map(|t| t.fixed_offset())
        }
        Timestamp::Relative { .. } => None,
    }
}

/// `gorescue strace`.
pub fn strace(
    file: Option<&Path>,
    fd: u32,
    args: &OutputArgs,
    out: Box<dyn Write>,
    warn: &mut dyn Write,
) -> Result<Tally, Error> {
    let input = Input::open(file)?;
    let policy = policy(args, &input)?;
    let reference = input.mtime.unwrap_or_else(|| Local::now().fixed_offset());
    // Raw prints every reassembled byte; the parser then only counts the dumps.
    let (mut r, mut raw_out): (Box<dyn Renderer>, Option<Box<dyn Write>>) =
        if args.render.format == Format::Raw {
            (Box::new(RawRenderer::new(io::sink())), Some(out))
        } else {
            (
                renderer(args.render.format, out, options(&args.render)),
                None,
            )
        };
    let mut parser = Parser::new(policy);
    let mut re = Reassembler::new(fd);
    let mut buf: Vec<u8> = Vec::new();
    let mut line_time: Option<LineTime> = None;
    let path = input.path.clone();
    let bytes = {
        let mut sink = Tagged(r.as_mut());
        let mut emit = |buf: &mut Vec<u8>,
                        line_time: &mut Option<LineTime>,
                        write_time: Option<LineTime>,
                        sink: &mut Tagged<'_>|
         -> io::Result<()> {
            let mut start = 0;
            for nl in memchr::memchr_iter(b'\n', buf) {
                let line = &buf[start..nl];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let t = *line_time;
                parser.feed(line, &|| t, None, sink)?;
                start = nl + 1;
                // The next line starts inside the write that ended this one.
                *line_time = write_time;
            }
            buf.drain(..start);
            if buf.is_empty() {
                *line_time = None;
            }
            Ok(())
        };
        let n = input::for_each_line(input.reader, |line| {
            let before = buf.len();
            re.feed_line(line, &mut buf);
            if buf.len() == before {
                return Ok(());
            }
            if let Some(o) = raw_out.as_mut() {
                o.write_all(&buf[before..]).map_err(out_err)?;
            }
            let write_time = re.stats().last_time.and_then(|ts| {
                strace_time(ts, reference).map(|time| LineTime {
                    time,
                    source: TimeSource::Strace,
                })
            });
            if before == 0 {
                line_time = write_time;
            }
            emit(&mut buf, &mut line_time, write_time, &mut sink)
        })
        .map_err(read_err(&path))?;
        let before = buf.len();
        re.finish(&mut buf);
        if let Some(o) = raw_out.as_mut() {
            o.write_all(&buf[before..]).map_err(Error::Write)?;
        }
        if !buf.is_empty() {
            let t = line_time;
            parser
                .feed(&buf, &|| t, None, &mut sink)
                .map_err(read_err(&path))?;
        }
        if re.stats().truncated_writes > 0 {
            sink.0.force_incomplete();
        }
        parser.finish(&mut sink).map_err(read_err(&path))?;
        n
    };
    let stats = re.stats().clone();
    if stats.truncated_writes > 0 {
        let _ = writeln!(
            warn,
            "gorescue: warning: {} of {} writes were cut by strace's -s limit (\"...\"...): their \
missing bytes cannot be recovered and the dump is marked incomplete; record with -s 65536 to avoid this",
            stats.truncated_writes, stats.writes
        );
    }
    if let Some(o) = raw_out.as_mut() {
        o.flush().map_err(Error::Write)?;
    }
    let tally = r.finish().map_err(Error::Write)?;
    let hint = if stats.writes == 0 {
        format!(
            " (the log has no write({fd}, ...) calls: was it recorded with strace -e trace=write, and is --fd right?)"
        )
    } else {
        String::new()
    };
    verdict(path, bytes, tally, hint)
}
