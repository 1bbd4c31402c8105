#!/usr/bin/env bash
# Installs Debian's fortunes packages and rebuilds data/fortunes/ from them.
# Only needed to retrain the test model; the split files are committed.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f /usr/share/games/fortunes/fortunes ]; then
  apt-get update -qq && apt-get install -y -qq fortunes fortunes-min
fi
python3 tools/python/prepare_corpus.py
