"""HSTU attention (issue 21): `run --score silu` with HSTU's relative bias (--rab-pos, --rab-ts with
--timestamps, --rab) and u-gating (--gate-u), on jagged and fixed-length batches, against NumPy float64.

Usage: test_hstu.py BSATTN_BINARY SCRATCH_DIR. Seeded random inputs, GQA (Hq=4, Hkv=2), D=16; jagged
lengths 50, 13, 90 (none a multiple of the block, 16); the position table shorter than the longest
sequence (so distances are clamped to its last entry), timestamps with gaps over many buckets. The NumPy
reference builds rab from the definition in docs/hstu.md: pos[h, min(|i-j|, N-1)] + ts[h, bucket] with
bucket = clamp(floor(ln(max(|t[min(i+1,L-1)] - t[j]|, 1)) / 0.301), 0, Nb-1), then
O = (SiLU(alpha*QK^T + rab) / n) V over the visible pairs, times U. Tolerance 1e-5 relative (float32
against float64, at most 90 keys); --f64 at 2e-7 (the float32 output file).
analyze with the same options (alpha 1/sqrt(D): analyze has no --scale): the masked output's rel_l2 against every visible block kept, as NumPy's.
Bad input exits 2 with one line: --rab-ts without --timestamps, timestamps of the wrong length, a table
of the wrong shape, --lse (SiLU has none), --gate-u with softmax. (The CUDA path: tests/gpu/test_hstu_gpu.cpp.)
"""
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import CliTest  # noqa: E402

t = CliTest("hstu")
HQ, HKV, D, BLOCK, ALPHA = 4, 2, 16, 16, 0.3
LENS = [50, 13, 90]
CU = np.concatenate([[0], np.cumsum(LENS)])
TOTAL, NMAX = int(CU[-1]), max(LENS)
rng = np.random.default_rng(2024)
q, k, v = (rng.standard_normal((TOTAL, h, D)).astype(np.float32) for h in (HQ, HKV, HKV))
u = rng.standard_normal((TOTAL, HQ, D)).astype(np.float32)
pos = rng.standard_normal((HQ, 40)).astype(np.float32)
ts_table = rng.standard_normal((HQ, 12)).astype(np.float32)
stamps = np.cumsum(rng.exponential(200.0, TOTAL)).astype(np.int64)
dense_bias = rng.standard_normal((HQ, NMAX, NMAX)).astype(np.float32)
files = dict(q=q, k=k, v=v, u=u, pos=pos, ts=ts_table, stamps=stamps, bias=dense_bias)
for name, x in files.items():
    np.save(t.path(name + ".npy"), x)
F = {name: t.path(name + ".npy") for name in files}
QKV = ["--q", F["q"], "--k", F["k"], "--v", F["v"]]


def bucket(dt, nb):
    return np.clip(np.floor(np.log(np.maximum(np.abs(dt), 1.0)) / 0.301), 0, nb - 1).astype(int)


