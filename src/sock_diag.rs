//! `NETLINK_SOCK_DIAG` (linux/sock_diag.h, unix_diag.h, inet_diag.h): ask the kernel about
//! sockets by inode, without reading `/proc/net/*` line by line. `unix_diag` tells a unix
//! socket's name and peer (is fd 2 journald's stdout stream?); `inet_diag` lists the TCP
//! listeners (which of them are the target's, for net/http/pprof). A sock_diag socket sees the
//! network namespace it was made in; [`SockDiag::open_in`] makes it in the target's.

use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
/// `UDIAG_SHOW_NAME`: ask for the socket's bound name.
pub const UDIAG_SHOW_NAME: u32 = 0x1;
/// `UDIAG_SHOW_PEER`: ask for the peer's inode.
pub const UDIAG_SHOW_PEER: u32 = 0x4;
const UNIX_DIAG_NAME: u16 = 0;
const UNIX_DIAG_PEER: u16 = 2;

/// Run `make` (which makes a socket, say) in the network namespace of process `pid`: directly
/// when gorescue is already in it, otherwise on a thread of its own that joins it first
/// (setns(2) affects only the calling thread; needs CAP_SYS_ADMIN). A socket keeps the
/// namespace it was made in after the thread ends.
pub fn in_netns_of<T: Send>(
    pid: i32,
    make: impl FnOnce() -> io::Result<T> + Send,
) -> io::Result<T> {
    let ns_path = format!("/proc/{pid}/ns/net");
    let theirs = fs::metadata(&ns_path)?;
    let ours = fs::metadata("/proc/self/ns/net")?;
    if (theirs.dev(), theirs.ino()) == (ours.dev(), ours.ino()) {
        return make();
    }
    let ns = fs::File::open(&ns_path)?;
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                io::Error::new(
                    io::Error::from(e).kind(),
                    format!("cannot enter the network namespace of PID {pid}: {e} (needs root)"),
                )
            })?;
            make()
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the thread in the namespace panicked")))
    })
}

/// One unix socket, as unix_diag reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixSock {
    /// Its inode.
    pub inode: u32,
    /// `SOCK_STREAM` (1), `SOCK_DGRAM` (2) or `SOCK_SEQPACKET` (5).
    pub sock_type: u8,
    /// The TCP-like state: 1 established, 7 close, 10 listen.
    pub state: u8,
    /// The bound name: a path, or `@name` for the abstract namespace.
    pub name: Option<String>,
    /// The peer's inode, for a connected socket.
    pub peer: Option<u32>,
}

impl UnixSock {
    pub fn kind(&self) -> &'static str {
        match self.sock_type {
            1 => "stream",
            2 => "datagram",
            5 => "seqpacket",
            _ => "",
        }
    }
}

/// A `NETLINK_SOCK_DIAG` socket.
#[derive(Debug)]
pub struct SockDiag {
    fd: OwnedFd,
}

