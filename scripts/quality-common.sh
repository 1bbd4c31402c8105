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
