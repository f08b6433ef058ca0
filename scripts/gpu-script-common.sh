# Sourced by the GPU host's measurement scripts (dilated-gpu.sh, nsa-gpu.sh) after `cd` to the repo root:
# OUT defaults to results/$1, builds bsattn in BSATTN_BUILD (default build-gpu, gpu-check.sh's folder,
# reused; configured only when it has no CMakeCache.txt), and sets B (the binary), COMMIT (BSATTN_COMMIT
# or HEAD, 7 characters) and gpu (the GPU's name as a file-name word, empty without nvidia-smi).
# $1: the results folder's name; $2: the calling script's name, for the failure line.
OUT=${OUT:-results/$1}
BUILD=${BSATTN_BUILD:-build-gpu}
export PATH=/usr/local/cuda/bin:$PATH
mkdir -p "$OUT"
echo "== build bsattn ($BUILD) =="
{ [ -f "$BUILD/CMakeCache.txt" ] ||
    cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBSATTN_CUDA=ON -DBSATTN_TESTS=OFF \
      -DCMAKE_PREFIX_PATH="$PWD/.carry/usr"; } >"$OUT/.build.log" 2>&1 &&
  cmake --build "$BUILD" -j"$(nproc)" --target bsattn >>"$OUT/.build.log" 2>&1 ||
  { tail -30 "$OUT/.build.log"; echo "$2: build failed"; exit 1; }
rm -f "$OUT/.build.log"
B=$BUILD/bsattn
COMMIT=${BSATTN_COMMIT:-$(git rev-parse --short=7 HEAD 2>/dev/null || echo unknown)}
COMMIT=${COMMIT:0:7}
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 | tr -cs 'A-Za-z0-9' '-' | sed 's/-$//' | tr 'A-Z' 'a-z')
