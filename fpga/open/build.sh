#!/usr/bin/env bash
# Builds the LiteX SoC with the accelerator for a board with only open tools
# (fpga/open/setup.sh installs them): Verilog + BIOS by LiteX (soc.py), then
# yosys, nextpnr-ecp5 and ecppack. Prints the utilization, `fmax_mhz: N` of
# the system clock from nextpnr's timing report and `bitstream: PATH`; exits
# non-zero when timing does not close at the built clock.
# Usage: bash fpga/open/build.sh ulx3s-85f [SYS_CLK_MHZ (default 50)]
# Takes tens of minutes on a loaded 2-core machine; run it with nice.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
board=${1:?usage: build.sh ulx3s-85f [SYS_CLK_MHZ]}
mhz=${2:-50}
venv=$(EDDY_FPGA_SOC=1 bash "$here/setup.sh" | tail -1)
export PATH="$venv/bin:$PATH"
out=${EDDY_FPGA_OUT:-$here/../../target/fpga-open}/soc-$board
mkdir -p "$out"
echo "generating the SoC (LiteX, BIOS) in $out ..."
"$venv/bin/python" "$here/soc.py" "$board" "$out" "$mhz" >"$out/litex.log" 2>&1 ||
  { tail -30 "$out/litex.log"; exit 1; }
echo "synthesis + place and route (log: $out/gateware/pnr.log) ..."
(cd "$out/gateware" && bash build_eddy_soc.sh >pnr.log 2>&1) || { tail -30 "$out/gateware/pnr.log"; exit 1; }
status=0
python3 "$here/report.py" "$out/gateware/pnr.log" sys_clk || status=$?
echo "bitstream: $out/gateware/eddy_soc.bit"
exit $status
