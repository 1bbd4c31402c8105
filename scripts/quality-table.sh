#!/usr/bin/env bash
# Reproduces the quality table of the README: perplexity of the trained test
# model on the held-out test split for every preset and the W2A8 ablations.
# Usage: scripts/quality-table.sh [model-dir]   (prints a Markdown table)
set -euo pipefail
MODEL_DIR=${1:-models/mamba-fortunes}
. "$(dirname "$0")/quality-common.sh" out/quality
$E convert "$MODEL_DIR" -o "$W/f32.eddy" >/dev/null
$E convert "$MODEL_DIR" -o "$W/f16.eddy" --dtype f16 >/dev/null
q() { # name recipe [flags...]
  local name=$1 recipe=$2; shift 2
  $E quantize "$W/f32.eddy" --recipe "$recipe" --calib "$CALIB" --calib-tokens "$CALIB_TOKENS" "$@" \
    -o "$W/$name.eddy" 2>/dev/null >/dev/null
}
q w8a8 w8a8
q w4a8 w4a8
q w2a8 w2a8
q w2a8-g64 w2a8-g64
q w2a8-no-gptq w2a8 --no-gptq
q w2a8-no-gptq-no-act w2a8 --no-gptq --no-act-aware
q w2a8-plain w2a8 --no-gptq --no-act-aware --no-clip-search
ROWS="f32 f16 w8a8 w4a8 w2a8 w2a8-g64 w2a8-no-gptq w2a8-no-gptq-no-act w2a8-plain"
# Evaluate in parallel; each writes its own result file.
printf '%s\n' $ROWS | xargs -P "$JOBS" -I{} sh -c "$E eval $W/{}.eddy --ppl $TEST > $W/{}.ppl 2>/dev/null"
base=$(sed -E 's/.*ppl: ([0-9.]+).*/\1/' "$W/f32.ppl")
echo "| model | bits/weight (all) | bits/weight (layer linears) | file bytes | test ppl | vs f32 |"
echo "|---|---|---|---|---|---|"
for r in $ROWS; do
  ppl=$(sed -E 's/.*ppl: ([0-9.]+).*/\1/' "$W/$r.ppl")
  bits=$($E inspect "$W/$r.eddy" | grep '^bits/weight')
  all=$(echo "$bits" | sed -E 's/bits\/weight: +([0-9.]+) all.*/\1/')
  lin=$(echo "$bits" | sed -E 's/.*, ([0-9.]+) layer linears.*/\1/')
  size=$(stat -c %s "$W/$r.eddy")
  rel=$(awk -v p="$ppl" -v b="$base" 'BEGIN { printf "%+.1f%%", (p / b - 1) * 100 }')
  echo "| $r | $all | $lin | $size | $ppl | $rel |"
done
echo
echo "test tokens: $(sed -E 's/tokens evaluated: ([0-9]+).*/\1/' "$W/f32.ppl") scored; calibration: first $CALIB_TOKENS tokens of $CALIB"
