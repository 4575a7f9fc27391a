//! `--keep-running`, route 2: fetch `/debug/pprof/goroutine?debug=2` from a net/http/pprof
//! handler that the process already serves.
//!
//! The listeners are the process's own: the TCP sockets in LISTEN state among its file
//! descriptors (`/proc/PID/fd` against the listeners sock_diag reports in the process's
//! network namespace; `/proc/PID/net/tcp{,6}` without sock_diag). A listener bound to the
//! wildcard address is reached on loopback. When the process is in another network namespace
//! (`PrivateNetwork=`, a container), the socket is made in that namespace by a thread that
//! joins it (setns(2), root only), so that its loopback is the process's.
//!
//! A probe is a `GET /debug/pprof/` (the index page: cheap, it stops nothing; it also tells the
//! number of goroutines). The fetch is the listing itself: the handler calls
//! `runtime.Stack(buf, all=true)`, which stops the Go world while it formats every goroutine
//! (again with a buffer twice as large while the listing does not fit: 1 MiB, 2 MiB, ... up to
//! 64 MiB, where the runtime cuts it). The time to the response's first byte is therefore an
//! upper bound of how long the world was stopped. gorescue itself stops, traces and signals
//! nothing.
//!
//! HTTP/1.0, so that the body ends where the server closes the connection (no chunking); the
//! response head is parsed with `httparse`.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::sock_diag::{SockDiag, in_netns_of};

/// The path of the listing.
pub const LISTING_PATH: &str = "/debug/pprof/goroutine?debug=2";
/// The path probed for.
pub const INDEX_PATH: &str = "/debug/pprof/";
/// `runtime/pprof` gives up growing its buffer at 64 MiB and writes what fitted.
pub const RUNTIME_CAP: u64 = 64 << 20;

/// The TCP listeners of process `pid`, as addresses to connect to (a wildcard bind becomes
/// loopback), port 6060 (the conventional pprof port) first, then by port.
pub fn listeners(pid: i32) -> io::Result<Vec<SocketAddr>> {
    listeners_with(pid, true)
}

/// [`listeners`], with or without sock_diag (without: as on a kernel that lacks it).
pub fn listeners_with(pid: i32, use_sock_diag: bool) -> io::Result<Vec<SocketAddr>> {
    let mut inodes = HashSet::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        let Ok(e) = e else { continue };
        if let Ok(t) = std::fs::read_link(e.path())
            && let Some(n) = t
                .to_str()
                .and_then(|s| s.strip_prefix("socket:["))
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse::<u64>().ok())
        {
            inodes.insert(n);
        }
    }
    let diag = if use_sock_diag {
        tcp_listeners_diag(pid)
    } else {
        Err(io::Error::other("not used"))
    };
    let mut addrs: Vec<SocketAddr> = match diag {
        Ok(all) => all
            .into_iter()
            .filter(|(_, ino)| inodes.contains(&u64::from(*ino)))
            .map(|(a, _)| connect_addr(a))
            .collect(),
        // No sock_diag (no module, or the namespace cannot be entered): /proc/PID/net/tcp{,6},
        // the process's namespace too, read line by line.
        Err(_) => {
            let proc = procfs::process::Process::new(pid).map_err(io::Error::other)?;
            let mut v = Vec::new();
            for table in [proc.tcp(), proc.tcp6()] {
                // A kernel without IPv6 has no tcp6 table.
                let Ok(table) = table else { continue };
                v.extend(
                    table
                        .into_iter()
                        .filter(|e| {
                            e.state == procfs::net::TcpState::Listen && inodes.contains(&e.inode)
                        })
                        .map(|e| connect_addr(e.local_address)),
                );
            }
            v
        }
    };
    addrs.sort_by_key(|a| (a.port() != 6060, a.port(), a.is_ipv6(), *a));
    addrs.dedup();
    Ok(addrs)
}

