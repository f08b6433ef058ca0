#!/usr/bin/env bash
# The CPU reference forward against its ceiling (issue 25): for dense, causal, random (density 0.1) and
# random + causal masks at S = 2048 and 4096, D = 64 and 128, `bsattn run --time` times the float32
# forward and Eigen's GEMM of the block-pair shape alternately in one process (a warm-up, then --repeat
# times a forward and a ceiling round as long), once per thread count. Writes
# OUT/cpu-ratio-<commit>.md (machine, load, build, commands, the table) and the runs' JSON beside it.
#
#   scripts/cpu-ratio.sh [--bsattn build/bsattn] [--out results/cpu] [--threads 1,2] [--heads 8]
#                        [--repeat 7] [--seq 2048,4096] [--head-dim 64,128]
# Build bsattn with -DBSATTN_NATIVE=ON (scripts/setup.sh does): the ceiling is then Eigen built for this
# CPU's instruction sets, and so is the forward.
set -euo pipefail
cd "$(dirname "$0")/.."
BSATTN=build/bsattn
OUT=results/cpu
THREADS=1,2
HEADS=8
REPEAT=7
SEQS=2048,4096
DIMS=64,128
while [ $# -gt 0 ]; do
  case "$1" in
    --bsattn) BSATTN=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --heads) HEADS=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --seq) SEQS=$2; shift 2 ;;
    --head-dim) DIMS=$2; shift 2 ;;
    *) echo "cpu-ratio.sh: unknown argument $1 (allowed: --bsattn --out --threads --heads --repeat --seq --head-dim)" >&2; exit 2 ;;
  esac
done
[ -x "$BSATTN" ] || { echo "cpu-ratio.sh: $BSATTN is not an executable (give --bsattn PATH)" >&2; exit 2; }
COMMIT=$(git rev-parse --short=7 HEAD)
DIRTY=$([ -z "$(git status --porcelain --untracked-files=no)" ] || echo "-dirty")
JSON=$OUT/cpu-ratio-json-$COMMIT$DIRTY
mkdir -p "$JSON"
NATIVE=$(grep -s '^BSATTN_NATIVE:' "$(dirname "$BSATTN")/CMakeCache.txt" | cut -d= -f2 || true)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
START=$(date -u +"%Y-%m-%d %H:%M:%S")
cmds=()
for t in ${THREADS//,/ }; do
  for s in ${SEQS//,/ }; do
    for d in ${DIMS//,/ }; do
      for mask in dense dense+causal random:density=0.1 random:density=0.1+causal; do
        spec=${mask%+causal}
        causal=()
        [ "$spec" != "$mask" ] && causal=(--causal)
        tag="t$t-s$s-d$d-$(echo "$mask" | sed 's/[:=]/-/g; s/+/_/g')"
        cmd=("$BSATTN" run "$spec" "${causal[@]}" --synthetic decay --seq "$s" --heads "$HEADS" --head-dim "$d"
             --backend cpu --time --repeat "$REPEAT" --threads "$t" --seed 1 --json "$JSON/$tag.json" -q)
        echo "${cmd[*]}" >&2
        "${cmd[@]}" >&2
        cmds+=("${cmd[*]}")
      done
    done
  done
done
END=$(date -u +"%Y-%m-%d %H:%M:%S")
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
MD=$OUT/cpu-ratio-$COMMIT$DIRTY.md
/usr/bin/python3 - "$JSON" "$MD" "$COMMIT$DIRTY" "$NATIVE" "$START" "$END" "$LOAD_BEFORE" "$LOAD_AFTER" "$HEADS" \
    "$REPEAT" "${cmds[@]}" <<'EOF'
import glob, json, os, subprocess, sys
jdir, md, commit, native, start, end, load0, load1, heads, repeat = sys.argv[1:11]
cmds = sys.argv[11:]
lscpu = {}
for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
    k, _, v = line.partition(":")
    lscpu[k.strip()] = v.strip()
flags = lscpu.get("Flags", "").split()
isa = ", ".join(f for f in ["avx2", "fma", "avx512f", "avx512bw", "avx512vl"] if f in flags) or "none of avx2/fma/avx512"
rows = []
for f in glob.glob(os.path.join(jdir, "*.json")):
    j = json.load(open(f))
    sz, m = j["inputs"]["sizes"], j["mask"]
    label = ("dense" if m["pattern"] == "dense" else "random 0.1") + (" + causal" if m["causal"] else "")
    rows.append((j["time"]["threads"], sz["seq"], sz["head_dim"], label, j))
order = ["dense", "dense + causal", "random 0.1", "random 0.1 + causal"]
rows.sort(key=lambda r: (r[0], r[1], r[2], order.index(r[3]) if r[3] in order else 9))
out = ["# CPU reference forward against Eigen's GEMM, side by side (commit %s)" % commit, "",
       "- Machine: %s, %s CPUs (%s thread(s) per core), %s; shared with other users: load average %s before "
       "and %s after the runs (%s to %s UTC)." % (lscpu.get("Model name", "?"), lscpu.get("CPU(s)", "?"),
                                                  lscpu.get("Thread(s) per core", "?"), isa, load0, load1, start, end),
       "- Build: BSATTN_NATIVE=%s (`-march=native` for every C++ target when ON), Release (-O3)." % (native or "unknown"),
       "- Inputs: `--synthetic decay` (seed 1), float32, B=1, H=%s query and key heads, block 128x128. Masks: "
       "`dense`, `dense --causal`, `random:density=0.1` (each row keeps round(0.1 x its blocks), the diagonal "
       "always), and the same with `--causal` (0.1 of each row's visible blocks; at S=2048 most rows keep only "
       "their diagonal block)." % heads,
       "- Each row is one `bsattn run --time --repeat %s` process: a warm-up forward, then %s times the forward "
       "(conversion of the inputs and the finiteness checks included) followed by one round of the ceiling, Eigen's "
       "float32 GEMM 128 x D times D x 128 on every thread at once, calibrated to last about as long as the "
       "forward. FLOPs = 4 x D x computed pairs (causal pairs removed). ratio: forward GFLOP/s over the ceiling round "
       "right after it; the table gives the median ratio and the range over the repetitions, and the medians of the "
       "forward time and of the ceiling (GFLOP/s total over the threads)." % (repeat, repeat), "",
       "| threads | S | D | mask | computed pairs | forward ms (median) | forward GFLOP/s | ceiling GFLOP/s (median) | forward/ceiling (median) | range | >= 0.5 |",
       "|---:|---:|---:|---|---:|---:|---:|---:|---:|---|---|"]
for th, s, d, label, j in rows:
    t = j["time"]
    r = t["ratios"]
    out.append("| %d | %d | %d | %s | %s | %.1f | %.1f | %.1f | %.2f | %.2f-%.2f | %s |" % (
        th, s, d, label, format(t["computed_pairs"], ","), 1e3 * t["forward_seconds_median"], t["forward_gflops"],
        t["ceiling"]["median_gflops"], t["ratio_median"], min(r), max(r), "yes" if t["ratio_median"] >= 0.5 else "no"))
out += ["", "Commands (JSON of each in %s/):" % os.path.basename(jdir), "", "```"] + cmds + ["```", ""]
tmp = md + ".tmp"
open(tmp, "w").write("\n".join(out))
os.replace(tmp, md)
print(md)
EOF
