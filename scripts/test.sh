#!/usr/bin/env bash
# Every check CI runs: formatting, lints, all tests, the no_std build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Which kind of machine this is: the suite's CPU-dependent expectations
# (which kernel sets run) are in kernels-simd/tests/cross_check.rs.
if [ -r /proc/cpuinfo ]; then
  echo "== CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)," \
    "AVX-512 VNNI: $(grep -qw avx512_vnni /proc/cpuinfo && echo yes || echo no)"
fi
echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== no_std runtime for Cortex-M4F (all families, and Mamba-1 alone as the firmware builds it)"
cargo build -p eddy --no-default-features --features all-families --target thumbv7em-none-eabihf
cargo build -p eddy --no-default-features --features mamba1 --target thumbv7em-none-eabihf
echo "== Cortex-M kernels in QEMU (M4 dsp, M55 helium)"
bash scripts/test-cortex-m.sh
echo "== aarch64 NEON kernels and CLI in QEMU (max: neon-sdot, cortex-a53: neon) vs x86 tokens"
bash scripts/test-aarch64.sh
echo "== open-flow FPGA accelerator RTL in Verilator vs the golden matvec vectors"
bash fpga/open/test.sh
echo "== cargo test"
cargo test --workspace
echo "== fuzz: reader and session targets, 10 s each (skipped without nightly + cargo-fuzz)"
FUZZ_SECONDS=10 FUZZ_TARGETS="from_bytes_nochecksum session" bash scripts/fuzz-smoke.sh
echo "== miri: eddy-quant and the runtime's reader tests (skipped without the miri component)"
bash scripts/miri.sh
echo "== demo firmware in QEMU (M4, M55) vs host tokens"
bash scripts/test-firmware.sh
