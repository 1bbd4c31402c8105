#!/usr/bin/env bash
# The main job end to end on the small model that ships in the repo
# (models/mamba-fortunes, a Mamba-1 trained on English text):
# convert (Hugging Face checkpoint -> .eddy), quantize to W2A8 with
# calibration, inspect, and generate text.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --demo
cargo build --release -p eddy-cli
EDDY=target/release/eddy
MODEL_DIR=${1:-models/mamba-fortunes}
PROMPT=${PROMPT:-"The meaning of life is"}
mkdir -p out
name=$(basename "$MODEL_DIR")
echo "== convert $MODEL_DIR"
$EDDY convert "$MODEL_DIR" -o "out/$name.eddy"
echo "== quantize (w2a8, calibrated on the training split)"
$EDDY quantize "out/$name.eddy" --recipe w2a8 --calib data/fortunes/train.txt -o "out/$name-w2a8.eddy"
echo "== inspect"
$EDDY inspect "out/$name-w2a8.eddy" | grep -v '^  layers\.'
echo "== run (f32)"
$EDDY run "out/$name.eddy" --prompt "$PROMPT" -n 64
echo "== run (w2a8)"
$EDDY run "out/$name-w2a8.eddy" --prompt "$PROMPT" -n 64
