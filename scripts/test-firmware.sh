#!/usr/bin/env bash
# Demo firmware (firmware/cortex-m) end to end: lints, then for both cores
# (Cortex-M4 mps2-an386 with the DSP kernels, Cortex-M55 mps3-an547 with
# Helium) build the image with the W2A8 model embedded, twice: logging
# text, and logging defmt frames decoded by defmt-print (EDDY_FW_LOG=defmt,
# see firmware/run-qemu); run each in QEMU and check that
#   - its generated tokens equal the host runtime's greedy tokens
#     (`eddy run MODEL --tokens PROMPT -n N --ids`) for the same model,
#   - it used the expected kernel set,
#   - its static state/scratch sizes equal `eddy inspect`'s,
#   - its measured stack high-water mark is within 8 KiB;
# and that a model with a flipped byte, or a prompt token outside the
# vocabulary, ends with the documented error code and message, never a
# fault. Then the C API: the header must be cbindgen's output and match
# the Rust exports, the host C example (gcc) must give
# the same tokens and pass its snapshot/restore and error-code checks.
# Then every trained model under models/ (each family), quantized W2A8 with
# calibration: the demo firmware (built with only the model's family, as
# firmware/run-qemu picks it) and the C firmware (firmware/run-c-qemu) on
# both cores give the host's tokens; on the hybrid (LFM2) the demo's
# EDDY_FW_STATE_BITS / EDDY_FW_KV options give the tokens and state size of
# `eddy run/inspect --state-bits/--kv/--kv-sinks/--kv-window`.
# Needs what scripts/setup.sh installs (rustup targets, qemu, gcc,
# defmt-print, cbindgen).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
NICE="nice -n 10"
PROMPT="1,2,3,4,5,6,7,8"
N=16
STACK_LIMIT=8192

echo "== host CLI (release) for the reference tokens"
$NICE cargo build --release -q -p eddy-cli
eddy="$root/target/release/eddy"

# The repo's trained model quantized W2A8; the tiny fixture if the trained
# model is not there (it may be being retrained).
mkdir -p out/fw
if [ -f models/mamba-fortunes/model.safetensors ]; then
  src=models/mamba-fortunes
else
  src=tests/fixtures/mamba-tiny-tied
  echo "note: models/mamba-fortunes is missing; using the fixture $src"
