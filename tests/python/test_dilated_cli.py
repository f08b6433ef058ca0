"""bsattn run / analyze / bench --dilated: LongNet dilated attention from the command line.

Usage: test_dilated_cli.py BSATTN_BINARY SCRATCH_DIR. NumPy writes Q/K/V (BHSD, GQA) and computes dilated
attention from the definition in float64 (per head h, branch (w, r): inside each segment the tokens whose
position mod r is h mod r attend to each other; branches merged by their log-sum-exps; a token no branch
selects gets O = 0 and LSE = -inf); `run --dilated` must agree within 1e-5 (float32 accumulation), with the
gradients (--do) too, and in a token order (--order hilbert --grid: the same computation on the reordered
sequence, outputs back in the original order). Bad specs exit 2 with one line naming the problem; analyze
prints one row per order; bench writes dilated records; scripts/peer_records.py's residue order and pair
count agree with bsattn's.
"""
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import CliTest  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import peer_records as pr  # noqa: E402

t = CliTest("dilated_cli")


def bsattn(*args, expect=0):
    p = subprocess.run([t.bin, *args], capture_output=True, text=True)
    t.check(p.returncode == expect, f"{' '.join(args)}: exit {p.returncode}, wanted {expect}; {p.stderr.strip()}")
    return p


