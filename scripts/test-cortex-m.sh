#!/usr/bin/env bash
# Cortex-M kernels: lints for both ARM targets, then the no_std kernel test
# runner (firmware/kernel-tests) in QEMU on a Cortex-M4 (mps2-an386, sets
# scalar+dsp) and a Cortex-M55 with Helium (mps3-an547, scalar+dsp+helium).
# Each run cross-checks every compiled set against scalar bit for bit, fails
# if the compiled sets are not the expected ones, and prints instructions per
# matrix-vector product (QEMU -icount, see firmware/kernel-tests/src/bench.rs).
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
echo "== Cortex-M kernel tests passed"
