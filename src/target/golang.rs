//! Is an executable a Go program, and which Go built it?
//!
//! Every Go binary since Go 1.13 carries a small "build info" blob, found through the
//! `.go.buildinfo` ELF section. It starts with the 14-byte magic `\xff Go buildinf:`, then one
//! byte pointer size and one byte flags, at a 16-byte aligned address. The blob survives
//! `go build -ldflags='-s -w'` (which removes the symbol table and DWARF, not the section), and
//! even `sstrip`-style removal of the section headers, since it lives in a loaded segment.
//!
//! Two layouts exist:
//! - Go 1.18 and later (flags bit value 2, "inline strings"): at offset 32, the Go version and
//!   then the module info, each a uvarint length followed by the bytes.
//! - Go 1.13 to 1.17: at offset 16 and 16+ptrsize, two pointers to Go string headers
//!   (`{data *byte, len int}`) for the version and the module info, which have to be read at
//!   their virtual addresses through the program headers.
//!
//! The module info is the text of `debug.BuildInfo.String()`, wrapped in two 16-byte sentinels:
//! lines `path\tMAIN`, `mod\tPATH\tVERSION\tSUM`, `dep\t...`, `=>\t...`, `build\tKEY=VALUE`.
//!
//! [`read_build_info`] reads a few small pieces of the file: the section (through the section
//! headers), else the start of the first writable non-executable `PT_LOAD` segment (where the Go
//! linker puts it), and only as a last resort scans the whole file in 1 MiB chunks with
//! `memchr::memmem`, so even a 100 MB binary costs well under a second.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// The 14-byte marker that starts Go's build info blob.
pub const BUILDINFO_MAGIC: &[u8; 14] = b"\xff Go buildinf:";

/// The Go build information of an executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoBuildInfo {
    /// The toolchain version, as `runtime.Version()` reports it, e.g. `go1.19.8`.
    pub go_version: String,
    /// The main package's import path (the `path` line), e.g. `example.com/cmd/server`.
    /// `None` when the binary was built without module information (GOPATH mode, Go ≤ 1.17).
    pub main_path: Option<String>,
    /// The main module's path (the `mod` line), e.g. `example.com`.
    pub main_module: Option<String>,
    /// The main module's version: `(devel)` for a local build, or a tagged version.
    pub main_version: Option<String>,
    /// Number of `dep` lines (dependency modules).
    pub deps: usize,
    /// The `build` lines as key/value pairs, in order, e.g. `("GOARCH", "amd64")`,
    /// `("-ldflags", "-s -w")`, `("vcs.revision", "…")` (Go 1.18+ only).
    pub settings: Vec<(String, String)>,
}

impl GoBuildInfo {
    /// The value of the build setting `key`, if recorded.
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `(major, minor)` of the Go version, e.g. `(1, 21)` for `go1.21.13` or `go1.21rc2`;
    /// `None` for a development toolchain (`devel go1.22-abc…`) it cannot parse.
    pub fn version_tuple(&self) -> Option<(u32, u32)> {
        let v = self.go_version.strip_prefix("go")?;
        let mut parts = v.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor: String = parts
            .next()?
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        Some((major, minor.parse().ok()?))
    }
}

