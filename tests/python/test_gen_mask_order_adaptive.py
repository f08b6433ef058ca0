"""gen-mask with --order and a content-adaptive pattern (issue 23, case 8): the mask is built for the
reordered sequence, so the selector must score the reordered tokens. The mask made with --order must
equal the one made without it from Q/K that NumPy reorders with the permutation gen-mask emits, and
differ from the mask of the original order. Run by ctest as: /usr/bin/python3 THIS BSATTN_BINARY SCRATCH_DIR."""
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import CliTest  # noqa: E402

t = CliTest("gen_mask_order_adaptive")
rng = np.random.default_rng(8)
S, H, D = 256, 2, 16
# Tokens of a 16x16 grid whose keys carry their raster position, so that the selection depends on
# which tokens share a block: different for gilbert and raster orders.
pos = np.arange(S)
q = rng.standard_normal((1, S, H, D)).astype(np.float32)
k = rng.standard_normal((1, S, H, D)).astype(np.float32)
k[0, :, :, 0] += (pos % 16)[:, None] * 0.5
q[0, :, :, 1] += (pos // 16)[:, None] * 0.5
np.save(t.path("q.npy"), q)
np.save(t.path("k.npy"), k)


def gen(out, qf, kf, extra):
    r = subprocess.run([t.bin, "gen-mask", "--pattern", "energy:tau=0.5", "--seq", str(S), "--heads", str(H),
                        "--block", "16", "--q", qf, "--k", kf, "-o", out, "-q", *extra], capture_output=True, text=True)
    t.check(r.returncode == 0, "gen-mask %s: exit %d: %s" % (" ".join(extra), r.returncode, r.stderr.strip()))
    return out


for order in ("gilbert", "morton"):
    with_order = gen(t.path(order + ".json"), t.path("q.npy"), t.path("k.npy"),
                     ["--order", order, "--grid", "16x16", "--emit-permutation", t.path(order + "_perm.npy")])
    perm = np.load(t.path(order + "_perm.npy"))
    t.check(sorted(perm.tolist()) == list(range(S)), order + ": the permutation covers every token once")
    np.save(t.path(order + "_q.npy"), q[:, perm])
    np.save(t.path(order + "_k.npy"), k[:, perm])
    by_numpy = gen(t.path(order + "_numpy.json"), t.path(order + "_q.npy"), t.path(order + "_k.npy"), [])
    plain = gen(t.path("plain.json"), t.path("q.npy"), t.path("k.npy"), [])
    a, b, c = (json.load(open(p)) for p in (with_order, by_numpy, plain))
    t.check(a["bitmap"]["data"] == b["bitmap"]["data"],
            order + ": --order selects from the reordered Q/K (equals the mask of Q/K NumPy reordered)")
    t.check(a["bitmap"]["data"] != c["bitmap"]["data"], order + ": the order changes the adaptive mask")
    t.check(a["spec"]["order"]["name"] == order, order + ": the .json records the order")
t.finish("gen-mask --order: adaptive selectors score the reordered tokens")
