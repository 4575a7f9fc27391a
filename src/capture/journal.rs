//! Reading the systemd journal (sd-journal, through the `systemd` crate): a small safe
//! interface for what gorescue needs.
//!
//! - [`Journal::cursor_now`] takes the position before a signal is sent, and
//!   [`Journal::follow_from`] plus [`Journal::next_entry`] / [`Journal::wait`] read what was
//!   logged after it.
//! - [`Journal::read_unit`] positions the journal at a unit's entries (from a time on), for
//!   the offline `gorescue journal`.
//! - [`LineJoiner`] (and [`Journal::lines`]) rejoin the lines journald split at its
//!   `LineMax=` (entries with `_LINE_BREAK=line-max` continue in the next entry of the same
//!   process).
//!
//! MESSAGE is read as bytes: a dump can hold any bytes (argument strings, paths), and
//! journald stores a message that is not valid UTF-8 as binary data.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, FixedOffset, Local};
use systemd::journal::{self as sd, JournalWaitResult};

/// One journal entry, with the fields gorescue uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `__REALTIME_TIMESTAMP`, in the local time zone.
    pub realtime: DateTime<FixedOffset>,
    /// `_PID`.
    pub pid: Option<i32>,
    /// `_SYSTEMD_INVOCATION_ID`.
    pub invocation_id: Option<String>,
    /// `MESSAGE`, as bytes.
    pub message: Vec<u8>,
    /// `_LINE_BREAK`: why journald ended the line somewhere other than at a newline
    /// (`line-max`, `eof`, `nul`, `pid-change`).
    pub line_break: Option<String>,
    /// The entry's cursor.
    pub cursor: String,
    /// `PRIORITY`.
    pub priority: Option<u8>,
    /// `SYSLOG_IDENTIFIER`.
    pub identifier: Option<String>,
}

impl Entry {
    /// journald cut this line at `LineMax=`: it continues in the next entry of the process.
    pub fn continues(&self) -> bool {
        self.line_break.as_deref() == Some("line-max")
    }
}

/// Which entries to read. Fields that are set must all match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// The unit: `_SYSTEMD_UNIT=`, or `_SYSTEMD_USER_UNIT=` when `user_unit` is set.
    pub unit: Option<String>,
    pub user_unit: bool,
    /// `_SYSTEMD_INVOCATION_ID=`.
    pub invocation_id: Option<String>,
    /// `_PID=`.
    pub pid: Option<i32>,
}

impl Filter {
    /// The entries of `unit`, a system unit or (with `user`) a user unit.
    pub fn unit(unit: &str, user: bool) -> Filter {
        Filter {
            unit: Some(unit.to_string()),
            user_unit: user,
            ..Filter::default()
        }
    }
}

/// One logical line: one or more entries of the same process, rejoined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalLine {
    /// The time of the line's first entry.
    pub time: DateTime<FixedOffset>,
    pub pid: Option<i32>,
    pub invocation_id: Option<String>,
    pub bytes: Vec<u8>,
    /// The cursor of the line's first entry.
    pub cursor: String,
    /// How many entries made up the line (more than 1 when journald split it).
    pub entries: usize,
}

/// An open journal: the system's, or the user's.
pub struct Journal {
    j: sd::Journal,
    uid: u32,
    user: bool,
    /// After [`Journal::follow_from`]: the cursor entry, to be skipped if read.
    skip: Option<String>,
}

fn local_time(usec: u64) -> DateTime<FixedOffset> {
    let t: SystemTime = UNIX_EPOCH + Duration::from_micros(usec);
    DateTime::<Local>::from(t).fixed_offset()
}

fn usec(t: DateTime<FixedOffset>) -> u64 {
    t.timestamp_micros().max(0) as u64
}

impl Journal {
    /// Open the journal as journalctl does: with `user`, the current user's journal files
    /// and the system's (where journald keeps the entries of root and of system users);
    /// without, every file (a system service running as a regular user is logged to that
    /// user's files). Only this machine's entries are read.
    pub fn open(user: bool) -> io::Result<Journal> {
        let mut o = sd::OpenOptions::default();
        o.local_only(true);
        if user {
            o.current_user(true).system(true);
        }
        Journal::new(o.open()?, user)
    }

