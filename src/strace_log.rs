//! Reassemble what a program wrote to one file descriptor from an `strace -e write` log.
//!
//! The Go runtime prints its goroutine dump with one `write(2, ...)` per printed token, so the
//! dump is the concatenation of the string arguments of the `write` calls to fd 2, in the order
//! they completed. This module is pure (no I/O), streaming (one line at a time, bounded state)
//! and does no allocation per line.
//!
//! Accepted line shapes, in any combination strace produces:
//!
//! * pid prefixes: none, `[pid  1234] ` (`-f` to stderr), `1234  ` (`-f -o FILE`), and the
//!   `<comm>`/`<pid in ns>` decorations of `--decode-pids` (`[pid 1234<go>] `, `1234<go> `);
//! * timestamps after the pid: `-t` `08:17:01`, `-tt` `08:17:01.123456`, `-ttt`
//!   `1764317821.123456` (any precision from seconds to nanoseconds), `-r` `     0.000123`, and
//!   `-t -r` `08:17:01 (+     0.000123)`;
//! * `-n` `[   1] ` and `-i` `[00007f87d75f438f] ` tokens (skipped);
//! * `write(2, "..."` with every strace escape: `\n \t \r \v \f \\ \"`, octal `\0`..`\377`
//!   (1 to 3 digits), hex `\xNN` (`-x`, `-xx`); `"..."...` when cut by `-s`; a non-string
//!   buffer argument (`0x7ffd...`, `NULL`) gives no bytes;
//! * `-y`/`-yy` fd decorations `2</dev/null>`, `2<\x2f\x64...>` (taken as fd 2);
//! * return values `= 13`, `= -1 EAGAIN (...)`, `= ?`, `= ? ERESTARTSYS (...)`, followed or
//!   not by `-T`'s ` <0.000018>` or `(INJECTED)`;
//! * `<unfinished ...>` / `<... write resumed>) = 13` pairs, matched by pid, with any lines in
//!   between; `<detached ...>`;
//! * `+++ exited with 2 +++`, `+++ killed by SIGABRT +++`: a pending call of that pid ends;
//! * the `[pid N]` prefix appearing and disappearing (strace writing to its stderr prefixes
//!   pids only while it traces more than one process): an unfinished call logged without
//!   prefix is resumed with one, or the other way round;
//! * lines cut by strace's own messages when it writes to its stderr
//!   (`write(2, "x", 1strace: Process 12 attached` then `) = 1` or ` <unfinished ...>`);
//! * CRLF line ends.
//!
//! Everything else (`strace: Process 1 attached`, `--- SIGQUIT {...} ---`, other syscalls,
//! writes to other fds, `-k` stack lines, hex dumps, `... output snipped ...`, blank lines,
//! garbage, non-UTF-8) is skipped. No input makes it panic.
//!
//! # Which bytes are kept
//!
//! [`Policy::Written`] (the default, [`Reassembler::new`]) keeps the bytes that reached the fd
//! as far as the log tells:
//!
//! * `= N` with `N >= len`: all the bytes; `0 <= N < len` (partial write): the first `N`
//!   (counted in [`Stats::partial_writes`]);
//! * `= -1 ERRNO`: none (counted in [`Stats::failed_writes`]);
//! * `= ? ERESTART...`: none, in both policies: the call was interrupted by a signal before
//!   writing anything, and the kernel re-issues it, which strace logs as a new `write` line
//!   (counted in [`Stats::interrupted_writes`]);
//! * outcome unknown — `= ?` (the process died during the call), an `<unfinished ...>` call whose
//!   process exited or that is still pending at [`Reassembler::finish`], `<detached ...>`, or a
//!   line whose return value cannot be read: all the bytes, in both policies (counted in
//!   [`Stats::incomplete_writes`]). A write to a file, `/dev/null` or the journal completes
//!   at once, and `?` mostly means strace did not see the syscall's exit; losing the last
//!   token of a dump would be worse than a token that maybe never reached the fd.
//!
//! [`Policy::Attempted`] keeps every byte the program asked to write, whatever the return
//! value (except interrupted calls). That is right for the Go runtime, which never retries a
//! failed or partial write (`runtime.writeErrData` makes one `write(2, ...)`, in 1.19 as in
//! 1.26), so a dump written to a broken or full non-blocking pipe still shows up whole; and
//! wrong for programs that retry (libc stdio retries the rest of a partial
//! write: the retried bytes would appear twice).
//!
//! Bytes of a string cut by `-s` are kept as far as they go ([`Stats::truncated_writes`]).
//!
//! The bytes of an `<unfinished ...>` call are appended when its result arrives (the
//! `<... write resumed>` line), so output is in order of completion. Calls that do not
//! overlap in the log are in their true order (a traced thread cannot enter the kernel before
//! strace has printed its call); the order of two writes to the fd that overlap (both
//! unfinished at once, i.e. two threads writing at the same time) cannot be known from the log.
//! The Go runtime writes a dump from one thread, so that does not happen within a dump.

use std::collections::{BTreeSet, HashMap};

use memchr::{memchr, memchr2, memmem};

/// Which bytes of a logged write to keep; see the [module documentation](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// The bytes that reached the fd according to the return value.
    #[default]
    Written,
    /// Every byte the program passed to `write`, whatever the return value.
    Attempted,
}

/// A timestamp printed by strace before a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timestamp {
    /// `-t` `HH:MM:SS` or `-tt` `HH:MM:SS.ffffff`: local time of day, no date.
    TimeOfDay { secs_of_day: u32, nanos: u32 },
    /// `-ttt` `1764317821.123456`: seconds since the Unix epoch.
    Unix { secs: i64, nanos: u32 },
    /// `-r` alone: each line carries the time since the previous line; this is their sum up to
    /// and including the line of the call, i.e. the time since the first line strace printed.
    /// Not an absolute time.
    Relative { secs: u64, nanos: u32 },
}

/// What the reassembler saw so far.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    /// `write` calls to the fd found in the log (each call once, even when split into
    /// `<unfinished ...>` and `<... write resumed>`), whatever their outcome.
    pub writes: u64,
    /// Bytes appended to the output.
    pub bytes: u64,
    /// Calls whose string was cut by strace's `-s` limit (`"abc"...`): bytes are missing.
    pub truncated_writes: u64,
    /// Calls that returned an error (`= -1 EAGAIN (...)`).
    pub failed_writes: u64,
    /// Calls that returned fewer bytes than asked (`0 <= ret < len`).
    pub partial_writes: u64,
    /// Calls whose outcome is unknown (`= ?`, unfinished at exit or EOF, `<detached ...>`,
    /// unreadable return value). Their bytes are kept.
    pub incomplete_writes: u64,
    /// Calls interrupted before writing anything (`= ? ERESTARTSYS (...)`); bytes not kept.
    pub interrupted_writes: u64,
    /// `<... write resumed>` lines with no `<unfinished ...>` write to match.
    pub unmatched_resumed: u64,
    /// Lines starting like a write to the fd that could not be read (e.g. an unterminated
    /// string); nothing was taken from them.
    pub malformed_writes: u64,
    /// Timestamp of the first call that contributed bytes, if the log has timestamps.
    pub first_time: Option<Timestamp>,
    /// Timestamp of the latest call that contributed bytes. After a [`Reassembler::feed_line`]
    /// that appended bytes, this is the time of the call they came from.
    pub last_time: Option<Timestamp>,
    /// Pids (thread ids) of the calls that contributed bytes, when the log has pid prefixes.
    pub pids: BTreeSet<u32>,
}

/// Streaming reassembler of the bytes written to one fd; see the [module documentation](self).
#[derive(Debug)]
pub struct Reassembler {
    fd: u32,
    policy: Policy,
    stats: Stats,
    /// Sum of the `-r` deltas seen so far.
    rel_total: Dur,
    /// Calls waiting for their `<... write resumed>` line, by pid key.
    pending: HashMap<u64, Pending>,
    /// A call whose line strace cut with one of its own messages (`write(2, "x", 1strace:
    /// Process 12 attached`): the next line ends it (`) = 1` or ` <unfinished ...>`).
    cont: Option<Pending>,
    /// Buffers of finished pending calls, for reuse.
    spare: Vec<Vec<u8>>,
    seq: u64,
    last_pid: Option<u32>,
}

