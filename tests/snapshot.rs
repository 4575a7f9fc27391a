//! The fork snapshot (issue 5, route 1) on real Go processes: the target keeps running after
//! two dumps, its stderr gets nothing, no zombie is left, both dumps are complete and list the
//! same parked goroutines. Needs root: these tests FAIL when not run as root.
//!
//! `cargo test --release --test snapshot -- --ignored --nocapture pause` prints the pause for
//! 10,000 goroutines and a 1 GiB heap.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod common;

use common::goprog::{self, Proc, Stderr};
use gorescue::capture::snapshot::{SnapshotReport, snapshot_dump};

fn work() -> PathBuf {
    let d = common::root().join("target/snapshot-test");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn dump(pid: i32) -> (String, SnapshotReport) {
    let mut out = Vec::new();
    let rep = snapshot_dump(pid, &mut out, Duration::from_secs(20)).expect("snapshot_dump");
    (String::from_utf8_lossy(&out).into_owned(), rep)
}

/// Goroutine ids not running or runnable.
fn parked(text: &str) -> BTreeSet<u64> {
    text.lines()
        .filter_map(|l| l.strip_prefix("goroutine "))
        .filter_map(|l| {
            // `7 [chan receive]:` or (newer Go, SIGQUIT) `7 gp=0x.. m=nil [chan receive]:`
            let id = l.split_whitespace().next()?;
            let (_, rest) = l.split_once(" [")?;
            let state = rest.split([',', ']']).next()?;
            (!matches!(state, "running" | "runnable")).then(|| id.parse().ok())?
        })
        .collect()
}

/// Ids of the goroutines with `func` on their stack.
fn in_func(text: &str, func: &str) -> BTreeSet<u64> {
    text.split("\n\n")
        .filter(|b| b.contains(func))
        .filter_map(|b| {
            b.strip_prefix("goroutine ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

fn check_complete(text: &str, rep: &SnapshotReport) {
    assert!(
        text.starts_with("SIGQUIT: quit"),
        "dump starts {:?}",
        &text[..text.len().min(200)]
    );
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    assert!(last.starts_with("gs "), "dump ends with {last:?}");
    assert_eq!(rep.bytes as usize, text.len());
    assert!(!rep.killed, "the child had to be killed: {rep:?}");
    assert_eq!(rep.child_exit_code(), Some(2), "{rep:?}");
    assert!(rep.reaped, "child not reaped: {rep:?}");
}

fn children_of(pid: i32) -> Vec<i32> {
    let mut v = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let c = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        v.extend(c.split_whitespace().filter_map(|x| x.parse::<i32>().ok()));
    }
    v
}

fn check_alive(p: &Proc, errfile: &Path, child: i32) {
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        matches!(p.state(), Some('S') | Some('R')),
        "target state {:?}",
        p.state()
    );
    assert_eq!(p.tracer(), Some(0));
    let err = std::fs::read(errfile).unwrap();
    assert!(
        err.is_empty(),
        "target stderr got {:?}",
        String::from_utf8_lossy(&err)
    );
    assert!(
        !Path::new(&format!("/proc/{child}")).exists(),
        "child {child} still exists (zombie?)"
    );
    assert!(
        children_of(p.pid()).is_empty(),
        "{:?}",
        children_of(p.pid())
    );
}

fn two_dumps(bin: &Path, tag: &str) {
    let errfile = work().join(format!("stderr-{tag}"));
    let _ = std::fs::remove_file(&errfile);
    let p = Proc::start(bin, &["-mode", "wedge"], Stderr::File(errfile.clone()), &[]);
    let (a, ra) = dump(p.pid());
    eprintln!(
        "{tag}: first dump {} bytes, pause {:?}, reap pause {:?}",
        ra.bytes, ra.pause, ra.reap_pause
    );
    check_complete(&a, &ra);
    check_alive(&p, &errfile, ra.child_pid);
    std::thread::sleep(Duration::from_millis(200));
    let (b, rb) = dump(p.pid());
    eprintln!(
        "{tag}: second dump {} bytes, pause {:?}, reap pause {:?}",
        rb.bytes, rb.pause, rb.reap_pause
    );
    check_complete(&b, &rb);
    check_alive(&p, &errfile, rb.child_pid);
    std::fs::write(work().join(format!("dump-{tag}-1.txt")), &a).unwrap();
    std::fs::write(work().join(format!("dump-{tag}-2.txt")), &b).unwrap();
    let (pa, pb) = (parked(&a), parked(&b));
    assert!(pa.len() >= 5, "few parked goroutines: {pa:?}\n{a}");
    assert_eq!(pa, pb, "parked goroutines differ");
}

#[test]
fn wedge_keeps_running_go_old_and_new() {
    goprog::require_root();
    for (v, go) in goprog::toolchains() {
        let bin = goprog::dumpprog(&go, false);
        two_dumps(&bin, &format!("go{v}"));
    }
}

#[test]
fn stripped_binary() {
    goprog::require_root();
    let (v, go) = goprog::toolchains().pop().unwrap();
    let bin = goprog::dumpprog(&go, true);
    two_dumps(&bin, &format!("go{v}-stripped"));
}

/// The pause for `-mode many -n 10000`, and for 10,000 goroutines with a 1 GiB live heap.
#[test]
fn pause_many_and_big_heap() {
    goprog::require_root();
    let (v, go) = goprog::toolchains().pop().unwrap();
    let bin = goprog::dumpprog(&go, false);
    let errfile = work().join("stderr-many");
    let _ = std::fs::remove_file(&errfile);
    let p = Proc::start(
        &bin,
        &["-mode", "many", "-n", "10000"],
        Stderr::File(errfile.clone()),
        &[],
    );
    for i in 0..3 {
        let (text, rep) = dump(p.pid());
        check_complete(&text, &rep);
        check_alive(&p, &errfile, rep.child_pid);
        let gs = text.lines().filter(|l| l.starts_with("goroutine ")).count();
        assert!(gs >= 10000, "{gs} goroutines");
        println!(
            "go{v} many -n 10000 #{i}: pause {:?} (seize {:?} of {} threads, fork {:?}), dump {} bytes ({gs} goroutines) in {:?}, reap pause {:?}",
            rep.pause, rep.seize, rep.threads, rep.fork, rep.bytes, rep.dump_time, rep.reap_pause
        );
    }
    drop(p);

    let hp = goprog::serveprog(&go, false);
    let errfile = work().join("stderr-heap");
    let _ = std::fs::remove_file(&errfile);
    let p = Proc::start(
        &hp,
        &["-n", "10000", "-heap", "1024"],
        Stderr::File(errfile.clone()),
        &[],
    );
    let rss = std::fs::read_to_string(format!("/proc/{}/status", p.pid()))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmRSS"))
        .unwrap_or("")
        .to_string();
    for i in 0..3 {
        let (text, rep) = dump(p.pid());
        check_complete(&text, &rep);
        check_alive(&p, &errfile, rep.child_pid);
        let gs = text.lines().filter(|l| l.starts_with("goroutine ")).count();
        assert!(gs >= 10000, "{gs} goroutines");
        println!(
            "go{v} 10000 goroutines + 1 GiB heap ({rss}) #{i}: pause {:?} (seize {:?} of {} threads, fork {:?}), dump {} bytes in {:?}, reap pause {:?}",
            rep.pause, rep.seize, rep.threads, rep.fork, rep.bytes, rep.dump_time, rep.reap_pause
        );
    }
}

/// A program that catches SIGQUIT (signal.Notify): the child never prints and never exits. It
/// is killed at the bound and reaped; the target runs on, its stderr untouched.
#[test]
fn wedged_child_is_killed_at_the_bound() {
    goprog::require_root();
    let (_, go) = goprog::toolchains().pop().unwrap();
    let hp = goprog::serveprog(&go, false);
    let errfile = work().join("stderr-notify");
    let _ = std::fs::remove_file(&errfile);
    let p = Proc::start(
        &hp,
        &["-n", "10", "-heap", "1", "-notify"],
        Stderr::File(errfile.clone()),
        &[],
    );
    let mut out = Vec::new();
    let t0 = std::time::Instant::now();
    let rep = snapshot_dump(p.pid(), &mut out, Duration::from_secs(2)).expect("snapshot_dump");
    let took = t0.elapsed();
    assert!(rep.killed, "{rep:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(rep.child_exit, Some(libc::SIGKILL), "{rep:?}");
    assert!(rep.reaped, "{rep:?}");
    check_alive(&p, &errfile, rep.child_pid);
}

#[test]
fn no_such_process() {
    goprog::require_root();
    let mut out = Vec::new();
    assert!(snapshot_dump(i32::MAX - 1, &mut out, Duration::from_secs(1)).is_err());
}

fn get(addr: &str) -> std::io::Result<String> {
    goprog::http_get(addr, "/", Duration::from_secs(2))
}

/// An HTTP server answers during and after two dumps, with both toolchains; every parked
/// goroutine is in both dumps.
#[test]
fn http_server_keeps_answering() {
    goprog::require_root();
    for (v, go) in goprog::toolchains() {
        let hp = goprog::serveprog(&go, false);
        let dir = common::scratch_dir("snapshot-test", &format!("http-{v}"));
        let (p, errfile, addr) = goprog::serve(&hp, &dir, &["-n", "100", "-heap", "16"]);
        assert!(get(&addr).unwrap().ends_with("pong\n"));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (stop2, addr2) = (stop.clone(), addr.clone());
        let client = std::thread::spawn(move || {
            let mut n = 0;
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                let r = get(&addr2).expect("GET during the dumps");
                assert!(r.ends_with("pong\n"), "{r}");
                n += 1;
            }
            n
        });
        let (a, ra) = dump(p.pid());
        check_complete(&a, &ra);
        let (b, rb) = dump(p.pid());
        check_complete(&b, &rb);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let n = client.join().unwrap();
        assert!(n > 0);
        assert!(get(&addr).unwrap().ends_with("pong\n"));
        check_alive(&p, &errfile, rb.child_pid);
        // Handler goroutines come and go; the 100 parked in main.park stay.
        let (pa, pb) = (in_func(&a, "main.park("), in_func(&b, "main.park("));
        assert_eq!(pa.len(), 100, "{a}");
        assert_eq!(pa, pb);
        let missing: Vec<_> = parked(&a).difference(&parked(&b)).copied().collect();
        eprintln!(
            "go{v}: {n} GETs during two dumps (pauses {:?}, {:?}); parked in first not second: {missing:?}",
            ra.pause, rb.pause
        );
    }
}
