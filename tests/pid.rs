//! `gorescue pid` against real Go processes built by real toolchains (Debian's 1.19 and the
//! newest), with stderr wired to a file, a deleted file, a shared file, /dev/null, a pipe and
//! a pty; and the paths where nothing may be sent or the target must not be left stopped.

mod common;

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::goprog::{self, Proc, Stderr};
use common::*;

fn scratch(tag: &str) -> PathBuf {
    scratch_dir("pid-test", tag)
}

fn headers(dump: &[u8]) -> usize {
    String::from_utf8_lossy(dump)
        .lines()
        .filter(|l| l.starts_with("goroutine ") && l.ends_with(':'))
        .count()
}

/// Run `gorescue pid PID --yes --format json` and check the capture; returns the JSON.
fn capture(p: &mut Proc, dir: &std::path::Path, extra: &[&str], method: &str) -> serde_json::Value {
    let pid = p.pid().to_string();
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
    let out = gorescue()
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "gorescue {args:?}: {err}");
    // It said what it would do before doing it.
    assert!(
        err.contains("effect:     SIGQUIT ends the process"),
        "{err}"
    );
    assert!(err.contains(&format!("capture:    {method}")), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = &v["dumps"][0];
    assert_eq!(d["kind"], "sigquit");
    assert_eq!(d["complete"], true);
    assert_eq!(d["dump_time_source"], "capture");
    assert_eq!(d["capture"]["method"], method);
    assert_eq!(d["capture"]["pid"], p.pid());
    // The raw file: 0600, saved, and it holds every goroutine the JSON has.
    let raw = PathBuf::from(d["capture"]["raw_file"].as_str().unwrap());
    assert!(raw.starts_with(&save), "{raw:?}");
    let meta = std::fs::metadata(&raw).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let bytes = std::fs::read(&raw).unwrap();
    let n = d["goroutines"].as_array().unwrap().len();
    assert_eq!(headers(&bytes), n);
    assert!(n >= 30, "the wedge has about 35 goroutines, got {n}");
    assert!(
        err.contains(&format!(
            "saved the raw dump ({} bytes) to {}",
            bytes.len(),
            raw.display()
        )),
        "{err}"
    );
    // The target died of the dump, as said: exit status 2.
    let status = p.child.wait().unwrap();
    assert_eq!(status.code(), Some(2), "{status:?}");
    v
}

#[test]
fn stderr_to_a_file() {
    goprog::require_root();
    for (ver, go) in goprog::toolchains() {
        let bin = goprog::dumpprog(&go, false);
        let dir = scratch(&format!("file-{ver}"));
        let log = dir.join("app.log");
        std::fs::write(&log, b"earlier output\n").unwrap();
        let mut p = Proc::start(&bin, &["-mode", "wedge"], Stderr::File(log.clone()), &[]);
        let v = capture(&mut p, &dir, &[], "file");
        assert_eq!(v["dumps"][0]["capture"]["stderr"]["kind"], "file");
        // A save directory gorescue creates is 0700.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("save"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{ver}");
        // Only read: the file keeps its own copy of the dump, after what was there.
        let text = std::fs::read(&log).unwrap();
        assert!(
            text.starts_with(b"earlier output\nSIGQUIT: quit\n"),
            "{ver}"
        );
        let raw = std::fs::read(v["dumps"][0]["capture"]["raw_file"].as_str().unwrap()).unwrap();
        assert_eq!(
            &text[15..],
            &raw[..],
            "{ver}: the capture is the file's new bytes"
        );
    }
}

