//! Where a process's file descriptor (fd 2, stderr) goes, and who else is on it.
//!
//! [`classify`] looks at `/proc/PID/fd/FD` (the link text and a `stat` through it) and, by
//! kind:
//! - a regular file: its path, whether it was deleted, its size, and which other processes have
//!   it open for writing (every `/proc/*/fd/*` with the same device and inode whose
//!   `/proc/*/fdinfo/*` flags allow writing);
//! - a pipe or FIFO: which processes hold it open for reading;
//! - a unix socket: its peer, found with `NETLINK_SOCK_DIAG` (`unix_diag` with
//!   `UDIAG_SHOW_PEER` and `UDIAG_SHOW_NAME`, in the target's network namespace when it has its
//!   own and gorescue may enter it); a peer named `/run/systemd/journal/stdout` is journald's
//!   stdout stream. Without sock_diag, `$JOURNAL_STREAM` (`DEV:INODE`, set by systemd for
//!   services whose output goes to the journal) is compared with the socket's device and inode;
//! - a tty, `/dev/null`, other sockets (TCP/UDP from `/proc/PID/net/*`), anything else.
//!
//! Only reads; nothing is opened through the target's descriptors.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::sock_diag::{SockDiag, UDIAG_SHOW_NAME, UDIAG_SHOW_PEER};
use crate::target::process::InspectError;

/// The socket journald listens on for services' stdout/stderr streams.
pub const JOURNALD_STDOUT_SOCKET: &str = "/run/systemd/journal/stdout";

/// How the peer of a journal stream was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerLookup {
    /// `NETLINK_SOCK_DIAG` named the peer socket.
    SockDiag,
    /// sock_diag was unavailable; `$JOURNAL_STREAM` in the target's environment matched the
    /// socket's device and inode.
    JournalStreamEnv,
}

/// A process holding a descriptor: PID and `comm`.
pub type Holder = (i32, String);

/// Where a file descriptor goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stderr {
    /// A regular file.
    File {
        /// Its path (without the kernel's ` (deleted)` suffix). As the target sees it: in
        /// another mount namespace it may differ.
        path: PathBuf,
        /// The path it was opened by no longer names it (the kernel's ` (deleted)`; another
        /// hard link may remain), or it has no link at all.
        deleted: bool,
        /// Its size now, in bytes.
        size: u64,
        /// Other processes with the same file open for writing (their output can interleave
        /// with the dump), sorted by PID.
        other_writers: Vec<Holder>,
    },
    /// A pipe (anonymous, or a named FIFO).
    Pipe {
        /// The pipe's inode (`pipe:[INODE]`).
        inode: u64,
        /// The FIFO's path, for a named pipe.
        path: Option<PathBuf>,
        /// Processes holding it open for reading, sorted by PID (the target included, should it
        /// hold one).
        readers: Vec<Holder>,
    },
    /// A terminal.
    Tty {
        /// Its path, e.g. `/dev/pts/3`.
        path: PathBuf,
    },
    /// `/dev/null`: whatever is written is lost.
    DevNull,
    /// A unix stream connected to journald's stdout socket: the output is in the journal.
    JournalStream {
        /// The peer's socket name, `/run/systemd/journal/stdout`.
        peer: String,
        /// How that was found.
        found_by: PeerLookup,
    },
    /// Any other socket.
    Socket {
        /// The socket's inode.
        inode: u64,
        /// What is known about it, e.g. "a unix stream socket connected to /run/x.sock
        /// (held by 42 (supervisor))".
        description: String,
    },
    /// Anything else (another character device, an event fd, a directory …).
    Other {
        /// What it is, e.g. `anon_inode:[eventfd]`.
        description: String,
    },
    /// The descriptor is not open.
    Closed,
}

