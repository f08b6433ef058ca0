#!/usr/bin/env python3
"""Reads ptxas's report of every kernel object (<object>.ptxas, kept by cmake/nvcc_report.sh) and fails
when the forward family builds more than 32 kernel entries per dtype and architecture (one kernel per job:
retired variants stay in git history, not in the build), or when ptxas says it serialized wgmma instructions (notes C7500-C7599, "Potential Performance Loss"): such
a kernel still computes the right result, so no correctness test sees it, but each wgmma then waits for
the one before (wg-tma-ws-pps lost 30%: results/forward/forward-h200-pps.md).

usage: ptxas_report.py OBJECT_DIR   (exit 0: none; 1: some, listed; 77: no sm_90a kernels were built)
"""
import pathlib
import re
import sys

ENTRY = re.compile(r"Compiling entry function '([^']+)' for '(sm_\w+)'")
FWD_OBJECT = re.compile(r"fwd_(\w+?)_d\d+\.cu\.o\.ptxas$")  # kernels/fwd/fwd_<dtype>_d<D>.cu
# per dtype and architecture: at head dims 64 and 128, sm90-ws (128-row items: softmax, SiLU, SiLU with
# HSTU's relative bias; 64-row items: softmax, SiLU), sm80, sm80-general (block_q 64/128 x softmax/SiLU/SiLU
# with the bias): 12 each; at head dim 256, sm90-ws (128-row items: softmax, SiLU) and sm80-general: 8
MAX_FWD_ENTRIES = 32
NOTE = re.compile(r"\((C75\d\d)\)\s*(.*)")


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    root = pathlib.Path(sys.argv[1])
    reports = sorted(root.rglob("*.ptxas"))
    if not reports:
        print(f"no ptxas reports under {root}: the kernels were not compiled through cmake/nvcc_report.sh")
        return 1
    entries, sm90, notes = 0, 0, []
    fwd_entries = {}  # (dtype, arch) -> kernel entries of the forward family
    for rep in reports:
        fwd = FWD_OBJECT.search(rep.name)
        for line in rep.read_text(errors="replace").splitlines():
            m = ENTRY.search(line)
            if m:
                entries += 1
                sm90 += m.group(2).startswith("sm_90")
                if fwd:
                    key = (fwd.group(1), m.group(2))
                    fwd_entries[key] = fwd_entries.get(key, 0) + 1
                continue
            n = NOTE.search(line)
            if n:
                notes.append(f"{rep.name}: {n.group(1)} {n.group(2)}")
    print(f"{len(reports)} reports, {entries} kernel entries ({sm90} for sm_90)")
    for (dtype, arch), n in sorted(fwd_entries.items()):
        print(f"forward family, {dtype} {arch}: {n} kernel entries")
    over = {k: n for k, n in fwd_entries.items() if n > MAX_FWD_ENTRIES}
    if over:
        print(f"more than {MAX_FWD_ENTRIES} forward kernel entries per dtype and architecture: {over}")
        return 1
    if notes:
        print(f"ptxas serialized wgmma in {len(notes)} place(s):")
        for n in notes:
            print("  " + n)
        return 1
    if sm90 == 0:
        print("no sm_90 kernels in this build (CMAKE_CUDA_ARCHITECTURES): nothing to check")
        return 77
    print("no C75xx note: no kernel has its wgmma serialized")
    return 0


if __name__ == "__main__":
    sys.exit(main())
