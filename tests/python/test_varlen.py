"""Varlen batches on the command line (issue 21): run, analyze and bench with --seqlens / --cu-seqlens.

Usage: test_varlen.py BSATTN_BINARY SCRATCH_DIR. Packed seeded random Q/K/V ([total,H,D], GQA 4/2, D=16),
sequence lengths 37, 100, 5, 64 (none a multiple of the block, 16). Checks:
- dense attention (causal and not) against NumPy float64 attention of each sequence alone (exact at token
  level: no key of another sequence leaks in), O and LSE, 1e-5 relative (float32 accumulation, <= 100 keys);
- local and random masks: the varlen output equals `bsattn run` on each sequence alone (the same mask spec and
  seed), and local also equals a NumPy float64 block-local mask built per sequence;
- gradients (--do): varlen dQ, dK, dV equal each sequence's own backward pass;
- --cu-seqlens FILE.npy (int32 and int64) gives the same bytes as --seqlens;
- analyze: dense gives density 1 and rel_l2 0; local reports density over each sequence's own blocks;
- bench: the FLOPs of dense attention are 4*D*Hq*sum(L^2) (non-causal), counted per sequence;
- bad input: offsets not increasing, not starting at 0, total not matching the tensors, float offsets, both
  options: exit 2 with one line naming the problem.
"""
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import CliTest  # noqa: E402

t = CliTest("varlen")
LENS = [37, 100, 5, 64]
CU = np.concatenate([[0], np.cumsum(LENS)]).astype(np.int32)
TOTAL, HQ, HKV, D, BLOCK = int(CU[-1]), 4, 2, 16, 16
rng = np.random.default_rng(21)
q, k, v = (rng.standard_normal((TOTAL, h, D)).astype(np.float32) for h in (HQ, HKV, HKV))
for name, x in (("q", q), ("k", k), ("v", v)):
    np.save(t.path(name + ".npy"), x)
QKV = ["--q", t.path("q.npy"), "--k", t.path("k.npy"), "--v", t.path("v.npy")]
SEQLENS = ",".join(map(str, LENS))


def bsattn(*args, expect=0):
    p = subprocess.run([t.bin, *args], capture_output=True, text=True)
    t.check(p.returncode == expect, f"{' '.join(args)}: exit {p.returncode}, wanted {expect}; {p.stderr.strip()}")
    return p


def run(tag, mask, *extra, qkv=QKV):
    o, lse = t.path(tag + "_o.npy"), t.path(tag + "_lse.npy")
    bsattn("run", mask, *qkv, "--block", str(BLOCK), "--backend", "cpu", "-o", o, "--lse", lse, "-q", *extra)
    if not os.path.exists(o):
        t.finish("")
    return np.load(o), np.load(lse)


