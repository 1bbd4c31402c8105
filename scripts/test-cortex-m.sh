#!/usr/bin/env bash
# Cortex-M kernels: lints for both ARM targets, then the no_std kernel test
# runner (firmware/kernel-tests) in QEMU on a Cortex-M4 (mps2-an386, sets
# scalar+dsp) and a Cortex-M55 with Helium (mps3-an547, scalar+dsp+helium;
# at opt-level 3 and again at "s"). Each run cross-checks every compiled set
# against scalar bit for bit (matrix kernels, selective scan, convolution +
# SiLU), fails if the compiled sets are not the expected ones, and prints
# instructions per matrix-vector product, scan token and convolution token
# (QEMU -icount, see firmware/kernel-tests/src/bench.rs).
# Needs what scripts/setup.sh installs (rustup targets, qemu-system-arm).
set -euo pipefail
cd "$(dirname "$0")/.."
NICE="nice -n 10"
M55_FLAGS="-C target-cpu=cortex-m55"

echo "== clippy eddy-kernels (thumbv7em-none-eabihf: dsp)"
$NICE cargo clippy -p eddy-kernels --no-default-features --target thumbv7em-none-eabihf -- -D warnings
echo "== clippy eddy-kernels (thumbv8m.main-none-eabihf, cortex-m55: dsp + helium)"
RUSTFLAGS="$M55_FLAGS" $NICE cargo clippy -p eddy-kernels --no-default-features --target thumbv8m.main-none-eabihf -- -D warnings

cd firmware/kernel-tests
echo "== fmt + clippy firmware/kernel-tests"
cargo fmt --check
EDDY_EXPECT_KERNELS=scalar,dsp $NICE cargo clippy --release --target thumbv7em-none-eabihf -- -D warnings

run() {
  local target=$1 expect=$2
  echo "== kernel tests in QEMU: $target (expects kernel sets $expect)"
  # The runner in .cargo/config.toml starts QEMU; its exit status is the
  # firmware's (semihosting SYS_EXIT). timeout guards against a hang.
  EDDY_EXPECT_KERNELS=$expect $NICE cargo build --release --target "$target"
  EDDY_EXPECT_KERNELS=$expect timeout 300 $NICE cargo run --release --target "$target"
}
run thumbv7em-none-eabihf scalar,dsp
run thumbv8m.main-none-eabihf scalar,dsp,helium
# At opt-level 3 LLVM auto-vectorizes the scalar f32 references with MVE for
# the M55 (which flushes subnormals); at the firmware's opt-level "s" they
# stay on the scalar FPU (IEEE). This run checks the Helium f32 kernels'
# flush/NaN detection against IEEE results. Own target dir: no rebuild churn.
echo "== again at opt-level s (IEEE scalar references)"
CARGO_PROFILE_RELEASE_OPT_LEVEL=s CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/opt-s" \
  run thumbv8m.main-none-eabihf scalar,dsp,helium
echo "== Cortex-M kernel tests passed"
