#!/usr/bin/env bash
# The README's memory-per-sequence table: `eddy memory` for every trained
# model, a tiny fixture of each family without a trained model, and public
# model shapes, at 1K / 32K / 1M tokens of context.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p eddy-cli
E=target/release/eddy
W=out/memory-table
mkdir -p "$W"
CTX=1024,32768,1048576
echo "| model | cache | 1K tokens | 32K tokens | 1M tokens |"
echo "|---|---|---|---|---|"
rows() { # label, then `eddy memory` arguments
  local label=$1
  shift
  $E "$@" --ctx "$CTX" | grep '^| [a-z]' | grep -v '^| cache' | sed "s/^| /| $label | /"
}
for d in models/*-fortunes; do
  n=$(basename "$d")
  [ -f "$W/$n.eddy" ] || $E convert "$d" -o "$W/$n.eddy" >/dev/null 2>&1
  if [ "$n" = lfm2-fortunes ]; then
    rows "$n (trained, 256-token context)" --kv-sinks 4 --kv-window 252 memory "$W/$n.eddy"
  else
    rows "$n (trained)" memory "$W/$n.eddy"
  fi
done
for f in lstm-tiny rwkv4-tiny gla-tiny gated-deltanet-tiny recurrentgemma-tiny; do
  [ -f "$W/$f.eddy" ] || $E convert "tests/fixtures/$f" -o "$W/$f.eddy" >/dev/null 2>&1
  rows "$f (test fixture)" memory "$W/$f.eddy"
done
for s in mamba-130m mamba-2.8b mamba2-2.7b lfm2-350m lfm2-1.2b recurrentgemma-2b; do
  rows "$s shape" memory --shape "$s"
done
