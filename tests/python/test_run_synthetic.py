"""bsattn run --synthetic KIND --seq --heads --kv-heads --head-dim: run on analyze's synthetic inputs.

Usage: test_run_synthetic.py BSATTN_BINARY SCRATCH_DIR. NumPy reads the outputs back. Checks: shapes
from the sizes asked (GQA included), finite values, the --json summary records the synthetic kind, sizes
and seed; the same seed gives the same O bit for bit and another seed another O; float32 agrees with the
float64 reference (--f64) within 1e-5 relative (float32 accumulation over at most 256 keys); a causal
mask's first query sees only key 0, so its LSE is the same for every mask that keeps block (0, 0).
"""
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import CliTest  # noqa: E402

t = CliTest("run_synthetic")
SIZES = ["--seq", "256", "--heads", "4", "--kv-heads", "2", "--head-dim", "16", "--block", "64"]


def run(*args, expect=0):
    p = subprocess.run([t.bin, "run", *args], capture_output=True, text=True)
    t.check(p.returncode == expect, f"run {' '.join(args)}: exit {p.returncode}, wanted {expect}; {p.stderr.strip()}")
    return p


def outputs(tag, mask, *extra, seed="5"):
    o, lse, js = t.path(tag + "_o.npy"), t.path(tag + "_lse.npy"), t.path(tag + ".json")
    run(mask, "--synthetic", "decay", *SIZES, "--causal", "--backend", "cpu", "--seed", seed, "-o", o, "--lse", lse,
        "--json", js, "-q", *extra)
    if not os.path.exists(o):
        t.finish("")
    return np.load(o), np.load(lse), json.load(open(js))


o, lse, js = outputs("a", "random:density=0.5")
t.check(o.shape == (1, 256, 4, 16) and o.dtype == np.float32, f"O shape {o.shape} {o.dtype}")
t.check(lse.shape == (1, 4, 256), f"LSE shape {lse.shape}")
t.check(np.isfinite(o).all() and np.isfinite(lse).all(), "O and LSE finite (every causal row keeps its diagonal block)")
t.check(np.abs(o).max() > 0, "O is not all zero")
inputs = js.get("inputs", {})
t.check(inputs.get("source") == "synthetic", f"--json inputs source: {inputs.get('source')}")
t.check(inputs.get("sizes") == {"batch": 1, "seq": 256, "heads_q": 4, "heads_kv": 2, "head_dim": 16},
        f"--json sizes: {inputs.get('sizes')}")
t.check(inputs.get("synthetic", {}).get("kind") == "decay", f"--json synthetic: {inputs.get('synthetic')}")
t.check(js.get("seed") == 5, f"--json seed {js.get('seed')}")

o2, _, _ = outputs("b", "random:density=0.5")
t.check(np.array_equal(o, o2), "the same seed gives the same O")
o3, _, _ = outputs("c", "random:density=0.5", seed="6")
t.check(not np.array_equal(o, o3), "another seed gives another O")

o64, lse64, _ = outputs("d", "random:density=0.5", "--f64")
rel = np.abs(o - o64).max() / np.abs(o64).max()
t.check(rel < 1e-5, f"float32 vs float64 reference: worst relative difference {rel:.2e}")

_, lse_dense, _ = outputs("e", "dense")
t.check(np.allclose(lse_dense[:, :, 0], lse[:, :, 0], rtol=0, atol=1e-6),
        "query 0 sees only key 0 under causal: its LSE does not depend on the mask")
t.check(not np.allclose(lse_dense[:, :, -1], lse[:, :, -1]), "the last query's LSE does depend on the mask")

# Bad usage: files and --synthetic together; an unknown kind; an odd head dim.
q = t.path("q.npy")
np.save(q, np.random.default_rng(0).standard_normal((1, 256, 4, 16), dtype=np.float32))
for args, needle in ((["--synthetic", "decay", "--q", q, "--k", q, "--v", q], "--synthetic"),
                     (["--synthetic", "nosuch"], "nosuch"),
                     (["--synthetic", "decay", "--head-dim", "15"], "head")):
    p = run("dense", *args, "--seq", "256", "--backend", "cpu", "-o", t.path("bad.npy"), expect=2)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    t.check(len(lines) == 1 and needle in p.stderr, f"{args}: one line naming {needle!r}, got {p.stderr!r}")
    t.check(not os.path.exists(t.path("bad.npy")), f"{args}: nothing written")

t.finish("ok: run --synthetic computes on analyze's synthetic inputs")