def attention64(qs, ks, vs, keep):
    """float64 softmax attention of one sequence; keep[h] is a [Lq,Lk] bool of allowed pairs."""
    out = np.zeros((qs.shape[0], HQ, D))
    lse = np.full((HQ, qs.shape[0]), -np.inf)
    for h in range(HQ):
        s = (qs[:, h].astype(np.float64) @ ks[:, h // (HQ // HKV)].astype(np.float64).T) / np.sqrt(D)
        s = np.where(keep[h], s, -np.inf)
        m = s.max(axis=1, keepdims=True)
        p = np.exp(s - m)
        out[:, h] = (p / p.sum(axis=1, keepdims=True)) @ vs[:, h // (HQ // HKV)].astype(np.float64)
        lse[h] = (m + np.log(p.sum(axis=1, keepdims=True)))[:, 0]
    return out, lse


def reference(causal, block_keep=None):
    out = np.zeros((TOTAL, HQ, D))
    lse = np.zeros((HQ, TOTAL))
    for b, L in enumerate(LENS):
        a, e = CU[b], CU[b + 1]
        keep = np.ones((L, L), bool)
        if causal:
            keep &= np.tril(np.ones((L, L), bool))
        if block_keep is not None:
            bi = np.arange(L) // BLOCK
            keep &= block_keep(bi[:, None], bi[None, :])
        out[a:e], lse[:, a:e] = attention64(q[a:e], k[a:e], v[a:e], [keep] * HQ)
    return out, lse


def close(got, want, what, tol=1e-5):
    err = np.abs(got - want).max() / max(np.abs(want).max(), 1e-30)
    t.check(err <= tol, f"{what}: max relative error {err:.2e} > {tol}")


for causal in (False, True):
    flag = ["--causal"] if causal else []
    tag = "causal" if causal else "full"
    o, lse = run("dense_" + tag, "dense", "--seqlens", SEQLENS, *flag)
    t.check(o.shape == (TOTAL, HQ, D) and lse.shape == (HQ, TOTAL), f"packed shapes: O {o.shape}, LSE {lse.shape}")
    want_o, want_lse = reference(causal)
    close(o, want_o, f"dense {tag} O vs NumPy float64 per sequence")
    close(lse, want_lse, f"dense {tag} LSE vs NumPy float64 per sequence")
    o_local, _ = run("local_" + tag, "local:window=1", "--seqlens", SEQLENS, *flag)
    want_local, _ = reference(causal, lambda i, j: np.abs(i - j) <= 1)
    close(o_local, want_local, f"local:window=1 {tag} O vs NumPy float64 block-local per sequence")
    for spec in ("local:window=1", "random:density=0.4"):
        o_var, _ = run("var_" + tag, spec, "--seqlens", SEQLENS, *flag, "--seed", "3")
        for b, L in enumerate(LENS):
            a, e = CU[b], CU[b + 1]
            for name, x in (("q", q), ("k", k), ("v", v)):
                np.save(t.path(f"one_{name}.npy"), x[a:e])
            one = ["--q", t.path("one_q.npy"), "--k", t.path("one_k.npy"), "--v", t.path("one_v.npy")]
            o_one, _ = run("one", spec, *flag, "--seed", "3", qkv=one)
            close(o_var[a:e], o_one[0], f"{spec} {tag}: sequence {b} (length {L}) varlen vs alone", tol=1e-6)

# Gradients: varlen dQ, dK, dV equal each sequence's own backward pass.
dout = rng.standard_normal((TOTAL, HQ, D)).astype(np.float32)
np.save(t.path("do.npy"), dout)
grads = ["--dq", t.path("dq.npy"), "--dk", t.path("dk.npy"), "--dv", t.path("dv.npy")]
run("g", "local:window=1", "--seqlens", SEQLENS, "--causal", "--do", t.path("do.npy"), *grads)
got = [np.load(t.path(n + ".npy")) for n in ("dq", "dk", "dv")]
for b, L in enumerate(LENS):
    a, e = CU[b], CU[b + 1]
    for name, x in (("q", q), ("k", k), ("v", v), ("do", dout)):
        np.save(t.path(f"one_{name}.npy"), x[a:e])
    one = ["--q", t.path("one_q.npy"), "--k", t.path("one_k.npy"), "--v", t.path("one_v.npy")]
    run("g1", "local:window=1", "--causal", "--do", t.path("one_do.npy"), *grads, qkv=one)
    for name, x in zip(("dq", "dk", "dv"), got):
        close(x[a:e], np.load(t.path(name + ".npy"))[0], f"{name} of sequence {b}: varlen vs alone", tol=1e-6)

# --cu-seqlens: int32 and int64 files give what --seqlens gives.
o_ref, _ = run("ref", "local:window=1", "--seqlens", SEQLENS, "--causal")
for dt in (np.int32, np.int64):
    np.save(t.path("cu.npy"), CU.astype(dt))
    o_cu, _ = run("cu", "local:window=1", "--cu-seqlens", t.path("cu.npy"), "--causal")
    t.check(np.array_equal(o_cu, o_ref), f"--cu-seqlens {np.dtype(dt).name} equals --seqlens")

# analyze: dense is exact, densities count each sequence's own blocks.
js = t.path("analyze.json")
bsattn("analyze", "dense", *QKV, "--block", str(BLOCK), "--seqlens", SEQLENS, "--causal", "--json", js, "-q")
a = json.load(open(js))["quality"]
t.check(abs(a["mask"]["density"] - 1) < 1e-12 and a["summary"]["error"]["rel_l2"] < 1e-6,
        f"analyze dense: density {a['mask']['density']}, rel_l2 {a['summary']['error']['rel_l2']}")
bsattn("analyze", "local:window=0", *QKV, "--block", str(BLOCK), "--seqlens", SEQLENS, "--json", js, "-q")
a = json.load(open(js))["quality"]
mb = [(L + BLOCK - 1) // BLOCK for L in LENS]
want = sum(mb) / sum(m * m for m in mb)
t.check(abs(a["mask"]["density"] - want) < 1e-12, f"analyze local:window=0 density {a['mask']['density']}, wanted {want}")
pairs = sum(sum(min(BLOCK, L - BLOCK * i) ** 2 for i in range(m)) for L, m in zip(LENS, mb)) * HQ
t.check(a["mask"]["computed_pairs"] == pairs, f"analyze computed pairs {a['mask']['computed_pairs']}, wanted {pairs}")

# bench: FLOPs counted per sequence.
bj = t.path("bench.json")
bsattn("bench", "--backend", "cpu", "--seqlens", SEQLENS, "--heads", str(HQ), "--kv-heads", str(HKV), "--head-dim",
       str(D), "--block", "64", "--pattern", "dense", "--dtype", "f32", "--json", bj, "-q", "--max-time", "0.05")
recs = json.load(open(bj))["records"] if os.path.exists(bj) else []
t.check(len(recs) == 1, f"bench records {len(recs)}")
if recs:
    want = 4 * D * HQ * sum(L * L for L in LENS)
    t.check(recs[0]["flops_computed"] == want, f"bench flops {recs[0]['flops_computed']}, wanted {want}")
    t.check(recs[0]["batch"] == len(LENS) and recs[0]["seq"] == max(LENS), f"bench batch/seq {recs[0]['batch']} {recs[0]['seq']}")

# Bad input: exit 2, one line naming what is wrong.
bad = {
    "not_increasing": (np.array([0, 37, 30, 206], np.int32), "not increasing"),
    "not_zero": (np.array([1, 37, 137, 206], np.int32), "not 0"),
    "wrong_total": (np.array([0, 37, 137, 200], np.int32), "rows"),
    "float": (np.array([0, 37, 137, 206], np.float32), "int32"),
}
for name, (arr, needle) in bad.items():
    np.save(t.path(name + ".npy"), arr)
    for cmd in ("run", "analyze"):
        extra = ["-o", t.path("bad_o.npy")] if cmd == "run" else []
        p = bsattn(cmd, "dense", *QKV, "--cu-seqlens", t.path(name + ".npy"), "--backend", "cpu", *extra, expect=2)
        lines = p.stderr.strip().splitlines()
        t.check(len(lines) == 1 and needle in p.stderr and "--cu-seqlens" in p.stderr + "offsets",
                f"{cmd} {name}: stderr {p.stderr.strip()!r}")
for args, needle in ((["--seqlens", "37,100,5"], "rows"), (["--seqlens", "37,0,169"], "not a sequence length"),
                     (["--seqlens", SEQLENS, "--cu-seqlens", t.path("cu.npy")], "give one")):
    p = bsattn("run", "dense", *QKV, *args, "--backend", "cpu", "-o", t.path("bad_o.npy"), expect=2)
    t.check(len(p.stderr.strip().splitlines()) == 1 and needle in p.stderr, f"run {args}: {p.stderr.strip()!r}")
p = bsattn("bench", "--backend", "cpu", "--seqlens", "5,-3", expect=2)
t.check("--seqlens" in p.stderr, f"bench bad --seqlens: {p.stderr.strip()!r}")
t.check(not os.path.exists(t.path("bad_o.npy")), "no output written on bad input")

t.finish("varlen: run/analyze/bench with --seqlens/--cu-seqlens match per-sequence references")