def hstu64(a, e, use_pos=True, use_ts=True, use_dense=False, use_u=True, block_local=None, n=NMAX, alpha=ALPHA):
    L = e - a
    i, j = np.arange(L)[:, None], np.arange(L)[None, :]
    keep = j <= i
    if block_local is not None:
        keep &= np.abs(i // BLOCK - j // BLOCK) <= block_local
    out = np.zeros((L, HQ, D))
    ts = stamps[a:e].astype(np.float64)
    inext = np.minimum(np.arange(L) + 1, L - 1)
    for h in range(HQ):
        s = alpha * (q[a:e, h].astype(np.float64) @ k[a:e, h // 2].astype(np.float64).T)
        if use_pos:
            s += pos[h][np.minimum(np.abs(i - j), pos.shape[1] - 1)]
        if use_ts:
            s += ts_table[h][bucket(ts[inext][:, None] - ts[None, :], ts_table.shape[1])]
        if use_dense:
            s += dense_bias[h, :L, :L]
        w = np.where(keep, s / (1 + np.exp(-s)), 0.0) / n
        out[:, h] = w @ v[a:e, h // 2].astype(np.float64)
    if use_u:
        out *= u[a:e]
    return out


def bsattn(*args, expect=0):
    r = subprocess.run([t.bin, *args], capture_output=True, text=True)
    t.check(r.returncode == expect, f"{' '.join(args)}: exit {r.returncode}, wanted {expect}; {r.stderr.strip()}")
    return r


def run(mask, *extra, qkv=QKV):
    o = t.path("o.npy")
    if os.path.exists(o):
        os.remove(o)
    bsattn("run", mask, *qkv, "--score", "silu", "--scale", str(ALPHA), "--block", str(BLOCK), "--causal",
           "--backend", "cpu", "-o", o, "-q", *extra)
    return np.load(o) if os.path.exists(o) else None


def close(got, want, what, tol=1e-5):
    err = np.abs(got - want).max() / max(np.abs(want).max(), 1e-30)
    t.check(err <= tol, f"{what}: max relative error {err:.2e} > {tol}")


SEQ = ["--seqlens", ",".join(map(str, LENS))]
BIAS = ["--rab-pos", F["pos"], "--rab-ts", F["ts"], "--timestamps", F["stamps"]]
for f64 in (False, True):
    o = run("dense", *SEQ, *BIAS, "--gate-u", F["u"], *(["--f64"] if f64 else []))
    if o is not None:
        want = np.concatenate([hstu64(CU[b], CU[b + 1]) for b in range(len(LENS))])
        close(o, want, f"jagged, rab-pos + rab-ts + u-gating{' (--f64)' if f64 else ''}", 2e-7 if f64 else 1e-5)
o = run("local:window=1", *SEQ, *BIAS, "--rab", F["bias"])
if o is not None:
    want = np.concatenate([hstu64(CU[b], CU[b + 1], use_dense=True, use_u=False, block_local=1) for b in range(len(LENS))])
    close(o, want, "jagged, local:window=1 mask, all three biases, no u")
o = run("dense", *SEQ, "--rab-pos", F["pos"], "--silu-n", "7")
if o is not None:
    want = np.concatenate([hstu64(CU[b], CU[b + 1], use_ts=False, use_u=False, n=7) for b in range(len(LENS))])
    close(o, want, "jagged, rab-pos only, --silu-n 7")
# Fixed-length batch [2, 50, H, D]: the first 100 tokens as two sequences of 50.
for name in ("q", "k", "v", "u"):
    x = files[name][:100]
    np.save(t.path("fx_" + name + ".npy"), x.reshape(2, 50, x.shape[1], D))
np.save(t.path("fx_stamps.npy"), stamps[:100].reshape(2, 50))
np.save(t.path("fx_bias.npy"), dense_bias[:, :50, :50])
o = run("dense", "--rab-pos", F["pos"], "--rab-ts", F["ts"], "--timestamps", t.path("fx_stamps.npy"), "--rab",
        t.path("fx_bias.npy"), "--gate-u", t.path("fx_u.npy"),
        qkv=["--q", t.path("fx_q.npy"), "--k", t.path("fx_k.npy"), "--v", t.path("fx_v.npy")])
if o is not None:
    want = np.stack([hstu64(0, 50, use_dense=True, n=50), hstu64(50, 100, use_dense=True, n=50)])
    t.check(o.shape == (2, 50, HQ, D), f"fixed-length O shape {o.shape}")
    close(o, want, "fixed-length batch of 2, all biases, u-gating")

# analyze: HSTU under a block-local mask against the same HSTU with every visible block kept.
js = t.path("analyze.json")
bsattn("analyze", "local:window=1", *QKV, *SEQ, *BIAS, "--gate-u", F["u"], "--score", "silu", "--block", str(BLOCK),
       "--causal", "--json", js, "-q")
if os.path.exists(js):
    import json
    got = json.load(open(js))["quality"]["error"]["rel_l2"]
    sparse = np.concatenate([hstu64(CU[b], CU[b + 1], block_local=1, alpha=D ** -0.5) for b in range(len(LENS))])
    dense = np.concatenate([hstu64(CU[b], CU[b + 1], alpha=D ** -0.5) for b in range(len(LENS))])
    want = np.linalg.norm(sparse - dense) / np.linalg.norm(dense)
    t.check(want > 0.01 and abs(got - want) <= 1e-4 * want, f"analyze hstu rel_l2 {got}, NumPy {want}")

bad = [
    (["--rab-ts", F["ts"]], "--timestamps"),
    (["--rab-ts", F["ts"], "--timestamps", t.path("fx_stamps.npy")], "--timestamps"),
    (["--rab-pos", F["bias"]], "--rab-pos"),
    (["--rab-pos", F["pos"], "--lse", t.path("bad_lse.npy")], "log-sum-exp"),
]
for args, needle in bad:
    r = bsattn("run", "dense", *QKV, *SEQ, "--score", "silu", "--causal", "-o", t.path("bad.npy"),
               *(args if "--backend" in args else args + ["--backend", "cpu"]), expect=2)
    t.check(len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr, f"run {args}: {r.stderr.strip()!r}")
r = bsattn("run", "dense", *QKV, *SEQ, "--gate-u", F["u"], "--backend", "cpu", "-o", t.path("bad.npy"), expect=2)
t.check("--score silu" in r.stderr, f"--gate-u with softmax: {r.stderr.strip()!r}")
t.check(not os.path.exists(t.path("bad.npy")), "no output on bad input")

# bench --score softmax,silu on the CPU backend: one record per score, the same shape and FLOPs (SiLU's are
# counted as softmax's); the bias tables and U go to the CUDA backend only (on the CPU: exit 2, the reason);
# --rab / --gate-u without silu is a usage error.
bj = t.path("bench_hstu.json")
bench_args = ["bench", "--backend", "cpu", "--seq", "64", "--head-dim", "16", "--heads", "2", "--block", "16",
              "--pattern", "causal", "--density", "1", "--min-samples", "2", "--max-time", "0.02", "-q"]
bsattn(*bench_args, "--score", "softmax,silu", "--json", bj)
if os.path.exists(bj):
    import json
    recs = json.load(open(bj))["records"]
    scores = sorted(r["score"] for r in recs)
    t.check(scores == ["silu", "softmax"], f"bench records' scores {scores}")
    t.check(len({r["flops_computed"] for r in recs}) == 1 and recs[0]["flops_computed"] == 4 * 16 * 2 * (64 * 65 // 2),
            f"bench FLOPs as softmax's, 4*D*pairs: {[r['flops_computed'] for r in recs]}")
r = bsattn(*bench_args, "--score", "silu", "--rab", "pos+ts", expect=2)
t.check(len(r.stderr.strip().splitlines()) == 1 and "cuda backend only" in r.stderr,
        f"bench --rab on the CPU backend: {r.stderr!r}")
r = bsattn(*bench_args, "--rab", "pos", expect=2)
t.check(len(r.stderr.strip().splitlines()) == 1 and "--score silu" in r.stderr, f"bench --rab without silu: {r.stderr!r}")

t.finish("hstu: jagged SiLU attention with relative bias and u-gating matches NumPy float64")