#[test]
fn stderr_to_a_deleted_file() {
    goprog::require_root();
    let (_, go) = goprog::toolchains().pop().unwrap();
    let bin = goprog::dumpprog(&go, false);
    let dir = scratch("deleted");
    // An existing save directory keeps its mode.
    std::fs::create_dir(dir.join("save")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("save"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = dir.join("gone.log");
    let mut p = Proc::start(&bin, &["-mode", "wedge"], Stderr::File(log.clone()), &[]);
    std::fs::remove_file(&log).unwrap();
    let pid = p.pid().to_string();
    let dry = gorescue()
        .args(["pid", &pid, "--dry-run"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&dry.stderr).contains("(deleted"),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    capture(&mut p, &dir, &[], "file");
    let mode = std::fs::metadata(dir.join("save"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
}

#[test]
fn stderr_to_a_file_shared_with_another_writer() {
    goprog::require_root();
    let (_, go) = goprog::toolchains().pop().unwrap();
    let bin = goprog::dumpprog(&go, false);
    let dir = scratch("shared");
    let log = dir.join("shared.log");
    std::fs::write(&log, b"").unwrap();
    // Another writer appending lines to the same file all along.
    let mut other = Command::new("sh")
        .arg("-c")
        .arg("while :; do echo other writer line; sleep 0.001; done")
        .stdout(std::fs::OpenOptions::new().append(true).open(&log).unwrap())
        .spawn()
        .unwrap();
    let mut p = Proc::start(&bin, &["-mode", "wedge"], Stderr::File(log.clone()), &[]);
    // Auto picks ptrace: the dump's bytes come clean, without the other writer's lines.
    let v = capture(&mut p, &dir, &[], "ptrace");
    let raw = std::fs::read(v["dumps"][0]["capture"]["raw_file"].as_str().unwrap()).unwrap();
    assert!(!String::from_utf8_lossy(&raw).contains("other writer"));
    // --via file reads the file, other lines and all, and still gets every goroutine.
    let mut p = Proc::start(&bin, &["-mode", "wedge"], Stderr::File(log.clone()), &[]);
    let v = capture(&mut p, &dir, &["--via", "file"], "file");
    assert!(v["dumps"][0]["goroutines"].as_array().unwrap().len() >= 30);
    other.kill().unwrap();
    other.wait().unwrap();
}

#[test]
fn stderr_to_dev_null() {
    goprog::require_root();
    for (ver, go) in goprog::toolchains() {
        let bin = goprog::dumpprog(&go, false);
        let dir = scratch(&format!("null-{ver}"));
        let mut p = Proc::start(&bin, &["-mode", "wedge"], Stderr::Null, &[]);
        let v = capture(&mut p, &dir, &[], "ptrace");
        assert_eq!(v["dumps"][0]["capture"]["stderr"]["kind"], "null");
        assert_eq!(v["dumps"][0]["capture"]["go_version"], format!("go{ver}"));
    }
}

#[test]
fn stderr_to_a_pipe_whose_reader_still_gets_the_dump() {
    goprog::require_root();
    let (_, go) = goprog::toolchains().pop().unwrap();
    let bin = goprog::dumpprog(&go, false);
    let dir = scratch("pipe");
    let mut p = Proc::start(&bin, &["-mode", "wedge"], Stderr::Pipe, &[]);
    let mut reader = p.stderr.take().unwrap();
    let drain = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = reader.read_to_end(&mut v);
        v
    });
    let v = capture(&mut p, &dir, &[], "ptrace");
    let got = drain.join().unwrap();
    let raw = std::fs::read(v["dumps"][0]["capture"]["raw_file"].as_str().unwrap()).unwrap();
    assert_eq!(got, raw, "the pipe's reader gets the same bytes");
}

#[test]
fn stderr_to_a_pty() {
    goprog::require_root();
    let (_, go) = goprog::toolchains().pop().unwrap();
    let bin = goprog::dumpprog(&go, false);
    let dir = scratch("pty");
    let pty = nix::pty::openpty(None, None).unwrap();
    let master = pty.master;
    let mut p = Proc::start(&bin, &["-mode", "wedge"], Stderr::Fd(pty.slave), &[]);
    let drain = std::thread::spawn(move || {
        let mut f = std::fs::File::from(master);
        let mut v = Vec::new();
        let mut buf = [0u8; 65536];
        while let Ok(n) = f.read(&mut buf) {
            if n == 0 {
                break;
            }
            v.extend_from_slice(&buf[..n]);
        }
        v
    });
    let v = capture(&mut p, &dir, &[], "ptrace");
    assert_eq!(v["dumps"][0]["capture"]["stderr"]["kind"], "tty");
    drop(p);
    let got = drain.join().unwrap();
    assert!(
        String::from_utf8_lossy(&got).contains("SIGQUIT: quit"),
        "the terminal got its copy"
    );
}

#[test]
fn stripped_binary() {
    goprog::require_root();
    let (ver, go) = goprog::toolchains().pop().unwrap();
    let bin = goprog::dumpprog(&go, true);
    let dir = scratch("stripped");
    let mut p = Proc::start(&bin, &["-mode", "wedge"], Stderr::Null, &[]);
    let v = capture(&mut p, &dir, &[], "ptrace");
    assert_eq!(v["dumps"][0]["capture"]["go_version"], format!("go{ver}"));
}

#[test]
fn nothing_is_sent_on_dry_run_or_without_confirmation() {
    goprog::require_root();
    let (ver, go) = goprog::toolchains().pop().unwrap();
    let bin = goprog::dumpprog(&go, false);
    let dir = scratch("nothing");
    let log = dir.join("app.log");
    let p = Proc::start(
        &bin,
        &["-mode", "wedge"],
        Stderr::File(log.clone()),
        &[("GOTRACEBACK", "crash")],
    );
    let pid = p.pid().to_string();
    let out = gorescue()
        .args(["pid", &pid, "--dry-run"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    for want in [
        &format!("process:    {pid} (dumpprog-")[..],
        &format!("go:         go{ver}, main module dumpprog"),
        &format!("stderr:     fd 2 is the file {}", log.display()),
        "GOTRACEBACK: crash",
        "aborts (exit status 134)",
        "capture:    file",
        "effect:     SIGQUIT ends the process",
        "dry run: nothing was sent",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    // --via journal needs a journal stream.
    let out = gorescue()
        .args(["pid", &pid, "--yes", "--via", "journal"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    let last = String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()
        .unwrap()
        .to_string();
    assert!(
        last.contains("--via journal needs fd 2 to be a journal stream"),
        "{last}"
    );
    // No terminal and no --yes: refused, nothing sent.
    let out = gorescue()
        .args(["pid", &pid])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    let last = String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()
        .unwrap()
        .to_string();
    assert!(
        last.starts_with("gorescue: not sending SIGQUIT without confirmation"),
        "{last}"
    );
    assert!(last.contains("--yes"));
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        matches!(p.state(), Some('S' | 'R')),
        "still running, untouched: {:?}",
        p.state()
    );
    assert_eq!(p.tracer(), Some(0));
    assert_eq!(std::fs::read(&log).unwrap(), b"", "nothing was printed");
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/fd/2")).unwrap(),
        log
    );
}

#[test]
fn refuses_a_non_go_process_and_a_missing_one() {
    goprog::require_root();
    let mut sleeper = Command::new("sleep").arg("1000").spawn().unwrap();
    let pid = sleeper.id().to_string();
    let out = gorescue().args(["pid", &pid, "--yes"]).output().unwrap();
    assert_eq!(out.status.code(), Some(7));
    let last = String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()
        .unwrap()
        .to_string();
    assert!(
        last.contains("does not look like a Go program") && last.contains("--force"),
        "{last}"
    );
    assert!(
        sleeper.try_wait().unwrap().is_none(),
        "the sleeper is still alive"
    );
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    // A PID that does not exist.
    let out = gorescue()
        .args(["pid", "999999999", "--yes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.starts_with("gorescue: no such process: PID 999999999"),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1);
}

/// Start a capture of a 20,000-goroutine process, kill gorescue with `sig` while it runs;
/// the target must never be left stopped or traced.
fn interrupted_during_capture(sig: i32) {
    let (_, go) = goprog::toolchains().pop().unwrap();
    let bin = goprog::dumpprog(&go, false);
    let dir = scratch(&format!("intr-{sig}"));
    let mut p = Proc::start(&bin, &["-mode", "many", "-n", "20000"], Stderr::Null, &[]);
    let pid = p.pid().to_string();
    let mut g = gorescue()
        .args(["pid", &pid, "--yes", "--save-dir", dir.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until gorescue has said it sent the signal, then hit it.
    let mut err = g.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("sent SIGQUIT") {
        let n = err.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "gorescue ended early: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    unsafe { libc::kill(g.id() as i32, sig) };
    let st = g.wait().unwrap();
    // The target goes on dumping and exits by itself, neither stopped nor traced.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = p.child.try_wait().unwrap() {
            assert_eq!(s.code(), Some(2), "{s:?}");
            break;
        }
        assert_ne!(p.state(), Some('t'), "left in a tracing stop");
        assert_ne!(p.state(), Some('T'), "left stopped");
        assert_eq!(p.tracer(), Some(0), "left traced");
        assert!(
            Instant::now() < deadline,
            "the target did not finish its dump"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    if sig == libc::SIGKILL {
        assert_eq!(st.signal(), Some(libc::SIGKILL));
    } else {
        assert_eq!(st.code(), Some(9), "interrupted has its own exit code");
    }
}

#[test]
fn sigkill_during_capture_never_leaves_the_target_stopped() {
    goprog::require_root();
    interrupted_during_capture(libc::SIGKILL);
}

#[test]
fn sigint_during_capture_never_leaves_the_target_stopped() {
    goprog::require_root();
    interrupted_during_capture(libc::SIGINT);
}

#[test]
fn ctrl_c_at_the_prompt_leaves_the_target_untouched() {
    goprog::require_root();
    let (_, go) = goprog::toolchains().pop().unwrap();
    let bin = goprog::dumpprog(&go, false);
    let p = Proc::start(&bin, &["-mode", "wedge"], Stderr::Null, &[]);
    let pid = p.pid().to_string();
    // gorescue on a terminal, so that it asks.
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = std::fs::File::from(pty.slave);
    let mut g = gorescue()
        .args(["pid", &pid])
        .stdin(slave.try_clone().unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = g.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("[y/N]") {
        let n = err.read(&mut buf).unwrap();
        assert!(n > 0, "no prompt: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    unsafe { libc::kill(g.id() as i32, libc::SIGINT) };
    let st = g.wait().unwrap();
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert_eq!(st.code(), Some(9), "{rest}");
    assert!(rest.contains("nothing was sent"), "{rest}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(p.state(), Some('S'));
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/fd/2")).unwrap(),
        PathBuf::from("/dev/null")
    );
    drop(pty.master);
}

#[test]
fn keep_running_takes_two_dumps_and_the_process_runs_on() {
    goprog::require_root();
    for (ver, go) in goprog::toolchains() {
        let bin = goprog::dumpprog(&go, false);
        let dir = scratch(&format!("keep-{ver}"));
        let log = dir.join("own-stderr.log");
        let mut p = Proc::start(&bin, &["-mode", "wedge"], Stderr::File(log.clone()), &[]);
        let pid = p.pid().to_string();
        let save = dir.join("save");
        let dry = gorescue()
            .args(["pid", &pid, "--keep-running", "--dry-run"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&dry.stderr);
        assert!(
            err.contains("capture:    snapshot") && err.contains("the process keeps running"),
            "{err}"
        );
        let mut ids = Vec::new();
        for _ in 0..2 {
            let out = gorescue()
                .args([
                    "pid",
                    &pid,
                    "--keep-running",
                    "--yes",
                    "--format",
                    "json",
                    "--save-dir",
                    save.to_str().unwrap(),
                ])
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{ver}: {err}");
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let d = &v["dumps"][0];
            assert_eq!(d["complete"], true, "{ver}");
            assert_eq!(d["capture"]["method"], "snapshot");
            assert!(d["capture"]["pause_ms"].as_f64().unwrap() > 0.0);
            let mut g: Vec<u64> = d["goroutines"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|g| g["state"] != "running" && g["state"] != "runnable" && g["id"] != 0)
                .map(|g| g["id"].as_u64().unwrap())
                .collect();
            g.sort();
            ids.push(g);
            // Still running, not traced, and its own stderr got nothing.
            assert!(
                p.child.try_wait().unwrap().is_none(),
                "{ver}: the process ended"
            );
            assert!(
                matches!(p.state(), Some('S' | 'R')),
                "{ver}: {:?}",
                p.state()
            );
            assert_eq!(p.tracer(), Some(0));
            assert_eq!(std::fs::read(&log).unwrap(), b"", "{ver}");
            // No zombie left behind in the target.
            let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .unwrap_or_default();
            assert!(
                children.trim().is_empty(),
                "{ver}: children left: {children}"
            );
        }
        assert_eq!(
            ids[0], ids[1],
            "{ver}: the same parked goroutines in both dumps"
        );
        assert!(ids[0].len() >= 25);
    }
}
