#!/usr/bin/env bash
# aarch64: the NEON kernel sets and the on-device CLI, in QEMU user mode.
#
# 1. clippy for eddy-kernels' library on aarch64 (the NEON code lints cleanly).
# 2. eddy-kernels' tests (cross_check, kv_cross_check and
#    vector_cross_check: every supported set against the scalar reference,
#    bit for bit, random shapes and ragged tails; matrix kernels, the
#    attention-cache kernels and the vector kernels: selective scan,
#    conv + SiLU, activation quantization) on two emulated CPUs:
#      -cpu max         has dotprod: sets scalar, neon, neon-sdot
#      -cpu cortex-a53  no dotprod:  sets scalar, neon (neon-sdot unsupported)
#    EDDY_EXPECT_KERNELS makes the tests fail unless exactly those sets were
#    detected, tested, and the last one chosen as the best.
# 3. The eddy CLI cross-built for aarch64 generates the same greedy tokens
#    and the same logits (bit for bit) under QEMU as the x86 build, for
#    models/mamba-fortunes quantized by the x86 build to w2a8 with W4
#    out_proj (so W2, W4, W8 and f16 kernels all run), with every kernel
#    set on each emulated CPU; `eddy inspect` must report the set asked
#    for, and neon-sdot must be refused on the CPU without dotprod.
# Needs what scripts/setup.sh installs (rustup target, qemu-user,
# gcc-aarch64-linux-gnu); .cargo/config.toml names the linker and runner.
# The aarch64 builds use the `cross-test` profile (dependencies unoptimised,
# eddy's crates at opt-level 2) to keep compile time down; the x86 CLI is
# the release build that scripts/test-firmware.sh uses too.
set -euo pipefail
cd "$(dirname "$0")/.."
NICE="nice -n 10"
TARGET=aarch64-unknown-linux-gnu
PROFILE=cross-test
QEMU="qemu-aarch64 -L /usr/aarch64-linux-gnu"
TARGET_DIR=${CARGO_TARGET_DIR:-target}

# The library only (where the NEON code is): --all-targets would also check
# criterion and its dependencies for aarch64, minutes of CI time; run
# `cargo clippy -p eddy-kernels --target aarch64-unknown-linux-gnu
# --all-targets -- -D warnings` by hand when touching the tests or benches.
echo "== clippy eddy-kernels --lib ($TARGET)"
$NICE cargo clippy -q -p eddy-kernels --target $TARGET --lib -- -D warnings

kernel_tests() {
  local cpu=$1 expect=$2 log
  log=$(mktemp)
  echo "== eddy-kernels tests in qemu-aarch64 -cpu $cpu (expects kernel sets $expect; at ${SECONDS}s)"
  if ! QEMU_CPU=$cpu EDDY_EXPECT_KERNELS=$expect timeout 600 $NICE \
    cargo test -q -p eddy-kernels --target $TARGET --profile $PROFILE --tests -- --nocapture >"$log" 2>&1; then
    cat "$log"
    echo "FAIL: eddy-kernels tests on -cpu $cpu" >&2
    exit 1
  fi
  grep -E "^testing kernel sets" "$log" | sort -u
  grep -E "^test result" "$log"
  rm -f "$log"
}
kernel_tests max scalar,neon,neon-sdot
kernel_tests cortex-a53 scalar,neon

echo "== eddy CLI: x86 (release) and aarch64 ($PROFILE) builds (at ${SECONDS}s)"
$NICE cargo build -q --release -p eddy-cli
$NICE cargo build -q -p eddy-cli --target $TARGET --profile $PROFILE
X86=$TARGET_DIR/release/eddy
ARM="$QEMU $TARGET_DIR/$TARGET/$PROFILE/eddy"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "== x86 vs aarch64 runs (at ${SECONDS}s)"
MODEL="$WORK/fortunes-w2a8.eddy"
$X86 convert models/mamba-fortunes -o "$WORK/f32.eddy" >/dev/null
$X86 quantize "$WORK/f32.eddy" --recipe w2a8 --set '*.out_proj.weight=w4g64' -o "$MODEL" >"$WORK/log" 2>&1 ||
  { cat "$WORK/log"; echo "FAIL: quantize" >&2; exit 1; }
formats=$($X86 inspect "$MODEL" | awk '$1 ~ /_proj.weight$|^embed.weight$/ {print $2}' | sort -u | tr '\n' ' ')
echo "model: $(stat -c %s "$MODEL") bytes, matrix formats: $formats"
for f in w2g128 w4g64 w8g64 f16; do
  grep -qw "$f" <<<"$formats" || { echo "FAIL: model has no $f matrix" >&2; exit 1; }
