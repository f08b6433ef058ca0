"""NSA (issue 21): `run --nsa` and `analyze --nsa` against a NumPy float64 NSA written from its definition
(docs/nsa.md), token by token, not through bsattn's block masks.

Usage: test_nsa.py BSATTN_BINARY SCRATCH_DIR. Seeded random Q/K/V, GQA (Hq=4, Hkv=2), D=16, lengths not
multiples of any block (300 tokens; varlen 150,77,200). Checks, at 2e-5 relative (float32 block-sparse
branches against float64; the compressed branch is float64 in both):
- default gates (1/3 each), mean pooling, per-token selection (qblock=1);
- given pooling weights (--nsa-pool), gates (--nsa-gates) and gate logits (--nsa-gate-logits, sigmoid);
- selection shared by query blocks (qblock=32): the importance summed over the block's queries;
- varlen: each sequence is NSA on that sequence alone;
- analyze --nsa: its rel_l2 against dense causal attention equals NumPy's;
- bench --nsa (CPU) writes one record with FLOPs and the dense baseline;
- bad input exits 2 with one line: an unknown key, stride > block, gates of the wrong shape, MASK with --nsa.
"""
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import CliTest  # noqa: E402

t = CliTest("nsa")
S, HQ, HKV, D = 300, 4, 2, 16
P = dict(block=32, stride=16, select=32, topn=4, window=64, init=1, local=2, qblock=1)
rng = np.random.default_rng(2121)


def spec(p):
    return ",".join(f"{k}={v}" for k, v in p.items())


