#!/usr/bin/env bash
# Peer benchmark against llama.cpp: the same random-weight Hugging Face
# checkpoint (transformers' own class at a named public shape) converted by
# both tools, quantized to the closest pair of formats, and benchmarked
# interleaved (llama-bench, then eddy bench, per model/quant/threads).
#
# Usage: scripts/peer-llama.sh [--shapes mamba-130m,mamba2-130m,lfm2-350m]
#          [--quants q2,q4,q8] [--threads 1,2] [--reps 3] [--pp 512] [--tg 128]
#          [--eddy PATH] [--llama-cpp-python VERSION] [--seed 0]
#
#   quant pairs: q2 = Q2_K vs w2a8, q4 = Q4_0 vs w4a8, q8 = Q8_0 vs w8a8
#
# Everything it needs is installed under ${EDDY_PEER_DIR:-$HOME/.cache/eddy-peer}
# (reruns reuse it): llama.cpp built as llama-bench + llama-quantize and a
# Python venv with torch, transformers and gguf-py, as
# scripts/llama-cpp-common.sh describes. eddy is built with `cargo build --release -p eddy-cli` from
# this repository unless --eddy names a binary.
#
# Output: logs and results under $EDDY_PEER_DIR/runs/DATE/, and one Markdown
# table on stdout (also saved as table.md there). A benchmark tool, not a test.
# The environment reaches both tools: on a busy host, llama.cpp's OpenMP
# threads spin-wait and its multi-thread rows collapse; OMP_WAIT_POLICY=passive
# makes them sleep instead (say which you used when quoting numbers).
set -euo pipefail

die() { echo "peer-llama: error: $*" >&2; exit 1; }
say() { echo "peer-llama: $*" >&2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEER=${EDDY_PEER_DIR:-$HOME/.cache/eddy-peer}
SHAPES=mamba-130m,mamba2-130m,lfm2-350m
QUANTS=q2,q4,q8
THREADS=1,2
REPS=3
PP=512
TG=128
SEED=0
EDDY=""
LCP_VERSION=0.3.36

while [ $# -gt 0 ]; do
  case "$1" in
    --shapes) SHAPES=$2; shift 2 ;;
    --quants) QUANTS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --pp) PP=$2; shift 2 ;;
    --tg) TG=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --eddy) EDDY=$2; shift 2 ;;
    --llama-cpp-python) LCP_VERSION=$2; shift 2 ;;
    -h|--help) sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

for s in ${SHAPES//,/ }; do
  case "$s" in mamba-130m|mamba2-130m|lfm2-350m) ;; *) die "unknown shape '$s' (known: mamba-130m, mamba2-130m, lfm2-350m)" ;; esac
done
for q in ${QUANTS//,/ }; do
  case "$q" in q2|q4|q8) ;; *) die "unknown quant '$q' (known: q2, q4, q8)" ;; esac
done
gguf_type() { case "$1" in q2) echo Q2_K ;; q4) echo Q4_0 ;; q8) echo Q8_0 ;; esac; }
eddy_recipe() { case "$1" in q2) echo w2a8 ;; q4) echo w4a8 ;; q8) echo w8a8 ;; esac; }

. "$ROOT/scripts/llama-cpp-common.sh"
llama_cpp_prerequisites

mkdir -p "$PEER"
RUN=$PEER/runs/$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$RUN"
LOG=$RUN/log.txt
: >"$LOG"

# 1. llama.cpp (llama-bench and llama-quantize) and 2. the Python venv for
# the weights and the converter (scripts/llama-cpp-common.sh).
llama_cpp_source
llama_cpp_build llama-bench llama-quantize
LLAMA_BENCH=$BUILD/bin/llama-bench
LLAMA_QUANTIZE=$BUILD/bin/llama-quantize
CONVERT=$SRC/convert_hf_to_gguf.py
[ -f "$CONVERT" ] || die "no convert_hf_to_gguf.py in $SRC"
GPT2_VOCAB=$SRC/models/ggml-vocab-gpt-2.gguf
[ -f "$GPT2_VOCAB" ] || die "no models/ggml-vocab-gpt-2.gguf in $SRC (the tokenizer is rebuilt from it)"
llama_cpp_venv