impl Stderr {
    /// A short machine-readable kind: `file`, `pipe`, `tty`, `null`, `journal`, `socket`,
    /// `other` or `closed`.
    pub fn kind(&self) -> &'static str {
        match self {
            Stderr::File { .. } => "file",
            Stderr::Pipe { .. } => "pipe",
            Stderr::Tty { .. } => "tty",
            Stderr::DevNull => "null",
            Stderr::JournalStream { .. } => "journal",
            Stderr::Socket { .. } => "socket",
            Stderr::Other { .. } => "other",
            Stderr::Closed => "closed",
        }
    }

    /// The path, where there is one (file, FIFO, tty, `/dev/null`).
    pub fn path(&self) -> Option<&Path> {
        match self {
            Stderr::File { path, .. } | Stderr::Tty { path } => Some(path),
            Stderr::Pipe { path, .. } => path.as_deref(),
            Stderr::DevNull => Some(Path::new("/dev/null")),
            _ => None,
        }
    }

    /// A one-line description for humans, e.g. "the journal (journald's stdout stream)" or
    /// "the file /home/u/.xsession-errors (deleted; also written by 1234 (Xorg))".
    pub fn describe(&self) -> String {
        match self {
            Stderr::File {
                path,
                deleted,
                other_writers,
                ..
            } => {
                let mut notes = Vec::new();
                if *deleted {
                    notes.push("deleted".to_string());
                }
                if !other_writers.is_empty() {
                    notes.push(format!("also written by {}", holders(other_writers)));
                }
                if notes.is_empty() {
                    format!("the file {}", path.display())
                } else {
                    format!("the file {} ({})", path.display(), notes.join("; "))
                }
            }
            Stderr::Pipe {
                inode,
                path,
                readers,
            } => {
                let what = match path {
                    Some(p) => format!("the named pipe {}", p.display()),
                    None => format!("a pipe (pipe:[{inode}])"),
                };
                if readers.is_empty() {
                    format!("{what}, which no process reads")
                } else {
                    format!("{what} read by {}", holders(readers))
                }
            }
            Stderr::Tty { path } => format!("the terminal {}", path.display()),
            Stderr::DevNull => "/dev/null (the output is discarded)".to_string(),
            Stderr::JournalStream { found_by, .. } => match found_by {
                PeerLookup::SockDiag => "the journal (journald's stdout stream)".to_string(),
                PeerLookup::JournalStreamEnv => {
                    "the journal (journald's stdout stream, recognised by $JOURNAL_STREAM)"
                        .to_string()
                }
            },
            Stderr::Socket { description, .. } => description.clone(),
            Stderr::Other { description } => description.clone(),
            Stderr::Closed => "nothing: the descriptor is closed".to_string(),
        }
    }
}

fn holders(list: &[Holder]) -> String {
    list.iter()
        .map(|(pid, comm)| format!("{pid} ({comm})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Classify descriptor `fd` of process `pid` (use `2` for stderr).
pub fn classify(pid: i32, fd: i32) -> Result<Stderr, InspectError> {
    classify_with(pid, fd, true)
}

/// [`classify`], choosing whether sockets are looked up with sock_diag (`use_sock_diag`) or
/// only through `/proc` and `$JOURNAL_STREAM`, as on a kernel without sock_diag.
pub fn classify_with(pid: i32, fd: i32, use_sock_diag: bool) -> Result<Stderr, InspectError> {
    let link_path = PathBuf::from(format!("/proc/{pid}/fd/{fd}"));
    let link = match fs::read_link(&link_path) {
        Ok(l) => l,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if Path::new(&format!("/proc/{pid}")).exists() {
                return Ok(Stderr::Closed);
            }
            return Err(InspectError::NoSuchProcess { pid });
        }
        Err(e) => return Err(InspectError::from_io(pid, link_path, e)),
    };
    let meta = match fs::metadata(&link_path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if Path::new(&format!("/proc/{pid}")).exists() {
                return Ok(Stderr::Closed);
            }
            return Err(InspectError::NoSuchProcess { pid });
        }
        Err(e) => return Err(InspectError::from_io(pid, link_path, e)),
    };
    let text = link.as_os_str().as_bytes();
    let ft = meta.file_type();

    if ft.is_file() {
        let (path, suffix_deleted) = strip_deleted(&link);
        let other_writers = scan_fds(pid, |_, target, fdinfo| {
            !is_pseudo(target)
                && fs::metadata(target.1)
                    .is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino())
                && fdinfo().is_some_and(writable)
        });
        return Ok(Stderr::File {
            path,
            deleted: meta.nlink() == 0 || suffix_deleted,
            size: meta.size(),
            other_writers,
        });
    }
    if ft.is_fifo() {
        let inode = meta.ino();
        let anon = text.starts_with(b"pipe:");
        let readers = scan_fds(i32::MIN, |_, target, fdinfo| {
            let same = if anon {
                target.0 == text
            } else {
                !is_pseudo(target)
                    && fs::metadata(target.1)
                        .is_ok_and(|m| m.dev() == meta.dev() && m.ino() == inode)
            };
            same && fdinfo().is_some_and(readable)
        });
        return Ok(Stderr::Pipe {
            inode,
            path: (!anon).then(|| strip_deleted(&link).0),
            readers,
        });
    }
    if ft.is_char_device() {
        let rdev = meta.rdev();
        let (major, minor) = (libc::major(rdev), libc::minor(rdev));
        if (major, minor) == (1, 3) {
            return Ok(Stderr::DevNull);
        }
        let is_tty_major = matches!(major, 3 | 4 | 5 | 136..=143 | 188 | 204);
        let p = link.to_string_lossy();
        if is_tty_major || p.starts_with("/dev/pts/") || p.starts_with("/dev/tty") {
            return Ok(Stderr::Tty { path: link });
        }
        return Ok(Stderr::Other {
            description: format!("the character device {} ({major}:{minor})", link.display()),
        });
    }
    if ft.is_socket() {
        return Ok(classify_socket(pid, meta.dev(), meta.ino(), use_sock_diag));
    }
    let description = if ft.is_dir() {
        format!("the directory {}", link.display())
    } else if ft.is_block_device() {
        format!("the block device {}", link.display())
    } else {
        link.to_string_lossy().into_owned()
    };
    Ok(Stderr::Other { description })
}

