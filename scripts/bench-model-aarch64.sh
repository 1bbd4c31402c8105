#!/usr/bin/env bash
# Guest instructions per decoded token of a whole model, per aarch64
# kernel set, under qemu-aarch64 -cpu max, one thread:
#
#   scripts/bench-model-aarch64.sh [ARM_EDDY]
#
# The model is the one scripts/test-aarch64.sh checks: models/mamba-fortunes
# quantized by the x86 build to w2a8 with a W4 out_proj (4 layers, d_model
# 256, d_inner 512, d_state 16). `eddy run` generates 1 and 17 tokens after
# the same 20-token prompt; a sixteenth of the difference of the
# instruction counts (scripts/qemu-count-aarch64.sh) is one decode step
# (every layer's matrix products, conv + SiLU, selective scan, activation
# quantization, norms, the head and the greedy pick), without the prompt,
# loading and process start. ARM_EDDY is the aarch64 `eddy` binary to
# measure (default: the release cross-build, built here), e.g. a build of
# another commit to compare. Emulation: instructions, not cycles.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=aarch64-unknown-linux-gnu
TARGET_DIR=${CARGO_TARGET_DIR:-target}
nice -n 10 cargo build -q --release -p eddy-cli
X86=$TARGET_DIR/release/eddy
if [ $# -ge 1 ]; then
  ARM=$1
else
  nice -n 10 cargo build -q --release -p eddy-cli --target $TARGET
  ARM=$TARGET_DIR/$TARGET/release/eddy
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
MODEL="$WORK/fortunes-w2a8.eddy"
$X86 convert models/mamba-fortunes -o "$WORK/f32.eddy" >/dev/null
$X86 quantize "$WORK/f32.eddy" --recipe w2a8 --set '*.out_proj.weight=w4g64' -o "$MODEL" >/dev/null
PROMPT="1,17,42,99,5,230,64,8,300,511,2,77,128,900,13,1000,256,31,600,4"

echo "decode instructions per token, $(basename "$ARM"), mamba-fortunes w2a8 (W4 out_proj), 1 thread," \
  "qemu-aarch64 -cpu max ($(qemu-aarch64 --version | head -n 1))"
printf "%-10s %14s %10s\n" set "instr/token" "vs scalar"
base=""
for k in scalar neon neon-sdot; do
  count() {
    QEMU_CPU=max EDDY_THREADS=1 scripts/qemu-count-aarch64.sh "$ARM" --kernels $k run "$MODEL" \
      --tokens "$PROMPT" -n "$1" --ids 2>/dev/null
  }
  i1=$(count 1)
  i17=$(count 17)
  n=$(((i17 - i1) / 16))
  [ -n "$base" ] || base=$n
  printf "%-10s %14d %9.2fx\n" $k $n "$(echo "$base / $n" | bc -l)"
done
