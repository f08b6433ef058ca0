#!/usr/bin/env bash
# The GPU host's one call: configure + build (CUDA on), run the GPU suite (the default kernels by problem,
# then each kernel by name in its own process), run parts of it under compute-sanitizer memcheck and
# racecheck, optionally time this build against another bsattn binary side by side, then
# scripts/bench-gpu.sh. Logs and tables go to $OUT (or ./gpu-check-out).
#
#   scripts/gpu-check.sh --prepare-carry   (here, once) copy the header-only dependencies (Eigen,
#                                          nlohmann-json, doctest, CLI11) into .carry/usr, which `run`
#                                          carries: the GPU host has no Debian -dev packages
#   run(carry=[".carry"], command="BSATTN_COMMIT=<sha> scripts/gpu-check.sh [--no-suite] [--no-sanitizer]
#       [--no-bench | --bench-quick] [--against BSATTN_BINARY] [--ncu]")
# --against BIN: bsattn bench of BIN (the baseline) and of this build in three alternating rounds, bf16,
#   B=1, H=16, block 128, random masks at S=8192 and 32768, D=64 and 128, densities 0.09, 0.5 and 1.0,
#   each build's default kernel; scripts/compare_bench.py writes $OUT/against.md (limit: 2% slower).
# --ncu: also profile the default kernel (bf16, S=8192, D=128, H=16, random mask at d=0.09 and 1.0) with
#   Nsight Compute (--set full, clocks left alone) and dump its SASS; writes $OUT/ncu.tar.gz.
# Each kernel's suite run has BSATTN_SUITE_TIMEOUT seconds (default 300). compute-sanitizer runs the small
# sweeps of the fastest kernel this GPU runs by name (BSATTN_SANITIZE_KERNELS="k1 k2" for others).
set -uo pipefail
cd "$(dirname "$0")/.."
suite=1 sanitizer=1 bench=1 bench_args=() ncu_run=0 against=""
args=("$@")
for ((i = 0; i < ${#args[@]}; ++i)); do
  a=${args[i]}
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
    --no-suite) suite=0 ;;
    --no-sanitizer) sanitizer=0 ;;
    --against) i=$((i + 1)); against=${args[i]:-}
      [ -x "$against" ] || { echo "gpu-check.sh: --against needs an executable bsattn, got '${against}'" >&2; exit 2; } ;;
    --no-bench) bench=0 ;;
    --bench-quick) bench_args=(--quick) ;;
    --ncu) ncu_run=1 ;;
    *) echo "gpu-check.sh: unknown option $a (allowed: --prepare-carry, --no-suite, --no-sanitizer, --no-bench, --bench-quick, --against BIN, --ncu)" >&2; exit 2 ;;
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

kernels=$(build-gpu/bsattn bench --list-kernels 2>/dev/null)
if [ $suite = 1 ]; then
  step "GPU suite (the default kernel of each problem)"
  (cd build-gpu/tests && ./test_gpu -d -tce="forward kernels*" 2>&1) | tee "$OUT/test_gpu.log" | tail -15 | tee -a "$LOG"
  if [ "${PIPESTATUS[0]}" != 0 ]; then status=1; grep -B2 -A12 "ERROR" "$OUT/test_gpu.log" | head -60 | tee -a "$LOG"; fi
  # Each kernel by name, in its own process (a faulting kernel cannot take the others down).
  for k in $kernels; do
    step "GPU suite: $k"
    (cd build-gpu/tests && BSATTN_TEST_KERNEL=$k timeout -k 5 ${BSATTN_SUITE_TIMEOUT:-300} ./test_gpu -tc="forward kernels*" 2>&1) >"$OUT/test_gpu_$k.log"
    if [ $? = 0 ]; then tail -3 "$OUT/test_gpu_$k.log" | tee -a "$LOG"
    else status=1; grep -B2 -A12 "ERROR" "$OUT/test_gpu_$k.log" | head -40 | tee -a "$LOG"; tail -3 "$OUT/test_gpu_$k.log" | tee -a "$LOG"; fi
  done
  # The CLI tests with a GPU branch (run --backend cuda vs cpu, analyze --backend cuda vs cpu).
  step "CLI tests with a GPU"
  for t in tests/python/test_run_dtype.py tests/python/test_analyze_backend.py; do
    python3 "$t" "$PWD/build-gpu/bsattn" "$OUT/py-scratch" 2>&1 | tail -5 | tee -a "$LOG"
    [ "${PIPESTATUS[0]}" = 0 ] || status=1
  done
  rm -rf "$OUT/py-scratch"
fi

