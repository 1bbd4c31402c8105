#!/usr/bin/env bash
# Installs what eddy's builds and tests need on a fresh machine. Idempotent.
#
#   scripts/setup.sh          everything the tests need (cross targets, QEMU,
#                             cross compilers, yosys/iverilog, cargo tools)
#   scripts/setup.sh --demo   only what scripts/demo.sh and the `eddy` CLI
#                             need: a C++ compiler for the FPGA backend's
#                             C-simulation (cargo feature `fpga`, on by default)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust with rustup first (https://rustup.rs)" >&2
  exit 1
fi
# apt packages, installed only when missing (sudo only if not root).
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}
if [ "${1:-}" = "--demo" ]; then
  apt_install g++ libc6-dev
  exit 0
fi
# Cross targets: the no_std runtime is checked for Cortex-M4F; the
# Cortex-M kernel tests also build for Cortex-M55 (Armv8.1-M + Helium); the
# NEON kernels and the on-device CLI build for aarch64 Linux.
rustup target add thumbv7em-none-eabihf thumbv8m.main-none-eabihf aarch64-unknown-linux-gnu >/dev/null

# Cortex-M kernel tests run in QEMU (mps2-an386 = M4, mps3-an547 = M55).
apt_install qemu-system-arm
# The C API's host example (scripts/test-firmware.sh) is built with gcc;
# the FPGA kernels' C-simulation (eddy-fpga's build.rs and tests) with g++.
apt_install gcc g++ libc6-dev
# The C API's Cortex-M example firmware is built with arm-none-eabi-gcc
# (freestanding: newlib is not needed, so no recommends).
if ! dpkg -s gcc-arm-none-eabi >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends gcc-arm-none-eabi >/dev/null
fi
# The FPGA backend's RTL checks (fpga/tests/rtl.rs): Icarus Verilog
# simulation and yosys synthesis of the MAC array; Verilator for the
# open-flow accelerator's unit test (fpga/open/test.sh).
if ! dpkg -s iverilog >/dev/null 2>&1 || ! dpkg -s yosys >/dev/null 2>&1 || ! dpkg -s verilator >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends iverilog yosys verilator >/dev/null
fi
# aarch64 tests and CLI run in QEMU user mode (qemu-aarch64), linked by the
# cross gcc against the arm64 C library; the CLI's FPGA C-simulation
# (eddy-fpga, C++) needs the cross g++ and its libstdc++.
apt_install qemu-user gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross
rustup component add rustfmt clippy >/dev/null 2>&1 || true
# Host tools built from crates.io, each only when this version is not
# installed yet (about 1.5 and 2.5 min on 2 cores, then cached in
# ~/.cargo/bin): defmt-print decodes the demo firmware's defmt log
# (firmware/run-qemu with EDDY_FW_LOG=defmt); cbindgen generates the C
# API's header (scripts/gen-capi-header.sh, checked by test-firmware.sh).
cargo_tool() {
  local crate=$1 version=$2
  if ! "$crate" --version 2>/dev/null | grep -qx "$crate $version"; then
    echo "setup: cargo install $crate $version"
    cargo install --quiet --locked "$crate" --version "$version"
  fi
}
cargo_tool defmt-print 1.2.0
cargo_tool cbindgen 0.29.4
# Fuzzing (scripts/fuzz-smoke.sh) needs cargo-fuzz, and a nightly
# toolchain to run it: installed only where nightly is.
if cargo +nightly --version >/dev/null 2>&1; then
  cargo_tool cargo-fuzz 0.13.2
fi
