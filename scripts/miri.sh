#!/usr/bin/env bash
# Miri (undefined-behaviour checker) over eddy-quant's unit tests and the
# runtime's file reader tests: the subset that finishes in minutes.
# Needs nightly with the miri component; without it, says why and skips.
set -euo pipefail
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
# The reader's parsing tests, without the whole-file sweeps (every
# truncation length, every byte flipped: they run natively in `cargo test`;
# under Miri each takes over ten minutes) and without tests that run a
# model (minutes each under Miri).
echo "== miri: runtime reader (file_format_header, file_format_structure)"
cargo +nightly miri test -p eddy --test file_format_header --test file_format_structure -- \
  --skip every_single_byte --skip truncation_at_every_length