/// Every TCP listener in the network namespace of `pid`, through sock_diag (the kernel picks
/// the listeners: no walk over every connection of a busy host).
fn tcp_listeners_diag(pid: i32) -> io::Result<Vec<(SocketAddr, u32)>> {
    let d = SockDiag::open_in(pid)?;
    let mut all = d.tcp_listeners(libc::AF_INET)?;
    // A kernel without IPv6 refuses AF_INET6.
    if let Ok(v6) = d.tcp_listeners(libc::AF_INET6) {
        all.extend(v6);
    }
    Ok(all)
}

/// Where to connect to reach a listener bound to `bound`.
pub fn connect_addr(bound: SocketAddr) -> SocketAddr {
    let ip = match bound.ip() {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        // An IPv4-mapped bind on a dual-stack socket.
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(a),
        },
        ip => ip,
    };
    SocketAddr::new(ip, bound.port())
}

/// Connect to `addr` in process `pid`'s network namespace.
pub fn connect(pid: i32, addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    in_netns_of(pid, || TcpStream::connect_timeout(&addr, timeout))
}

/// A response's head.
#[derive(Debug, Clone)]
pub struct Head {
    pub status: u16,
    pub reason: String,
    pub content_length: Option<u64>,
    pub chunked: bool,
}

/// Parse a response head from the start of `buf`: `Ok(Some((head, length of the head)))`,
/// `Ok(None)` while incomplete.
pub fn parse_head(buf: &[u8]) -> io::Result<Option<(Head, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Response::new(&mut headers);
    let n = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not an HTTP response ({e})"),
            ));
        }
    };
    let header = |name: &str| {
        r.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
    };
    Ok(Some((
        Head {
            status: r.code.unwrap_or(0),
            reason: r.reason.unwrap_or("").to_string(),
            content_length: header("content-length").and_then(|v| v.parse().ok()),
            chunked: header("transfer-encoding")
                .is_some_and(|v| v.to_ascii_lowercase().contains("chunked")),
        },
        n,
    )))
}

/// What one GET did.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub head: Head,
    /// From the request sent to the response's first byte.
    pub first_byte: Duration,
    /// From the request sent to the end of the body.
    pub total: Duration,
    /// Bytes of body written to `out`.
    pub body_bytes: u64,
}

/// `GET path` on `stream` (HTTP/1.0), the body to `out` (only when the status is 200; other
/// bodies are read up to 4 KiB and dropped). `idle` bounds every wait for bytes; `limit`
/// bounds the body.
pub fn get(
    mut stream: TcpStream,
    host: SocketAddr,
    path: &str,
    out: &mut dyn Write,
    idle: Duration,
    limit: u64,
) -> io::Result<Fetched> {
    stream.set_read_timeout(Some(idle))?;
    stream.set_write_timeout(Some(idle))?;
    let req = format!(
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: gorescue/{}\r\nAccept-Encoding: identity\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    let t0 = Instant::now();
    stream.write_all(req.as_bytes())?;
    let mut buf = vec![0u8; 64 << 10];
    let mut have = 0;
    let mut first_byte = None;
    let (head, head_len) = loop {
        if have == buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the response head is longer than 64 KiB",
            ));
        }
        let n = stream.read(&mut buf[have..])?;
        first_byte.get_or_insert_with(|| t0.elapsed());
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                if have == 0 {
                    "the connection was closed without a response".to_string()
                } else {
                    "the connection was closed inside the response head".to_string()
                },
            ));
        }
        have += n;
        if let Some(h) = parse_head(&buf[..have])? {
            break h;
        }
    };
    let first_byte = first_byte.unwrap_or_default();
    if head.chunked {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the server sent a chunked body to an HTTP/1.0 request",
        ));
    }
    let (limit, sink): (u64, &mut dyn Write) = if head.status == 200 {
        (limit, out)
    } else {
        (4096, &mut io::sink())
    };
    let want = head.content_length.map_or(limit, |l| l.min(limit));
    let mut body = 0u64;
    let mut chunk = &buf[head_len..have];
    loop {
        let take = (chunk.len() as u64).min(want - body) as usize;
        sink.write_all(&chunk[..take])?;
        body += take as u64;
        if body >= want {
            break;
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        chunk = &buf[..n];
    }
    if let Some(l) = head.content_length
        && body < l
        && head.status == 200
    {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the body ended after {body} of {l} bytes"),
        ));
    }
    Ok(Fetched {
        head,
        first_byte,
        total: t0.elapsed(),
        body_bytes: body,
    })
}