/// Read the Go build info of the executable at `path` (for a running process,
/// `/proc/PID/exe`, which works even when the file was deleted or replaced).
///
/// Returns `Ok(None)` for anything that is not a Go ELF executable (or whose build info is
/// malformed), and `Err` only when the file cannot be opened or read.
pub fn read_build_info(path: &Path) -> io::Result<Option<GoBuildInfo>> {
    let mut f = File::open(path)?;
    let file_size = f.metadata()?.len();
    let elf = match Elf::parse(&mut f, file_size)? {
        Some(e) => e,
        None => return Ok(None),
    };
    // 1. The section, when the section headers are there.
    if let Some((off, size)) = elf.section_offset(&mut f, ".go.buildinfo")? {
        let blob = read_at(&mut f, off, size.min(64 * 1024) as usize)?;
        if let Some(pos) = find_aligned(&blob, off)
            && let Some(info) = decode(&mut f, &elf, off + pos as u64)?
        {
            return Ok(Some(info));
        }
    }
    // 2. The start of the first writable, non-executable segment, where the Go linker puts
    //    the section (what Go's debug/buildinfo does without section headers).
    const PF_X: u64 = 1;
    const PF_W: u64 = 2;
    if let Some(&(_, off, filesz, _)) = elf
        .loads
        .iter()
        .find(|&&(_, _, _, fl)| fl & (PF_X | PF_W) == PF_W)
    {
        let blob = read_at(&mut f, off, filesz.min(64 * 1024) as usize)?;
        if let Some(pos) = find_aligned(&blob, off)
            && let Some(info) = decode(&mut f, &elf, off + pos as u64)?
        {
            return Ok(Some(info));
        }
    }
    // 3. Scan the whole file, 16-byte aligned (the blob's address is 16-aligned and loaded
    //    segments keep file offset ≡ address modulo the page size).
    let mut pos: u64 = 0;
    const CHUNK: usize = 1 << 20;
    let mut buf = vec![0u8; CHUNK + BUILDINFO_MAGIC.len()];
    let finder = memchr::memmem::Finder::new(BUILDINFO_MAGIC);
    while pos < file_size {
        let n = read_at_into(&mut f, pos, &mut buf)?;
        if n < BUILDINFO_MAGIC.len() {
            break;
        }
        let hay = &buf[..n];
        for hit in finder.find_iter(hay) {
            let at = pos + hit as u64;
            if !at.is_multiple_of(16) {
                continue;
            }
            if let Some(info) = decode(&mut f, &elf, at)? {
                return Ok(Some(info));
            }
        }
        pos += CHUNK as u64;
    }
    Ok(None)
}

/// The first 16-byte aligned position of the magic in `buf` (offsets relative to `base`).
fn find_aligned(buf: &[u8], base: u64) -> Option<usize> {
    memchr::memmem::find_iter(buf, BUILDINFO_MAGIC).find(|&p| (base + p as u64).is_multiple_of(16))
}

/// Decode the blob at file offset `off`. `Ok(None)` when it is not a valid one.
fn decode(f: &mut File, elf: &Elf, off: u64) -> io::Result<Option<GoBuildInfo>> {
    let blob = read_at(f, off, 64 * 1024)?;
    if blob.len() < 32 || &blob[..14] != BUILDINFO_MAGIC {
        return Ok(None);
    }
    let ptr_size = blob[14] as usize;
    let flags = blob[15];
    let (version, modinfo) = if flags & 2 != 0 {
        // Go 1.18+: inline uvarint-prefixed strings at offset 32.
        let rest = &blob[32..];
        let Some((version, n)) = read_varint_string(rest) else {
            return Ok(None);
        };
        // The module info can outgrow the 64 KiB read (many dependencies): read it whole.
        let Some((len, m)) = read_uvarint(&rest[n..]) else {
            return Ok(None);
        };
        if len > 16 << 20 {
            return Ok(None);
        }
        let start = n + m;
        let modinfo = match rest.get(start..start + len as usize) {
            Some(b) => b.to_vec(),
            None => {
                let b = read_at(f, off + 32 + start as u64, len as usize)?;
                if b.len() != len as usize {
                    return Ok(None);
                }
                b
            }
        };
        (version.to_vec(), modinfo)
    } else {
        // Go 1.13–1.17: pointers to string headers.
        if ptr_size != 4 && ptr_size != 8 {
            return Ok(None);
        }
        let big = flags & 1 != 0;
        let vaddr = read_uint(&blob[16..], ptr_size, big);
        let maddr = read_uint(&blob[16 + ptr_size..], ptr_size, big);
        let Some(version) = read_go_string(f, elf, vaddr, ptr_size, big)? else {
            return Ok(None);
        };
        let modinfo = read_go_string(f, elf, maddr, ptr_size, big)?.unwrap_or_default();
        (version, modinfo)
    };
    if version.is_empty() || version.len() > 256 {
        return Ok(None);
    }
    let go_version = String::from_utf8_lossy(&version).into_owned();
    let mut info = GoBuildInfo {
        go_version,
        main_path: None,
        main_module: None,
        main_version: None,
        deps: 0,
        settings: Vec::new(),
    };
    parse_modinfo(&strip_sentinels(&modinfo), &mut info);
    Ok(Some(info))
}

/// Remove the 16-byte sentinels Go wraps the module info in (`runtime/debug.modinfo`).
fn strip_sentinels(m: &[u8]) -> Vec<u8> {
    if m.len() >= 33 && m[m.len() - 17] == b'\n' {
        m[16..m.len() - 16].to_vec()
    } else {
        m.to_vec()
    }
}

