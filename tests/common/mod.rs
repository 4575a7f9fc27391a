//! Helpers shared by the integration tests: fixtures, their .meta files, running gorescue.
#![allow(dead_code)]

pub mod goprog;
pub mod systemd;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh, empty directory for one test: target/AREA/NAME-PID. Under target/, not /tmp, so
/// that it is the same path inside the namespaced systemd, which has a /tmp of its own.
pub fn scratch_dir(area: &str, name: &str) -> PathBuf {
    let d = root()
        .join("target")
        .join(area)
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn fixtures() -> PathBuf {
    root().join("tests/fixtures")
}

/// `key=value` lines of a `.meta` file.
pub fn meta(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn num(meta: &BTreeMap<String, String>, key: &str) -> u64 {
    meta.get(key)
        .unwrap_or_else(|| panic!("meta has no {key}"))
        .parse()
        .unwrap()
}

/// Every `go<V>/*.txt` dump fixture with its meta, sorted.
pub fn dump_fixtures() -> Vec<(PathBuf, BTreeMap<String, String>)> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(fixtures()).unwrap() {
        let dir = dir.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("go") {
            continue;
        }
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "txt") {
                let m = meta(&f.with_extension("meta"));
                out.push((f, m));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        out.len() >= 60,
        "expected the generated fixtures, found {}",
        out.len()
    );
    out
}

pub fn gorescue() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gorescue"));
    c.env("TZ", "UTC");
    c
}

/// Run gorescue with `args`, feeding `stdin`.
pub fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = gorescue()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// Run `annotate --format json` on `stdin` (or a file given in `args`) and parse the output.
pub fn json(args: &[&str], stdin: &[u8]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.extend_from_slice(&["--format", "json"]);
    let out = run(&a, stdin);
    assert!(
        out.status.success(),
        "gorescue {a:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "invalid JSON from gorescue {a:?}: {e}: {}",
            String::from_utf8_lossy(&out.stdout[..out.stdout.len().min(2000)])
        )
    })
}

/// Counts over the goroutines of one JSON dump, as the .meta files count them.
#[derive(Debug, PartialEq, Eq)]
pub struct Counts {
    pub goroutines: u64,
    pub frames: u64,
    pub created_by: u64,
    pub elided: u64,
    pub with_minutes: u64,
    pub max_minutes: u64,
}

pub fn counts(dump: &serde_json::Value) -> Counts {
    let gs = dump["goroutines"].as_array().unwrap();
    Counts {
        goroutines: gs.len() as u64,
        frames: gs
            .iter()
            .map(|g| g["frames"].as_array().unwrap().len() as u64)
            .sum(),
        created_by: gs.iter().filter(|g| !g["created_by"].is_null()).count() as u64,
        elided: gs.iter().filter(|g| g["elided_frames"] == true).count() as u64,
        with_minutes: gs.iter().filter(|g| !g["wait_minutes"].is_null()).count() as u64,
        max_minutes: gs
            .iter()
            .filter_map(|g| g["wait_minutes"].as_u64())
            .max()
            .unwrap_or(0),
    }
}

pub fn meta_counts(m: &BTreeMap<String, String>) -> Counts {
    Counts {
        goroutines: num(m, "goroutines"),
        frames: num(m, "frames"),
        created_by: num(m, "created_by"),
        elided: num(m, "elided_markers"),
        with_minutes: num(m, "goroutines_with_minutes"),
        max_minutes: num(m, "max_minutes"),
    }
}