/// Path without the kernel's ` (deleted)` suffix, and whether it had one.
fn strip_deleted(link: &Path) -> (PathBuf, bool) {
    let b = link.as_os_str().as_bytes();
    match b.strip_suffix(b" (deleted)") {
        Some(s) => (PathBuf::from(std::ffi::OsStr::from_bytes(s)), true),
        None => (link.to_path_buf(), false),
    }
}

/// Links that cannot be a file or FIFO on a filesystem: `socket:[…]`, `pipe:[…]`, `anon_inode:…`.
fn is_pseudo(target: (&[u8], &Path)) -> bool {
    let t = target.0;
    !t.starts_with(b"/")
}

const O_ACCMODE: u32 = 3;

fn writable(flags: u32) -> bool {
    matches!(flags & O_ACCMODE, 1 | 2)
}

fn readable(flags: u32) -> bool {
    matches!(flags & O_ACCMODE, 0 | 2)
}

/// The `flags:` line of `/proc/PID/fdinfo/FD` (octal).
fn fdinfo_flags(pid: i32, fd: &str) -> Option<u32> {
    let text = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
    let line = text.lines().find_map(|l| l.strip_prefix("flags:"))?;
    u32::from_str_radix(line.trim(), 8).ok()
}

/// `comm` of a process, or `?`.
pub fn comm(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim_end_matches('\n').to_string())
        .unwrap_or_else(|_| "?".to_string())
}

/// Every process (except `exclude`) with at least one descriptor for which `pred` holds.
/// `pred` gets the PID, the link (its text and the `/proc/P/fd/N` path to `stat` through),
/// and a lazy reader of the descriptor's `fdinfo` flags. Processes that vanish or cannot be
/// read are skipped.
fn scan_fds(
    exclude: i32,
    mut pred: impl FnMut(i32, (&[u8], &Path), &mut dyn FnMut() -> Option<u32>) -> bool,
) -> Vec<Holder> {
    let mut found = BTreeMap::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == exclude {
            continue;
        }
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let path = fd.path();
            let Ok(target) = fs::read_link(&path) else {
                continue;
            };
            let name = fd.file_name();
            let fdname = name.to_string_lossy();
            let mut flags = || fdinfo_flags(pid, &fdname);
            if pred(pid, (target.as_os_str().as_bytes(), &path), &mut flags) {
                found.insert(pid, comm(pid));
                break;
            }
        }
    }
    found.into_iter().collect()
}

/// The processes holding a descriptor for the socket with inode `ino`.
fn socket_holders(ino: u64, exclude: i32) -> Vec<Holder> {
    let want = format!("socket:[{ino}]");
    scan_fds(exclude, |_, t, _| t.0 == want.as_bytes())
}

