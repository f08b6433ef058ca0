#!/usr/bin/env bash
# The GPU host's one call: configure + build (CUDA on), run the GPU suite, run parts of it under
# compute-sanitizer memcheck and racecheck, time the forward kernel (table) and the adaptive mask build,
# then scripts/bench-gpu.sh if it exists. Logs and tables go to $OUT (or ./gpu-check-out).
#
#   scripts/gpu-check.sh --prepare-carry   (here, once) copy the header-only dependencies (Eigen,
#                                          nlohmann-json, doctest, CLI11) into .carry/usr, which `run`
#                                          carries: the GPU host has no Debian -dev packages
#   run(carry=[".carry"], command="BSATTN_COMMIT=<sha> scripts/gpu-check.sh [--no-table] [--no-sanitizer]
#       [--no-bench | --bench-quick] [--ncu]")
# --ncu: also profile the default kernel (bf16, S=8192, D=128, H=16, random mask at d=0.09 and 1.0) with
# Nsight Compute (--set full, clocks left alone) and dump its SASS; writes $OUT/ncu.tar.gz.
# The Hopper wg-* kernels each run the GPU suite in their own process (BSATTN_SUITE_TIMEOUT seconds
# each, default 300). The forward table times $BSATTN_FWD_VARIANTS (default: the default kernel and the
# wg-* kernels that passed the suite). The benchmark runs the kernel whose worst effective TFLOP/s over
# the table's densities is highest.
set -uo pipefail
cd "$(dirname "$0")/.."
table=1 sanitizer=1 bench=1 bench_args=() ncu_run=0
for a in "$@"; do
  case "$a" in
    --prepare-carry)
      set -e
      mkdir -p .carry/usr/include .carry/usr/share/cmake .carry/usr/lib/cmake
      mkdir -p .carry/usr/share/eigen3
      cp -r /usr/include/nlohmann /usr/include/doctest /usr/include/CLI /usr/include/eigen3 .carry/usr/include/
      cp -r /usr/share/eigen3/cmake .carry/usr/share/eigen3/
      cp -r /usr/share/cmake/nlohmann_json /usr/share/cmake/CLI11 .carry/usr/share/cmake/
      cp -r /usr/lib/cmake/doctest .carry/usr/lib/cmake/
      # doctest's exported targets hard-code /usr: make them relative to the carried tree.
      sed -i 's|set(_IMPORT_PREFIX "/usr")|get_filename_component(_IMPORT_PREFIX "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)|' \
        .carry/usr/lib/cmake/doctest/doctestTargets.cmake
      echo "prepared .carry/usr ($(du -sh .carry | cut -f1))"
      exit 0 ;;
    --no-table) table=0 ;;
    --no-sanitizer) sanitizer=0 ;;
    --no-bench) bench=0 ;;
    --bench-quick) bench_args=(--quick) ;;
    --ncu) ncu_run=1 ;;
    *) echo "gpu-check.sh: unknown option $a (allowed: --prepare-carry, --no-table, --no-sanitizer, --no-bench, --bench-quick, --ncu)" >&2; exit 2 ;;
  esac
done
OUT=${OUT:-$PWD/gpu-check-out}
mkdir -p "$OUT"
LOG=$OUT/gpu-check.log
status=0
t_start=$(date +%s)
step() { echo "== $* (t+$(( $(date +%s) - t_start ))s) ==" | tee -a "$LOG"; }
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  # The GPU host's copy has no .git: pass BSATTN_COMMIT=<sha> in the run command.
  echo "commit: ${BSATTN_COMMIT:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv 2>&1
  nvcc --version | tail -2
} | tee "$LOG"

step "configure + build"
export PATH=/usr/local/cuda/bin:$PATH
# This host's GPU only (sm_90a): half the device code of the default 80-real;90a-real build.
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DBSATTN_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a-real \
  -DCMAKE_PREFIX_PATH="$PWD/.carry/usr" >"$OUT/build.log" 2>&1 &&
  cmake --build build-gpu -j"$(nproc)" --target test_gpu bsattn >>"$OUT/build.log" 2>&1
rc=$?
if [ $rc -ne 0 ] && [ -d build-gpu ]; then
  # test_gpu waits for the bsattn executable (ctest's python tests need it); when someone else's
  # half-written app file breaks bsattn, build everything else and link test_gpu by its own command.
  echo "build of test_gpu failed; building what does not depend on the failure and linking test_gpu directly" | tee -a "$LOG"
  grep -m3 "error" "$OUT/build.log" | tee -a "$LOG"
  ninja -C build-gpu -k 0 test_gpu >>"$OUT/build.log" 2>&1
  (cd build-gpu && ninja -t commands tests/test_gpu | grep "test_gpu" | while read -r cmd; do
     eval "$cmd" || exit 1
   done) >>"$OUT/build.log" 2>&1
  rc=$?
fi
grep -E "registers|spill|C75[0-9][0-9]" "$OUT/build.log" | sort | uniq -c | sort -rn | head -30 >"$OUT/ptxas.txt" || true
if [ $rc -ne 0 ]; then
  tail -40 "$OUT/build.log" | tee -a "$LOG"
  echo "BUILD FAILED" | tee -a "$LOG"
  exit 1
