#!/usr/bin/env bash
# Generate the C API's header, firmware/capi/include/eddy.h, from
# firmware/capi/src/lib.rs with cbindgen (configuration:
# firmware/capi/cbindgen.toml; scripts/setup.sh installs cbindgen).
#
#   scripts/gen-capi-header.sh           rewrite the header
#   scripts/gen-capi-header.sh --check   fail if the checked-in header is
#                                        not what cbindgen generates now
set -euo pipefail
cd "$(dirname "$0")/../firmware/capi"
command -v cbindgen >/dev/null || { echo "gen-capi-header: cbindgen not found; run scripts/setup.sh" >&2; exit 69; }
generated=$(mktemp)
trap 'rm -f "$generated"' EXIT
# cbindgen warns about every item it skips (private helpers): keep its
# output only if it fails.
log=$(cbindgen --quiet --config cbindgen.toml --output "$generated" . 2>&1) \
  || { echo "$log" >&2; echo "gen-capi-header: cbindgen failed" >&2; exit 1; }
case "${1:-}" in
  --check)
    if ! diff -u include/eddy.h "$generated"; then
      echo "FAIL: firmware/capi/include/eddy.h differs from cbindgen's output (above, +lines);" \
        "run scripts/gen-capi-header.sh and commit the header" >&2
      exit 1
    fi
    echo "firmware/capi/include/eddy.h is cbindgen's output ($(cbindgen --version))" ;;
  "") cp "$generated" include/eddy.h; echo "wrote firmware/capi/include/eddy.h" ;;
  *) echo "usage: scripts/gen-capi-header.sh [--check]" >&2; exit 64 ;;
esac