/// The number of goroutines on net/http/pprof's index page
/// (`<tr><td>N</td><td><a href='goroutine?debug=1'>goroutine</a></td></tr>`), and whether it
/// is that page at all.
pub fn parse_index(page: &[u8]) -> Option<Option<u64>> {
    let page = String::from_utf8_lossy(page);
    let link = page.find("goroutine?debug=")?;
    // The count is the row's first cell.
    let count = page[..link]
        .rfind("<tr>")
        .and_then(|i| {
            page[i..link]
                .strip_prefix("<tr>")?
                .trim_start()
                .strip_prefix("<td>")
        })
        .and_then(|row| row.split("</td>").next())
        .and_then(|n| n.trim().parse().ok());
    Some(count)
}

/// A listener that serves net/http/pprof.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    /// From the index page.
    pub goroutines: Option<u64>,
}

impl Endpoint {
    pub fn listing_url(&self) -> String {
        format!("http://{}{LISTING_PATH}", self.addr)
    }
}

/// What probing one listener found.
#[derive(Debug, Clone)]
pub enum Probe {
    Pprof(Endpoint),
    /// It answered, but not with the pprof index (the status and reason).
    Other(SocketAddr, String),
    Failed(SocketAddr, String),
}

/// Probing stops after this long, whatever is left (many listeners that do not answer).
const PROBE_BUDGET: Duration = Duration::from_secs(5);

/// Probe the listeners of `pid` in order until one serves the pprof index. Returns what each
/// probe found (the last one is the endpoint, if any). `timeout` bounds each connect and read;
/// listeners left when [`PROBE_BUDGET`] is spent are reported as not probed.
pub fn probe(pid: i32, timeout: Duration) -> io::Result<Vec<Probe>> {
    let mut found = Vec::new();
    let start = Instant::now();
    for addr in listeners(pid)? {
        if start.elapsed() >= PROBE_BUDGET {
            found.push(Probe::Failed(addr, "not probed (time is up)".into()));
            continue;
        }
        let p = probe_one(pid, addr, timeout);
        let done = matches!(p, Probe::Pprof(_));
        found.push(p);
        if done {
            break;
        }
    }
    Ok(found)
}

fn probe_one(pid: i32, addr: SocketAddr, timeout: Duration) -> Probe {
    let stream = match connect(pid, addr, timeout) {
        Ok(s) => s,
        Err(e) => return Probe::Failed(addr, e.to_string()),
    };
    let mut page = Vec::new();
    match get(stream, addr, INDEX_PATH, &mut page, timeout, 1 << 20) {
        Ok(f) if f.head.status == 200 => match parse_index(&page) {
            Some(goroutines) => Probe::Pprof(Endpoint { addr, goroutines }),
            None => Probe::Other(addr, "200, but not net/http/pprof's index".into()),
        },
        Ok(f) => Probe::Other(addr, format!("{} {}", f.head.status, f.head.reason)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut => {
            Probe::Failed(addr, "no HTTP answer".into())
        }
        Err(e) => Probe::Failed(addr, e.to_string()),
    }
}

/// Fetch the goroutine listing from `ep` into `out`.
pub fn fetch(pid: i32, ep: &Endpoint, out: &mut dyn Write, idle: Duration) -> io::Result<Fetched> {
    let stream = connect(pid, ep.addr, idle)?;
    let f = get(
        stream,
        ep.addr,
        LISTING_PATH,
        out,
        idle,
        RUNTIME_CAP + (1 << 20),
    )
    .map_err(|e| match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "no bytes for {} (--timeout)",
                humantime::format_duration(idle)
            ),
        ),
        _ => e,
    })?;
    if f.head.status != 200 {
        return Err(io::Error::other(format!(
            "{} answered {} {}",
            ep.listing_url(),
            f.head.status,
            f.head.reason
        )));
    }
    Ok(f)
}

