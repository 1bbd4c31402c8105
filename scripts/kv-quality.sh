#!/usr/bin/env bash
# The KV-cache quality table of the README: test perplexity of the trained
# hybrid (models/lfm2-fortunes, same text, split and tokenizer as the other
# trained models) with its attention layers' cache in f32/f16/q8/q4, full
# (every token of the context cached) or Lambda-shaped (sinks + recent window),
# at f32 and W2A8 weights. Usage: scripts/kv-quality.sh [model-dir]
set -euo pipefail
MODEL_DIR=${1:-models/lfm2-fortunes}
CTX=${CTX:-256}            # the training context: windows of this many tokens
. "$(dirname "$0")/quality-common.sh" out/kv-quality
[ -f "$TEST" ] || bash scripts/setup-corpus.sh
n=$(basename "$MODEL_DIR")
$E convert "$MODEL_DIR" -o "$W/$n-f32.eddy" >/dev/null 2>&1
$E quantize "$W/$n-f32.eddy" --recipe w2a8 --calib "$CALIB" --calib-tokens 8192 -o "$W/$n-w2a8.eddy" >/dev/null 2>&1
# name | eval flags
cases=(
  "full-f32|--kv f32 --kv-sinks 0 --kv-window $CTX|--ctx $CTX"
  "full-f16|--kv f16 --kv-sinks 0 --kv-window $CTX|--ctx $CTX"
  "full-q8|--kv q8 --kv-sinks 0 --kv-window $CTX|--ctx $CTX"
  "full-q4|--kv q4 --kv-sinks 0 --kv-window $CTX|--ctx $CTX"
  "lambda64-f16|--kv f16 --kv-sinks 4 --kv-window 60|--ctx $CTX"
  "lambda64-q4|--kv q4 --kv-sinks 4 --kv-window 60|--ctx $CTX"
  "lambda128-q4|--kv q4 --kv-sinks 4 --kv-window 124|--ctx $CTX"
  "stream-f16|--kv f16 --kv-sinks 4 --kv-window $((CTX - 4))|--ctx 0"
  "stream-q4|--kv q4 --kv-sinks 4 --kv-window $((CTX - 4))|--ctx 0"
)
run_case() { # weights name kv-flags ctx-flags
  # shellcheck disable=SC2086 # flags are word lists
  $E $3 eval "$W/$n-$1.eddy" --ppl "$TEST" $4 >"$W/$1-$2.ppl" 2>/dev/null
}
for w in f32 w2a8; do
  for c in "${cases[@]}"; do
    IFS='|' read -r name kv ctx <<<"$c"
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
    run_case "$w" "$name" "$kv" "$ctx" &
  done
done
wait
rel() { awk -v p="$(ppl "$1")" -v b="$(ppl "$2")" 'BEGIN { printf "%+.2f%%", (p / b - 1) * 100 }'; }
echo "| cache | f32 weights ppl | vs f16 full | W2A8 ppl | vs f16 full |"
echo "|---|---|---|---|---|"
for c in "${cases[@]}"; do
  IFS='|' read -r name kv ctx <<<"$c"
  echo "| $name ($kv, $ctx) | $(ppl f32-$name) | $(rel f32-$name f32-full-f16) | $(ppl w2a8-$name) | $(rel w2a8-$name w2a8-full-f16) |"
done