impl SockDiag {
    /// A sock_diag socket in the current network namespace.
    pub fn open() -> io::Result<SockDiag> {
        use nix::sys::socket::{AddressFamily, SockFlag, SockProtocol, SockType, socket};
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkSockDiag,
        )
        .map_err(io::Error::from)?;
        let tv = nix::sys::time::TimeVal::new(2, 0);
        nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::ReceiveTimeout, &tv)
            .map_err(io::Error::from)?;
        Ok(SockDiag { fd })
    }

    /// A sock_diag socket in the network namespace of `pid` (sock_diag only sees sockets of
    /// the namespace its socket was made in). Entering another namespace needs CAP_SYS_ADMIN;
    /// when that fails, a socket in the current namespace is returned.
    pub fn open_for(pid: i32) -> io::Result<SockDiag> {
        SockDiag::open_in(pid).or_else(|_| SockDiag::open())
    }

    /// A sock_diag socket in the network namespace of `pid`, or an error if it cannot be
    /// entered.
    pub fn open_in(pid: i32) -> io::Result<SockDiag> {
        in_netns_of(pid, SockDiag::open)
    }

    /// Look up the unix socket with inode `ino`; `Ok(None)` when there is none (it is not a
    /// unix socket, or it lives in another network namespace).
    pub fn unix(&self, ino: u32, show: u32) -> io::Result<Option<UnixSock>> {
        let mut req = Vec::with_capacity(40);
        req.extend_from_slice(&40u32.to_ne_bytes()); // nlmsg_len
        req.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes()); // nlmsg_type
        req.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes()); // nlmsg_flags
        req.extend_from_slice(&ino.to_ne_bytes()); // nlmsg_seq
        req.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid
        req.push(libc::AF_UNIX as u8); // sdiag_family
        req.push(0); // sdiag_protocol
        req.extend_from_slice(&0u16.to_ne_bytes()); // pad
        req.extend_from_slice(&u32::MAX.to_ne_bytes()); // udiag_states
        req.extend_from_slice(&ino.to_ne_bytes()); // udiag_ino
        req.extend_from_slice(&show.to_ne_bytes()); // udiag_show
        req.extend_from_slice(&u32::MAX.to_ne_bytes()); // udiag_cookie[0]: no cookie
        req.extend_from_slice(&u32::MAX.to_ne_bytes()); // udiag_cookie[1]
        self.send(&req)?;
        let mut buf = vec![0u8; 16 * 1024];
        let n = nix::sys::socket::recv(
            self.fd.as_raw_fd(),
            &mut buf,
            nix::sys::socket::MsgFlags::empty(),
        )
        .map_err(io::Error::from)?;
        parse_unix_diag(&buf[..n], ino)
    }

    /// The TCP sockets in LISTEN state (`inet_diag`, `idiag_states = 1 << TCP_LISTEN`: the
    /// kernel filters, so a host with many connections costs nothing more), of `family`
    /// (`AF_INET` or `AF_INET6`): their bound address and inode.
    pub fn tcp_listeners(&self, family: i32) -> io::Result<Vec<(SocketAddr, u32)>> {
        const TCP_LISTEN: u32 = 10;
        let mut req = Vec::with_capacity(72);
        req.extend_from_slice(&72u32.to_ne_bytes()); // nlmsg_len
        req.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes()); // nlmsg_type
        req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes()); // nlmsg_flags
        req.extend_from_slice(&1u32.to_ne_bytes()); // nlmsg_seq
        req.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid
        req.push(family as u8); // sdiag_family
        req.push(libc::IPPROTO_TCP as u8); // sdiag_protocol
        req.push(0); // idiag_ext
        req.push(0); // pad
        req.extend_from_slice(&(1u32 << TCP_LISTEN).to_ne_bytes()); // idiag_states
        req.extend_from_slice(&[0u8; 48]); // id: match any
        self.send(&req)?;
        let mut found = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = nix::sys::socket::recv(
                self.fd.as_raw_fd(),
                &mut buf,
                nix::sys::socket::MsgFlags::empty(),
            )
            .map_err(io::Error::from)?;
            if n == 0 || parse_inet_dump(&buf[..n], &mut found)? {
                return Ok(found);
            }
        }
    }

    fn send(&self, req: &[u8]) -> io::Result<()> {
        let kernel = nix::sys::socket::NetlinkAddr::new(0, 0);
        nix::sys::socket::sendto(
            self.fd.as_raw_fd(),
            req,
            &kernel,
            nix::sys::socket::MsgFlags::empty(),
        )
        .map_err(io::Error::from)?;
        Ok(())
    }
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn parse_unix_diag(b: &[u8], ino: u32) -> io::Result<Option<UnixSock>> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "short sock_diag reply");
    let len = u32_at(b, 0).ok_or_else(bad)? as usize;
    let ty = u16_at(b, 4).ok_or_else(bad)?;
    let msg = b.get(..len.min(b.len())).ok_or_else(bad)?;
    if ty == NLMSG_ERROR {
        let err = -(u32_at(msg, 16).ok_or_else(bad)? as i32);
        if err == libc::ENOENT {
            return Ok(None);
        }
        return Err(io::Error::from_raw_os_error(err));
    }
    if ty != SOCK_DIAG_BY_FAMILY || msg.len() < 32 {
        return Err(bad());
    }
    let mut sock = UnixSock {
        sock_type: msg[17],
        state: msg[18],
        inode: u32_at(msg, 20).ok_or_else(bad)?,
        name: None,
        peer: None,
    };
    if sock.inode != ino {
        return Ok(None);
    }
    let mut off = 32;
    while off + 4 <= msg.len() {
        let alen = u16_at(msg, off).ok_or_else(bad)? as usize;
        let aty = u16_at(msg, off + 2).ok_or_else(bad)?;
        if alen < 4 || off + alen > msg.len() {
            break;
        }
        let data = &msg[off + 4..off + alen];
        match aty {
            UNIX_DIAG_NAME => {
                sock.name = Some(match data.split_first() {
                    Some((0, abs)) => format!("@{}", String::from_utf8_lossy(abs)),
                    _ => String::from_utf8_lossy(data)
                        .trim_end_matches('\0')
                        .to_string(),
                });
            }
            UNIX_DIAG_PEER => sock.peer = u32_at(data, 0),
            _ => {}
        }
        off += (alen + 3) & !3;
    }
    Ok(Some(sock))
}

