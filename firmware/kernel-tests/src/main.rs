//! Cross-checks every kernel set compiled into `eddy-kernels` for this
//! Cortex-M target against the scalar reference, bit for bit, then counts
//! guest instructions per matrix-vector product for each set. Output and
//! exit status go through semihosting (QEMU `-semihosting-config`).
//!
//! The build must say which sets it expects (`EDDY_EXPECT_KERNELS`, e.g.
//! `scalar,dsp,helium`): the run fails if the compiled sets differ, so a
//! build that silently fell back to scalar cannot pass.
#![no_std]
#![no_main]

mod bench;
mod check;
mod vector;

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use eddy_kernels::{compiled, supported};

/// Sets the build is expected to contain, comma-separated, from the build
/// environment.
const EXPECTED: Option<&str> = option_env!("EDDY_EXPECT_KERNELS");

#[entry]
fn main() -> ! {
    let ok = run();
    hprintln!("kernel-tests: {}", if ok { "OK" } else { "FAILED" });
    debug::exit(if ok { debug::EXIT_SUCCESS } else { debug::EXIT_FAILURE });
    #[allow(clippy::empty_loop)]
    loop {}
}

/// SCB CPACR: CP10/CP11 (FPU and, on Armv8.1-M, MVE) access bits 20..24.
const CPACR: *const u32 = 0xE000_ED88 as *const u32;

fn run() -> bool {
    // SAFETY: CPACR is an always-present, word-aligned System Control
    // Block register on Armv7-M/Armv8-M; a volatile read has no effect.
    let cpacr = unsafe { core::ptr::read_volatile(CPACR) };
    // cortex-m-rt's reset handler sets it for `eabihf` targets before main.
    hprintln!("CPACR = {:#010x} (CP10/CP11 full access: {})", cpacr, cpacr & 0x00f0_0000 == 0x00f0_0000);
    if cpacr & 0x00f0_0000 != 0x00f0_0000 {
        hprintln!("error: FPU/MVE access not enabled in CPACR");
        return false;
    }
    let names = || compiled().iter().map(|k| k.name);
    hprintln!("compiled kernel sets:");
    for n in names() {
        hprintln!("  {}", n);
    }
    hprintln!("best kernel set: {}", eddy_kernels::best().name);
    let Some(expected) = EXPECTED else {
        hprintln!("error: EDDY_EXPECT_KERNELS was not set at build time (e.g. scalar,dsp)");
        return false;
    };
    let mut ok = true;
    if !expected.split(',').eq(names()) {
        hprintln!("error: expected kernel sets [{}], this build has others", expected);
        ok = false;
    }
    if let Some(k) = compiled().iter().find(|k| !supported(k)) {
        hprintln!("error: compiled set {} reports unsupported", k.name);
        ok = false;
    }

    let (mut passed, mut failed) = (0u32, 0u32);
    for k in compiled().iter().copied() {
        let report = check::cross_check(k);
        let verdict = if report.mismatches == 0 { "PASS" } else { "FAIL" };
        hprintln!(
            "set {}: {} ({} integer cases, {} float cases, {} mismatching outputs)",
            k.name,
            verdict,
            report.int_cases,
            report.float_cases,
            report.mismatches
        );
        if report.mismatches == 0 && report.int_cases > 0 {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    hprintln!("cross-check: {} passed, {} failed", passed, failed);
    ok &= failed == 0;
    ok &= vector::cross_check();

    ok &= bench::instructions_per_matvec();
    ok
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    hprintln!("panic: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}