/// Rough pauses, from measurements on a 2-vCPU VM (benches/keep_running.sh): the fork copies
/// page tables at about 30 ms per GiB of resident anonymous memory; `runtime.Stack` formats
/// about 4 µs per goroutine (shallow stacks, ~200 bytes each), once per buffer size tried.
pub fn estimate_pprof_pause(goroutines: u64) -> Duration {
    let bytes = goroutines * 200;
    let mut rounds = 1;
    let mut buf = 1u64 << 20;
    while bytes >= buf && buf < RUNTIME_CAP {
        buf *= 2;
        rounds += 1;
    }
    Duration::from_micros(goroutines * 4 * rounds)
}

/// See [`estimate_pprof_pause`].
pub fn estimate_fork_pause(rss_anon_bytes: u64) -> Duration {
    Duration::from_micros(2000 + rss_anon_bytes * 30_000 / (1 << 30))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_binds_are_reached_on_loopback() {
        let c = |s: &str| connect_addr(s.parse().unwrap()).to_string();
        assert_eq!(c("0.0.0.0:6060"), "127.0.0.1:6060");
        assert_eq!(c("[::]:80"), "[::1]:80");
        assert_eq!(c("[::ffff:0.0.0.0]:81"), "127.0.0.1:81");
        assert_eq!(c("[::ffff:10.1.2.3]:82"), "10.1.2.3:82");
        assert_eq!(c("10.0.0.5:8080"), "10.0.0.5:8080");
        assert_eq!(c("[fe80::1]:9"), "[fe80::1]:9");
    }

    #[test]
    fn response_heads() {
        let r =
            b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\ngoroutine 1";
        let (h, n) = parse_head(r).unwrap().unwrap();
        assert_eq!(
            (h.status, h.content_length, h.chunked),
            (200, Some(12), false)
        );
        assert_eq!(&r[n..], b"goroutine 1");
        assert!(
            parse_head(b"HTTP/1.1 404 Not Found\r\nContent-")
                .unwrap()
                .is_none()
        );
        let (h, _) = parse_head(b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: Chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            (h.status, h.reason.as_str(), h.chunked),
            (404, "Not Found", true)
        );
        assert!(parse_head(b"SSH-2.0-OpenSSH_9.2\r\n").is_err());
    }

    #[test]
    fn index_page() {
        // As Go 1.19 to 1.27 write it.
        let page = b"<table>\n<thead><td>Count</td><td>Profile</td></thead>\n\
<tr><td>12</td><td><a href='allocs?debug=1'>allocs</a></td></tr>\n\
<tr><td>10005</td><td><a href='goroutine?debug=1'>goroutine</a></td></tr>\n\
<tr><td>0</td><td><a href='goroutineleak?debug=1'>goroutineleak</a></td></tr>\n</table>\n\
<a href=\"goroutine?debug=2\">full goroutine stack dump</a>";
        assert_eq!(parse_index(page), Some(Some(10005)));
        assert_eq!(
            parse_index(b"<a href=\"goroutine?debug=2\">dump</a>"),
            Some(None)
        );
        assert_eq!(parse_index(b"<html>hello</html>"), None);
    }

    #[test]
    fn estimates_follow_the_measurements() {
        // Measured (benches/keep_running.sh): 1,000 goroutines ~4-7 ms, 10,000 ~50-70 ms to
        // the first byte, 50,000 ~0.8-0.9 s; the fork of 1 GiB resident ~33-40 ms.
        let ms = |d: Duration| d.as_millis();
        assert_eq!(ms(estimate_pprof_pause(1000)), 4);
        assert_eq!(ms(estimate_pprof_pause(10_000)), 80);
        assert_eq!(ms(estimate_pprof_pause(50_000)), 1000);
        assert_eq!(ms(estimate_fork_pause(1 << 30)), 32);
        assert_eq!(ms(estimate_fork_pause(0)), 2);
    }
}
