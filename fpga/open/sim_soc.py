"""Whole-SoC cycle-accurate simulation (Verilator, LiteX's litex_sim SoC):
VexRiscv `standard` + SDRAM model (MT48LC16M16, 16-bit, as on the ULX3S) +
8 KiB L2 + the accelerator, driven through the LiteX BIOS console.

Usage: sim_soc.py build OUTPUT_DIR   (generate + compile the simulator)
       sim_soc.py run OUTPUT_DIR     (boot the BIOS, run one accelerator job
                                      on SDRAM weights, check and time it)
The job: 512 W2 groups of 128 (4608 words, 18 KiB: more than the L2) with
every code 1 and every activation 1, so each group sum must be 128 and each
header must come back as written. Prints the accelerator's CYCLES register
and `cycles_per_word`.
"""

import os
import re
import select
import subprocess
import sys
import time

from litex.build.sim.config import SimConfig
from litex.soc.integration.builder import Builder
from litex.tools.litex_sim import SimSoC

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from soc import add_gdot  # noqa: E402

GDOT = 0x80000000
W_BASE = 0x40000000
GROUPS, GROUP, WORDS_PER_GROUP = 512, 128, 1 + 128 * 2 // 32
HEAD = 0x55555555  # as codes: every W2 code is 1


def build(out):
    sim_config = SimConfig()
    sim_config.add_clocker("sys_clk", freq_hz=int(1e6))
    sim_config.add_module("serial2console", "serial")
    soc = SimSoC(
        with_sdram=True,
        sdram_module="MT48LC16M16",
        sdram_data_width=16,
        cpu_type="vexriscv",
        cpu_variant="standard",
        uart_name="sim",
        integrated_rom_size=0x10000,
        integrated_sram_size=0x2000,
    )
    add_gdot(soc)
    builder = Builder(soc, output_dir=out, compile_software=True)
    builder.build(sim_config=sim_config, run=False, interactive=False, jobs=2)
    gw = os.path.join(out, "gateware")
    subprocess.run(["bash", "build_sim.sh"], cwd=gw, check=True)


class Console:
    """The simulator's UART console over pipes."""

    def __init__(self, gw):
        self.p = subprocess.Popen(
            ["obj_dir/Vsim"], cwd=gw, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self.buf = b""

    def expect(self, token, timeout):
        end = time.time() + timeout
        while token.encode() not in self.buf:
            left = end - time.time()
            if left <= 0 or self.p.poll() is not None:
                sys.stdout.write(self.buf.decode(errors="replace")[-2000:])
                sys.exit(f"timed out waiting for {token!r}")
            r, _, _ = select.select([self.p.stdout], [], [], min(left, 1.0))
            if r:
                # Drop the BIOS's colour escapes (the prompt is coloured).
                self.buf = re.sub(rb"\x1b\[[0-9;]*m", b"", self.buf + os.read(self.p.stdout.fileno(), 4096))
        i = self.buf.index(token.encode()) + len(token)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out.decode(errors="replace")

    def cmd(self, line, timeout=600):
        for ch in line + "\n":
            # The BIOS reads one character at a time; pace the input.
            self.p.stdin.write(ch.encode())
            self.p.stdin.flush()
            time.sleep(0.01)
        return self.expect("litex>", timeout)


def words(text):
    """Little-endian words of a BIOS `mem_read` dump: lines of
    "0x%08x  " then up to 16 "%02x " bytes, then their ASCII."""
    vals = []
    for line in text.splitlines():
        if not line.startswith("0x") or len(line) < 12:
            continue
        for i in range(16):
            b = line[12 + 3 * i : 14 + 3 * i]
            if len(b) != 2 or any(ch not in "0123456789abcdef" for ch in b):
                break
            vals.append(int(b, 16))
    return [vals[i] | vals[i + 1] << 8 | vals[i + 2] << 16 | vals[i + 3] << 24 for i in range(0, len(vals) - 3, 4)]


def run(out):
    gw = os.path.join(out, "gateware")
    c = Console(gw)
    t0 = time.time()
    c.expect("litex>", 1800)
    print(f"BIOS prompt after {time.time() - t0:.0f} s of simulation")
    c.cmd(f"mem_write 0x{W_BASE:x} 0x{HEAD:x} {GROUPS * WORDS_PER_GROUP}")
    c.cmd(f"mem_write 0x{GDOT:x} 0x01010101 {4 * GROUP // 4}")
    for reg, val in ((1, W_BASE), (2, 2), (3, GROUP), (4, GROUPS), (5, 4)):
        c.cmd(f"mem_write 0x{GDOT + 0x1000 + 4 * reg:x} {val}")
    c.cmd(f"mem_write 0x{GDOT + 0x1000:x} 1")
    status = words(c.cmd(f"mem_read 0x{GDOT + 0x1000:x} 4"))[0]
    cycles = words(c.cmd(f"mem_read 0x{GDOT + 0x1018:x} 4"))[0]
    res = words(c.cmd(f"mem_read 0x{GDOT + 0x2000:x} {8 * GROUPS}"))
    c.p.kill()
    heads, sums = res[0::2], res[1::2]
    ok = status == 2 and len(sums) == GROUPS and all(h == HEAD for h in heads) and all(s == 128 for s in sums)
    n = GROUPS * WORDS_PER_GROUP
    print(f"status: 0x{status:x}, results read: {len(sums)}, all sums 128 and headers intact: {ok}")
    print(f"weight words: {n}, accelerator cycles: {cycles}, cycles_per_word: {cycles / n:.3f}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    mode, out = sys.argv[1], sys.argv[2]
    build(out) if mode == "build" else run(out)
