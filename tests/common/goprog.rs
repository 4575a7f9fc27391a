//! Real Go test processes: build tests/goprog with a real toolchain (once per test binary),
//! start it with its stderr wired somewhere, wait until it is set up, kill it on drop.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use super::root;

/// Debian's Go 1.19 and the newest toolchain scripts/install-go.sh installed.
pub fn toolchains() -> Vec<(String, PathBuf)> {
    let out = Command::new("bash")
        .arg(root().join("scripts/go-toolchains.sh"))
        .output()
        .expect("scripts/go-toolchains.sh");
    let list: Vec<(String, PathBuf)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(v, p)| (v.to_string(), PathBuf::from(p)))
        .collect();
    let old = list.iter().find(|(v, _)| v.starts_with("1.19")).cloned();
    let new = list.last().cloned();
    match (old, new) {
        (Some(o), Some(n)) if o.0 != n.0 => vec![o, n],
        _ => panic!(
            "need Debian's Go 1.19 and a newer Go (scripts/install-go.sh installs them); found {list:?}"
        ),
    }
}

/// `dumpprog` built by `go` (stripped with -ldflags='-s -w' when asked).
pub fn dumpprog(go: &Path, stripped: bool) -> PathBuf {
    build(go, "dumpprog", stripped)
}

/// `serveprog` (tests/goprog/serveprog: parked goroutines, a live heap, HTTP with optional
/// net/http/pprof) built by `go`.
pub fn serveprog(go: &Path, stripped: bool) -> PathBuf {
    build(go, "serveprog", stripped)
}

/// Build program `prog` of tests/goprog (`dumpprog` is the module's root package).
fn build(go: &Path, prog: &str, stripped: bool) -> PathBuf {
    type Key = (PathBuf, String, bool);
    static BUILT: OnceLock<Mutex<HashMap<Key, PathBuf>>> = OnceLock::new();
    let mut map = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let key = (go.to_path_buf(), prog.to_string(), stripped);
    if let Some(b) = map.get(&key) {
        return b.clone();
    }
    let tag = go
        .ancestors()
        .nth(3)
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = root().join("target/test-bin");
    std::fs::create_dir_all(&dir).unwrap();
    let name = format!("{prog}-{tag}{}", if stripped { "-stripped" } else { "" });
    let out = dir.join(&name);
    // Build under a unique name and rename: test binaries run in parallel.
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    let mut c = Command::new(go);
    c.arg("build").arg("-o").arg(&tmp);
    if stripped {
        c.arg("-ldflags=-s -w");
    }
    let pkg = if prog == "dumpprog" {
        ".".to_string()
    } else {
        format!("./{prog}")
    };
    let st = c
        .arg(pkg)
        .current_dir(root().join("tests/goprog"))
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "")
        .env("CGO_ENABLED", "0")
        .env("GOCACHE", root().join("target/gocache"))
        .env("GOPATH", root().join("target/gopath"))
        .status()
        .expect("go build");
    assert!(st.success(), "go build with {} failed", go.display());
    std::fs::rename(&tmp, &out).unwrap();
    map.insert(key, out.clone());
    out
}

/// Start serveprog `bin` with `args` (plus `-http DIR/addr`), its stderr to DIR/stderr;
/// returns the process, its stderr file and the address it serves on (on loopback).
pub fn serve(bin: &Path, dir: &Path, args: &[&str]) -> (Proc, PathBuf, String) {
    let errfile = dir.join("stderr");
    let addrfile = dir.join("addr");
    let mut all = args.to_vec();
    all.extend(["-http", addrfile.to_str().unwrap()]);
    let p = Proc::start(bin, &all, Stderr::File(errfile.clone()), &[]);
    let addr = std::fs::read_to_string(&addrfile).unwrap();
    let port = addr.rsplit(':').next().unwrap();
    (p, errfile, format!("127.0.0.1:{port}"))
}

/// `GET path` over HTTP/1.0 to `addr`: the whole response, head included. `timeout` bounds
/// every read.
pub fn http_get(addr: &str, path: &str, timeout: std::time::Duration) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(addr)?;
    c.set_read_timeout(Some(timeout))?;
    write!(c, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n")?;
    let mut s = String::new();
    c.read_to_string(&mut s)?;
    Ok(s)
}

/// Where a test process's stderr goes.
pub enum Stderr {
    Null,
    File(PathBuf),
    Pipe,
    Fd(std::os::fd::OwnedFd),
}

/// A running test process; killed and reaped on drop.
pub struct Proc {
    pub child: Child,
    _stdout: BufReader<ChildStdout>,
    pub stderr: Option<std::process::ChildStderr>,
}

impl Proc {
    /// Start `bin args`, wait for its "ready" line.
    pub fn start(bin: &Path, args: &[&str], err: Stderr, env: &[(&str, &str)]) -> Proc {
        let mut c = Command::new(bin);
        c.args(args).stdin(Stdio::null()).stdout(Stdio::piped());
        for (k, v) in env {
            c.env(k, v);
        }
        match err {
            Stderr::Null => c.stderr(Stdio::null()),
            Stderr::File(p) => c.stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .unwrap(),
            ),
            Stderr::Pipe => c.stderr(Stdio::piped()),
            Stderr::Fd(fd) => c.stderr(Stdio::from(File::from(fd))),
        };
        let mut child = c.spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let stderr = child.stderr.take();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "{} did not get ready", bin.display());
        Proc {
            child,
            _stdout: stdout,
            stderr,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The process's state letter from /proc/PID/stat, if it is still there.
    pub fn state(&self) -> Option<char> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).ok()?;
        let after = &stat[stat.rfind(')')? + 2..];
        after.chars().next()
    }

    /// TracerPid from /proc/PID/status.
    pub fn tracer(&self) -> Option<i32> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        s.lines()
            .find_map(|l| l.strip_prefix("TracerPid:"))
            .and_then(|v| v.trim().parse().ok())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test needs root (ptrace, pidfd_getfd, other users' /proc)"
    );
}
