//! Inspection of real processes: Go build info (Go 1.19 and the newest toolchain, normal and
//! stripped), `/proc/PID` facts, and where fd 2 goes, for every wiring the live capture meets.
//!
//! Needs root (other users' processes, a setuid binary, strace, a systemd in a namespace):
//! these tests fail, not skip, without it.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

mod common;

use common::systemd::SystemdNs;
use gorescue::stderr::{self, PeerLookup, Stderr};
use gorescue::target::{InspectError, ProcState, ProcessInfo, read_build_info};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests need root (other users' processes, setuid, strace, systemd)"
    );
}

/// A scratch directory of its own for one test, under target/ (visible inside the systemd
/// namespace, which has its own /tmp).
fn scratch(name: &str) -> PathBuf {
    common::scratch_dir("inspect-scratch", name)
}

/// The installed toolchains (scripts/go-toolchains.sh): (version, go binary), oldest first.
fn toolchains() -> Vec<(String, PathBuf)> {
    let out = Command::new(root().join("scripts/go-toolchains.sh"))
        .output()
        .expect("scripts/go-toolchains.sh");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(v, p)| (v.to_string(), PathBuf::from(p)))
        .collect()
}

/// Debian's Go 1.19 and the newest toolchain.
fn go_versions() -> Vec<(String, PathBuf)> {
    let all = toolchains();
    let old = all
        .iter()
        .find(|(v, _)| v.starts_with("1.19."))
        .cloned()
        .expect("Debian's Go 1.19 (golang-go) is not installed");
    let new = all.last().cloned().unwrap();
    assert!(
        new.0.starts_with("1.2"),
        "the newest toolchain is missing (scripts/install-go.sh): {all:?}"
    );
    vec![old, new]
}

/// tests/goprog built by `go`, stripped with `-s -w` or not (see tests/common/goprog.rs).
fn dumpprog(_ver: &str, go: &Path, stripped: bool) -> PathBuf {
    common::goprog::dumpprog(go, stripped)
}

/// The newest toolchain's unstripped dumpprog (the common target).
fn default_prog() -> PathBuf {
    let (v, go) = go_versions().pop().unwrap();
    dumpprog(&v, &go, false)
}

/// A child process that is killed and reaped when dropped (with its stdout's read end, kept
/// open while it runs).
struct Guard(Child, Option<BufReader<std::process::ChildStdout>>);

impl Guard {
    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `dumpprog -mode wedge` with the given stderr and extra environment, and wait for
/// "ready" on its stdout.
fn wedge(prog: &Path, stderr: impl Into<Stdio>, env: &[(&str, &str)]) -> Guard {
    let mut cmd = Command::new(prog);
    cmd.args(["-mode", "wedge", "-nospin"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr);
    for (k, v) in env {
        cmd.env(k, v);
    }
    wait_ready(Guard(cmd.spawn().expect("spawn dumpprog"), None))
}

fn wait_ready(mut g: Guard) -> Guard {
    let out = g.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let mut r = BufReader::new(out);
        let _ = r.read_line(&mut line);
        let _ = tx.send((line, r));
    });
    let (line, r) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("dumpprog did not say ready");
    assert_eq!(line.trim(), "ready");
    g.1 = Some(r);
    g
}

fn spawn(cmd: &mut Command) -> Guard {
    Guard(cmd.spawn().expect("spawn"), None)
}

