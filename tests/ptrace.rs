//! The ptrace capture on real Go processes (tests/goprog built with Debian's Go 1.19 and the
//! newest toolchain): freeze, redirect fd 2, signal, capture; and that the target is left
//! exactly as it was when nothing is sent. Needs root: these tests FAIL when not run as root.
//!
//! `cargo test --release --test ptrace -- --ignored --nocapture bench` prints the benchmark
//! figures (see benches/ptrace_capture.sh).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use std::time::{Duration, Instant};

mod common;

use gorescue::capture::pidfd::PidFd;
use gorescue::capture::ptrace::{self, Tracee};

const GO_OLD: &str = "/usr/lib/go-1.19/bin/go";
const GO_NEW_VERSION: &str = "1.27.3";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn work() -> PathBuf {
    let d = root().join("target/ptrace-test");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the ptrace tests need root (ptrace, pidfd_getfd); run them as root"
    );
}

fn go_new() -> PathBuf {
    root().join(format!("target/go/{GO_NEW_VERSION}/go/bin/go"))
}

/// tests/goprog built with `go` (once per test binary, see tests/common/goprog.rs).
fn dumpprog(go: &Path) -> PathBuf {
    common::goprog::dumpprog(go, false)
}

/// Where the child's stderr goes.
enum Err2 {
    DevNull,
    File(PathBuf),
    Pipe,
}

/// A running dumpprog; killed in Drop.
struct Proc {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    /// The read end of the stderr pipe, when stderr is a pipe.
    stderr: Option<std::process::ChildStderr>,
}

