//! A real systemd for integration tests: PID 1 of a private PID+mount+UTS namespace, booted to
//! `basic.target` (journald and a socket-activated system D-Bus), as ../shared/DESIGN.md
//! describes.
//!
//! ```ignore
//! let ns = SystemdNs::boot();                      // panics if it cannot (not root, ...)
//! let out = ns.run(&["systemd-run", "--unit=x", "/bin/sleep", "100"]);
//! let pid = ns.main_pid("x.service");              // PID inside the namespace
//! let host = ns.host_pid(pid).unwrap();            // the same process seen from here
//! ```
//!
//! Isolation, so that several tests can each boot their own, in parallel:
//! - private tmpfs over /tmp, /var/tmp, /var/log/journal (MANDATORY: systemd's boot-time
//!   tmpfiles would otherwise empty the host's /tmp) and over /run (its sockets: the journal,
//!   the system bus, /run/systemd/private);
//! - a cgroup of its own (`gorescue-ns-PID-N` below the test's cgroup, in the name=systemd and
//!   unified hierarchies), which that systemd takes as its root: without it, two of them would
//!   share `/system.slice/UNIT.service`.
//!
//! Everything else (the filesystem) is the host's: binaries and scratch files the namespace must
//! see go under the project's target/ (see [`scratch`]), never /tmp. A checkout that is itself
//! under /tmp (or another of the tmpfs'd directories) is bound back into the namespace at its
//! own path.
//!
//! Drop powers it off (`systemctl poweroff`, then SIGKILL after ~5 s) and removes its cgroups.
//! Should the test process die without dropping it (a static, a SIGKILL), `unshare` gets
//! SIGKILL as its parent-death signal and `--kill-child` takes the namespace's PID 1 with it, so
//! no run leaves a systemd behind.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::root;

/// The user manager's bus and runtime directory inside the namespace (root's, UID 0).
pub const USER_BUS: &str = "unix:path=/run/user/0/bus";
pub const USER_RUNTIME_DIR: &str = "/run/user/0";

const SYSTEMD: &str = "/lib/systemd/systemd";

/// One booted systemd; see the module docs.
pub struct SystemdNs {
    /// systemd's PID as seen from the host (it is PID 1 inside).
    pid: i32,
    /// The `unshare` process (the parent of systemd).
    unshare: Option<Child>,
    /// Dropping the sender ends the thread that spawned `unshare` (its parent-death signal).
    keeper: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
    /// The cgroup directories created for it, removed on drop.
    cgroups: Vec<PathBuf>,
}