/// Poll `f` until it returns Some, for up to 10 s.
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn append(path: &Path) -> fs::File {
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Go build info

#[test]
fn build_info_of_go_binaries_normal_stripped_and_without_section_headers() {
    let dir = scratch("buildinfo");
    for (ver, go) in go_versions() {
        let minor: u32 = ver.split('.').nth(1).unwrap().parse().unwrap();
        for stripped in [false, true] {
            let bin = dumpprog(&ver, &go, stripped);
            let t = Instant::now();
            let info = read_build_info(&bin).unwrap().expect("a Go binary");
            eprintln!(
                "{} ({} bytes): {:?} in {:?}",
                bin.display(),
                bin.metadata().unwrap().len(),
                info.go_version,
                t.elapsed()
            );
            assert_eq!(info.go_version, format!("go{ver}"));
            assert_eq!(info.version_tuple(), Some((1, minor)));
            assert_eq!(info.main_path.as_deref(), Some("dumpprog"));
            assert_eq!(info.main_module.as_deref(), Some("dumpprog"));
            assert_eq!(info.main_version.as_deref(), Some("(devel)"));
            assert_eq!(info.deps, 0);
            assert_eq!(info.setting("GOOS"), Some("linux"));
            assert_eq!(info.setting("CGO_ENABLED"), Some("0"));
            assert_eq!(info.setting("-compiler"), Some("gc"));
            if stripped {
                assert_eq!(info.setting("-ldflags"), Some("-s -w"), "{info:?}");
            } else {
                assert_eq!(info.setting("-ldflags"), None);
            }

            // The same binary with its section headers removed (as sstrip does): found by
            // scanning the file.
            let mut bytes = fs::read(&bin).unwrap();
            assert_eq!(bytes[4], 2, "ELF64");
            bytes[0x28..0x30].fill(0); // e_shoff
            bytes[0x3c..0x40].fill(0); // e_shnum, e_shstrndx
            let noshdr = dir.join(format!("noshdr-{ver}-{stripped}"));
            fs::write(&noshdr, &bytes).unwrap();
            assert_eq!(read_build_info(&noshdr).unwrap(), Some(info.clone()));

            // And through a running process's /proc/PID/exe.
            let g = wedge(&bin, Stdio::null(), &[]);
            let p = ProcessInfo::read(g.pid()).unwrap();
            assert_eq!(p.go_build_info().unwrap(), Some(info));
        }
    }
}

/// A large real Go binary: the toolchain's own `go` command (stripped by the release build),
/// with and without section headers.
#[test]
fn build_info_of_a_large_toolchain_binary() {
    let (ver, go) = go_versions().pop().unwrap();
    let t = Instant::now();
    let info = read_build_info(&go).unwrap().expect("go is a Go program");
    eprintln!("{}: {:?}", go.display(), t.elapsed());
    assert_eq!(info.go_version, format!("go{ver}"));
    assert_eq!(info.main_path.as_deref(), Some("cmd/go"));
    assert_eq!(
        info.main_module, None,
        "the toolchain's commands have no mod line"
    );
    assert_eq!(info.setting("-trimpath"), Some("true"));

    let mut bytes = fs::read(&go).unwrap();
    bytes[0x28..0x30].fill(0);
    bytes[0x3c..0x40].fill(0);
    let copy = scratch("bigbin").join("go-noshdr");
    fs::write(&copy, &bytes).unwrap();
    let t = Instant::now();
    assert_eq!(read_build_info(&copy).unwrap().as_ref(), Some(&info));
    eprintln!(
        "{} bytes without section headers: {:?}",
        bytes.len(),
        t.elapsed()
    );

    // Without program headers either: found by scanning the whole file.
    bytes[0x38..0x3a].fill(0); // e_phnum
    fs::write(&copy, &bytes).unwrap();
    let t = Instant::now();
    let again = read_build_info(&copy).unwrap().expect("found by the scan");
    eprintln!(
        "{} bytes without section or program headers: {:?}",
        bytes.len(),
        t.elapsed()
    );
    assert_eq!(again.go_version, format!("go{ver}"));
}

#[test]
fn non_go_process_has_no_build_info() {
    require_root();
    let g = spawn(Command::new("sleep").arg("1000"));
    // (cmdline is empty for a moment during exec, after comm has changed)
    let p = eventually("exec of sleep", || {
        ProcessInfo::read(g.pid())
            .ok()
            .filter(|p| p.comm == "sleep" && !p.cmdline.is_empty())
    });
    assert_eq!(p.go_build_info().unwrap(), None);
    assert_eq!(p.cmdline, ["sleep", "1000"]);
    assert!(!p.sigquit.caught && !p.sigquit.ignored && !p.sigquit.blocked);
    assert_eq!(read_build_info(Path::new("/bin/sh")).unwrap(), None);
    assert_eq!(read_build_info(&root().join("Cargo.toml")).unwrap(), None);
}

// ---------------------------------------------------------------------------------------------
// ProcessInfo

#[test]
fn process_facts_of_a_wedged_go_program() {
    require_root();
    let prog = default_prog();
    let before = SystemTime::now() - Duration::from_secs(2);
    let g = wedge(
        &prog,
        Stdio::null(),
        &[("GOTRACEBACK", "crash"), ("GODEBUG", "gctrace=0")],
    );
    let p = ProcessInfo::read(g.pid()).unwrap();
    assert_eq!(p.pid, g.pid());
    assert_eq!(p.exe.as_deref(), Some(prog.as_path()));
    assert!(!p.exe_deleted);
    let name: String = prog
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .chars()
        .take(15)
        .collect();
    assert_eq!(p.comm, name);
    assert_eq!(p.cmdline[1..], ["-mode", "wedge", "-nospin"]);
    assert!(
        matches!(p.state, ProcState::Sleeping | ProcState::Running),
        "{:?}",
        p.state
    );
    assert_eq!(p.ppid, std::process::id() as i32);
    assert_eq!(p.tracer_pid, None);
    assert_eq!(
        (p.uid.real, p.uid.effective, p.gid.real, p.gid.effective),
        (0, 0, 0, 0)
    );
    assert_eq!(p.at_secure, Some(false));
    assert!(!p.secure_mode());
    assert!(p.sigquit.caught, "Go catches SIGQUIT");
    assert!(!p.sigquit.ignored && !p.sigquit.blocked && !p.sigquit.pending);
    assert_eq!(p.gotraceback.as_deref(), Some("crash"));
    assert!(p.traceback_crash());
    assert_eq!(p.godebug.as_deref(), Some("gctrace=0"));
    assert_eq!(p.journal_stream, None);
    assert!(
        p.threads >= 2,
        "a Go program has several threads: {}",
        p.threads
    );
    assert!(
        p.start_time >= before && p.start_time <= SystemTime::now(),
        "{:?}",
        p.start_time
    );

    // Without GOTRACEBACK.
    let g2 = wedge(&prog, Stdio::null(), &[]);
    let p2 = ProcessInfo::read(g2.pid()).unwrap();
    assert_eq!(p2.gotraceback, None);
    assert!(!p2.traceback_crash());
}

#[test]
fn deleted_executable_is_reported_and_still_readable() {
    require_root();
    let dir = scratch("deleted-exe");
    let copy = dir.join("dumpprog-copy");
    fs::copy(default_prog(), &copy).unwrap();
    let g = wedge(&copy, Stdio::null(), &[]);
    fs::remove_file(&copy).unwrap();
    let p = ProcessInfo::read(g.pid()).unwrap();
    assert_eq!(p.exe.as_deref(), Some(copy.as_path()));
    assert!(p.exe_deleted);
    assert!(p.go_build_info().unwrap().is_some());
}

#[test]
fn sigquit_ignored_blocked_and_go_reinstalls_its_handler() {
    require_root();
    // trap "" sets SIG_IGN, which exec keeps.
    let g = spawn(Command::new("sh").args(["-c", "trap '' QUIT; exec sleep 1000"]));
    let p = eventually("exec of sleep", || {
        ProcessInfo::read(g.pid())
            .ok()
            .filter(|p| p.comm == "sleep")
    });
    assert!(p.sigquit.ignored);
    assert!(!p.sigquit.caught);

    // A Go program started with SIGQUIT ignored installs its handler anyway (the runtime only
    // respects an inherited SIG_IGN for SIGHUP and SIGINT).
    let mut cmd = Command::new(default_prog());
    cmd.args(["-mode", "wedge", "-nospin"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // SAFETY: between fork and exec, only async-signal-safe calls (sigaction).
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::signal::signal(
                nix::sys::signal::SIGQUIT,
                nix::sys::signal::SigHandler::SigIgn,
            )
            .map(|_| ())
            .map_err(std::io::Error::from)
        });
    }
    let g2 = wait_ready(Guard(cmd.spawn().unwrap(), None));
    let p2 = ProcessInfo::read(g2.pid()).unwrap();
    assert!(p2.sigquit.caught && !p2.sigquit.ignored, "{:?}", p2.sigquit);

    // Blocked: sigprocmask is inherited through exec; a non-Go program keeps it.
    let mut cmd = Command::new("sleep");
    cmd.arg("1000");
    // SAFETY: as above (sigprocmask).
    unsafe {
        cmd.pre_exec(|| {
            let mut set = nix::sys::signal::SigSet::empty();
            set.add(nix::sys::signal::SIGQUIT);
            set.thread_block().map_err(std::io::Error::from)
        });
    }
    let g3 = spawn(&mut cmd);
    let p3 = eventually("exec of sleep", || {
        ProcessInfo::read(g3.pid())
            .ok()
            .filter(|p| p.comm == "sleep")
    });
    assert!(
        p3.sigquit.blocked && !p3.sigquit.blocked_in_some,
        "{:?}",
        p3.sigquit
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(g3.pid()),
        nix::sys::signal::SIGQUIT,
    )
    .unwrap();
    let p3 = eventually("SIGQUIT pending", || {
        ProcessInfo::read(g3.pid())
            .ok()
            .filter(|p| p.sigquit.pending)
    });
    assert!(!p3.state.is_gone(), "a blocked SIGQUIT does not kill it");
}

