# Shared set-up of the qemu-aarch64 kernel benchmarks, sourced after
# `set -euo pipefail` as `. "$(dirname "$0")/aarch64-bench-common.sh" EXAMPLE`:
# the repository root as working directory, a release build of the
# eddy-kernels example EXAMPLE for aarch64 Linux as $BIN, the QEMU command
# line as $QEMU, the timing functions and the table row printer below.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
TARGET=aarch64-unknown-linux-gnu
nice -n 10 cargo build -q --release -p eddy-kernels --example "$1" --target $TARGET
BIN=${CARGO_TARGET_DIR:-target}/$TARGET/release/examples/$1
QEMU=(qemu-aarch64 -cpu max -L /usr/aarch64-linux-gnu)

# qemu_seconds ARGS...: CPU seconds (user + sys) of one run of $BIN ARGS
# under QEMU (less sensitive than wall-clock time to other load on the
# machine).
qemu_seconds() {
  local TIMEFORMAT="%U %S"
  { time "${QEMU[@]}" "$BIN" "$@" >/dev/null; } 2>&1 | awk '{print $1 + $2}'
}

# best_seconds ARGS...: the least of three qemu_seconds ARGS.
best_seconds() { for _ in 1 2 3; do qemu_seconds "$@"; done | sort -g | head -n 1; }

# table_row PRINTF_FORMAT LABEL SET INSTRUCTIONS TIME: print LABEL, SET,
# INSTRUCTIONS, its ratio to the table's first row, TIME and its ratio to
# the first row. Each table starts with `base_i="" base_t=""`; its first
# row (scalar) sets both bases.
table_row() {
  [ -n "$base_i" ] || { base_i=$4 base_t=$5; }
  # shellcheck disable=SC2059 # the format is the caller's table layout
  printf "$1" "$2" "$3" "$4" "$(echo "$base_i / $4" | bc -l)" "$5" "$(echo "$base_t / $5" | bc -l)"
}