def nsa64(q, k, v, p, pool=None, gates=None):
    """NSA of one sequence from the definition: q [S,Hq,D], k/v [S,Hkv,D]; returns [S,Hq,D] float64."""
    q, k, v = (x.astype(np.float64) for x in (q, k, v))
    n, G = q.shape[0], HQ // HKV
    l, d, ls = p["block"], p["stride"], p["select"]
    w = np.full(l, 1.0 / l) if pool is None else pool.astype(np.float64)
    nc = (n - l) // d + 1 if n >= l else 0
    kc = np.array([np.einsum("j,jhd->hd", w, k[i * d:i * d + l]) for i in range(nc)]).reshape(nc, HKV, D)
    vc = np.array([np.einsum("j,jhd->hd", w, v[i * d:i * d + l]) for i in range(nc)]).reshape(nc, HKV, D)
    scale = 1 / np.sqrt(D)
    ms = (n + ls - 1) // ls
    W = (p["window"] + ls - 1) // ls
    o_cmp = np.zeros((n, HQ, D))
    imp = np.zeros(((n + p["qblock"] - 1) // p["qblock"], HKV, ms))
    for tq in range(n):
        nvis = min(nc, (tq + 1 - l) // d + 1) if tq + 1 >= l else 0
        for h in range(HQ):
            if nvis == 0:
                continue
            s = kc[:nvis, h // G] @ q[tq, h] * scale
            pr = np.exp(s - s.max())
            pr /= pr.sum()
            o_cmp[tq, h] = pr @ vc[:nvis, h // G]
            for i in range(nvis):
                for j in range(i * d // ls, min((i * d + l - 1) // ls, ms - 1) + 1):
                    imp[tq // p["qblock"], h // G, j] += pr[i]
    out = np.zeros((n, HQ, D))
    branches = []
    for tq in range(n):
        row = tq // p["qblock"]
        t0, t1 = row * p["qblock"], min(n, (row + 1) * p["qblock"]) - 1
        c0, c = t0 // ls, t1 // ls
        for h in range(HQ):
            g = h // G
            forced = [j for j in range(c + 1) if j < p["init"] or j > c - p["local"]]
            rest = sorted((j for j in range(c + 1) if j not in forced), key=lambda j: -imp[row, g, j])
            take = forced + rest[:max(0, p["topn"] - len(forced))]
            keys_slc = [s_ for j in take for s_ in range(j * ls, min(n, (j + 1) * ls)) if s_ <= tq]
            keys_win = [s_ for j in range(max(0, c0 - W + 1), c + 1) for s_ in range(j * ls, min(n, (j + 1) * ls)) if s_ <= tq]
            outs = [o_cmp[tq, h]]
            for keys in (keys_slc, keys_win):
                s = k[keys, g] @ q[tq, h] * scale
                pr = np.exp(s - s.max())
                outs.append((pr / pr.sum()) @ v[keys, g])
            gt = np.full(3, 1 / 3) if gates is None else gates[tq, h].astype(np.float64)
            out[tq, h] = sum(gt[i] * outs[i] for i in range(3))
    return out


def bsattn(*args, expect=0):
    r = subprocess.run([t.bin, *args], capture_output=True, text=True)
    t.check(r.returncode == expect, f"{' '.join(args)}: exit {r.returncode}, wanted {expect}; {r.stderr.strip()}")
    return r


def close(got, want, what, tol=2e-5):
    err = np.abs(got - want).max() / max(np.abs(want).max(), 1e-30)
    t.check(err <= tol, f"{what}: max relative error {err:.2e} > {tol}")
    return err


q, k, v = (rng.standard_normal((S, h, D)).astype(np.float32) for h in (HQ, HKV, HKV))
for name, x in (("q", q), ("k", k), ("v", v)):
    np.save(t.path(name + ".npy"), x)
QKV = ["--q", t.path("q.npy"), "--k", t.path("k.npy"), "--v", t.path("v.npy")]


def run_nsa(p, *extra, qkv=QKV):
    o = t.path("o.npy")
    if os.path.exists(o):
        os.remove(o)
    bsattn("run", "--nsa", spec(p), *qkv, "--backend", "cpu", "-o", o, "-q", *extra)
    return np.load(o) if os.path.exists(o) else None


o = run_nsa(P)
if o is not None:
    o = o[0] if o.ndim == 4 else o
    close(o, nsa64(q, k, v, P), "default gates, mean pooling, qblock=1")

pool = rng.uniform(0, 1, P["block"]).astype(np.float32)
gates = rng.uniform(0, 1, (S, HQ, 3)).astype(np.float32)
logits = rng.standard_normal((S, HQ, 3)).astype(np.float32)
np.save(t.path("pool.npy"), pool)
np.save(t.path("gates.npy"), gates)
np.save(t.path("logits.npy"), logits)
o = run_nsa(P, "--nsa-pool", t.path("pool.npy"), "--nsa-gates", t.path("gates.npy"))
if o is not None:
    close(o, nsa64(q, k, v, P, pool=pool, gates=gates), "--nsa-pool weights and --nsa-gates")
o = run_nsa(P, "--nsa-gate-logits", t.path("logits.npy"))
if o is not None:
    close(o, nsa64(q, k, v, P, gates=1 / (1 + np.exp(-logits.astype(np.float64)))), "--nsa-gate-logits (sigmoid)")
P32 = dict(P, qblock=32, topn=3, local=1)
o = run_nsa(P32)
if o is not None:
    close(o, nsa64(q, k, v, P32), "qblock=32 (selection shared by 32 queries)")

# Varlen: each sequence alone.
LENS = [150, 77, 200]
cu = np.concatenate([[0], np.cumsum(LENS)])
vq, vk, vv = (rng.standard_normal((cu[-1], h, D)).astype(np.float32) for h in (HQ, HKV, HKV))
for name, x in (("vq", vq), ("vk", vk), ("vv", vv)):
    np.save(t.path(name + ".npy"), x)
o = run_nsa(P, "--seqlens", ",".join(map(str, LENS)),
            qkv=["--q", t.path("vq.npy"), "--k", t.path("vk.npy"), "--v", t.path("vv.npy")])
if o is not None:
    t.check(o.shape == (cu[-1], HQ, D), f"varlen O shape {o.shape}")
    for b in range(len(LENS)):
        a, e = cu[b], cu[b + 1]
        close(o[a:e], nsa64(vq[a:e], vk[a:e], vv[a:e], P), f"varlen sequence {b} (length {LENS[b]}) vs alone")

# analyze --nsa: rel_l2 against dense causal attention, recomputed in NumPy.
js = t.path("analyze.json")
bsattn("analyze", "--nsa", spec(P), *QKV, "--json", js, "-q")
if os.path.exists(js):
    got = json.load(open(js))["quality"]["out"]["overall"]["rel_l2"]
    dense = np.zeros((S, HQ, D))
    for h in range(HQ):
        s = (q[:, h].astype(np.float64) @ k[:, h // 2].astype(np.float64).T) / np.sqrt(D)
        s = np.where(np.tril(np.ones((S, S), bool)), s, -np.inf)
        pr = np.exp(s - s.max(axis=1, keepdims=True))
        dense[:, h] = (pr / pr.sum(axis=1, keepdims=True)) @ v[:, h // 2].astype(np.float64)
    want = np.linalg.norm(nsa64(q, k, v, P) - dense) / np.linalg.norm(dense)
    t.check(abs(got - want) <= 1e-4 * want, f"analyze --nsa rel_l2 {got}, NumPy {want}")

# bench --nsa on the CPU.
bj = t.path("bench.json")
bsattn("bench", "--nsa", spec(P), "--seq", "256", "--heads", "4", "--kv-heads", "2", "--head-dim", "16", "--json", bj,
       "-q", "--max-time", "0.05")
recs = json.load(open(bj))["records"] if os.path.exists(bj) else []
t.check(len(recs) == 1 and recs[0]["median_ms"] > 0 and recs[0]["dense_median_ms"] > 0 and recs[0]["flops_computed"] > 0,
        f"bench --nsa records: {recs}")

for args, needle in (
        (["--nsa", "block=32,strid=16"], "strid"),
        (["--nsa", "block=16,stride=32"], "stride"),
        (["--nsa", spec(P), "--nsa-gates", t.path("pool.npy")], "--nsa-gates"),
        (["local:window=1", "--nsa", spec(P)], "MASK"),
        (["--nsa-pool", t.path("pool.npy"), "local:window=1"], "--nsa")):
    r = bsattn("run", *args, *QKV, "--backend", "cpu", "-o", t.path("bad.npy"), expect=2)
    t.check(len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr, f"run {args}: {r.stderr.strip()!r}")
t.check(not os.path.exists(t.path("bad.npy")), "no output on bad input")

t.finish("nsa: run/analyze/bench --nsa match a NumPy float64 NSA from its definition")
