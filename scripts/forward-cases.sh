#!/usr/bin/env bash
# Issue 19's forward cases in one call on the GPU host, each with FlexAttention and SDPA (cuDNN) timed
# by scripts/peers.py on the same masks in the same call: head dims 64 and 128, then 96 and 256 (S = 8192
# and 32768, random masks; apart, so that a peer without a kernel for a head dim costs only its part),
# block 64 against block 128 (S = 8192, D = 64 and 128), causal masks at low density, and the SiLU score
# against softmax. Writes $OUT/fwd-cases-<part>.{json,md} and a summary of
# bsattn against the peers ($OUT/fwd-cases-summary.md). bf16, B = 1, H = 16.
#
#   run(carry=[".carry/usr"], command="BSATTN_COMMIT=<sha> scripts/forward-cases.sh [PART ...]")
#   PART: heads, wide, blocks, causal, silu (default: all five, in that order)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/forward-cases-out}
BUILD=${BSATTN_BUILD:-build-gpu}
mkdir -p "$OUT"
export PATH=/usr/local/cuda/bin:$PATH
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(heads wide blocks causal silu)
for p in "${parts[@]}"; do
  case "$p" in heads | wide | blocks | causal | silu) ;; *)
    echo "forward-cases.sh: unknown part '$p' (allowed: heads, wide, blocks, causal, silu)" >&2
    exit 2
    ;;
  esac
done
echo "== build bsattn ($BUILD) =="
{ [ -f "$BUILD/CMakeCache.txt" ] ||
    cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBSATTN_CUDA=ON -DBSATTN_TESTS=OFF \
      -DCMAKE_CUDA_ARCHITECTURES=90a-real -DCMAKE_PREFIX_PATH="$PWD/.carry/usr"; } >"$OUT/build.log" 2>&1 &&
  cmake --build "$BUILD" -j"$(nproc)" --target bsattn >>"$OUT/build.log" 2>&1 ||
  { tail -30 "$OUT/build.log"; echo "forward-cases.sh: build failed"; exit 1; }
B=$BUILD/bsattn
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
common=(--backend cuda --heads 16 --batch 1 --dtype bf16 --pass fwd --min-samples 5 --max-time 0.3 --noise 0.02)
axes_of() {
  case "$1" in
    heads) echo "--seq 8192,32768 --head-dim 64,128 --block 128 --density 0.05,0.1,0.5,1.0 --pattern random" ;;
    wide) echo "--seq 8192,32768 --head-dim 96,256 --block 128 --density 0.05,0.1,0.5,1.0 --pattern random" ;;
    blocks) echo "--seq 8192 --head-dim 64,128 --block 64,128 --density 0.05,0.1,0.5,1.0 --pattern random" ;;
    causal) echo "--seq 8192,32768 --head-dim 64,128 --block 128 --density 0.05,0.1,0.3,1.0 --pattern causal" ;;
    silu) echo "--seq 8192 --head-dim 64,128 --block 128 --density 0.1,1.0 --pattern random,causal --score softmax,silu" ;;
  esac
}
for p in "${parts[@]}"; do
  echo "== $p =="
  # shellcheck disable=SC2046
  $B bench "${common[@]}" $(axes_of "$p") --json "$W/$p.json" --save-masks "$W/masks-$p" -q ||
    { echo "forward-cases.sh: bench ($p) failed"; continue; }
  doc="$W/$p.json"
  # The SiLU records have no peer (peers.py times HSTU's PyTorch forms only for --rab runs).
  if [ "$p" != silu ]; then
    if PYTHONUNBUFFERED=1 python3 scripts/peers.py --bench "$W/$p.json" --masks "$W/masks-$p" --bsattn "$B" \
         --impls flex,sdpa_cudnn --out "$W/$p-peers.json"; then
      doc="$W/$p-peers.json"
    else
      echo "forward-cases.sh: peers.py failed ($p); keeping bsattn's records alone"
    fi
  fi
  cp "$doc" "$OUT/fwd-cases-$p.json"
  $B bench --from "$OUT/fwd-cases-$p.json" --markdown "$OUT/fwd-cases-$p.md" -q
done
python3 - "$OUT" "${parts[@]}" >"$OUT/fwd-cases-summary.md" <<'PY'
import json, os, sys
out, parts = sys.argv[1], sys.argv[2:]
print("| part | S | D | block | pattern | score | density | bsattn kernel | bsattn TFLOP/s | Flex | ours / Flex | SDPA cuDNN (dense) | ours / cuDNN |")
print("|---|---:|---:|---:|---|---|---:|---|---:|---:|---:|---:|---:|")
for part in parts:
    f = os.path.join(out, "fwd-cases-%s.json" % part)
    if not os.path.exists(f):
        continue
    recs = json.load(open(f))["records"]
    dense = {}
    for r in recs:
        if r["impl"] == "sdpa_cudnn":
            dense[(r["seq"], r["head_dim"], r.get("causal", False))] = r["tflops_effective"]
    flex = {}
    for r in recs:
        if r["impl"] == "flex_attention":
            flex[(r["seq"], r["head_dim"], r["block"], r["pattern"], r.get("mask_file"))] = r["tflops_effective"]
    for r in recs:
        if not r["impl"].startswith("bsattn"):
            continue
        fx = flex.get((r["seq"], r["head_dim"], r["block"], r["pattern"], r.get("mask_file")))
        dn = dense.get((r["seq"], r["head_dim"], r["pattern"] == "causal")) if r["density"] >= 0.999 else None
        t = r["tflops_effective"]
        print("| %s | %d | %d | %d | %s | %s | %.3f | %s | %.1f | %s | %s | %s | %s |" % (
            part, r["seq"], r["head_dim"], r["block"], r["pattern"], r.get("score", "softmax"), r["density"],
            r.get("kernel", ""), t, "%.1f" % fx if fx else "", "%.2fx" % (t / fx) if fx else "",
            "%.1f" % dn if dn else "", "%.2fx" % (t / dn) if dn else ""))
PY
cat "$OUT/fwd-cases-summary.md"
