//! `gorescue unit` against a real systemd booted in a private namespace (tests/common/systemd.rs),
//! with transient services started by systemd-run, the shipped template unit, and root's user
//! manager. gorescue runs inside the namespace, where the system bus and the journal are.

mod common;

use std::path::PathBuf;
use std::process::{Output, Stdio};

use common::goprog;
use common::systemd::{SystemdNs, USER_BUS, USER_RUNTIME_DIR, scratch};

fn gorescue_bin() -> &'static str {
    env!("CARGO_BIN_EXE_gorescue")
}

fn newest_dumpprog() -> PathBuf {
    let (_, go) = goprog::toolchains().pop().unwrap();
    goprog::dumpprog(&go, false)
}

/// `systemd-run --unit=UNIT PROPS... dumpprog -mode wedge` (the newest toolchain's) in the
/// namespace; its MainPID, once the wedge has had time to set itself up.
fn start_wedge(ns: &SystemdNs, unit: &str, props: &[&str]) -> i32 {
    let bin = newest_dumpprog();
    let unit_arg = format!("--unit={unit}");
    let mut args = vec!["systemd-run", unit_arg.as_str()];
    args.extend_from_slice(props);
    args.extend([bin.to_str().unwrap(), "-mode", "wedge"]);
    ns.run_ok(&args);
    let pid = ns.main_pid(&format!("{unit}.service"));
    // Give the wedge its "ready" moment.
    std::thread::sleep(std::time::Duration::from_millis(700));
    pid
}

