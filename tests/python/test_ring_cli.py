"""bsattn run / bench --ranks: ring attention from the command line (issue 22), on the CPU (loopback).

Usage: test_ring_cli.py BSATTN_BINARY SCRATCH_DIR. NumPy writes Q/K/V (B=2, S=300, Hq=4, Hkv=2: GQA, a
partial last block) and a random block mask; NumPy computes the attention in float64 from the mask and the
causal rule. `run --ranks N` (N = 2, 3, 4; contiguous and zigzag) must agree with it and with the single
run within 2e-5 (float32 accumulation), with the gradients (--do) too; --json reports one entry per rank.
Bad ring options exit 2 with one line naming the option; bench --ranks writes its records.
"""
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import CliTest  # noqa: E402

t = CliTest("ring_cli")


def bsattn(*args, expect=0):
    p = subprocess.run([t.bin, *args], capture_output=True, text=True)
    t.check(p.returncode == expect, f"{' '.join(args)}: exit {p.returncode}, wanted {expect}; {p.stderr.strip()}")
    return p


B, S, H, HKV, D, BLOCK = 2, 300, 4, 2, 16, 32
rng = np.random.default_rng(22)
q = rng.standard_normal((B, S, H, D)).astype(np.float32)
k = rng.standard_normal((B, S, HKV, D)).astype(np.float32)
v = rng.standard_normal((B, S, HKV, D)).astype(np.float32)
do = rng.standard_normal((B, S, H, D)).astype(np.float32)
mb = -(-S // BLOCK)
mask = rng.random((1, H, mb, mb)) < 0.4
mask[:, :, 3, :] = False  # an empty block row: O = 0, LSE = -inf there
for name, x in [("q", q), ("k", k), ("v", v), ("do", do), ("mask", mask)]:
    np.save(t.path(name + ".npy"), x)


def reference(causal):
    """float64 O [B,S,H,D], LSE [B,H,S] from the block mask, pair by pair (causal: key <= query)."""
    qi, kj = np.arange(S)[:, None], np.arange(S)[None, :]
    o = np.zeros((B, S, H, D))
    lse = np.full((B, H, S), -np.inf)
    for b in range(B):
        for h in range(H):
            g = h // (H // HKV)
            vis = mask[0, h][qi // BLOCK, kj // BLOCK] & ((kj <= qi) if causal else True)
            s = (q[b, :, h].astype(np.float64) @ k[b, :, g].T.astype(np.float64)) / np.sqrt(D)
            s = np.where(vis, s, -np.inf)
            m = s.max(axis=1)
            rows = np.isfinite(m)
            p = np.exp(s[rows] - m[rows, None])
            lse[b, h, rows] = m[rows] + np.log(p.sum(axis=1))
            o[b, rows, h] = (p / p.sum(axis=1, keepdims=True)) @ v[b, :, g].astype(np.float64)
    return o, lse


def close(got, want, tol):
    fin = np.isfinite(want)
    if not (np.isfinite(got) == fin).all():
        return False
    return np.abs(got[fin] - want[fin]).max() <= tol * max(1.0, np.abs(want[fin]).max())


files = ["--q", t.path("q.npy"), "--k", t.path("k.npy"), "--v", t.path("v.npy"), "--block", str(BLOCK), "--backend", "cpu"]
grads = ["--do", t.path("do.npy"), "--dq", t.path("dq1.npy"), "--dk", t.path("dk1.npy"), "--dv", t.path("dv1.npy")]
for causal in (False, True):
    c = ["--causal"] if causal else []
    ref_o, ref_lse = reference(causal)
    bsattn("run", t.path("mask.npy"), *files, *c, "-o", t.path("o1.npy"), "--lse", t.path("l1.npy"), *grads, "-q")
    o1, l1 = np.load(t.path("o1.npy")), np.load(t.path("l1.npy"))
    t.check(close(o1, ref_o, 2e-5) and close(l1, ref_lse, 2e-5), f"single run vs NumPy float64 (causal={causal})")
    for n in (2, 3, 4):
        for layout in ("contiguous", "zigzag"):
            what = f"--ranks {n} --ring-layout {layout} causal={causal}"
            p = bsattn("run", t.path("mask.npy"), *files, *c, "--ranks", str(n), "--ring-layout", layout,
                       "-o", t.path("on.npy"), "--lse", t.path("ln.npy"), "--json", t.path("run.json"),
                       "--do", t.path("do.npy"), "--dq", t.path("dqn.npy"), "--dk", t.path("dkn.npy"),
                       "--dv", t.path("dvn.npy"))
            if p.returncode:
                continue
            on, ln = np.load(t.path("on.npy")), np.load(t.path("ln.npy"))
            t.check(close(on, ref_o, 2e-5) and close(ln, ref_lse, 2e-5), f"{what}: O/LSE vs NumPy float64")
            t.check(close(on, o1.astype(np.float64), 2e-5), f"{what}: O vs the single run")
            for g in ("dq", "dk", "dv"):
                t.check(close(np.load(t.path(g + "n.npy")), np.load(t.path(g + "1.npy")).astype(np.float64), 1e-4),
                        f"{what}: {g} vs the single run")
            j = json.load(open(t.path("run.json")))
            ring = j.get("ring", {})
            t.check(ring.get("ranks") == n and ring.get("layout") == layout and len(ring.get("per_rank", [])) == n
                    and ring.get("transport") == "loopback", f"{what}: --json ring block {ring}")
            steps = sum(r["steps_computed"] + r["steps_skipped"] for r in ring.get("per_rank", []))
            t.check(steps == n * n, f"{what}: {steps} steps reported, wanted {n * n}")
            t.check("ring of %d ranks" % n in p.stdout, f"{what}: summary line {p.stdout.strip()}")
            if causal and layout == "contiguous":
                skipped = sum(r["steps_skipped"] for r in ring["per_rank"])
                t.check(skipped >= n * (n - 1) // 2, f"{what}: {skipped} skipped steps, wanted >= {n * (n - 1) // 2}")

# Bad ring options: exit 2, one line naming the option.
bad = [
    (["--ranks", "0"], "--ranks"),
    (["--ranks", "2", "--ring-layout", "striped"], "--ring-layout"),
    (["--ranks", "2", "--transport", "mpi"], "--transport"),
    (["--ranks", "2", "--transport", "nccl"], "--backend cuda"),
    (["--ring-layout", "zigzag"], "--ranks"),
    (["--ranks", "9", "--ring-layout", "zigzag"], "at most 5 ranks"),  # 10 blocks of 32: 18 chunks do not fit
    (["--ranks", "2", "--f64"], "--f64"),
    (["--ranks", "2", "--score", "silu"], "softmax"),
]
for extra, words in bad:
    p = bsattn("run", t.path("mask.npy"), *files, *extra, "-o", t.path("bad.npy"), expect=2)
    lines = p.stderr.strip().splitlines()
    t.check(len(lines) == 1 and words in p.stderr, f"{' '.join(extra)}: {p.stderr.strip()}")
    t.check(not os.path.exists(t.path("bad.npy")), f"{' '.join(extra)}: wrote an output")

# --transport nccl where it cannot run (no GPU here, or a build without CUDA / NCCL): exit 1, one line. The
# shapes are ones the GPU kernels take (D = 64, block 64), so that only the machine can refuse.
for name in ("q16", "k16", "v16"):
    x = rng.standard_normal((1, 256, 2, 64)).astype(np.float32)
    np.save(t.path(name + ".npy"), (x.view(np.uint32) >> 16).astype(np.uint16))
p = subprocess.run([t.bin, "run", "random:density=0.5", "--q", t.path("q16.npy"), "--k", t.path("k16.npy"), "--v",
                    t.path("v16.npy"), "--dtype", "bf16", "--block", "64", "--backend", "cuda", "--ranks", "2",
                    "--transport", "nccl", "-o", t.path("bad.npy")], capture_output=True, text=True)
if p.returncode != 0:  # on a machine with 2+ GPUs and NCCL it runs (scripts/ring-gpu.sh checks its output)
    t.check(p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1 and
            any(w in p.stderr for w in ("NCCL", "GPU", "CUDA")), f"--transport nccl here: {p.returncode} {p.stderr.strip()}")

# bench --ranks: one record per rank count, efficiency 1 at the base count, loopback named as such.
p = bsattn("bench", "--backend", "cpu", "--ranks", "1,2", "--seq", "512", "--heads", "2", "--head-dim", "32",
           "--block", "64", "--pattern", "causal", "--density", "0.5", "--ring-layout", "zigzag",
           "--warmup", "0", "--min-samples", "1", "--json", t.path("bench.json"))
if p.returncode == 0:
    doc = json.load(open(t.path("bench.json")))
    recs = doc.get("records", [])
    t.check(doc.get("schema") == "bsattn.ring-bench/v1" and [r["ranks"] for r in recs] == [1, 2],
            f"bench --ranks records {[r.get('ranks') for r in recs]}")
    t.check(recs and abs(recs[0]["efficiency"] - 1) < 1e-12 and all(r["communication"] == "loopback" for r in recs),
            "bench --ranks: base efficiency 1, loopback communication")
    t.check(recs and recs[1]["bytes_sent_per_rank"] > 0 and recs[0]["bytes_sent_per_rank"] == 0, "bench --ranks: bytes sent")
    t.check("loopback" in p.stdout and "| strong | 2 |" in p.stdout, f"bench --ranks table: {p.stdout}")
p = bsattn("bench", "--backend", "cpu", "--ranks", "2,1", "--seq", "512", expect=2)
t.check("ascend" in p.stderr, f"bench --ranks 2,1: {p.stderr.strip()}")
p = bsattn("bench", "--backend", "cpu", "--ranks", "1,2", "--causal", "--seq", "512", expect=2)
t.check("--pattern causal" in p.stderr, f"bench --ranks --causal: {p.stderr.strip()}")
p = bsattn("bench", "--backend", "cpu", "--ring-layout", "zigzag", "--seq", "512", expect=2)
t.check("--ranks" in p.stderr, f"bench --ring-layout without --ranks: {p.stderr.strip()}")
t.finish("ring cli: run --ranks 2/3/4 x contiguous/zigzag x causal equals NumPy float64 and the single run, gradients too; bad options exit 2; bench --ranks records")
