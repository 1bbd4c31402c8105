#!/usr/bin/env bash
# Size/quality of `--target-bpw` against the w2a8 preset on the trained
# models: each quantized with calibration on the training split, scored with
# `eddy eval --ppl` on the test split (one stream), perplexity vs the same
# model in f32. The budget rows: at w2a8's own bits per weight (so the file
# is no larger), and at every B given in TARGETS (default "3.9").
# Usage: scripts/target-bpw-table.sh EDDY [OUT_DIR]   (env: MODELS, TARGETS)
set -euo pipefail
cd "$(dirname "$0")/.."
EDDY=$1 OUT=${2:-$(mktemp -d)}
MODELS=${MODELS:-"mamba-fortunes mamba2-fortunes lfm2-fortunes rwkv7-fortunes gru-fortunes"}
TARGETS=${TARGETS:-3.9}
CALIB=data/fortunes/train.txt TEST=data/fortunes/test.txt
mkdir -p "$OUT"
ppl() { "$EDDY" eval --ppl "$TEST" "$1" --json 2>/dev/null | sed -n 's/.*"ppl":\([0-9.]*\).*/\1/p'; }
bpw() { "$EDDY" inspect --json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["bits_per_weight"]["all"])'; }
row() { # model label file f32-ppl
  local p; p=$(ppl "$3")
  printf '| %s | %s | %s | %s | %s |\n' "$1" "$2" "$(stat -c %s "$3")" "$p" \
    "$(python3 -c "print(f'{($p / $4 - 1) * 100:+.1f}%')")"
}
echo "| model | recipe | file bytes | ppl (test) | vs f32 |"
echo "|---|---|---|---|---|"
for m in $MODELS; do
  f32=$OUT/$m-f32.eddy
  "$EDDY" convert "models/$m" -o "$f32" >/dev/null 2>&1
  base=$(ppl "$f32")
  printf '| %s | f32 | %s | %s | |\n' "$m" "$(stat -c %s "$f32")" "$base"
  "$EDDY" quantize "$f32" --recipe w2a8 --calib $CALIB -o "$OUT/$m-w2a8.eddy" >/dev/null 2>&1
  row "$m" w2a8 "$OUT/$m-w2a8.eddy" "$base"
  # w2a8's bits per weight, rounded down so the budget file is no larger.
  same=$(python3 -c "import math; print(math.floor($(bpw "$OUT/$m-w2a8.eddy") * 1000) / 1000)")
  for b in $same $TARGETS; do
    if "$EDDY" quantize "$f32" --target-bpw "$b" --calib $CALIB -o "$OUT/$m-b$b.eddy" >"$OUT/$m-b$b.log" 2>&1; then
      row "$m" "--target-bpw $b" "$OUT/$m-b$b.eddy" "$base"
    else
      printf '| %s | --target-bpw %s | (%s) | | |\n' "$m" "$b" "$(tail -1 "$OUT/$m-b$b.log")"
    fi
  done
done
