#!/usr/bin/env bash
# What quantized recurrent state costs: test perplexity of each trained model
# (models/*-fortunes) with its state kept as f32, 8-bit and 4-bit
# (--state-bits 32/8/4), at f32 weights and at W2A8 weights, with the state
# bytes per sequence. Usage: scripts/state-quality.sh [model-dir...]
#   (default: every models/*-fortunes directory; prints a Markdown table)
# Converted/quantized files in out/state-quality are reused; FRESH=1 redoes them.
set -euo pipefail
. "$(dirname "$0")/quality-common.sh" out/state-quality
model_dirs "$@"
for d in "${dirs[@]}"; do
  n=$(basename "$d")
  if [ -n "${FRESH:-}" ] || [ ! -s "$W/$n-f32.eddy" ]; then
    $E convert "$d" -o "$W/$n-f32.eddy" >/dev/null 2>&1
  fi
  if [ -n "${FRESH:-}" ] || [ ! -s "$W/$n-w2a8.eddy" ]; then
    quantize_with "$n" w2a8
  fi
done
for n in "${names[@]}"; do for w in f32 w2a8; do for b in 32 8 4; do echo "$n-$w $b"; done; done; done |
  xargs -P "$JOBS" -L 1 sh -c "$E eval $W/\$0.eddy --ppl $TEST --state-bits \$1 > $W/\$0-s\$1.ppl 2>/dev/null"
rel() { awk -v p="$1" -v b="$2" 'BEGIN { printf "%+.2f%%", (p / b - 1) * 100 }'; }
echo "| model | family | weights | state bytes f32 / 8-bit / 4-bit | ppl, f32 state | 8-bit state | 4-bit state |"
echo "|---|---|---|---|---|---|---|"
for n in "${names[@]}"; do
  info=$($E inspect "$W/$n-f32.eddy")
  arch=$(echo "$info" | sed -nE 's/^architecture: +(.*)/\1/p')
  bytes=$(echo "$info" | sed -nE 's/^state by bits: +32 ([0-9]+), 8 ([0-9]+), 4 ([0-9]+).*/\1 \/ \2 \/ \3/p')
  for w in f32 w2a8; do
    base=$(ppl "$n-$w-s32")
    q8=$(ppl "$n-$w-s8")
    q4=$(ppl "$n-$w-s4")
    echo "| $n | $arch | ${w^^} | $bytes | $base | $q8 ($(rel "$q8" "$base")) | $q4 ($(rel "$q4" "$base")) |"
  done
done
echo
echo "test text: $TEST (every token, one stream); W2A8 calibration: first $CALIB_TOKENS tokens of $CALIB"
