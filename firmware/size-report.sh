#!/usr/bin/env bash
# Flash and RAM of the demo firmware for both cores, and instructions per
# token of the compiled-in SIMD kernels vs the scalar kernels.
#
#   firmware/size-report.sh [model.eddy]     (default: as firmware/run-qemu)
#
# Flash: .text (code, incl. eddy, libcore, cortex-m-rt), .rodata and the
# vector table, and the model section, from the ELF's section headers.
# RAM: state and scratch as the firmware uses them (static buffers sized by
# build.rs) next to what `eddy inspect` reports, .bss, and the measured
# stack high-water mark (cortex-m-rt paints the stack; the firmware scans
# it). Instructions per token come from SysTick under QEMU -icount (see
# cortex-m/src/qemu.rs): instructions, not cycles.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
model="${1:-$root/out/fw/mf-w2a8.eddy}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT

section() { # ELF SECTION -> size in bytes (0 if absent)
  local hex
  hex=$(readelf -SW "$1" | awk -v s="$2" '$2 == s { print $6 } $3 == s { print $7 }' | head -n 1)
  echo $(( 16#${hex:-0} ))
}
field() { sed -n "$1" "$log" | head -n 1; }

# Make the default model if needed (run-qemu does), then ask eddy inspect.
"$here/run-qemu" m4 ${1:+"$model"} >"$log" 2>&1 || { cat "$log"; exit 1; }
eddy="$root/target/release/eddy"
[ -x "$eddy" ] || (cd "$root" && nice -n 10 cargo build --release -q -p eddy-cli)
inspect_state=$("$eddy" inspect "$model" | sed -n 's/^state bytes: *\([0-9]*\).*/\1/p')
inspect_scratch=$("$eddy" inspect "$model" | sed -n 's/^scratch bytes: *\([0-9]*\).*/\1/p')

echo "model: $model ($(stat -c %s "$model") bytes)"
echo "eddy inspect: state $inspect_state bytes, scratch $inspect_scratch bytes"
printf '%-5s %-7s %9s %9s %7s %9s %9s %9s %9s %7s %12s %12s %6s\n' \
  core kernels .text .rodata vectors model state scratch .bss stack prefill/tok decode/tok scalar/simd
for core in m4 m55; do
  case $core in m4) target=thumbv7em-none-eabihf ;; m55) target=thumbv8m.main-none-eabihf ;; esac
  elf="$here/cortex-m/target/$target/release/eddy-firmware"
  declare -A decode=()
  for kernels in scalar best; do
    if [ $kernels = scalar ]; then k=scalar; else k=""; fi
    EDDY_FW_KERNELS=$k "$here/run-qemu" $core ${1:+"$model"} >"$log" 2>&1 || { cat "$log"; exit 1; }
    name=$(field 's/^model: .*kernels \([a-z0-9]*\),.*/\1/p')
    state=$(field 's/^model: .*state \([0-9]*\) bytes.*/\1/p')
    scratch=$(field 's/^model: .*scratch \([0-9]*\) bytes.*/\1/p')
    stack=$(field 's/^stack: \([0-9]*\) bytes used.*/\1/p')
    prefill=$(field 's/^prefill: .*(\([0-9]*\) per token).*/\1/p')
    decode[$kernels]=$(field 's/^decode: .*(\([0-9]*\) per token.*/\1/p')
    [ "$state" = "$inspect_state" ] && [ "$scratch" = "$inspect_scratch" ] \
      || { echo "state/scratch $state/$scratch differ from eddy inspect"; exit 1; }
    ratio="-"
    [ $kernels = best ] && ratio=$(awk -v s="${decode[scalar]}" -v b="${decode[best]}" 'BEGIN { printf "%.2f", s / b }')
    printf '%-5s %-7s %9d %9d %7d %9d %9d %9d %9d %7d %12d %12d %6s\n' $core "$name" \
      "$(section "$elf" .text)" "$(section "$elf" .rodata)" "$(section "$elf" .vector_table)" \
      "$(section "$elf" .model)" "$state" "$scratch" "$(section "$elf" .bss)" "$stack" \
      "$prefill" "${decode[$kernels]}" "$ratio"
  done
  unset decode
done
echo "(bytes; stack = measured high-water mark; prefill/decode = guest instructions per token under QEMU -icount)"