fi
# quantize_w2a8 SRC OUT: convert and quantize W2A8, calibrated on the
# training text when the source is a trained model.
quantize_w2a8() {
  local calib=()
  [[ "$1" == models/* ]] && calib=(--calib data/fortunes/train.txt)
  $NICE "$eddy" convert "$1" -o out/fw/test-f32.eddy >/dev/null
  $NICE "$eddy" quantize out/fw/test-f32.eddy --recipe w2a8 "${calib[@]}" -o "$2" >/dev/null 2>&1 \
    || $NICE "$eddy" quantize out/fw/test-f32.eddy --recipe w2a8 "${calib[@]}" -o "$2"
}
model="$root/out/fw/test-w2a8.eddy"
quantize_w2a8 "$src" "$model"
echo "model: $model ($(stat -c %s "$model") bytes, from $src)"
inspect="$("$eddy" inspect "$model")"
state=$(sed -n 's/^state bytes: *\([0-9]*\).*/\1/p' <<<"$inspect")
scratch=$(sed -n 's/^scratch bytes: *\([0-9]*\).*/\1/p' <<<"$inspect")
expected=$(EDDY_KERNELS=scalar "$eddy" run "$model" --tokens "$PROMPT" -n $N --ids 2>/dev/null | tail -n 1)
echo "host tokens (scalar kernels): $expected"
[ -n "$expected" ] || { echo "FAIL: host run printed no tokens"; exit 1; }

echo "== fmt + clippy firmware/cortex-m"
(cd firmware/cortex-m && cargo fmt --check)
for t in thumbv7em-none-eabihf thumbv8m.main-none-eabihf; do
  for features in all-families all-families,defmt; do
    (cd firmware/cortex-m && EDDY_FW_MODEL="$model" $NICE cargo clippy -q --release --target $t \
      ${features:+--features $features} -- -D warnings)
  done
done

log=$(mktemp)
trap 'rm -f "$log"' EXIT
fail() { echo "FAIL: $*"; echo "--- firmware output:"; cat "$log"; exit 1; }

# run CORE EXPECTED_STATUS [env...]: run the firmware (log format $LOG:
# text or defmt), output in $log.
run() {
  local core=$1 want=$2 status=0
  shift 2
  env "$@" EDDY_FW_LOG="${LOG:-text}" EDDY_FW_PROMPT="${PROMPT_OVERRIDE:-$PROMPT}" EDDY_FW_GENERATE=$N \
    firmware/run-qemu "$core" "$model" >"$log" 2>&1 || status=$?
  [ "$status" -eq "$want" ] || fail "$core (${LOG:-text} log) exited with status $status, expected $want"
}

for core in m4 m55; do
  case $core in m4) kernels=dsp ;; m55) kernels=helium ;; esac
  for LOG in text defmt; do
    echo "== $core: generate $N tokens in QEMU, $LOG log"
    run $core 0
    grep -E "^(model|prefill|decode|stack):" "$log"
    got=$(tail -n 1 "$log")
    echo "firmware tokens ($LOG): $got"
    if [ $LOG = defmt ]; then
      # defmt-print shows the `{=[u32]}` argument as `[a, b, ...]`.
      [[ "$got" == "tokens: ["*"]" ]] || fail "$core: the last decoded defmt line is not 'tokens: [...]'"
      got=$(sed -e 's/^tokens: \[//' -e 's/\]$//' -e 's/, /,/g' <<<"$got")
    fi
    [ "$got" = "$expected" ] || fail "$core tokens ($LOG log) differ from the host's ($expected)"
    grep -q "kernels $kernels," "$log" || fail "$core did not use the $kernels kernels"
    grep -q "state $state bytes, scratch $scratch bytes" "$log" \
      || fail "$core state/scratch differ from eddy inspect (state $state, scratch $scratch)"
    used=$(sed -n 's/^stack: \([0-9]*\) bytes used.*/\1/p' "$log")
    [ -n "$used" ] && [ "$used" -le $STACK_LIMIT ] || fail "$core stack high-water mark ${used:-?} > $STACK_LIMIT"
  done
done
LOG=text

echo "== bad input gives an error code and message, not a fault"
check_error() {
  local what=$1 core=$2 code=$3 pattern=$4
  shift 4
  run "$core" "$code" "$@"
  grep -q "^error $code: .*$pattern" "$log" || fail "$what: no 'error $code: ...$pattern' message"
  echo "$core $what: $(grep '^error' "$log")"
}
check_error "flipped magic byte" m4 2 'not an .eddy file' EDDY_FW_CORRUPT_AT=0
mid=$(( $(stat -c %s "$model") / 2 ))
check_error "flipped byte $mid" m4 2 'checksum mismatch' EDDY_FW_CORRUPT_AT=$mid
check_error "flipped byte $mid" m55 2 'checksum mismatch' EDDY_FW_CORRUPT_AT=$mid
PROMPT_OVERRIDE="1,999999" check_error "token out of range" m4 5 'out of range'
LOG=defmt check_error "flipped byte $mid (defmt log)" m55 2 'checksum mismatch' EDDY_FW_CORRUPT_AT=$mid

echo "== C API: header is cbindgen's output, static library, host C example (gcc)"
bash scripts/gen-capi-header.sh --check
$NICE cargo build --release -q -p eddy-capi
$NICE cargo test -q -p eddy-capi --test header
$NICE gcc -std=c11 -O2 -Wall -Wextra -Werror -Ifirmware/capi/include firmware/capi/examples/host_demo.c \
  target/release/libeddy_capi.a -lpthread -ldl -lm -o out/fw/host_demo
# The KV-cache options are checked on a hybrid (LFM2, attention layers).
$NICE "$eddy" convert models/lfm2-fortunes -o out/fw/lfm2-f32.eddy >/dev/null
status=0
out/fw/host_demo "$model" "$PROMPT" $N out/fw/lfm2-f32.eddy >"$log" 2>&1 || status=$?
[ "$status" -eq 0 ] || { cat "$log"; fail "host_demo exited with $status"; }
grep -E "^(state|host_demo)" "$log"
echo "model options: $(grep -c '^ok   options:' "$log") checks passed"
got=$(tail -n 1 "$log")
echo "C API tokens: $got"
[ "$got" = "$expected" ] || fail "C API tokens differ from the host's ($expected)"
# c_firmware CORE: the bare-metal C example linked with the no_std library,
# built with arm-none-eabi-gcc and run in QEMU; tokens must match the host.
# c_firmware CORE [MODEL EXPECTED [N]]: the bare-metal C example linked
# with the no_std library (every family), built with arm-none-eabi-gcc and
# run in QEMU by firmware/run-c-qemu; tokens must match the host.
c_firmware() {
  local core=$1 m=${2:-$model} want=${3:-$expected} n=${4:-$N} kernels status=0
  case $core in m4) kernels=dsp ;; m55) kernels=helium ;; esac
  echo "== C API on $core: C firmware (arm-none-eabi-gcc) + no_std static library, in QEMU: $(basename "$m")"
  EDDY_FW_FAMILIES=${EDDY_FW_FAMILIES:-all} EDDY_FW_PROMPT="$PROMPT" EDDY_FW_GENERATE=$n \
    firmware/run-c-qemu $core "$m" >"$log" 2>&1 || status=$?
  [ "$status" -eq 0 ] || fail "C firmware on $core exited with $status"
  grep -E "^(kernels|snapshot|truncated)" "$log"
  grep -qx "kernels $kernels" "$log" || fail "C firmware on $core did not use the $kernels kernels"
  got=$(tail -n 1 "$log")
  echo "C firmware tokens ($core): $got"
  [ "$got" = "$want" ] || fail "C firmware tokens on $core differ from the host's ($want)"
}
c_firmware m4
c_firmware m55