    /// Open the journal of the system whose root directory is `root` (its `/var/log/journal`
    /// and `/run/log/journal`): a container's, or `/proc/PID/root` of a process in another
    /// mount namespace. `user` as in [`open`](Self::open).
    pub fn open_root(root: &Path, user: bool) -> io::Result<Journal> {
        let mut o = sd::OpenDirectoryOptions::default();
        o.os_root(true);
        if user {
            o.current_user(true).system(true);
        }
        let dir = root
            .to_str()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "a non-UTF-8 path"))?;
        Journal::new(o.open_directory(dir)?, user)
    }

    fn new(mut j: sd::Journal, user: bool) -> io::Result<Journal> {
        // MESSAGE must never be cut short: 0 is "no limit".
        j.set_data_threshold(0)?;
        Ok(Journal {
            j,
            uid: nix::unistd::getuid().as_raw(),
            user,
            skip: None,
        })
    }

    fn set_filter(&mut self, filter: &Filter) -> io::Result<()> {
        self.j.match_flush()?;
        if let Some(unit) = &filter.unit {
            if filter.user_unit {
                self.j.match_add("_SYSTEMD_USER_UNIT", unit.as_bytes())?;
                // The user's own units, not another user's of the same name.
                if self.user {
                    self.j.match_add("_UID", self.uid.to_string())?;
                }
            } else {
                self.j.match_add("_SYSTEMD_UNIT", unit.as_bytes())?;
            }
        }
        if let Some(id) = &filter.invocation_id {
            self.j.match_add("_SYSTEMD_INVOCATION_ID", id.as_bytes())?;
        }
        if let Some(pid) = filter.pid {
            self.j.match_add("_PID", pid.to_string())?;
        }
        Ok(())
    }

    /// The position of the journal's last entry, taken before signalling, so that
    /// [`follow_from`](Self::follow_from) reads only what was logged after it.
    /// `None` when the journal is empty.
    pub fn cursor_now(&mut self) -> io::Result<Option<String>> {
        self.j.match_flush()?;
        self.skip = None;
        self.j.seek_tail()?;
        if self.j.previous()? == 0 {
            return Ok(None);
        }
        Ok(Some(self.j.cursor()?))
    }

    /// Read the entries matching `filter` that come after `cursor` (from the start of the
    /// journal when `cursor` is `None`) with [`next_entry`](Self::next_entry).
    pub fn follow_from(&mut self, cursor: Option<&str>, filter: &Filter) -> io::Result<()> {
        self.set_filter(filter)?;
        self.skip = None;
        match cursor {
            None => self.j.seek_head()?,
            Some(c) => {
                // The first entry read is the cursor's own when it matches the filter: it
                // was logged before, so it is skipped.
                self.j.seek_cursor(c)?;
                self.skip = Some(c.to_string());
            }
        }
        Ok(())
    }

    /// Read the entries matching `filter` from `since` on (from the start without it).
    pub fn read_unit(
        &mut self,
        filter: &Filter,
        since: Option<DateTime<FixedOffset>>,
    ) -> io::Result<()> {
        self.set_filter(filter)?;
        self.skip = None;
        match since {
            Some(t) => self.j.seek_realtime_usec(usec(t))?,
            None => self.j.seek_head()?,
        }
        Ok(())
    }

    /// The next entry, or `None` at the end of the journal (for now: see [`wait`](Self::wait)).
    pub fn next_entry(&mut self) -> io::Result<Option<Entry>> {
        loop {
            if self.j.next()? == 0 {
                return Ok(None);
            }
            if let Some(c) = self.skip.take()
                && self.j.test_cursor(c.as_str())?
            {
                continue;
            }
            return self.entry().map(Some);
        }
    }

    fn entry(&mut self) -> io::Result<Entry> {
        let realtime = local_time(self.j.timestamp_usec()?);
        let cursor = self.j.cursor()?;
        let mut e = Entry {
            realtime,
            pid: None,
            invocation_id: None,
            message: Vec::new(),
            line_break: None,
            cursor,
            priority: None,
            identifier: None,
        };
        let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
        fn num<T: std::str::FromStr>(v: &[u8]) -> Option<T> {
            std::str::from_utf8(v).ok()?.parse().ok()
        }
        // One walk over the entry's fields (cheaper than a lookup per field).
        self.j.restart_data();
        while let Some(f) = self.j.enumerate_data()? {
            let Some(v) = f.value() else { continue };
            match f.name() {
                b"MESSAGE" => e.message = v.to_vec(),
                b"_PID" => e.pid = num(v),
                b"_SYSTEMD_INVOCATION_ID" => e.invocation_id = Some(text(v)),
                b"_LINE_BREAK" => e.line_break = Some(text(v)),
                b"PRIORITY" => e.priority = num(v),
                b"SYSLOG_IDENTIFIER" => e.identifier = Some(text(v)),
                _ => {}
            }
        }
        Ok(e)
    }

    /// Block until the journal changes or `timeout` passes. True when entries may have been
    /// added (read them with [`next_entry`](Self::next_entry)).
    pub fn wait(&mut self, timeout: Duration) -> io::Result<bool> {
        Ok(!matches!(
            self.j.wait(Some(timeout))?,
            JournalWaitResult::Nop
        ))
    }

    /// The logical lines from the read position to the end of the journal; lines still
    /// waiting for their continuation at the end are given as they are.
    pub fn lines(&mut self) -> Lines<'_> {
        Lines {
            journal: self,
            joiner: LineJoiner::default(),
            tail: Vec::new(),
            done: false,
        }
    }
}