fn parse_modinfo(text: &[u8], info: &mut GoBuildInfo) {
    let text = String::from_utf8_lossy(text);
    for line in text.lines() {
        let mut cols = line.splitn(2, '\t');
        let (Some(kind), Some(rest)) = (cols.next(), cols.next()) else {
            continue;
        };
        match kind {
            "path" => info.main_path = Some(rest.to_string()),
            "mod" => {
                let mut f = rest.split('\t');
                info.main_module = f.next().map(str::to_string);
                info.main_version = f.next().filter(|s| !s.is_empty()).map(str::to_string);
            }
            "dep" => info.deps += 1,
            "build" => {
                if let Some((k, v)) = split_setting(rest) {
                    info.settings.push((k, v));
                }
            }
            _ => {}
        }
    }
}

/// Split `KEY=VALUE`, where either side may be a Go-quoted string (`strconv.Quote`).
fn split_setting(s: &str) -> Option<(String, String)> {
    let (key, rest) = if s.starts_with('"') {
        let (k, used) = unquote(s)?;
        (k, s[used..].strip_prefix('=')?)
    } else {
        let (k, v) = s.split_once('=')?;
        (k.to_string(), v)
    };
    let value = if rest.starts_with('"') {
        unquote(rest)
            .map(|(v, _)| v)
            .unwrap_or_else(|| rest.to_string())
    } else {
        rest.to_string()
    };
    Some((key, value))
}

/// Decode a Go double-quoted string literal at the start of `s`; returns it and the bytes used.
fn unquote(s: &str) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    chars.next().filter(|&(_, c)| c == '"')?;
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, i + 1)),
            '\\' => {
                let (_, e) = chars.next()?;
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'a' => out.push('\x07'),
                    'b' => out.push('\x08'),
                    'f' => out.push('\x0c'),
                    'v' => out.push('\x0b'),
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String =
                            (0..n).filter_map(|_| chars.next().map(|x| x.1)).collect();
                        let v = u32::from_str_radix(&hex, 16).ok()?;
                        out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                    }
                    other => out.push(other),
                }
            }
            c => out.push(c),
        }
    }
    None
}

/// A uvarint length followed by that many bytes; returns the bytes and the total used.
fn read_varint_string(b: &[u8]) -> Option<(&[u8], usize)> {
    let (len, i) = read_uvarint(b)?;
    let len = usize::try_from(len).ok()?;
    let end = i.checked_add(len)?;
    Some((b.get(i..end)?, end))
}

/// A uvarint (`encoding/binary.Uvarint`): the value and the bytes used.
fn read_uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut len: u64 = 0;
    let mut shift = 0;
    let mut i = 0;
    loop {
        let byte = *b.get(i)?;
        i += 1;
        len |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    Some((len, i))
}

fn read_uint(b: &[u8], size: usize, big: bool) -> u64 {
    let mut v: u64 = 0;
    for k in 0..size {
        let byte = u64::from(b[if big { k } else { size - 1 - k }]);
        v = (v << 8) | byte;
    }
    v
}

/// Read a Go string header at virtual address `addr`, then its data.
fn read_go_string(
    f: &mut File,
    elf: &Elf,
    addr: u64,
    ptr_size: usize,
    big: bool,
) -> io::Result<Option<Vec<u8>>> {
    let Some(hdr) = elf.read_vaddr(f, addr, 2 * ptr_size)? else {
        return Ok(None);
    };
    let data = read_uint(&hdr, ptr_size, big);
    let len = read_uint(&hdr[ptr_size..], ptr_size, big);
    if len > 1 << 20 {
        return Ok(None);
    }
    elf.read_vaddr(f, data, len as usize)
}

/// What is needed of an ELF file: its class, byte order, section and program headers.
#[derive(Debug)]
struct Elf {
    is64: bool,
    big: bool,
    shoff: u64,
    shentsize: u64,
    shnum: u64,
    shstrndx: u64,
    /// PT_LOAD segments: (vaddr, file offset, file size, p_flags).
    loads: Vec<(u64, u64, u64, u64)>,
}

