//! Reassembles the real strace logs under `tests/fixtures/strace/<go version>/` (recorded from
//! real Go programs dumping their goroutines on SIGQUIT) and compares each with the true
//! stderr bytes recorded beside it (`NAME.stderr`), byte for byte. The `-s 32` variant cannot
//! match: it must report truncated writes instead.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use gorescue::strace_log::{Policy, Stats, Timestamp, reassemble};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/strace")
}

/// Every `*.log` of every version directory, sorted.
fn logs() -> Vec<PathBuf> {
    let mut logs = Vec::new();
    for version in fs::read_dir(fixture_dir()).expect("tests/fixtures/strace") {
        let version = version.unwrap().path();
        if !version.is_dir() {
            continue;
        }
        for f in fs::read_dir(&version).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "log") {
                logs.push(f);
            }
        }
    }
    logs.sort();
    logs
}

/// The `key=value` lines of `NAME.meta`, if there is one.
fn meta(log: &Path) -> HashMap<String, String> {
    let Ok(text) = fs::read_to_string(log.with_extension("meta")) else {
        return HashMap::new();
    };
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Was the log recorded with strace's default `-s 32`?
fn short_strings(log: &Path, meta: &HashMap<String, String>) -> bool {
    match meta.get("strace_flags") {
        Some(flags) => !flags.split_whitespace().any(|f| f.starts_with("-s")),
        None => log.file_stem().is_some_and(|s| s == "s32"),
    }
}

fn describe(st: &Stats) -> String {
    format!(
        "writes {} bytes {} truncated {} failed {} partial {} incomplete {} interrupted {} \
         unmatched {} malformed {}",
        st.writes,
        st.bytes,
        st.truncated_writes,
        st.failed_writes,
        st.partial_writes,
        st.incomplete_writes,
        st.interrupted_writes,
        st.unmatched_resumed,
        st.malformed_writes
    )
}

#[test]
fn strace_fixtures_reassemble_to_their_stderr() {
    let logs = logs();
    assert!(
        !logs.is_empty(),
        "no strace fixtures under {}",
        fixture_dir().display()
    );
    let mut failures = Vec::new();
    for log in &logs {
        let name = log
            .strip_prefix(fixture_dir())
            .unwrap()
            .display()
            .to_string();
        let meta = meta(log);
        let bytes = fs::read(log).unwrap();
        let (out, st) = reassemble(&bytes, 2, Policy::Written);
        eprintln!("{name}: {}", describe(&st));
        if st.unmatched_resumed + st.malformed_writes + st.incomplete_writes > 0 {
            failures.push(format!("{name}: unexpected stats: {}", describe(&st)));
        }
        if !out.starts_with(b"SIGQUIT: quit\n") && !out.windows(14).any(|w| w == b"SIGQUIT: quit\n")
        {
            failures.push(format!("{name}: no SIGQUIT header in the output"));
        }
        if short_strings(log, &meta) {
            if st.truncated_writes == 0 {
                failures.push(format!("{name}: -s 32 log without truncated writes"));
            }
            continue;
        }
        let Ok(expected) = fs::read(log.with_extension("stderr")) else {
            failures.push(format!("{name}: no .stderr beside it"));
            continue;
        };
        if out != expected {
            let at = out
                .iter()
                .zip(&expected)
                .take_while(|(a, b)| a == b)
                .count();
            failures.push(format!(
                "{name}: differs from .stderr at byte {at} (got {} bytes, want {}): got {:?}, want {:?}",
                out.len(),
                expected.len(),
                String::from_utf8_lossy(&out[at.saturating_sub(20)..(at + 40).min(out.len())]),
                String::from_utf8_lossy(
                    &expected[at.saturating_sub(20)..(at + 40).min(expected.len())]
                ),
            ));
        }
        if st.truncated_writes > 0 {
            failures.push(format!("{name}: truncated writes without -s 32"));
        }
        if st.failed_writes + st.partial_writes == 0 {
            let (attempted, _) = reassemble(&bytes, 2, Policy::Attempted);
            if attempted != out {
                failures.push(format!(
                    "{name}: Policy::Attempted differs with no failed write"
                ));
            }
        }
        // CRLF line ends change nothing.
        let crlf: Vec<u8> = bytes
            .split(|&b| b == b'\n')
            .flat_map(|l| l.iter().copied().chain(*b"\r\n"))
            .collect();
        if reassemble(&crlf, 2, Policy::Written).0 != out {
            failures.push(format!("{name}: differs with CRLF line ends"));
        }
        // -ttt: the first write is the dump's, just after the signal was sent.
        if let (Some(Timestamp::Unix { secs, nanos }), Some(sent)) =
            (st.first_time, meta.get("signal_time"))
        {
            let sent = chrono::DateTime::parse_from_rfc3339(sent).unwrap();
            let first = chrono::DateTime::from_timestamp(secs, nanos).unwrap();
            let d = (first - sent.to_utc()).num_milliseconds();
            if !(-1000..10_000).contains(&d) {
                failures.push(format!(
                    "{name}: first write {first} is {d} ms from the signal {sent}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} logs:\n{}",
        failures.len(),
        logs.len(),
        failures.join("\n")
    );
}

/// The seed's log (the blog post's excerpt): its writes, and the dump's first lines.
#[test]
fn seed_log() {
    let log = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed/strace.log");
    let bytes = fs::read(&log).expect("tests/fixtures/seed/strace.log");
    let (out, st) = reassemble(&bytes, 2, Policy::Written);
    let want = meta(&log).get("writes").map(|w| w.parse::<u64>().unwrap());
    assert_eq!(Some(st.writes), want.or(Some(68)));
    assert!(out.starts_with(
        b"SIGQUIT: quit\nPC=0x464ce1 m=0 sigcode=0\n\ngoroutine 0 [idle]:\nruntime.futex()\n\
          \t/usr/local/go/src/runtime/sys_linux_amd64.s:552 +0x21\n"
    ));
    assert_eq!(
        st.unmatched_resumed + st.malformed_writes + st.truncated_writes,
        0
    );
}
