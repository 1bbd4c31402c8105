#!/usr/bin/env bash
# Guest instructions of one whole run of an aarch64 program under
# qemu-aarch64 (QEMU_CPU picks the emulated CPU, default max):
#
#   scripts/qemu-count-aarch64.sh BIN [ARGS...]     prints one number
#
# Debian's QEMU has no TCG plugins, so instructions are counted from the
# translation-block trace (`-d in_asm,exec,nochain`): each executed block
# is logged, each block's length comes from its disassembly. The trace
# goes through a FIFO to awk, so its size never hits the disk. Used by
# scripts/bench-aarch64.sh and scripts/bench-vector-aarch64.sh, which run
# a kernel N and M times and take the difference (no setup, no process
# start).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 BIN [ARGS...]" >&2; exit 2; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkfifo "$WORK/trace"
awk '
  function key(a) { sub(/^0x/, "", a); sub(/:$/, "", a); sub(/^0+/, "", a); return tolower(a) }
  /^IN:/ { inblock = 1; first = 1; next }
  inblock && /^0x[0-9a-f]+:/ { if (first) { pc = key($1); len[pc] = 0; first = 0 } len[pc]++; next }
  inblock && /^$/ { inblock = 0; next }
  /^Trace / { if (match($0, /\[[0-9a-f]+\/[0-9a-f]+\//)) { s = substr($0, RSTART + 1, RLENGTH - 2); split(s, f, "/"); n[key(f[2])]++ } }
  END { t = 0; for (p in n) t += n[p] * len[p]; printf "%d\n", t }
' <"$WORK/trace" >"$WORK/count" &
awk_pid=$!
qemu-aarch64 -cpu "${QEMU_CPU:-max}" -L /usr/aarch64-linux-gnu -d in_asm,exec,nochain -D "$WORK/trace" "$@" >/dev/null
wait $awk_pid
cat "$WORK/count"
