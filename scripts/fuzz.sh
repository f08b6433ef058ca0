#!/usr/bin/env bash
# Builds the fuzz targets of tests/fuzz (clang, libFuzzer, AddressSanitizer + UBSan) in build-fuzz/ and
# runs each for SECONDS (default 60) from its committed seed corpus, tests/fuzz/corpus/<reader>/.
#   scripts/fuzz.sh [SECONDS] [--ci] [--jobs N] [--reader NAME]...
# --reader (repeatable) runs only the named readers (the corpus folder names), e.g. to run two at a time.
# New inputs go to build-fuzz/corpus/<reader>/ (kept across runs; the committed corpus is only read);
# an input that crashes or trips a sanitizer is written to build-fuzz/findings/<reader>-* and the script
# exits 1. --ci: exit 77 (ctest's skip) when clang's libFuzzer is not installed. BSATTN_FUZZ_BUILD
# overrides the build folder.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=60 ci=0 jobs=$(nproc)
only=()
while [ $# -gt 0 ]; do
  case "$1" in
    --ci) ci=1 ;;
    --jobs) jobs="$2"; shift ;;
    --reader) only+=("$2"); shift ;;
    [0-9]*) seconds="$1" ;;
    *) echo "fuzz.sh: unknown argument $1 (allowed: SECONDS, --ci, --jobs N, --reader NAME)" >&2; exit 2 ;;
  esac
  shift
done
build="${BSATTN_FUZZ_BUILD:-build-fuzz}"

# libFuzzer ships with clang's runtime (Debian: clang, libclang-rt-14-dev).
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' >"$probe/p.cpp"
if ! command -v clang++ >/dev/null || ! clang++ -fsanitize=fuzzer "$probe/p.cpp" -o "$probe/p" 2>/dev/null; then
  echo "fuzz.sh: clang++ with -fsanitize=fuzzer is not available (Debian: apt-get install clang libclang-rt-14-dev)" >&2
  [ "$ci" = 1 ] && exit 77
  exit 1
fi

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1" -DBSATTN_FUZZ=ON -DBSATTN_CUDA=OFF -DBSATTN_TESTS=OFF >/dev/null
cmake --build "$build" -j"$jobs" --target fuzz_targets

mkdir -p "$build/findings"
failed=()
for corpus in tests/fuzz/corpus/*/; do
  reader=$(basename "$corpus")
  if [ ${#only[@]} -gt 0 ] && [[ ! " ${only[*]} " == *" $reader "* ]]; then continue; fi
  target="$build/tests/fuzz/fuzz_$reader"
  [ -x "$target" ] || { echo "fuzz.sh: no target for corpus $corpus" >&2; failed+=("$reader"); continue; }
  mkdir -p "$build/corpus/$reader"
  echo "fuzz.sh: $reader for ${seconds}s"
  # Allocations over 1 GiB are findings too: a reader must refuse what it cannot hold, not try.
  if ! ASAN_OPTIONS=allocator_may_return_null=0:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
      LSAN_OPTIONS=suppressions="$PWD/tests/fuzz/lsan.supp" \
      "$target" -max_total_time="$seconds" -rss_limit_mb=3072 -malloc_limit_mb=1024 -timeout=10 \
      -artifact_prefix="$build/findings/$reader-" -print_final_stats=1 \
      "$build/corpus/$reader" "$corpus" >"$build/findings/$reader.log" 2>&1; then
    failed+=("$reader")
    tail -40 "$build/findings/$reader.log" >&2
  fi
  grep -a -E "stat::number_of_executed_units|stat::new_units_added" "$build/findings/$reader.log" | tr '\n' ' '
  echo
done
# Temporary inputs of targets that died (each target removes its own otherwise); only dead pids.
for f in /tmp/bsattn-fuzz-*; do [ -e "$f" ] || continue; pid=${f#/tmp/bsattn-fuzz-}; pid=${pid%%-*}; kill -0 "$pid" 2>/dev/null || rm -f "$f"; done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: findings in: ${failed[*]} (inputs and logs in $build/findings/)" >&2
  exit 1
fi
echo "fuzz.sh: every target ran ${seconds}s without a finding"
