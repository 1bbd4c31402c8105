# Sourced by firmware/run-qemu and scripts: which cargo feature of the
# firmware (= the eddy runtime's family feature) a `.eddy` file needs.
#
#   family_feature MODEL   prints e.g. `rnn` for a GRU model
#
# It reads the architecture code (u32, header offset 20, runtime/FORMAT.md)
# and maps it as the runtime's family table does
# (runtime/src/families/mod.rs). A code this table does not know gives
# `all-families`; the firmware's build.rs checks the choice against the
# runtime itself and names the right feature if it is wrong.
family_feature() {
  local code
  code=$(od -An -tu4 -j20 -N4 "$1" 2>/dev/null | tr -d ' ')
  case "$code" in
    1) echo mamba1 ;;
    2) echo mamba2 ;;
    3|4) echo rnn ;;
    5) echo rwkv4 ;;
    6) echo gated-deltanet ;;
    7) echo rwkv7 ;;
    8) echo gla ;;
    9) echo lfm2 ;;
    10) echo recurrent-gemma ;;
    *) echo all-families ;;
  esac
}
