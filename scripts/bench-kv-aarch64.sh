#!/usr/bin/env bash
# Guest instructions per attention call (one query head: kv_scores, scalar
# softmax, kv_mix) of the aarch64 kernel sets under qemu-aarch64, for each
# KV cache format, window 2048, head_dim 64 and 128:
#
#   scripts/bench-kv-aarch64.sh [WINDOW]        (default 2048)
#   FORMATS="f16 q4" DIMS=64 scripts/bench-kv-aarch64.sh   (a subset)
#
# Counting as in scripts/bench-aarch64.sh: each executed translation block
# is logged (`-d in_asm,exec,nochain`), its length read from its
# disassembly; the example `kv_attention` runs 1 and 3 calls and half the
# difference is one call, without setup and process start. neon-sdot uses
# the same attention kernels as neon, so only neon is counted. Emulation:
# instruction counts say nothing about stalls or per-instruction cost on
# a real core, so the ratios are only indicative.
set -euo pipefail
cd "$(dirname "$0")/.."
WINDOW=${1:-2048}
TARGET=aarch64-unknown-linux-gnu
nice -n 10 cargo build -q --release -p eddy-kernels --example kv_attention --target $TARGET
BIN=${CARGO_TARGET_DIR:-target}/$TARGET/release/examples/kv_attention
QEMU=(qemu-aarch64 -cpu max -L /usr/aarch64-linux-gnu)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# instructions SET FORMAT HEAD_DIM CALLS: guest instructions of one run.
instructions() {
  mkfifo "$WORK/trace"
  awk '
    function key(a) { sub(/^0x/, "", a); sub(/:$/, "", a); sub(/^0+/, "", a); return tolower(a) }
    /^IN:/ { inblock = 1; first = 1; next }
    inblock && /^0x[0-9a-f]+:/ { if (first) { pc = key($1); len[pc] = 0; first = 0 } len[pc]++; next }
    inblock && /^$/ { inblock = 0; next }
    /^Trace / { if (match($0, /\[[0-9a-f]+\/[0-9a-f]+\//)) { s = substr($0, RSTART + 1, RLENGTH - 2); split(s, f, "/"); n[key(f[2])]++ } }
    END { t = 0; for (p in n) t += n[p] * len[p]; printf "%d\n", t }
  ' <"$WORK/trace" >"$WORK/count" &
  local awk_pid=$!
  "${QEMU[@]}" -d in_asm,exec,nochain -D "$WORK/trace" "$BIN" "$1" "$2" "$3" "$WINDOW" "$4" >/dev/null
  wait $awk_pid
  rm -f "$WORK/trace"
  cat "$WORK/count"
}

echo "attention, one query head, window $WINDOW, qemu-aarch64 -cpu max ($(qemu-aarch64 --version | head -n 1))"
printf "%-9s %-6s %-7s %14s %16s\n" head_dim cache set "instr/call" "f16 scalar / this"
for d in ${DIMS:-64 128}; do
  base=""
  for f in ${FORMATS:-f16 q4 q8 f32}; do
    for k in scalar neon; do
      n=$((($(instructions $k $f $d 3) - $(instructions $k $f $d 1)) / 2))
      [ -n "$base" ] || base=$n
      printf "%-9s %-6s %-7s %14d %15.2fx\n" $d $f $k $n "$(echo "$base / $n" | bc -l)"
    done
  done
done
