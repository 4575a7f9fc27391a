//! `--keep-running` through the process's own net/http/pprof listener (issue 5, route 2), and
//! the choice between it and the fork snapshot, on real Go services (tests/goprog/serveprog)
//! built by Debian's Go 1.19 and the newest toolchain. Needs root (other processes' sockets,
//! setns): these tests FAIL when not run as root.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::goprog::{self, Proc, Stderr, serve};
use common::*;

fn scratch(tag: &str) -> PathBuf {
    scratch_dir("pprof-test", tag)
}

fn get(addr: &str, path: &str) -> std::io::Result<String> {
    goprog::http_get(addr, path, Duration::from_secs(5))
}

fn run(args: &[&str]) -> Output {
    gorescue().args(args).stdin(Stdio::null()).output().unwrap()
}

/// `gorescue pid PID ARGS --yes --format json --save-dir DIR`: must succeed.
fn capture(pid: i32, dir: &Path, extra: &[&str]) -> (serde_json::Value, String) {
    let pid = pid.to_string();
    let save = dir.join("save");
    let mut args = vec![
        "pid",
        &pid,
        "--yes",
        "--format",
        "json",
        "--save-dir",
        save.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = run(&args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "gorescue {args:?}: {err}");
    (serde_json::from_slice(&out.stdout).unwrap(), err)
}

/// Ids of the goroutines with `func` on their stack.
fn ids_in(dump: &serde_json::Value, func: &str) -> BTreeSet<u64> {
    dump["goroutines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| {
            g["frames"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["function"] == func)
        })
        .map(|g| g["id"].as_u64().unwrap())
        .collect()
}

/// Running, not traced, nothing on its stderr, no child.
fn check_untouched(p: &Proc, errfile: &Path) {
    assert!(
        matches!(p.state(), Some('S' | 'R')),
        "state {:?}",
        p.state()
    );
    assert_eq!(p.tracer(), Some(0));
    let err = std::fs::read(errfile).unwrap();
    assert!(err.is_empty(), "{:?}", String::from_utf8_lossy(&err));
}

/// Two captures through pprof (the first chosen by --keep-running itself, the second forced
/// with --via pprof) while a client keeps asking; Go 1.19, and the newest toolchain with a
/// stripped binary (-ldflags='-s -w').
#[test]
fn listing_twice_while_serving() {
    goprog::require_root();
    let toolchains = goprog::toolchains();
    let newest = toolchains.last().unwrap().0.clone();
    for (v, go) in toolchains {
        let dir = scratch(&format!("serve-{v}"));
        let bin = goprog::serveprog(&go, v == newest);
        let (p, errfile, addr) = serve(
            &bin,
            &dir,
            &["-n", "200", "-heap", "64", "-pprof", "-listen", "0.0.0.0:0"],
        );
        assert!(get(&addr, "/").unwrap().ends_with("pong\n"));
        let stop = Arc::new(AtomicBool::new(false));
        let (stop2, addr2) = (stop.clone(), addr.clone());
        let client = std::thread::spawn(move || {
            let mut n = 0;
            while !stop2.load(Ordering::Relaxed) {
                let r = get(&addr2, "/").expect("GET during the captures");
                assert!(r.ends_with("pong\n"), "{r}");
                n += 1;
            }
            n
        });
        let (a, err_a) = capture(p.pid(), &dir, &["--keep-running"]);
        let (b, err_b) = capture(p.pid(), &dir, &["--via", "pprof"]);
        stop.store(true, Ordering::Relaxed);
        let answered = client.join().unwrap();
        assert!(answered > 0);
        assert!(get(&addr, "/").unwrap().ends_with("pong\n"));
        check_untouched(&p, &errfile);

        for (d, err) in [(&a, &err_a), (&b, &err_b)] {
            // It said what it would do, and did it.
            assert!(err.contains("capture:    pprof"), "{err}");
            assert!(
                err.contains("effect:     the process keeps running and is not signalled"),
                "{err}"
            );
            assert!(err.contains("its Go world was stopped at most"), "{err}");
            let d = &d["dumps"][0];
            assert_eq!(d["kind"], "goroutine-listing", "go{v}");
            assert_eq!(d["complete"], true);
            let c = &d["capture"];
            assert_eq!(c["method"], "pprof");
            assert_eq!(c["pause_is_upper_bound"], true);
            assert!(c["pause_ms"].as_f64().unwrap() > 0.0, "{c}");
            assert!(
                c["pprof_url"]
                    .as_str()
                    .unwrap()
                    .ends_with("/debug/pprof/goroutine?debug=2"),
                "{c}"
            );
            let raw = std::fs::read(c["raw_file"].as_str().unwrap()).unwrap();
            assert!(raw.starts_with(b"goroutine "), "go{v}");
        }
        // The wildcard bind (dual-stack: [::]) was reached on loopback, with the number of
        // goroutines.
        let port = addr.rsplit(':').next().unwrap();
        assert!(
            err_a.contains(&format!("[::1]:{port}: net/http/pprof, 20")),
            "{err_a}"
        );
        let (pa, pb) = (
            ids_in(&a["dumps"][0], "main.park"),
            ids_in(&b["dumps"][0], "main.park"),
        );
        assert_eq!(pa.len(), 200, "go{v}");
        assert_eq!(pa, pb, "go{v}: the parked goroutines differ");
        eprintln!(
            "go{v}: {answered} GETs answered during two listings (pause at most {} and {} ms)",
            a["dumps"][0]["capture"]["pause_ms"], b["dumps"][0]["capture"]["pause_ms"]
        );
    }
}