impl Elf {
    fn parse(f: &mut File, file_size: u64) -> io::Result<Option<Elf>> {
        let hdr = read_at(f, 0, 64)?;
        if hdr.len() < 52 || &hdr[..4] != b"\x7fELF" {
            return Ok(None);
        }
        let is64 = match hdr[4] {
            1 => false,
            2 => true,
            _ => return Ok(None),
        };
        let big = match hdr[5] {
            1 => false,
            2 => true,
            _ => return Ok(None),
        };
        if is64 && hdr.len() < 64 {
            return Ok(None);
        }
        let u = |off: usize, size: usize| read_uint(&hdr[off..], size, big);
        let (phoff, shoff, phentsize, phnum, shentsize, shnum, shstrndx) = if is64 {
            (
                u(32, 8),
                u(40, 8),
                u(54, 2),
                u(56, 2),
                u(58, 2),
                u(60, 2),
                u(62, 2),
            )
        } else {
            (
                u(28, 4),
                u(32, 4),
                u(42, 2),
                u(44, 2),
                u(46, 2),
                u(48, 2),
                u(50, 2),
            )
        };
        let mut elf = Elf {
            is64,
            big,
            shoff,
            shentsize,
            shnum,
            shstrndx,
            loads: Vec::new(),
        };
        let min_ph = if is64 { 56 } else { 32 };
        if phoff != 0 && phentsize >= min_ph && phnum < 4096 && phoff < file_size {
            let table = read_at(f, phoff, (phentsize * phnum) as usize)?;
            for ph in table.chunks_exact(phentsize as usize) {
                let r = |off: usize, size: usize| read_uint(&ph[off..], size, big);
                if r(0, 4) != 1 {
                    continue; // not PT_LOAD
                }
                let seg = if is64 {
                    (r(16, 8), r(8, 8), r(32, 8), r(4, 4))
                } else {
                    (r(8, 4), r(4, 4), r(16, 4), r(24, 4))
                };
                elf.loads.push(seg);
            }
        }
        Ok(Some(elf))
    }

    /// File offset and size of the section named `name`, if the section headers exist.
    fn section_offset(&self, f: &mut File, name: &str) -> io::Result<Option<(u64, u64)>> {
        let min = if self.is64 { 64 } else { 40 };
        if self.shoff == 0 || self.shentsize < min || self.shnum == 0 || self.shnum > 65535 {
            return Ok(None);
        }
        let table = read_at(f, self.shoff, (self.shentsize * self.shnum) as usize)?;
        let headers: Vec<&[u8]> = table.chunks_exact(self.shentsize as usize).collect();
        let big = self.big;
        let field = |sh: &[u8], which: usize| -> u64 {
            // which: 0 = sh_name, 1 = sh_offset, 2 = sh_size
            if self.is64 {
                match which {
                    0 => read_uint(sh, 4, big),
                    1 => read_uint(&sh[24..], 8, big),
                    _ => read_uint(&sh[32..], 8, big),
                }
            } else {
                match which {
                    0 => read_uint(sh, 4, big),
                    1 => read_uint(&sh[16..], 4, big),
                    _ => read_uint(&sh[20..], 4, big),
                }
            }
        };
        let Some(strtab) = headers.get(self.shstrndx as usize) else {
            return Ok(None);
        };
        let names = read_at(f, field(strtab, 1), field(strtab, 2).min(1 << 20) as usize)?;
        for sh in &headers {
            let start = field(sh, 0) as usize;
            let Some(rest) = names.get(start..) else {
                continue;
            };
            let end = memchr::memchr(0, rest).unwrap_or(rest.len());
            if &rest[..end] == name.as_bytes() {
                return Ok(Some((field(sh, 1), field(sh, 2))));
            }
        }
        Ok(None)
    }

    /// Read `len` bytes at virtual address `addr`, if a loaded segment holds them in the file.
    fn read_vaddr(&self, f: &mut File, addr: u64, len: usize) -> io::Result<Option<Vec<u8>>> {
        for &(vaddr, off, filesz, _) in &self.loads {
            if addr >= vaddr && addr.saturating_add(len as u64) <= vaddr.saturating_add(filesz) {
                let data = read_at(f, off + (addr - vaddr), len)?;
                return Ok((data.len() == len).then_some(data));
            }
        }
        Ok(None)
    }
}

