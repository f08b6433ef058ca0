#!/usr/bin/env bash
# The demo of the main job with embedded defaults: a hybrid mask, then bsattn's default benchmark
# (CUDA backend on a GPU; CPU backend with a notice elsewhere).
set -euo pipefail
cd "$(dirname "$0")/.."
B=build/bsattn
out=$(mktemp -d)
echo "== bsattn gen-mask: a hybrid mask (4 dense heads, 8 random at 0.3, 4 streaming) =="
$B gen-mask --head-map "0-3=dense;4-11=random:density=0.3,seed=7;12-15=streaming:sink=1,local=4" \
  --seq 32768 --heads 16 -o "$out/hybrid.npy" --csr "$out/hybrid"
echo
echo "== bsattn bench (embedded default sweep) =="
$B bench
rm -rf "$out"
