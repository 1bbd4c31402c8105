#!/usr/bin/env bash
# Make the GGUF test fixtures with llama.cpp's own code: its
# convert_hf_to_gguf.py writes the repository's checkpoints as GGUF, and
# ggml's quantizer (what llama-quantize runs per tensor) quantizes them.
# The tests read only the committed files (tests/fixtures/gguf/); this
# script is how they were made.
#
# Usage: scripts/make-gguf-fixtures.sh [--llama-cpp-python VERSION] [--out DIR]
#
# Writes to DIR (default tests/fixtures/gguf):
#   {mamba-tiny-tied,mamba2-tiny,lfm2-tiny}.f32.gguf
#       the tiny random fixtures at f32 (same logits as their Hugging Face form)
#   mamba-fortunes.{Q4_0,Q2_K,mixed}.gguf
#       the trained models/mamba-fortunes from its f32 GGUF (not committed:
#       8 MB); `mixed` spreads Q8_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K,
#       Q5_K and Q6_K over its matrices to test every dequantizer
#   dequant-reference.json
#       per quantized tensor: type and CRC-32 of its f32 dequantization by
#       gguf-py (llama.cpp's Python reference, gguf.quants)
# Larger files (f32, Q8_0, Q4_0, Q4_K and Q2_K of mamba-, mamba2- and
# lfm2-fortunes, for the perplexity table in BENCHMARKS.md) stay in
# $EDDY_PEER_DIR/gguf-fixtures.
#
# llama.cpp's converter names the BPE pre-tokenizer by hashing how it splits
# a test string and refuses hashes it does not list; the repository's
# byte-level BPE tokenizers (trained here) split with GPT-2's regex, so such
# a tokenizer is declared `gpt-2` (and any other is refused as before).
# Needs llama.cpp and a Python venv (scripts/llama-cpp-common.sh; torch
# from the package index is ~3 GB with its CUDA libraries).
set -euo pipefail

