#!/usr/bin/env bash
# RTL unit test of the open-flow accelerator (fpga/open/rtl/gdot_wb.v) in
# Verilator against the Rust reference's golden matvec vectors. A few
# seconds of simulation after a ~25 s Verilator build on a loaded machine.
# Needs only verilator and g++ (scripts/setup.sh and fpga/open/setup.sh
# install them), no network: it is part of scripts/test.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v verilator >/dev/null 2>&1 ||
  { echo "verilator is not installed; scripts/setup.sh installs it" >&2; exit 1; }
out=${EDDY_FPGA_OUT:-$here/../../target/fpga-open}/tb
mkdir -p "$out"
verilator --cc --exe --build -j 2 -Wall -Wno-WIDTH -Wno-UNUSEDSIGNAL \
  -CFLAGS "-O1 -ffp-contract=off" --Mdir "$out" --top-module gdot_wb \
  "$here/rtl/gdot_wb.v" "$here/rtl/gdot_mac.v" "$here/tb/tb_gdot.cpp" -o tb_gdot >"$out/build.log" 2>&1 ||
  { cat "$out/build.log"; exit 1; }
"$out/tb_gdot" "$here/../hls/golden"
