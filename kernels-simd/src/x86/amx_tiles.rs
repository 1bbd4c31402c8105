//! AMX tile instructions for the `avx512-amx` set ([`super::amx`]), written
//! with `asm!` (the AMX intrinsics are nightly-only), and the guarded check
//! that this CPU, its OS and this process may run them.
//!
//! AMX needs more than CPUID bits: the OS must enable the tile state in
//! XCR0 (bits 17 and 18) and, on Linux, each process must ask for it
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`) before its
//! first tile instruction. Some machines pass all three and still fault
//! (SIGILL) on tile instructions (virtual machines whose hypervisor does
//! not pass the tile state through), so [`amx_available`] also runs the
//! instructions once in a forked child: a fault kills the child, not the
//! caller. The answer is computed once per process. `EDDY_AMX=0` (or
//! `off`) turns the set off.

use core::arch::asm;

/// The 64-byte operand of `ldtilecfg` (palette 1): per tile register, its
/// rows and bytes per row.
#[repr(C, align(64))]
pub(super) struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    colsb: [u16; 16],
    rows: [u8; 16],
}

/// Rows of every tile the kernels use (the hardware maximum).
pub(super) const TILE_ROWS: usize = 16;

/// Bytes per row of the accumulator and activation tiles (16 i32 lanes,
/// the hardware maximum).
pub(super) const TILE_BYTES: usize = 64;

impl TileConfig {
    /// The kernels' tiles for `k` codes per step (a multiple of 4, at most
    /// 64): `tmm0..tmm3` 16x16 i32 accumulators, `tmm4`/`tmm5` 16 rows of
    /// `k` unsigned codes, `tmm6`/`tmm7` `k / 4` rows of 16 tokens' four
    /// int8 activations.
    pub(super) fn new(k: usize) -> TileConfig {
        let mut cfg =
            TileConfig { palette: 1, start_row: 0, reserved: [0; 14], colsb: [0; 16], rows: [0; 16] };
        for t in 0..4 {
            cfg.colsb[t] = TILE_BYTES as u16;
            cfg.rows[t] = TILE_ROWS as u8;
        }
        for t in 4..6 {
            cfg.colsb[t] = k as u16;
            cfg.rows[t] = TILE_ROWS as u8;
        }
        for t in 6..8 {
            cfg.colsb[t] = TILE_BYTES as u16;
            cfg.rows[t] = (k / 4) as u8;
        }
        cfg
    }
}

/// `ldtilecfg`: configures the tiles.
///
/// # Safety
/// The CPU runs AMX and this process has the permission ([`amx_available`]).
#[inline(always)]
pub(super) unsafe fn load_config(cfg: &TileConfig) {
    // SAFETY (caller): AMX usable; `cfg` is a valid 64-byte palette-1 config.
    asm!("ldtilecfg [{0}]", in(reg) cfg as *const TileConfig, options(nostack, readonly, preserves_flags));
}

/// `tilerelease`: returns the tiles to their initial state (so the OS
/// need not save them on context switches).
///
/// # Safety
/// As for [`load_config`].
#[inline(always)]
pub(super) unsafe fn release() {
    // SAFETY (caller): AMX usable.
    asm!("tilerelease", options(nostack, nomem, preserves_flags));
}

/// Zeroes the four accumulators `tmm0..tmm3`.
///
/// # Safety
/// As for [`load_config`], after it.
#[inline(always)]
pub(super) unsafe fn zero_accumulators() {
    // SAFETY (caller): tiles configured.
    asm!(
        "tilezero tmm0",
        "tilezero tmm1",
        "tilezero tmm2",
        "tilezero tmm3",
        options(nostack, nomem, preserves_flags)
    );
}

/// One step of the 32 x 32 product: codes of rows 0-15 (`a0`) and 16-31
/// (`a1`), each row `a_stride` bytes after the previous, times the
/// interleaved activations of tokens 0-15 (`b0`) and 16-31 (`b1`), 64
/// bytes a row: `tmm0 += a0·b0`, `tmm1 += a0·b1`, `tmm2 += a1·b0`, `tmm3
/// += a1·b1` (`tdpbusd`: four unsigned codes times four int8 activations
/// into each i32 lane, exact).
///
/// # Safety
/// As for [`zero_accumulators`]; the configured rows are readable at each
/// pointer.
#[inline(always)]
pub(super) unsafe fn multiply(a0: *const u8, a1: *const u8, a_stride: usize, b0: *const u8, b1: *const u8) {
    // SAFETY (caller): tiles configured, every row readable.
    asm!(
        "tileloadd tmm4, [{a0} + {sa}*1]",
        "tileloadd tmm5, [{a1} + {sa}*1]",
        "tileloadd tmm6, [{b0} + {sb}*1]",
        "tileloadd tmm7, [{b1} + {sb}*1]",
        "tdpbusd tmm0, tmm4, tmm6",
        "tdpbusd tmm1, tmm4, tmm7",
        "tdpbusd tmm2, tmm5, tmm6",
        "tdpbusd tmm3, tmm5, tmm7",
        a0 = in(reg) a0,
        a1 = in(reg) a1,
        sa = in(reg) a_stride,
        b0 = in(reg) b0,
        b1 = in(reg) b1,
        sb = in(reg) TILE_BYTES,
        options(nostack, readonly, preserves_flags),
    );
}

