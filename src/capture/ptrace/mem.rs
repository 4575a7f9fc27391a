//! Target memory: process_vm_readv / process_vm_writev, with PTRACE_PEEKDATA / PTRACE_POKEDATA
//! as the fallback (the latter also writes read-only pages; the former are faster).

use std::io;

const WORD: usize = std::mem::size_of::<libc::c_long>();

pub fn read(pid: i32, addr: u64, buf: &mut [u8]) -> io::Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as usize as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: local points to buf; the remote address is only interpreted by the kernel.
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    if n == buf.len() as isize {
        return Ok(());
    }
    // Partial read or failure: word by word through ptrace.
    for (i, chunk) in buf.chunks_mut(WORD).enumerate() {
        let w = peek(pid, addr + (i * WORD) as u64)?;
        chunk.copy_from_slice(&w.to_ne_bytes()[..chunk.len()]);
    }
    Ok(())
}

pub fn write(pid: i32, addr: u64, data: &[u8]) -> io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    let local = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as usize as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: local points to data; the remote address is only interpreted by the kernel.
    let n = unsafe { libc::process_vm_writev(pid, &local, 1, &remote, 1, 0) };
    if n == data.len() as isize {
        return Ok(());
    }
    for (i, chunk) in data.chunks(WORD).enumerate() {
        let at = addr + (i * WORD) as u64;
        let mut w = if chunk.len() < WORD {
            peek(pid, at)?.to_ne_bytes()
        } else {
            [0u8; WORD]
        };
        w[..chunk.len()].copy_from_slice(chunk);
        poke(pid, at, libc::c_long::from_ne_bytes(w))?;
    }
    Ok(())
}

fn peek(pid: i32, addr: u64) -> io::Result<libc::c_long> {
    // PEEKDATA returns the word; -1 is a valid word, so errno tells.
    // SAFETY: errno location is thread-local; PTRACE_PEEKDATA takes integer arguments.
    unsafe {
        *libc::__errno_location() = 0;
        let v = libc::ptrace(
            libc::PTRACE_PEEKDATA,
            pid,
            addr as usize as *mut libc::c_void,
            std::ptr::null_mut::<libc::c_void>(),
        );
        if v == -1 && *libc::__errno_location() != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(v)
    }
}

fn poke(pid: i32, addr: u64, v: libc::c_long) -> io::Result<()> {
    // SAFETY: PTRACE_POKEDATA with integer arguments.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_POKEDATA,
            pid,
            addr as usize as *mut libc::c_void,
            v as usize as *mut libc::c_void,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The first `aligned` occurrence of `pattern` in an executable mapping of `pid`, looking at the
/// vDSO first, then the other r-x mappings in /proc/PID/maps order (at most 64 MiB each),
/// and not at any address in `avoid`.
pub fn find_in_executable(pid: i32, pattern: &[u8], align: u64, avoid: &[u64]) -> Option<u64> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let mut ranges: Vec<(u64, u64, bool)> = Vec::new();
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else {
            continue;
        };
        if !perms.starts_with("r-x") && !perms.starts_with("r-xp") {
            continue;
        }
        let path = line.split_whitespace().nth(5).unwrap_or("");
        if path == "[vsyscall]" {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) else {
            continue;
        };
        ranges.push((a, b, path == "[vdso]"));
    }
    ranges.sort_by_key(|r| !r.2);
    const CHUNK: u64 = 1 << 20;
    let mut buf = vec![0u8; CHUNK as usize + pattern.len()];
    for (start, end, _) in ranges {
        let end = end.min(start + (64 << 20));
        let mut at = start;
        while at < end {
            let len = ((end - at).min(CHUNK) as usize + pattern.len()).min((end - at) as usize);
            if read(pid, at, &mut buf[..len]).is_err() {
                break;
            }
            let hay = &buf[..len];
            let mut from = 0;
            while let Some(i) = memchr::memmem::find(&hay[from..], pattern) {
                let addr = at + (from + i) as u64;
                if addr.is_multiple_of(align) && !avoid.contains(&addr) {
                    return Some(addr);
                }
                from += i + 1;
            }
            at += CHUNK;
        }
    }
    None
}