/// `gorescue ARGS` inside the namespace.
fn gorescue(ns: &SystemdNs, args: &[&str]) -> Output {
    ns.command(gorescue_bin())
        .args(args)
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn json_of(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "gorescue failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn headers(raw: &[u8]) -> usize {
    String::from_utf8_lossy(raw)
        .lines()
        .filter(|l| l.starts_with("goroutine ") && l.ends_with(':'))
        .count()
}

#[test]
fn journal_capture_of_a_service_that_restarts() {
    goprog::require_root();
    let ns = SystemdNs::boot();
    let save = scratch("unit-journal");
    let pid = start_wedge(
        &ns,
        "wedge1",
        &["-p", "Restart=on-failure", "-p", "RestartSec=1"],
    );
    // A name without a suffix means NAME.service.
    let dry = gorescue(&ns, &["unit", "wedge1", "--dry-run"]);
    let err = String::from_utf8_lossy(&dry.stderr);
    assert!(dry.status.success(), "{err}");
    for want in [
        "unit:       wedge1.service",
        &format!("MainPID {pid}"),
        "Restart=on-failure",
        "StandardError=",
        "LogRateLimitBurst=",
        "stderr:     fd 2 is the journal",
        "capture:    ptrace",
        "dry run: nothing was sent",
    ] {
        assert!(err.contains(want), "missing {want:?} in\n{err}");
    }
    let out = gorescue(
        &ns,
        &[
            "unit",
            "wedge1",
            "--yes",
            "--format",
            "json",
            "--save-dir",
            save.to_str().unwrap(),
        ],
    );
    let v = json_of(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    let d = &v["dumps"][0];
    assert_eq!(d["kind"], "sigquit");
    assert_eq!(d["complete"], true);
    assert_eq!(d["capture"]["method"], "ptrace");
    assert_eq!(d["capture"]["stderr"]["kind"], "journal");
    // The dump time is the journal's timestamp of its first line.
    assert_eq!(d["dump_time_source"], "journal", "{err}");
    let raw = std::fs::read(d["capture"]["raw_file"].as_str().unwrap()).unwrap();
    assert_eq!(headers(&raw), d["goroutines"].as_array().unwrap().len());
    // The journal still got its copy (forwarded), and gorescue says how whole it is.
    let j = &d["capture"]["journal"];
    assert_eq!(j["lines_lost"], 0, "{j}");
    assert!(
        err.contains("journal: its own copy of the dump is whole"),
        "{err}"
    );
    let logged = ns.run_ok(&["journalctl", "-u", "wedge1", "-o", "cat", "--no-pager"]);
    assert!(logged.contains("SIGQUIT: quit"));
    // Restart=on-failure: systemd started it again, and gorescue says so.
    assert!(
        err.contains("systemd restarted wedge1.service: new MainPID "),
        "{err}"
    );
    let new_pid = ns.main_pid("wedge1.service");
    assert_ne!(new_pid, pid);
}

#[test]
fn twenty_thousand_goroutines_nothing_lost() {
    goprog::require_root();
    let ns = SystemdNs::boot();
    let bin = newest_dumpprog();
    let save = scratch("unit-20k");
    ns.run_ok(&[
        "systemd-run",
        "--unit=big",
        bin.to_str().unwrap(),
        "-mode",
        "many",
        "-n",
        "20000",
    ]);
    ns.main_pid("big.service");
    // Wait until it has parked its goroutines (it prints ready to the journal).
    common::systemd::eventually("big to be ready", || {
        let j = ns.run_ok(&["journalctl", "-u", "big", "-o", "cat", "--no-pager"]);
        j.contains("ready").then_some(())
    });
    let out = gorescue(
        &ns,
        &[
            "unit",
            "big",
            "--yes",
            "--format",
            "json",
            "--save-dir",
            save.to_str().unwrap(),
        ],
    );
    let v = json_of(&out);
    let d = &v["dumps"][0];
    assert_eq!(d["complete"], true);
    let n = d["goroutines"].as_array().unwrap().len();
    assert!(n >= 20000, "every goroutine delivered: {n}");
    let raw = std::fs::read(d["capture"]["raw_file"].as_str().unwrap()).unwrap();
    assert_eq!(headers(&raw), n);
    // journald's rate limit cut its own copy, and gorescue says by how much.
    let j = &d["capture"]["journal"];
    assert!(j["lines_lost"].as_u64().unwrap() > 0, "{j}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("its own copy of the dump is INCOMPLETE"),
        "{err}"
    );
}

#[test]
fn unit_errors_name_the_unit() {
    goprog::require_root();
    let ns = SystemdNs::boot();
    let out = gorescue(&ns, &["unit", "nosuchthing", "--yes"]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{e}");
    assert!(
        e.contains("nosuchthing.service") && e.lines().count() == 1,
        "{e}"
    );
    // Not a service.
    let out = gorescue(&ns, &["unit", "basic.target", "--yes"]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{e}");
    assert!(e.contains("basic.target"), "{e}");
    // Inactive: a unit that exists but has no main process.
    std::fs::create_dir_all(ns.host_path("/run/systemd/system")).unwrap();
    std::fs::write(
        ns.host_path("/run/systemd/system/idle1.service"),
        "[Service]\nType=oneshot\nExecStart=/bin/true\n",
    )
    .unwrap();
    ns.run_ok(&["systemctl", "daemon-reload"]);
    let out = gorescue(&ns, &["unit", "idle1", "--yes"]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{e}");
    assert!(e.contains("idle1.service") && e.contains("inactive"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[test]
fn template_unit_captures_without_asking() {
    goprog::require_root();
    let ns = SystemdNs::boot();
    // Install gorescue where the unit expects it, and the unit, inside the namespace only.
    ns.run_ok(&["mount", "-t", "tmpfs", "tmpfs", "/usr/local/bin"]);
    ns.run_ok(&["cp", gorescue_bin(), "/usr/local/bin/gorescue"]);
    ns.run_ok(&["mkdir", "-p", "/var/lib/gorescue"]);
    ns.run_ok(&["mount", "-t", "tmpfs", "tmpfs", "/var/lib/gorescue"]);
    let unit = std::fs::read_to_string(common::root().join("units/gorescue@.service")).unwrap();
    std::fs::create_dir_all(ns.host_path("/run/systemd/system")).unwrap();
    std::fs::write(ns.host_path("/run/systemd/system/gorescue@.service"), unit).unwrap();
    ns.run_ok(&["systemctl", "daemon-reload"]);
    // It passes systemd-analyze verify.
    let v = ns.run(&[
        "systemd-analyze",
        "verify",
        "--man=no",
        "gorescue@wedge2.service.service",
    ]);
    assert!(
        v.status.success() && v.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&v.stderr)
    );
    start_wedge(&ns, "wedge2", &[]);
    ns.run_ok(&["systemctl", "start", "gorescue@wedge2.service.service"]);
    let dumps = ns.run_ok(&["sh", "-c", "ls /var/lib/gorescue/*.dump"]);
    assert_eq!(dumps.lines().count(), 1, "{dumps}");
    let raw = ns.run_ok(&["cat", dumps.trim()]);
    assert!(
        raw.starts_with("SIGQUIT: quit\n") && raw.contains("\ngs "),
        "a whole dump"
    );
    let mode = ns.run_ok(&["stat", "-c", "%a", dumps.trim()]);
    assert_eq!(mode.trim(), "600");
    // The annotated dump is in the template unit's own journal.
    let log = ns.run_ok(&[
        "journalctl",
        "-u",
        "gorescue@wedge2.service.service",
        "-o",
        "cat",
        "--no-pager",
    ]);
    assert!(
        log.contains("== gorescue: dump 1 (SIGQUIT dump) =="),
        "{log}"
    );
}

#[test]
fn user_manager_with_user() {
    goprog::require_root();
    let ns = SystemdNs::boot();
    ns.user_manager();
    let bin = newest_dumpprog();
    let save = scratch("unit-user");
    let st = ns
        .user_command("systemd-run")
        .args([
            "--user",
            "--unit=uwedge",
            bin.to_str().unwrap(),
            "-mode",
            "wedge",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let out = ns
        .user_command(gorescue_bin())
        .args([
            "unit",
            "--user",
            "uwedge",
            "--yes",
            "--format",
            "json",
            "--save-dir",
            save.to_str().unwrap(),
        ])
        .env("DBUS_SESSION_BUS_ADDRESS", USER_BUS)
        .env("XDG_RUNTIME_DIR", USER_RUNTIME_DIR)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let v = json_of(&out);
    let d = &v["dumps"][0];
    assert_eq!(d["complete"], true);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("uwedge.service (user)"), "{err}");
}

#[test]
fn journal_command_finds_the_captured_dump() {
    goprog::require_root();
    let ns = SystemdNs::boot();
    let save = scratch("unit-then-journal");
    start_wedge(&ns, "wedge3", &[]);
    let v = json_of(&gorescue(
        &ns,
        &[
            "unit",
            "wedge3",
            "--yes",
            "--format",
            "json",
            "--save-dir",
            save.to_str().unwrap(),
        ],
    ));
    let captured = v["dumps"][0]["goroutines"].as_array().unwrap().len();
    // The journal's copy (forwarded by gorescue) is found afterwards, without signalling.
    let j = json_of(&gorescue(&ns, &["journal", "wedge3", "--format", "json"]));
    let d = &j["dumps"][0];
    assert_eq!(d["kind"], "sigquit");
    assert_eq!(d["goroutines"].as_array().unwrap().len(), captured);
    assert_eq!(d["dump_time_source"], "journal");
}

/// The figures of issue 4's benchmark (run by benches/unit_journal.sh): a 20,000-goroutine
/// service logging to the journal; the runtime's own time to print into the journal
/// (systemctl kill -s QUIT until the unit is inactive), next to `gorescue unit`'s whole run,
/// and how many goroutines each route delivers.
#[test]
#[ignore]
fn bench_unit_journal() {
    goprog::require_root();
    let n: u32 = std::env::var("GORESCUE_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20000);
    let ns = SystemdNs::boot();
    let bin = newest_dumpprog();
    // Like common::systemd::eventually, with room for big dumps.
    let wait = |what: &str, f: &dyn Fn() -> bool| {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(600);
        while !f() {
            assert!(
                std::time::Instant::now() < end,
                "timed out waiting for {what}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    let ready = |unit: &str| {
        wait("the service to be ready", &|| {
            ns.run_ok(&["journalctl", "-u", unit, "-o", "cat", "--no-pager"])
                .contains("ready")
        })
    };
    let ns_arg = n.to_string();
    // The runtime alone, printing into the journal.
    ns.run_ok(&[
        "systemd-run",
        "--unit=plain",
        bin.to_str().unwrap(),
        "-mode",
        "many",
        "-n",
        &ns_arg,
    ]);
    ready("plain");
    let t0 = std::time::Instant::now();
    ns.run_ok(&["systemctl", "kill", "-s", "QUIT", "plain"]);
    wait("plain to stop", &|| {
        let s = ns.show("plain.service", "ActiveState");
        s != "active" && s != "deactivating"
    });
    let runtime = t0.elapsed();
    let in_journal = ns
        .run_ok(&["journalctl", "-u", "plain", "-o", "cat", "--no-pager"])
        .lines()
        .filter(|l| l.starts_with("goroutine ") && l.ends_with(':'))
        .count();
    // gorescue unit, start to finished output.
    let save = scratch("bench-unit");
    ns.run_ok(&[
        "systemd-run",
        "--unit=resc",
        bin.to_str().unwrap(),
        "-mode",
        "many",
        "-n",
        &ns_arg,
    ]);
    ready("resc");
    let t0 = std::time::Instant::now();
    let out = gorescue(
        &ns,
        &[
            "unit",
            "resc",
            "--yes",
            "--format",
            "json",
            "--save-dir",
            save.to_str().unwrap(),
        ],
    );
    let whole = t0.elapsed();
    let v = json_of(&out);
    let delivered = v["dumps"][0]["goroutines"].as_array().unwrap().len();
    let j = &v["dumps"][0]["capture"]["journal"];
    println!(
        "n={n}: runtime printing into the journal (kill -s QUIT to inactive): {:.2} s, goroutines in the journal: {in_journal}",
        runtime.as_secs_f64()
    );
    println!(
        "n={n}: gorescue unit, start to finished output: {:.2} s, goroutines delivered: {delivered}",
        whole.as_secs_f64()
    );
    println!("n={n}: the journal's own copy during the capture: {j}");
    assert!(delivered as u32 >= n);
}

#[test]
fn journal_method_reads_the_dump_back_from_the_journal() {
    goprog::require_root();
    let ns = SystemdNs::boot();
    let save = scratch("unit-via-journal");
    start_wedge(&ns, "wedge4", &[]);
    let out = gorescue(
        &ns,
        &[
            "unit",
            "wedge4",
            "--via",
            "journal",
            "--yes",
            "--format",
            "json",
            "--save-dir",
            save.to_str().unwrap(),
        ],
    );
    let v = json_of(&out);
    let d = &v["dumps"][0];
    assert_eq!(d["capture"]["method"], "journal");
    assert_eq!(d["complete"], true);
    assert_eq!(d["dump_time_source"], "journal");
    let logged = ns.run_ok(&["journalctl", "-u", "wedge4", "-o", "cat", "--no-pager"]);
    let in_journal = logged
        .lines()
        .filter(|l| l.starts_with("goroutine ") && l.ends_with(':'))
        .count();
    assert_eq!(d["goroutines"].as_array().unwrap().len(), in_journal);
    // The raw capture is the journal's lines (no blank lines: journald keeps none).
    let raw = std::fs::read_to_string(d["capture"]["raw_file"].as_str().unwrap()).unwrap();
    assert!(raw.starts_with("SIGQUIT: quit\n") && !raw.contains("\n\n"));
}

#[test]
fn keep_running_leaves_the_service_up() {
    goprog::require_root();
    let ns = SystemdNs::boot();
    let save = scratch("unit-keep");
    let pid = start_wedge(&ns, "wedge5", &[]);
    let out = gorescue(
        &ns,
        &[
            "unit",
            "wedge5",
            "--keep-running",
            "--yes",
            "--format",
            "json",
            "--save-dir",
            save.to_str().unwrap(),
        ],
    );
    let v = json_of(&out);
    let d = &v["dumps"][0];
    assert_eq!(d["complete"], true);
    assert_eq!(d["capture"]["method"], "snapshot");
    assert_eq!(ns.show("wedge5.service", "ActiveState"), "active");
    assert_eq!(
        ns.main_pid("wedge5.service"),
        pid,
        "the same process runs on"
    );
    // Its journal got nothing of the dump.
    let logged = ns.run_ok(&["journalctl", "-u", "wedge5", "-o", "cat", "--no-pager"]);
    assert!(!logged.contains("SIGQUIT: quit"), "{logged}");
}

/// A service with PrivateNetwork= that serves net/http/pprof on its own loopback:
/// `--keep-running` finds the listener among the service's sockets, fetches the listing inside
/// the service's network namespace, and leaves the service running and its journal empty.
#[test]
fn keep_running_through_pprof_in_a_private_network() {
    goprog::require_root();
    let ns = SystemdNs::boot();
    let (_, go) = goprog::toolchains().pop().unwrap();
    let bin = goprog::serveprog(&go, false);
    let save = scratch("unit-pprof");
    ns.run_ok(&[
        "systemd-run",
        "--unit=serve6",
        "-p",
        "PrivateNetwork=yes",
        "-p",
        "Restart=on-failure",
        bin.to_str().unwrap(),
        "-n",
        "300",
        "-heap",
        "64",
        "-pprof",
        "-listen",
        "127.0.0.1:6060",
        "-http",
        "/dev/null",
    ]);
    let pid = ns.main_pid("serve6.service");
    // Listening once the goroutines are parked: wait for "ready" in the journal.
    common::systemd::eventually("serve6 to be ready", || {
        ns.run_ok(&["journalctl", "-u", "serve6", "-o", "cat", "--no-pager"])
            .contains("ready")
            .then_some(())
    });
    let out = gorescue(
        &ns,
        &[
            "unit",
            "serve6",
            "--keep-running",
            "--yes",
            "--format",
            "json",
            "--save-dir",
            save.to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = json_of(&out);
    assert!(err.contains("127.0.0.1:6060: net/http/pprof, 30"), "{err}");
    let d = &v["dumps"][0];
    assert_eq!(d["capture"]["method"], "pprof", "{err}");
    assert_eq!(d["complete"], true);
    let parked = d["goroutines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["frames"].to_string().contains("\"main.park\""))
        .count();
    assert_eq!(parked, 300);
    assert_eq!(ns.show("serve6.service", "ActiveState"), "active");
    assert_eq!(ns.main_pid("serve6.service"), pid);
    // No warning that Restart=on-failure may start it again: nothing ends the service.
    assert!(err.contains("Restart=on-failure"), "{err}");
    assert!(!err.contains("may start the service again"), "{err}");
    let logged = ns.run_ok(&["journalctl", "-u", "serve6", "-o", "cat", "--no-pager"]);
    assert!(!logged.contains("goroutine "), "{logged}");
}
