//! Compile-time choice of the Cortex-M kernel sets.
//!
//! Stable Rust does not expose ARM target features to `cfg(target_feature)`
//! (`rustc --print cfg --target thumbv7em-none-eabihf` lists none), so this
//! script derives them and sets two cfgs for the crate:
//!
//! - `eddy_dsp`: the Armv7E-M DSP extension (`SMLAD`, `SXTB16`). Every
//!   `thumbv7em` target has it (the "E" is that extension); other ARM
//!   targets get it from `-C target-feature=+dsp`/`+mve` or a core that has
//!   it (`-C target-cpu=cortex-m33|cortex-m35p|cortex-m55|cortex-m85`).
//! - `eddy_mve`: Armv8.1-M Helium (MVE integer), from
//!   `-C target-cpu=cortex-m55|cortex-m85` (or `-C target-feature=+mve`
//!   together with `+vfp2`, which rustc needs before inline assembly may
//!   name FPU registers), on a hard-float (`eabihf`) target.
//! - `eddy_mve_fp`: `eddy_mve` with MVE floating point too (the f32 vector
//!   kernels), from the same cores (rustc's cortex-m55/m85 include
//!   `mve.fp`) or `-C target-feature=+mve.fp`.
//!
//! A feature that rustc does report in `CARGO_CFG_TARGET_FEATURE` counts too,
//! and `-C target-feature=-dsp`/`-mve` turns a set off.

use std::env;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(eddy_dsp)");
    println!("cargo::rustc-check-cfg=cfg(eddy_mve)");
    println!("cargo::rustc-check-cfg=cfg(eddy_mve_fp)");
    println!("cargo::rerun-if-changed=build.rs");
    if env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("arm") {
        return;
    }
    let target = env::var("TARGET").unwrap_or_default();
    let reported: Vec<String> = env::var("CARGO_CFG_TARGET_FEATURE")
        .unwrap_or_default()
        .split(',')
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect();
    let (cpu, flag_features) = codegen_flags(&env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default());

    let enabled = |name: &str| -> Option<bool> {
        // The last mention wins, as for rustc itself.
        flag_features.iter().rev().find(|(f, _)| f == name).map(|(_, on)| *on)
    };
    let cpu_has_mve = matches!(cpu.as_str(), "cortex-m55" | "cortex-m85");
    let cpu_has_dsp = cpu_has_mve || matches!(cpu.as_str(), "cortex-m33" | "cortex-m35p");

    let mve =
        enabled("mve").or(enabled("mve.fp")).unwrap_or(cpu_has_mve || reported.iter().any(|f| f == "mve"));
    let dsp = enabled("dsp").unwrap_or(
        mve || cpu_has_dsp || target.starts_with("thumbv7em") || reported.iter().any(|f| f == "dsp"),
    );
    if dsp {
        println!("cargo::rustc-cfg=eddy_dsp");
    }
    // The Helium kernels name FPU registers in their inline assembly, which
    // rustc allows only with its `vfp2` feature: a hard-float target with
    // a core that has it (cortex-m55/m85) or with it named explicitly.
    let hard_float = target.ends_with("eabihf");
    let rustc_vfp2 =
        cpu_has_mve || ["vfp2", "vfp3", "vfp4", "fp-armv8"].iter().any(|f| enabled(f) == Some(true));
    if mve && dsp && hard_float && rustc_vfp2 {
        println!("cargo::rustc-cfg=eddy_mve");
        let mve_fp = enabled("mve.fp").unwrap_or(cpu_has_mve || reported.iter().any(|f| f == "mve.fp"));
        if mve_fp {
            println!("cargo::rustc-cfg=eddy_mve_fp");
        }
    } else if mve {
        println!(
            "cargo::warning=eddy-kernels: MVE requested but the helium kernels need a hard-float target and \
             `-C target-cpu=cortex-m55` (or cortex-m85, or `+vfp2` next to `+mve`); building without them"
        );
    }
}

/// `(target-cpu, [(feature, enabled)])` from the encoded RUSTFLAGS.
fn codegen_flags(encoded: &str) -> (String, Vec<(String, bool)>) {
    let mut cpu = String::new();
    let mut features = Vec::new();
    let args: Vec<&str> = encoded.split('\x1f').collect();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i];
        let value = if arg == "-C" || arg == "--codegen" {
            i += 1;
            args.get(i).copied().unwrap_or("")
        } else {
            arg.strip_prefix("-C").unwrap_or_default()
        };
        if let Some(c) = value.strip_prefix("target-cpu=") {
            cpu = c.to_owned();
        } else if let Some(list) = value.strip_prefix("target-feature=") {
            for f in list.split(',') {
                if let Some(name) = f.strip_prefix('+') {
                    features.push((name.to_owned(), true));
                } else if let Some(name) = f.strip_prefix('-') {
                    features.push((name.to_owned(), false));
                }
            }
        }
        i += 1;
    }
    (cpu, features)
}
