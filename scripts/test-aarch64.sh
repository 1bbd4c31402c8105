#!/usr/bin/env bash
# aarch64: the NEON kernel sets and the on-device CLI, in QEMU user mode.
#
# 1. clippy for eddy-kernels on aarch64 (both kernel sets compile cleanly).
# 2. eddy-kernels' tests (cross_check: every supported set against the
#    scalar reference, bit for bit) on two emulated CPUs:
#      -cpu max         has dotprod: sets scalar, neon, neon-dot
#      -cpu cortex-a53  no dotprod:  sets scalar, neon (neon-dot unsupported)
#    EDDY_EXPECT_KERNELS makes the tests fail unless exactly those sets ran.
# 3. The eddy CLI cross-built for aarch64 generates the same greedy tokens
#    and the same logits (bit for bit) under QEMU as the x86 build, for a
#    fixture model quantized to w2a8 by the x86 build.
# Needs what scripts/setup.sh installs (rustup target, qemu-user,
# gcc-aarch64-linux-gnu); .cargo/config.toml names the linker and runner.
# Debug builds (dependencies at opt-level 2, see Cargo.toml) keep it cheap.
set -euo pipefail
cd "$(dirname "$0")/.."
NICE="nice -n 10"
TARGET=aarch64-unknown-linux-gnu

echo "== clippy eddy-kernels ($TARGET)"
$NICE cargo clippy -p eddy-kernels --target $TARGET --all-targets -- -D warnings

kernel_tests() {
  local cpu=$1 expect=$2
  echo "== eddy-kernels tests in qemu-aarch64 -cpu $cpu (expects kernel sets $expect)"
  QEMU_CPU=$cpu EDDY_EXPECT_KERNELS=$expect timeout 600 $NICE cargo test -q -p eddy-kernels --target $TARGET --tests
}
kernel_tests max scalar,neon,neon-dot
kernel_tests cortex-a53 scalar,neon

echo "== eddy CLI: x86 vs aarch64 (QEMU) on a w2a8 fixture model"
$NICE cargo build -q -p eddy-cli
$NICE cargo build -q -p eddy-cli --target $TARGET
X86=target/debug/eddy
ARM="qemu-aarch64 -L /usr/aarch64-linux-gnu target/$TARGET/debug/eddy"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
$X86 convert tests/fixtures/mamba-tiny-untied -o "$WORK/tiny.eddy" --recipe w2a8 >/dev/null
PROMPT="1,17,42,99,5,230,64,8"
N=24

# Greedy tokens and all logits: x86 with each set this CPU supports (of
# avx2, scalar), then aarch64 with each set on an emulated CPU that has it.
# Each run checks (`inspect`) that the set asked for is the one in use.
runs=()
for k in avx2 scalar; do
  EDDY_KERNELS=$k $X86 inspect "$WORK/tiny.eddy" 2>/dev/null | grep -q "^kernels: *$k " || continue
  EDDY_KERNELS=$k $X86 run "$WORK/tiny.eddy" --tokens "$PROMPT" -n $N --ids >"$WORK/x86-$k.ids"
  EDDY_KERNELS=$k $X86 logits "$WORK/tiny.eddy" --tokens "$PROMPT" -o "$WORK/x86-$k.npy" >/dev/null
  runs+=("x86-$k")
done
for spec in max:neon-dot cortex-a53:neon max:scalar; do
  cpu=${spec%%:*} k=${spec#*:}
  export QEMU_CPU=$cpu EDDY_KERNELS=$k
  $NICE $ARM inspect "$WORK/tiny.eddy" | grep -q "^kernels: *$k " ||
    { echo "FAIL: kernel set $k not in use on -cpu $cpu" >&2; exit 1; }
  $NICE $ARM run "$WORK/tiny.eddy" --tokens "$PROMPT" -n $N --ids >"$WORK/arm-$k.ids"
  $NICE $ARM logits "$WORK/tiny.eddy" --tokens "$PROMPT" -o "$WORK/arm-$k.npy" >/dev/null
  unset QEMU_CPU EDDY_KERNELS
  runs+=("arm-$k")
done
# The CLI must refuse neon-dot on a CPU without dotprod.
if QEMU_CPU=cortex-a53 EDDY_KERNELS=neon-dot $ARM inspect "$WORK/tiny.eddy" >/dev/null 2>&1; then
  echo "FAIL: neon-dot accepted on cortex-a53 (no dotprod)" >&2
  exit 1
fi

ref=${runs[0]}
[ -s "$WORK/$ref.ids" ] || { echo "FAIL: $ref generated no tokens" >&2; exit 1; }
echo "$ref tokens: $(tr '\n' ' ' <"$WORK/$ref.ids")"
for r in "${runs[@]:1}"; do
  cmp -s "$WORK/$ref.ids" "$WORK/$r.ids" || {
    echo "FAIL: greedy tokens differ: $ref vs $r" >&2
    diff "$WORK/$ref.ids" "$WORK/$r.ids" >&2 || true
    exit 1
  }
  cmp -s "$WORK/$ref.npy" "$WORK/$r.npy" || { echo "FAIL: logits differ (bits): $ref vs $r" >&2; exit 1; }
  echo "$r: same tokens and bit-identical logits as $ref"
done
echo "== aarch64 tests passed"
