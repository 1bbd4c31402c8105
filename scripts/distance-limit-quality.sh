#!/usr/bin/env bash
# LM-Infinite's distance limit on the trained hybrid (models/lfm2-fortunes,
# trained with a 256-token context): test perplexity with fresh contexts of
# 4x the training context (1024 tokens) and as one whole stream, with and
# without `--kv-distance-limit 256`, f32 weights, f16 KV cache.
# Usage: [TEXT=file] [CASES="name ..."] scripts/distance-limit-quality.sh [model-dir]
# (TEXT: another text than the test split; CASES: only these cases.)
set -euo pipefail
MODEL_DIR=${1:-models/lfm2-fortunes}
CTX=${CTX:-256}            # the training context
LONG=$((4 * CTX))          # 4x the training context
. "$(dirname "$0")/quality-common.sh" out/distance-limit
[ -f "$TEST" ] || bash scripts/setup-corpus.sh
TEXT=${TEXT:-$TEST}
n=$(basename "$MODEL_DIR")
$E convert "$MODEL_DIR" -o "$W/$n-f32.eddy" >/dev/null 2>&1
# name | eval flags | context flags
cases=(
  "trained-full|--kv-sinks 0 --kv-window $CTX|--ctx $CTX"
  "long-full|--kv-sinks 0 --kv-window $LONG|--ctx $LONG"
  "long-full-limit|--kv-sinks 0 --kv-window $LONG --kv-distance-limit $CTX|--ctx $LONG"
  "long-lambda|--kv-sinks 4 --kv-window $((CTX - 4))|--ctx $LONG"
  "long-lambda-limit|--kv-sinks 4 --kv-window $((CTX - 4)) --kv-distance-limit $CTX|--ctx $LONG"
  "stream-lambda|--kv-sinks 4 --kv-window $((CTX - 4))|--ctx 0"
  "stream-lambda-limit|--kv-sinks 4 --kv-window $((CTX - 4)) --kv-distance-limit $CTX|--ctx 0"
)
selected() { [ -z "${CASES:-}" ] || [[ " $CASES " == *" $1 "* ]]; }
for c in "${cases[@]}"; do
  IFS='|' read -r name kv ctx <<<"$c"
  selected "$name" || continue
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
  # shellcheck disable=SC2086 # flags are word lists
  $E --kv f16 $kv eval "$W/$n-f32.eddy" --ppl "$TEXT" $ctx >"$W/$name.ppl" 2>/dev/null &
done
wait
echo "| case | flags | ppl |"
echo "|---|---|---|"
for c in "${cases[@]}"; do
  IFS='|' read -r name kv ctx <<<"$c"
  selected "$name" || continue
  echo "| $name | \`--kv f16 $kv\`, \`$ctx\` | $(ppl "$name") |"
done
