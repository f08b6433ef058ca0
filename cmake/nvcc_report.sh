#!/bin/sh
# CUDA_COMPILER_LAUNCHER of bsattn_kernels: runs the compile command and keeps ptxas's report (the
# -Xptxas=-v lines: registers and spills per kernel, and C75xx notes such as "wgmma.mma_async
# instructions are serialized") beside the object as <object>.ptxas, which tests/ptxas_report.py reads.
# The console gets one line per kernel entry (architecture, registers, spills), any C75xx note, and
# everything else the compiler printed (warnings, errors).
obj=""
prev=""
for a in "$@"; do
  [ "$prev" = "-o" ] && obj=$a
  prev=$a
done
log=$(mktemp) || exit 1
"$@" >"$log" 2>&1
rc=$?
grep -v -E "^ptxas info|bytes stack frame|^ptxas warning : .*(Registers are spilled|stack size)" "$log" >&2
awk -v obj="$(basename "${obj:-?}")" -v q="'" '
  /Compiling entry function/ { split($0, part, q); fn = part[2]; arch = part[4]; spill = "" }
  /bytes stack frame/ { spill = $5 " B spill stores, " $9 " B spill loads" }
  /Used [0-9]+ registers/ { n = $0; sub(/.*Used /, "", n); sub(/ registers.*/, "", n)
                            printf "ptxas %s %s: %s registers, %s  %s\n", arch, obj, n, spill, fn }
  /C75[0-9][0-9]/ { print }
' "$log" | { if command -v c++filt >/dev/null 2>&1; then c++filt; else cat; fi; } |
  sed -e 's/bsattn::cuda::fwd:://g' -e 's/bsattn::cuda:://g' -e 's/(FwdParams)$//; s/(Sm90Params)$//' >&2
if [ -n "$obj" ]; then
  rm -f "$obj.ptxas"
  if [ $rc -eq 0 ]; then
    grep -E "ptxas|bytes stack frame" "$log" >"$obj.ptxas.tmp"
    mv "$obj.ptxas.tmp" "$obj.ptxas"
  fi
fi
rm -f "$log"
exit $rc