/// Stores accumulator `tmm<i>` (16 rows of 16 i32) at `dst + 1024 i`, 64
/// bytes a row.
///
/// # Safety
/// As for [`zero_accumulators`]; `dst` has 4 KiB writable.
#[inline(always)]
pub(super) unsafe fn store_accumulators(dst: *mut u8) {
    const TILE: usize = TILE_ROWS * TILE_BYTES;
    // SAFETY (caller): tiles configured, 4 KiB writable at `dst`.
    asm!(
        "tilestored [{d0} + {s}*1], tmm0",
        "tilestored [{d1} + {s}*1], tmm1",
        "tilestored [{d2} + {s}*1], tmm2",
        "tilestored [{d3} + {s}*1], tmm3",
        d0 = in(reg) dst,
        d1 = in(reg) dst.add(TILE),
        d2 = in(reg) dst.add(2 * TILE),
        d3 = in(reg) dst.add(3 * TILE),
        s = in(reg) TILE_BYTES,
        options(nostack, preserves_flags),
    );
}

/// Why the `avx512-amx` set does or does not run here ([`amx_status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AmxStatus {
    /// Every check passed: the set runs.
    Usable,
    /// `EDDY_AMX` is `0` or `off`.
    DisabledByEnv,
    /// No `std`, or not Linux: the checks cannot run.
    Unsupported,
    /// The CPU lacks the `avx512-vnni` set's features (AVX2, FMA, F16C,
    /// AVX-512F, VL, VNNI).
    NoVnni,
    /// CPUID does not report AMX-TILE and AMX-INT8.
    NoAmxInCpuid,
    /// The OS has not enabled the tile state (XCR0 bits 17 and 18).
    TileStateOff,
    /// Linux refused the tile state to this process (`arch_prctl`).
    PermissionRefused,
    /// The tile instructions faulted or gave a wrong sum in the forked
    /// probe (or the fork failed).
    ProbeFailed,
}

/// Which check decided whether this CPU, OS and process run the
/// `avx512-amx` set: the `avx512-vnni` set's features, CPUID AMX-TILE and
/// AMX-INT8, XCR0 tile state enabled, the Linux permission granted, and a
/// probe of the tile instructions in a forked child that exits cleanly
/// with the right result. Once per process (cached).
pub fn amx_status() -> AmxStatus {
    #[cfg(all(feature = "std", target_os = "linux"))]
    {
        static AMX: std::sync::OnceLock<AmxStatus> = std::sync::OnceLock::new();
        *AMX.get_or_init(probe::status)
    }
    #[cfg(not(all(feature = "std", target_os = "linux")))]
    {
        AmxStatus::Unsupported
    }
}

/// True if the `avx512-amx` set runs here ([`amx_status`] is
/// [`AmxStatus::Usable`]); always false without `std` or off Linux, and
/// when `EDDY_AMX` is `0` or `off`.
pub fn amx_available() -> bool {
    amx_status() == AmxStatus::Usable
}

/// The uncached checks behind [`amx_available`].
#[cfg(all(feature = "std", target_os = "linux"))]
mod probe {
    use super::*;
    use core::arch::x86_64::{__cpuid, __cpuid_count, __get_cpuid_max};

    /// `arch_prctl` code asking for an extended state component.
    const ARCH_REQ_XCOMP_PERM: libc::c_ulong = 0x1023;
    /// The AMX tile data state component.
    const XFEATURE_XTILEDATA: libc::c_ulong = 18;

