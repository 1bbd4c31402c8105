#!/usr/bin/env bash
# Per-family size table of the demo firmware (README "Every family on the
# microcontroller"): for every trained model under models/ at W2A8 and
# W4A8 (calibrated on the training text), built with only its own family:
#   flash = code (.text + .rodata + vector table, M4 DSP image) + model
#   RAM   = state + scratch (static, sized from the model) + stack
#           (measured high-water mark, the larger of the two cores)
#   decode guest instructions per token under QEMU -icount: scalar and
#           DSP kernels on the M4, scalar and Helium kernels on the M55,
#           and the same-core ratios DSP/scalar and Helium/scalar
#   fits  = the smallest MCU class holding flash and RAM: "256K/64K"
#           (256 KB flash / 64 KB RAM), "1M/256K", or "-" (neither).
# Then the code-size cost of compiling every family in (EDDY_FW_FAMILIES=all).
#
#   firmware/family-size-table.sh [RECIPE...]     (default: w2a8 w4a8)
#
# Prints a markdown table. Takes 5 QEMU runs per model.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
NICE="nice -n 10"
cd "$root"
recipes=("$@")
[ ${#recipes[@]} -gt 0 ] || recipes=(w2a8 w4a8)
$NICE cargo build --release -q -p eddy-cli
eddy="$root/target/release/eddy"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
mkdir -p out/fw/sizes
export EDDY_FW_PROMPT=1,2,3,4,5,6,7,8 EDDY_FW_GENERATE=8

section() { # ELF SECTION -> size in bytes (0 if absent)
  local hex
  hex=$(readelf -SW "$1" | awk -v s="$2" '$2 == s { print $6 } $3 == s { print $7 }' | head -n 1)
  echo $(( 16#${hex:-0} ))
}
code_bytes() { # ELF -> .text + .rodata + vector table
  echo $(( $(section "$1" .text) + $(section "$1" .rodata) + $(section "$1" .vector_table) ))
}
field() { sed -n "$1" "$log" | head -n 1; }
# run CORE MODEL [KERNELS]: run the demo, output in $log.
run() {
  EDDY_FW_KERNELS=${3:-} "$here/run-qemu" "$1" "$2" >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
}
kb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1024 }'; }
# Its own cargo target dir, so a concurrent run-qemu cannot swap the ELF
# between a run and its size reading.
export CARGO_TARGET_DIR="$here/cortex-m/target/sizes"
elf_m4="$CARGO_TARGET_DIR/thumbv7em-none-eabihf/release/eddy-firmware"

echo "| model | recipe | flash KB (code + model) | RAM KB (state + scratch + stack) | M4 decode instr/token scalar / DSP | M55 scalar / Helium | DSP, Helium speed-up | fits |"
echo "|---|---|---|---|---|---|---|---|"
for dir in models/*/; do
  dir=${dir%/}
  [ -f "$dir/model.safetensors" ] || continue
  name=$(basename "$dir")
  $NICE "$eddy" convert "$dir" -o out/fw/sizes/$name-f32.eddy >/dev/null
  for recipe in "${recipes[@]}"; do
    m="$root/out/fw/sizes/$name-$recipe.eddy"
    $NICE "$eddy" quantize out/fw/sizes/$name-f32.eddy --recipe "$recipe" --calib data/fortunes/train.txt \
      -o "$m" >/dev/null 2>&1
    run m4 "$m" scalar
    scalar=$(field 's/^decode: .*(\([0-9]*\) per token.*/\1/p')
    arch=$(field 's/^model: \([a-z0-9-]*\),.*/\1/p')
    run m4 "$m"
    dsp=$(field 's/^decode: .*(\([0-9]*\) per token.*/\1/p')
    state=$(field 's/^model: .*state \([0-9]*\) bytes.*/\1/p')
    scratch=$(field 's/^model: .*scratch \([0-9]*\) bytes.*/\1/p')
    stack4=$(field 's/^stack: \([0-9]*\) bytes used.*/\1/p')
    code=$(code_bytes "$elf_m4")
    run m55 "$m" scalar
    scalar55=$(field 's/^decode: .*(\([0-9]*\) per token.*/\1/p')
    run m55 "$m"
    helium=$(field 's/^decode: .*(\([0-9]*\) per token.*/\1/p')
    stack55=$(field 's/^stack: \([0-9]*\) bytes used.*/\1/p')
    stack=$(( stack4 > stack55 ? stack4 : stack55 ))
    model_bytes=$(stat -c %s "$m")
    flash=$(( code + model_bytes ))
    ram=$(( state + scratch + stack ))
    if [ $flash -le $((256 * 1024)) ] && [ $ram -le $((64 * 1024)) ]; then fits="256K/64K"
    elif [ $flash -le $((1024 * 1024)) ] && [ $ram -le $((256 * 1024)) ]; then fits="1M/256K"
    else fits="-"; fi
    ratio=$(awk -v s="$scalar" -v d="$dsp" -v s55="$scalar55" -v h="$helium" \
      'BEGIN { printf "%.2fx, %.2fx", s / d, s55 / h }')
    echo "| $name ($arch) | $recipe | $(kb $flash) ($(kb "$code") + $(kb $model_bytes)) | $(kb $ram) ($(kb "$state") + $(kb "$scratch") + $(kb $stack)) | $scalar / $dsp | $scalar55 / $helium | $ratio | $fits |"
  done
done
# The cost of one image for every family: the same model, all families in.
m="$root/out/fw/sizes/$(basename "$(ls -d models/*/ | head -n 1)")-${recipes[0]}.eddy"
run m4 "$m"
one=$(code_bytes "$elf_m4")
EDDY_FW_FAMILIES=all run m4 "$m"
all=$(code_bytes "$elf_m4")
echo
echo "M4 code with only $(basename "$m")'s family: $one bytes; with every family (EDDY_FW_FAMILIES=all): $all bytes (+$(( all - one )))"
