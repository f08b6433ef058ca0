"""One density everywhere (issue 25, docs/density.md): gen-mask, analyze, run and visualize mask print the
same `density` and `pair density` for the same mask, and they are what NumPy computes from the bitmap.

Usage: test_density.py BSATTN_BINARY SCRATCH_DIR. For each case NumPy reads the .npy bitmap and computes,
token by token with the bottom-right causal rule (FlashAttention's), the visible blocks and the computed
(q,k) pairs; density = kept / visible blocks, pair density = computed / dense pairs. Then: gen-mask's and
run's --json stats and analyze's --json quality.mask hold those numbers, and the lines they print show
them to 4 decimals under those names; visualize mask's subtitle and --ascii header too.
"""
import json
import os
import re
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import CliTest  # noqa: E402

t = CliTest("density")


def run(*args):
    p = subprocess.run([t.bin, *args], capture_output=True, text=True)
    t.check(p.returncode == 0, f"{' '.join(args)}: exit {p.returncode}: {p.stderr.strip()}")
    return p


def expected(bits, q_len, kv_len, bq, bkv, causal):
    """Visible blocks, kept blocks and computed pairs (over batch and heads), and dense pairs."""
    off = kv_len - q_len
    mq, mk = bits.shape[-2:]
    allowed = np.zeros((mq, mk), np.int64)  # pairs causal allows in each block (tails do not exist)
    for i in range(mq):
        qs = np.arange(i * bq, min((i + 1) * bq, q_len))
        for j in range(mk):
            k0, k1 = j * bkv, min((j + 1) * bkv, kv_len)
            if causal:
                allowed[i, j] = np.clip(qs + off - k0 + 1, 0, k1 - k0).sum()
            else:
                allowed[i, j] = len(qs) * (k1 - k0)
    heads = bits.reshape(-1, mq, mk)
    visible = (allowed > 0).sum() * heads.shape[0]
    kept = int(heads.sum())
    computed = int((heads * allowed).sum())
    dense = int(allowed.sum()) * heads.shape[0]
    return kept / visible, computed / dense, kept, visible


CASES = [  # pattern, q_len, kv_len, block, causal
    ("local:window=2", 8192, 8192, 128, True),
    ("random:density=0.3", 1000, 1000, 64, True),     # tails
    ("random:density=0.3", 640, 1000, 64, True),      # q_len != kv_len: bottom-right causal
    ("causal", 1024, 1024, 128, True),                # dense causal: density 1
    ("streaming:sink=1,local=2", 900, 900, 64, False),
]
for n, (pattern, q_len, kv_len, block, causal) in enumerate(CASES):
    tag = f"case{n}"
    npy, js = t.path(tag + ".npy"), t.path(tag + ".json")
    c = ["--causal"] if causal else []
    g = run("gen-mask", "--pattern", pattern, "--q-len", str(q_len), "--kv-len", str(kv_len), "--heads", "2",
            "--block", str(block), *c, "-o", npy, "--json", js)
    bits = np.load(npy)
    dens, pairs, kept, visible = expected(bits, q_len, kv_len, block, block, causal)
    if pattern == "causal":
        t.check(abs(dens - 1) < 1e-12, f"{pattern}: NumPy's density of the causal pattern is {dens}")
    st = json.load(open(js))["stats"]
    t.check(abs(st["density"] - dens) < 1e-9, f"{pattern}: gen-mask density {st['density']} vs NumPy {dens}")
    t.check(abs(st["pair_density"] - pairs) < 1e-9, f"{pattern}: gen-mask pair_density {st['pair_density']} vs {pairs}")
    t.check(st["kept_blocks"] == kept and st["visible_blocks"] == visible,
            f"{pattern}: kept {st['kept_blocks']}/{kept}, visible {st['visible_blocks']}/{visible}")
    t.check(abs(st["bitmap_fill"] - bits.mean()) < 1e-9, f"{pattern}: bitmap_fill {st['bitmap_fill']} vs mean {bits.mean()}")
    want = f"density {dens:.4f}"
    t.check(want in g.stdout and f"pair density {pairs:.4f}" in g.stdout,
            f"{pattern}: gen-mask prints {want!r} and pair density {pairs:.4f}: {g.stdout[:400]!r}")
    if q_len == kv_len:  # analyze and run on synthetic self-attention inputs of the same sizes
        sizes = ["--seq", str(q_len), "--heads", "2", "--head-dim", "16", "--block", str(block), *c]
        aj = t.path(tag + "_a.json")
        a = run("analyze", js.replace(".json", ".npy"), "--synthetic", "random", *sizes, "--json", aj)
        q = json.load(open(aj))["quality"]
        t.check(abs(q["mask"]["density"] - dens) < 1e-9, f"{pattern}: analyze density {q['mask']['density']} vs {dens}")
        t.check(all(abs(h["density"] - dh) < 1e-9 for h, dh in
                    zip(q["heads"], [expected(bits[:, h], q_len, kv_len, block, block, causal)[0] for h in range(2)])),
                f"{pattern}: analyze per-head density")
        t.check(f"summary: {want}" in a.stdout and f"pair density {pairs:.4f}" in a.stdout,
                f"{pattern}: analyze prints {want!r}: {a.stdout[-300:]!r}")
        rj = t.path(tag + "_r.json")
        r = run("run", npy, "--synthetic", "random", *sizes, "--backend", "cpu", "-o", t.path(tag + "_o.npy"), "--json", rj)
        t.check(f"mask {want}" in r.stdout, f"{pattern}: run prints 'mask {want}': {r.stdout!r}")
        t.check(abs(json.load(open(rj))["mask_stats"]["density"] - dens) < 1e-9, f"{pattern}: run --json density")
    asc = run("visualize", "mask", npy, "--q-len", str(q_len), "--kv-len", str(kv_len), "--block", str(block), *c,
              "--heads", "0", "--ascii")
    d0 = expected(bits[:, 0], q_len, kv_len, block, block, causal)[0]
    t.check(f"density {d0:.4f}" in asc.stdout, f"{pattern}: visualize --ascii head 0 density {d0:.4f}: {asc.stdout[:200]!r}")

t.finish("ok: gen-mask, analyze, run and visualize print NumPy's density and pair density")