# Every other trained model (one per family), fewer tokens to keep CI short.
NF=8
for dir in models/*/; do
  dir=${dir%/}
  [ -f "$dir/model.safetensors" ] && [ "$dir" != "$src" ] || continue
  m="$root/out/fw/test-$(basename "$dir")-w2a8.eddy"
  quantize_w2a8 "$dir" "$m"
  arch=$("$eddy" inspect "$m" | sed -n 's/^architecture: *//p')
  want=$(EDDY_KERNELS=scalar "$eddy" run "$m" --tokens "$PROMPT" -n $NF --ids 2>/dev/null | tail -n 1)
  [ -n "$want" ] || fail "host run of $m printed no tokens"
  echo "== $dir ($arch, $(stat -c %s "$m") bytes W2A8): host tokens $want"
  for core in m4 m55; do
    status=0
    EDDY_FW_PROMPT="$PROMPT" EDDY_FW_GENERATE=$NF firmware/run-qemu $core "$m" >"$log" 2>&1 || status=$?
    [ "$status" -eq 0 ] || fail "$arch on $core: the demo firmware exited with $status"
    grep -q "^model: $arch, " "$log" || fail "$arch on $core: the firmware did not load a $arch model"
    got=$(tail -n 1 "$log")
    echo "$core demo firmware ($(sed -n 's/^model: .*kernels \([a-z0-9]*\),.*/\1/p' "$log")): $got"
    [ "$got" = "$want" ] || fail "$arch demo firmware tokens on $core differ from the host's ($want)"
    c_firmware $core "$m" "$want" $NF
    if [ "$(basename "$dir")" = gru-tiny-fortunes ]; then
      # The small-MCU model with a C library of its family alone.
      EDDY_FW_FAMILIES=model c_firmware $core "$m" "$want" $NF
      hex=$(readelf -SW out/fw/c-firmware-$core.elf | awk '$2 == ".text" { print $6 } $3 == ".text" { print $7 }' \
        | head -n 1)
      echo "C firmware .text with only the $arch family ($core): $(( 16#${hex:-0} )) bytes"
    fi
  done
  if [ "$arch" = lfm2 ]; then
    # A KV window shorter than the sequence (evictions), Q8 cache, 8-bit state.
    opts=(--state-bits 8 --kv q8 --kv-sinks 2 --kv-window 5)
    want=$(EDDY_KERNELS=scalar "$eddy" run "$m" "${opts[@]}" --tokens "$PROMPT" -n $NF --ids 2>/dev/null | tail -n 1)
    st=$("$eddy" inspect "$m" "${opts[@]}" | sed -n 's/^state bytes: *\([0-9]*\).*/\1/p')
    status=0
    EDDY_FW_STATE_BITS=8 EDDY_FW_KV=q8,2,5 EDDY_FW_PROMPT="$PROMPT" EDDY_FW_GENERATE=$NF \
      firmware/run-qemu m4 "$m" >"$log" 2>&1 || status=$?
    [ "$status" -eq 0 ] || fail "lfm2 with EDDY_FW_STATE_BITS/EDDY_FW_KV exited with $status"
    grep -E "^options:" "$log"
    grep -q "state $st bytes" "$log" || fail "lfm2 with options: state bytes differ from eddy inspect ($st)"
    got=$(tail -n 1 "$log")
    echo "m4 demo firmware, state 8-bit, kv q8,2,5: $got (host: $want)"
    [ "$got" = "$want" ] || fail "lfm2 with EDDY_FW_STATE_BITS/EDDY_FW_KV: tokens differ from the host's ($want)"
  fi
done
echo "== firmware tests passed"