/// Rejoins lines that journald split at `LineMax=`: an entry with `_LINE_BREAK=line-max`
/// continues in the next entry of the same process. Pure: feed it entries in journal order.
#[derive(Debug, Default)]
pub struct LineJoiner {
    pending: HashMap<Option<i32>, LogicalLine>,
}

impl LineJoiner {
    /// Add an entry; returns the line it completes, if any.
    pub fn push(&mut self, e: Entry) -> Option<LogicalLine> {
        let continues = e.continues();
        let line = match self.pending.remove(&e.pid) {
            Some(mut l) => {
                l.bytes.extend_from_slice(&e.message);
                l.entries += 1;
                l
            }
            None => LogicalLine {
                time: e.realtime,
                pid: e.pid,
                invocation_id: e.invocation_id,
                bytes: e.message,
                cursor: e.cursor,
                entries: 1,
            },
        };
        if continues {
            self.pending.insert(line.pid, line);
            None
        } else {
            Some(line)
        }
    }

    /// Whether a line of some process waits for its continuation.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The lines still waiting for their continuation (the process logged no more), in the
    /// order they started.
    pub fn finish(&mut self) -> Vec<LogicalLine> {
        let mut v: Vec<LogicalLine> = self.pending.drain().map(|(_, l)| l).collect();
        v.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.cursor.cmp(&b.cursor)));
        v
    }
}

/// See [`Journal::lines`].
pub struct Lines<'a> {
    journal: &'a mut Journal,
    joiner: LineJoiner,
    tail: Vec<LogicalLine>,
    done: bool,
}

impl Iterator for Lines<'_> {
    type Item = io::Result<LogicalLine>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return if self.tail.is_empty() {
                    None
                } else {
                    Some(Ok(self.tail.remove(0)))
                };
            }
            match self.journal.next_entry() {
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Ok(None) => {
                    self.done = true;
                    self.tail = self.joiner.finish();
                }
                Ok(Some(e)) => {
                    if let Some(line) = self.joiner.push(e) {
                        return Some(Ok(line));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u64, pid: i32, msg: &str, brk: Option<&str>) -> Entry {
        Entry {
            realtime: local_time(1_700_000_000_000_000 + n),
            pid: Some(pid),
            invocation_id: Some("inv".into()),
            message: msg.as_bytes().to_vec(),
            line_break: brk.map(str::to_string),
            cursor: format!("c{n}"),
            priority: Some(6),
            identifier: Some("prog".into()),
        }
    }

    #[test]
    fn rejoins_line_max_splits_per_process() {
        let mut j = LineJoiner::default();
        assert_eq!(j.push(entry(1, 10, "aaa", Some("line-max"))), None);
        // Another process's line in between is passed through.
        let other = j.push(entry(2, 11, "other", None)).unwrap();
        assert_eq!(other.bytes, b"other");
        assert_eq!(j.push(entry(3, 10, "bbb", Some("line-max"))), None);
        let l = j.push(entry(4, 10, "ccc", None)).unwrap();
        assert_eq!(l.bytes, b"aaabbbccc");
        assert_eq!(l.cursor, "c1");
        assert_eq!(l.time, local_time(1_700_000_000_000_001));
        assert_eq!(l.entries, 3);
        assert!(!j.has_pending());
        // Other line breaks end the line.
        assert_eq!(j.push(entry(5, 10, "x", Some("eof"))).unwrap().bytes, b"x");
        assert_eq!(j.push(entry(6, 10, "y", Some("line-max"))), None);
        let rest = j.finish();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].bytes, b"y");
    }
}