/// Key of the pending call of a line without pid prefix.
const NO_PID: u64 = u64::MAX;
/// Bound on simultaneously pending calls (a real log has at most one per thread).
const MAX_PENDING: usize = 65_536;
/// Largest pid Linux hands out (`PID_MAX_LIMIT`).
const PID_MAX: u64 = 4_194_304;
/// Smallest integer part taken as Unix seconds rather than a pid or a `-r` delta (1973).
const UNIX_MIN: u64 = 100_000_000;

#[derive(Debug)]
struct Pending {
    seq: u64,
    /// A write to our fd (else only tracked so its resumed line is not "unmatched").
    ours: bool,
    pid: Option<u32>,
    count: u64,
    truncated: bool,
    time: Option<Timestamp>,
    buf: Vec<u8>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Dur {
    secs: u64,
    nanos: u32,
}

impl Dur {
    fn add(self, o: Dur) -> Dur {
        let n = self.nanos + o.nanos; // both < 1e9
        Dur {
            secs: self
                .secs
                .saturating_add(o.secs)
                .saturating_add(u64::from(n / 1_000_000_000)),
            nanos: n % 1_000_000_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// `= N`, N >= 0.
    Returned(u64),
    /// `= -1 ERRNO`.
    Failed,
    /// `= ?` and every other case where the result is not known.
    Unknown,
    /// `= ? ERESTART...`.
    Interrupted,
}

/// What precedes the call on a line.
#[derive(Debug, Default, Clone, Copy)]
struct Leader {
    pid: Option<u32>,
    abs: Option<Timestamp>,
    rel: Option<Dur>,
}

/// A call to our fd whose bytes are at `out[start..]`.
#[derive(Debug, Clone, Copy)]
struct Call {
    pid: Option<u32>,
    count: u64,
    truncated: bool,
    time: Option<Timestamp>,
}

impl Reassembler {
    /// Reassembler of the bytes written to `fd`, with [`Policy::Written`].
    pub fn new(fd: u32) -> Self {
        Self::with_policy(fd, Policy::Written)
    }

    /// Reassembler of the bytes written to `fd`, with the given policy.
    pub fn with_policy(fd: u32, policy: Policy) -> Self {
        Reassembler {
            fd,
            policy,
            stats: Stats::default(),
            rel_total: Dur::default(),
            pending: HashMap::new(),
            cont: None,
            spare: Vec::new(),
            seq: 0,
            last_pid: None,
        }
    }

    /// What was seen so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Feed one line of the log, without its `\n` (a trailing `\r` is ignored). Appends the
    /// reassembled bytes it completes to `out`.
    pub fn feed_line(&mut self, line: &[u8], out: &mut Vec<u8>) {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(p) = self.cont.take() {
            let t = trim_start(line);
            if let Some(rest) = t.strip_prefix(b")") {
                self.flush(p, parse_result(rest), out);
                return;
            }
            if t.starts_with(b"<unfinished ...>") {
                self.park(p, out);
                return;
            }
            self.flush(p, Outcome::Unknown, out);
            if t.starts_with(b"<detached ...>") {
                return;
            }
        }
        let Some((leader, body)) = parse_leader(line) else {
            return;
        };
        let time = match leader.rel {
            Some(d) => {
                self.rel_total = self.rel_total.add(d);
                leader.abs.or(Some(Timestamp::Relative {
                    secs: self.rel_total.secs,
                    nanos: self.rel_total.nanos,
                }))
            }
            None => leader.abs,
        };
        if let Some(args) = body.strip_prefix(b"write(") {
            self.write_line(leader.pid, time, args, out);
        } else if let Some(rest) = body.strip_prefix(b"<... write resumed>") {
            self.resumed_line(leader.pid, rest, out);
        } else if body.starts_with(b"+++ ") {
            match leader.pid {
                Some(pid) => {
                    if let Some(p) = self.pending.remove(&u64::from(pid)) {
                        self.flush(p, Outcome::Unknown, out);
                    }
                }
                // strace drops the pid prefix when it traces a single process: this one is
                // the last, so every call still pending has ended.
                None => self.flush_all(out),
            }
        }
    }

    /// Call at the end of the log: calls still waiting for their result are appended and
    /// counted as incomplete.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.flush_all(out);
    }

    fn write_line(
        &mut self,
        pid: Option<u32>,
        time: Option<Timestamp>,
        args: &[u8],
        out: &mut Vec<u8>,
    ) {
        // A thread makes one call at a time: a call still pending on this thread has ended
        // without its result being logged.
        if !self.pending.is_empty()
            && let Some(old) = self.pending.remove(&pid.map_or(NO_PID, u64::from))
        {
            self.flush(old, Outcome::Unknown, out);
        }
        // First argument: a plain fd number, maybe decorated by -y/-yy (`2</dev/null>`).
        let (fd, mut i) = parse_u64(args, 0);
        let ours = i > 0 && fd == Some(u64::from(self.fd));
        if !ours {
            if ends_unfinished(args) {
                let p = self.new_pending(pid, false, 0, false, time, &[]);
                self.park(p, out);
            } else if (args.ends_with(b" attached") || args.ends_with(b" detached"))
                && memmem::find(args, b"strace: Process ").is_some()
            {
                self.cont = Some(self.new_pending(pid, false, 0, false, time, &[]));
            }
            return;
        }
        if args.get(i) == Some(&b'<') {
            match memmem::find(&args[i..], b">, ") {
                Some(j) => i += j + 1,
                None => {
                    self.stats.malformed_writes += 1;
                    return;
                }
            }
        }
        if !args[i..].starts_with(b", ") {
            self.stats.malformed_writes += 1;
            return;
        }
        i += 2;

        // Second argument: the string (or an address: no bytes).
        let start = out.len();
        let mut truncated = false;
        if args.get(i) == Some(&b'"') {
            match decode_string(args, i + 1, out) {
                Some(j) => i = j,
                None => {
                    out.truncate(start);
                    self.stats.malformed_writes += 1;
                    return;
                }
            }
            if args[i..].starts_with(b"...") {
                truncated = true;
                i += 3;
            }
        } else {
            match memchr(b',', &args[i..]) {
                Some(j) => i += j,
                None => {
                    self.stats.malformed_writes += 1;
                    return;
                }
            }
        }

        // Third argument: the count.
        let count = if args[i..].starts_with(b", ") {
            let (n, j) = parse_u64(args, i + 2);
            i = j;
            n
        } else {
            None
        };
        let Some(count) = count else {
            out.truncate(start);
            self.stats.malformed_writes += 1;
            return;
        };
        let call = Call {
            pid,
            count,
            truncated,
            time,
        };

        // The rest: ` <unfinished ...>`, ` <detached ...>` or `) = RET`, or a message of
        // strace's own that cut the line.
        let cut = args[i..].starts_with(b"strace: ");
        let tail = trim_start(&args[i..]);
        if cut || tail.starts_with(b"<unfinished ...>") {
            let p = self.new_pending(pid, true, count, truncated, time, &out[start..]);
            out.truncate(start);
            if cut {
                self.cont = Some(p);
            } else {
                self.park(p, out);
            }
            return;
        }
        let outcome = match tail.strip_prefix(b")") {
            Some(rest) => parse_result(rest),
            None => Outcome::Unknown,
        };
        self.complete(call, start, outcome, out);
    }

    fn resumed_line(&mut self, pid: Option<u32>, rest: &[u8], out: &mut Vec<u8>) {
        let key = pid.map_or(NO_PID, u64::from);
        let p = match self.pending.remove(&key) {
            Some(p) => Some(p),
            // The call was logged while strace traced a single process (no pid prefix), or
            // the other way round: strace adds and drops the `[pid N]` prefix as the number of
            // traced processes goes above and back to one.
            None if pid.is_some() => self.pending.remove(&NO_PID),
            None if self.pending.len() == 1 => {
                let k = self.pending.keys().next().copied();
                k.and_then(|k| self.pending.remove(&k))
            }
            None => None,
        };
        let Some(p) = p else {
            self.stats.unmatched_resumed += 1;
            return;
        };
        let rest = trim_start(rest);
        let outcome = match rest.strip_prefix(b")") {
            Some(r) => parse_result(r),
            None => Outcome::Unknown,
        };
        self.flush(p, outcome, out);
    }

    fn new_pending(
        &mut self,
        pid: Option<u32>,
        ours: bool,
        count: u64,
        truncated: bool,
        time: Option<Timestamp>,
        bytes: &[u8],
    ) -> Pending {
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(bytes);
        self.seq += 1;
        Pending {
            seq: self.seq,
            ours,
            pid,
            count,
            truncated,
            time,
            buf,
        }
    }

    /// Makes `p` wait for its `<... write resumed>` line.
    fn park(&mut self, p: Pending, out: &mut Vec<u8>) {
        let key = p.pid.map_or(NO_PID, u64::from);
        if let Some(old) = self.pending.insert(key, p) {
            // Only when strace cut the line of a call that started while another one was
            // pending on the same thread: the older one ended unlogged.
            self.flush(old, Outcome::Unknown, out);
        }
        if self.pending.len() > MAX_PENDING {
            // Only reachable on garbage; keeps the state bounded.
            if let Some(p) = self.pending.remove(&key) {
                self.flush(p, Outcome::Unknown, out);
            }
        }
    }

    /// Ends a pending call with the given outcome.
    fn flush(&mut self, mut p: Pending, outcome: Outcome, out: &mut Vec<u8>) {
        if p.ours {
            let start = out.len();
            out.extend_from_slice(&p.buf);
            let call = Call {
                pid: p.pid,
                count: p.count,
                truncated: p.truncated,
                time: p.time,
            };
            self.complete(call, start, outcome, out);
        }
        if self.spare.len() < 64 {
            p.buf.clear();
            self.spare.push(p.buf);
        }
    }

    fn flush_all(&mut self, out: &mut Vec<u8>) {
        if self.pending.is_empty() && self.cont.is_none() {
            return;
        }
        let mut all: Vec<Pending> = self.pending.drain().map(|(_, p)| p).collect();
        all.extend(self.cont.take());
        all.sort_unstable_by_key(|p| p.seq);
        for p in all {
            self.flush(p, Outcome::Unknown, out);
        }
    }

    /// Applies the outcome of a call whose decoded bytes are at `out[start..]`.
    fn complete(&mut self, call: Call, start: usize, outcome: Outcome, out: &mut Vec<u8>) {
        let st = &mut self.stats;
        st.writes += 1;
        if call.truncated {
            st.truncated_writes += 1;
        }
        let avail = (out.len() - start) as u64;
        let mut keep = avail.min(call.count);
        match outcome {
            Outcome::Returned(n) => {
                if n < call.count {
                    st.partial_writes += 1;
                    if self.policy == Policy::Written {
                        keep = keep.min(n);
                    }
                }
            }
            Outcome::Failed => {
                st.failed_writes += 1;
                if self.policy == Policy::Written {
                    keep = 0;
                }
            }
            Outcome::Unknown => st.incomplete_writes += 1,
            Outcome::Interrupted => {
                st.interrupted_writes += 1;
                keep = 0;
            }
        }
        // keep <= avail, which fits in usize.
        out.truncate(start + keep as usize);
        if keep == 0 {
            return;
        }
        st.bytes += keep;
        if call.time.is_some() {
            if st.first_time.is_none() {
                st.first_time = call.time;
            }
            st.last_time = call.time;
        }
        if let Some(pid) = call.pid
            && self.last_pid != Some(pid)
        {
            st.pids.insert(pid);
            self.last_pid = Some(pid);
        }
    }
}

/// Reassembles a whole log in one go: the bytes written to `fd`, and the stats.
pub fn reassemble(log: &[u8], fd: u32, policy: Policy) -> (Vec<u8>, Stats) {
    let mut r = Reassembler::with_policy(fd, policy);
    let mut out = Vec::new();
    let mut start = 0;
    for nl in memchr::memchr_iter(b'\n', log) {
        r.feed_line(&log[start..nl], &mut out);
        start = nl + 1;
    }
    if start < log.len() {
        r.feed_line(&log[start..], &mut out);
    }
    r.finish(&mut out);
    (out, r.stats)
}

/// `s` without its leading spaces (strace pads the return value to column 40: up to ~30).
fn trim_start(s: &[u8]) -> &[u8] {
    &s[count_spaces(s)..]
}

/// Number of leading spaces of `s`.
fn count_spaces(s: &[u8]) -> usize {
    const SPACES: u64 = u64::from_ne_bytes([b' '; 8]);
    let mut n = 0;
    while let Some(chunk) = s.get(n..n + 8) {
        let x = u64::from_le_bytes(chunk.try_into().unwrap_or_default()) ^ SPACES;
        if x != 0 {
            return n + (x.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    n + s[n..].iter().take_while(|&&c| c == b' ').count()
}

/// Parses decimal digits at `s[i..]`: (value if at least one digit and no overflow, index
/// after the digits).
fn parse_u64(s: &[u8], mut i: usize) -> (Option<u64>, usize) {
    let begin = i;
    let mut v: u64 = 0;
    let mut ok = true;
    while let Some(&c) = s.get(i) {
        if !c.is_ascii_digit() {
            break;
        }
        match v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(c - b'0')))
        {
            Some(n) => v = n,
            None => ok = false,
        }
        i += 1;
    }
    (if i > begin && ok { Some(v) } else { None }, i)
}

/// Parses `.fffffffff` at `s[i..]` (the dot included) into nanoseconds; digits beyond the
/// ninth are ignored. Returns (nanos, index after), or None if there is no digit.
fn parse_frac(s: &[u8], i: usize) -> Option<(u32, usize)> {
    if s.get(i) != Some(&b'.') {
        return None;
    }
    let mut j = i + 1;
    let mut nanos: u32 = 0;
    let mut digits = 0;
    while let Some(&c) = s.get(j) {
        if !c.is_ascii_digit() {
            break;
        }
        if digits < 9 {
            nanos = nanos * 10 + u32::from(c - b'0');
            digits += 1;
        }
        j += 1;
    }
    if j == i + 1 {
        return None;
    }
    for _ in digits..9 {
        nanos *= 10;
    }
    Some((nanos, j))
}

/// Does the line end with strace's `<unfinished ...>`?
fn ends_unfinished(s: &[u8]) -> bool {
    s.ends_with(b"<unfinished ...>")
}

/// Reads what precedes the call: pid, timestamps, `-n`/`-i` tokens. Returns the leader and
/// the rest of the line, or None if the line does not have that shape.
fn parse_leader(line: &[u8]) -> Option<(Leader, &[u8])> {
    let mut ld = Leader::default();
    let mut i = 0;
    for _ in 0..8 {
        i += count_spaces(&line[i..]);
        let c = *line.get(i)?;
        match c {
            b'[' => {
                let close = i + memchr(b']', &line[i..])?;
                if line[i..].starts_with(b"[pid ") {
                    if ld.pid.is_some() {
                        return None;
                    }
                    let (pid, _) = parse_u64(line, i + 5 + count_spaces(&line[i + 5..]));
                    ld.pid = Some(u32::try_from(pid?).ok()?);
                } else if !line[i + 1..close]
                    .iter()
                    .all(|&c| c == b' ' || c == b'?' || c.is_ascii_hexdigit())
                {
                    // Not `-n`'s `[  1]` nor `-i`'s `[00007f87d75f438f]`.
                    return None;
                }
                i = close + 1;
            }
            b'(' => {
                // `-t -r`: `(+     0.000123)`.
                if !line[i..].starts_with(b"(+") {
                    return Some((ld, &line[i..]));
                }
                let j = i + 2 + count_spaces(&line[i + 2..]);
                let (secs, j) = parse_u64(line, j);
                let (nanos, j) = parse_frac(line, j)?;
                if line.get(j) != Some(&b')') {
                    return None;
                }
                ld.rel = Some(Dur { secs: secs?, nanos });
                i = j + 1;
            }
            b'0'..=b'9' => {
                let (v, j) = parse_u64(line, i);
                let v = v?;
                match line.get(j) {
                    Some(b':') => {
                        // -t/-tt: HH:MM:SS[.f]
                        let (m, k) = parse_u64(line, j + 1);
                        if line.get(k) != Some(&b':') || k != j + 3 {
                            return None;
                        }
                        let (s, l) = parse_u64(line, k + 1);
                        let (m, s) = (m?, s?);
                        if l != k + 3 || v > 24 || m > 59 || s > 60 {
                            return None;
                        }
                        let (nanos, l) = parse_frac(line, l).unwrap_or((0, l));
                        ld.abs = Some(Timestamp::TimeOfDay {
                            secs_of_day: (v * 3600 + m * 60 + s) as u32,
                            nanos,
                        });
                        i = l;
                    }
                    Some(b'.') => {
                        let (nanos, k) = parse_frac(line, j)?;
                        if v >= UNIX_MIN {
                            ld.abs = Some(Timestamp::Unix {
                                secs: i64::try_from(v).ok()?,
                                nanos,
                            });
                        } else {
                            ld.rel = Some(Dur { secs: v, nanos });
                        }
                        i = k;
                    }
                    _ => {
                        // `1234  ` / `1234<comm> ` (-f -o), or whole Unix seconds.
                        if ld.pid.is_none() && i == 0 && v <= PID_MAX {
                            ld.pid = Some(v as u32);
                        } else if v >= UNIX_MIN {
                            ld.abs = Some(Timestamp::Unix {
                                secs: i64::try_from(v).ok()?,
                                nanos: 0,
                            });
                        } else {
                            return None;
                        }
                        i = j;
                        if line.get(i) == Some(&b'<') {
                            i += memchr(b'>', &line[i..])? + 1;
                        }
                    }
                }
                if line.get(i) != Some(&b' ') {
                    return None;
                }
            }
            _ => return Some((ld, &line[i..])),
        }
    }
    None
}

/// Parses what follows the closing `)`: `  = 13`, `= -1 EAGAIN (...)`, `= ?`,
/// `= ? ERESTARTSYS (...)`.
fn parse_result(s: &[u8]) -> Outcome {
    let s = trim_start(s);
    let Some(s) = s.strip_prefix(b"=") else {
        return Outcome::Unknown;
    };
    let s = trim_start(s);
    match s.first() {
        Some(b'?') => {
            if trim_start(&s[1..]).starts_with(b"ERESTART") {
                Outcome::Interrupted
            } else {
                Outcome::Unknown
            }
        }
        Some(b'-') => match s.get(1) {
            Some(c) if c.is_ascii_digit() => Outcome::Failed,
            _ => Outcome::Unknown,
        },
        Some(b'0') if s.get(1) == Some(&b'x') => {
            let hex = &s[2..];
            let n = hex.iter().take_while(|c| c.is_ascii_hexdigit()).count();
            match std::str::from_utf8(&hex[..n])
                .ok()
                .and_then(|h| u64::from_str_radix(h, 16).ok())
            {
                Some(v) => Outcome::Returned(v),
                None => Outcome::Unknown,
            }
        }
        _ => match parse_u64(s, 0).0 {
            Some(v) => Outcome::Returned(v),
            None => Outcome::Unknown,
        },
    }
}

/// Decodes an strace-quoted string whose body starts at `s[i]` (after the opening quote)
/// into `out`. Returns the index after the closing quote, or None if it is not closed.
fn decode_string(s: &[u8], mut i: usize, out: &mut Vec<u8>) -> Option<usize> {
    loop {
        let rest = s.get(i..)?;
        let j = memchr2(b'"', b'\\', rest)?;
        out.extend_from_slice(&rest[..j]);
        i += j;
        if s[i] == b'"' {
            return Some(i + 1);
        }
        // Escapes come in runs (-xx, binary data): decode them without searching again.
        while s.get(i) == Some(&b'\\') {
            let c = *s.get(i + 1)?;
            i += 2;
            let b = match c {
                b'n' => b'\n',
                b't' => b'\t',
                b'r' => b'\r',
                b'v' => 0x0b,
                b'f' => 0x0c,
                b'a' => 0x07,
                b'b' => 0x08,
                b'e' => 0x1b,
                b'0'..=b'7' => {
                    let mut v = u32::from(c - b'0');
                    for _ in 0..2 {
                        match s.get(i) {
                            Some(&d @ b'0'..=b'7') => {
                                v = v * 8 + u32::from(d - b'0');
                                i += 1;
                            }
                            _ => break,
                        }
                    }
                    v as u8
                }
                b'x' => {
                    let mut v = 0u8;
                    let mut n = 0;
                    while n < 2 {
                        match s.get(i).and_then(|&d| (d as char).to_digit(16)) {
                            Some(d) => {
                                v = v.wrapping_mul(16).wrapping_add(d as u8);
                                i += 1;
                                n += 1;
                            }
                            None => break,
                        }
                    }
                    if n == 0 { b'x' } else { v }
                }
                // `\\`, `\"` and anything strace would not produce: the character itself.
                other => other,
            };
            out.push(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `log` through a reassembler of fd 2 with `policy`, line by line.
    fn run_with(log: &[u8], fd: u32, policy: Policy) -> (Vec<u8>, Stats) {
        reassemble(log, fd, policy)
    }

    fn run(log: &str) -> (Vec<u8>, Stats) {
        run_with(log.as_bytes(), 2, Policy::Written)
    }

    fn out_of(log: &str) -> Vec<u8> {
        run(log).0
    }

    /// The excerpt of the seed (blog post): from `strace: Process 4040133 attached` to
    /// `+++ exited with 2 +++`.
    const SEED: &str = r#"strace: Process 4040133 attached
--- SIGQUIT {si_signo=SIGQUIT, si_code=SI_USER, si_pid=2140770, si_uid=1000} ---
write(2, "SIGQUIT: quit", 13)           = 13
write(2, "\n", 1)                       = 1
write(2, "PC=", 3)                      = 3
write(2, "0x464ce1", 8)                 = 8
write(2, " m=", 3)                      = 3
write(2, "0", 1)                        = 1
write(2, " sigcode=", 9)                = 9
write(2, "0", 1)                        = 1
write(2, "\n", 1)                       = 1
write(2, "\n", 1)                       = 1
write(2, "goroutine ", 10)              = 10
write(2, "0", 1)                        = 1
write(2, " [", 2)                       = 2
write(2, "idle", 4)                     = 4
write(2, "]:\n", 3)                     = 3
write(2, "runtime.futex", 13)           = 13
write(2, "(", 1)                        = 1
write(2, ")\n", 2)                      = 2
write(2, "\t", 1)                       = 1
write(2, "/usr/local/go/src/runtime/sys_linux_amd64.s", 43) = 43
write(2, ":", 1)                        = 1
write(2, "552", 3)                      = 3
write(2, " +", 2)                       = 2
write(2, "0x21", 4)                     = 4
write(2, "\n", 1)                       = 1
write(2, "runtime.futexsleep", 18)      = 18
write(2, "(", 1)                        = 1
write(2, "0x7ffc12443b70", 14)          = 14
write(2, "?", 1)                        = 1
write(2, ", ", 2)                       = 2
write(2, "0x441df3", 8)                 = 8
write(2, "?", 1)                        = 1
write(2, ", ", 2)                       = 2
write(2, "0xc000036500", 12)            = 12
write(2, "?", 1)                        = 1
write(2, ")\n", 2)                      = 2
write(2, "\t", 1)                       = 1
write(2, "/usr/local/go/src/runtime/os_linux.go", 37) = 37
write(2, ":", 1)                        = 1
write(2, "56", 2)                       = 2
write(2, " +", 2)                       = 2
write(2, "0x36", 4)                     = 4
write(2, "\n", 1)                       = 1
write(2, "runtime.notesleep", 17)       = 17
write(2, "(", 1)                        = 1
write(2, "0xbfd370", 8)                 = 8
write(2, ")\n", 2)                      = 2
write(2, "\t", 1)                       = 1
... output snipped ...
write(2, "0xbfcae0", 8)                 = 8
write(2, "\n", 1)                       = 1
write(2, "r15    ", 7)                  = 7
write(2, "0x7ff9ba37ce03", 14)          = 14
write(2, "\n", 1)                       = 1
write(2, "rip    ", 7)                  = 7
write(2, "0x464ce1", 8)                 = 8
write(2, "\n", 1)                       = 1
write(2, "rflags ", 7)                  = 7
write(2, "0x286", 5)                    = 5
write(2, "\n", 1)                       = 1
write(2, "cs     ", 7)                  = 7
write(2, "0x33", 4)                     = 4
write(2, "\n", 1)                       = 1
write(2, "fs     ", 7)                  = 7
write(2, "0x0", 3)                      = 3
write(2, "\n", 1)                       = 1
write(2, "gs     ", 7)                  = 7
write(2, "0x0", 3)                      = 3
write(2, "\n", 1)                       = 1
+++ exited with 2 +++
"#;

    #[test]
    fn seed_excerpt() {
        let (out, st) = run(SEED);
        let start = "SIGQUIT: quit\nPC=0x464ce1 m=0 sigcode=0\n\ngoroutine 0 [idle]:\n\
                     runtime.futex()\n\t/usr/local/go/src/runtime/sys_linux_amd64.s:552 +0x21\n";
        assert!(
            out.starts_with(start.as_bytes()),
            "{}",
            String::from_utf8_lossy(&out)
        );
        assert!(
            out.ends_with(
                b"\nrip    0x464ce1\nrflags 0x286\ncs     0x33\nfs     0x0\ngs     0x0\n"
            )
        );
        // The snipped part is simply missing: ")\n\t" then "0xbfcae0".
        assert!(out.windows(12).any(|w| w == b")\n\t0xbfcae0\n"));
        assert_eq!(out.len(), 365);
        assert_eq!(st.writes, 68);
        assert_eq!(st.bytes, 365);
        assert_eq!(
            (
                st.truncated_writes,
                st.failed_writes,
                st.partial_writes,
                st.incomplete_writes
            ),
            (0, 0, 0, 0)
        );
        assert_eq!((st.unmatched_resumed, st.malformed_writes), (0, 0));
        assert_eq!(st.first_time, None);
        assert!(st.pids.is_empty());
    }

    #[test]
    fn seed_excerpt_with_crlf() {
        let crlf = SEED.replace('\n', "\r\n");
        assert_eq!(out_of(&crlf), out_of(SEED));
        // A trailing '\n' left on the line is tolerated too.
        let mut r = Reassembler::new(2);
        let mut out = Vec::new();
        r.feed_line(b"write(2, \"ab\", 2) = 2\r\n", &mut out);
        r.feed_line(b"write(2, \"cd\", 2) = 2\n", &mut out);
        assert_eq!(out, b"abcd");
    }

    #[test]
    fn simple_escapes() {
        let out = out_of(r#"write(2, "a\nb\tc\rd\ve\ff\\g\"h", 15) = 15"#);
        assert_eq!(out, b"a\nb\tc\rd\x0be\x0cf\\g\"h");
    }

    #[test]
    fn octal_escapes() {
        // As strace prints them: minimal digits, three when an octal digit follows.
        let out = out_of(r#"write(2, "\0011\1x\338\33[0m\177\200\377\0", 14) = 14"#);
        assert_eq!(out, b"\x011\x01x\x1b8\x1b[0m\x7f\x80\xff\x00");
        assert_eq!(out_of(r#"write(2, "a\0b", 3) = 3"#), b"a\0b");
        assert_eq!(out_of(r#"write(2, "\0001\0", 3) = 3"#), b"\x001\x00");
        assert_eq!(out_of(r#"write(2, "\0\00\000", 3) = 3"#), b"\0\0\0");
        // At most three digits are read: `\1234` is 0o123 then '4'.
        assert_eq!(out_of(r#"write(2, "\1234", 2) = 2"#), b"S4");
        // `\9` is not octal: the character itself.
        assert_eq!(out_of(r#"write(2, "\9", 1) = 1"#), b"9");
    }

    #[test]
    fn hex_escapes() {
        // -x: only non-printables, -xx: every byte.
        let out = out_of(
            r#"write(2, "\x01\x31\x01\x78\x1b\x38\x1b\x5b\x30\x6d\x7f\x80\xff\x00", 14) = 14"#,
        );
        assert_eq!(out, b"\x011\x01x\x1b8\x1b[0m\x7f\x80\xff\x00");
        assert_eq!(
            out_of(
                r#"write(2, "\x53\x49\x47\x51\x55\x49\x54\x3a\x20\x71\x75\x69\x74\x0a", 14) = 14"#
            ),
            b"SIGQUIT: quit\n"
        );
        assert_eq!(out_of(r#"write(2, "A\xFFb\x0aZ", 5) = 5"#), b"A\xffb\nZ");
        // A lone `\x`: the 'x'.
        assert_eq!(out_of(r#"write(2, "\xg", 2) = 2"#), b"xg");
    }

    #[test]
    fn truncated_by_s_limit() {
        let (out, st) = run(
            "write(2, \"zzzzzzzz\"..., 200) = 200\nwrite(2, \"\"..., 5) = 5\nwrite(2, \"!\", 1) = 1\n",
        );
        assert_eq!(out, b"zzzzzzzz!");
        assert_eq!(st.truncated_writes, 2);
        assert_eq!(st.writes, 3);
        assert_eq!(st.bytes, 9);
        assert_eq!(st.partial_writes, 0);
    }

    #[test]
    fn pid_prefixes() {
        for line in [
            r#"[pid  1234] write(2, "x", 1) = 1"#,
            r#"[pid 4040133] write(2, "x", 1) = 1"#,
            r#"1234  write(2, "x", 1)  = 1"#,
            r#"1234 write(2, "x", 1) = 1"#,
            r#"1234<go> write(2, "x", 1) = 1"#,
            r#"[pid  1234<go>] write(2, "x", 1) = 1"#,
            r#"[pid  1234] [   1] [00007f87d75f438f] write(2, "x", 1) = 1"#,
        ] {
            let (out, st) = run(line);
            assert_eq!(out, b"x", "{line}");
            let pid = if line.contains("4040133") {
                4040133
            } else {
                1234
            };
            assert_eq!(st.pids.iter().copied().collect::<Vec<_>>(), [pid], "{line}");
        }
        let (out, st) = run(r#"[   1] [00007f87d75f438f] write(2, "x", 1) = 1"#);
        assert_eq!(out, b"x");
        assert!(st.pids.is_empty());
    }

    fn first_time(line: &str) -> Option<Timestamp> {
        let (out, st) = run(line);
        assert_eq!(out, b"x", "{line}");
        st.first_time
    }

    #[test]
    fn timestamps() {
        let tod = |secs_of_day, nanos| Some(Timestamp::TimeOfDay { secs_of_day, nanos });
        let unix = |secs, nanos| Some(Timestamp::Unix { secs, nanos });
        let rel = |secs, nanos| Some(Timestamp::Relative { secs, nanos });
        let day = 8 * 3600 + 17 * 60 + 1;
        assert_eq!(first_time(r#"08:17:01 write(2, "x", 1) = 1"#), tod(day, 0));
        assert_eq!(
            first_time(r#"08:17:01.123456 write(2, "x", 1) = 1"#),
            tod(day, 123_456_000)
        );
        assert_eq!(
            first_time(r#"08:17:01.123 write(2, "x", 1) = 1"#),
            tod(day, 123_000_000)
        );
        assert_eq!(
            first_time(r#"08:17:01.515519377 write(2, "x", 1) = 1"#),
            tod(day, 515_519_377)
        );
        assert_eq!(
            first_time(r#"23:59:60.5 write(2, "x", 1) = 1"#),
            tod(86400, 500_000_000)
        );
        assert_eq!(
            first_time(r#"1764317821.123456 write(2, "x", 1) = 1"#),
            unix(1764317821, 123_456_000)
        );
        assert_eq!(
            first_time(r#"1764317821.530178068 write(2, "x", 1) = 1"#),
            unix(1764317821, 530_178_068)
        );
        assert_eq!(
            first_time(r#"1764317821 write(2, "x", 1) = 1"#),
            unix(1764317821, 0)
        );
        assert_eq!(
            first_time(r#"     0.000123 write(2, "x", 1) = 1"#),
            rel(0, 123_000)
        );
        assert_eq!(
            first_time(r#"     0.000000123 write(2, "x", 1) = 1"#),
            rel(0, 123)
        );
        assert_eq!(
            first_time(r#"   123.000123 write(2, "x", 1) = 1"#),
            rel(123, 123_000)
        );
        // -t -r, -ttt -r: the absolute time wins.
        assert_eq!(
            first_time(r#"08:17:01 (+     0.000138) write(2, "x", 1) = 1"#),
            tod(day, 0)
        );
        assert_eq!(
            first_time(r#"1795854433.306952 (+     0.000120) write(2, "x", 1) = 1"#),
            unix(1795854433, 306_952_000)
        );
        // With -f, the pid comes first.
        assert_eq!(
            first_time(r#"[pid  3935] 08:17:01.931850 write(2, "x", 1) = 1"#),
            tod(day, 931_850_000)
        );
        assert_eq!(
            first_time(r#"3935  08:17:01.931850 write(2, "x", 1) = 1"#),
            tod(day, 931_850_000)
        );
        assert_eq!(
            first_time(r#"3935  1764317821.5 write(2, "x", 1) = 1"#),
            unix(1764317821, 500_000_000)
        );
        assert_eq!(
            first_time(r#"3935       0.000123 write(2, "x", 1) = 1"#),
            rel(0, 123_000)
        );
        assert_eq!(
            first_time(r#"3935<go> 08:17:01 [   1] write(2, "x", 1) = 1"#),
            tod(day, 0)
        );
        assert_eq!(
            first_time(r#"21761 08:27:14 (+     0.000138) write(2, "x", 1) = 1"#),
            tod(8 * 3600 + 27 * 60 + 14, 0)
        );
    }

    #[test]
    fn first_and_last_time() {
        let (out, st) = run(concat!(
            "08:00:00.000001 write(1, \"other\", 5) = 5\n",
            "08:00:00.000002 write(2, \"a\", 1) = -1 EAGAIN (Resource temporarily unavailable)\n",
            "08:00:00.000003 write(2, \"b\", 1) = 1\n",
            "08:00:00.000004 --- SIGQUIT {si_signo=SIGQUIT, si_code=SI_USER} ---\n",
            "08:00:00.000005 write(2, \"c\", 1) = 1\n",
            "08:00:00.000006 write(2, \"d\", 1) = 0\n",
        ));
        assert_eq!(out, b"bc");
        let t = |us: u32| {
            Some(Timestamp::TimeOfDay {
                secs_of_day: 8 * 3600,
                nanos: us * 1000,
            })
        };
        assert_eq!(st.first_time, t(3));
        assert_eq!(st.last_time, t(5));
    }

    #[test]
    fn relative_timestamps_add_up() {
        let (out, st) = run(concat!(
            "     0.000000 write(1, \"x\", 1) = 1\n",
            "     0.500000 --- SIGQUIT {si_signo=SIGQUIT} ---\n",
            "     0.600000 write(2, \"a\", 1) = 1\n",
            "     2.000001 write(2, \"b\", 1) = 1\n",
        ));
        assert_eq!(out, b"ab");
        assert_eq!(
            st.first_time,
            Some(Timestamp::Relative {
                secs: 1,
                nanos: 100_000_000
            })
        );
        assert_eq!(
            st.last_time,
            Some(Timestamp::Relative {
                secs: 3,
                nanos: 100_001_000
            })
        );
    }

    #[test]
    fn last_time_follows_each_line() {
        let mut r = Reassembler::new(2);
        let mut out = Vec::new();
        r.feed_line(b"1764317821.000001 write(2, \"a\", 1) = 1", &mut out);
        assert_eq!(
            r.stats().last_time,
            Some(Timestamp::Unix {
                secs: 1764317821,
                nanos: 1000
            })
        );
        r.feed_line(
            b"1764317822.000002 write(2, \"SIGQUIT: quit\", 13) = 13",
            &mut out,
        );
        assert_eq!(
            r.stats().last_time,
            Some(Timestamp::Unix {
                secs: 1764317822,
                nanos: 2000
            })
        );
        assert_eq!(
            r.stats().first_time,
            Some(Timestamp::Unix {
                secs: 1764317821,
                nanos: 1000
            })
        );
    }

    #[test]
    fn return_values_written_policy() {
        let log = concat!(
            "write(2, \"ok\", 2) = 2\n",
            "write(2, \"fail\", 4) = -1 EAGAIN (Resource temporarily unavailable)\n",
            "write(2, \"pipe\", 4) = -1 EPIPE (Broken pipe)\n",
            "write(2, \"partial\", 7) = 4\n",
            "write(2, \"zero\", 4) = 0\n",
            "write(2, \"unknown\", 7) = ?\n",
            "write(2, \"restarted\", 9) = ? ERESTARTSYS (To be restarted if SA_RESTART is set)\n",
            "write(2, \"restarted\", 9) = 9\n",
            "write(2, \"timed\", 5) = 5 <0.000018>\n",
            "write(2, \"injected\", 8) = -1 EIO (Input/output error) (INJECTED)\n",
            "write(2, \"more\", 4) = 99\n",
            "write(2, \"hexret\", 6) = 0x6\n",
            "write(2, \"noresult\", 8)\n",
            "write(2, \"garbage\", 7) = what\n",
        );
        let (out, st) = run(log);
        assert_eq!(out, b"okpartunknownrestartedtimedmorehexretnoresultgarbage");
        assert_eq!(st.writes, 14);
        assert_eq!(st.failed_writes, 3);
        assert_eq!(st.partial_writes, 2);
        assert_eq!(st.incomplete_writes, 3);
        assert_eq!(st.interrupted_writes, 1);
        assert_eq!(st.bytes, out.len() as u64);
        // Attempted: failed and partial writes whole; interrupted ones still dropped.
        let (out, st) = run_with(log.as_bytes(), 2, Policy::Attempted);
        assert_eq!(
            out,
            b"okfailpipepartialzerounknownrestartedtimedinjectedmorehexretnoresultgarbage"
        );
        assert_eq!(
            (st.failed_writes, st.partial_writes, st.interrupted_writes),
            (3, 2, 1)
        );
    }

    #[test]
    fn partial_write_of_truncated_string() {
        assert_eq!(out_of("write(2, \"abcdef\"..., 100) = 3"), b"abc");
        assert_eq!(out_of("write(2, \"abcdef\"..., 100) = 50"), b"abcdef");
        // More decoded bytes than the count (not from strace): capped at the count.
        assert_eq!(out_of("write(2, \"abcdef\", 2) = 2"), b"ab");
    }

    #[test]
    fn non_string_buffer() {
        let (out, st) = run(concat!(
            "write(2, 0x7ffd5b2c0000, 5) = -1 EFAULT (Bad address)\n",
            "write(2, NULL, 0) = 0\n",
            "write(2, \"y\", 1) = 1\n",
        ));
        assert_eq!(out, b"y");
        assert_eq!(
            (st.writes, st.failed_writes, st.malformed_writes),
            (3, 1, 0)
        );
    }

    #[test]
    fn unfinished_and_resumed() {
        let log = concat!(
            "[pid   100] write(2, \"A1\", 2 <unfinished ...>\n",
            "[pid   200] write(2, \"B1\", 2 <unfinished ...>\n",
            "[pid   300] futex(0x1, FUTEX_WAKE_PRIVATE, 1) = 0\n",
            "[pid   300] write(1, \"other\", 5 <unfinished ...>\n",
            "[pid   100] <... write resumed>)        = 2\n",
            "[pid   400] write(2, \"C\", 1) = 1\n",
            "[pid   300] <... write resumed>)        = 5\n",
            "[pid   200] <... write resumed> )       = 1\n",
            "[pid   100] write(2, \"A2\", 2 <unfinished ...>\n",
            "[pid   300] --- SIGURG {si_signo=SIGURG, si_code=SI_TKILL} ---\n",
            "[pid   100] <... write resumed>)        = -1 EAGAIN (Resource temporarily unavailable)\n",
            "[pid   100] write(2, \"A3\", 2 <unfinished ...>\n",
            "[pid   200] write(2, \"B2\", 2) = 2\n",
            "[pid   100] <... write resumed>)        = ?\n",
            "[pid   100] +++ exited with 2 +++\n",
        );
        let (out, st) = run(log);
        // In order of completion; B1 was a partial write of 1 byte.
        assert_eq!(out, b"A1CBB2A3");
        assert_eq!(st.writes, 6);
        assert_eq!(st.failed_writes, 1);
        assert_eq!(st.partial_writes, 1);
        assert_eq!(st.incomplete_writes, 1);
        assert_eq!(st.unmatched_resumed, 0);
        assert_eq!(st.pids.iter().copied().collect::<Vec<_>>(), [100, 200, 400]);
        // The -o form, and timestamps of the starting line.
        let (out, st) = run(concat!(
            "100   08:00:00.000001 write(2, \"x\", 1 <unfinished ...>\n",
            "200   08:00:00.000002 write(2, \"y\", 1) = 1\n",
            "100   08:00:00.000003 <... write resumed>) = 1\n",
        ));
        assert_eq!(out, b"yx");
        let t = |us: u32| {
            Some(Timestamp::TimeOfDay {
                secs_of_day: 8 * 3600,
                nanos: us * 1000,
            })
        };
        assert_eq!((st.first_time, st.last_time), (t(2), t(1)));
    }

    #[test]
    fn unmatched_resumed() {
        let (out, st) = run(concat!(
            "[pid 1] <... write resumed>) = 3\n",
            "[pid 1] write(3, \"x\", 1 <unfinished ...>\n",
            "[pid 2] <... write resumed>) = 1\n",
            "[pid 2] write(2, \"z\", 1) = 1\n",
            "[pid 1] <... write resumed>) = 1\n",
            "[pid 1] <... read resumed>\"abc\", 10) = 3\n",
        ));
        assert_eq!(out, b"z");
        assert_eq!(st.unmatched_resumed, 2);
        assert_eq!(st.writes, 1);
    }

    #[test]
    fn pending_ended_by_exit_eof_detach_or_next_call() {
        // Ends at the exit line of its pid, in that position.
        let (out, st) = run(concat!(
            "[pid 1] write(2, \"a\", 1 <unfinished ...>\n",
            "[pid 2] write(2, \"b\", 1 <unfinished ...>\n",
            "[pid 1] +++ killed by SIGKILL +++\n",
            "[pid 3] write(2, \"c\", 1) = 1\n",
            "[pid 2] <... write resumed>) = 1\n",
        ));
        assert_eq!(out, b"acb");
        assert_eq!(st.incomplete_writes, 1);
        // Still pending at EOF: finish() appends it.
        let mut r = Reassembler::new(2);
        let mut out = Vec::new();
        r.feed_line(b"[pid 1] write(2, \"a\", 1 <unfinished ...>", &mut out);
        r.feed_line(b"[pid 2] write(2, \"b\", 1 <unfinished ...>", &mut out);
        assert_eq!(out, b"");
        r.finish(&mut out);
        assert_eq!(out, b"ab");
        assert_eq!((r.stats().writes, r.stats().incomplete_writes), (2, 2));
        r.finish(&mut out);
        assert_eq!(out, b"ab");
        // strace detached during the call.
        let (out, st) = run("write(2, \"d\", 1 <detached ...>\n");
        assert_eq!((out.as_slice(), st.incomplete_writes), (&b"d"[..], 1));
        // A new call of the same thread: the pending one ended unlogged.
        let (out, st) = run(concat!(
            "[pid 1] write(2, \"a\", 1 <unfinished ...>\n",
            "[pid 1] write(2, \"b\", 1) = 1\n",
        ));
        assert_eq!((out.as_slice(), st.incomplete_writes), (&b"ab"[..], 1));
        // The exit of the last process (no pid prefix) ends all of them.
        let (out, _) = run(concat!(
            "[pid 1] write(2, \"a\", 1 <unfinished ...>\n",
            "[pid 2] write(2, \"b\", 1 <unfinished ...>\n",
            "+++ exited with 2 +++\n",
            "write(2, \"c\", 1) = 1\n",
        ));
        assert_eq!(out, b"abc");
    }

    #[test]
    fn pid_prefix_appearing_and_disappearing() {
        // strace to stderr prints `[pid N]` only while it traces more than one process.
        let (out, st) = run(concat!(
            "write(2, \"a\", 1 <unfinished ...>\n",
            "strace: Process 12 attached\n",
            "[pid    12] write(2, \"b\", 1) = 1\n",
            "[pid    11] <... write resumed>) = 1\n",
            "[pid    11] write(2, \"c\", 1 <unfinished ...>\n",
            "[pid    12] +++ exited with 0 +++\n",
            "<... write resumed>) = 1\n",
            "+++ exited with 2 +++\n",
        ));
        assert_eq!(out, b"bac");
        assert_eq!((st.unmatched_resumed, st.incomplete_writes), (0, 0));
    }

    #[test]
    fn line_cut_by_strace_message() {
        // strace to stderr: its "attached" message lands inside the line being printed.
        let (out, st) = run(concat!(
            "[pid 11] write(2, \"a\\n\", 2strace: Process 12 attached\n",
            ")     = 2\n",
            "[pid 11] write(2, \"b\", 1strace: Process 13 attached\n",
            " <unfinished ...>\n",
            "[pid 12] write(2, \"c\", 1) = 1\n",
            "[pid 11] <... write resumed>) = 1\n",
            "[pid 13] write(1, \"o\", 1strace: Process 14 attached\n",
            " <unfinished ...>\n",
            "[pid 13] <... write resumed>) = 1\n",
            "[pid 11] write(2, \"d\", 1strace: Process 11 detached\n",
            " <detached ...>\n",
            "[pid 12] write(2, \"e\", 1strace: Process 15 attached\n",
        ));
        assert_eq!(out, b"a\ncbde");
        assert_eq!(st.writes, 5);
        assert_eq!(st.unmatched_resumed, 0);
        // "d" detached, "e" at EOF.
        assert_eq!(st.incomplete_writes, 2);
    }

    #[test]
    fn skipped_lines() {
        let log = concat!(
            "strace: Process 4040133 attached\n",
            "strace: Process 4040133 attached with 12 threads\n",
            "--- SIGQUIT {si_signo=SIGQUIT, si_code=SI_USER, si_pid=2140770, si_uid=1000} ---\n",
            "[pid  1234] --- SIGURG {si_signo=SIGURG, si_code=SI_TKILL, si_pid=1, si_uid=0} ---\n",
            "write(1, \"stdout\", 6) = 6\n",
            "write(22, \"fd22\", 4) = 4\n",
            "writev(2, [{iov_base=\"v\", iov_len=1}], 1) = 1\n",
            "pwrite64(2, \"p\", 1, 0) = 1\n",
            "write(fd, \"named\", 5) = 5\n",
            "write(-1, \"neg\", 3) = -1 EBADF (Bad file descriptor)\n",
            "write( 2, \"space\", 5) = 5\n",
            "futex(0xc000100148, FUTEX_WAIT_PRIVATE, 0, NULL) = ?\n",
            "... output snipped ...\n",
            "\n",
            "   \n",
            " > /usr/lib/x86_64-linux-gnu/libc.so.6(__write+0x17) [0x10e8f7]\n",
            " | 00000  53 49 47 51 55 49 54 3a  20 71 75 69 74           SIGQUIT: quit    |\n",
            "+++ exited with 2 +++\n",
            "+++ killed by SIGABRT (core dumped) +++\n",
            "[pid  1234] +++ exited with 0 +++\n",
            "\u{1b}[0mgarbage\u{0} write(2, \"no\", 2) = 2\n",
            "08:17:01.xyz write(2, \"no\", 2) = 2\n",
            "[pidx 12] write(2, \"no\", 2) = 2\n",
            "99:99:99 write(2, \"no\", 2) = 2\n",
            "write(2, \"kept\", 4) = 4\n",
        );
        let (out, st) = run(log);
        assert_eq!(out, b"kept");
        assert_eq!(st.writes, 1);
        assert_eq!(
            st.unmatched_resumed + st.malformed_writes + st.incomplete_writes,
            0
        );
    }

    #[test]
    fn other_fds() {
        let log =
            "write(1, \"one\", 3) = 3\nwrite(2, \"two\", 3) = 3\nwrite(3, \"three\", 5) = 5\n";
        assert_eq!(run_with(log.as_bytes(), 1, Policy::Written).0, b"one");
        assert_eq!(run_with(log.as_bytes(), 3, Policy::Written).0, b"three");
        assert_eq!(run_with(log.as_bytes(), 4, Policy::Written).0, b"");
        // Another fd's <unfinished ...> is tracked, its resumed line is not "unmatched".
        let (out, st) = run_with(
            b"[pid 1] write(2, \"x\", 1 <unfinished ...>\n[pid 1] <... write resumed>) = 1\n",
            3,
            Policy::Written,
        );
        assert_eq!((out.len(), st.unmatched_resumed, st.writes), (0, 0, 0));
    }

    #[test]
    fn decorated_fd() {
        // -y, -yy (a socket address holds '>'), -y with -xx.
        let (out, _) = run(concat!(
            "write(2</dev/null>, \"a\", 1) = 1\n",
            "write(2<TCP:[127.0.0.1:8080->127.0.0.1:5555]>, \"b\", 1) = 1\n",
            "write(2<\\x2f\\x64\\x65\\x76\\x2f\\x6e\\x75\\x6c\\x6c>, \"\\x63\", 1) = 1 <0.000018>\n",
            "write(1</dev/pts/0>, \"no\", 2) = 2\n",
            "write(2<unterminated, \"no\", 2) = 2\n",
        ));
        assert_eq!(out, b"abc");
    }

    #[test]
    fn malformed_writes_leave_out_untouched() {
        for line in [
            "write(2, \"unterminated, 12) = 12",
            "write(2, \"ends in backslash\\",
            "write(2, \"no count\") = 8",
            "write(2, \"no count\"",
            "write(2,\"no space\", 8) = 8",
            "write(2, \"x\", ) = 1",
            "write(2, 0x1234",
            "write(2",
        ] {
            let mut r = Reassembler::new(2);
            let mut out = b"keep".to_vec();
            r.feed_line(line.as_bytes(), &mut out);
            r.finish(&mut out);
            assert_eq!(out, b"keep", "{line}");
            assert_eq!(r.stats().malformed_writes, 1, "{line}");
        }
    }

    #[test]
    fn non_utf8_bytes_in_log() {
        let mut log = b"write(2, \"a".to_vec();
        log.extend_from_slice(b"\xff\xfe\x80");
        log.extend_from_slice(b"b\", 5) = 5\n\xc3\x28 write(2, \"no\", 2) = 2\n");
        let (out, _) = run_with(&log, 2, Policy::Written);
        assert_eq!(out, b"a\xff\xfe\x80b");
    }

    #[test]
    fn reassemble_without_final_newline() {
        let (out, st) = run("write(2, \"a\", 1) = 1\nwrite(2, \"b\", 1) = 1");
        assert_eq!(out, b"ab");
        assert_eq!(st.writes, 2);
    }

    /// Deterministic pseudo-random numbers for the robustness tests.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    const SAMPLES: &[&str] = &[
        "[pid  1234] 08:17:01.123456 write(2, \"a\\n\\t\\0011\\x1b\\\"\"..., 100 <unfinished ...>",
        "1234  1764317821.123456 <... write resumed>) = 13 <0.000010>",
        "     0.000123 write(2</dev/null>, \"x\", 1) = ? ERESTARTSYS (To be restarted)",
        "08:17:01 (+     0.000138) write(2, \"x\", 1strace: Process 1 attached",
        " <unfinished ...>",
        ")     = -1 EAGAIN (Resource temporarily unavailable)",
        "[pid 1<go>] +++ exited with 2 +++",
        "1234<go> [   1] [00007f87d75f438f] write(2, 0x7ff, 5) = 5",
    ];

    /// Every prefix of every sample line, and random mutations of them: no panic, and the
    /// stats stay consistent with the output.
    #[test]
    fn never_panics() {
        for s in SAMPLES {
            for n in 0..=s.len() {
                for policy in [Policy::Written, Policy::Attempted] {
                    let mut r = Reassembler::with_policy(2, policy);
                    let mut out = Vec::new();
                    r.feed_line(&s.as_bytes()[..n], &mut out);
                    r.feed_line(&s.as_bytes()[n..], &mut out);
                    r.finish(&mut out);
                    assert_eq!(r.stats().bytes, out.len() as u64);
                }
            }
        }
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let alphabet = b"0123456789 []()<>.,:\"\\x=?-+aefnrtvwpid\x00\xff\r\n";
        let mut r = Reassembler::new(2);
        let mut out = Vec::new();
        for _ in 0..200_000 {
            let mut line = SAMPLES[rng.below(SAMPLES.len())].as_bytes().to_vec();
            for _ in 0..rng.below(4) {
                let at = rng.below(line.len() + 1);
                match rng.below(3) {
                    0 if at < line.len() => {
                        line.remove(at);
                    }
                    1 if at < line.len() => line[at] = alphabet[rng.below(alphabet.len())],
                    _ => line.insert(at, alphabet[rng.below(alphabet.len())]),
                }
            }
            r.feed_line(&line, &mut out);
        }
        for _ in 0..20_000 {
            let line: Vec<u8> = (0..rng.below(80)).map(|_| rng.next() as u8).collect();
            r.feed_line(&line, &mut out);
        }
        r.finish(&mut out);
        assert_eq!(r.stats().bytes, out.len() as u64);
    }

    #[test]
    fn bounded_pending() {
        let mut r = Reassembler::new(2);
        let mut out = Vec::new();
        for pid in 0..(MAX_PENDING as u32 + 100) {
            let line = format!("{pid}  write(2, \"x\", 1 <unfinished ...>");
            r.feed_line(line.as_bytes(), &mut out);
        }
        assert!(r.pending.len() <= MAX_PENDING);
        r.finish(&mut out);
        assert_eq!(out.len(), MAX_PENDING + 100);
        assert_eq!(r.stats().incomplete_writes, MAX_PENDING as u64 + 100);
    }

    /// Throughput on a synthetic Go-dump-like log. Run with
    /// `cargo test --release strace_log::tests::throughput -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn throughput() {
        let mut log = Vec::new();
        while log.len() < 200_000_000 {
            log.extend_from_slice(SEED.as_bytes());
            log.push(b'\n');
            log.extend_from_slice(
                b"[pid  4040133] 08:17:01.123456 write(2, \"\\t\", 1 <unfinished ...>\n\
                  [pid  4040134] 08:17:01.123457 futex(0xc000100148, FUTEX_WAKE_PRIVATE, 1) = 1\n\
                  [pid  4040133] 08:17:01.123458 <... write resumed>) = 1\n\
                  write(2, \"\\x2f\\x75\\x73\\x72\\x2f\\x6c\\x6f\\x63\\x61\\x6c\", 10) = 10\n",
            );
        }
        for _ in 0..3 {
            let t = std::time::Instant::now();
            let (out, st) = reassemble(&log, 2, Policy::Written);
            let secs = t.elapsed().as_secs_f64();
            eprintln!(
                "{} MB of log -> {} MB, {} writes in {:.3} s: {:.0} MB/s",
                log.len() / 1_000_000,
                out.len() / 1_000_000,
                st.writes,
                secs,
                log.len() as f64 / secs / 1e6
            );
        }
    }
}
