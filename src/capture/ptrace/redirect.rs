//! Point a descriptor of the target (fd 2) somewhere gorescue reads, by syscalls injected into
//! the stopped target, as reptyr and reredirect do:
//!
//! ```text
//! F_GETFD   = fcntl(2, F_GETFD)                      remember close-on-exec of fd 2
//! scratch   = mmap(NULL, 4096, RW, PRIVATE|ANON)     a page for the path / memfd name
//! saved     = fcntl(2, F_DUPFD_CLOEXEC, 100)         the original stderr, kept for restore
//! new       = openat(AT_FDCWD, path, O_WRONLY|O_APPEND|O_CLOEXEC|O_NOCTTY|O_NONBLOCK)
//!           | memfd_create(name, MFD_CLOEXEC)
//! dup3(new, 2, cloexec-of-fd-2)
//! close(new); munmap(scratch)
//! ```
//!
//! The scratch page is a fresh mapping rather than the thread's stack: the stack pointer of a
//! Go thread can be on a goroutine stack with little room below it, and writing under it could
//! corrupt the heap.
//!
//! Restoring is `dup3(saved, 2, cloexec-of-fd-2); close(saved)`.
//!
//! If gorescue dies (SIGKILL) after the redirect and before the target has been signalled, the
//! target runs on with its fd 2 going to the file or memfd (its later stderr lands there
//! instead of in its original destination) and one extra close-on-exec descriptor (>= 100) on
//! its original stderr. Nothing else changes. Signalling while still attached (see
//! [`Redirect::keep`]) keeps that window down to the few microseconds between the injected
//! `dup3` and `pidfd_send_signal`, while every thread is stopped.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{Error, Result, Tracee, Undo};

const PAGE: u64 = 4096;

/// fd `fd` of the target now points elsewhere; `saved_fd` (close-on-exec, >= 100) in the target
/// holds the original. Plain data: it can be restored through a later [`Tracee`] too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redirect {
    pub fd: i32,
    pub saved_fd: i32,
    /// Whether `fd` was close-on-exec (restored as it was).
    pub cloexec: bool,
}

impl Redirect {
    /// Put the original back: `dup3(saved, fd)`, `close(saved)`.
    pub fn restore(&self, t: &mut Tracee) -> Result<()> {
        let u = Undo::Restore {
            fd: self.fd,
            saved: self.saved_fd,
            cloexec: self.cloexec,
        };
        t.forget_undo(u);
        t.apply_undo(u)
    }

    /// Keep the redirect when the tracee detaches (call it once the signal has been sent).
    /// `saved_fd` stays open in the target (close-on-exec) so that the redirect can still be
    /// undone, through a new [`Tracee`], if the target does not exit (a program that handles
    /// SIGQUIT itself).
    pub fn keep(&self, t: &mut Tracee) {
        t.forget_undo(Undo::Restore {
            fd: self.fd,
            saved: self.saved_fd,
            cloexec: self.cloexec,
        });
    }
}

/// gorescue's copy of the memfd the target's fd 2 now writes into (the same open file
/// description, opened O_APPEND, so gorescue reading it never moves the target's writes).
#[derive(Debug)]
pub struct MemfdSink {
    file: File,
    /// Bytes copied out so far.
    offset: u64,
    /// Bytes already given back to the kernel (a multiple of the page size).
    punched: u64,
}

impl MemfdSink {
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Bytes copied out by [`MemfdSink::drain`] so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Copy what the target wrote since the last call into `out`, then free those pages of
    /// the memfd (FALLOC_FL_PUNCH_HOLE), so that the memfd never holds more than what was
    /// written since the last drain: its pages are charged to the target's memory cgroup.
    /// Returns the number of bytes copied.
    pub fn drain(&mut self, out: &mut impl Write) -> io::Result<u64> {
        let mut buf = vec![0u8; 1 << 20];
        let start = self.offset;
        loop {
            let n = match self.file.read_at(&mut buf, self.offset) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])?;
            self.offset += n as u64;
        }
        let upto = self.offset / PAGE * PAGE;
        if upto > self.punched {
            // SAFETY: fallocate on our own descriptor with integer arguments.
            let r = unsafe {
                libc::fallocate(
                    self.file.as_raw_fd(),
                    libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                    self.punched as libc::off_t,
                    (upto - self.punched) as libc::off_t,
                )
            };
            if r == 0 {
                self.punched = upto;
            }
        }
        Ok(self.offset - start)
    }
}

impl Tracee {
    /// Point the target's `fd` at the file `path` (absolute, as the TARGET sees it: its mount
    /// namespace and root, opened with ITS credentials; it must exist, it is not created).
    /// Opened O_WRONLY|O_APPEND|O_NONBLOCK (a FIFO without reader fails instead of blocking).
    pub fn redirect_fd(&mut self, fd: i32, path: &Path) -> Result<Redirect> {
        let bytes = path.as_os_str().as_bytes();
        if !path.is_absolute() || bytes.contains(&0) || bytes.len() as u64 >= PAGE {
            return Err(Error::Invalid(
                format!(
                    "cannot redirect to {}: need an absolute path",
                    path.display()
                ),
                self.pid,
            ));
        }
        let mut data = bytes.to_vec();
        data.push(0);
        let (r, _) = self.redirect_with(fd, &data, |t, scratch| {
            let flags = libc::O_WRONLY
                | libc::O_APPEND
                | libc::O_CLOEXEC
                | libc::O_NOCTTY
                | libc::O_NONBLOCK;
            let newfd = t.syscall(
                "openat",
                libc::SYS_openat,
                &[libc::AT_FDCWD as i64 as u64, scratch, flags as u64, 0],
            )?;
            Ok((newfd as i32, None))
        })?;
        Ok(r)
    }

