"""analyze --check-grads takes gradient files as `bsattn run --do` writes them (float32 .npy, the layout of
--q, dK/dV with the KV heads): the files `run --backend cpu --do` wrote pass against the float64 reference
(relative L2, max abs and cosine per gradient in --json), for float32 inputs and for bf16 inputs stored as
uint16 bits with --dtype bf16, dO too (what `run --backend cuda --do` reads); a perturbed gradient fails (exit 1);
files in the wrong slot are a usage error naming the file (exit 2). GQA (Hq = 4, Hkv = 2), a sequence tail
(S = 200, block 64), layout bhsd."""
import json
import subprocess

import numpy as np

from clitest import CliTest

t = CliTest("analyze_check_grads")
rng = np.random.default_rng(7)
B, S, HQ, HKV, D = 1, 200, 4, 2, 32


def save(name, a):
    np.save(t.path(name), a)
    return t.path(name)


def bf16_bits(a):
    """float32 -> bf16 bits, round to nearest even (as bsattn's --dtype bf16)."""
    u = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


q = rng.standard_normal((B, HQ, S, D)).astype(np.float32)
k = rng.standard_normal((B, HKV, S, D)).astype(np.float32)
v = rng.standard_normal((B, HKV, S, D)).astype(np.float32)
d_o = rng.standard_normal((B, HQ, S, D)).astype(np.float32)
mask = ["random:density=0.5", "--block", "64", "--causal", "--seed", "3"]
# bf16: Q/K/V and dO as uint16 bits, read with --dtype bf16 (as scripts/peers.py hands them to run --backend cuda).
cases = {
    "float32": (["--q", save("q.npy", q), "--k", save("k.npy", k), "--v", save("v.npy", v)], 1e-4,
                save("do.npy", d_o)),
    "bf16": (["--q", save("q16.npy", bf16_bits(q)), "--k", save("k16.npy", bf16_bits(k)),
              "--v", save("v16.npy", bf16_bits(v)), "--dtype", "bf16"], 2e-2, save("do16.npy", bf16_bits(d_o))),
}

for label, (inputs, rtol, dout) in cases.items():
    common = mask + inputs + ["--layout", "bhsd"]
    g = [t.path("%s_%s.npy" % (label, n)) for n in ("dq", "dk", "dv")]
    r = subprocess.run([t.bin, "run"] + common + ["--backend", "cpu", "-o", t.path(label + "_o.npy"), "--do", dout,
                                                  "--dq", g[0], "--dk", g[1], "--dv", g[2], "-q"],
                       capture_output=True, text=True)
    t.check(r.returncode == 0, "%s: run --backend cpu --do: %s" % (label, r.stderr.strip()))
    if r.returncode != 0:
        continue
    shapes = [np.load(p).shape for p in g]
    dtypes = [np.load(p).dtype for p in g]
    t.check(shapes == [(B, HQ, S, D), (B, HKV, S, D), (B, HKV, S, D)] and all(x == np.float32 for x in dtypes),
            "%s: gradient files are float32 in the layout of --q: %s %s" % (label, shapes, dtypes))

    check = [t.bin, "analyze"] + common + ["--do", dout, "--json", "-", "-q"]
    r = subprocess.run(check + ["--check-grads", ",".join(g)], capture_output=True, text=True)
    t.check(r.returncode == 0, "%s: analyze --check-grads passes: %s" % (label, r.stderr.strip()))
    if r.returncode == 0:
        c = json.loads(r.stdout)["check"]
        t.check(c["pass"] is True and abs(c["rtol"] - rtol) < 1e-12, "%s: pass with the default bound: %s" % (label, c))
        for name in ("dQ", "dK", "dV"):
            e = c.get(name, {})
            t.check(e.get("pass") is True and 0 <= e.get("rel_l2", 1) <= rtol / 10 and e.get("max_abs", 1) < 1e-2
                    and e.get("cosine", 0) > 0.99999, "%s: %s within reach of the float64 reference: %s" % (label, name, e))

    # A gradient off by 5% in one head: that gradient fails, the run exits 1, the others still pass.
    bad = np.load(g[1])
    bad[:, 1] *= 1.05
    bad_path = save(label + "_dk_bad.npy", bad)
    r = subprocess.run(check + ["--check-grads", ",".join([g[0], bad_path, g[2]])], capture_output=True, text=True)
    t.check(r.returncode == 1 and "check failed" in r.stderr, "%s: a perturbed dK fails (exit 1): %d %s" %
            (label, r.returncode, r.stderr.strip()))
    if r.stdout.strip():
        c = json.loads(r.stdout)["check"]
        t.check(c["dK"]["pass"] is False and c["dQ"]["pass"] is True and c["dV"]["pass"] is True,
                "%s: only dK fails: %s" % (label, c))

    # dK given where dQ belongs: its KV heads do not match Q's: exit 2, one line naming the file.
    r = subprocess.run(check + ["--check-grads", ",".join([g[1], g[0], g[2]])], capture_output=True, text=True)
    err = r.stderr.strip().splitlines()
    t.check(r.returncode == 2 and len(err) == 1 and g[1] in err[0] and "shape" in err[0],
            "%s: a gradient of the wrong shape exits 2 naming it: %d %s" % (label, r.returncode, err))

t.finish("analyze --check-grads: run --do gradients (float32 and bf16 inputs, GQA, tail, bhsd) checked")
