//! Turning input bytes into dump lines: splitting lines, dropping `\r`, and unwrapping
//! journalctl's `short*` prefixes. Pure: no I/O beyond the `Read` the caller hands in.

use std::io::{self, Read};

use chrono::{DateTime, Datelike, FixedOffset, Local, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// Calls `f` with every line of `r`, without its `\n` (and `\r`). A last line without
/// `\n` is passed too. Memory stays at one buffer plus the longest line.
pub fn for_each_line<R: Read>(
    mut r: R,
    mut f: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut filled = 0usize;
    let mut total = 0u64;
    loop {
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = match r.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        total += n as u64;
        if n == 0 {
            if filled > 0 {
                f(strip_cr(&buf[..filled]))?;
            }
            return Ok(total);
        }
        let data_end = filled + n;
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', &buf[filled..data_end]) {
            let end = filled + nl;
            f(strip_cr(&buf[start..end]))?;
            start = end + 1;
        }
        buf.copy_within(start..data_end, 0);
        filled = data_end - start;
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The timestamp text of a journalctl prefix, not yet interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp<'a> {
    /// `Nov 28 08:17:01` or `Nov 28 08:17:01.123456` (short, short-precise): local time, no year.
    Short(&'a [u8]),
    /// `2026-11-28T08:17:01+0000`, `...01.123456+00:00` (short-iso, short-iso-precise).
    Iso(&'a [u8]),
    /// `Sat 2026-11-28 08:17:01 UTC` (short-full): local time unless the zone is UTC.
    Full(&'a [u8]),
    /// `1764317821.123456` (short-unix).
    Unix(&'a [u8]),
    /// `[ 1234.567890]` (short-monotonic): no wall-clock time.
    Monotonic,
}

/// A journalctl line taken apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalLine<'a> {
    pub stamp: Stamp<'a>,
    /// `ident[pid]` (or `ident`), used to keep one process's lines together.
    pub source: &'a [u8],
    pub message: &'a [u8],
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];
const WEEKDAYS: [&[u8; 3]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];

fn digits(s: &[u8]) -> usize {
    s.iter().take_while(|c| c.is_ascii_digit()).count()
}

/// `HH:MM:SS` with optional `.ffffff`; returns its length.
fn time_len(s: &[u8]) -> Option<usize> {
    if s.len() < 8
        || digits(&s[0..2]) != 2
        || s[2] != b':'
        || digits(&s[3..5]) != 2
        || s[5] != b':'
        || digits(&s[6..8]) != 2
    {
        return None;
    }
    if s.get(8) == Some(&b'.') {
        let d = digits(&s[9..]);
        if d == 0 {
            return None;
        }
        return Some(9 + d);
    }
    Some(8)
}

/// `YYYY-MM-DD`; returns true when it is one.
fn is_date(s: &[u8]) -> bool {
    s.len() >= 10
        && digits(&s[0..4]) == 4
        && s[4] == b'-'
        && digits(&s[5..7]) == 2
        && s[7] == b'-'
        && digits(&s[8..10]) == 2
}

/// The length of the timestamp at the start of `line`, and its kind.
fn stamp_prefix(line: &[u8]) -> Option<(Stamp<'_>, usize)> {
    let first = *line.first()?;
    if first.is_ascii_digit() {
        if is_date(line) && line.get(10) == Some(&b'T') {
            let t = time_len(&line[11..])?;
            let mut n = 11 + t;
            let rest = &line[n..];
            if rest.first() == Some(&b'Z') {
                n += 1;
            } else if matches!(rest.first(), Some(b'+' | b'-')) {
                let d = digits(&rest[1..]);
                n += if d == 4 {
                    5
                } else if d == 2 && rest.get(3) == Some(&b':') && digits(&rest[4..]) == 2 {
                    6
                } else {
                    return None;
                };
            } else {
                return None;
            }
            return Some((Stamp::Iso(&line[..n]), n));
        }
        let d = digits(line);
        if d >= 9 && line.get(d) == Some(&b'.') {
            let f = digits(&line[d + 1..]);
            if f == 6 {
                let n = d + 1 + f;
                return Some((Stamp::Unix(&line[..n]), n));
            }
        }
        return None;
    }
    if first == b'[' {
        let close = memchr::memchr(b']', line)?;
        let inner = &line[1..close];
        if inner
            .iter()
            .all(|c| c.is_ascii_digit() || *c == b' ' || *c == b'.')
            && inner.contains(&b'.')
        {
            return Some((Stamp::Monotonic, close + 1));
        }
        return None;
    }
    if line.len() < 15 {
        return None;
    }
    let head: &[u8; 3] = line[..3].try_into().ok()?;
    if MONTHS.contains(&head) && line[3] == b' ' {
        if !(line[4] == b' ' || line[4].is_ascii_digit())
            || !line[5].is_ascii_digit()
            || line[6] != b' '
        {
            return None;
        }
        let t = time_len(&line[7..])?;
        let n = 7 + t;
        return Some((Stamp::Short(&line[..n]), n));
    }
    if WEEKDAYS.contains(&head)
        && line[3] == b' '
        && is_date(&line[4..])
        && line.get(14) == Some(&b' ')
    {
        let t = time_len(&line[15..])?;
        let mut n = 15 + t;
        if line.get(n) != Some(&b' ') {
            return None;
        }
        let z = line[n + 1..]
            .iter()
            .take_while(|c| !c.is_ascii_whitespace())
            .count();
        n += 1 + z;
        return Some((Stamp::Full(&line[..n]), n));
    }
    None
}

/// Take a journalctl `short*` line apart: `<time> <host> <ident>[<pid>]: <message>`.
/// Returns None for lines without such a prefix.
pub fn parse_journal_line(line: &[u8]) -> Option<JournalLine<'_>> {
    let (stamp, n) = stamp_prefix(line)?;
    let rest = line.get(n..)?.strip_prefix(b" ")?;
    let host = memchr::memchr(b' ', rest)?;
    if host == 0 {
        return None;
    }
    let rest = &rest[host + 1..];
    // The identifier ends at the first `: ` (or a `:` that ends the line).
    let colon = memchr::memmem::find(rest, b": ").or_else(|| {
        if rest.ends_with(b":") {
            Some(rest.len() - 1)
        } else {
            None
        }
    })?;
    let source = &rest[..colon];
    if source.is_empty() {
        return None;
    }
    let message = rest.get(colon + 2..).unwrap_or(b"");
    Some(JournalLine {
        stamp,
        source,
        message,
    })
}

/// Is this a journalctl marker line (`-- Boot 1a2b... --`, `-- No entries --`)?
pub fn is_journal_marker(line: &[u8]) -> bool {
    line.len() >= 6 && line.starts_with(b"-- ") && line.ends_with(b" --")
}

/// Interprets journal stamps. `reference` supplies the year that `short` stamps lack: the
/// newest year that does not put the stamp more than a day after the reference.
#[derive(Debug, Clone, Copy)]
pub struct StampClock {
    pub reference: DateTime<FixedOffset>,
}

impl StampClock {
    pub fn resolve(&self, stamp: Stamp<'_>) -> Option<DateTime<FixedOffset>> {
        let text = match stamp {
            Stamp::Monotonic => return None,
            Stamp::Short(t) | Stamp::Iso(t) | Stamp::Full(t) | Stamp::Unix(t) => {
                std::str::from_utf8(t).ok()?
            }
        };
        match stamp {
            Stamp::Iso(_) => DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z").ok(),
            Stamp::Unix(_) => {
                let (s, f) = text.split_once('.')?;
                let secs: i64 = s.parse().ok()?;
                let micros: u32 = f.parse().ok()?;
                let t = DateTime::<Utc>::from_timestamp(secs, micros * 1000)?;
                Some(t.fixed_offset())
            }
            Stamp::Full(_) => {
                let (dt, zone) = text[4..].rsplit_once(' ')?;
                let naive = NaiveDateTime::parse_from_str(dt, "%Y-%m-%d %H:%M:%S%.f").ok()?;
                if zone == "UTC" || zone == "GMT" {
                    Some(Utc.from_utc_datetime(&naive).fixed_offset())
                } else {
                    local(naive)
                }
            }
            Stamp::Short(_) => {
                let month = MONTHS.iter().position(|m| m[..] == text.as_bytes()[..3])? as u32 + 1;
                let day: u32 = text[4..6].trim().parse().ok()?;
                let time = chrono::NaiveTime::parse_from_str(&text[7..], "%H:%M:%S%.f").ok()?;
                let mut year = self.reference.year();
                let limit = self.reference.naive_local() + chrono::Duration::days(1);
                loop {
                    let date = NaiveDate::from_ymd_opt(year, month, day);
                    if let Some(d) = date
                        && d.and_time(time) <= limit
                    {
                        return local(d.and_time(time));
                    }
                    year -= 1;
                    if year < self.reference.year() - 8 {
                        return None;
                    }
                }
            }
            Stamp::Monotonic => None,
        }
    }
}

fn local(naive: NaiveDateTime) -> Option<DateTime<FixedOffset>> {
    Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.fixed_offset())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_across_reads_and_strips_cr() {
        let data = b"a\r\nbb\n\nlast";
        let mut got = Vec::new();
        // A reader that returns one byte at a time exercises the carry-over.
        struct OneByte<'a>(&'a [u8]);
        impl Read for OneByte<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() || buf.is_empty() {
                    return Ok(0);
                }
                buf[0] = self.0[0];
                self.0 = &self.0[1..];
                Ok(1)
            }
        }
        for_each_line(OneByte(data), |l| {
            got.push(l.to_vec());
            Ok(())
        })
        .unwrap();
        assert_eq!(
            got,
            vec![
                b"a".to_vec(),
                b"bb".to_vec(),
                b"".to_vec(),
                b"last".to_vec()
            ]
        );
    }

    #[test]
    fn journal_prefixes() {
        let cases: [(&[u8], &[u8]); 6] = [
            (
                b"Nov 28 08:17:01 host demo[42]: SIGQUIT: quit",
                b"Nov 28 08:17:01",
            ),
            (
                b"Nov  8 08:17:01.123456 host demo[42]: SIGQUIT: quit",
                b"Nov  8 08:17:01.123456",
            ),
            (
                b"2026-11-28T08:17:01+0000 host demo[42]: SIGQUIT: quit",
                b"2026-11-28T08:17:01+0000",
            ),
            (
                b"2026-11-28T08:17:01.123456+01:00 host demo[42]: SIGQUIT: quit",
                b"2026-11-28T08:17:01.123456+01:00",
            ),
            (
                b"1764317821.123456 host demo[42]: SIGQUIT: quit",
                b"1764317821.123456",
            ),
            (
                b"Sat 2026-11-28 08:17:01 UTC host demo[42]: SIGQUIT: quit",
                b"Sat 2026-11-28 08:17:01 UTC",
            ),
        ];
        for (line, stamp) in cases {
            let j = parse_journal_line(line).unwrap();
            assert_eq!(j.message, b"SIGQUIT: quit");
            assert_eq!(j.source, b"demo[42]");
            let text = match j.stamp {
                Stamp::Short(t) | Stamp::Iso(t) | Stamp::Full(t) | Stamp::Unix(t) => t,
                Stamp::Monotonic => unreachable!(),
            };
            assert_eq!(text, stamp);
        }
        let j = parse_journal_line(b"Nov 28 08:17:01 host demo[42]:").unwrap();
        assert_eq!(j.message, b"");
        assert!(parse_journal_line(b"goroutine 1 [running]:").is_none());
        assert!(parse_journal_line(b"\t/usr/lib/go/src/runtime/proc.go:12 +0x1").is_none());
        assert!(parse_journal_line(b"rax    0x0").is_none());
    }

    #[test]
    fn resolves_stamps() {
        let clock = StampClock {
            reference: DateTime::parse_from_rfc3339("2026-01-02T00:00:00+00:00").unwrap(),
        };
        let t = clock
            .resolve(Stamp::Iso(b"2026-11-28T08:17:01.5+0100"))
            .unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-28T08:17:01.500+01:00");
        let t = clock.resolve(Stamp::Unix(b"1764317821.000001")).unwrap();
        assert_eq!(t.timestamp(), 1764317821);
        // A December stamp read in January belongs to the year before.
        let t = clock.resolve(Stamp::Short(b"Dec 31 23:00:00")).unwrap();
        assert_eq!(t.year(), 2025);
        let t = clock.resolve(Stamp::Short(b"Jan  1 23:00:00")).unwrap();
        assert_eq!(t.year(), 2026);
    }
}