done
# 20 prompt tokens (prefilled in one chunk), then 32 greedy tokens.
PROMPT="1,17,42,99,5,230,64,8,300,511,2,77,128,900,13,1000,256,31,600,4"
N=32

# Greedy tokens and all prompt logits: x86 with each set this CPU supports
# (of avx2, scalar), then aarch64 with each set on an emulated CPU that has
# it. Each run first checks (`inspect`) that the set asked for is in use.
runs=()
for k in avx2 scalar; do
  # (inspect output is captured whole: `| grep -q` may close the pipe early.)
  info=$(EDDY_KERNELS=$k $X86 inspect "$MODEL" 2>/dev/null) || continue
  grep -q "^kernels: *$k " <<<"$info" || { echo "FAIL: x86 inspect does not report $k" >&2; exit 1; }
  EDDY_KERNELS=$k $X86 run "$MODEL" --tokens "$PROMPT" -n $N --ids >"$WORK/x86-$k.ids" 2>"$WORK/log"
  echo "x86 $k: $(cat "$WORK/log")"
  EDDY_KERNELS=$k $X86 logits "$MODEL" --tokens "$PROMPT" -o "$WORK/x86-$k.npy" >/dev/null
  runs+=("x86-$k")
done
for spec in max:neon-sdot max:neon max:scalar cortex-a53:neon cortex-a53:scalar; do
  cpu=${spec%%:*} k=${spec#*:}
  # The default (no EDDY_KERNELS) must be the best set of that CPU.
  if [ "$k" = scalar ]; then
    best=$( [ "$cpu" = max ] && echo neon-sdot || echo neon )
    info=$(QEMU_CPU=$cpu $ARM inspect "$MODEL")
    grep -q "^kernels: *$best " <<<"$info" ||
      { echo "FAIL: default kernel set on -cpu $cpu is not $best" >&2; exit 1; }
  fi
  info=$(QEMU_CPU=$cpu EDDY_KERNELS=$k $ARM inspect "$MODEL")
  grep -q "^kernels: *$k " <<<"$info" ||
    { echo "FAIL: kernel set $k not in use on -cpu $cpu" >&2; exit 1; }
  # (run takes the set by flag, the other commands by environment.)
  QEMU_CPU=$cpu $NICE $ARM --kernels $k run "$MODEL" --tokens "$PROMPT" -n $N --ids \
    >"$WORK/arm-$cpu-$k.ids" 2>"$WORK/log"
  echo "aarch64 -cpu $cpu $k (emulated): $(cat "$WORK/log")"
  grep -q "kernels $k," "$WORK/log" || { echo "FAIL: run did not use $k on -cpu $cpu" >&2; exit 1; }
  QEMU_CPU=$cpu EDDY_KERNELS=$k $NICE $ARM logits "$MODEL" --tokens "$PROMPT" -o "$WORK/arm-$cpu-$k.npy" >/dev/null
  runs+=("arm-$cpu-$k")
done
# The CLI must refuse neon-sdot on a CPU without dotprod, naming the sets.
if err=$(QEMU_CPU=cortex-a53 $ARM --kernels neon-sdot inspect "$MODEL" 2>&1 >/dev/null); then
  echo "FAIL: neon-sdot accepted on cortex-a53 (no dotprod)" >&2
  exit 1
fi
grep -q "available: scalar, neon$" <<<"$err" || { echo "FAIL: unexpected refusal: $err" >&2; exit 1; }

ref=${runs[0]}
[ "$(tr ',' ' ' <"$WORK/$ref.ids" | wc -w)" -eq $N ] || { echo "FAIL: $ref did not generate $N tokens" >&2; exit 1; }
echo "$ref tokens: $(cat "$WORK/$ref.ids")"
for r in "${runs[@]:1}"; do
  cmp -s "$WORK/$ref.ids" "$WORK/$r.ids" || {
    echo "FAIL: greedy tokens differ: $ref vs $r" >&2
    diff "$WORK/$ref.ids" "$WORK/$r.ids" >&2 || true
    exit 1
  }
  cmp -s "$WORK/$ref.npy" "$WORK/$r.npy" || { echo "FAIL: logits differ (bits): $ref vs $r" >&2; exit 1; }
  echo "$r: same tokens and bit-identical logits"
done
echo "== aarch64 tests passed (${SECONDS}s)"