/// The messages of one `recv` of an inet_diag dump into `found`; true at `NLMSG_DONE`.
fn parse_inet_dump(b: &[u8], found: &mut Vec<(SocketAddr, u32)>) -> io::Result<bool> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "short inet_diag reply");
    let mut off = 0;
    while off + 16 <= b.len() {
        let len = u32_at(b, off).ok_or_else(bad)? as usize;
        let ty = u16_at(b, off + 4).ok_or_else(bad)?;
        if len < 16 || off + len > b.len() {
            return Err(bad());
        }
        let msg = &b[off..off + len];
        match ty {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let err = -(u32_at(msg, 16).ok_or_else(bad)? as i32);
                return Err(io::Error::from_raw_os_error(err));
            }
            SOCK_DIAG_BY_FAMILY if msg.len() >= 16 + 72 => {
                let m = &msg[16..];
                let port = u16::from_be_bytes([m[4], m[5]]);
                let ip: IpAddr = match m[0] as i32 {
                    libc::AF_INET => Ipv4Addr::new(m[8], m[9], m[10], m[11]).into(),
                    libc::AF_INET6 => {
                        let a: [u8; 16] = m[8..24].try_into().map_err(|_| bad())?;
                        Ipv6Addr::from(a).into()
                    }
                    _ => {
                        off += (len + 3) & !3;
                        continue;
                    }
                };
                let inode = u32_at(m, 68).ok_or_else(bad)?;
                found.push((SocketAddr::new(ip, port), inode));
            }
            _ => {}
        }
        off += (len + 3) & !3;
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_listeners_of_this_process() {
        let v4 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let v6 = std::net::TcpListener::bind("[::1]:0");
        let ino = |l: &std::net::TcpListener| {
            use std::os::unix::fs::MetadataExt;
            fs::metadata(format!("/proc/self/fd/{}", l.as_raw_fd()))
                .unwrap()
                .ino() as u32
        };
        let d = SockDiag::open().unwrap();
        let got = d.tcp_listeners(libc::AF_INET).unwrap();
        assert!(
            got.contains(&(v4.local_addr().unwrap(), ino(&v4))),
            "{got:?}"
        );
        if let Ok(v6) = v6 {
            let got = d.tcp_listeners(libc::AF_INET6).unwrap();
            assert!(
                got.contains(&(v6.local_addr().unwrap(), ino(&v6))),
                "{got:?}"
            );
        }
        // A connected socket is not a listener.
        let c = std::net::TcpStream::connect(v4.local_addr().unwrap()).unwrap();
        let got = d.tcp_listeners(libc::AF_INET).unwrap();
        assert!(!got.iter().any(|(a, _)| *a == c.local_addr().unwrap()));
    }

    #[test]
    fn inet_dump_messages() {
        // Two messages (an IPv4 listener on 0.0.0.0:6060, inode 77), then NLMSG_DONE.
        let mut b = Vec::new();
        let mut msg = vec![0u8; 16 + 72];
        msg[..4].copy_from_slice(&88u32.to_ne_bytes());
        msg[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        msg[16] = libc::AF_INET as u8;
        msg[17] = 10;
        msg[20..22].copy_from_slice(&6060u16.to_be_bytes());
        msg[16 + 68..16 + 72].copy_from_slice(&77u32.to_ne_bytes());
        b.extend_from_slice(&msg);
        let mut found = Vec::new();
        assert!(!parse_inet_dump(&b, &mut found).unwrap());
        assert_eq!(found, vec![("0.0.0.0:6060".parse().unwrap(), 77)]);
        let mut done = vec![0u8; 20];
        done[..4].copy_from_slice(&20u32.to_ne_bytes());
        done[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
        assert!(parse_inet_dump(&done, &mut found).unwrap());
        assert!(parse_inet_dump(&b[..40], &mut found).is_err());
    }
}