fn classify_socket(pid: i32, dev: u64, ino: u64, use_sock_diag: bool) -> Stderr {
    let journal_env = journal_stream_env(pid).is_some_and(|v| v == format!("{dev}:{ino}"));
    let diag = if use_sock_diag {
        SockDiag::open_for(pid)
    } else {
        Err(io::Error::other("not used"))
    };
    let unix = match &diag {
        Ok(d) => d.unix(ino as u32, UDIAG_SHOW_NAME | UDIAG_SHOW_PEER),
        Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
    };
    match unix {
        Ok(Some(me)) => {
            let peer_name = match (&diag, me.peer) {
                (Ok(d), Some(peer)) if peer != 0 => d
                    .unix(peer, UDIAG_SHOW_NAME)
                    .ok()
                    .flatten()
                    .and_then(|p| p.name),
                _ => None,
            };
            if peer_name.as_deref() == Some(JOURNALD_STDOUT_SOCKET) {
                return Stderr::JournalStream {
                    peer: JOURNALD_STDOUT_SOCKET.to_string(),
                    found_by: PeerLookup::SockDiag,
                };
            }
            let kind = me.kind();
            let mut description = format!("a unix {kind} socket");
            if let Some(name) = &me.name {
                description.push_str(&format!(" bound to {name}"));
            }
            match me.peer {
                Some(peer) if peer != 0 => {
                    match &peer_name {
                        Some(n) => description.push_str(&format!(" connected to {n}")),
                        None => description.push_str(" connected to an unnamed socket"),
                    }
                    let holders = socket_holders(u64::from(peer), i32::MIN);
                    if !holders.is_empty() {
                        description.push_str(&format!(" held by {}", self::holders(&holders)));
                    }
                }
                _ => description.push_str(", not connected"),
            }
            Stderr::Socket {
                inode: ino,
                description,
            }
        }
        Ok(None) => {
            // Not a unix socket (in the namespace we could query): TCP, UDP, netlink …
            if journal_env {
                return Stderr::JournalStream {
                    peer: JOURNALD_STDOUT_SOCKET.to_string(),
                    found_by: PeerLookup::JournalStreamEnv,
                };
            }
            Stderr::Socket {
                inode: ino,
                description: inet_description(pid, ino)
                    .unwrap_or_else(|| format!("a socket (socket:[{ino}])")),
            }
        }
        Err(e) => {
            if journal_env {
                return Stderr::JournalStream {
                    peer: JOURNALD_STDOUT_SOCKET.to_string(),
                    found_by: PeerLookup::JournalStreamEnv,
                };
            }
            let what = if let Some(d) = inet_description(pid, ino) {
                d
            } else if let Some(u) = proc_net_unix(pid, ino) {
                u
            } else {
                format!("a socket (socket:[{ino}])")
            };
            Stderr::Socket {
                inode: ino,
                description: format!(
                    "{what}; its peer is unknown (sock_diag unavailable: {e}; fell back to /proc/net)"
                ),
            }
        }
    }
}

/// `$JOURNAL_STREAM` of the target, if readable.
fn journal_stream_env(pid: i32) -> Option<String> {
    let env = fs::read(format!("/proc/{pid}/environ")).ok()?;
    env.split(|&b| b == 0).find_map(|kv| {
        kv.strip_prefix(b"JOURNAL_STREAM=")
            .map(|v| String::from_utf8_lossy(v).into_owned())
    })
}

/// A unix socket as `/proc/PID/net/unix` shows it (no peer there).
fn proc_net_unix(pid: i32, ino: u64) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/net/unix")).ok()?;
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() >= 7 && cols[6].parse::<u64>().ok() == Some(ino) {
            let kind = match u32::from_str_radix(cols[4], 16).unwrap_or(0) {
                1 => "stream",
                2 => "datagram",
                5 => "seqpacket",
                _ => "",
            };
            let mut s = format!("a unix {kind} socket");
            if let Some(path) = cols.get(7) {
                s.push_str(&format!(" bound to {path}"));
            }
            return Some(s);
        }
    }
    None
}

/// A TCP or UDP socket as `/proc/PID/net/{tcp,tcp6,udp,udp6}` show it.
fn inet_description(pid: i32, ino: u64) -> Option<String> {
    let p = procfs::process::Process::new(pid).ok()?;
    for tcp in [p.tcp(), p.tcp6()].into_iter().flatten() {
        if let Some(e) = tcp.iter().find(|e| e.inode == ino) {
            return Some(format!(
                "a TCP socket {} -> {} ({:?})",
                e.local_address, e.remote_address, e.state
            ));
        }
    }
    for udp in [p.udp(), p.udp6()].into_iter().flatten() {
        if let Some(e) = udp.iter().find(|e| e.inode == ino) {
            return Some(format!(
                "a UDP socket {} -> {}",
                e.local_address, e.remote_address
            ));
        }
    }
    None
}