    /// [`Tracee::redirect_fd`] then [`Redirect::keep`]: the redirect survives detach and Drop.
    /// Prefer signalling while still attached and calling `keep` after the signal (see the
    /// module docs): with this, an error or interrupt between detach and signal leaves the
    /// target's fd 2 redirected.
    pub fn redirect_fd_keep(&mut self, fd: i32, path: &Path) -> Result<Redirect> {
        let r = self.redirect_fd(fd, path)?;
        r.keep(self);
        Ok(r)
    }

    /// Point the target's `fd` at a new memfd (`/memfd:NAME (deleted)` in /proc/PID/fd) and
    /// hand gorescue a copy of it (pidfd_getfd). No path, so no permission or mount-namespace
    /// question: works whatever user the target runs as. The memfd lives while either side
    /// holds it.
    pub fn redirect_fd_to_memfd(&mut self, fd: i32, name: &str) -> Result<(Redirect, MemfdSink)> {
        if name.len() > 200 || name.contains('\0') {
            return Err(Error::Invalid(format!("bad memfd name {name:?}"), self.pid));
        }
        let mut data = name.as_bytes().to_vec();
        data.push(0);
        let (r, file) = self.redirect_with(fd, &data, |t, scratch| {
            let newfd = t.syscall(
                "memfd_create",
                libc::SYS_memfd_create,
                &[scratch, libc::MFD_CLOEXEC as u64],
            )? as i32;
            t.push_undo(Undo::Close(newfd));
            let mine = t.pidfd.getfd(newfd).map_err(|e| Error::Io {
                pid: t.pid,
                what: "pidfd_getfd of the memfd".into(),
                source: e,
            })?;
            set_append(&mine).map_err(|e| Error::Io {
                pid: t.pid,
                what: "fcntl(F_SETFL, O_APPEND) on the memfd".into(),
                source: e,
            })?;
            t.forget_undo(Undo::Close(newfd));
            Ok((newfd, Some(mine)))
        })?;
        let file = File::from(file.expect("memfd copy"));
        Ok((
            r,
            MemfdSink {
                file,
                offset: 0,
                punched: 0,
            },
        ))
    }

    /// The common sequence (see the module docs). `open` makes the new descriptor in the
    /// target, given the address of the scratch page holding `scratch_data`.
    fn redirect_with(
        &mut self,
        fd: i32,
        scratch_data: &[u8],
        open: impl FnOnce(&mut Tracee, u64) -> Result<(i32, Option<OwnedFd>)>,
    ) -> Result<(Redirect, Option<OwnedFd>)> {
        let flags = self.syscall(
            "fcntl(F_GETFD)",
            libc::SYS_fcntl,
            &[fd as u64, libc::F_GETFD as u64],
        )?;
        let cloexec = flags & libc::FD_CLOEXEC as u64 != 0;

        let prot = (libc::PROT_READ | libc::PROT_WRITE) as u64;
        let mflags = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;
        let scratch = self.syscall(
            "mmap",
            libc::SYS_mmap,
            &[0, PAGE, prot, mflags, -1i64 as u64, 0],
        )?;
        self.push_undo(Undo::Unmap {
            addr: scratch,
            len: PAGE,
        });
        self.write_memory(scratch, scratch_data)?;

        let saved = self.syscall(
            "fcntl(F_DUPFD_CLOEXEC)",
            libc::SYS_fcntl,
            &[fd as u64, libc::F_DUPFD_CLOEXEC as u64, 100],
        )? as i32;
        self.push_undo(Undo::Close(saved));

        let (newfd, mine) = open(self, scratch)?;
        self.push_undo(Undo::Close(newfd));

        let dflags = if cloexec { libc::O_CLOEXEC as u64 } else { 0 };
        self.syscall("dup3", libc::SYS_dup3, &[newfd as u64, fd as u64, dflags])?;
        self.forget_undo(Undo::Close(saved));
        let restore = Undo::Restore { fd, saved, cloexec };
        self.push_undo(restore);

        self.syscall("close", libc::SYS_close, &[newfd as u64])?;
        self.forget_undo(Undo::Close(newfd));
        self.syscall("munmap", libc::SYS_munmap, &[scratch, PAGE])?;
        self.forget_undo(Undo::Unmap {
            addr: scratch,
            len: PAGE,
        });
        Ok((
            Redirect {
                fd,
                saved_fd: saved,
                cloexec,
            },
            mine,
        ))
    }
}

fn set_append(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: fcntl on our own descriptor.
    let fl = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if fl < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_APPEND) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
