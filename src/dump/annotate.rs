//! From wait minutes to wall-clock times, and from many goroutines to a few onset clusters.
//!
//! What `N minutes` means (see go-dump-format.md, section 8): the runtime prints
//! `(nanotime() - g.waitsince) / 60e9`, floored, only when at least 1; `waitsince` is the
//! start of the garbage collection before the one whose stack scan first saw the goroutine
//! blocked. So the goroutine blocked roughly `dump_time - N minutes`: up to a minute earlier
//! (the floor) or up to one GC interval later (about 2 minutes in an idle program).

use std::collections::HashMap;

use chrono::{DateTime, Duration, FixedOffset};

use super::model::Goroutine;

/// Two blocked-since times this many minutes apart or closer fall in one cluster.
pub const CLUSTER_GAP_MINUTES: u64 = 2;
/// A cluster spans at most this many minutes.
pub const CLUSTER_SPAN_MINUTES: u64 = 5;

/// `dump_time - minutes`, the time the goroutine has been blocked since (approximately).
pub fn blocked_since(dump_time: DateTime<FixedOffset>, minutes: u64) -> DateTime<FixedOffset> {
    dump_time - Duration::minutes(i64::try_from(minutes).unwrap_or(i64::MAX / 120_000))
}

/// Is `function` in Go's standard library? Its first path element has no dot and it is
/// not package main.
pub fn is_stdlib(function: &[u8]) -> bool {
    let first = match memchr::memchr(b'/', function) {
        Some(p) => &function[..p],
        None => match memchr::memchr(b'.', function) {
            Some(p) => &function[..p],
            None => function,
        },
    };
    first != b"main" && !first.contains(&b'.')
}

/// A function name without its package path: `github.com/a/netlink.routeSubscribeAt.func2`
/// becomes `netlink.routeSubscribeAt.func2`.
pub fn short_function(function: &[u8]) -> &[u8] {
    // The package path ends at the last `/` before the first `.` that follows it;
    // generic type arguments `[...]` contain no `/`.
    match memchr::memrchr(b'/', function) {
        Some(p) => &function[p + 1..],
        None => function,
    }
}

/// The frame that best says where a goroutine is stuck: its innermost frame outside the
/// standard library, else the function that created it, else its innermost frame.
pub fn key_frame(g: &Goroutine) -> Option<&[u8]> {
    for f in &g.frames {
        let name = g.bytes(&f.function);
        if !is_stdlib(name) {
            return Some(name);
        }
    }
    if let Some(cb) = &g.created_by {
        let name = g.bytes(&cb.function);
        if !is_stdlib(name) {
            return Some(name);
        }
    }
    g.frames.first().map(|f| g.bytes(&f.function))
}

/// One goroutine with wait minutes, as the summary keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiter {
    pub id: u64,
    pub minutes: u64,
    pub state: u32,
    pub key: u32,
}

/// Per-dump statistics, gathered one goroutine at a time in constant memory per goroutine.
#[derive(Debug, Default)]
pub struct Summary {
    pub goroutines: u64,
    names: Vec<Vec<u8>>,
    index: HashMap<Vec<u8>, u32>,
    /// Count of goroutines per state (index into `names`).
    state_counts: HashMap<u32, u64>,
    pub waiters: Vec<Waiter>,
}

impl Summary {
    fn intern(&mut self, name: &[u8]) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.to_vec());
        self.index.insert(name.to_vec(), i);
        i
    }

    pub fn name(&self, i: u32) -> &[u8] {
        &self.names[i as usize]
    }

    pub fn add(&mut self, g: &Goroutine) {
        self.goroutines += 1;
        let state = self.intern(g.state());
        *self.state_counts.entry(state).or_insert(0) += 1;
        if let Some(minutes) = g.wait_minutes {
            let key = key_frame(g).map_or(b"?".as_slice(), short_function);
            let key = self.intern(key);
            self.waiters.push(Waiter {
                id: g.id,
                minutes,
                state,
                key,
            });
        }
    }

    /// States by count, largest first (ties by name).
    pub fn states(&self) -> Vec<(&[u8], u64)> {
        let mut v: Vec<_> = self
            .state_counts
            .iter()
            .map(|(&s, &n)| (self.name(s), n))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v
    }

    /// The `n` longest waits, longest first (ties in input order).
    pub fn longest(&self, n: usize) -> Vec<Waiter> {
        let mut v = self.waiters.clone();
        v.sort_by_key(|w| std::cmp::Reverse(w.minutes));
        v.truncate(n);
        v
    }

    /// Onset clusters: waits sorted from the longest, cut where two neighbours are more than
    /// [`CLUSTER_GAP_MINUTES`] apart or the cluster would span more than
    /// [`CLUSTER_SPAN_MINUTES`]. Oldest first.
    pub fn clusters(&self) -> Vec<Cluster> {
        let mut w = self.waiters.clone();
        w.sort_by_key(|w| std::cmp::Reverse(w.minutes));
        let mut out: Vec<Cluster> = Vec::new();
        let mut start = 0;
        for i in 1..=w.len() {
            let split = i == w.len()
                || w[i - 1].minutes - w[i].minutes > CLUSTER_GAP_MINUTES
                || w[start].minutes - w[i].minutes > CLUSTER_SPAN_MINUTES;
            if split {
                out.push(Cluster::of(&w[start..i]));
                start = i;
            }
        }
        out
    }
}

