#!/usr/bin/env bash
# Guest instructions per call of the aarch64 vector kernels (selective
# scan, convolution + SiLU, int8 activation quantization) at mamba-130m's
# shapes, scalar reference vs NEON, under qemu-aarch64 -cpu max:
#
#   scripts/bench-vector-aarch64.sh
#   KERNELS="scan" scripts/bench-vector-aarch64.sh   (a subset)
#
# The example `vector_calls` (see its docs for the shapes) runs the kernel
# 1 and 3 times; half the difference of the instruction counts
# (scripts/qemu-count-aarch64.sh) is one call. Also prints QEMU's CPU time
# per call (1 and 401 calls, best of three; `time` counts in 10 ms steps).
# `neon-sdot` uses `neon`'s vector kernels, so it is not listed.
# Emulation: instruction counts, not cycles; the ratios are only
# indicative. QEMU's time does not follow the instruction counts (it
# emulates f32 arithmetic in software, presumably lane by lane for vector
# instructions): the NEON scan takes about as long as the scalar one there.
set -euo pipefail
. "$(dirname "$0")/aarch64-bench-common.sh" vector_calls

echo "vector kernels, mamba-130m shapes, qemu-aarch64 -cpu max ($(qemu-aarch64 --version | head -n 1))"
printf "%-6s %-7s %14s %10s %14s %10s\n" kernel set "instr/call" "vs scalar" "qemu µs/call" "vs scalar"
for kernel in ${KERNELS:-scan conv quant}; do
  base_i="" base_t=""
  for k in scalar neon; do
    i1=$(QEMU_CPU=max scripts/qemu-count-aarch64.sh "$BIN" $k $kernel 1)
    i3=$(QEMU_CPU=max scripts/qemu-count-aarch64.sh "$BIN" $k $kernel 3)
    n=$(((i3 - i1) / 2))
    us=$(echo "($(best_seconds $k $kernel 401) - $(best_seconds $k $kernel 1)) * 1000000 / 400" | bc -l)
    table_row "%-6s %-7s %14d %9.2fx %14.1f %9.2fx\n" $kernel $k $n "$us"
  done
done
