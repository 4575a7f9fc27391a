//! What differs between x86_64 and aarch64: the register set, the syscall instruction, how a
//! syscall is set up in registers, and how an interrupted syscall is made to restart.
//!
//! x86_64 is tested on real processes by the test suite. The aarch64 variant follows the
//! kernel's `arch/arm64/kernel/signal.c` and `ptrace.c`; `scripts/arm64-check.sh` runs the
//! ptrace capture and the fork snapshot on Go 1.19 and the newest Go under an emulated arm64
//! machine (Linux 6.1), where the seized threads sit in futex and epoll_wait calls that the
//! injection interrupts and that must restart.

use std::io;

/// `-ERESTARTSYS`, `-ERESTARTNOINTR`, `-ERESTARTNOHAND`, `-ERESTART_RESTARTBLOCK`: kernel-internal
/// values that a thread stopped on its way out of an interrupted syscall has in its result
/// register. User space never sees them: the kernel's signal code rewrites them.
pub const ERESTARTSYS: i64 = -512;
pub const ERESTARTNOINTR: i64 = -513;
pub const ERESTARTNOHAND: i64 = -514;
pub const ERESTART_RESTARTBLOCK: i64 = -516;

pub fn is_restart_code(v: i64) -> bool {
    matches!(
        v,
        ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND | ERESTART_RESTARTBLOCK
    )
}

/// The general registers (NT_PRSTATUS): `user_regs_struct` on x86_64, `user_pt_regs` on aarch64.
pub type Regs = libc::user_regs_struct;

/// NT_PRSTATUS, for PTRACE_GETREGSET / PTRACE_SETREGSET.
const NT_PRSTATUS: libc::c_int = 1;

pub fn get_regs(tid: i32) -> io::Result<Regs> {
    // SAFETY: user_regs_struct is plain old data; zeroed is a valid value.
    let mut regs: Regs = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: (&mut regs as *mut Regs).cast(),
        iov_len: std::mem::size_of::<Regs>(),
    };
    // SAFETY: iov points to a buffer of the right size for NT_PRSTATUS.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_GETREGSET,
            tid,
            NT_PRSTATUS as usize as *mut libc::c_void,
            &mut iov as *mut libc::iovec,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    if iov.iov_len != std::mem::size_of::<Regs>() {
        return Err(io::Error::other(format!(
            "PTRACE_GETREGSET returned {} bytes of registers, expected {}",
            iov.iov_len,
            std::mem::size_of::<Regs>()
        )));
    }
    Ok(regs)
}

pub fn set_regs(tid: i32, regs: &Regs) -> io::Result<()> {
    let mut copy = *regs;
    let mut iov = libc::iovec {
        iov_base: (&mut copy as *mut Regs).cast(),
        iov_len: std::mem::size_of::<Regs>(),
    };
    // SAFETY: iov points to a full register set.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_SETREGSET,
            tid,
            NT_PRSTATUS as usize as *mut libc::c_void,
            &mut iov as *mut libc::iovec,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use super::*;

    /// `syscall` (0f 05).
    pub const SYSCALL_INSN: &[u8] = &[0x0f, 0x05];
    /// Alignment of an instruction address.
    pub const INSN_ALIGN: u64 = 1;

    /// If the thread stopped in (on its way out of) a syscall, the address of the syscall
    /// instruction it executed (the caller checks the bytes: it could be `int 0x80`).
    pub fn syscall_insn_before_pc(r: &Regs) -> Option<u64> {
        ((r.orig_rax as i64) >= 0 && r.rip >= 2).then(|| r.rip - 2)
    }

    /// Registers that execute syscall `nr(args)` at the instruction at `insn`.
    /// orig_rax = -1 so that the kernel's restart logic, which runs when the thread leaves the
    /// stop it is in, leaves these registers alone.
    pub fn prepare(r: &mut Regs, insn: u64, nr: i64, a: &[u64; 6]) {
        r.rip = insn;
        r.rax = nr as u64;
        r.orig_rax = u64::MAX;
        r.rdi = a[0];
        r.rsi = a[1];
        r.rdx = a[2];
        r.r10 = a[3];
        r.r8 = a[4];
        r.r9 = a[5];
    }

    pub fn result(r: &Regs) -> i64 {
        r.rax as i64
    }

    pub fn pc(r: &Regs) -> u64 {
        r.rip
    }

    /// The registers a thread is given back at the syscall-exit stop of an injected syscall,
    /// while more may follow: the state the kernel's restart logic (arch_do_signal_or_restart
    /// with no signal) would give it. An interrupted restartable syscall is set up to be
    /// re-executed (rax = orig_rax, rip back over the instruction), an -ERESTART_RESTARTBLOCK
    /// one to continue through restart_syscall(2), and orig_rax = -1 so that the kernel does
    /// not apply that logic a second time. Should gorescue die right here, the thread resumes
    /// correctly. (At a syscall-exit stop the kernel runs its restart logic only when a signal
    /// is pending, so the saved registers verbatim could hand -ERESTARTSYS (-512) to user
    /// space.) On a normal detach the exact original registers are put back instead: see
    /// `Tracee::release`.
    pub fn restart_fixup(saved: &Regs) -> Regs {
        let mut r = *saved;
        if (r.orig_rax as i64) < 0 {
            return r;
        }
        match r.rax as i64 {
            ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND => {
                r.rax = r.orig_rax;
                r.rip -= 2;
                r.orig_rax = u64::MAX;
            }
            ERESTART_RESTARTBLOCK => {
                r.rax = libc::SYS_restart_syscall as u64;
                r.rip -= 2;
                r.orig_rax = u64::MAX;
            }
            _ => {}
        }
        r
    }
}

#[cfg(target_arch = "aarch64")]
mod imp {
    //! UNTESTED. `user_pt_regs`: regs[0..31], sp, pc, pstate. Syscall number in x8, arguments
    //! in x0..x5, result in x0.
    use super::*;

    /// `svc #0` (d4000001, little-endian).
    pub const SYSCALL_INSN: &[u8] = &[0x01, 0x00, 0x00, 0xd4];
    pub const INSN_ALIGN: u64 = 4;

    /// On arm64 the kernel (do_signal) rewinds pc to the `svc` and puts orig_x0 back into x0
    /// BEFORE it stops the thread in get_signal. Do not inject at that `svc`: when the thread
    /// leaves the stop, do_signal checks `pc == restart_addr` and, for an
    /// -ERESTART_RESTARTBLOCK syscall (nanosleep), would overwrite x8 with restart_syscall.
    /// So always use an instruction found by scanning the executable mappings.
    pub fn syscall_insn_before_pc(_r: &Regs) -> Option<u64> {
        None
    }

    pub fn prepare(r: &mut Regs, insn: u64, nr: i64, a: &[u64; 6]) {
        r.pc = insn;
        r.regs[8] = nr as u64;
        r.regs[..6].copy_from_slice(a);
    }

    pub fn result(r: &Regs) -> i64 {
        r.regs[0] as i64
    }

    pub fn pc(r: &Regs) -> u64 {
        r.pc
    }

    /// Nothing to do: the kernel already rewound pc and x0 before the stop (see above). The
    /// only loss: an -ERESTART_RESTARTBLOCK syscall (nanosleep, clock_nanosleep) is re-issued
    /// with its original arguments instead of going through restart_syscall(2), so a relative
    /// sleep starts over.
    pub fn restart_fixup(saved: &Regs) -> Regs {
        *saved
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("gorescue's ptrace capture supports x86_64 and aarch64 only");

pub use imp::*;