/// Goroutines whose blocked-since times lie close together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// The longest and the shortest wait in the cluster.
    pub max_minutes: u64,
    pub min_minutes: u64,
    pub size: usize,
    pub ids: Vec<u64>,
    /// Key frames by count, most common first.
    pub frames: Vec<(u32, usize)>,
    /// States by count, most common first.
    pub states: Vec<(u32, usize)>,
}

impl Cluster {
    fn of(w: &[Waiter]) -> Cluster {
        let count = |f: fn(&Waiter) -> u32| {
            let mut m: HashMap<u32, usize> = HashMap::new();
            let mut order = Vec::new();
            for x in w {
                let e = m.entry(f(x)).or_insert(0);
                if *e == 0 {
                    order.push(f(x));
                }
                *e += 1;
            }
            let mut v: Vec<(u32, usize)> = order.into_iter().map(|k| (k, m[&k])).collect();
            v.sort_by_key(|e| std::cmp::Reverse(e.1));
            v
        };
        let mut ids: Vec<u64> = w.iter().map(|x| x.id).collect();
        ids.sort_unstable();
        Cluster {
            max_minutes: w[0].minutes,
            min_minutes: w[w.len() - 1].minutes,
            size: w.len(),
            ids,
            frames: count(|x| x.key),
            states: count(|x| x.state),
        }
    }
}

/// Which cluster is most likely where the trouble began. The oldest cluster usually dates
/// from the program's start (main, signal handling, listeners): when there are others,
/// pick the largest of them, and of equal ones the oldest.
pub fn likely_onset(clusters: &[Cluster]) -> Option<usize> {
    if clusters.len() < 2 {
        return None;
    }
    let mut best: Option<usize> = None;
    for (i, c) in clusters.iter().enumerate().skip(1) {
        if best.is_none_or(|b| c.size > clusters[b].size) {
            best = Some(i);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdlib_detection() {
        assert!(is_stdlib(b"runtime.gopark"));
        assert!(is_stdlib(b"internal/poll.(*FD).Read"));
        assert!(is_stdlib(b"os/signal.signal_recv"));
        assert!(!is_stdlib(b"main.main"));
        assert!(!is_stdlib(
            b"github.com/vishvananda/netlink.routeSubscribeAt.func2"
        ));
        assert_eq!(
            short_function(b"github.com/vishvananda/netlink.routeSubscribeAt.func2"),
            b"netlink.routeSubscribeAt.func2"
        );
        assert_eq!(
            short_function(b"main.(*Box[...]).Wait"),
            b"main.(*Box[...]).Wait"
        );
    }

    fn waiter(id: u64, minutes: u64) -> Waiter {
        Waiter {
            id,
            minutes,
            state: 0,
            key: 0,
        }
    }

    #[test]
    fn clusters_split_on_gaps_and_span() {
        let mut s = Summary::default();
        s.intern(b"chan receive");
        s.waiters = [
            21508, 21508, 21508, 4080, 1390, 1390, 1389, 10, 9, 8, 7, 6, 5, 4,
        ]
        .iter()
        .enumerate()
        .map(|(i, &m)| waiter(i as u64, m))
        .collect();
        let c = s.clusters();
        let sizes: Vec<_> = c
            .iter()
            .map(|c| (c.max_minutes, c.min_minutes, c.size))
            .collect();
        assert_eq!(
            sizes,
            vec![
                (21508, 21508, 3),
                (4080, 4080, 1),
                (1390, 1389, 3),
                (10, 5, 6),
                (4, 4, 1)
            ]
        );
        assert_eq!(likely_onset(&c), Some(3));
    }
}