if [ $sanitizer = 1 ]; then
  CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  step "compute-sanitizer memcheck (small cases, default kernels, mask build)"
  $CS --tool memcheck --error-exitcode 9 "$T" -tc="forward small: causal*,forward small: varlen,forward small: head types*,forward small: SiLU*,mask build: GPU*" \
    >"$OUT/memcheck.log" 2>&1
  rc=$?; tail -4 "$OUT/memcheck.log" | tee -a "$LOG"; [ $rc = 0 ] || status=1
  # The backward's small cases: each runs the default backward (sm90 on sm_90) and sm80, atomic and
  # deterministic dQ.
  step "compute-sanitizer memcheck + racecheck (backward small cases)"
  timeout -k 5 300 $CS --tool memcheck --error-exitcode 9 "$T" -tc="backward small: causal*,backward small: varlen,backward small: SiLU*" \
    >>"$OUT/memcheck.log" 2>&1
  rc=$?; tail -4 "$OUT/memcheck.log" | tee -a "$LOG"; [ $rc = 0 ] || status=1
  timeout -k 5 300 $CS --tool racecheck --error-exitcode 9 "$T" -tc="backward small: head types*,backward small: varlen" \
    >>"$OUT/racecheck.log" 2>&1
  rc=$?; tail -4 "$OUT/racecheck.log" | tee -a "$LOG"; [ $rc = 0 ] || status=1
  # The default on this GPU by name (BSATTN_SANITIZE_KERNELS: others); the small cases above run the
  # default of each problem, sm80-general among them.
  for k in ${BSATTN_SANITIZE_KERNELS:-$(build-gpu/bsattn bench --list-kernels 2>/dev/null | head -1)}; do
    step "compute-sanitizer memcheck + racecheck ($k, small sweeps)"
    BSATTN_TEST_KERNEL=$k BSATTN_TEST_SMALL=1 timeout -k 5 300 $CS --tool memcheck --error-exitcode 9 "$T" -tc="forward kernels*" \
      >>"$OUT/memcheck.log" 2>&1
    rc=$?; tail -4 "$OUT/memcheck.log" | tee -a "$LOG"; [ $rc = 0 ] || status=1
    BSATTN_TEST_KERNEL=$k BSATTN_TEST_SMALL=1 timeout -k 5 300 $CS --tool racecheck --error-exitcode 9 "$T" -tc="forward kernels*" \
      >>"$OUT/racecheck.log" 2>&1
    rc=$?; tail -4 "$OUT/racecheck.log" | tee -a "$LOG"; [ $rc = 0 ] || status=1
  done
fi

if [ -n "$against" ]; then
  step "this build against $against (3 alternating rounds)"
  A=$OUT/against
  mkdir -p "$A"
  # --dim: the baseline may predate --head-dim (this build takes both)
  axes=(--backend cuda --seq 8192,32768 --dim 64,128 --density 0.09,0.5,1.0 --pattern random --heads 16 --batch 1
        --block 128 --dtype bf16 --pass fwd --min-samples 10 --max-time 0.3 --noise 0.01 --no-ceilings -q)
  for r in 1 2 3; do
    "$against" bench "${axes[@]}" --json "$A/base-$r.json" >>"$A/against.log" 2>&1 || status=1
    build-gpu/bsattn bench "${axes[@]}" --json "$A/new-$r.json" >>"$A/against.log" 2>&1 || status=1
  done
  python3 scripts/compare_bench.py --base "$A"/base-*.json --new "$A"/new-*.json --limit 1.02 \
    --title "$(build-gpu/bsattn --version 2>/dev/null | head -1) against $against" --markdown "$OUT/against.md" \
    | tail -3 | tee -a "$LOG"
  [ "${PIPESTATUS[0]}" = 0 ] || status=1
  (cd "$OUT" && tar czf against.tar.gz against && rm -rf against)
fi

if [ $bench = 1 ] && [ -x scripts/bench-gpu.sh ]; then
  step "scripts/bench-gpu.sh ${bench_args[*]:-} (the default kernels)"
  BSATTN_BUILD=build-gpu timeout -k 5 "${BSATTN_BENCH_TIMEOUT:-1800}" scripts/bench-gpu.sh "${bench_args[@]}" >"$OUT/bench-gpu.log" 2>&1
  rc=$?; tail -20 "$OUT/bench-gpu.log" | tee -a "$LOG"; [ $rc = 0 ] || status=1
fi

if [ $ncu_run = 1 ]; then
  step "ncu and SASS of the default kernel (bf16, S=8192, D=128, random d=0.09 and 1.0)"
  NCU=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
  N="$OUT/ncu"
  mkdir -p "$N"
  # bsattn bench launches the sparse kernel first (2 warm-ups, then 1 sample), then the dense baseline.
  for d in 0.09 1.0; do
    "$NCU" --clock-control none --set full --import-source yes -k regex:fwd_sm --launch-skip 2 \
      --launch-count 1 -f -o "$N/default-d$d" build-gpu/bsattn bench --backend cuda --seq 8192 --head-dim 128 \
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
(cd "$OUT" && tar czf logs.tar.gz build.log ptxas.txt ./*check.log test_gpu*.log bench-gpu.log 2>/dev/null \
  --ignore-failed-read; rm -f build.log ptxas.txt memcheck.log racecheck.log test_gpu*.log bench-gpu.log)
step "summary"
echo "gpu-check status: $([ $status = 0 ] && echo PASS || echo FAIL)" | tee -a "$LOG"
[ -f "$OUT/against.md" ] && cat "$OUT/against.md"
exit $status