impl Proc {
    fn start(bin: &Path, args: &[&str], err: Err2) -> Proc {
        let mut c = Command::new(bin);
        c.args(args).stdin(Stdio::null()).stdout(Stdio::piped());
        match err {
            Err2::DevNull => c.stderr(Stdio::null()),
            Err2::File(p) => c.stderr(File::create(p).unwrap()),
            Err2::Pipe => c.stderr(Stdio::piped()),
        };
        let mut child = c.spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let stderr = child.stderr.take();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "dumpprog did not get ready");
        Proc {
            child,
            _stdout: stdout,
            stderr,
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn wait_code(&mut self) -> Option<i32> {
        self.child.wait().unwrap().code()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fd_link(pid: i32, fd: i32) -> String {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn fds(pid: i32) -> Vec<i32> {
    let mut v: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    v.sort();
    v
}

/// Process state letter of every thread, and the TracerPid of the process.
fn states(pid: i32) -> (Vec<char>, i32) {
    let mut st = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let e = e.unwrap();
        if let Ok(s) = std::fs::read_to_string(e.path().join("stat")) {
            let i = s.rfind(')').unwrap();
            st.push(s[i + 1..].trim_start().chars().next().unwrap());
        }
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let tracer = status
        .lines()
        .find_map(|l| l.strip_prefix("TracerPid:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (st, tracer)
}

fn assert_running_untraced(pid: i32) {
    // Give the threads a moment to go back to sleep after the detach.
    std::thread::sleep(Duration::from_millis(50));
    let (st, tracer) = states(pid);
    assert_eq!(tracer, 0, "process {pid} still traced");
    assert!(
        st.iter().all(|c| matches!(c, 'S' | 'R')),
        "process {pid} has threads in states {st:?} (want only S/R, no t/T)"
    );
}

/// How many distinct goroutines (by id, leaving out goroutine 0: the idle g0 of the thread
/// that took the signal, there or not depending on which thread that was) the dump has.
fn headers(dump: &str) -> usize {
    let ids: std::collections::BTreeSet<u64> = dump
        .lines()
        .filter(|l| l.starts_with("goroutine ") && l.ends_with(':') && l.contains(" ["))
        .filter_map(|l| l.split(' ').nth(1)?.parse::<u64>().ok())
        .filter(|&id| id != 0)
        .collect();
    ids.len()
}

fn assert_complete(dump: &str, what: &str) {
    assert!(
        dump.starts_with("SIGQUIT: quit\n"),
        "{what}: dump does not start with 'SIGQUIT: quit': {:?}",
        &dump[..dump.len().min(200)]
    );
    let last = dump.trim_end().lines().last().unwrap_or("");
    assert!(
        last.starts_with("gs ") && last.contains("0x"),
        "{what}: dump does not end with the gs register line: {last:?}"
    );
}

/// The same program with stderr to a file, dumped the ordinary way: how many goroutine
/// headers a complete dump has.
fn reference_count(bin: &Path, args: &[&str], tag: &str) -> usize {
    let path = work().join(format!("reference-{tag}-{}.txt", std::process::id()));
    let mut p = Proc::start(bin, args, Err2::File(path.clone()));
    // SAFETY: kill on our own child.
    unsafe { libc::kill(p.pid(), libc::SIGQUIT) };
    assert_eq!(p.wait_code(), Some(2));
    let dump = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_complete(&dump, "reference");
    headers(&dump)
}

/// The capture as the lead's flow runs it, into a file gorescue created (0600).
/// Returns the time from the signal to the exit, and the time of the whole flow.
fn capture_to_file(pid: i32, out: &Path) -> (Duration, Duration) {
    let t0 = Instant::now();
    {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(out)
            .unwrap();
        drop(f);
    }
    let pidfd = PidFd::open(pid).unwrap();
    let mut t = Tracee::seize_pidfd(&pidfd, ptrace::DEFAULT_STOP_TIMEOUT).unwrap();
    let r = t.redirect_fd(2, out).unwrap();
    assert_eq!(fd_link(pid, 2), out.to_string_lossy());
    // Signal while every thread is still stopped, then let go: the redirect-but-no-signal
    // window is a few microseconds with the process frozen.
    let ts = Instant::now();
    pidfd.send_signal(libc::SIGQUIT).unwrap();
    r.keep(&mut t);
    t.detach().unwrap();
    if std::env::var_os("GORESCUE_BENCH_N").is_some() {
        println!(
            "  create file + seize + redirect: {:.3} ms; then signal + detach: {:.3} ms",
            (ts - t0).as_secs_f64() * 1e3,
            ts.elapsed().as_secs_f64() * 1e3
        );
    }
    assert!(pidfd.wait_exit(Some(Duration::from_secs(300))).unwrap());
    (ts.elapsed(), t0.elapsed())
}

use std::os::unix::fs::OpenOptionsExt;

fn capture_wedge_into_file(go: &Path, err: Err2, tag: &str) {
    require_root();
    let bin = dumpprog(go);
    let want = reference_count(&bin, &["-mode", "wedge"], tag);
    let pipe = matches!(err, Err2::Pipe);
    let mut p = Proc::start(&bin, &["-mode", "wedge"], err);
    let before = fd_link(p.pid(), 2);
    // The original stderr, as the lead's flow keeps it to give the reader its copy.
    let pidfd = PidFd::open(p.pid()).unwrap();
    let original = pidfd.getfd(2).unwrap();
    let reader = p.stderr.take().map(|mut e| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            v
        })
    });
    let out = work().join(format!("capture-{tag}-{}.txt", std::process::id()));
    let _ = std::fs::remove_file(&out);
    capture_to_file(p.pid(), &out);
    assert_eq!(p.wait_code(), Some(2), "SIGQUIT exit status");
    let dump = std::fs::read_to_string(&out).unwrap();
    assert_complete(&dump, tag);
    assert_eq!(headers(&dump), want, "{tag}: goroutine count");
    // Hand the original reader its copy.
    let mut orig = File::from(original);
    orig.write_all(dump.as_bytes()).unwrap();
    drop(orig);
    if let Some(r) = reader {
        let got = r.join().unwrap();
        assert!(pipe);
        assert_eq!(got, dump.as_bytes(), "{tag}: the pipe reader got its copy");
    } else {
        assert_eq!(before, "/dev/null");
    }
    let meta = std::fs::metadata(&out).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let _ = std::fs::remove_file(&out);
}

#[test]
fn wedge_devnull_go119() {
    capture_wedge_into_file(Path::new(GO_OLD), Err2::DevNull, "devnull-119");
}

#[test]
fn wedge_devnull_newest() {
    capture_wedge_into_file(&go_new(), Err2::DevNull, "devnull-new");
}

#[test]
fn wedge_pipe_go119() {
    capture_wedge_into_file(Path::new(GO_OLD), Err2::Pipe, "pipe-119");
}

#[test]
fn wedge_pipe_newest() {
    capture_wedge_into_file(&go_new(), Err2::Pipe, "pipe-new");
}

/// The memfd sink, drained while the runtime writes.
fn capture_memfd(pid: i32) -> (Vec<u8>, Duration) {
    let pidfd = PidFd::open(pid).unwrap();
    let mut t = Tracee::seize_pidfd(&pidfd, ptrace::DEFAULT_STOP_TIMEOUT).unwrap();
    let (r, mut sink) = t.redirect_fd_to_memfd(2, "gorescue").unwrap();
    assert!(
        fd_link(pid, 2).starts_with("/memfd:gorescue"),
        "{}",
        fd_link(pid, 2)
    );
    let ts = Instant::now();
    pidfd.send_signal(libc::SIGQUIT).unwrap();
    r.keep(&mut t);
    t.detach().unwrap();
    let mut out = Vec::new();
    loop {
        sink.drain(&mut out).unwrap();
        if pidfd.wait_exit(Some(Duration::from_millis(20))).unwrap() {
            sink.drain(&mut out).unwrap();
            break;
        }
        assert!(ts.elapsed() < Duration::from_secs(300));
    }
    (out, ts.elapsed())
}

fn memfd_wedge(go: &Path, tag: &str) {
    require_root();
    let bin = dumpprog(go);
    let want = reference_count(&bin, &["-mode", "wedge"], tag);
    let mut p = Proc::start(&bin, &["-mode", "wedge"], Err2::DevNull);
    let (out, _) = capture_memfd(p.pid());
    assert_eq!(p.wait_code(), Some(2));
    let dump = String::from_utf8(out).unwrap();
    assert_complete(&dump, tag);
    assert_eq!(headers(&dump), want, "{tag}: goroutine count");
}

#[test]
fn wedge_memfd_go119() {
    memfd_wedge(Path::new(GO_OLD), "memfd-119");
}

#[test]
fn wedge_memfd_newest() {
    memfd_wedge(&go_new(), "memfd-new");
}

#[test]
fn many_10000_file_and_memfd() {
    require_root();
    let bin = dumpprog(&go_new());
    let args = ["-mode", "many", "-n", "10000"];
    let want = reference_count(&bin, &args, "many-ref");
    assert!(want > 10000, "{want}");

    let mut p = Proc::start(&bin, &args, Err2::DevNull);
    let out = work().join(format!("capture-many-{}.txt", std::process::id()));
    let _ = std::fs::remove_file(&out);
    capture_to_file(p.pid(), &out);
    assert_eq!(p.wait_code(), Some(2));
    let dump = std::fs::read_to_string(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    assert_complete(&dump, "many file");
    assert_eq!(headers(&dump), want);

    let mut p = Proc::start(&bin, &args, Err2::DevNull);
    let (out, _) = capture_memfd(p.pid());
    assert_eq!(p.wait_code(), Some(2));
    let dump = String::from_utf8(out).unwrap();
    assert_complete(&dump, "many memfd");
    assert_eq!(headers(&dump), want);
}

/// Seize, redirect, restore, detach: nothing changed, the process runs on, and a later
/// ordinary SIGQUIT still dumps into its own stderr file.
fn untouched(go: &Path, tag: &str) {
    require_root();
    let bin = dumpprog(go);
    let errfile = work().join(format!("untouched-{tag}-{}.txt", std::process::id()));
    let mut p = Proc::start(&bin, &["-mode", "wedge"], Err2::File(errfile.clone()));
    let pid = p.pid();
    let link = fd_link(pid, 2);
    let fds_before = fds(pid);
    assert_running_untraced(pid);
    for round in 0..3 {
        let mut t = Tracee::seize(pid).unwrap();
        assert!(t.thread_count() >= 2);
        let (st, tracer) = states(pid);
        assert!(st.iter().all(|&c| c == 't'), "frozen: {st:?}");
        // TracerPid is the tracing thread.
        // SAFETY: gettid has no preconditions.
        assert_eq!(tracer, unsafe { libc::gettid() });
        let sink = work().join(format!("untouched-sink-{tag}-{}", std::process::id()));
        File::create(&sink).unwrap();
        match round {
            // explicit restore
            0 => {
                let r = t.redirect_fd(2, &sink).unwrap();
                assert_eq!(fd_link(pid, 2), sink.to_string_lossy());
                r.restore(&mut t).unwrap();
                t.detach().unwrap();
            }
            // Drop undoes it (the Ctrl-C-before-the-signal path)
            1 => {
                let (_r, _m) = t.redirect_fd_to_memfd(2, "gorescue").unwrap();
                drop(t);
            }
            // a redirect that fails half-way (no such file): everything undone
            _ => {
                let e = t
                    .redirect_fd(2, Path::new("/nonexistent/gorescue/x"))
                    .unwrap_err();
                assert!(e.to_string().contains("openat"), "{e}");
                drop(t);
            }
        }
        let _ = std::fs::remove_file(&sink);
        assert_eq!(fd_link(pid, 2), link, "{tag} round {round}: fd 2");
        assert_eq!(fds(pid), fds_before, "{tag} round {round}: fds");
        assert_running_untraced(pid);
    }
    // The process still works and still dumps where it always did.
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: kill on our own child.
    unsafe { libc::kill(pid, libc::SIGQUIT) };
    assert_eq!(p.wait_code(), Some(2));
    let dump = std::fs::read_to_string(&errfile).unwrap();
    let _ = std::fs::remove_file(&errfile);
    assert_complete(&dump, tag);
}

#[test]
fn untouched_go119() {
    untouched(Path::new(GO_OLD), "119");
}

#[test]
fn untouched_newest() {
    untouched(&go_new(), "new");
}

#[test]
fn seize_gone_process_errors_cleanly() {
    require_root();
    // No such process.
    let e = Tracee::seize(0x3fff_fff0).unwrap_err();
    assert!(matches!(e, ptrace::Error::Gone { .. }), "{e}");
    // A zombie.
    let mut c = Command::new("true").spawn().unwrap();
    let pid = c.id() as i32;
    std::thread::sleep(Duration::from_millis(100));
    let e = Tracee::seize(pid).unwrap_err();
    assert!(matches!(e, ptrace::Error::Gone { .. }), "{e}");
    c.wait().unwrap();
    // Processes that exit while being seized: either a clean seize or a clean Gone.
    let bin = dumpprog(&go_new());
    let (mut ok, mut gone) = (0, 0);
    for i in 0..40u64 {
        let mut c = Command::new(&bin)
            .args(["-mode", "panic"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = c.id() as i32;
        std::thread::sleep(Duration::from_micros(200 * (i % 20)));
        match Tracee::seize(pid) {
            Ok(mut t) => {
                ok += 1;
                let _ = t.redirect_fd_to_memfd(2, "gorescue");
                drop(t);
            }
            Err(ptrace::Error::Gone { .. }) => gone += 1,
            Err(e) => panic!("seize of an exiting process: {e}"),
        }
        let st = c.wait().unwrap();
        assert!(st.code().is_some() || st.signal().is_some());
    }
    eprintln!("exiting processes: {ok} seized, {gone} gone");
}

use std::os::unix::process::ExitStatusExt;

#[test]
fn not_root_is_refused_cleanly() {
    require_root();
    // A child that drops to nobody and tries to seize this (root) test process.
    let me = std::process::id();
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([
            "--exact",
            "seize_as_nobody_helper",
            "--nocapture",
            "--ignored",
        ])
        .env("GORESCUE_SEIZE_TARGET", me.to_string())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("not permitted"), "{text}");
}

#[test]
#[ignore = "helper for not_root_is_refused_cleanly"]
fn seize_as_nobody_helper() {
    let Ok(target) = std::env::var("GORESCUE_SEIZE_TARGET") else {
        return;
    };
    // SAFETY: setgid/setuid with constant ids.
    unsafe {
        assert_eq!(libc::setgid(65534), 0);
        assert_eq!(libc::setuid(65534), 0);
    }
    let e = Tracee::seize(target.parse().unwrap()).unwrap_err();
    println!("{e}");
}

/// Benchmark (not a test: figures are printed, not asserted). For -mode many -n 10000 and
/// 100000 with stderr to /dev/null: the untraced time from kill -QUIT to exit, and the time of
/// seize + redirect + signal + exit through the ptrace capture (file and memfd sinks).
#[test]
#[ignore = "benchmark; run benches/ptrace_capture.sh"]
fn bench_capture() {
    require_root();
    let bin = dumpprog(&go_new());
    let ns: Vec<u64> = std::env::var("GORESCUE_BENCH_N")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    for n in ns {
        let ns = n.to_string();
        let args = ["-mode", "many", "-n", ns.as_str()];
        // Untraced.
        let mut p = Proc::start(&bin, &args, Err2::DevNull);
        let t0 = Instant::now();
        // SAFETY: kill on our own child.
        unsafe { libc::kill(p.pid(), libc::SIGQUIT) };
        assert_eq!(p.wait_code(), Some(2));
        let base = t0.elapsed();
        // Untraced, with stderr to a file (what the capture-from-file method costs).
        let direct = work().join(format!("bench-direct-{n}-{}.txt", std::process::id()));
        let mut p = Proc::start(&bin, &args, Err2::File(direct.clone()));
        let t0 = Instant::now();
        // SAFETY: kill on our own child.
        unsafe { libc::kill(p.pid(), libc::SIGQUIT) };
        assert_eq!(p.wait_code(), Some(2));
        let base_file = t0.elapsed();
        let _ = std::fs::remove_file(&direct);
        // Into a file.
        let mut p = Proc::start(&bin, &args, Err2::DevNull);
        let out = work().join(format!("bench-{n}-{}.txt", std::process::id()));
        let _ = std::fs::remove_file(&out);
        let (_sig, whole) = capture_to_file(p.pid(), &out);
        assert_eq!(p.wait_code(), Some(2));
        let dump = std::fs::read(&out).unwrap();
        let _ = std::fs::remove_file(&out);
        let count = headers(&String::from_utf8_lossy(&dump));
        // Into a memfd, drained.
        let mut p = Proc::start(&bin, &args, Err2::DevNull);
        let t1 = Instant::now();
        let (mdump, _) = capture_memfd(p.pid());
        let mwhole = t1.elapsed();
        assert_eq!(p.wait_code(), Some(2));
        let mcount = headers(&String::from_utf8_lossy(&mdump));
        println!(
            "n={n}: untraced kill->exit, stderr to a file: {:.3}s",
            base_file.as_secs_f64()
        );
        println!(
            "n={n}: untraced kill->exit {:.3}s | ptrace file: {:.3}s ({:.2}x), {} bytes, {count} goroutines | ptrace memfd: {:.3}s ({:.2}x), {} bytes, {mcount} goroutines",
            base.as_secs_f64(),
            whole.as_secs_f64(),
            whole.as_secs_f64() / base.as_secs_f64(),
            dump.len(),
            mwhole.as_secs_f64(),
            mwhole.as_secs_f64() / base.as_secs_f64(),
            mdump.len(),
        );
        assert!(count as u64 > n && mcount as u64 > n);
    }
}

/// Round trip of injections on a single-threaded process, then detach.
fn redirect_and_restore(pid: i32) {
    let mut t = Tracee::seize(pid).unwrap();
    let (r, _sink) = t.redirect_fd_to_memfd(2, "gorescue").unwrap();
    r.restore(&mut t).unwrap();
    t.detach().unwrap();
}

/// The injected thread was blocked in a syscall: after the registers are put back the syscall
/// must restart as if nothing happened (no -ERESTARTSYS leaking out as a result).
#[test]
fn interrupted_syscalls_restart() {
    require_root();
    // read(2) on a pipe (-ERESTARTSYS): cat must still copy its input.
    let mut cat = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let link = fd_link(cat.id() as i32, 2);
    for _ in 0..3 {
        redirect_and_restore(cat.id() as i32);
    }
    assert_eq!(fd_link(cat.id() as i32, 2), link);
    assert_running_untraced(cat.id() as i32);
    let mut input = cat.stdin.take().unwrap();
    input.write_all(b"still reading\n").unwrap();
    drop(input);
    let out = cat.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "cat: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"still reading\n");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // nanosleep (-ERESTART_RESTARTBLOCK): sleep must still sleep its time and succeed.
    let t0 = Instant::now();
    let mut sleep = Command::new("sleep")
        .arg("1.5")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    redirect_and_restore(sleep.id() as i32);
    let st = sleep.wait().unwrap();
    let took = t0.elapsed();
    assert!(st.success(), "sleep failed after the injection: {st:?}");
    assert!(
        took >= Duration::from_millis(1450) && took < Duration::from_millis(3000),
        "sleep 1.5 took {took:?}"
    );
}

/// A signal that arrives while the process is frozen is not lost: it reaches the target
/// after the detach. Go: SIGQUIT sent before the redirect is set up still produces the dump,
/// and in the new destination (the thread that took it was parked in its signal-delivery
/// stop and the injection moved to another thread).
#[test]
fn signal_pending_while_frozen_go() {
    require_root();
    let bin = dumpprog(&go_new());
    let mut p = Proc::start(&bin, &["-mode", "wedge"], Err2::DevNull);
    let pidfd = PidFd::open(p.pid()).unwrap();
    let mut t = Tracee::seize_pidfd(&pidfd, ptrace::DEFAULT_STOP_TIMEOUT).unwrap();
    pidfd.send_signal(libc::SIGQUIT).unwrap();
    let (r, mut sink) = t.redirect_fd_to_memfd(2, "gorescue").unwrap();
    r.keep(&mut t);
    t.detach().unwrap();
    assert!(pidfd.wait_exit(Some(Duration::from_secs(60))).unwrap());
    assert_eq!(p.wait_code(), Some(2));
    let mut out = Vec::new();
    sink.drain(&mut out).unwrap();
    assert_complete(&String::from_utf8_lossy(&out), "pending SIGQUIT");
}

/// The same with a single-threaded target, where the only thread is the one that has the
/// signal: it is used for the injection and the signal is sent again before the detach.
#[test]
fn signal_pending_while_frozen_single_thread() {
    require_root();
    let script = "import signal,sys,time\n\
                  signal.signal(signal.SIGUSR1, lambda *a: print('got', flush=True))\n\
                  print('ready', flush=True)\n\
                  while True: time.sleep(10)\n";
    let mut c = Command::new("python3")
        .args(["-c", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = c.id() as i32;
    let mut lines = BufReader::new(c.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let mut t = Tracee::seize(pid).unwrap();
    assert_eq!(t.thread_count(), 1);
    // SAFETY: kill on our own child.
    unsafe { libc::kill(pid, libc::SIGUSR1) };
    let (r, _sink) = t.redirect_fd_to_memfd(2, "gorescue").unwrap();
    r.restore(&mut t).unwrap();
    t.detach().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(lines.next().map(|l| l.unwrap()));
    });
    let got = rx.recv_timeout(Duration::from_secs(5));
    let _ = c.kill();
    let _ = c.wait();
    assert_eq!(
        got.ok().flatten().as_deref(),
        Some("got"),
        "SIGUSR1 was lost"
    );
}

/// gorescue SIGKILLed after the redirect and before any signal: the kernel detaches, the target
/// runs on (not stopped, not traced) with fd 2 still redirected and its original stderr in the
/// saved descriptor, from which a later Tracee can restore it.
#[test]
fn tracer_killed_after_redirect() {
    require_root();
    let bin = dumpprog(&go_new());
    let mut p = Proc::start(&bin, &["-mode", "wedge"], Err2::DevNull);
    let pid = p.pid();
    let sink = work().join(format!("killed-sink-{}", std::process::id()));
    File::create(&sink).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut helper = Command::new(exe)
        .args([
            "--exact",
            "redirect_then_hang_helper",
            "--nocapture",
            "--ignored",
        ])
        .env("GORESCUE_REDIRECT_TARGET", pid.to_string())
        .env("GORESCUE_REDIRECT_SINK", &sink)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut saved = None;
    for line in BufReader::new(helper.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(s) = line.strip_prefix("saved=") {
            saved = Some(s.parse::<i32>().unwrap());
            break;
        }
    }
    let saved = saved.expect("helper did not redirect");
    helper.kill().unwrap();
    helper.wait().unwrap();
    assert_running_untraced(pid);
    assert_eq!(fd_link(pid, 2), sink.to_string_lossy());
    assert_eq!(fd_link(pid, saved), "/dev/null");
    // Undo it from a new tracee.
    let mut t = Tracee::seize(pid).unwrap();
    let r = ptrace::Redirect {
        fd: 2,
        saved_fd: saved,
        cloexec: false,
    };
    r.restore(&mut t).unwrap();
    t.detach().unwrap();
    assert_eq!(fd_link(pid, 2), "/dev/null");
    assert!(!fds(pid).contains(&saved));
    assert_running_untraced(pid);
    let _ = std::fs::remove_file(&sink);
    // SAFETY: kill on our own child.
    unsafe { libc::kill(pid, libc::SIGQUIT) };
    assert_eq!(p.wait_code(), Some(2));
}

#[test]
#[ignore = "helper for tracer_killed_after_redirect"]
fn redirect_then_hang_helper() {
    let (Ok(pid), Ok(sink)) = (
        std::env::var("GORESCUE_REDIRECT_TARGET"),
        std::env::var("GORESCUE_REDIRECT_SINK"),
    ) else {
        return;
    };
    let mut t = Tracee::seize(pid.parse().unwrap()).unwrap();
    let r = t.redirect_fd(2, Path::new(&sink)).unwrap();
    println!("saved={}", r.saved_fd);
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(60));
    drop(t);
}

/// A thread stopped in user code (a busy loop, not in a syscall): the syscall instruction is
/// found by scanning the vDSO / executable mappings, and the loop goes on afterwards.
#[test]
fn busy_thread_uses_scanned_instruction() {
    require_root();
    let mut c = Command::new("sh")
        .args(["-c", "while :; do :; done"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = c.id() as i32;
    std::thread::sleep(Duration::from_millis(100));
    let link = fd_link(pid, 2);
    for _ in 0..5 {
        redirect_and_restore(pid);
    }
    assert_eq!(fd_link(pid, 2), link);
    std::thread::sleep(Duration::from_millis(50));
    let (st, tracer) = states(pid);
    assert_eq!(tracer, 0);
    assert_eq!(st, vec!['R'], "the loop should still be running");
    c.kill().unwrap();
    c.wait().unwrap();
}
