//! `gorescue::target::unit` against a real systemd (PID 1 of a private namespace, see
//! tests/common/systemd.rs), over its real system bus and root's user manager's session bus.
//!
//! The buses exist only inside the namespace, so each outer test sets units up there and then
//! re-executes this test binary inside (`nsenter`) to run one `#[ignore]`d inner test, which does
//! the D-Bus calls and asserts; the outer test checks that it passed. The inner tests take their
//! expectations from `GORESCUE_UNIT_DBUS_*` variables and do nothing without
//! `GORESCUE_UNIT_DBUS_INNER` (they are helpers, not tests of their own).
//!
//! Needs root: these tests fail, not skip, without it.

mod common;

use std::process::{Command, Output};

use common::systemd::{SystemdNs, USER_BUS, USER_RUNTIME_DIR, eventually};
use gorescue::target::unit::{Bus, Systemd, UnitError, UnitInfo, normalize};

const INNER: &str = "GORESCUE_UNIT_DBUS_INNER";

fn dumpprog() -> std::path::PathBuf {
    let tcs = common::goprog::toolchains();
    common::goprog::dumpprog(&tcs[0].1, false)
}

/// Run the inner test `name` as `cmd` (this binary, inside the namespace) with `env`; assert it
/// passed.
fn inner(mut cmd: Command, name: &str, env: &[(&str, String)]) -> Output {
    cmd.args([
        "--exact",
        name,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(INNER, "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the inner test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "inner test {name} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn exe() -> std::path::PathBuf {
    std::env::current_exe().unwrap()
}

/// The inner test `name` inside the namespace, on its buses (not one the host's env names).
fn inside(ns: &SystemdNs, name: &str, env: &[(&str, String)]) -> Output {
    inner(ns_command(ns, exe(), false), name, env)
}

fn ns_command(ns: &SystemdNs, prog: impl AsRef<std::ffi::OsStr>, user: bool) -> Command {
    let mut c = if user {
        ns.user_command(prog)
    } else {
        ns.command(prog)
    };
    c.env_remove("DBUS_SYSTEM_BUS_ADDRESS");
    if !user {
        c.env_remove("DBUS_SESSION_BUS_ADDRESS");
    }
    c
}

/// The inner side runs only when the outer test asked for it.
fn is_inner() -> bool {
    let on = std::env::var_os(INNER).is_some();
    if !on {
        eprintln!("a helper of the outer tests in this file; nothing to do on its own");
    }
    on
}

fn var(k: &str) -> String {
    std::env::var(format!("GORESCUE_UNIT_DBUS_{k}")).unwrap_or_else(|_| panic!("{k} not set"))
}

fn systemd_run(ns: &SystemdNs, args: &[&str]) {
    let mut a = vec!["systemd-run"];
    a.extend_from_slice(args);
    ns.run_ok(&a);
}

// ---------------------------------------------------------------------------------------------
// A running transient service, its settings, and a restart after its main process was killed.

#[test]
fn transient_service_pid_invocation_settings_and_restart() {
    let prog = dumpprog();
    let ns = SystemdNs::boot();
    systemd_run(
        &ns,
        &[
            "--unit=wedge1",
            "-p",
            "Restart=on-failure",
            "-p",
            "RestartSec=100ms",
            "-p",
            "LogRateLimitBurst=123",
            "-p",
            "LogRateLimitIntervalSec=7s",
            "-p",
            "LogLevelMax=notice",
            "-p",
            "StandardError=journal",
            prog.to_str().unwrap(),
            "-mode",
            "wedge",
            "-nospin",
        ],
    );
    let pid = ns.main_pid("wedge1.service");
    let invocation = ns.show("wedge1.service", "InvocationID");
    let env = |pid: i32, inv: &str, restarts: u32| {
        vec![
            ("GORESCUE_UNIT_DBUS_PID", pid.to_string()),
            ("GORESCUE_UNIT_DBUS_INVOCATION", inv.to_string()),
            ("GORESCUE_UNIT_DBUS_RESTARTS", restarts.to_string()),
        ]
    };
    inside(&ns, "inner_running_service", &env(pid, &invocation, 0));

    // Kill the main process: Restart=on-failure starts a new one, with a new invocation.
    ns.run_ok(&["kill", "-KILL", &pid.to_string()]);
    let new_pid = eventually("the restarted MainPID", || {
        let p: i32 = ns.show("wedge1.service", "MainPID").parse().ok()?;
        (p != 0 && p != pid && ns.show("wedge1.service", "ActiveState") == "active").then_some(p)
    });
    let new_invocation = ns.show("wedge1.service", "InvocationID");
    assert_ne!(new_invocation, invocation);
    inside(
        &ns,
        "inner_running_service",
        &env(new_pid, &new_invocation, 1),
    );
    ns.run(&["systemctl", "stop", "wedge1.service"]);
}

#[test]
#[ignore]
fn inner_running_service() {
    if !is_inner() {
        return;
    }
    let sd = Systemd::connect(Bus::System).unwrap();
    assert_eq!(sd.bus(), Bus::System);
    let pid: u32 = var("PID").parse().unwrap();
    // A name without a suffix and the full one give the same unit.
    let u = sd.unit("wedge1").unwrap();
    assert_eq!(sd.unit("wedge1.service").unwrap().id, u.id);
    println!("{u:#?}");
    assert_eq!(u.id, "wedge1.service");
    assert_eq!(u.names, vec!["wedge1.service".to_string()]);
    assert_eq!(u.load_state, "loaded");
    assert_eq!(u.active_state, "active");
    assert_eq!(u.sub_state, "running");
    assert_eq!(u.main_pid, pid);
    assert_eq!(u.running_main_pid(), Ok(pid));
    let inv = u.invocation_id.as_deref().expect("an invocation ID");
    assert_eq!(inv.len(), 32);
    assert!(
        inv.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_eq!(inv, var("INVOCATION"));
    assert_eq!(u.restart, "on-failure");
    assert_eq!(u.n_restarts, Some(var("RESTARTS").parse().unwrap()));
    assert_eq!(u.result, "success");
    assert_eq!(u.standard_error.as_deref(), Some("journal"));
    assert_eq!(u.effective_standard_error(), Some("journal"));
    assert_eq!(u.log_rate_limit_burst, 123);
    assert_eq!(u.log_rate_limit_interval_usec, 7_000_000);
    assert_eq!(u.log_level_max, 5, "notice");
    // systemd 252 has no LogFilterPatterns (253 added it): read as empty.
    assert_eq!(u.log_filter_patterns, Vec::<(bool, String)>::new());
    assert!(
        u.control_group.ends_with("/system.slice/wedge1.service"),
        "{}",
        u.control_group
    );
    assert_eq!(u.fragment_path, "/run/systemd/transient/wedge1.service");
    assert!(u.description.contains("dumpprog"), "{}", u.description);
}

// ---------------------------------------------------------------------------------------------
// Names: unknown, not a service, invalid, aliases, template instances; exited services.

#[test]
fn unknown_non_service_alias_template_and_exited_units() {
    let ns = SystemdNs::boot();
    // A transient service that exited successfully is garbage-collected at once (LoadUnit then
    // says "not-found"): the inactive case needs a unit file, here in the namespace's /run.
    systemd_run(&ns, &["--unit=gone1", "-p", "Type=oneshot", "/bin/true"]);
    std::fs::write(
        ns.host_path("/run/systemd/system/done1.service"),
        "[Service]\nType=oneshot\nExecStart=/bin/true\n",
    )
    .unwrap();
    ns.run_ok(&["systemctl", "daemon-reload"]);
    ns.run_ok(&["systemctl", "start", "done1.service"]);
    let o = ns.run(&[
        "systemd-run",
        "--unit=fail1",
        "-p",
        "Type=oneshot",
        "/bin/false",
    ]);
    assert!(!o.status.success(), "a failing oneshot fails its start job");
    inside(&ns, "inner_names_and_exited_units", &[]);
}

#[test]
#[ignore]
fn inner_names_and_exited_units() {
    if !is_inner() {
        return;
    }
    let sd = Systemd::connect(Bus::System).unwrap();
    match sd.unit("no-such-unit-gorescue") {
        Err(UnitError::NoSuchUnit { name }) => assert_eq!(name, "no-such-unit-gorescue.service"),
        other => panic!("{other:?}"),
    }
    match sd.unit("basic.target") {
        Err(e @ UnitError::NotAService { .. }) => {
            assert_eq!(
                e.to_string(),
                "basic.target is not a service (it is a target unit)"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        sd.unit("systemd-journald.socket"),
        Err(UnitError::NotAService { kind, .. }) if kind == "socket"
    ));
    assert!(matches!(
        sd.unit("foo@"),
        Err(UnitError::InvalidName { .. })
    ));
    assert!(matches!(sd.unit(""), Err(UnitError::InvalidName { .. })));

    // An alias resolves to the real unit (it need not be loaded yet: LoadUnit).
    let u = sd.unit("dbus-org.freedesktop.hostname1").unwrap();
    assert_eq!(u.id, "systemd-hostnamed.service");
    assert!(
        u.names
            .contains(&"dbus-org.freedesktop.hostname1.service".to_string()),
        "{:?}",
        u.names
    );
    // A template's instance (autovt@ is itself an alias of getty@).
    let u = sd.unit("getty@tty9").unwrap();
    assert_eq!(u.id, "getty@tty9.service");
    assert_eq!(u.active_state, "inactive");
    let u = sd.unit("autovt@tty8").unwrap();
    assert_eq!(u.id, "getty@tty8.service");

    // A oneshot that ran and exited: inactive, no main PID.
    let u = sd.unit("done1").unwrap();
    println!("{u:#?}");
    assert_eq!(u.active_state, "inactive");
    assert_eq!(u.sub_state, "dead");
    assert_eq!(u.main_pid, 0);
    assert_eq!(u.result, "success");
    assert_eq!(u.restart, "no");
    assert_eq!(u.fragment_path, "/run/systemd/system/done1.service");
    // Unset log settings read as their defaults.
    assert_eq!(u.log_rate_limit_burst, 0);
    assert_eq!(u.log_rate_limit_interval_usec, 0);
    assert_eq!(u.log_level_max, -1);
    match u.running_main_pid() {
        Err(e @ UnitError::NotRunning { .. }) => assert_eq!(
            e.to_string(),
            "done1.service is not running (inactive/dead), it has no main process"
        ),
        other => panic!("{other:?}"),
    }
    // One that failed.
    let u = sd.unit("fail1").unwrap();
    assert_eq!(u.active_state, "failed");
    assert_eq!(u.result, "exit-code");
    assert_eq!(
        (u.exec_main_code, u.exec_main_status),
        (1, 1),
        "CLD_EXITED, 1"
    );
    assert_eq!(u.main_pid, 0);
    assert!(u.invocation_id.is_some());
    assert!(u.running_main_pid().is_err());
}

// ---------------------------------------------------------------------------------------------
// --user: root's user manager, through the session bus.

#[test]
fn user_manager_transient_service() {
    let prog = dumpprog();
    let ns = SystemdNs::boot();
    ns.user_manager();
    let o = ns
        .user_command("systemd-run")
        .args(["--user", "--unit=uwedge"])
        .arg(&prog)
        .args(["-mode", "wedge", "-nospin"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pid: i32 = eventually("the user service's MainPID", || {
        let o = ns
            .user_command("systemctl")
            .args([
                "--user",
                "show",
                "-p",
                "MainPID",
                "--value",
                "uwedge.service",
            ])
            .output()
            .ok()?;
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse()
            .ok()
            .filter(|&p| p != 0)
    });
    let env = [("GORESCUE_UNIT_DBUS_PID", pid.to_string())];
    inner(ns_command(&ns, exe(), true), "inner_user_service", &env);

    // Without access to root's runtime directory: access denied, naming the bus.
    // The test binary must be executable by nobody: copy it under target/ with o+rx.
    let dir = common::systemd::scratch("unit-dbus-nobody");
    let copy = dir.join("unit_dbus");
    std::fs::copy(exe(), &copy).unwrap();
    use std::os::unix::fs::PermissionsExt;
    for d in [dir.as_path(), dir.parent().unwrap(), copy.as_path()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut cmd = ns_command(&ns, "setpriv", true);
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&copy);
    inner(cmd, "inner_user_bus_denied", &[]);
    let _ = ns
        .user_command("systemctl")
        .args(["--user", "stop", "uwedge.service"])
        .status();
}

#[test]
#[ignore]
fn inner_user_service() {
    if !is_inner() {
        return;
    }
    assert_eq!(std::env::var("DBUS_SESSION_BUS_ADDRESS").unwrap(), USER_BUS);
    assert_eq!(std::env::var("XDG_RUNTIME_DIR").unwrap(), USER_RUNTIME_DIR);
    let sd = Systemd::connect(Bus::User).unwrap();
    let u: UnitInfo = sd.unit("uwedge").unwrap();
    println!("{u:#?}");
    assert_eq!(u.id, "uwedge.service");
    assert_eq!(u.active_state, "active");
    assert_eq!(u.main_pid, var("PID").parse::<u32>().unwrap());
    assert_eq!(u.invocation_id.as_deref().map(str::len), Some(32));
    assert!(
        u.control_group.contains("/user@0.service/"),
        "{}",
        u.control_group
    );
    // The system manager does not know the user's unit.
    let system = Systemd::connect(Bus::System).unwrap();
    assert!(matches!(
        system.unit("uwedge"),
        Err(UnitError::NoSuchUnit { .. })
    ));
}

#[test]
#[ignore]
fn inner_user_bus_denied() {
    if !is_inner() {
        return;
    }
    assert_ne!(nix::unistd::geteuid().as_raw(), 0);
    match Systemd::connect(Bus::User) {
        Err(e @ UnitError::AccessDenied { .. }) => {
            assert!(e.to_string().contains("session bus"), "{e}");
        }
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("connected to root's user bus as nobody"),
    }
}

// ---------------------------------------------------------------------------------------------
// No bus at all.

#[test]
fn bus_unreachable() {
    let dir = common::systemd::scratch("unit-dbus-nobus");
    let missing = dir.join("no-bus-here");
    let addr = format!("unix:path={}", missing.display());
    let mut cmd = Command::new(exe());
    cmd.env("DBUS_SYSTEM_BUS_ADDRESS", &addr)
        .env("DBUS_SESSION_BUS_ADDRESS", &addr);
    inner(
        cmd,
        "inner_bus_unreachable",
        &[("GORESCUE_UNIT_DBUS_ADDR", addr.clone())],
    );
}

#[test]
#[ignore]
fn inner_bus_unreachable() {
    if !is_inner() {
        return;
    }
    assert_eq!(
        std::env::var("DBUS_SESSION_BUS_ADDRESS").unwrap(),
        var("ADDR")
    );
    for (bus, what) in [(Bus::User, "user"), (Bus::System, "system")] {
        match Systemd::connect(bus) {
            Err(e @ UnitError::BusUnreachable { .. }) => {
                let line = e.to_string();
                assert!(
                    line.starts_with(&format!("cannot reach the {what} bus: ")),
                    "{line}"
                );
                assert!(!line.contains('\n'), "{line}");
            }
            Err(e) => panic!("{e:?}"),
            Ok(_) => panic!("connected to a bus that is not there"),
        }
    }
}

#[test]
fn normalize_names() {
    assert_eq!(normalize("wedge1").unwrap(), "wedge1.service");
    assert_eq!(normalize("foo@bar").unwrap(), "foo@bar.service");
    assert_eq!(normalize("basic.target").unwrap(), "basic.target");
    assert!(normalize("").is_err());
}