# 3. eddy.
if [ -z "$EDDY" ]; then
  need cargo "install Rust with rustup, or pass --eddy PATH"
  say "building eddy (cargo build --release -p eddy-cli)"
  (cd "$ROOT" && step "cargo build" nice -n 5 cargo build --release -p eddy-cli)
  EDDY=${CARGO_TARGET_DIR:-$ROOT/target}/release/eddy
fi
[ -x "$EDDY" ] || die "no eddy binary at $EDDY"

# 4. Weights, conversions, quantizations.
size_mib() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.1f", b / 1048576 }'; }
REFUSED=()
declare -A LLAMA_OK
for shape in ${SHAPES//,/ }; do
  M=$PEER/models/$shape-seed$SEED
  mkdir -p "$M"
  if [ ! -f "$M/hf/.done" ]; then
    say "$shape: random weights (transformers class, seed $SEED)"
    rm -rf "$M/hf"
    step "$shape weights" "$PY" "$ROOT/tools/python/peer_random_weights.py" --shape "$shape" --out "$M/hf" \
      --gpt2-vocab "$GPT2_VOCAB" --seed "$SEED"
    touch "$M/hf/.done"
  fi
  LLAMA_OK[$shape]=1
  if [ ! -f "$M/f16.gguf" ]; then
    say "$shape: llama.cpp convert_hf_to_gguf.py --outtype f16"
    echo "== $shape convert_hf_to_gguf" >>"$LOG"
    if ! "$PY" "$CONVERT" "$M/hf" --outtype f16 --outfile "$M/f16.gguf.tmp" >>"$LOG" 2>&1; then
      rm -f "$M/f16.gguf.tmp"
      tail -n 5 "$LOG" >&2
      say "$shape: llama.cpp's converter does NOT accept this checkpoint; eddy only for it (log: $LOG)"
      REFUSED+=("$shape")
      LLAMA_OK[$shape]=0
    else
      mv "$M/f16.gguf.tmp" "$M/f16.gguf"
    fi
  fi
  if [ ! -f "$M/f32.eddy" ]; then
    say "$shape: eddy convert"
    step "$shape eddy convert" "$EDDY" convert "$M/hf" -o "$M/f32.eddy"
  fi
  for q in ${QUANTS//,/ }; do
    t=$(gguf_type "$q"); r=$(eddy_recipe "$q")
    if [ "${LLAMA_OK[$shape]}" = 1 ] && [ ! -f "$M/$t.gguf" ]; then
      say "$shape: llama-quantize $t"
      step "$shape llama-quantize $t" "$LLAMA_QUANTIZE" "$M/f16.gguf" "$M/$t.gguf" "$t"
    fi
    if [ ! -f "$M/$r.eddy" ]; then
      say "$shape: eddy quantize --recipe $r"
      step "$shape eddy quantize $r" "$EDDY" quantize "$M/f32.eddy" --recipe "$r" -o "$M/$r.eddy"
    fi
  done
done

# 5. Benchmarks, interleaved: llama.cpp then eddy for each model/quant/threads.
# llama-bench -o json: avg_ts per test (n_prompt / n_gen); eddy bench --json:
# tokens_per_s per test (ppN / tgN).
RES=$RUN/results.tsv
printf 'shape\tquant\tgguf_mib\teddy_mib\tthreads\tllama_pp\tllama_pp_sd\tllama_tg\tllama_tg_sd\teddy_pp\teddy_pp_sd\teddy_tg\teddy_tg_sd\n' >"$RES"
llama_ts() { # json file, "pp"|"tg"
  "$PY" - "$1" "$2" <<'EOF'
import json, sys
rows = json.load(open(sys.argv[1]))
want = sys.argv[2]
for r in rows:
    if (want == "pp" and r["n_prompt"] > 0 and r["n_gen"] == 0) or (want == "tg" and r["n_gen"] > 0 and r["n_prompt"] == 0):
        print(f'{r["avg_ts"]:.2f}\t{r["stddev_ts"]:.2f}'); break
else:
    print("n/a\tn/a")
EOF
}
eddy_ts() { # json file, "pp"|"tg"
  "$PY" - "$1" "$2" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
for r in d["results"]:
    if r["test"].startswith(sys.argv[2]):
        print(f'{r["tokens_per_s"]:.2f}\t{r["stddev"]:.2f}'); break
else:
    print("n/a\tn/a")
EOF
}
for shape in ${SHAPES//,/ }; do
  M=$PEER/models/$shape-seed$SEED
  for q in ${QUANTS//,/ }; do
    t=$(gguf_type "$q"); r=$(eddy_recipe "$q")
    for th in ${THREADS//,/ }; do
      lpp=$'n/a\tn/a'; ltg=$lpp; gsz=n/a
      if [ "${LLAMA_OK[$shape]}" = 1 ]; then
        say "bench $shape $t llama.cpp -t $th"
        J=$RUN/$shape-$t-t$th.llama.json
        step "llama-bench $shape $t -t $th" sh -c "'$LLAMA_BENCH' -m '$M/$t.gguf' -p $PP -n $TG -t $th -r $REPS -o json >'$J'"
        lpp=$(llama_ts "$J" pp); ltg=$(llama_ts "$J" tg); gsz=$(size_mib "$M/$t.gguf")
      fi
      say "bench $shape $r eddy -t $th"
      J=$RUN/$shape-$r-t$th.eddy.json
      step "eddy bench $shape $r -t $th" sh -c "'$EDDY' --threads $th bench '$M/$r.eddy' -p $PP -n $TG --sweep-threads $th -r $REPS --no-roofline --json >'$J'"
      epp=$(eddy_ts "$J" pp); etg=$(eddy_ts "$J" tg)
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$shape" "$q" "$gsz" "$(size_mib "$M/$r.eddy")" "$th" \
        "$lpp" "$ltg" "$epp" "$etg" >>"$RES"
    done
  done
done

# 6. The table.
"$PY" - "$RES" "$PP" "$TG" >"$RUN/table.md" <<'EOF'
import csv, sys
pp, tg = sys.argv[2], sys.argv[3]
pair = {"q2": ("Q2_K", "w2a8"), "q4": ("Q4_0", "w4a8"), "q8": ("Q8_0", "w8a8")}
def ts(r, k):
    return r[k] if r[k] == "n/a" else f'{r[k]} ± {r[k + "_sd"]}'
def ratio(e, l):
    try:
        return f"{float(e) / float(l):.2f}x"
    except ValueError:
        return "n/a"
print(f"| model shape | quant (llama.cpp vs eddy) | file MiB (gguf / eddy) | threads | llama.cpp pp{pp} / tg{tg} t/s "
      f"| eddy pp{pp} / tg{tg} t/s | eddy/llama.cpp pp / tg |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
for r in csv.DictReader(open(sys.argv[1]), delimiter="\t"):
    g, e = pair[r["quant"]]
    print(f'| {r["shape"]} | {g} vs {e} | {r["gguf_mib"]} / {r["eddy_mib"]} | {r["threads"]} '
          f'| {ts(r, "llama_pp")} / {ts(r, "llama_tg")} | {ts(r, "eddy_pp")} / {ts(r, "eddy_tg")} '
          f'| {ratio(r["eddy_pp"], r["llama_pp"])} / {ratio(r["eddy_tg"], r["llama_tg"])} |')
EOF
cat "$RUN/table.md"
echo
commit=$(cat "$RUN"/*.llama.json 2>/dev/null | grep -m1 -o '"build_commit": *"[^"]*"' | sed 's/.*: *//' || true)
echo "llama.cpp: llama-cpp-python $LCP_VERSION's vendored source (build_commit ${commit:-?}), built in $BUILD"
echo "eddy: $("$EDDY" --version 2>/dev/null || echo "$EDDY")"
echo "OMP_WAIT_POLICY: ${OMP_WAIT_POLICY:-unset (OpenMP default)}"
echo "repetitions: $REPS (t/s: mean ± standard deviation over them); results and logs: $RUN"
if [ ${#REFUSED[@]} -gt 0 ]; then
  echo "llama.cpp's convert_hf_to_gguf.py refused: ${REFUSED[*]} (eddy columns only; see $LOG)"
fi