def reference(q, k, v, branches, causal, d_o=None):
    """float64, BHSD; returns O, LSE (and dQ, dK, dV with d_o) from the definition, order as given."""
    B, H, S, D = q.shape
    G = H // k.shape[1]
    o = np.zeros((B, H, S, D))
    lse = np.full((B, H, S), -np.inf)
    grads = [np.zeros(q.shape), np.zeros(k.shape), np.zeros(v.shape)]
    pos = np.arange(S)
    for h in range(H):
        m = np.zeros((S, S))  # how many branches relate query i and key j
        for w, r in branches:
            same = (pos[:, None] // w) == (pos[None, :] // w)
            sel = (pos % r) == (h % r)
            mm = same & sel[:, None] & sel[None, :]
            if causal:
                mm &= pos[None, :] <= pos[:, None]
            m += mm
        for b in range(B):
            qq, kk, vv = q[b, h].astype(np.float64), k[b, h // G].astype(np.float64), v[b, h // G].astype(np.float64)
            s = qq @ kk.T / np.sqrt(D)
            s = np.where(m > 0, s, -np.inf)
            mx = s.max(axis=1, keepdims=True)
            rows = np.isfinite(mx[:, 0])
            e = np.where(m > 0, m * np.exp(s - np.where(rows[:, None], mx, 0)), 0)
            den = e.sum(axis=1)
            p = np.where(rows[:, None], e / np.where(rows, den, 1)[:, None], 0)
            o[b, h] = p @ vv
            lse[b, h] = np.where(rows, mx[:, 0] + np.log(np.where(rows, den, 1)), -np.inf)
            if d_o is not None:
                do = d_o[b, h].astype(np.float64)
                dp = do @ vv.T
                ds = p * (dp - (do * o[b, h]).sum(axis=1, keepdims=True))
                grads[0][b, h] += ds @ kk / np.sqrt(D)
                grads[1][b, h // G] += ds.T @ qq / np.sqrt(D)
                grads[2][b, h // G] += p.T @ do
    return o, lse, grads


def rel(a, b):
    return float(np.abs(a - b).max() / max(1.0, np.abs(b).max()))


rng = np.random.default_rng(3)
B, H, HKV, S, D = 2, 4, 2, 96, 16
q = (rng.standard_normal((B, H, S, D)) * 1.5).astype(np.float32)
k = (rng.standard_normal((B, HKV, S, D)) * 1.5).astype(np.float32)
v = rng.standard_normal((B, HKV, S, D)).astype(np.float32)
d_o = rng.standard_normal((B, H, S, D)).astype(np.float32)
for name, x in (("q", q), ("k", k), ("v", v), ("do", d_o)):
    np.save(t.path(name + ".npy"), x)
IN = ["--q", t.path("q.npy"), "--k", t.path("k.npy"), "--v", t.path("v.npy"), "--layout", "bhsd", "--backend", "cpu"]

# Tails (96 = 2.x segments of 40), rates 1/2/4, GQA, batch 2, causal and not, blocks that split class runs.
for spec, causal, block in (("16:1,40:2,64:4", False, "8"), ("16:1,40:2,64:4", True, "16"), ("24:4", False, "4")):
    branches = [tuple(int(x) for x in it.split(":")) for it in spec.split(",")]
    extra = ["--causal"] if causal else []
    out, lse_p = t.path("o.npy"), t.path("lse.npy")
    grads = [t.path(g + ".npy") for g in ("dq", "dk", "dv")]
    bsattn("run", "--dilated", spec, *IN, "--block", block, "-o", out, "--lse", lse_p, "--do", t.path("do.npy"),
           "--dq", grads[0], "--dk", grads[1], "--dv", grads[2], "-q", *extra)
    want_o, want_lse, want_g = reference(q, k, v, branches, causal, d_o)
    got_lse = np.load(lse_p)
    t.check(rel(np.load(out), want_o) < 1e-5, f"{spec} causal={causal}: O against the definition ({rel(np.load(out), want_o):.2e})")
    fin = np.isfinite(want_lse)
    t.check((np.isfinite(got_lse) == fin).all() and rel(got_lse[fin], want_lse[fin]) < 1e-5,
            f"{spec} causal={causal}: LSE against the definition (-inf where no branch selects a token)")
    for g, w in zip(grads, want_g):
        t.check(rel(np.load(g), w) < 5e-5, f"{spec} causal={causal}: {os.path.basename(g)} ({rel(np.load(g), w):.2e})")
    if spec == "24:4":
        # Heads 0..3 take offsets 0..3 with rate 4: every token is covered by exactly one head.
        t.check(int(np.isinf(got_lse).sum()) == B * S * (H - 1), "24:4: each token selected by one head only")

# A token order before dilation: the definition applied to the reordered sequence, returned in the original order.
grid = "8x12"
bsattn("run", "--dilated", "32:2", *IN, "--order", "hilbert", "--grid", grid, "-o", t.path("oh.npy"), "--json",
           t.path("run.json"), "-q")
perm_p = t.path("perm.npy")
bsattn("gen-mask", "--pattern", "dense", "--seq", str(S), "--block", "16", "--order", "hilbert", "--grid", grid,
       "-o", t.path("unused.npy"), "--emit-permutation", perm_p, "-q")
perm = np.load(perm_p)
want_o, _, _ = reference(q[:, :, perm], k[:, :, perm], v[:, :, perm], [(32, 2)], False)
got = np.load(t.path("oh.npy"))[:, :, perm]  # into the Hilbert order: position j holds token perm[j]
t.check(rel(got, want_o) < 1e-5, f"--order hilbert: the definition on the reordered sequence ({rel(got, want_o):.2e})")
js = json.load(open(t.path("run.json")))
t.check(js["dilated"]["spec"] == "32:2" and js["reorder"] == "hilbert", f"run --json records the spec and order: {js.get('dilated')}")
o_std = t.path("os.npy")
bsattn("run", "--dilated", "32:2", *IN, "-o", o_std, "-q")
t.check(not np.allclose(np.load(o_std), np.load(t.path("oh.npy"))), "the Hilbert order changes which tokens share a segment")
bsattn("run", "--dilated", "32:2", *IN, "--order", "raster", "--grid", grid, "-o", t.path("or.npy"), "-q")
t.check(np.array_equal(np.load(o_std), np.load(t.path("or.npy"))), "raster order = the sequence as given")

# Bad input: exit 2, one line naming what is wrong and what is allowed.
for spec, words in (("64:3", "rate 3 does not divide segment 64"), ("0:1", "segment"), ("64", "SEGMENT:RATE"),
                    ("64:x", "rate"), ("64:2,", "empty item in '64:2,'"), ("64:2,,32:1", "e.g. 2048:1,4096:2")):
    r = bsattn("run", "--dilated", spec, *IN, "-o", t.path("bad.npy"), expect=2)
    lines = r.stderr.strip().splitlines()
    allowed = "allowed" in r.stderr or "e.g." in r.stderr
    t.check(len(lines) == 1 and words in r.stderr and allowed, f"--dilated {spec}: {r.stderr.strip()}")
    t.check(not os.path.exists(t.path("bad.npy")), f"--dilated {spec}: nothing written")
r = bsattn("run", "local:window=1", "--dilated", "64:2", *IN, "-o", t.path("bad.npy"), expect=2)
t.check("not both" in r.stderr, f"MASK and --dilated: {r.stderr.strip()}")
r = bsattn("run", *IN, "-o", t.path("bad.npy"), expect=2)
t.check("--dilated" in r.stderr, f"neither MASK nor --dilated: {r.stderr.strip()}")
r = bsattn("run", "--dilated", "64:2", *IN, "--score", "silu", "-o", t.path("bad.npy"), expect=2)
t.check("softmax" in r.stderr, f"--dilated with --score silu: {r.stderr.strip()}")

# analyze: one row per order, recall and error against dense attention; JSON records.
aj = t.path("analyze.json")
bsattn("analyze", "--dilated", "16:1,32:2", "--synthetic", "spatial:grid=8x12", "--seq", str(S), "--heads", "2", "--head-dim", "16",
           "--grid", grid, "--order", "standard,raster,hilbert,snake,gilbert", "--block", "16", "--json", aj)
doc = json.load(open(aj))
rows = {r["order"]: r["summary"] for r in doc["orders"]}
t.check(set(rows) == {"standard", "raster", "hilbert", "snake", "gilbert"}, f"analyze orders: {sorted(rows)}")
t.check(rows["standard"] == rows["raster"], "analyze: raster = standard")
t.check(all(0 < s["recall_mean"] <= 1 and 0 < s["coverage"] < 1 for s in rows.values()), "analyze: recall and coverage in (0, 1]")
want_pairs = pr.dilated_pairs(S, 2, 1, [(16, 1), (32, 2)], False)
t.check(rows["hilbert"]["computed_pairs"] == want_pairs, f"computed pairs {rows['hilbert']['computed_pairs']} vs peer_records {want_pairs}")

# bench: dilated records (CPU: end to end), one per order.
bj = t.path("bench.json")
bsattn("bench", "--backend", "cpu", "--dilated", "16:1,32:2;32:4", "--seq", str(S), "--heads", "2", "--head-dim", "16",
       "--block", "16", "--dtype", "f32", "--grid", grid, "--order", "standard,hilbert", "--min-samples", "2",
       "--max-time", "0.05", "--json", bj, "-q")
recs = json.load(open(bj))["records"]
t.check(len(recs) == 4 and all(pr.is_dilated(r) and r["median_ms"] > 0 for r in recs), f"bench records: {len(recs)}")
for r in recs:
    branches, order = pr.parse_dilated_spec(r["spec"])
    t.check(r["flops_computed"] == 4 * 16 * pr.dilated_pairs(S, 2, 1, branches, False), f"bench FLOPs of {r['spec']}")
r = bsattn("bench", "--backend", "cpu", "--dilated", "16:3", "--seq", "96", expect=2)
t.check("does not divide" in r.stderr, f"bench --dilated 16:3: {r.stderr.strip()}")
r = bsattn("analyze", "local:window=1", "--synthetic", "gaussian", "--seq", "64", "--sample-rows", "4", expect=2)
t.check("--sample-rows goes with --dilated" in r.stderr, f"analyze --sample-rows without --dilated: {r.stderr.strip()}")

# peer_records' residue order is lib/curves/residue.cpp's (hand-computed case as in tests/dilated).
t.check(pr.residue_perm(10, 4, 2) == [0, 2, 1, 3, 4, 6, 5, 7, 8, 9], "residue_perm(10, 4, 2)")
t.check(pr.parse_dilated_spec("2048:1,4096:2;order=hilbert") == ([(2048, 1), (4096, 2)], "hilbert"), "parse_dilated_spec")

t.finish("dilated CLI: run exact against the float64 definition (forward, LSE, gradients, orders), errors, analyze, bench")
