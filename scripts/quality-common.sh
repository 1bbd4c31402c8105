# Shared set-up of the quality-table scripts, sourced after `set -euo pipefail`
# as `. "$(dirname "$0")/quality-common.sh" WORK_DIR`: the repository root as
# working directory, the fortunes corpus, calibration and parallelism settings,
# a release build of the CLI as $E, the work directory $W (created), and
# `ppl NAME`, the perplexity an eval wrote to $W/NAME.ppl.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
TEST=data/fortunes/test.txt
CALIB=data/fortunes/train.txt
CALIB_TOKENS=${CALIB_TOKENS:-8192}
JOBS=${JOBS:-2}
# One thread per eval; JOBS evals run side by side.
export EDDY_THREADS=1
cargo build --release -q -p eddy-cli
E=target/release/eddy
W=$1
mkdir -p "$W"
ppl() { sed -E 's/.*ppl: ([0-9.]+).*/\1/' "$W/$1.ppl"; }
# `model_dirs "$@"`: the model directories to tabulate, as the array `dirs`
# (the arguments, or every models/*-fortunes directory), and their base
# names, which name the work files, as the array `names`.
model_dirs() {
  dirs=("$@")
  [ ${#dirs[@]} -gt 0 ] || dirs=(models/*-fortunes)
  names=()
  for d in "${dirs[@]}"; do names+=("$(basename "$d")"); done
}
# `quantize_with NAME RECIPE`: $W/NAME-f32.eddy quantized with the calibration
# text into $W/NAME-RECIPE.eddy.
quantize_with() {
  $E quantize "$W/$1-f32.eddy" --recipe "$2" --calib "$CALIB" --calib-tokens "$CALIB_TOKENS" \
    -o "$W/$1-$2.eddy" >/dev/null 2>&1
}
