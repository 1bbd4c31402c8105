#!/usr/bin/env bash
# Guest instructions per attention call (one query head: kv_scores, scalar
# softmax, kv_mix) of the aarch64 kernel sets under qemu-aarch64, for each
# KV cache format, window 2048, head_dim 64 and 128:
#
#   scripts/bench-kv-aarch64.sh [WINDOW]        (default 2048)
#   FORMATS="f16 q4" DIMS=64 scripts/bench-kv-aarch64.sh   (a subset)
#
# Counting by scripts/qemu-count-aarch64.sh (as scripts/bench-aarch64.sh):
# each executed translation block is logged, its length read from its
# disassembly; the example `kv_attention` runs 1 and 3 calls and half the
# difference is one call, without setup and process start. neon-sdot uses
# the same attention kernels as neon, so only neon is counted. Emulation:
# instruction counts say nothing about stalls or per-instruction cost on
# a real core, so the ratios are only indicative.
set -euo pipefail
WINDOW=${1:-2048}
. "$(dirname "$0")/aarch64-bench-common.sh" kv_attention

# instructions SET FORMAT HEAD_DIM CALLS: guest instructions of one run
# (scripts/qemu-count-aarch64.sh).
instructions() {
  QEMU_CPU=max bash scripts/qemu-count-aarch64.sh "$BIN" "$1" "$2" "$3" "$WINDOW" "$4"
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
