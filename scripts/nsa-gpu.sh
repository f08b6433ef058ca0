#!/usr/bin/env bash
# NSA on the GPU host (issue 21): bsattn bench --nsa --backend cuda (every step on the GPU: compression,
# compressed branch, selection, the selected and window branches, gates) at S = 8192 and 32768, block 64,
# stride 32, top-16, window 512, qblock 64 and 128, H=16, GQA 4, D=128, bf16; then scripts/peers.py --nsa times the
# same computation in PyTorch (FlexAttention for the selected and window branches) on the same shapes and
# checks its output against `bsattn run --nsa --backend cuda`; and bsattn's GPU output against its CPU reference
# (S = 4096). Writes $OUT/nsa-gpu-<gpu>-<commit>.{json,md}.
#
#   run(carry=[".carry"], command="BSATTN_COMMIT=<sha> scripts/nsa-gpu.sh")   (about 3-4 minutes after the build)
#   OUT (default results/nsa), BSATTN_BUILD (default build-gpu: gpu-check.sh's folder, reused)
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/gpu-script-common.sh nsa nsa-gpu.sh
name=nsa-gpu-${gpu:-gpu}-$COMMIT
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
BASE=block=64,stride=32,select=64,topn=16,window=512
set -x
# qblock 64 (the finer selection; the forward's sm80-general kernel) and 128 (the sm80 kernel).
for qb in 64 128; do
  "$B" bench --backend cuda --nsa "$BASE,qblock=$qb" --seq 8192,32768 --heads 16 --kv-heads 4 --head-dim 128 \
    --dtype bf16 --min-samples 5 --max-time 1 --noise 0.02 --seed 1 --json "$W/nsa-$qb.json" -q || exit 1
  python3 scripts/peers.py --nsa --bench "$W/nsa-$qb.json" --bsattn "$B" --out "$W/merged-$qb.json" ||
    cp "$W/nsa-$qb.json" "$W/merged-$qb.json"
done
# The GPU path against the CPU reference (float64 compressed branch and selection) on the same bf16 inputs.
python3 -c "
import numpy as np
rng = np.random.default_rng(1)
for n, h in (('q', 16), ('k', 4), ('v', 4)):
    np.save('$W/' + n + '.npy', rng.standard_normal((1, 4096, h, 128)).astype(np.float32))"
for be in cuda cpu; do
  "$B" run --nsa "$BASE,qblock=64" --q "$W/q.npy" --k "$W/k.npy" --v "$W/v.npy" --dtype bf16 --backend $be \
    -o "$W/o_$be.npy" -q || exit 1
done
set +x
err=$(python3 -c "
import numpy as np
g, c = np.load('$W/o_cuda.npy').astype(np.float64), np.load('$W/o_cpu.npy').astype(np.float64)
print('%.3e' % (np.linalg.norm(g - c) / np.linalg.norm(c)))") || exit 1
python3 - "$W/merged-64.json" "$W/merged-128.json" "$OUT/$name.json" "$OUT/$name.md" "$COMMIT" "$BASE,qblock=64" "$err" <<'PY'
import json, os, sys
src64, src128, dst, md, commit, checked, gpu_vs_cpu = sys.argv[1:8]
d = json.load(open(src64))
d["records"] += json.load(open(src128))["records"]  # the same context but for the spec (records carry it)
with open(dst + ".tmp", "w") as f:
    json.dump(d, f, indent=1)
os.replace(dst + ".tmp", dst)
ctx = d["context"]
out = ["# NSA forward on the GPU (issue 21), commit %s" % commit, "",
       "`scripts/nsa-gpu.sh`: bf16, B=1. bsattn: every step on the GPU from Q/K/V to the gated output "
       "(lib/nsa/nsa_gpu.h; the window mask, fixed by the shape, built beforehand); its parts timed alone: "
       "selection (compression, compressed branch, selection and its CSR), branches (selected + window "
       "block-sparse forwards), gate. flex_nsa: the same computation in PyTorch (scripts/peers.py --nsa). "
       "`check`: relative L2 error of flex_nsa's O against `bsattn run --nsa --backend cuda` on the same inputs "
       "(rows whose selection differs by a near tie differ in the selected branch).", "",
       "| spec | S | H/Hkv | D | impl | ms | eff. TFLOP/s | flex_nsa / bsattn | selection / branches / gate ms | dense causal ms | check |",
       "|---|---:|---|---:|---|---:|---:|---:|---|---:|---:|"]
recs = d["records"]
ours = {(r["spec"], r["seq"], r["head_dim"]): r for r in recs if r["impl"] == "bsattn"}
for r in sorted(recs, key=lambda r: (r["spec"], r["seq"], r["head_dim"], r["impl"] != "bsattn")):
    mine = ours.get((r["spec"], r["seq"], r["head_dim"]))
    parts = "%.3f / %.3f / %.3f" % (r["selection_ms"], r["branches_ms"], r["gate_ms"]) if r.get("selection_ms") is not None else ""
    out.append("| %s | %d | %d/%d | %d | %s | %.3f | %.1f | %s | %s | %s | %s |" % (
        r["spec"], r["seq"], r["heads"], r["heads_kv"], r["head_dim"], r["impl"], r["median_ms"], r["tflops_effective"],
        "%.2fx" % (r["median_ms"] / mine["median_ms"]) if mine and r["impl"] != "bsattn" else "", parts,
        "%.3f" % r["dense_median_ms"] if r.get("dense_median_ms") else "",
        "%.1e" % r["check_rel_err"] if r.get("check_rel_err") is not None else ""))
out += ["", "Correctness: `bsattn run --nsa %s --dtype bf16` with `--backend cuda` against `--backend cpu` (the float64 "
        "compressed branch and selection, the CPU block-sparse branches) on the same inputs (S=4096, H=16, Hkv=4, "
        "D=128, standard normal): relative L2 error %s (selection differences by near ties included)." % (checked, gpu_vs_cpu)]
out += ["", "Context: " + ", ".join("%s %s" % (k, ctx[k]) for k in ("device", "driver", "cuda_runtime", "commit", "date_utc")
                                    if k in ctx) + "; torch %s" % ctx.get("peers", {}).get("torch", "-"), ""]
open(md + ".tmp", "w").write("\n".join(out))
os.replace(md + ".tmp", md)
PY
cat "$OUT/$name.md"