impl SystemdNs {
    /// Boot a systemd and wait until `systemctl is-system-running` says running or degraded.
    /// Panics, with the reason, when it cannot (not root, no systemd, it does not come up).
    pub fn boot() -> SystemdNs {
        prerequisites();
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "gorescue-ns-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let cgroups = make_cgroups(&name);
        let procs: Vec<PathBuf> = cgroups.iter().map(|d| d.join("cgroup.procs")).collect();

        // A checkout under one of the tmpfs'd directories (a clone in /tmp) would vanish
        // inside: the shell's working directory keeps the real one, which is bound back at
        // its own path once the tmpfs is over it (--no-canonicalize, so that "." is the
        // working directory and not its path, which by then names the new, empty one).
        let script = "for f in \"$@\"; do echo 0 > \"$f\" || exit 1; done && \
             cd \"$GORESCUE_NS_ROOT\" && \
             mount -t tmpfs tmpfs /tmp && mount -t tmpfs tmpfs /var/tmp && \
             mkdir -p /var/log/journal && mount -t tmpfs tmpfs /var/log/journal && \
             mount -t tmpfs -o mode=755 tmpfs /run && \
             case \"$GORESCUE_NS_ROOT\" in /tmp/*|/var/tmp/*|/var/log/journal/*|/run/*) \
               mkdir -p \"$GORESCUE_NS_ROOT\" && \
               mount --no-canonicalize --bind . \"$GORESCUE_NS_ROOT\" || exit 1;; \
             esac && cd / && \
             exec env -u GORESCUE_NS_ROOT container=gorescue-test /lib/systemd/systemd --system \
               --unit=basic.target";
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--pid",
            "--mount",
            "--uts",
            "--fork",
            "--kill-child",
            "--mount-proc",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .args(&procs)
        .env("GORESCUE_NS_ROOT", root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        // The parent-death signal follows the *thread* that forked: fork from a thread that
        // lives until drop (or until the process ends, should this value never be dropped).
        let (child_tx, child_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let keeper = std::thread::spawn(move || {
            let _ = child_tx.send(cmd.spawn());
            let _ = stop_rx.recv();
        });
        let child = child_rx
            .recv()
            .expect("the thread spawning unshare died")
            .unwrap_or_else(|e| panic!("cannot run unshare (util-linux): {e}"));
        let unshare = child.id() as i32;
        let mut ns = SystemdNs {
            pid: 0,
            unshare: Some(child),
            keeper: Some((stop_tx, keeper)),
            cgroups,
        };

        let end = Instant::now() + Duration::from_secs(60);
        ns.pid = loop {
            let kid = fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children"))
                .ok()
                .and_then(|k| k.split_whitespace().next()?.parse::<i32>().ok());
            if let Some(pid) = kid
                && comm(pid) == "systemd"
            {
                break pid;
            }
            if let Ok(Some(st)) = ns.unshare.as_mut().unwrap().try_wait() {
                panic!("unshare exited with {st} before systemd started");
            }
            assert!(Instant::now() < end, "systemd did not start in 60 s");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut state = String::new();
        while Instant::now() < end {
            let o = ns.run(&["systemctl", "is-system-running"]);
            state = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if state == "running" || state == "degraded" {
                return ns;
            }
            if let Ok(Some(st)) = ns.unshare.as_mut().unwrap().try_wait() {
                panic!("the namespace's systemd exited ({st}) while booting; last state {state:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("systemd did not reach running/degraded in 60 s: {state:?}");
    }

    /// systemd's PID on the host (PID 1 inside).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// `program` to run inside the namespace (`nsenter -t PID -m -p -u program`); add args,
    /// env, stdio as with any Command. Paths must be visible there (under target/, not /tmp).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.pid.to_string(), "-m", "-p", "-u"])
            .arg("--")
            .arg(program);
        c
    }

    /// Run `args` (program first) inside and collect its output (whatever the exit status).
    pub fn run(&self, args: &[&str]) -> Output {
        let (prog, rest) = args.split_first().expect("run: empty command");
        self.command(prog)
            .args(rest)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run nsenter: {e}"))
    }

    /// [`run`](Self::run), asserting success; its stdout.
    pub fn run_ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "{args:?} inside the namespace failed ({}): {}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `systemctl show -p PROP --value UNIT` (add `--user` yourself through [`run`] if needed).
    pub fn show(&self, unit: &str, prop: &str) -> String {
        self.run_ok(&["systemctl", "show", "-p", prop, "--value", unit])
            .trim()
            .to_string()
    }

    /// The unit's MainPID inside the namespace, once it is not 0 (waits up to 10 s).
    pub fn main_pid(&self, unit: &str) -> i32 {
        eventually(&format!("MainPID of {unit}"), || {
            self.show(unit, "MainPID").parse().ok().filter(|&p| p != 0)
        })
    }

    /// The host PID of the process that is `inner` inside the namespace.
    pub fn host_pid(&self, inner: i32) -> Option<i32> {
        let ns = fs::read_link(format!("/proc/{}/ns/pid", self.pid)).ok()?;
        for e in fs::read_dir("/proc").ok()?.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if fs::read_link(format!("/proc/{pid}/ns/pid")).ok().as_ref() != Some(&ns) {
                continue;
            }
            let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
                continue;
            };
            let nspid = status.lines().find_map(|l| l.strip_prefix("NSpid:"));
            if nspid.and_then(|n| n.split_whitespace().last()?.parse::<i32>().ok()) == Some(inner) {
                return Some(pid);
            }
        }
        None
    }

    /// Start root's user manager (`user@0.service`) and return once its bus,
    /// `/run/user/0/bus`, exists. Talk to it with [`USER_BUS`] and [`USER_RUNTIME_DIR`] in the
    /// environment (see [`user_command`](Self::user_command)).
    pub fn user_manager(&self) {
        self.run_ok(&["systemctl", "start", "user@0.service"]);
        let bus = PathBuf::from(format!("/proc/{}/root/run/user/0/bus", self.pid));
        eventually("/run/user/0/bus", || bus.exists().then_some(()));
    }

    /// [`command`](Self::command) with the user manager's environment set
    /// (DBUS_SESSION_BUS_ADDRESS, XDG_RUNTIME_DIR).
    pub fn user_command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = self.command(program);
        c.env("DBUS_SESSION_BUS_ADDRESS", USER_BUS)
            .env("XDG_RUNTIME_DIR", USER_RUNTIME_DIR);
        c
    }

    /// A path inside the namespace, seen from the host (`/proc/PID/root/...`): for files in
    /// its private /tmp, /run, /var/log/journal.
    pub fn host_path(&self, inner: impl AsRef<Path>) -> PathBuf {
        let inner = inner.as_ref();
        let rel = inner.strip_prefix("/").unwrap_or(inner);
        PathBuf::from(format!("/proc/{}/root", self.pid)).join(rel)
    }
}

impl Drop for SystemdNs {
    fn drop(&mut self) {
        if self.pid != 0 {
            let _ = self
                .command("systemctl")
                .args(["--no-block", "poweroff"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if let Some(mut child) = self.unshare.take() {
            let end = Instant::now() + Duration::from_secs(5);
            let mut done = false;
            while Instant::now() < end {
                if let Ok(Some(_)) = child.try_wait() {
                    done = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if !done {
                if self.pid != 0 {
                    // SAFETY: kill has no memory-safety preconditions; pid is systemd's.
                    unsafe { libc::kill(self.pid, libc::SIGKILL) };
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if let Some((stop, keeper)) = self.keeper.take() {
            drop(stop);
            let _ = keeper.join();
        }
        // The namespace's processes die with its PID 1, but not all at once: retry a little.
        for dir in std::mem::take(&mut self.cgroups) {
            let end = Instant::now() + Duration::from_secs(5);
            while remove_cgroup(&dir).is_err() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// A fresh scratch directory under target/ (visible inside every namespace), unique to this
/// process and `name`.
pub fn scratch(name: &str) -> PathBuf {
    super::scratch_dir("systemd-ns-scratch", name)
}

/// Poll `f` until it returns Some, for up to 20 s.
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn prerequisites() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "booting a systemd in a namespace needs root (unshare --pid --mount, cgroups)"
    );
    assert!(
        Path::new(SYSTEMD).exists(),
        "{SYSTEMD} is missing: these tests need a real systemd (apt-get install systemd)"
    );
    for tool in ["unshare", "nsenter"] {
        let ok = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "`{tool}` (util-linux) is missing or does not run");
    }
}

fn comm(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim_end().to_string())
        .unwrap_or_default()
}

/// A cgroup `name` below ours in the hierarchies systemd uses (name=systemd and the unified
/// one, or the cgroup2 root on a pure-v2 machine). systemd running in it takes it as its root.
fn make_cgroups(name: &str) -> Vec<PathBuf> {
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut dirs = Vec::new();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(ctrl), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let mount = if ctrl == "name=systemd" {
            PathBuf::from("/sys/fs/cgroup/systemd")
        } else if id == "0" && ctrl.is_empty() {
            if Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists() {
                PathBuf::from("/sys/fs/cgroup/unified")
            } else if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
                PathBuf::from("/sys/fs/cgroup")
            } else {
                continue;
            }
        } else {
            continue;
        };
        let parent = mount.join(path.trim_start_matches('/'));
        remove_stale_cgroups(&parent);
        let dir = parent.join(name);
        match fs::create_dir(&dir) {
            Ok(()) => dirs.push(dir),
            Err(e) => panic!(
                "cannot create the namespace's cgroup {}: {e} (needed so that parallel \
                 systemds do not share unit cgroups)",
                dir.display()
            ),
        }
    }
    assert!(
        !dirs.is_empty(),
        "found no cgroup hierarchy for systemd in /proc/self/cgroup: {own:?}"
    );
    dirs
}

/// Empty `gorescue-ns-PID-N` cgroups left by test processes that died (SIGKILL) without
/// dropping their namespace (whose processes the parent-death signal has killed).
fn remove_stale_cgroups(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("gorescue-ns-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = remove_cgroup(&e.path());
        }
    }
}

/// rmdir a cgroup and everything below it, leaves first.
fn remove_cgroup(dir: &Path) -> std::io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for e in fs::read_dir(dir)?.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup(&e.path())?;
        }
    }
    fs::remove_dir(dir)
}