#[test]
fn traced_stopped_and_zombie_processes() {
    require_root();
    let prog = default_prog();
    let g = wedge(&prog, Stdio::null(), &[]);
    let strace = spawn(
        Command::new("strace")
            .args(["-f", "-o", "/dev/null", "-p"])
            .arg(g.pid().to_string())
            .stderr(Stdio::null()),
    );
    let p = eventually("TracerPid", || {
        ProcessInfo::read(g.pid())
            .ok()
            .filter(|p| p.tracer_pid.is_some())
    });
    assert_eq!(p.tracer_pid, Some(strace.pid()));
    drop(strace);
    eventually("strace detached", || {
        ProcessInfo::read(g.pid())
            .ok()
            .filter(|p| p.tracer_pid.is_none())
    });

    let pid = nix::unistd::Pid::from_raw(g.pid());
    nix::sys::signal::kill(pid, nix::sys::signal::SIGSTOP).unwrap();
    let p = eventually("stopped", || {
        ProcessInfo::read(g.pid())
            .ok()
            .filter(|p| p.state.is_stopped())
    });
    assert_eq!(p.state, ProcState::Stopped);
    nix::sys::signal::kill(pid, nix::sys::signal::SIGCONT).unwrap();

    // A zombie: exited, not reaped.
    let z = spawn(Command::new("true").arg("zombie"));
    let p = eventually("zombie", || {
        let p = ProcessInfo::read(z.pid()).unwrap();
        Some(p).filter(|p| p.state == ProcState::Zombie)
    });
    assert!(p.state.is_gone());
    assert_eq!(p.exe, None);
    assert_eq!(p.go_build_info().unwrap(), None);
}

