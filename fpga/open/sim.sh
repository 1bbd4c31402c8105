#!/usr/bin/env bash
# Cycle-accurate whole-SoC simulation in Verilator (LiteX's litex_sim SoC:
# VexRiscv, SDRAM model, L2, UART console, the accelerator): boots the LiteX
# BIOS and runs one accelerator job on weights in SDRAM through the BIOS's
# mem_write/mem_read commands (sim_soc.py says what the job is). Prints
# `cycles_per_word: N` of the accelerator through the SoC's real bus and
# memory path. Not eddy itself: no eddy firmware for the soft core exists yet.
# Usage: bash fpga/open/sim.sh   (a ~10-minute build on a loaded machine, then minutes of simulation)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=$(EDDY_FPGA_SOC=1 bash "$here/setup.sh" | tail -1)
export PATH="$venv/bin:$PATH"
out=${EDDY_FPGA_OUT:-$here/../../target/fpga-open}/sim
mkdir -p "$out"
if [ ! -x "$out/gateware/obj_dir/Vsim" ] || [ -n "$(find "$here/rtl" "$here/sim_soc.py" "$here/soc.py" -newer "$out/gateware/obj_dir/Vsim")" ]; then
  echo "building the simulator in $out (log: $out/build.log) ..."
  "$venv/bin/python" "$here/sim_soc.py" build "$out" >"$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
fi
"$venv/bin/python" "$here/sim_soc.py" run "$out"
