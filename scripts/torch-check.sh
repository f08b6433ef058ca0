#!/usr/bin/env bash
# The torch op on the GPU host: builds build-gpu/ (CUDA on, sm_90a; bsattn and libbsattn), installs the
# Python package from python/ into $OUT/site (pip, no package index; the package bundles
# build-gpu/libbsattn.so), then runs tests/torch/test_torch_gpu.py: correctness against float64
# attention, torch.library.opcheck, torch.compile, a training step against SDPA, and the timing table
# (torch op vs `bsattn bench --pass fwd+bwd` vs FlexAttention at S=8192 and 32768). Logs and the table
# go to $OUT (or ./torch-check-out).
#
#   scripts/gpu-check.sh --prepare-carry      (here, once: the header-only dependencies into .carry/)
#   run(carry=[".carry"], command="scripts/torch-check.sh [--build-only | --no-build] [--no-bench | --quick]")
# The build takes minutes: with the 10-minute limit of one command, run --build-only first and then
# --no-build on the same warm machine (build-gpu/ stays there between calls).
set -uo pipefail
cd "$(dirname "$0")/.."
build=1 test=1 test_args=()
for a in "$@"; do
  case "$a" in
    --build-only) test=0 ;;
    --no-build) build=0 ;;
    --no-bench|--quick) test_args+=("$a") ;;
    *) echo "torch-check.sh: unknown option $a (allowed: --build-only, --no-build, --no-bench, --quick)" >&2; exit 2 ;;
  esac
done
OUT=${OUT:-$PWD/torch-check-out}
mkdir -p "$OUT"
LOG=$OUT/torch-check.log
export PATH=/usr/local/cuda/bin:$PATH
PY=${PYTHON:-python3}
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: ${BSATTN_COMMIT:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1
  nvcc --version 2>&1 | tail -1
  "$PY" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda)" 2>&1
} | tee "$LOG"

if [ "$build" = 1 ]; then
  echo "== build (build-gpu: bsattn, libbsattn) ==" | tee -a "$LOG"
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DBSATTN_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a-real \
    -DCMAKE_PREFIX_PATH="$PWD/.carry/usr" >"$OUT/build.log" 2>&1 &&
    cmake --build build-gpu -j"$(nproc)" --target bsattn bsattn_capi >>"$OUT/build.log" 2>&1
  rc=$?
  if [ $rc -ne 0 ]; then
    echo "build failed (rc $rc); the end of $OUT/build.log:" | tee -a "$LOG"
    tail -30 "$OUT/build.log" | tee -a "$LOG"
    exit 1
  fi
fi
[ "$test" = 1 ] || { echo "built build-gpu/bsattn and build-gpu/libbsattn.so" | tee -a "$LOG"; exit 0; }
if [ ! -f build-gpu/libbsattn.so ] || [ ! -x build-gpu/bsattn ]; then
  echo "build-gpu/ has no bsattn or libbsattn.so: run without --no-build first" | tee -a "$LOG"
  exit 1
fi

echo "== pip install ./python (into $OUT/site) ==" | tee -a "$LOG"
rm -rf "$OUT/site"
if BSATTN_BUILD_DIR=$PWD/build-gpu "$PY" -m pip install --no-index --no-deps --no-cache-dir --target "$OUT/site" ./python \
    >>"$LOG" 2>&1; then
  export PYTHONPATH=$OUT/site${PYTHONPATH:+:$PYTHONPATH}
else
  echo "pip install failed (above); using python/ and build-gpu/libbsattn.so directly" | tee -a "$LOG"
  export PYTHONPATH=$PWD/python${PYTHONPATH:+:$PYTHONPATH} BSATTN_LIBRARY=$PWD/build-gpu/libbsattn.so
fi

echo "== tests/torch/test_torch_gpu.py ==" | tee -a "$LOG"
"$PY" tests/torch/test_torch_gpu.py --bsattn build-gpu/bsattn --markdown "$OUT/torch-bench.md" "${test_args[@]}" \
  2>&1 | tee -a "$LOG"
status=${PIPESTATUS[0]}
echo "torch-check: exit $status (log: $LOG)" | tee -a "$LOG"
exit "$status"