#[test]
fn errors_no_such_process_thread_and_permission_denied() {
    require_root();
    // No such process: a PID that existed and was reaped.
    let mut c = Command::new("true").spawn().unwrap();
    let dead = c.id() as i32;
    c.wait().unwrap();
    let e = ProcessInfo::read(dead).unwrap_err();
    assert!(
        matches!(e, InspectError::NoSuchProcess { pid } if pid == dead),
        "{e}"
    );
    assert_eq!(e.to_string(), format!("no such process: PID {dead}"));
    assert!(matches!(
        stderr::classify(dead, 2),
        Err(InspectError::NoSuchProcess { .. })
    ));

    // A thread ID of a Go program.
    let g = wedge(&default_prog(), Stdio::null(), &[]);
    let tid = fs::read_dir(format!("/proc/{}/task", g.pid()))
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .into_string()
                .unwrap()
                .parse::<i32>()
                .unwrap()
        })
        .find(|&t| t != g.pid())
        .unwrap();
    let e = ProcessInfo::read(tid).unwrap_err();
    assert!(
        matches!(e, InspectError::Thread { pid, tgid } if pid == tid && tgid == g.pid()),
        "{e}"
    );

    // Permission denied: this test binary, run as nobody, inspects the root-owned target.
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "unprivileged_inspection_child", "--nocapture"])
        .env("INSPECT_TARGET_PID", g.pid().to_string())
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("CHILD-OK"), "{text}");
    let scope = fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .map(|s| format!("kernel.yama.ptrace_scope = {}", s.trim()))
        .unwrap_or_else(|_| "kernel.yama.ptrace_scope is not set".to_string());
    assert!(text.contains(&scope), "{text}");
    assert!(text.contains("root, or with CAP_SYS_PTRACE"), "{text}");
}

