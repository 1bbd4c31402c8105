#!/usr/bin/env bash
# Check that two eddy binaries (e.g. before and after a refactor) give
# byte-identical converted files and logits on the shipped models and
# fixtures: f32, w2a8 and w4a8, each prefilled, stepped, on two threads,
# on the scalar kernels and (where the CPU has it) on avx512-vnni and avx2;
# where the CPU has AMX, NEW's avx512-amx logits must equal OLD's scalar ones.
# Usage: scripts/compare-logits.sh OLD_EDDY NEW_EDDY [OUT_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: $0 OLD_EDDY NEW_EDDY [OUT_DIR]" >&2; exit 2; }
OLD=$1 NEW=$2 OUT=${3:-$(mktemp -d)}
for b in "$OLD" "$NEW"; do [ -x "$b" ] || { echo "error: $b is not an executable" >&2; exit 2; }; done
mkdir -p "$OUT"
TOK=1,5,9,2,7,3,8,4,6,10,11,12,13,14,15,16,17,18,19,20
MODES=("" "--stepwise" "--threads 2" "--kernels scalar")
# Where AVX-512 VNNI makes another set automatic, `avx2` is checked by name.
grep -qw avx512_vnni /proc/cpuinfo 2>/dev/null && MODES+=("--kernels avx512-vnni" "--kernels avx2")
same=0 diff=0
for src in models/*-fortunes tests/fixtures/{gla,gated-deltanet,recurrentgemma,rwkv4,lstm}-tiny; do
  name=$(basename "$src")
  "$OLD" convert "$src" -o "$OUT/$name-old.eddy" >/dev/null 2>&1 || { echo "$name: old convert failed"; diff=$((diff + 1)); continue; }
  "$NEW" convert "$src" -o "$OUT/$name.eddy" >/dev/null 2>&1 || { echo "$name: new convert failed"; diff=$((diff + 1)); continue; }
  cmp -s "$OUT/$name-old.eddy" "$OUT/$name.eddy" || { echo "$name: converted files differ"; diff=$((diff + 1)); }
  files=("$OUT/$name.eddy")
  for r in w2a8 w4a8; do
    "$NEW" quantize "$OUT/$name.eddy" --recipe $r -o "$OUT/$name-$r.eddy" >/dev/null 2>&1 && files+=("$OUT/$name-$r.eddy")
  done
  for f in "${files[@]}"; do
    b=$(basename "$f" .eddy)
    for mode in "${MODES[@]}"; do
      tag=$(echo "$mode" | tr -d ' -')
      # shellcheck disable=SC2086 # the mode is several words on purpose
      "$OLD" logits "$f" --tokens $TOK -o "$OUT/$b-old$tag.npy" $mode >/dev/null 2>&1 &&
        "$NEW" logits "$f" --tokens $TOK -o "$OUT/$b-new$tag.npy" $mode >/dev/null 2>&1 &&
        cmp -s "$OUT/$b-old$tag.npy" "$OUT/$b-new$tag.npy" && { same=$((same + 1)); continue; }
      echo "$b $mode: logits differ (or a run failed)"; diff=$((diff + 1))
    done
    # AMX tiles (prefill of 16 tokens or more) against the scalar reference.
    if grep -qw amx_int8 /proc/cpuinfo 2>/dev/null; then
      if "$NEW" logits "$f" --tokens $TOK -o "$OUT/$b-newamx.npy" --kernels avx512-amx >/dev/null 2>&1 &&
        cmp -s "$OUT/$b-oldkernelsscalar.npy" "$OUT/$b-newamx.npy"; then
        same=$((same + 1))
      else
        echo "$b --kernels avx512-amx: logits differ from scalar (or a run failed)"; diff=$((diff + 1))
      fi
    fi
  done
done
echo "identical: $same, different or failed: $diff (files in $OUT)"
[ "$diff" -eq 0 ]
