#!/usr/bin/env bash
# Token orders before dilated attention (issue 20): quality (`bsattn analyze --dilated`: recall and output
# error against dense attention on --synthetic spatial) and speed (`bsattn bench --dilated`) of standard
# order against snake, Hilbert and Gilbert orders on 2D and 3D grids, for two LongNet configurations.
# Writes OUT_DIR/dilated-orders-<backend>-<commit>.md with the JSON it came from (OUT_DIR/json-<commit>/).
#
#   scripts/dilated-orders.sh [--bsattn build/bsattn] [--backend cpu|cuda] [--out results/dilated]
#                             [--heads 8] [--head-dim 64] [--no-bench]
# The CPU backend times the whole computation on the host clock; the cuda backend the branches' kernels
# (lib/dilated/dilated_bench.h says what is included).
set -euo pipefail
cd "$(dirname "$0")/.."
BSATTN=build/bsattn
BACKEND=cpu
OUT=results/dilated
HEADS=8
DIM=64
BENCH=1
while [ $# -gt 0 ]; do
  case "$1" in
    --bsattn) BSATTN=$2; shift 2 ;;
    --backend) BACKEND=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --heads) HEADS=$2; shift 2 ;;
    --head-dim) DIM=$2; shift 2 ;;
    --no-bench) BENCH=0; shift ;;
    *) echo "dilated-orders.sh: unknown argument $1 (allowed: --bsattn --backend --out --heads --head-dim --no-bench)" >&2; exit 2 ;;
  esac
done
COMMIT=$(git rev-parse --short=7 HEAD)
DIRTY=$([ -z "$(git status --porcelain --untracked-files=no)" ] || echo "-dirty")
JSON=$OUT/json-$COMMIT$DIRTY
mkdir -p "$JSON"
# Grids of 3840-4096 tokens: square and non-square 2D, cubic and video-like 3D (Hilbert and Gilbert differ
# on the non-power-of-two ones). LongNet configurations scaled to S = 4096 (LongNet's 2048:1 ... 32768:16).
GRIDS="64x64 48x80 16x16x16 6x20x32"
CONFIGS="256:1,512:2,1024:4 512:1,1024:2,2048:4,4096:8"
ORDERS=standard,snake,hilbert,gilbert
BLOCK=$([ "$BACKEND" = cuda ] && echo 128 || echo 64)
DTYPE=$([ "$BACKEND" = cuda ] && echo bf16 || echo f32)
cmds=()
for g in $GRIDS; do
  seq=$(echo "$g" | tr x '\n' | awk 'BEGIN{p=1}{p*=$1}END{print p}')
  for c in $CONFIGS; do
    tag=$(echo "$g-$c" | tr ':,' '-_')
    cmd=("$BSATTN" analyze --dilated "$c" --synthetic "spatial:grid=$g" --seq "$seq" --heads "$HEADS" --head-dim "$DIM"
         --grid "$g" --order "$ORDERS" --block "$BLOCK" --seed 1 --json "$JSON/analyze-$tag.json" -q)
    echo "${cmd[*]}" >&2
    "${cmd[@]}"
    cmds+=("${cmd[*]}")
  done
  if [ "$BENCH" = 1 ]; then
    cmd=("$BSATTN" bench --backend "$BACKEND" --dilated "$(echo $CONFIGS | tr ' ' ';')" --seq "$seq" --heads "$HEADS"
         --head-dim "$DIM" --block "$BLOCK" --dtype "$DTYPE" --grid "$g" --order "$ORDERS" --min-samples 5
         --max-time 2 --seed 1 --json "$JSON/bench-$g.json" -q)
    echo "${cmd[*]}" >&2
    "${cmd[@]}"
    cmds+=("${cmd[*]}")
  fi
done
MD=$OUT/dilated-orders-$BACKEND-$COMMIT$DIRTY.md
/usr/bin/python3 - "$JSON" "$MD" "$COMMIT$DIRTY" "$BACKEND" "${cmds[@]}" <<'EOF'
import glob, json, os, platform, sys
jdir, md, commit, backend, cmds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
out = ["# Token orders before dilated attention: quality and speed (%s backend, commit %s)" % (backend, commit), "",
       "`scripts/dilated-orders.sh --backend %s` on %s (%s); inputs `--synthetic spatial` (2D/3D RoPE: attention "
       "falls with grid distance), seed 1. An order permutes the grid's tokens before the segments are cut; "
       "`standard` is raster order (the sequence as given). Coverage: the share of dense pairs some branch "
       "computes (the same for every order); recall: the share of each row's dense softmax mass on those pairs "
       "(mean over rows, and the worst row); rel_l2 and cosine: the merged dilated output against exact dense "
       "attention." % (backend, platform.node(), platform.processor() or platform.machine()), ""]
out += ["## Quality (`bsattn analyze --dilated`)", "",
        "| grid | S | configuration | order | coverage | recall | worst row | rel_l2 | cosine |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|"]
for f in sorted(glob.glob(os.path.join(jdir, "analyze-*.json"))):
    d = json.load(open(f))
    grid = "x".join(str(x) for x in d["layout"]["grid"])
    seq = d["layout"]["length"]
    for r in d["orders"]:
        s = r["summary"]
        out.append("| %s | %s | %s | %s | %.4f | %.4f | %.4f | %.3f | %.4f |" % (
            grid, seq, d["dilated"]["spec"], r["order"], s["coverage"], s["recall_mean"], s["recall_min"],
            s["error"]["rel_l2"], s["error"]["cosine"]))
benches = sorted(glob.glob(os.path.join(jdir, "bench-*.json")))
if benches:
    out += ["", "## Speed (`bsattn bench --dilated`)", "",
            "FLOPs = 4 * D * the pairs the branches compute; `vs dense`: dense attention of the same shape in "
            "the same run. " + ("CPU: the whole computation on the host clock (the order applied, each branch's "
            "residue permutation and forward, the merge, the order undone)." if backend == "cpu" else
            "GPU: the branches' kernels summed (CUDA events, L2 flushed); permutations and merge not included."), "",
            "| grid | configuration | order | median ms | noise | eff. GFLOP/s | vs dense |",
            "|---|---|---|---:|---:|---:|---:|"]
    for f in benches:
        d = json.load(open(f))
        grid = os.path.basename(f)[len("bench-"):-len(".json")]
        for r in d["records"]:
            spec, _, order = r["spec"].partition(";order=")
            out.append("| %s | %s | %s | %.2f | %.1f%% | %.1f | %s |" % (
                grid, spec, order, r["median_ms"], 100 * r["rel_noise"], r["tflops_effective"] * 1e3,
                "%.2fx" % r["speedup_vs_dense"] if r.get("speedup_vs_dense") else "-"))
        ctx = d["context"]
    out += ["", "Context: " + ", ".join("%s %s" % (k, ctx[k]) for k in ("device", "cpu_threads", "commit", "dirty",
                                                                         "date_utc") if k in ctx)]
out += ["", "## Commands", "", "```"] + cmds + ["```", ""]
tmp = md + ".tmp"
open(tmp, "w").write("\n".join(out))
os.replace(tmp, md)
print(md)
EOF