/// Run by `errors_no_such_process_thread_and_permission_denied` as user nobody; does nothing
/// otherwise.
#[test]
fn unprivileged_inspection_child() {
    let Ok(pid) = std::env::var("INSPECT_TARGET_PID") else {
        return;
    };
    let pid: i32 = pid.parse().unwrap();
    assert!(!nix::unistd::geteuid().is_root());
    let e = ProcessInfo::read(pid).unwrap_err();
    match &e {
        InspectError::PermissionDenied { pid: p, path, .. } => {
            assert_eq!(*p, pid);
            assert!(path.starts_with(format!("/proc/{pid}")), "{e}");
        }
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
    println!("{e}");
    let e2 = stderr::classify(pid, 2).unwrap_err();
    assert!(
        matches!(e2, InspectError::PermissionDenied { .. }),
        "{e2:?}"
    );
    println!("CHILD-OK");
}

#[test]
fn setuid_go_program_is_in_secure_mode() {
    require_root();
    let dir = scratch("setuid");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.join("dumpprog-setuid");
    fs::copy(default_prog(), &bin).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o4755)).unwrap();
    let mut cmd = Command::new(&bin);
    cmd.args(["-mode", "wedge", "-nospin"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .uid(65534)
        .gid(65534);
    let g = wait_ready(Guard(cmd.spawn().unwrap(), None));
    let p = ProcessInfo::read(g.pid()).unwrap();
    assert_eq!((p.uid.real, p.uid.effective), (65534, 0));
    assert_eq!(p.at_secure, Some(true));
    assert!(p.secure_mode());
}

// ---------------------------------------------------------------------------------------------
// Where fd 2 goes

#[test]
fn stderr_to_a_file() {
    require_root();
    let dir = scratch("file");
    let log = dir.join("app.log");
    fs::write(&log, b"earlier lines\n").unwrap();
    let g = wedge(&default_prog(), append(&log), &[]);
    // A reader of the same file is not a writer.
    let reader = spawn(
        Command::new("sleep")
            .arg("1000")
            .stdin(fs::File::open(&log).unwrap()),
    );
    eventually("reader's exec", || {
        (stderr::comm(reader.pid()) == "sleep").then_some(())
    });
    let s = stderr::classify(g.pid(), 2).unwrap();
    assert_eq!(
        s,
        Stderr::File {
            path: log.clone(),
            deleted: false,
            size: 14,
            other_writers: vec![],
        }
    );
    assert_eq!(s.kind(), "file");
    assert_eq!(s.path(), Some(log.as_path()));
    assert_eq!(s.describe(), format!("the file {}", log.display()));
    // stdout is a pipe to this test, which holds the read end.
    let out = stderr::classify(g.pid(), 1).unwrap();
    match out {
        Stderr::Pipe { readers, path, .. } => {
            assert_eq!(path, None);
            assert_eq!(readers.len(), 1);
            assert_eq!(readers[0].0, std::process::id() as i32);
        }
        other => panic!("{other:?}"),
    }
    // An fd that is not open.
    assert_eq!(stderr::classify(g.pid(), 1000).unwrap(), Stderr::Closed);
}

#[test]
fn stderr_to_a_deleted_file() {
    require_root();
    let dir = scratch("deleted");
    let log = dir.join("xsession-errors");
    let g = wedge(&default_prog(), append(&log), &[]);
    fs::remove_file(&log).unwrap();
    let s = stderr::classify(g.pid(), 2).unwrap();
    assert_eq!(
        s,
        Stderr::File {
            path: log.clone(),
            deleted: true,
            size: 0,
            other_writers: vec![],
        }
    );
    assert_eq!(
        s.describe(),
        format!("the file {} (deleted)", log.display())
    );
}

#[test]
fn stderr_to_a_file_shared_with_other_writers() {
    require_root();
    let dir = scratch("shared");
    let log = dir.join("xsession-errors");
    let g = wedge(&default_prog(), append(&log), &[]);
    let w1 = spawn(
        Command::new("sh")
            .arg("-c")
            .arg(format!("exec sleep 1000 >>'{}'", log.display())),
    );
    // Opened read-write, through another path (a hard link) to the same inode.
    let link = dir.join("hardlink");
    fs::hard_link(&log, &link).unwrap();
    let w2 = spawn(
        Command::new("sh")
            .arg("-c")
            .arg(format!("exec sleep 1001 <>'{}'", link.display())),
    );
    for w in [&w1, &w2] {
        eventually("writer's exec", || {
            (stderr::comm(w.pid()) == "sleep").then_some(())
        });
    }
    let s = stderr::classify(g.pid(), 2).unwrap();
    let mut want = vec![
        (w1.pid(), "sleep".to_string()),
        (w2.pid(), "sleep".to_string()),
    ];
    want.sort();
    assert_eq!(
        s,
        Stderr::File {
            path: log.clone(),
            deleted: false,
            size: 0,
            other_writers: want.clone(),
        }
    );
    fs::remove_file(&log).unwrap();
    fs::remove_file(&link).unwrap();
    let s = stderr::classify(g.pid(), 2).unwrap();
    assert_eq!(
        s.describe(),
        format!(
            "the file {} (deleted; also written by {} (sleep), {} (sleep))",
            log.display(),
            want[0].0,
            want[1].0
        )
    );
}

#[test]
fn stderr_to_dev_null() {
    require_root();
    let g = wedge(&default_prog(), Stdio::null(), &[]);
    let s = stderr::classify(g.pid(), 2).unwrap();
    assert_eq!(s, Stderr::DevNull);
    assert_eq!(s.kind(), "null");
    assert_eq!(s.describe(), "/dev/null (the output is discarded)");
}

#[test]
fn stderr_to_a_pipe_read_by_cat() {
    require_root();
    let (r, w) = nix::unistd::pipe().unwrap();
    let inode = fs::metadata(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&r)
    ))
    .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
    .unwrap();
    let cat = spawn(
        Command::new("cat")
            .stdin(Stdio::from(r))
            .stdout(Stdio::null()),
    );
    let g = wedge(&default_prog(), Stdio::from(w), &[]);
    eventually("cat's exec", || {
        (stderr::comm(cat.pid()) == "cat").then_some(())
    });
    let s = stderr::classify(g.pid(), 2).unwrap();
    assert_eq!(
        s,
        Stderr::Pipe {
            inode,
            path: None,
            readers: vec![(cat.pid(), "cat".to_string())],
        }
    );
    assert_eq!(
        s.describe(),
        format!("a pipe (pipe:[{inode}]) read by {} (cat)", cat.pid())
    );

    // Once cat is gone, nobody reads it.
    drop(cat);
    let s = stderr::classify(g.pid(), 2).unwrap();
    assert!(
        matches!(&s, Stderr::Pipe { readers, .. } if readers.is_empty()),
        "{s:?}"
    );
    assert!(s.describe().ends_with("which no process reads"));
}

