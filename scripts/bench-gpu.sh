#!/usr/bin/env bash
# The GPU benchmark step (scripts/gpu-check.sh calls it; also runnable alone on the GPU host):
# bsattn bench over S = 8192, 32768, D = 64, 128, densities 0.05..1.0, patterns random, local, causal
# (CUDA backend, ceilings measured in the same run), then scripts/peers.py times FlexAttention and SDPA
# (cuDNN, flash) on the same masks and merges them, then the table, CSV and (when `bsattn visualize
# bench` exists) the plot. Writes $OUT/bench-<gpu>-<date>.{json,csv,md,png}.
#
#   run(carry=[".carry"], command="BSATTN_COMMIT=<sha> scripts/bench-gpu.sh [--quick]")
#   --quick: S = 8192, D = 128, three densities (a check of the pipeline, a minute or two)
#   --bwd: the backward sweep instead: --pass fwd,bwd over S = 8192, 32768, D = 64, 128, densities
#          0.05, 0.1, 0.3, 0.5, 1.0, patterns random and causal; peers.py times FlexAttention's and SDPA's
#          backward as well and checks their dQ, dK, dV against `bsattn run --do` (files bench-bwd-*)
set -uo pipefail
cd "$(dirname "$0")/.."
quick=0
bwd=0
for a in "$@"; do
  case "$a" in
    --quick) quick=1 ;;
    --bwd) bwd=1 ;;
    *) echo "bench-gpu.sh: unknown option $a (allowed: --quick, --bwd)" >&2; exit 2 ;;
  esac
done
OUT=${OUT:-$PWD/bench-out}
BUILD=${BSATTN_BUILD:-build-gpu}
mkdir -p "$OUT"
export PATH=/usr/local/cuda/bin:$PATH
# Always brought up to date (ninja rebuilds only what changed): the GPU host keeps ignored build folders
# between calls, and a binary left from an earlier call would time (and check) stale code. A folder that
# is already configured (gpu-check.sh's build-gpu) keeps its configuration.
echo "== build bsattn ($BUILD) =="
{ [ -f "$BUILD/CMakeCache.txt" ] ||
    cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBSATTN_CUDA=ON -DBSATTN_TESTS=OFF \
      -DCMAKE_PREFIX_PATH="$PWD/.carry/usr"; } >"$OUT/bench-build.log" 2>&1 &&
  cmake --build "$BUILD" -j"$(nproc)" --target bsattn >>"$OUT/bench-build.log" 2>&1 ||
  { tail -30 "$OUT/bench-build.log"; echo "bench-gpu.sh: build failed"; exit 1; }
rm -f "$OUT/bench-build.log"
B=$BUILD/bsattn
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 | tr -cs 'A-Za-z0-9' '-' | sed 's/-$//' | tr 'A-Z' 'a-z')
name=bench-${gpu:-gpu}-$(date -u +%Y%m%d)
[ $bwd = 1 ] && name=bench-bwd-${gpu:-gpu}-$(date -u +%Y%m%d)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

passes=fwd
patterns=random,local,causal
if [ $quick = 1 ]; then
  axes=(--seq 8192 --head-dim 128 --density 0.1,0.5,1.0)
else
  axes=(--seq 8192,32768 --head-dim 64,128 --density 0.05,0.1,0.2,0.3,0.5,0.7,1.0)
fi
if [ $bwd = 1 ]; then
  passes=fwd,bwd
  patterns=random,causal
  [ $quick = 1 ] || axes=(--seq 8192,32768 --head-dim 64,128 --density 0.05,0.1,0.3,0.5,1.0)
fi
echo "== bsattn bench =="
# BSATTN_BENCH_KERNEL (gpu-check.sh sets it): the kernel variant to time; empty: bsattn's default.
$B bench --backend cuda ${BSATTN_BENCH_KERNEL:+--kernel "$BSATTN_BENCH_KERNEL"} "${axes[@]}" --heads 16 --batch 1 --block 128 --dtype bf16 --pass $passes \
  --pattern $patterns --min-samples 5 --max-time 0.3 --noise 0.02 \
  --json "$W/bench.json" --save-masks "$W/masks" --markdown "$W/bench-only.md" || exit 1
cat "$W/bench-only.md"

echo "== peers (FlexAttention, SDPA cuDNN, SDPA flash) =="
if PYTHONUNBUFFERED=1 python3 scripts/peers.py --bench "$W/bench.json" --masks "$W/masks" --bsattn "$B" \
     --out "$W/merged.json"; then
  doc="$W/merged.json"
else
  echo "bench-gpu.sh: peers.py failed; keeping bsattn's records alone"
  doc="$W/bench.json"
fi
cp "$doc" "$OUT/$name.json"
$B bench --from "$OUT/$name.json" --csv "$OUT/$name.csv" --markdown "$OUT/$name.md" -q || exit 1
if $B visualize --help 2>/dev/null | grep -q "bench"; then
  # One figure that reads: D = 128, the random pattern (bsattn, FlexAttention) and dense SDPA, one colour
  # per implementation, S by marker. The full set is in the JSON/CSV/table. With --bwd, the backward records.
  $B visualize bench "$OUT/$name.json" --pattern random,dense --head-dim 128 --no-causal \
    --pass "$([ $bwd = 1 ] && echo bwd || echo fwd)" --x density --width 1600 --height 520 -o "$OUT/$name.png" \
    || echo "bench-gpu.sh: visualize bench failed"
else
  echo "bench-gpu.sh: this build has no 'bsattn visualize bench': no plot"
fi
cat "$OUT/$name.md"
echo "bench-gpu.sh: wrote $OUT/$name.{json,csv,md$( [ -f "$OUT/$name.png" ] && echo ,png)}"
