#!/usr/bin/env bash
# Miri (undefined-behaviour checker) over eddy-quant's unit tests and the
# runtime's reader and session tests: the subset that finishes in minutes.
# Needs nightly with the miri component; without it, says why and skips.
set -uo pipefail
cd "$(dirname "$0")/.."
if ! cargo +nightly miri --version >/dev/null 2>&1; then
  echo "== miri: skipped (no nightly toolchain with the miri component;" \
    "rustup +nightly component add miri)"
  exit 0
fi
export MIRIFLAGS="${MIRIFLAGS:--Zmiri-disable-isolation}"
cargo +nightly miri setup
echo "== miri: eddy-quant"
cargo +nightly miri test -p eddy-quant --lib
echo "== miri: runtime reader (file_format) and session tests"
cargo +nightly miri test -p eddy --test file_format --test session
