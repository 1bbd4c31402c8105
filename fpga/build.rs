//! Compiles the HLS C++ kernels and the register-file simulator with the
//! host C++ compiler (C-simulation), for `SimBus`.
//!
//! No FMA contraction: the kernels must do exactly the CPU reference's
//! float operations. `EDDY_FPGA_PE` / `EDDY_FPGA_SIMD` override the
//! default parallelism of the simulated kernel.

fn main() {
    let sources = ["hls/eddy_accel.cpp", "sim/axil_sim.cpp"];
    let headers = ["hls/eddy_hls.h", "hls/eddy_params.h", "hls/mvau.h", "hls/scan.h", "hls/eddy_accel.h"];
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++17")
        .files(sources)
        .include("hls")
        .opt_level(2)
        .flag("-ffp-contract=off")
        .flag_if_supported("-fno-fast-math")
        .flag_if_supported("-Wno-unknown-pragmas")
        .flag_if_supported("-Wno-unused-label")
        .warnings(true);
    for (env, define) in [("EDDY_FPGA_PE", "EDDY_PE"), ("EDDY_FPGA_SIMD", "EDDY_SIMD")] {
        println!("cargo:rerun-if-env-changed={env}");
        if let Ok(v) = std::env::var(env) {
            build.define(define, v.as_str());
        }
    }
    build.compile("eddy_fpga_sim");
    for f in sources.iter().chain(&headers) {
        println!("cargo:rerun-if-changed={f}");
    }
}
