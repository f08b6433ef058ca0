#!/usr/bin/env python3
"""Compares two builds of bsattn timed side by side: `bsattn bench --json` documents of a baseline build
and of a candidate build, taken in alternating rounds in one run. For each configuration (pattern, seq,
head_dim, density target, causal) it takes the median over rounds of each build's median time and
reports the candidate's time over the baseline's; --limit fails (exit 1) when any is above it.

usage: compare_bench.py --base A1.json [A2.json ...] --new B1.json [B2.json ...]
                        [--markdown FILE] [--limit 1.02] [--title TEXT]
"""
import argparse
import json
import statistics
import sys


def load(paths):
    """configuration -> list of median_ms (one per document), and the documents' contexts"""
    times, contexts = {}, []
    for path in paths:
        doc = json.load(open(path))
        contexts.append(doc.get("context", {}))
        for r in doc.get("records", []):
            if r.get("impl", "bsattn") != "bsattn" or r.get("median_ms") is None:
                continue
            key = (r["pattern"], r["seq"], r["head_dim"], r.get("density_target"), bool(r.get("causal")))
            times.setdefault(key, []).append((r["median_ms"], r.get("density"), r.get("tflops_effective")))
    return times, contexts


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", nargs="+", required=True)
    ap.add_argument("--new", nargs="+", required=True)
    ap.add_argument("--markdown")
    ap.add_argument("--limit", type=float, default=None, help="largest allowed new/base time ratio")
    ap.add_argument("--title", default="candidate against baseline")
    a = ap.parse_args()
    base, bctx = load(a.base)
    new, nctx = load(a.new)
    keys = sorted(set(base) & set(new), key=lambda k: (k[0], k[4], k[1], k[2], k[3] or 0))
    if not keys:
        print("compare_bench.py: the two sets share no configuration", file=sys.stderr)
        return 2
    def ctx(c, k):
        return c[0].get(k) if c else None
    lines = [f"# {a.title}", ""]
    lines.append(f"GPU: {ctx(nctx, 'gpu')}; baseline kernel: {ctx(bctx, 'kernel') or 'the default'} (build "
                 f"{ctx(bctx, 'build_commit')}), candidate kernel: {ctx(nctx, 'kernel') or 'the default'} (build "
                 f"{ctx(nctx, 'build_commit')}); "
                 f"{len(a.base)} and {len(a.new)} rounds, alternating; each time the median over rounds of "
                 "each round's median.")
    lines.append("")
    lines.append("| pattern | causal | S | D | density | base ms | new ms | new/base | base TFLOP/s | new TFLOP/s | rounds (base / new ms) |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    worst = 0.0
    for k in keys:
        bt = statistics.median(t for t, _, _ in base[k])
        nt = statistics.median(t for t, _, _ in new[k])
        btf = statistics.median(x for _, _, x in base[k] if x is not None) if any(x for _, _, x in base[k]) else None
        ntf = statistics.median(x for _, _, x in new[k] if x is not None) if any(x for _, _, x in new[k]) else None
        ratio = nt / bt
        worst = max(worst, ratio)
        dens = base[k][0][1]
        rounds = " ".join(f"{t:.4f}" for t, _, _ in base[k]) + " / " + " ".join(f"{t:.4f}" for t, _, _ in new[k])
        lines.append(f"| {k[0]} | {'yes' if k[4] else 'no'} | {k[1]} | {k[2]} | {dens:.3f} | {bt:.4f} | {nt:.4f} | "
                     f"{ratio:.3f} | {btf:.0f} | {ntf:.0f} | {rounds} |")
    lines.append("")
    verdict = f"worst new/base time ratio: {worst:.3f}"
    if a.limit is not None:
        verdict += f" (limit {a.limit}: {'met' if worst <= a.limit else 'NOT met'})"
    lines.append(verdict)
    text = "\n".join(lines) + "\n"
    if a.markdown:
        with open(a.markdown + ".tmp", "w") as f:
            f.write(text)
        import os
        os.replace(a.markdown + ".tmp", a.markdown)
    print(text)
    return 1 if a.limit is not None and worst > a.limit else 0


if __name__ == "__main__":
    sys.exit(main())
