#!/usr/bin/env bash
# The per-family quality table of the README: test perplexity of each trained
# model (same text, split and tokenizer) at f32, W4A8 and W2A8, with bits per
# weight. Usage: scripts/family-quality.sh [model-dir...]
#   (default: every models/*-fortunes directory; prints a Markdown table)
set -euo pipefail
. "$(dirname "$0")/quality-common.sh" out/family-quality
model_dirs "$@"
for d in "${dirs[@]}"; do
  n=$(basename "$d")
  $E convert "$d" -o "$W/$n-f32.eddy" >/dev/null 2>&1
  for r in w4a8 w2a8; do quantize_with "$n" $r; done
done
# Attention layers (hybrids) use KV_FLAGS, default: q4 cache, 4 sinks + 252
# recent tokens (the trained context of models/lfm2-fortunes is 256).
KV_FLAGS=${KV_FLAGS:---kv q4 --kv-sinks 4 --kv-window 252}
for n in "${names[@]}"; do
  flags=""
  if $E inspect "$W/$n-f32.eddy" | grep -q '^kv cache:'; then flags=$KV_FLAGS; fi
  # No trailing blank: xargs -L would join the next line to this one.
  for r in f32 w4a8 w2a8; do echo "$n-$r${flags:+ $flags}"; done
done | xargs -P "$JOBS" -L1 sh -c 'm=$0; '"$E"' "$@" eval '"$W"'/$m.eddy --ppl '"$TEST"' > '"$W"'/$m.ppl 2>/dev/null'
lin() { $E inspect "$W/$1.eddy" | grep '^bits/weight' | sed -E 's/.*, ([0-9.]+) layer linears.*/\1/'; }
echo "| model | family | parameters | state bytes | f32 ppl | W4A8 ppl (bits) | W2A8 ppl (bits) | W2A8 vs f32 |"
echo "|---|---|---|---|---|---|---|---|"
for n in "${names[@]}"; do
  flags=""
  if $E inspect "$W/$n-f32.eddy" | grep -q '^kv cache:'; then flags=$KV_FLAGS; fi
  # shellcheck disable=SC2086 # flags are a word list
  info=$($E $flags inspect "$W/$n-f32.eddy")
  arch=$(echo "$info" | sed -nE 's/^architecture: +(.*)/\1/p')
  params=$(echo "$info" | sed -nE 's/^tensor bytes: +[0-9]+ \(([0-9]+) parameters.*/\1/p')
  state=$(echo "$info" | sed -nE 's/^state bytes: +([0-9]+).*/\1/p')
  base=$(ppl "$n-f32")
  rel=$(awk -v p="$(ppl "$n-w2a8")" -v b="$base" 'BEGIN { printf "%+.1f%%", (p / b - 1) * 100 }')
  echo "| $n | $arch | $params | $state | $base | $(ppl "$n-w4a8") ($(lin "$n-w4a8")) | $(ppl "$n-w2a8") ($(lin "$n-w2a8")) | $rel |"
done
echo
echo "hybrids: attention cache $KV_FLAGS"
echo "bits = bits per weight of the per-layer matrices (scales included); calibration: first $CALIB_TOKENS tokens of $CALIB"