fi
T=build-gpu/tests/test_gpu

step "GPU suite"
(cd build-gpu/tests && ./test_gpu -d -tce="forward sm90*" 2>&1) | tee "$OUT/test_gpu.log" | tail -15 | tee -a "$LOG"
suite_ok=0
if [ "${PIPESTATUS[0]}" = 0 ]; then suite_ok=1; else status=1; grep -B2 -A12 "ERROR" "$OUT/test_gpu.log" | head -60 | tee -a "$LOG"; fi
# The Hopper kernels, each in its own process (a faulting kernel cannot take the others down).
verified=""
for v in $(build-gpu/bsattn bench --list-kernels 2>/dev/null | grep "^wg-"); do
  step "GPU suite: $v"
  (cd build-gpu/tests && BSATTN_WG_VARIANT=$v timeout -k 5 ${BSATTN_SUITE_TIMEOUT:-300} ./test_gpu -tc="forward sm90*" 2>&1) >"$OUT/test_gpu_$v.log"
  if [ $? = 0 ]; then verified="$verified,$v"; tail -3 "$OUT/test_gpu_$v.log" | tee -a "$LOG"
  else status=1; grep -B2 -A12 "ERROR" "$OUT/test_gpu_$v.log" | head -40 | tee -a "$LOG"; tail -3 "$OUT/test_gpu_$v.log" | tee -a "$LOG"; fi
done
echo "verified Hopper kernels: ${verified#,}" | tee -a "$LOG"
# The CLI tests with a GPU branch (run --backend cuda vs cpu, analyze --backend cuda vs cpu).
step "CLI tests with a GPU"
for t in tests/python/test_run_dtype.py tests/python/test_analyze_backend.py; do
  python3 "$t" "$PWD/build-gpu/bsattn" "$OUT/py-scratch" 2>&1 | tail -5 | tee -a "$LOG"
  [ "${PIPESTATUS[0]}" = 0 ] || status=1
done
rm -rf "$OUT/py-scratch"
# Under compute-sanitizer: the default wg-tma-ws-ppf (or the kernels in $BSATTN_SANITIZE_WG)
# when they passed, else the first verified one.
sanitize_wg=""
for pref in ${BSATTN_SANITIZE_WG:-wg-tma-ws-ppf}; do
  echo "${verified#,}" | tr ',' '\n' | grep -qx "$pref" && sanitize_wg="$sanitize_wg $pref"
done
[ -n "$sanitize_wg" ] || sanitize_wg=$(echo "${verified#,}" | cut -d, -f1)

if [ $table = 1 ]; then
  step "forward table + mask build vs attention"
  # A kernel that failed the suite may fault and end the table early: then time the default alone.
  # Asked-for wg-* kernels that failed the suite are dropped (a fault would end the whole table).
  if [ -n "${BSATTN_FWD_VARIANTS:-}" ]; then
    kept=""
    for v in ${BSATTN_FWD_VARIANTS//,/ }; do
      case "$v" in
        wg-*) if echo "${verified#,}" | tr ',' '\n' | grep -qx "$v"; then kept="$kept,$v"
              else echo "forward table: $v failed the GPU suite, not timed" | tee -a "$LOG"; fi ;;
        *) kept="$kept,$v" ;;
      esac
    done
    BSATTN_FWD_VARIANTS=${kept#,}
  fi
  export BSATTN_FWD_VARIANTS=${BSATTN_FWD_VARIANTS:-fa2-v4-w4-h$verified}
  BSATTN_FWD_TABLE="$OUT" BSATTN_COMMAND="BSATTN_FWD_VARIANTS=$BSATTN_FWD_VARIANTS scripts/gpu-check.sh $*" \
    "$T" -tc="forward table*,mask build vs*" \
    >"$OUT/table.log" 2>&1
  rc=$?; tail -3 "$OUT/table.log" | tee -a "$LOG"; [ $rc = 0 ] || status=1
  # The driver release (the CUDA API only gives its API level): after the GPU line of each table.
  drv=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)
  for t in "$OUT/forward-table.md" "$OUT/mask-build.md"; do
    [ -f "$t" ] && [ -n "$drv" ] && sed -i "/^GPU: /a Driver: $drv (nvidia-smi)" "$t"
  done
fi

