#!/usr/bin/env bash
# A short run of every fuzz target (default 20 s each; FUZZ_SECONDS=N to
# change, FUZZ_TARGETS="a b" to pick). Needs a nightly toolchain and
# cargo-fuzz; without them it says why and skips (exit 0), so CI passes on
# machines without nightly. `scripts/fuzz-smoke.sh --install` first
# installs cargo-fuzz from the crate registry.
# The converter and recipe targets build the host tools with sanitizers:
# minutes on 2 cores the first time (FUZZ_TARGETS="from_bytes_nochecksum
# session" keeps to the runtime's).
set -uo pipefail
cd "$(dirname "$0")/../fuzz"
SECONDS_EACH=${FUZZ_SECONDS:-20}
TARGETS=${FUZZ_TARGETS:-"from_bytes from_bytes_nochecksum session gguf convert_inputs recipe"}
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "== fuzz: skipped (no nightly toolchain; cargo-fuzz needs one)"
  exit 0
fi
if [ "${1:-}" = "--install" ] && ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked || { echo "error: cannot install cargo-fuzz" >&2; exit 1; }
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== fuzz: skipped (cargo-fuzz is not installed; run scripts/fuzz-smoke.sh --install)"
  exit 0
fi
failed=0
for t in $TARGETS; do
  features=()
  case $t in gguf | convert_inputs | recipe) features=(--features host) ;; esac
  scratch=$(mktemp -d)
  echo "== fuzz $t (${SECONDS_EACH} s)"
  # New inputs go to the scratch corpus; the committed seeds stay as they are.
  if ! cargo +nightly fuzz run -O "${features[@]}" "$t" "$scratch" "corpus/$t" -- \
    -max_total_time="$SECONDS_EACH" 2>"$scratch.log"; then
    tail -30 "$scratch.log"
    echo "error: fuzz target $t found a failure (see fuzz/artifacts/$t)" >&2
    failed=1
  else
    grep -E "^Done" "$scratch.log" || true
  fi
  rm -rf "$scratch" "$scratch.log"
done
exit $failed
