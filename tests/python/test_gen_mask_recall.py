"""bsattn gen-mask --recall: an adaptive selector's mask judged on the Q/K it was made from. NumPy
writes seeded Q/K (BSHD float32, a causal decay structure so that attention is far from uniform),
bsattn selects blocks (energy threshold, top-k) and reports per-row recall; this test recomputes the
exact dense softmax in float64 with NumPy, reads the mask bsattn wrote, and compares the mean and
worst-row recall per head and overall. Also: --recall without inputs is a usage error (exit 2).
Run by ctest as: /usr/bin/python3 THIS BSATTN_BINARY SCRATCH_DIR."""
import json
import os
import subprocess

import numpy as np

from clitest import CliTest

T = CliTest("gen_mask_recall")
BIN, path, check = T.bin, T.path, T.check


rng = np.random.default_rng(11)
B, S, H, D, BLOCK = 1, 300, 2, 32, 64  # 300 = 4 full blocks and a partial one
# Rotary-like decay: q.k falls with distance, plus noise, so the dense mass is concentrated.
pos = np.arange(S)[:, None]
freq = 1.0 / (10.0 ** (np.arange(D // 2) / (D // 2)))
ang = pos * freq[None, :]
base = np.concatenate([np.cos(ang), np.sin(ang)], axis=1)
q = np.stack([3.0 * base + 0.3 * rng.standard_normal((S, D)) for _ in range(H)], axis=1)[None].astype(np.float32)
k = np.stack([3.0 * base + 0.3 * rng.standard_normal((S, D)) for _ in range(H)], axis=1)[None].astype(np.float32)
np.save(path("q.npy"), q)
np.save(path("k.npy"), k)


def numpy_recall(mask, causal):
    """Per (head, row) share of the dense softmax mass inside kept blocks, float64."""
    out = np.full((H, S), np.nan)
    scale = 1.0 / np.sqrt(D)
    for h in range(H):
        s = (q[0, :, h, :].astype(np.float64) @ k[0, :, h, :].astype(np.float64).T) * scale
        if causal:
            s = np.where(np.arange(S)[None, :] <= np.arange(S)[:, None], s, -np.inf)
        p = np.exp(s - s.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        kept = np.repeat(np.repeat(mask[0, h], BLOCK, axis=0), BLOCK, axis=1)[:S, :S]
        out[h] = (p * kept).sum(axis=1)
    return out


for spec, causal in (("energy:tau=0.8", False), ("topk:k=2", True)):
    args = [BIN, "gen-mask", "--pattern", spec, "--seq", str(S), "--heads", str(H), "--block", str(BLOCK),
            "--q", path("q.npy"), "--k", path("k.npy"), "--recall", "-o", path("m.npy"), "--json", path("m.json"), "-q"]
    if causal:
        args.append("--causal")
    r = subprocess.run(args, capture_output=True, text=True)
    check(r.returncode == 0, "%s: exit %d %s" % (spec, r.returncode, r.stderr.strip()))
    if r.returncode != 0:
        continue
    mask = np.load(path("m.npy"))
    got = json.load(open(path("m.json")))["recall"]
    want = numpy_recall(mask, causal)
    check(abs(got["mean"] - np.nanmean(want)) < 1e-6, "%s: mean recall %r vs NumPy %r" % (spec, got["mean"], np.nanmean(want)))
    check(abs(got["min"] - np.nanmin(want)) < 1e-6, "%s: worst row %r vs NumPy %r" % (spec, got["min"], np.nanmin(want)))
    check(got["rows"] == H * S, "%s: rows %r, want %d" % (spec, got["rows"], H * S))
    for h in range(H):
        ph = got["per_head"][h]
        check(abs(ph["mean"] - np.nanmean(want[h])) < 1e-6 and abs(ph["min"] - np.nanmin(want[h])) < 1e-6,
              "%s head %d: %r vs NumPy mean %r min %r" % (spec, h, ph, np.nanmean(want[h]), np.nanmin(want[h])))
    # The selector kept part of the mask only: recall is informative (below 1), and above chance.
    density = mask.mean()
    check(density < 1.0 and np.nanmean(want) > density, "%s: density %.3f, recall %.3f" % (spec, density, np.nanmean(want)))

# --recall needs inputs: a pattern without Q/K gives exit 2 and one line.
if os.path.exists(path("x.npy")):
    os.remove(path("x.npy"))
r = subprocess.run([BIN, "gen-mask", "--pattern", "local:window=1", "--seq", "256", "--recall", "-o", path("x.npy")],
                   capture_output=True, text=True)
lines = [l for l in r.stderr.splitlines() if l.strip()]
check(r.returncode == 2 and len(lines) == 1 and "--recall" in lines[0], "--recall without Q/K: %d %r" % (r.returncode, lines))
check(not os.path.exists(path("x.npy")), "--recall without Q/K wrote its output")

T.finish("ok: gen-mask --recall matches NumPy")
