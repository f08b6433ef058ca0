#!/bin/sh
# CUDA_COMPILER_LAUNCHER of bsattn_kernels: runs the compile command, passes its output on, and keeps
# ptxas's report (the -Xptxas=-v lines: registers and spills per kernel, and C75xx notes such as
# "wgmma.mma_async instructions are serialized") beside the object as <object>.ptxas, which
# tests/ptxas_report.py reads.
obj=""
prev=""
for a in "$@"; do
  [ "$prev" = "-o" ] && obj=$a
  prev=$a
done
log=$(mktemp) || exit 1
"$@" >"$log" 2>&1
rc=$?
cat "$log" >&2
if [ -n "$obj" ]; then
  rm -f "$obj.ptxas"
  if [ $rc -eq 0 ]; then
    grep -E "ptxas|bytes stack frame" "$log" >"$obj.ptxas.tmp"
    mv "$obj.ptxas.tmp" "$obj.ptxas"
  fi
fi
rm -f "$log"
exit $rc