    /// Every check, cheapest first (the fork only when the rest pass).
    pub(super) fn status() -> AmxStatus {
        let disabled = std::env::var("EDDY_AMX").is_ok_and(|v| matches!(v.trim(), "0" | "off"));
        if disabled {
            AmxStatus::DisabledByEnv
        } else if !super::super::vnni::vnni_available() {
            AmxStatus::NoVnni
        } else if !cpu_has_amx() {
            AmxStatus::NoAmxInCpuid
        } else if !os_enabled_tiles() {
            AmxStatus::TileStateOff
        } else if !permission_granted() {
            AmxStatus::PermissionRefused
        } else if !tiles_run_in_child() {
            AmxStatus::ProbeFailed
        } else {
            AmxStatus::Usable
        }
    }

    /// CPUID leaf 7: AMX-TILE (EDX bit 24) and AMX-INT8 (EDX bit 25).
    fn cpu_has_amx() -> bool {
        // SAFETY: CPUID exists on every x86-64 CPU; leaf 7 is only read
        // when the maximum leaf reaches it (the intrinsics are safe
        // functions on newer compilers, hence the allow).
        #[allow(unused_unsafe)]
        unsafe {
            if __get_cpuid_max(0).0 < 7 {
                return false;
            }
            let edx = __cpuid_count(7, 0).edx;
            edx & (1 << 24) != 0 && edx & (1 << 25) != 0
        }
    }

    /// OSXSAVE (CPUID.1:ECX bit 27), then XCR0 bits 17 (TILECFG) and 18
    /// (TILEDATA).
    fn os_enabled_tiles() -> bool {
        // SAFETY: CPUID leaf 1 exists on every x86-64 CPU.
        #[allow(unused_unsafe)]
        let osxsave = unsafe { __cpuid(1).ecx } & (1 << 27) != 0;
        if !osxsave {
            return false;
        }
        let (lo, _hi): (u32, u32);
        // SAFETY: with OSXSAVE set, `xgetbv` with ECX = 0 reads XCR0; it
        // touches only the named registers.
        unsafe {
            asm!("xgetbv", in("ecx") 0u32, out("eax") lo, out("edx") _hi, options(nomem, nostack, preserves_flags));
        }
        lo & (1 << 17) != 0 && lo & (1 << 18) != 0
    }

    /// Asks Linux for the tile data state for this process (threads share
    /// it; forked children inherit it).
    fn permission_granted() -> bool {
        // SAFETY: `arch_prctl` with these arguments only changes this
        // process's permitted extended state; an old kernel returns an
        // error.
        unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 }
    }

    /// Runs one 32x32x64 tile product in a forked child that exits with 0
    /// if every sum is right; a SIGILL (or any other fault) kills only the
    /// child (without a core dump).
    fn tiles_run_in_child() -> bool {
        // SAFETY: the child only calls `setrlimit`, runs the tile
        // instructions on its own stack memory and leaves with `_exit`
        // (async-signal-safe: nothing of the parent's state, no locks,
        // no allocation); the parent waits for it.
        unsafe {
            let pid = libc::fork();
            if pid == 0 {
                let no_core = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                libc::setrlimit(libc::RLIMIT_CORE, &no_core);
                libc::_exit(if tile_product_is_right() { 0 } else { 1 });
            }
            if pid < 0 {
                return false;
            }
            let mut status = 0;
            loop {
                let r = libc::waitpid(pid, &mut status, 0);
                if r == pid {
                    break;
                }
                if r < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                    return false;
                }
            }
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
        }
    }

    /// Codes all 3 times activations all -2 over 64 codes: every sum -384.
    ///
    /// # Safety
    /// May fault (SIGILL) where AMX does not run: only in the child.
    unsafe fn tile_product_is_right() -> bool {
        #[repr(C, align(64))]
        struct Buffers {
            codes: [u8; 32 * 64],
            acts: [i8; 32 * 64],
            sums: [i32; 4 * 256],
        }
        let mut b = Buffers { codes: [3; 32 * 64], acts: [-2; 32 * 64], sums: [0; 4 * 256] };
        let cfg = TileConfig::new(64);
        load_config(&cfg);
        zero_accumulators();
        let (codes, acts) = (b.codes.as_ptr(), b.acts.as_ptr() as *const u8);
        multiply(codes, codes.add(16 * 64), 64, acts, acts.add(16 * 64));
        store_accumulators(b.sums.as_mut_ptr() as *mut u8);
        release();
        b.sums.iter().all(|&s| s == -384)
    }
}
