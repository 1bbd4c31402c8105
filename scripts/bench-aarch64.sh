#!/usr/bin/env bash
# Guest instructions per integer matrix-vector product of the aarch64
# kernel sets (scalar, neon, neon-sdot) under qemu-aarch64, W2/W4/W8 with
# groups of 64, W2 also with groups of 128 (the w2a8 preset) and 32 (the
# 32-code unpacking path):
#
#   scripts/bench-aarch64.sh [ROWS COLS]      (default 1536 768)
#   FORMATS="w2g64 w8g64" scripts/bench-aarch64.sh   (a subset)
#   TOKENS=16 scripts/bench-aarch64.sh   (prefill: one multi-token product
#                                         of 16 tokens per call, per token)
#
# Instructions are counted from QEMU's translation-block trace (see
# scripts/qemu-count-aarch64.sh). The example
# `matvec_calls` runs the kernel 1 and 3 times; half the difference is one
# call, without setup and process start. Also prints the CPU time QEMU
# spends per call (1 and 41 calls, best of three). Both are emulation:
# instruction counts say nothing about stalls, memory bandwidth or
# per-instruction cost on a real core, and QEMU's speed per guest
# instruction differs by kind, so the ratios are only indicative.
set -euo pipefail
ROWS=${1:-1536}
COLS=${2:-768}
. "$(dirname "$0")/aarch64-bench-common.sh" matvec_calls

# instructions SET FORMAT CALLS: guest instructions of one whole run.
instructions() {
  QEMU_CPU=max scripts/qemu-count-aarch64.sh "$BIN" "$1" "$2" "$ROWS" "$COLS" "$3" ${TOKENS:+"$TOKENS"}
}

# best SET FORMAT CALLS: CPU seconds of one run under QEMU, best of three.
best() { best_seconds "$1" "$2" "$ROWS" "$COLS" "$3" ${TOKENS:+"$TOKENS"}; }

per=${TOKENS:-1}
unit=$([ -n "${TOKENS:-}" ] && echo token || echo call)
echo "matvec ${ROWS}x${COLS}${TOKENS:+, $TOKENS tokens per call (multi-token kernel where the set has one)}," \
  "qemu-aarch64 -cpu max ($(qemu-aarch64 --version | head -n 1))"
printf "%-7s %-10s %14s %10s %14s %10s\n" format set "instr/$unit" "vs scalar" "qemu ms/$unit" "vs scalar"
for f in ${FORMATS:-w2g64 w4g64 w8g64 w2g128 w2g32}; do
  base_i="" base_t=""
  for k in scalar neon neon-sdot; do
    i1=$(instructions $k $f 1)
    i3=$(instructions $k $f 3)
    n=$(((i3 - i1) / 2 / per))
    # QEMU CPU time: 1 and 41 calls, best of three each.
    ms=$(echo "($(best $k $f 41) - $(best $k $f 1)) * 1000 / 40 / $per" | bc -l)
    table_row "%-7s %-10s %14d %9.2fx %14.3f %9.2fx\n" $f $k $n "$ms"
  done
done
