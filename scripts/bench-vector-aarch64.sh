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
cd "$(dirname "$0")/.."
TARGET=aarch64-unknown-linux-gnu
nice -n 10 cargo build -q --release -p eddy-kernels --example vector_calls --target $TARGET
BIN=${CARGO_TARGET_DIR:-target}/$TARGET/release/examples/vector_calls
QEMU=(qemu-aarch64 -cpu max -L /usr/aarch64-linux-gnu)

# seconds SET KERNEL CALLS: CPU seconds (user + sys) of one run under QEMU.
seconds() {
  local TIMEFORMAT="%U %S"
  { time "${QEMU[@]}" "$BIN" "$@" >/dev/null; } 2>&1 | awk '{print $1 + $2}'
}
best() { for _ in 1 2 3; do seconds "$@"; done | sort -g | head -n 1; }

echo "vector kernels, mamba-130m shapes, qemu-aarch64 -cpu max ($(qemu-aarch64 --version | head -n 1))"
printf "%-6s %-7s %14s %10s %14s %10s\n" kernel set "instr/call" "vs scalar" "qemu µs/call" "vs scalar"
for kernel in ${KERNELS:-scan conv quant}; do
  base_i="" base_t=""
  for k in scalar neon; do
    i1=$(QEMU_CPU=max scripts/qemu-count-aarch64.sh "$BIN" $k $kernel 1)
    i3=$(QEMU_CPU=max scripts/qemu-count-aarch64.sh "$BIN" $k $kernel 3)
    n=$(((i3 - i1) / 2))
    us=$(echo "($(best $k $kernel 401) - $(best $k $kernel 1)) * 1000000 / 400" | bc -l)
    [ -n "$base_i" ] || { base_i=$n base_t=$us; }
    printf "%-6s %-7s %14d %9.2fx %14.1f %9.2fx\n" $kernel $k $n \
      "$(echo "$base_i / $n" | bc -l)" "$us" "$(echo "$base_t / $us" | bc -l)"
  done
done