/// What --keep-running chooses, from --dry-run (which probes but sends nothing else).
fn dry_run(pid: i32, extra: &[&str]) -> (String, Option<i32>) {
    let pid = pid.to_string();
    let mut args = vec!["pid", &pid, "--dry-run"];
    args.extend_from_slice(extra);
    let out = run(&args);
    (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

fn capture_line(err: &str) -> &str {
    err.lines()
        .find(|l| l.starts_with("capture:"))
        .unwrap_or_else(|| panic!("no capture line in {err}"))
}

#[test]
fn keep_running_chooses_the_shorter_pause() {
    goprog::require_root();
    let (_, go) = goprog::toolchains().pop().unwrap();
    let bin = goprog::serveprog(&go, false);

    // Few goroutines and a big heap: the listing is the shorter stop.
    let dir = scratch("choose-heap");
    let (p, errfile, addr) = serve(&bin, &dir, &["-n", "100", "-heap", "512", "-pprof"]);
    let (err, code) = dry_run(p.pid(), &["--keep-running"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        capture_line(&err).starts_with("capture:    pprof (--keep-running: GET http://"),
        "{err}"
    );
    assert!(
        capture_line(&err).contains("a fork would pause it about"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{addr}: net/http/pprof, 10")),
        "{err}"
    );
    // --via snapshot probes nothing.
    let (err, _) = dry_run(p.pid(), &["--via", "snapshot"]);
    assert!(capture_line(&err).starts_with("capture:    snapshot (--via snapshot:"));
    assert!(!err.contains("pprof:"), "{err}");
    check_untouched(&p, &errfile);
    drop(p);

    // Many goroutines and a small heap: formatting 40,000 goroutines (four times over, as
    // runtime/pprof grows its buffer) stops the world longer than the fork pauses.
    let dir = scratch("choose-many");
    let (p, errfile, _) = serve(&bin, &dir, &["-n", "40000", "-heap", "1", "-pprof"]);
    let (err, code) = dry_run(p.pid(), &["--keep-running"]);
    assert_eq!(code, Some(0), "{err}");
    let line = capture_line(&err);
    assert!(
        line.starts_with("capture:    snapshot (--keep-running:"),
        "{err}"
    );
    assert!(
        line.contains("less than the")
            && line.contains("the pprof listing would stop the Go world"),
        "{err}"
    );
    // Forced, the listing still works, and is complete.
    let (v, _) = capture(p.pid(), &dir, &["--via", "pprof"]);
    assert_eq!(ids_in(&v["dumps"][0], "main.park").len(), 40000);
    check_untouched(&p, &errfile);
    drop(p);

    // No pprof, and a listener that never answers: both probed, in about a second; the
    // snapshot is chosen.
    let dir = scratch("choose-none");
    let (p, errfile, addr) = serve(&bin, &dir, &["-n", "10", "-heap", "1", "-silent"]);
    let t0 = Instant::now();
    let (err, code) = dry_run(p.pid(), &["--keep-running"]);
    let took = t0.elapsed();
    assert_eq!(code, Some(0), "{err}");
    assert!(
        capture_line(&err).starts_with("capture:    snapshot"),
        "{err}"
    );
    // serveprog's "/" handler answers every path without -pprof.
    assert!(
        err.contains(&format!("{addr}: 200, but not net/http/pprof's index")),
        "{err}"
    );
    assert!(err.contains(": no HTTP answer"), "{err}");
    eprintln!("--dry-run with a silent listener took {took:?}");

    // sock_diag and /proc/PID/net/tcp{,6} find the same two listeners.
    let with = gorescue::capture::pprof::listeners_with(p.pid(), true).unwrap();
    let without = gorescue::capture::pprof::listeners_with(p.pid(), false).unwrap();
    assert_eq!(with.len(), 2, "{with:?}");
    assert_eq!(with, without);

    // --via pprof refuses (exit 7) with one line, and touches nothing.
    let out = run(&["pid", &p.pid().to_string(), "--via", "pprof", "--yes"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{err}");
    let last = err.lines().last().unwrap();
    assert!(
        last.starts_with("gorescue: --via pprof: no listener of PID")
            && last.contains("--via snapshot forks a copy instead"),
        "{err}"
    );
    // Options that end the process do not go with --keep-running (exit 2).
    let out = run(&[
        "pid",
        &p.pid().to_string(),
        "--keep-running",
        "--via",
        "ptrace",
        "--yes",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--keep-running does not go with --via ptrace"),
    );
    check_untouched(&p, &errfile);
    drop(p);

    // No listener at all.
    let dir = scratch("choose-nolistener");
    let errfile = dir.join("stderr");
    let p = Proc::start(
        &bin,
        &["-n", "10", "-heap", "1"],
        Stderr::File(errfile.clone()),
        &[],
    );
    let (err, _) = dry_run(p.pid(), &["--keep-running"]);
    assert!(err.contains("it has no TCP listener"), "{err}");
    assert!(
        capture_line(&err).starts_with("capture:    snapshot"),
        "{err}"
    );
    check_untouched(&p, &errfile);
}

/// A service in a network namespace of its own (as with PrivateNetwork=): its loopback is not
/// gorescue's; gorescue makes its socket in the service's namespace.
#[test]
fn other_network_namespace() {
    goprog::require_root();
    let (_, go) = goprog::toolchains().pop().unwrap();
    let bin = goprog::serveprog(&go, false);
    let dir = scratch("netns");
    let errfile = dir.join("stderr");
    let addrfile = dir.join("addr");
    let script = format!(
        "ip link set lo up && exec {} -n 50 -heap 1 -pprof -listen 127.0.0.1:6060 -http {}",
        bin.display(),
        addrfile.display()
    );
    let p = Proc::start(
        Path::new("unshare"),
        &["--net", "sh", "-c", &script],
        Stderr::File(errfile.clone()),
        &[],
    );
    // Port 6060 is the service's own: nothing listens there in gorescue's namespace.
    assert!(std::net::TcpStream::connect("127.0.0.1:6060").is_err());
    let (v, err) = capture(p.pid(), &dir, &["--keep-running"]);
    assert!(err.contains("127.0.0.1:6060: net/http/pprof, 5"), "{err}");
    let d = &v["dumps"][0];
    assert_eq!(d["capture"]["method"], "pprof");
    assert_eq!(ids_in(d, "main.park").len(), 50);
    check_untouched(&p, &errfile);
}

/// `-o` onto something that is not a regular file is written to, never replaced: a device
/// node (made here: the null device, as /dev/null is), a FIFO with a reader; a symlink keeps
/// pointing at its file, which gets the output.
#[test]
fn output_to_a_device_a_fifo_and_a_symlink() {
    use std::os::unix::fs::FileTypeExt;
    goprog::require_root();
    let (_, go) = goprog::toolchains().pop().unwrap();
    let bin = goprog::serveprog(&go, false);
    let dir = scratch("output");
    let (p, errfile, _) = serve(&bin, &dir, &["-n", "20", "-heap", "1", "-pprof"]);
    let pid = p.pid().to_string();
    let save = dir.join("save");
    let out_to = |o: &Path| {
        let out = run(&[
            "pid",
            &pid,
            "--via",
            "pprof",
            "--yes",
            "--save-dir",
            save.to_str().unwrap(),
            "-o",
            o.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "-o {}: {}",
            o.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let no_part_files = || {
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    };

    let null = dir.join("null");
    nix::sys::stat::mknod(
        &null,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    out_to(&null);
    assert!(
        std::fs::metadata(&null)
            .unwrap()
            .file_type()
            .is_char_device()
    );

    let fifo = dir.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let f2 = fifo.clone();
    let reader = std::thread::spawn(move || std::fs::read_to_string(f2).unwrap());
    out_to(&fifo);
    let text = reader.join().unwrap();
    assert!(text.contains("main.park"), "{text}");
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());

    let file = dir.join("report.txt");
    let link = dir.join("latest.txt");
    std::fs::write(&file, "old").unwrap();
    std::os::unix::fs::symlink("report.txt", &link).unwrap();
    out_to(&link);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .contains("main.park")
    );

    no_part_files();
    check_untouched(&p, &errfile);
}
