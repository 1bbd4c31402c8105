"""Prints utilization and fmax from a nextpnr-ecp5 log.

Usage: report.py NEXTPNR_LOG CLOCK_NAME_SUBSTRING
Prints a resource table, `fmax_mhz: N` (the lowest final fmax over the
clocks whose name contains the substring) and `timing: met` or
`timing: NOT met`; exit code 1 when nextpnr reports a FAIL for such a clock.
"""

import re
import sys

log_path, clock = sys.argv[1], sys.argv[2]
with open(log_path, errors="replace") as f:
    log = f.read()

# The last "Device utilisation" block is the placed design.
util = {}
blocks = log.split("Device utilisation:")
if len(blocks) < 2:
    sys.exit(f"{log_path}: no 'Device utilisation' block (did nextpnr run?)")
for m in re.finditer(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)", blocks[-1], re.M):
    util.setdefault(m.group(1), (int(m.group(2)), int(m.group(3))))
lut4 = re.findall(r"Total LUT4s:\s+(\d+)/\s*(\d+)", log)
dffs = re.findall(r"Total DFFs:\s+(\d+)/\s*(\d+)", log)
rows = []
if lut4:
    rows.append(("LUT4", *map(int, lut4[-1])))
rows.append(("TRELLIS_COMB", *util.get("TRELLIS_COMB", (0, 0))))
rows.append(("FF", *(map(int, dffs[-1]) if dffs else util.get("TRELLIS_FF", (0, 0)))))
rows.append(("MULT18X18D", *util.get("MULT18X18D", (0, 0))))
rows.append(("BRAM DP16KD", *util.get("DP16KD", (0, 0))))
rows.append(("IO", *util.get("TRELLIS_IO", (0, 0))))
print(f"{'resource':<14}{'used':>8}{'available':>11}")
for name, used, avail in rows:
    print(f"{name:<14}{used:>8}{avail:>11}")

final = {}
for m in re.finditer(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+) MHz \((PASS|FAIL) at ([\d.]+) MHz\)", log):
    final[m.group(1)] = (float(m.group(2)), m.group(3), float(m.group(4)))
hits = {k: v for k, v in final.items() if clock in k}
if not hits:
    # nextpnr names a clock after the net it found (in a LiteX SoC often a
    # CPU-internal one): then every constrained clock counts, the slowest wins.
    if not final:
        sys.exit(f"{log_path}: no 'Max frequency for clock' line")
    print(f"(no clock named like {clock!r}; reporting all {len(final)} constrained clock(s))")
    hits = final
for name, (mhz, verdict, target) in sorted(hits.items()):
    print(f"clock {name}: {mhz:.2f} MHz ({verdict} at {target:.2f} MHz)")
print(f"fmax_mhz: {min(v[0] for v in hits.values()):.2f}")
ok = all(v[1] == "PASS" for v in hits.values())
print("timing: met" if ok else "timing: NOT met")
sys.exit(0 if ok else 1)