if [ $sanitizer = 1 ]; then
  CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  step "compute-sanitizer memcheck (small cases)"
  $CS --tool memcheck --error-exitcode 9 "$T" -tc="forward small: causal*,forward small: varlen,forward small: head types*,mask build: GPU*" \
    >"$OUT/memcheck.log" 2>&1
  rc=$?; tail -4 "$OUT/memcheck.log" | tee -a "$LOG"; [ $rc = 0 ] || status=1
  for wgv in $sanitize_wg; do
    step "compute-sanitizer memcheck + racecheck ($wgv, small sweeps)"
    BSATTN_WG_VARIANT=$wgv BSATTN_WG_SMALL=1 timeout -k 5 240 $CS --tool memcheck --error-exitcode 9 "$T" -tc="forward sm90*" \
      >>"$OUT/memcheck.log" 2>&1
    rc=$?; tail -4 "$OUT/memcheck.log" | tee -a "$LOG"; [ $rc = 0 ] || status=1
    BSATTN_WG_VARIANT=$wgv BSATTN_WG_SMALL=1 timeout -k 5 240 $CS --tool racecheck --error-exitcode 9 "$T" -tc="forward sm90*" \
      >>"$OUT/racecheck.log" 2>&1
    rc=$?; tail -4 "$OUT/racecheck.log" | tee -a "$LOG"; [ $rc = 0 ] || status=1
  done
  step "compute-sanitizer racecheck (small cases)"
  $CS --tool racecheck --error-exitcode 9 "$T" -tc="forward small: varlen,forward small: SiLU*" \
    >>"$OUT/racecheck.log" 2>&1
  rc=$?; tail -4 "$OUT/racecheck.log" | tee -a "$LOG"; [ $rc = 0 ] || status=1
fi

if [ $bench = 1 ] && [ -x scripts/bench-gpu.sh ]; then
  kernel=""
  if [ -f "$OUT/forward-table.json" ]; then
    # The verified variant whose worst effective TFLOP/s over the table's densities is highest.
    kernel=$(python3 - "$OUT/forward-table.json" <<'PY'
import json, sys
recs = json.load(open(sys.argv[1]))
recs = recs.get("records", recs) if isinstance(recs, dict) else recs
worst = {}
for r in recs:
    v, t = r.get("variant"), r.get("effective_tflops")
    if v is None or t is None: continue
    worst[v] = min(worst.get(v, float("inf")), t)
print(max(worst, key=worst.get) if worst else "")
PY
)
  fi
  step "scripts/bench-gpu.sh ${bench_args[*]:-} (kernel: ${kernel:-default})"
  BSATTN_BUILD=build-gpu BSATTN_BENCH_KERNEL="$kernel" timeout -k 5 "${BSATTN_BENCH_TIMEOUT:-1800}" scripts/bench-gpu.sh "${bench_args[@]}" >"$OUT/bench-gpu.log" 2>&1
  rc=$?; tail -20 "$OUT/bench-gpu.log" | tee -a "$LOG"; [ $rc = 0 ] || status=1
fi

if [ $ncu_run = 1 ]; then
  step "ncu and SASS of the default kernel (bf16, S=8192, D=128, random d=0.09 and 1.0)"
  NCU=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
  N="$OUT/ncu"
  mkdir -p "$N"
  # bsattn bench launches the sparse kernel first (2 warm-ups, then 1 sample), then the dense baseline.
  for d in 0.09 1.0; do
    "$NCU" --clock-control none --set full --import-source yes -k regex:attention_fwd_kernel --launch-skip 2 \
      --launch-count 1 -f -o "$N/default-d$d" build-gpu/bsattn bench --backend cuda --seq 8192 --dim 128 \
      --heads 16 --block 128 --dtype bf16 --density "$d" --pattern random --warmup 2 --min-samples 1 \
      --max-samples 1 --no-ceilings -q >"$N/default-d$d.log" 2>&1
    rc=$?; tail -2 "$N/default-d$d.log" | tee -a "$LOG"; [ $rc = 0 ] || status=1
    "$NCU" --import "$N/default-d$d.ncu-rep" --page details >"$N/default-d$d.txt" 2>&1
    "$NCU" --import "$N/default-d$d.ncu-rep" --page source --csv --print-source sass >"$N/default-d$d-sass.csv" 2>&1
    grep -E "Duration|Issue Slots Busy|Warp Cycles Per Issued|Stall" "$N/default-d$d.txt" | head -12 | tee -a "$LOG"
  done
  # the profiled kernel's mangled name, from the report (no hard-coded traits to keep in step)
  fn=$("$NCU" --import "$N/default-d1.0.ncu-rep" --print-kernel-base mangled --page details 2>/dev/null |
    grep -o "_ZN6bsattn4cuda3fwd[A-Za-z0-9_]*" | head -1)
  [ -n "$fn" ] || echo "ncu: no kernel name in the d=1.0 report, SASS not dumped" | tee -a "$LOG"
  [ -n "$fn" ] && cuobjdump -sass -fun "$fn" build-gpu/bsattn >"$N/default-kernel.sass" 2>&1
  (cd "$OUT" && tar czf ncu.tar.gz ncu && rm -rf ncu)
fi

# The device tool returns at most 8 files: keep the summary log and tables, pack the detailed logs.
(cd "$OUT" && tar czf logs.tar.gz build.log ptxas.txt ./*check.log test_gpu*.log table.log bench-gpu.log 2>/dev/null \
  --ignore-failed-read; rm -f build.log ptxas.txt memcheck.log racecheck.log test_gpu*.log table.log bench-gpu.log)
step "summary"
echo "gpu-check status: $([ $status = 0 ] && echo PASS || echo FAIL)" | tee -a "$LOG"
[ -f "$OUT/forward-table.md" ] && cat "$OUT/forward-table.md"
[ -f "$OUT/mask-build.md" ] && tail -1 "$OUT/mask-build.md"
exit $status
