#!/usr/bin/env bash
# Regenerates the figures of README.md into docs/images/: one bsattn command per figure (the ones
# docs/visualize.md lists beside each image), no other processing. Usage: scripts/readme-figures.sh [BSATTN]
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build/bsattn}
OUT=docs/images
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
$B gen-mask --head-map "0-1=dense;2-3=local:window=3;4-5=bigbird:window=1,global=1,random=2;6-7=streaming:sink=1,local=4" \
  --seq 6000 --block 128 --heads 8 --causal --seed 7 -o "$W/hybrid.json" -q
$B visualize mask "$W/hybrid.json" -o $OUT/hybrid_mask.png -q
$B gen-mask --pattern local:window=3 --seq 4096 --block 128 --heads 4 --causal -o "$W/local.json" -q
$B visualize attention "$W/local.json" --synthetic sinks --seed 1 --head 2 -o $OUT/attention_local.png -q
$B visualize curve --grid 4x32x32 --order raster,gilbert --view blocks --block 128 -o $OUT/curve_blocks.png -q
$B analyze --sweep --synthetic sinks --seq 2048 --heads 4 --head-dim 64 --block 64 --causal --seed 1 \
  --patterns "local;streaming;random" --densities 0.05,0.1,0.2,0.3,0.5 --json $OUT/frontier.json -q
$B visualize frontier $OUT/frontier.json -o $OUT/frontier.png -q
$B visualize bench results/bench/bench-nvidia-h200-20261202-a69d78b.json --pattern random,dense --head-dim 128 \
  --no-causal --pass fwd -o $OUT/bench_h200.png -q
echo "readme-figures.sh: wrote $OUT/{hybrid_mask,attention_local,curve_blocks,frontier,bench_h200}.png"
