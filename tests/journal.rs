//! `gorescue journal NAME` against a real journald: a systemd booted in a private namespace
//! (tests/common/systemd.rs), transient services started with systemd-run, real Go programs
//! (tests/goprog) dumping into the journal. gorescue runs inside the namespace, where that
//! journald's files are.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, FixedOffset};
use common::goprog;
use common::systemd::{SystemdNs, eventually, scratch};
use gorescue::capture::journal::{Filter, Journal, LineJoiner};

fn dumpprog() -> PathBuf {
    let (_, go) = goprog::toolchains().pop().unwrap();
    goprog::dumpprog(&go, false)
}

/// Run gorescue inside the namespace.
fn gorescue(ns: &SystemdNs, args: &[&str]) -> Output {
    ns.command(env!("CARGO_BIN_EXE_gorescue"))
        .args(args)
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn gorescue_ok(ns: &SystemdNs, args: &[&str]) -> Vec<u8> {
    let o = gorescue(ns, args);
    assert!(
        o.status.success(),
        "gorescue {args:?} failed ({}): {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

fn json(ns: &SystemdNs, args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.extend(["--format", "json"]);
    let out = gorescue_ok(ns, &a);
    serde_json::from_slice(&out).unwrap_or_else(|e| {
        panic!(
            "invalid JSON from gorescue {a:?}: {e}: {}",
            String::from_utf8_lossy(&out)
        )
    })
}

/// The unit's messages, as journalctl prints them with `-o cat`.
fn journal_text(ns: &SystemdNs, unit: &str) -> String {
    ns.run_ok(&["journalctl", "-q", "--no-pager", "-u", unit, "-o", "cat"])
}

/// Wait until the unit has logged `line`.
fn wait_for_line(ns: &SystemdNs, unit: &str, line: &str) {
    eventually(&format!("{unit} to log {line:?}"), || {
        journal_text(ns, unit)
            .lines()
            .any(|l| l == line)
            .then_some(())
    });
}

/// Wait until the unit's main process has gone (it has written everything).
fn wait_stopped(ns: &SystemdNs, unit: &str) {
    eventually(&format!("{unit} to stop"), || {
        let s = ns.show(unit, "ActiveState");
        (s != "active" && s != "deactivating" && s != "activating").then_some(())
    });
}

/// `--list --format json` once it shows `n` complete dumps (journald may still be writing).
fn wait_list(ns: &SystemdNs, unit: &str, n: usize) -> Vec<serde_json::Value> {
    eventually(
        &format!("{n} complete dumps of {unit} in the journal"),
        || {
            let o = gorescue(ns, &["journal", unit, "--list", "--format", "json"]);
            if !o.status.success() {
                return None;
            }
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
            let list = v.as_array()?.clone();
            (list.len() == n && list.iter().all(|d| d["complete"] == true)).then_some(list)
        },
    )
}

fn time(v: &serde_json::Value) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(v.as_str().expect("a time")).unwrap()
}

fn now() -> DateTime<FixedOffset> {
    DateTime::<chrono::Utc>::from(SystemTime::now()).fixed_offset()
}

fn start_wedge(ns: &SystemdNs, unit: &str, extra: &[&str]) {
    let prog = dumpprog();
    let mut args = vec!["systemd-run", "-q"];
    let u = format!("--unit={unit}");
    args.push(&u);
    args.extend_from_slice(extra);
    args.extend([prog.to_str().unwrap(), "-mode", "wedge"]);
    ns.run_ok(&args);
    wait_for_line(ns, unit, "ready");
}

/// SIGQUIT through systemd; returns the host time just before.
fn quit(ns: &SystemdNs, unit: &str) -> DateTime<FixedOffset> {
    let t = now();
    ns.run_ok(&["systemctl", "kill", "-s", "QUIT", unit]);
    t
}

#[test]
fn sigquit_dump_read_whole_from_the_journal() {
    let ns = SystemdNs::boot();
    start_wedge(&ns, "wedge1", &[]);
    let pid = ns.main_pid("wedge1.service");
    let invocation = ns.show("wedge1.service", "InvocationID");
    let before = quit(&ns, "wedge1");
    let after = now();
    wait_stopped(&ns, "wedge1.service");
    let list = wait_list(&ns, "wedge1", 1);

    // The dump read whole: as many goroutines as the journal's own copy has headers.
    let headers = journal_text(&ns, "wedge1")
        .lines()
        .filter(|l| l.starts_with("goroutine "))
        .count() as u64;
    assert!(
        headers > 10,
        "the journal holds only {headers} goroutine headers"
    );
    assert_eq!(list[0]["goroutines"], headers);
    assert_eq!(list[0]["kind"], "sigquit");
    assert_eq!(list[0]["pid"], pid);
    assert_eq!(list[0]["invocation_id"], invocation.as_str());

    // The name without .service and with it give the same.
    let v = json(&ns, &["journal", "wedge1"]);
    let v2 = json(&ns, &["journal", "wedge1.service"]);
    assert_eq!(v, v2);
    let d = &v["dumps"][0];
    assert_eq!(v["dumps"].as_array().unwrap().len(), 1);
    assert_eq!(d["kind"], "sigquit");
    assert_eq!(d["complete"], true);
    assert_eq!(d["goroutines"].as_array().unwrap().len() as u64, headers);
    assert_eq!(d["dump_time_source"], "journal");
    let t = time(&d["dump_time"]);
    assert!(
        t >= before - chrono::Duration::seconds(1) && t <= after + chrono::Duration::seconds(5),
        "dump time {t} is not close to the kill at {before}"
    );
    assert_eq!(d["journal"]["unit"], "wedge1.service");
    assert_eq!(d["journal"]["pid"], pid);
    assert_eq!(d["journal"]["invocation_id"], invocation.as_str());

    // The text form: the dump's lines, the journal time named as the source.
    let text = String::from_utf8(gorescue_ok(&ns, &["journal", "wedge1"])).unwrap();
    assert!(text.contains("SIGQUIT: quit"), "{text}");
    assert!(
        text.contains("journal timestamp of the dump's first line"),
        "{text}"
    );
    assert!(text.contains(&invocation), "{text}");

    // The raw form: exactly the process's lines from `SIGQUIT: quit` to the last register
    // (only the process's: systemd's own lines about the unit may come in between).
    let raw =
        String::from_utf8(gorescue_ok(&ns, &["journal", "wedge1", "--format", "raw"])).unwrap();
    let journal = ns.run_ok(&[
        "journalctl",
        "-q",
        "--no-pager",
        "_SYSTEMD_UNIT=wedge1.service",
        "-o",
        "cat",
    ]);
    let start = journal.find("SIGQUIT: quit").unwrap();
    assert!(
        journal[start..].starts_with(&raw),
        "raw output is not the journal's copy of the dump"
    );
    assert!(raw.lines().last().unwrap().starts_with("gs "), "{raw}");

    // --list in text: one line per dump, with the invocation and PID.
    let list = String::from_utf8(gorescue_ok(&ns, &["journal", "wedge1", "--list"])).unwrap();
    let rows: Vec<&str> = list.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{list}");
    assert!(
        rows[0].contains(&invocation) && rows[0].contains("sigquit"),
        "{list}"
    );
    assert!(
        rows[0].contains(&pid.to_string()) && rows[0].ends_with("yes"),
        "{list}"
    );

    // --since after the dump: nothing found, a one-line error with the NO_DUMP code.
    let o = gorescue(&ns, &["journal", "wedge1", "--since", "@4102444800"]);
    assert_eq!(o.status.code(), Some(4));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn unknown_unit_and_unit_without_a_dump() {
    let ns = SystemdNs::boot();
    let o = gorescue(&ns, &["journal", "nosuchunit"]);
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("nosuchunit.service") && err.contains("systemctl"),
        "{err}"
    );
    assert!(o.stdout.is_empty());

    // A unit that logged, but no dump.
    ns.run_ok(&[
        "systemd-run",
        "-q",
        "--unit=chatty",
        "/bin/echo",
        "hello there",
    ]);
    wait_for_line(&ns, "chatty", "hello there");
    let o = gorescue(&ns, &["journal", "chatty"]);
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("no goroutine dump") && err.contains("chatty.service"),
        "{err}"
    );

    // A bad --since is a usage error.
    let o = gorescue(&ns, &["journal", "chatty", "--since", "the other day"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
}

#[test]
fn panic_in_the_journal() {
    let ns = SystemdNs::boot();
    let prog = dumpprog();
    let before = now();
    ns.run_ok(&[
        "systemd-run",
        "-q",
        "--unit=p1",
        prog.to_str().unwrap(),
        "-mode",
        "panic",
    ]);
    wait_stopped(&ns, "p1.service");
    let list = wait_list(&ns, "p1", 1);
    assert_eq!(list[0]["kind"], "panic");
    let headers = journal_text(&ns, "p1")
        .lines()
        .filter(|l| l.starts_with("goroutine "))
        .count() as u64;
    assert_eq!(list[0]["goroutines"], headers);

    let v = json(&ns, &["journal", "p1"]);
    let d = &v["dumps"][0];
    assert_eq!(d["kind"], "panic");
    assert!(
        d["reason"].as_str().unwrap().starts_with("panic: "),
        "{}",
        d["reason"]
    );
    assert_eq!(d["dump_time_source"], "journal");
    let t = time(&d["dump_time"]);
    assert!(
        t >= before - chrono::Duration::seconds(1) && t <= now(),
        "{t} vs {before}"
    );
    assert_eq!(d["journal"]["unit"], "p1.service");
}

#[test]
fn dumps_across_a_restart_have_their_invocations() {
    let ns = SystemdNs::boot();
    start_wedge(
        &ns,
        "r1",
        &["-p", "Restart=on-failure", "-p", "RestartSec=200ms"],
    );
    let first = ns.show("r1.service", "InvocationID");
    let pid1 = ns.main_pid("r1.service");
    quit(&ns, "r1");
    wait_list(&ns, "r1", 1);
    // systemd restarts it: a new invocation and PID.
    eventually("r1 to restart", || {
        let id = ns.show("r1.service", "InvocationID");
        (id != first && ns.show("r1.service", "ActiveState") == "active").then_some(())
    });
    let second = ns.show("r1.service", "InvocationID");
    let pid2 = ns.main_pid("r1.service");
    eventually("the second r1 to be ready", || {
        (journal_text(&ns, "r1").matches("\nready\n").count()
            + usize::from(journal_text(&ns, "r1").starts_with("ready\n"))
            >= 2)
            .then_some(())
    });
    quit(&ns, "r1");
    let list = wait_list(&ns, "r1", 2);
    ns.run_ok(&["systemctl", "stop", "r1.service"]);

    assert_eq!(list[0]["invocation_id"], first.as_str());
    assert_eq!(list[1]["invocation_id"], second.as_str());
    assert_ne!(first, second);
    assert_eq!(list[0]["pid"], pid1);
    assert_eq!(list[1]["pid"], pid2);
    assert!(time(&list[0]["time"]) < time(&list[1]["time"]));
    for d in &list {
        assert_eq!(d["kind"], "sigquit");
        assert_eq!(d["complete"], true);
    }

    // The text list: two rows with different invocation ids.
    let text = String::from_utf8(gorescue_ok(&ns, &["journal", "r1", "--list"])).unwrap();
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(
        rows[0].contains(&first) && rows[1].contains(&second),
        "{text}"
    );

    // The newest is printed: the second invocation's.
    let v = json(&ns, &["journal", "r1"]);
    assert_eq!(v["dumps"].as_array().unwrap().len(), 1);
    assert_eq!(v["dumps"][0]["journal"]["invocation_id"], second.as_str());
    assert_eq!(v["dumps"][0]["journal"]["pid"], pid2);
}

/// A script under target/ that prints `dump` to stderr, as bytes.
fn script(dir: &Path, name: &str, dump: &[u8]) -> PathBuf {
    let data = dir.join(format!("{name}.txt"));
    std::fs::write(&data, dump).unwrap();
    let sh = dir.join(format!("{name}.sh"));
    std::fs::write(
        &sh,
        format!("#!/bin/sh\ncat '{}' >&2\nexit 2\n", data.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&sh, std::fs::Permissions::from_mode(0o755)).unwrap();
    sh
}

#[test]
fn binary_messages_and_lines_split_at_line_max() {
    let ns = SystemdNs::boot();
    let dir = scratch("journal-bytes");

    // Not UTF-8: journald stores such a MESSAGE as binary; raw gives the bytes back.
    let dump: &[u8] = b"panic: bad \xff\xfe bytes\n\ngoroutine 1 [running]:\nmain.main()\n\t/src/m\xffain.go:5 +0x1d\n";
    let sh = script(&dir, "bin", dump);
    ns.run_ok(&["systemd-run", "-q", "--unit=bin1", sh.to_str().unwrap()]);
    wait_stopped(&ns, "bin1.service");
    wait_list(&ns, "bin1", 1);
    let raw = gorescue_ok(&ns, &["journal", "bin1", "--format", "raw"]);
    // journald keeps no blank lines.
    let want: Vec<u8> = dump
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .flat_map(|l| l.iter().copied().chain([b'\n']))
        .collect();
    assert_eq!(raw, want, "{}", String::from_utf8_lossy(&raw));

    // A line longer than journald's LineMax (48K by default) arrives in several entries,
    // each but the last with _LINE_BREAK=line-max; gorescue rejoins them.
    let long = "x".repeat(120_000);
    let dump =
        format!("panic: {long}\n\ngoroutine 1 [running]:\nmain.main()\n\t/src/main.go:5 +0x1d\n");
    let sh = script(&dir, "long", dump.as_bytes());
    ns.run_ok(&["systemd-run", "-q", "--unit=long1", sh.to_str().unwrap()]);
    wait_stopped(&ns, "long1.service");
    wait_list(&ns, "long1", 1);
    let breaks = ns.run_ok(&[
        "journalctl",
        "-q",
        "--no-pager",
        "-u",
        "long1",
        "-o",
        "verbose",
        "_LINE_BREAK=line-max",
    ]);
    assert!(
        breaks.contains("_LINE_BREAK=line-max"),
        "journald did not split the long line: {}",
        &breaks[..breaks.len().min(500)]
    );
    let raw = gorescue_ok(&ns, &["journal", "long1", "--format", "raw"]);
    let first = raw.split(|&b| b == b'\n').next().unwrap();
    assert_eq!(first, format!("panic: {long}").as_bytes());
    let v = json(&ns, &["journal", "long1"]);
    assert_eq!(v["dumps"][0]["reason"].as_str().unwrap().len(), 7 + 120_000);
    assert_eq!(v["dumps"][0]["complete"], true);
}

/// The library's live interface, on the namespace's journal read from the host through
/// /proc/PID/root: the position before the signal, the unit's invocation's and PID's entries
/// after it, waiting for them; and the unit's lines around a time.
#[test]
fn follow_a_dump_from_the_position_before_the_signal() {
    let ns = SystemdNs::boot();
    start_wedge(&ns, "live1", &[]);
    let pid = ns.main_pid("live1.service");
    let invocation = ns.show("live1.service", "InvocationID");
    let root = ns.host_path("/");

    let mut j = Journal::open_root(&root, false).unwrap();
    let cursor = j.cursor_now().unwrap().expect("the journal has entries");
    let filter = Filter {
        invocation_id: Some(invocation.clone()),
        pid: Some(pid),
        ..Filter::unit("live1.service", false)
    };
    j.follow_from(Some(&cursor), &filter).unwrap();
    // Nothing of the unit's after the cursor yet ("ready" came before it).
    assert_eq!(j.next_entry().unwrap(), None);
    let before = now();
    quit(&ns, "live1");

    let mut joiner = LineJoiner::default();
    let mut lines = Vec::new();
    let end = Instant::now() + Duration::from_secs(30);
    'read: loop {
        while let Some(e) = j.next_entry().unwrap() {
            assert_eq!(e.pid, Some(pid));
            assert_eq!(e.invocation_id.as_deref(), Some(invocation.as_str()));
            assert!(!e.cursor.is_empty());
            if let Some(l) = joiner.push(e) {
                let last = l.bytes.starts_with(b"gs ");
                lines.push(l);
                if last {
                    break 'read;
                }
            }
        }
        assert!(
            Instant::now() < end,
            "the dump did not arrive: {} lines",
            lines.len()
        );
        j.wait(Duration::from_millis(500)).unwrap();
    }
    assert_eq!(lines[0].bytes, b"SIGQUIT: quit");
    assert!(lines[0].time >= before - chrono::Duration::seconds(1));
    let headers = lines
        .iter()
        .filter(|l| l.bytes.starts_with(b"goroutine "))
        .count();
    wait_stopped(&ns, "live1.service");
    let want = journal_text(&ns, "live1")
        .lines()
        .filter(|l| l.starts_with("goroutine "))
        .count();
    assert_eq!(headers, want);

    // The unit's lines around the time it became ready: "ready", and none of the dump's.
    let ready = lines[0].time - chrono::Duration::milliseconds(100);
    let mut j = Journal::open_root(&root, false).unwrap();
    let around = gorescue::journal_cmd::lines_around_in(
        &mut j,
        "live1",
        false,
        ready,
        Duration::from_secs(120),
    )
    .unwrap();
    assert!(around.iter().any(|(_, l)| l == b"ready"), "{around:?}");
    assert!(
        !around.iter().any(|(_, l)| l.starts_with(b"SIGQUIT")),
        "{around:?}"
    );
}

/// `--user`: a dump in the journal of root's user manager's service.
#[test]
fn user_service_with_user_flag() {
    let ns = SystemdNs::boot();
    ns.user_manager();
    let prog = dumpprog();
    let user = |args: &[&str]| {
        let o = ns
            .user_command(args[0])
            .args(&args[1..])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    user(&[
        "systemd-run",
        "--user",
        "-q",
        "--unit=uw1",
        prog.to_str().unwrap(),
        "-mode",
        "wedge",
    ]);
    // Root's user services are logged to the system journal (journalctl --user reads only
    // user-0 files): look for them by their field.
    eventually("uw1 to be ready", || {
        ns.run_ok(&[
            "journalctl",
            "-q",
            "--no-pager",
            "_SYSTEMD_USER_UNIT=uw1.service",
            "-o",
            "cat",
        ])
        .lines()
        .any(|l| l == "ready")
        .then_some(())
    });
    user(&["systemctl", "--user", "kill", "-s", "QUIT", "uw1"]);
    let v = eventually("the user service's dump", || {
        let o = gorescue(&ns, &["journal", "--user", "uw1", "--format", "json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
        (v["dumps"][0]["complete"] == true).then_some(v)
    });
    let d = &v["dumps"][0];
    assert_eq!(d["kind"], "sigquit");
    assert_eq!(d["journal"]["unit"], "uw1.service");
    assert_eq!(d["dump_time_source"], "journal");
    // Without --user it is looked for among the system's services.
    let o = gorescue(&ns, &["journal", "uw1"]);
    assert_eq!(o.status.code(), Some(4), "{o:?}");
}
