# Sourced by peer-llama.sh and make-gguf-fixtures.sh: llama.cpp's source
# from the llama-cpp-python source distribution on the Python package index
# (it vendors llama.cpp under vendor/llama.cpp), built with cmake (installed
# with apt-get if missing), Release, -march=native, AMX off (AMX tiles fault
# under some virtualization), no curl/openssl, only the targets asked for;
# and a Python venv with tools/python/requirements.txt (torch,
# transformers, safetensors, tokenizers), sentencepiece, protobuf and
# llama.cpp's own gguf-py. Note that torch from the Python package index
# pulls its CUDA libraries (~3 GB) on x86-64 Linux.
#
# The caller defines die and say and sets ROOT, PEER (the cache directory),
# LCP_VERSION and LOG (where step output goes).

need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found${2:+ ($2)}"; }
APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "$1 is missing and there is no apt-get to install it"
  if [ "$APT_UPDATED" = 0 ]; then apt-get update -qq >/dev/null || die "apt-get update failed"; APT_UPDATED=1; fi
  say "installing $1 with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null || die "apt-get install $1 failed"
}

# Run a step with its output in the log; on failure show the log's tail.
step() {
  local what=$1; shift
  echo "== $what: $*" >>"$LOG"
  if ! "$@" >>"$LOG" 2>&1; then
    tail -n 25 "$LOG" >&2
    die "$what failed (full log: $LOG)"
  fi
}

# The tools every step needs.
llama_cpp_prerequisites() {
  need python3 "needed to run llama.cpp's converter"
  need c++ "needed to build llama.cpp (apt-get install build-essential)"
  need tar
  command -v cmake >/dev/null 2>&1 || apt_install cmake
  need cmake
  python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
}

# Sets SRC to llama.cpp's source tree, downloading the sdist if needed.
# (--no-binary for that package only: `--no-binary :all:` would also build
# its build tools, cmake included, from source just to read the metadata.)
llama_cpp_source() {
  local parent=$PEER/src
  SRC=$parent/llama_cpp_python-$LCP_VERSION/vendor/llama.cpp
  if [ ! -f "$SRC/CMakeLists.txt" ]; then
    mkdir -p "$parent"
    say "downloading the llama-cpp-python $LCP_VERSION source distribution"
    step "pip download" python3 -m pip download --no-binary llama-cpp-python --no-deps \
      "llama-cpp-python==$LCP_VERSION" -d "$parent"
    step "extract" tar -xzf "$parent/llama_cpp_python-$LCP_VERSION.tar.gz" -C "$parent"
    [ -f "$SRC/CMakeLists.txt" ] || die "the sdist has no vendor/llama.cpp/CMakeLists.txt"
  fi
}

# Builds the llama.cpp targets named (a program such as llama-quantize, or a
# library such as ggml-base) that are not built yet into $BUILD/bin (BUILD
# is set here), niced.
llama_cpp_build() {
  BUILD=$PEER/build-llama
  if [ "$(cat "$BUILD/.peer-source" 2>/dev/null)" != "$SRC" ]; then rm -rf "$BUILD"; fi
  local missing=() t
  built() { [ -x "$BUILD/bin/$1" ] || [ -f "$BUILD/bin/lib$1.so" ]; }
  for t in "$@"; do built "$t" || missing+=("$t"); done
  if [ ${#missing[@]} -gt 0 ]; then
    # AMX option names as this llama.cpp spells them (ggml/CMakeLists.txt).
    local amx=() o
    for o in GGML_AMX_TILE GGML_AMX_INT8 GGML_AMX_BF16; do
      grep -q "option($o " "$SRC/ggml/CMakeLists.txt" && amx+=("-D$o=OFF")
    done
    say "building ${missing[*]} (minutes on 2 cores)"
    step "cmake configure" cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON "${amx[@]}" \
      -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
      -DLLAMA_BUILD_SERVER=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_APP=OFF
    step "cmake build" nice -n 5 cmake --build "$BUILD" --target "${missing[@]}" -j "$(nproc)"
    echo "$SRC" >"$BUILD/.peer-source"
  fi
  for t in "$@"; do built "$t" || die "no $t in $BUILD/bin"; done
}

# Sets PY to a venv's python with the converter's packages installed.
llama_cpp_venv() {
  local venv=$PEER/venv stamp
  PY=$venv/bin/python
  stamp=$venv/.peer-$(cat "$ROOT/tools/python/requirements.txt" "$SRC/gguf-py/pyproject.toml" | sha256sum | cut -c1-12)
  if [ ! -f "$stamp" ]; then
    [ -x "$PY" ] || step "python venv" python3 -m venv "$venv"
    say "installing Python packages into $venv (torch, transformers, gguf-py, ...)"
    step "pip install" nice -n 5 "$PY" -m pip install -q -r "$ROOT/tools/python/requirements.txt" \
      sentencepiece protobuf "$SRC/gguf-py"
    touch "$stamp"
  fi
}
