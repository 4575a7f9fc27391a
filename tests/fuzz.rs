//! A bounded, seeded mutation fuzzer for the dump parser (with every renderer) and the strace
//! reassembler. It mutates the real fixtures (dumps, journalctl output, strace logs) with byte
//! flips, truncations, line shuffles and dump-shaped tokens, and checks that nothing panics,
//! that JSON output is always valid JSON, and that raw output never invents bytes.
//!
//! Runs for GORESCUE_FUZZ_SECONDS seconds (default 3; scripts/test.sh gives it 60 in release
//! mode). GORESCUE_FUZZ_SEED picks the seed; a failure prints the seed and the iteration.

mod common;

use std::time::{Duration, Instant};

use chrono::DateTime;
use gorescue::dump::TimePolicy;
use gorescue::dump::render::{JsonRenderer, Options, RawRenderer, Renderer, TextRenderer, Zone};
use gorescue::offline::LineFeeder;
use gorescue::strace_log::Reassembler;

/// xorshift64*: small, deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&[u8]] = &[
    b"\n",
    b"\r\n",
    b"\t",
    b"        ",
    b"goroutine ",
    b"goroutine 7 [",
    b"]:",
    b"]:\n",
    b" minutes",
    b", 1390 minutes",
    b", locked to thread",
    b" labels:{\"",
    b"\": \"",
    b"} ",
    b" {k: v}:",
    b"\"",
    b"\\",
    b"\\x",
    b"created by ",
    b" in goroutine ",
    b" +0x",
    b" fp=0x1 sp=0x2 pc=0x3",
    b"SIGQUIT: quit\n",
    b"panic: ",
    b"fatal error: ",
    b"[recovered]",
    b"-----\n",
    b"rax    0x0\n",
    b"gs     0x0\n",
    b"r0      0x1\n",
    b"fault   0x0\n",
    b"...additional frames elided...\n",
    b"...12 frames elided...\n",
    b"runtime stack:\n",
    b"(",
    b")",
    b"{",
    b"}",
    b"[...]",
    b"\xff",
    b"\xc3",
    b"Nov 28 08:17:01 host x[1]: ",
    b"2026-11-28T08:17:01+0000 host x[1]: ",
    b"-- Boot 123 --\n",
    b"write(2, \"",
    b"\", 5) = 5\n",
    b"<unfinished ...>\n",
    b"<... write resumed>) = 3\n",
    b"[pid  12] ",
    b"08:17:01.123456 ",
    b"\"...",
    b"\\377",
];

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(8) {
        if v.is_empty() {
            v.extend_from_slice(TOKENS[rng.below(TOKENS.len())]);
            continue;
        }
        let at = rng.below(v.len());
        match rng.below(9) {
            0 => v[at] = rng.next() as u8,
            1 => v.truncate(at),
            2 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                v.splice(at..at, t.iter().copied());
            }
            3 => {
                let end = (at + rng.below(200)).min(v.len());
                v.drain(at..end);
            }
            4 => {
                // Duplicate a chunk elsewhere (another dump, a repeated goroutine).
                let end = (at + rng.below(4000)).min(v.len());
                let chunk = v[at..end].to_vec();
                let to = rng.below(v.len());
                v.splice(to..to, chunk);
            }
            5 => {
                // Swap two lines.
                let lines: Vec<&[u8]> = v.split(|&b| b == b'\n').collect();
                let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
                let mut ls: Vec<Vec<u8>> = lines.iter().map(|l| l.to_vec()).collect();
                ls.swap(a, b);
                v = ls.join(&b'\n');
            }
            6 => v.insert(at, b'\n'),
            7 => {
                if let Some(p) = v[at..].iter().position(|&b| b == b'\n') {
                    v.remove(at + p);
                }
            }
            _ => {
                let t = TOKENS[rng.below(TOKENS.len())];
                v.extend_from_slice(t);
            }
        }
    }
    v
}

fn policy(rng: &mut Rng) -> TimePolicy {
    let t = DateTime::parse_from_rfc3339("2026-11-28T10:00:00+01:00").unwrap();
    TimePolicy {
        argument: if rng.below(2) == 0 {
            Some(gorescue::dump::DumpTime {
                time: t,
                source: gorescue::dump::TimeSource::Argument,
            })
        } else {
            None
        },
        fallback: None,
    }
}