/// Up to `len` bytes at `off` (fewer at the end of the file).
fn read_at(f: &mut File, off: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let n = read_at_into(f, off, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

fn read_at_into(f: &mut File, off: u64, buf: &mut [u8]) -> io::Result<usize> {
    f.seek(SeekFrom::Start(off))?;
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_unquoted() {
        assert_eq!(
            split_setting("-ldflags=\"-s -w\""),
            Some(("-ldflags".into(), "-s -w".into()))
        );
        assert_eq!(
            split_setting("GOARCH=amd64"),
            Some(("GOARCH".into(), "amd64".into()))
        );
        assert_eq!(
            split_setting("\"a=b\"=\"c\\td\""),
            Some(("a=b".into(), "c\td".into()))
        );
    }

    #[test]
    fn varint_strings() {
        let mut b = vec![0x81, 0x01];
        b.extend(std::iter::repeat_n(b'x', 129));
        b.push(0);
        let (s, used) = read_varint_string(&b).unwrap();
        assert_eq!(s.len(), 129);
        assert_eq!(used, 131);
        assert!(read_varint_string(&[5, b'a']).is_none());
    }

    /// A synthetic little-endian ELF64 in the Go ≤ 1.17 pointer layout, with no section headers.
    #[test]
    fn old_pointer_format() {
        let vbase: u64 = 0x400000;
        let mut file = vec![0u8; 0x400];
        // ELF header
        file[..4].copy_from_slice(b"\x7fELF");
        file[4] = 2;
        file[5] = 1;
        file[6] = 1;
        file[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        file[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        file[56..58].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        // one PT_LOAD mapping the whole file at vbase
        let ph = 64;
        file[ph..ph + 4].copy_from_slice(&1u32.to_le_bytes());
        file[ph + 8..ph + 16].copy_from_slice(&0u64.to_le_bytes());
        file[ph + 16..ph + 24].copy_from_slice(&vbase.to_le_bytes());
        file[ph + 32..ph + 40].copy_from_slice(&0x400u64.to_le_bytes());
        // strings
        let version = b"go1.16.15";
        // the module info, between two 16-byte sentinels (the text ends in '\n' at len-17)
        let mut modinfo = b"0123456789abcdef".to_vec();
        modinfo.extend_from_slice(b"path\texample.com/x\nmod\texample.com\tv1.2.3\th1:abc=\n");
        modinfo.extend_from_slice(b"fedcba9876543210");
        file[0x200..0x200 + version.len()].copy_from_slice(version);
        file[0x280..0x280 + modinfo.len()].copy_from_slice(&modinfo);
        // string headers
        file[0x180..0x188].copy_from_slice(&(vbase + 0x200).to_le_bytes());
        file[0x188..0x190].copy_from_slice(&(version.len() as u64).to_le_bytes());
        file[0x190..0x198].copy_from_slice(&(vbase + 0x280).to_le_bytes());
        file[0x198..0x1a0].copy_from_slice(&(modinfo.len() as u64).to_le_bytes());
        // build info blob at 0x100
        file[0x100..0x10e].copy_from_slice(BUILDINFO_MAGIC);
        file[0x10e] = 8;
        file[0x10f] = 0;
        file[0x110..0x118].copy_from_slice(&(vbase + 0x180).to_le_bytes());
        file[0x118..0x120].copy_from_slice(&(vbase + 0x190).to_le_bytes());
        // a decoy at an unaligned offset
        file[0x0c1..0x0cf].copy_from_slice(BUILDINFO_MAGIC);

        let dir = std::env::temp_dir().join(format!("gorescue-golang-{}", std::process::id()));
        std::fs::write(&dir, &file).unwrap();
        let info = read_build_info(&dir).unwrap().unwrap();
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(info.go_version, "go1.16.15");
        assert_eq!(info.version_tuple(), Some((1, 16)));
        assert_eq!(info.main_path.as_deref(), Some("example.com/x"));
        assert_eq!(info.main_module.as_deref(), Some("example.com"));
        assert_eq!(info.main_version.as_deref(), Some("v1.2.3"));
    }

    #[test]
    fn not_elf() {
        let p = std::env::temp_dir().join(format!("gorescue-notelf-{}", std::process::id()));
        std::fs::write(&p, b"#!/bin/sh\necho hi\n").unwrap();
        assert_eq!(read_build_info(&p).unwrap(), None);
        std::fs::remove_file(&p).unwrap();
    }
}
