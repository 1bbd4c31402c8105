"""LiteX SoC for the ULX3S (ECP5-85F): VexRiscv, 32 MB SDRAM, UART and the
eddy group dot-product accelerator (fpga/open/rtl/gdot_wb.v) as a Wishbone
slave (its registers, activation and result buffers) plus a Wishbone DMA
master on the main bus (it reads the packed weights from SDRAM).

Run by fpga/open/build.sh, which installs the tools (setup.sh) and runs the
place-and-route. Usage: soc.py BOARD OUTPUT_DIR SYS_CLK_MHZ
"""

import os
import sys

from litex.soc.integration.builder import Builder
from litex.soc.integration.soc import SoCRegion
from litex.soc.interconnect import wishbone
from litex_boards.targets.radiona_ulx3s import BaseSoC
from migen import ClockSignal, Instance, ResetSignal, Signal

RTL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rtl")
BOARDS = {"ulx3s-85f": "LFE5U-85F"}


def add_gdot(soc):
    """Adds the accelerator to a LiteX SoC: slave window and DMA master."""
    slave = wishbone.Interface(data_width=32, adr_width=30)
    dma = wishbone.Interface(data_width=32, adr_width=30)
    soc.specials += Instance(
        "gdot_wb",
        p_MAX_COLS=4096,
        p_RES_DEPTH=512,
        i_clk=ClockSignal("sys"),
        i_rst=ResetSignal("sys"),
        i_s_adr=slave.adr,
        i_s_dat_w=slave.dat_w,
        o_s_dat_r=slave.dat_r,
        i_s_sel=slave.sel,
        i_s_cyc=slave.cyc,
        i_s_stb=slave.stb,
        o_s_ack=slave.ack,
        i_s_we=slave.we,
        o_s_err=slave.err,
        o_m_adr=dma.adr,
        o_m_dat_w=dma.dat_w,
        i_m_dat_r=dma.dat_r,
        o_m_sel=dma.sel,
        o_m_cyc=dma.cyc,
        o_m_stb=dma.stb,
        i_m_ack=dma.ack,
        o_m_we=dma.we,
        i_m_err=dma.err,
        o_m_cti=dma.cti,
        o_m_bte=dma.bte,
        o_irq=Signal(name="gdot_irq"),  # unused: the firmware polls STATUS
    )
    for f in ("gdot_mac.v", "gdot_wb.v"):
        soc.platform.add_source(os.path.join(RTL, f))
    # Uncached: the CPU polls STATUS and reads results the DMA produced.
    soc.bus.add_slave("gdot", slave, SoCRegion(size=0x4000, cached=False))
    soc.bus.add_master("gdot_dma", dma)


class EddySoC(BaseSoC):
    """The board's LiteX base SoC plus the accelerator."""

    def __init__(self, device, sys_clk_freq):
        super().__init__(
            device=device,
            revision="2.0",
            toolchain="trellis",
            sys_clk_freq=sys_clk_freq,
            cpu_type="vexriscv",
            cpu_variant="standard",
            with_led_chaser=True,
            uart_name="serial",
            integrated_rom_size=0x10000,
        )
        add_gdot(self)


def main():
    board, out, mhz = sys.argv[1], sys.argv[2], float(sys.argv[3])
    if board not in BOARDS:
        sys.exit(f"unknown board {board!r}; known: {', '.join(BOARDS)}")
    soc = EddySoC(BOARDS[board], mhz * 1e6)
    builder = Builder(soc, output_dir=out, compile_software=True)
    # Generate the Verilog, BIOS and build script only; build.sh runs the script.
    builder.build(run=False, build_name="eddy_soc", seed=1)


if __name__ == "__main__":
    main()