die() { echo "make-gguf-fixtures: error: $*" >&2; exit 1; }
say() { echo "make-gguf-fixtures: $*" >&2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEER=${EDDY_PEER_DIR:-$HOME/.cache/eddy-peer}
LCP_VERSION=0.3.36
OUT=$ROOT/tests/fixtures/gguf
while [ $# -gt 0 ]; do
  case "$1" in
    --llama-cpp-python) LCP_VERSION=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,29p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

. "$ROOT/scripts/llama-cpp-common.sh"
llama_cpp_prerequisites
mkdir -p "$PEER" "$OUT"
WORK=$PEER/gguf-fixtures
mkdir -p "$WORK"
LOG=$WORK/log.txt
: >"$LOG"
llama_cpp_source
llama_cpp_build ggml-base
llama_cpp_venv

# llama.cpp's converter, with the GPT-2 pre-tokenizer declared for a
# byte-level BPE tokenizer.json whose pre-tokenizer is GPT-2's regex split.
# It reads the checkpoint through a folder of links plus a
# tokenizer_config.json naming the plain fast tokenizer: without one,
# transformers picks the model type's tokenizer class (GPT-NeoX's for
# Mamba), whose default special tokens would be added past the vocabulary.
convert() { # checkpoint dir, output file
  say "convert_hf_to_gguf $(basename "$1") -> $(basename "$2")"
  local view=$WORK/view/$(basename "$1") f
  rm -rf "$view"; mkdir -p "$view"
  for f in "$1"/*; do ln -s "$f" "$view/"; done
  [ -e "$view/tokenizer_config.json" ] || echo '{"tokenizer_class": "PreTrainedTokenizerFast"}' >"$view/tokenizer_config.json"
  step "convert $1" "$PY" - "$SRC" "$view" "$2" <<'PYEOF'
import json, sys
from pathlib import Path
src, model, out = sys.argv[1:4]
sys.path.insert(0, src)
import convert_hf_to_gguf as c
from conversion import base

tok = json.loads((Path(model) / "tokenizer.json").read_text())
pre = tok.get("pre_tokenizer") or {}
gpt2_split = pre.get("type") == "ByteLevel" and pre.get("use_regex", True)
original = base.TextModel.get_vocab_base_pre

def get_vocab_base_pre(self, tokenizer):
    try:
        return original(self, tokenizer)
    except NotImplementedError:
        if gpt2_split:
            return "gpt-2"
        raise

base.TextModel.get_vocab_base_pre = get_vocab_base_pre
sys.argv = ["convert_hf_to_gguf.py", model, "--outtype", "f32", "--outfile", out]
c.main()
PYEOF
}

# ggml's own quantizer (ggml_quantize_chunk in libggml-base, the function
# llama-quantize calls for every tensor), with llama-quantize's choice of
# tensors and types: matrices named *weight except norms and convolutions;
# the output matrix (the embedding when tied) at Q6_K (Q8_0 if its rows are
# not whole 256-blocks); rows that are not whole blocks of the type fall back
# as llama-quantize does (Q2_K/Q3_K to Q4_0, Q4_K to Q5_0, Q5_K to Q5_1,
# Q6_K to Q8_0, then F16). Not copied: its per-type bumps of attention V and
# FFN down matrices in the 2- and 3-bit K types. Written by gguf-py with the
# input's metadata. `--set NAME_REGEX=TYPE` overrides a tensor's type.
# (libggml-base builds in a minute; llama-quantize links all of libllama,
# ~200 files, too long on a shared 2-core machine.)
quantize() { # input, output, type, [--set REGEX=TYPE]...
  say "ggml quantize $(basename "$1") -> $(basename "$2") ($3)"
  step "quantize $2" "$PY" - "$BUILD/bin/libggml-base.so" "$@" <<'PYEOF'
import ctypes, re, sys
import numpy as np
from gguf import GGUFReader, GGUFWriter, GGUFValueType, GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES

lib, src, dst, default = sys.argv[1:5]
overrides = [(re.compile(a.split("=")[0]), T[a.split("=")[1]]) for a in sys.argv[6::2]]
ggml = ctypes.CDLL(lib)
ggml.ggml_quantize_chunk.restype = ctypes.c_size_t
ggml.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                     ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
FALLBACK = {T.Q2_K: T.Q4_0, T.Q3_K: T.Q4_0, T.Q4_K: T.Q5_0, T.Q5_K: T.Q5_1, T.Q6_K: T.Q8_0}
r = GGUFReader(src)
tied = not any(t.name == "output.weight" for t in r.tensors)
arch = r.fields["general.architecture"].contents()
w = GGUFWriter(dst, arch)
for f in r.fields.values():
    if f.name.startswith("GGUF.") or f.name in ("general.architecture", "general.file_type"):
        continue
    sub = f.types[-1] if f.types[0] == GGUFValueType.ARRAY else None
    w.add_key_value(f.name, f.contents(), f.types[0], sub_type=sub)
for t in r.tensors:
    data = np.asarray(t.data)
    n_per_row = int(t.shape[0])
    quantize = (t.tensor_type == T.F32 and len(t.shape) == 2 and t.name.endswith("weight")
                and "_norm.weight" not in t.name and "ssm_conv1d" not in t.name
                and "shortconv.conv.weight" not in t.name)
    ty = T[default]
    if t.name == "output.weight" or (tied and t.name == "token_embd.weight"):
        if n_per_row % GGML_QUANT_SIZES[ty][0]:
            ty = T.Q8_0
        elif ty != T.Q8_0:
            ty = T.Q6_K
    for pattern, override in overrides:
        if pattern.search(t.name):
            ty = override
    if n_per_row % GGML_QUANT_SIZES[ty][0]:
        ty = FALLBACK.get(ty, ty)
        if n_per_row % GGML_QUANT_SIZES[ty][0]:
            ty = T.F16
    if not quantize:
        w.add_tensor(t.name, data, raw_shape=data.shape, raw_dtype=t.tensor_type)
        continue
    if ty == T.F16:
        w.add_tensor(t.name, data.astype(np.float16), raw_shape=data.shape, raw_dtype=T.F16)
        continue
    block, size = GGML_QUANT_SIZES[ty]
    x = np.ascontiguousarray(data, dtype=np.float32).reshape(-1, n_per_row)
    out = np.zeros((x.shape[0], n_per_row // block * size), dtype=np.uint8)
    n = ggml.ggml_quantize_chunk(int(ty), x.ctypes.data, out.ctypes.data, 0, x.shape[0], n_per_row, None)
    assert n == out.size, (t.name, n, out.size)
    w.add_tensor(t.name, out, raw_shape=out.shape, raw_dtype=ty)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
PYEOF
}

for m in mamba-tiny-tied mamba2-tiny lfm2-tiny; do
  convert "$ROOT/tests/fixtures/$m" "$OUT/$m.f32.gguf"
done

# The trained models llama.cpp's converter takes (rwkv7-fortunes is
# BlinkDL's layout, which it does not; gru-fortunes has no llama.cpp
# architecture).
for m in mamba-fortunes mamba2-fortunes lfm2-fortunes; do
  convert "$ROOT/models/$m" "$WORK/$m.f32.gguf"
  for ty in Q8_0 Q4_0 Q4_K Q2_K; do
    quantize "$WORK/$m.f32.gguf" "$WORK/$m.$ty.gguf" "$ty"
  done
done
F=$WORK/mamba-fortunes.f32.gguf
cp "$WORK/mamba-fortunes.Q4_0.gguf" "$WORK/mamba-fortunes.Q2_K.gguf" "$OUT/"
# One file with every other type, one per kind of tensor.
quantize "$F" "$OUT/mamba-fortunes.mixed.gguf" Q4_K --set token_embd=Q8_0 --set ssm_x=Q3_K \
  --set blk.0.ssm_in=Q4_1 --set blk.1.ssm_in=Q5_0 --set blk.2.ssm_in=Q5_1 --set blk.3.ssm_in=Q5_K \
  --set blk.0.ssm_out=Q6_K --set blk.2.ssm_out=Q2_K

say "dequantization reference (gguf-py)"
step "reference" "$PY" - "$OUT" <<'PYEOF'
import json, sys, zlib
from pathlib import Path
import numpy as np
from gguf import GGUFReader
from gguf.constants import GGMLQuantizationType as T
from gguf.quants import dequantize

out = Path(sys.argv[1])
ref = {}
for path in sorted(out.glob("*.gguf")):
    tensors = {}
    for t in GGUFReader(path).tensors:
        if t.tensor_type in (T.F32, T.F16, T.BF16):
            continue
        values = dequantize(t.data, t.tensor_type).astype("<f4").reshape(-1)
        tensors[t.name] = {"type": t.tensor_type.name, "numel": int(values.size),
                           "crc32": zlib.crc32(values.tobytes())}
    if tensors:
        ref[path.name] = tensors
(out / "dequant-reference.json").write_text(json.dumps(ref, indent=1, sort_keys=True) + "\n")
PYEOF
du -ch "$OUT"/* | tail -n 1 >&2
ls -l "$OUT" >&2
