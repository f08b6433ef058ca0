#!/usr/bin/env bash
# Dilated attention on the GPU host (issue 20): for S = 32768 and 131072 (grids 128x256 and 256x512) and two
# LongNet configurations, standard against Hilbert order: bsattn's time (everything on the GPU: the
# branches on the inputs viewed by rate, no gathers as every rate divides S, the LSE merge) and effective
# TFLOP/s, the plain block-sparse forward at the same pair densities (local and random masks),
# FlexAttention and SDPA flash doing the same dilated attention (scripts/peers.py, their O checked against
# bsattn's), and recall and error against dense
# attention on --synthetic spatial inputs (analyze --sample-rows: 8 heads, 64 rows per head, float64), and the
# GPU output against the CPU reference at S = 8192. Writes
# $OUT/dilated-gpu-<gpu>-<commit>.md and the JSON it came from ($OUT/json-gpu-<commit>/).
#
#   run(carry=[".carry"], command="BSATTN_COMMIT=<sha> scripts/dilated-gpu.sh")   (about 3-4 minutes after the build)
#   OUT (default results/dilated), BSATTN_BUILD (default build-gpu: gpu-check.sh's folder, reused),
#   DILATED_SIZES (default "32768:128x256 131072:256x512": the S:GRID pairs to run)
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/gpu-script-common.sh dilated dilated-gpu.sh
JSON=$OUT/json-gpu-$COMMIT
mkdir -p "$JSON"
CONFIGS="2048:1,4096:2,8192:4;4096:1,8192:2,16384:4,32768:8"
TIMING=(--min-samples 5 --max-time 0.5 --noise 0.02)
cmds=()
run() {
  echo "+ $*" >&2
  cmds+=("$*")
  "$@"
}
for sg in ${DILATED_SIZES:-32768:128x256 131072:256x512}; do
  S=${sg%%:*} G=${sg##*:}
  echo "== S=$S: bsattn bench --dilated ==" >&2
  run "$B" bench --backend cuda --dilated "$CONFIGS" --seq "$S" --heads 16 --head-dim 128 --dtype bf16 --block 128 \
    --grid "$G" --order standard,hilbert "${TIMING[@]}" --seed 1 --json "$JSON/bench-$S.json" -q || exit 1
  # The plain block-sparse forward at the configurations' pair densities.
  dens=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(','.join(sorted({'%.4f' % r['pair_density'] for r in d['records']})))" "$JSON/bench-$S.json")
  run "$B" bench --backend cuda --pattern local,random --density "$dens" --seq "$S" --heads 16 --head-dim 128 \
    --dtype bf16 --block 128 "${TIMING[@]}" --seed 1 --no-ceilings --json "$JSON/plain-$S.json" -q || exit 1
  echo "== S=$S: peers (FlexAttention, SDPA flash) ==" >&2
  # The peers' O is checked against bsattn's at S = 32768 (writing and reading the inputs at 131072 costs more
  # time than this script has).
  check=$([ "$S" = 32768 ] && echo "$B" || echo "")
  run python3 scripts/peers.py --bench "$JSON/bench-$S.json" --bsattn "$check" --impls flex,sdpa_flash \
    --out "$JSON/merged-$S.json" || cp "$JSON/bench-$S.json" "$JSON/merged-$S.json"
  for c in ${CONFIGS//;/ }; do
    tag=$(echo "$c" | tr ':,' '-_')
    # Quality on 8 heads (every offset of rate 8; the heads are alike otherwise): half the inputs to generate.
    run "$B" analyze --dilated "$c" --synthetic "spatial:grid=$G" --seq "$S" --heads 8 --head-dim 128 --grid "$G" \
      --order standard,hilbert --block 128 --sample-rows 64 --seed 1 --json "$JSON/analyze-$S-$tag.json" -q || exit 1
  done
done
# The GPU path (gathers, branches, merge) against the CPU reference on the same bf16 inputs, S = 8192.
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
python3 -c "
import numpy as np
rng = np.random.default_rng(1)
for n in 'qkv':
    np.save('$W/' + n + '.npy', rng.standard_normal((1, 8192, 16, 128)).astype(np.float32))"
for be in cuda cpu; do
  run "$B" run --dilated "${CONFIGS%%;*}" --q "$W/q.npy" --k "$W/k.npy" --v "$W/v.npy" --dtype bf16 --block 128 \
    --backend $be -o "$W/o_$be.npy" -q || exit 1
done
err=$(python3 -c "
import numpy as np
g, c = np.load('$W/o_cuda.npy').astype(np.float64), np.load('$W/o_cpu.npy').astype(np.float64)
print('%.3e' % (np.linalg.norm(g - c) / np.linalg.norm(c)))")
MD=$OUT/dilated-gpu-${gpu:-gpu}-$COMMIT.md
python3 - "$JSON" "$MD" "$COMMIT" "$err" "${CONFIGS%%;*}" "${cmds[@]}" <<'PY'
import glob, json, os, sys
jdir, md, commit, err, cfg, cmds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:]
quality = {}
for f in glob.glob(os.path.join(jdir, "analyze-*.json")):
    d = json.load(open(f))
    for r in d["orders"]:
        quality[(d["layout"]["length"], d["dilated"]["spec"], r["order"])] = r["summary"]
out = ["# Dilated attention on the GPU (issue 20), commit %s" % commit, "",
       "`scripts/dilated-gpu.sh`: bf16, B=1, H=16, D=128, block 128, non-causal. bsattn: everything on the GPU from "
       "the inputs (in the token order) to the merged output (each branch's block-sparse forward on the inputs "
       "viewed as [S/r, r*H, D], the fused LSE merge), CUDA events, L2 flushed. flex_dilated / sdpa_dilated: "
       "the same computation in PyTorch end to end (scripts/peers.py), flex_dilated_branches: its flex_attention "
       "calls alone. Recall and error: `analyze --dilated --sample-rows 64` on `--synthetic spatial` inputs (8 "
       "heads, every offset of the rates; 64 query rows per head, float64, against exact dense attention). `check`: relative L2 error of the peer's O "
       "against `bsattn run --dilated --backend cuda` on the same inputs (smallest S).", ""]
ctx = None
for f in sorted(glob.glob(os.path.join(jdir, "merged-*.json")), key=lambda x: int(x.split("-")[-1][:-5])):
    d = json.load(open(f))
    ctx = d["context"]
    recs = d["records"]
    S = recs[0]["seq"]
    out += ["## S = %d" % S, "",
            "| configuration | order | impl | pair density | ms | eff. TFLOP/s | impl time / bsattn time | gather / branches / merge ms | recall | rel. L2 error | check |",
            "|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|"]
    ours = {r["spec"]: r for r in recs if r["impl"] == "bsattn"}
    for r in sorted(recs, key=lambda r: (r["spec"].split(";")[0], r["spec"], r["impl"] != "bsattn", r["impl"])):
        spec, _, order = r["spec"].partition(";order=")
        q = quality.get((S, spec, order))
        mine = ours.get(r["spec"])
        parts = ("%.3f / %.3f / %.3f" % (r["gather_ms"], r["branches_ms"], r["merge_ms"])) if r.get("gather_ms") is not None else ""
        out.append("| %s | %s | %s | %.4f | %.3f | %.1f | %s | %s | %s | %s | %s |" % (
            spec, order, r["impl"], r["pair_density"], r["median_ms"], r["tflops_effective"],
            "%.2fx" % (r["median_ms"] / mine["median_ms"]) if mine and r["impl"] != "bsattn" else "",
            parts, "%.4f" % q["recall_mean"] if q else "", "%.3f" % q["error"]["rel_l2"] if q else "",
            "%.1e" % r["check_rel_err"] if r.get("check_rel_err") is not None else ""))
    plain = os.path.join(jdir, "plain-%d.json" % S)
    if os.path.exists(plain):
        out += ["", "Plain block-sparse forward at the same pair densities (same run, `bench --pattern local,random`):", "",
                "| pattern | density | ms | eff. TFLOP/s |", "|---|---:|---:|---:|"]
        for r in json.load(open(plain))["records"]:
            out.append("| %s | %.4f | %.3f | %.1f |" % (r["pattern"], r["density"], r["median_ms"], r["tflops_effective"]))
    out.append("")
out += ["Correctness: `bsattn run --dilated %s --dtype bf16` with `--backend cuda` against `--backend cpu` (float32 "
        "reference) on the same inputs (S=8192, H=16, D=128, standard normal): relative L2 error %s." % (cfg, err), ""]
if ctx:
    out += ["Context: " + ", ".join("%s %s" % (k, ctx[k]) for k in ("device", "driver", "cuda_runtime", "commit", "date_utc")
                                    if k in ctx) + "; torch %s" % ctx.get("peers", {}).get("torch", "-"), ""]
out += ["## Commands", "", "```"] + cmds + ["```", ""]
open(md + ".tmp", "w").write("\n".join(out))
os.replace(md + ".tmp", md)
print(md)
PY
cat "$MD"