#[test]
fn stderr_to_a_named_pipe() {
    require_root();
    let dir = scratch("fifo");
    let fifo = dir.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let reader = spawn(
        Command::new("sh")
            .arg("-c")
            .arg(format!("exec cat <'{}' >/dev/null", fifo.display())),
    );
    let w = fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let g = wedge(&default_prog(), w, &[]);
    let s = stderr::classify(g.pid(), 2).unwrap();
    match &s {
        Stderr::Pipe { path, readers, .. } => {
            assert_eq!(path.as_deref(), Some(fifo.as_path()));
            assert_eq!(readers, &vec![(reader.pid(), "cat".to_string())]);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        s.describe()
            .starts_with(&format!("the named pipe {}", fifo.display()))
    );
}

#[test]
fn stderr_to_a_pty() {
    require_root();
    let pty = nix::pty::openpty(None, None).unwrap();
    let name = nix::unistd::ttyname(&pty.slave).unwrap();
    let slave: OwnedFd = pty.slave;
    let g = wedge(&default_prog(), Stdio::from(slave), &[]);
    let s = stderr::classify(g.pid(), 2).unwrap();
    assert_eq!(s, Stderr::Tty { path: name.clone() });
    assert_eq!(s.describe(), format!("the terminal {}", name.display()));
    drop(g);
    drop(pty.master);
}

#[test]
fn stderr_to_unix_sockets_found_through_sock_diag() {
    require_root();
    let dir = scratch("unix");
    let path = dir.join("collector.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let client = std::os::unix::net::UnixStream::connect(&path).unwrap();
    let (_server, _) = listener.accept().unwrap();
    let g = wedge(&default_prog(), OwnedFd::from(client), &[]);
    let s = stderr::classify(g.pid(), 2).unwrap();
    match &s {
        Stderr::Socket { description, .. } => assert_eq!(
            description,
            &format!(
                "a unix stream socket connected to {} held by {} ({})",
                path.display(),
                std::process::id(),
                stderr::comm(std::process::id() as i32)
            )
        ),
        other => panic!("{other:?}"),
    }
    // Without sock_diag: the kind from /proc/net/unix, and it says the peer is unknown.
    let s = stderr::classify_with(g.pid(), 2, false).unwrap();
    match &s {
        Stderr::Socket { description, .. } => {
            assert!(
                description.starts_with(
                    "a unix stream socket; its peer is unknown (sock_diag unavailable"
                ),
                "{description}"
            )
        }
        other => panic!("{other:?}"),
    }

    // A socketpair: the peer is unnamed.
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let g2 = wedge(&default_prog(), OwnedFd::from(a), &[]);
    let s = stderr::classify(g2.pid(), 2).unwrap();
    match &s {
        Stderr::Socket { description, .. } => assert!(
            description.starts_with("a unix stream socket connected to an unnamed socket held by"),
            "{description}"
        ),
        other => panic!("{other:?}"),
    }
    drop(b);

    // A TCP connection.
    let tl = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tc = std::net::TcpStream::connect(tl.local_addr().unwrap()).unwrap();
    let g3 = wedge(&default_prog(), OwnedFd::from(tc), &[]);
    let s = stderr::classify(g3.pid(), 2).unwrap();
    match &s {
        Stderr::Socket { description, .. } => assert!(
            description.starts_with("a TCP socket 127.0.0.1:")
                && description.contains(&format!("-> {}", tl.local_addr().unwrap())),
            "{description}"
        ),
        other => panic!("{other:?}"),
    }
}

/// The journal case, with a real systemd (PID 1 of a private PID+mount namespace, private
/// tmpfs over /tmp, /var/tmp and /var/log/journal; basic.target) running dumpprog as a
/// transient service with `StandardError=journal`.
#[test]
fn stderr_to_the_journal_under_a_real_systemd() {
    require_root();
    let sd = SystemdNs::boot();
    let prog = default_prog();
    let unit = format!("gorescue-inspect-{}.service", std::process::id());
    let out = sd
        .command("systemd-run")
        .args([
            "--unit",
            &unit,
            "-p",
            "StandardOutput=journal",
            "-p",
            "StandardError=journal",
        ])
        .arg(&prog)
        .args(["-mode", "wedge", "-nospin"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The service's PID inside, then outside the namespace.
    let inner = sd.main_pid(&unit);
    let host = eventually("host PID", || sd.host_pid(inner));
    let p = eventually("the service's exec", || {
        ProcessInfo::read(host)
            .ok()
            .filter(|p| p.exe.as_deref() == Some(prog.as_path()))
    });
    let js = p
        .journal_stream
        .clone()
        .expect("systemd sets JOURNAL_STREAM");

    let s = stderr::classify(host, 2).unwrap();
    assert_eq!(
        s,
        Stderr::JournalStream {
            peer: "/run/systemd/journal/stdout".to_string(),
            found_by: PeerLookup::SockDiag,
        }
    );
    assert_eq!(s.kind(), "journal");
    assert_eq!(s.describe(), "the journal (journald's stdout stream)");

    // Without sock_diag: $JOURNAL_STREAM (DEV:INODE) matches the socket.
    let s = stderr::classify_with(host, 2, false).unwrap();
    assert_eq!(
        s,
        Stderr::JournalStream {
            peer: "/run/systemd/journal/stdout".to_string(),
            found_by: PeerLookup::JournalStreamEnv,
        },
        "JOURNAL_STREAM={js}"
    );
    let _ = sd.run(&["systemctl", "stop", &unit]);
}
