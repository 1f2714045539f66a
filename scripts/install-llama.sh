#!/usr/bin/env bash
# Install llama-cpp-python into a venv with a build that runs on this CPU.
#
# Why not `pip install llama-cpp-python`? That builds from source with
# GGML_NATIVE, which segfaults on CPUs that report AMX (the crash is in
# ggml_backend_amx_mul_mat), and pip caches the natively built wheel, so a
# wheel made on one machine can be reused on another where it does not run.
# Here the build is never native: the instruction set is chosen from
# /proc/cpuinfo (AVX2/FMA/F16C is the portable floor, AVX-512 where the CPU
# has it, AMX always off), the wheel is built without pip's cache, and it is
# kept in a cache keyed by version and instruction set, so reusing it on
# another machine is safe whenever that machine has the same flags.
#
# The source gets five small patches:
# - scripts/llama-gemma3-hidden-state.patch: a Gemma 3 context in embeddings mode returns
#   the final hidden states without computing the 262k-token output layer, except for the
#   last n outputs of a call (llama_set_logit_rows), so the decoder computes logits itself
#   for the tokens its grammar allows and gets llama.cpp's for the rest in the same call.
#   Contexts not in embeddings mode behave as upstream.
# - scripts/llama-kv-lazy-zero.patch: the KV cache is zeroed cell by cell as attention
#   first reaches it, not all at once, so its memory grows with the cells a run uses.
# - scripts/llama-fa-gqa.patch: CPU flash attention computes the query heads that share a
#   KV head together and steps over masked cells in runs; the same results, bit for bit.
#   A float32 kernel (about 1.2x the records/s, not bit for bit upstream's) is what the
#   decoder asks for (SIMULACRA_FA_FLOAT32=1); SIMULACRA_EXACT_ATTENTION=1 keeps upstream's.
# - scripts/llama-cpu-kernels.patch: three CPU kernels the decoder's steps spend time in
#   (BF16 tiles, GEGLU, RMS norm) made faster on AVX-512; the first two the same bits as
#   upstream, the RMS norm's sum in lanes (rare last-bit differences).
# - scripts/llama-bf16-repack.patch: BF16 weights repacked at load in blocks of 16 rows, so
#   their products (about 1.18x tinyBLAS's speed) need no horizontal sums; the same bits as
#   upstream. A weight copied out of the file mapping lets the mapping's pages go.
#
# Usage: scripts/install-llama.sh PYTHON   (the venv's python)
set -euo pipefail
PY=${1:?usage: install-llama.sh PATH/TO/VENV/python}
VERSION=0.3.36
HERE="$(cd "$(dirname "$0")" && pwd)"
PATCHES=("$HERE/llama-gemma3-hidden-state.patch" "$HERE/llama-kv-lazy-zero.patch"
         "$HERE/llama-fa-gqa.patch" "$HERE/llama-cpu-kernels.patch" "$HERE/llama-bf16-repack.patch")
PATCH_ID=hs4-kz1-fa4-ck2-br3   # bump when a patch changes: it is part of the wheel cache key
CACHE=${SIMULACRA_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/simulacra/wheels}

flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
has() { [[ " $flags " == *" $1 "* ]]; }

for f in avx2 fma f16c; do
  has "$f" || { echo "install-llama: this CPU lacks $f; simulacra's embedded model needs AVX2/FMA/F16C" >&2; exit 1; }
done
common="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
common="$common -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"
if has avx512f && has avx512bw && has avx512vl && has avx512vbmi && has avx512_vnni && has avx512_bf16; then
  tag=avx512
  args="$common -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON"
else
  tag=avx2
  args="$common -DGGML_AVX512=OFF"
fi
if has avx_vnni; then args="$args -DGGML_AVX_VNNI=ON"; tag="$tag-avxvnni"; fi

marker="$("$PY" -c 'import sys; print(sys.prefix)')/.llama-build"
want="$VERSION-$PATCH_ID-$tag"
if [[ -f "$marker" && "$(cat "$marker")" == "$want" ]] && "$PY" -c 'import llama_cpp' 2>/dev/null; then
  echo "install-llama: llama-cpp-python $want already installed"
  exit 0
fi

dir="$CACHE/llama-cpp-python-$want-$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
wheel=$(ls "$dir"/llama_cpp_python-*.whl 2>/dev/null | head -n1 || true)
if [[ -z "$wheel" ]]; then
  echo "install-llama: building llama-cpp-python $VERSION for $tag (a few minutes on 2 cores)"
  tmp=$(mktemp -d)
  "$PY" -m pip download --quiet --no-deps --no-cache-dir --no-binary :all: -d "$tmp" \
    "llama-cpp-python==$VERSION"
  tar -xzf "$tmp"/llama_cpp_python-"$VERSION".tar.gz -C "$tmp"
  src="$tmp/llama_cpp_python-$VERSION"
  for p in "${PATCHES[@]}"; do
    if command -v patch >/dev/null; then
      patch --quiet -p1 -d "$src" < "$p"
    else
      (cd "$src" && git apply "$p")
    fi
  done
  CMAKE_ARGS="$args" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) FORCE_CMAKE=1 \
    "$PY" -m pip wheel --quiet --no-deps --no-cache-dir -w "$tmp" "$src"
  mkdir -p "$dir"
  mv "$tmp"/llama_cpp_python-*.whl "$dir"/
  rm -rf "$tmp"
  wheel=$(ls "$dir"/llama_cpp_python-*.whl | head -n1)
fi
"$PY" -m pip install --quiet --force-reinstall --no-deps "$wheel"
# Its runtime deps and the [server] extra (used by the OpenAI backend tests).
"$PY" -m pip install --quiet "$wheel[server]"
echo "$want" > "$marker"
echo "install-llama: installed $wheel"
