#!/usr/bin/env bash
# The main job end to end on the small model that ships in the repo:
# convert (Hugging Face checkpoint -> .eddy), inspect, run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release -p eddy-cli
EDDY=target/release/eddy
MODEL_DIR=${1:-models/mamba-fortunes}
[ -d "$MODEL_DIR" ] || MODEL_DIR=tests/fixtures/mamba-tiny-tied
PROMPT=${PROMPT:-"The meaning of life is"}
mkdir -p out
name=$(basename "$MODEL_DIR")
echo "== convert $MODEL_DIR"
$EDDY convert "$MODEL_DIR" -o "out/$name.eddy"
echo "== inspect"
$EDDY inspect "out/$name.eddy"
echo "== run"
$EDDY run "out/$name.eddy" --prompt "$PROMPT" -n 64