fn check_dump_input(rng: &mut Rng, input: &[u8]) {
    let reference = DateTime::parse_from_rfc3339("2026-11-28T10:00:00+00:00").unwrap();
    let opts = Options {
        zone: Zone {
            utc: rng.below(2) == 0,
        },
        group: rng.below(2) == 0,
    };
    // JSON: always valid.
    let mut json = Vec::new();
    {
        let mut r = JsonRenderer::new(&mut json, opts);
        let mut f = LineFeeder::new(policy(rng), reference);
        f.feed_all(input, &mut r).unwrap();
        r.finish().unwrap();
    }
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(&json) {
        panic!(
            "invalid JSON ({e}) for input {:?}",
            String::from_utf8_lossy(input)
        );
    }
    // Text.
    let mut text = Vec::new();
    {
        let mut r = TextRenderer::new(&mut text, opts);
        let mut f = LineFeeder::new(policy(rng), reference);
        f.feed_all(input, &mut r).unwrap();
        r.finish().unwrap();
    }
    // Raw: every output line is (the tail of) an input line; nothing is invented.
    let mut raw = Vec::new();
    {
        let mut r = RawRenderer::new(&mut raw);
        let mut f = LineFeeder::new(TimePolicy::default(), reference);
        f.feed_all(input, &mut r).unwrap();
        r.finish().unwrap();
    }
    let input_lines: std::collections::HashSet<&[u8]> = input
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect();
    if raw.len() > input.len() + 1 {
        // Raw output can exceed the input only by the final newline.
        panic!("raw output longer than the input");
    }
    for line in raw.split(|&b| b == b'\n') {
        if line.is_empty() {
            continue;
        }
        let ok = input_lines.contains(line)
            || input_lines.iter().any(|l| l.ends_with(line))
            || input.windows(line.len()).any(|w| w == line);
        assert!(
            ok,
            "raw line not in the input: {:?}",
            String::from_utf8_lossy(line)
        );
    }
}

fn check_strace_input(input: &[u8]) {
    let mut r = Reassembler::new(2);
    let mut out = Vec::new();
    for line in input.split(|&b| b == b'\n') {
        r.feed_line(line, &mut out);
    }
    r.finish(&mut out);
    // The reassembled bytes can be fed to the parser as well.
    let reference = DateTime::parse_from_rfc3339("2026-11-28T10:00:00+00:00").unwrap();
    let mut sink = RawRenderer::new(std::io::sink());
    LineFeeder::new(TimePolicy::default(), reference)
        .feed_all(&out[..], &mut sink)
        .unwrap();
}

#[test]
fn fuzz() {
    let secs: u64 = std::env::var("GORESCUE_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let seed: u64 = std::env::var("GORESCUE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9E37_79B9_7F4A_7C15);
    let fx = common::fixtures();
    let read = |p: &str| std::fs::read(fx.join(p)).unwrap();
    let dumps: Vec<Vec<u8>> = [
        "seed/sigquit.txt",
        "go1.19.8/sigquit-wedge.txt",
        "go1.27.3/crash.txt",
        "go1.26.6/labels.txt",
        "go1.27.3/labels.txt",
        "go1.25.5/synctest.txt",
        "go1.27.3/panic-nested.txt",
        "go1.21.13/fatal-mapwrites.txt",
        "go1.22.10/listing.txt",
        "arm64/go1.27.3/sigquit-wedge.txt",
        "journal/short-precise.txt",
        "journal/cat.txt",
    ]
    .iter()
    .map(|p| read(p))
    .collect();
    let logs: Vec<Vec<u8>> = [
        "seed/strace.log",
        "strace/go1.27.3/f-interleave.log",
        "strace/go1.19.8/xx.log",
    ]
    .iter()
    .map(|p| {
        // Keep the big logs small so that each iteration is quick.
        let v = read(p);
        v[..v.len().min(200_000)].to_vec()
    })
    .collect();
    let mut rng = Rng(seed | 1);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut iterations = 0u64;
    while Instant::now() < deadline {
        let state = rng.0;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if rng.below(4) == 0 {
                let base = &logs[rng.below(logs.len())];
                let input = mutate(&mut rng, base);
                check_strace_input(&input);
            } else {
                let base = &dumps[rng.below(dumps.len())];
                let input = mutate(&mut rng, base);
                check_dump_input(&mut rng, &input);
            }
        }));
        if result.is_err() {
            panic!(
                "fuzz failure at iteration {iterations} (rng state {state:#x}); replay with GORESCUE_FUZZ_SEED={seed}"
            );
        }
        iterations += 1;
    }
    eprintln!("fuzz: {iterations} inputs in {secs} s, seed {seed:#x}");
    assert!(iterations > 0);
}
