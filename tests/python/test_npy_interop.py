"""NumPy interop: bsattn's .npy/CSR files read by NumPy equal NumPy's own computation of the pattern,
are byte-identical to numpy.save of the same array, and .npy files written by NumPy are read back by
bsattn (custom:file=) unchanged. Run by ctest as: /usr/bin/python3 THIS BSATTN_BINARY SCRATCH_DIR."""
import io
import json
import os
import subprocess
import sys

import numpy as np

BIN, SCRATCH = sys.argv[1], sys.argv[2]
os.makedirs(SCRATCH, exist_ok=True)


def path(name):
    return os.path.join(SCRATCH, "interop_" + name)


def run(*args):
    r = subprocess.run([BIN, "gen-mask", "--quiet", *args], capture_output=True, text=True)
    assert r.returncode == 0, (args, r.stderr)


def local_reference(q_len, kv_len, block, window, heads):
    mq, mk = -(-q_len // block), -(-kv_len // block)
    m = np.zeros((1, heads, mq, mk), bool)
    for i in range(mq):
        last_key = min(q_len, (i + 1) * block) - 1 + kv_len - q_len
        d = min(last_key // block, mk - 1)
        m[0, :, i, max(0, d - window):min(mk, d + window + 1)] = True
    return m


# 1. A local mask with a partial last block, read by NumPy, equals NumPy's computation; bytes identical.
run("--pattern", "local:window=3", "--seq", "5000", "--heads", "3", "--block", "64", "-o", path("local.npy"),
    "--csr", path("local"))
ours = np.load(path("local.npy"))
ref = local_reference(5000, 5000, 64, 3, 3)
assert ours.dtype == np.bool_ and ours.shape == ref.shape, (ours.dtype, ours.shape)
assert np.array_equal(ours, ref)
buf = io.BytesIO()
np.save(buf, ref)
assert open(path("local.npy"), "rb").read() == buf.getvalue(), "header/data differ from numpy.save"

# 2. CSR files: int32, ascending indices, zero padded, matching the bitmap; column CSR is the transpose's.
num, idx = np.load(path("local_kv_num_blocks.npy")), np.load(path("local_kv_indices.npy"))
qnum, qidx = np.load(path("local_q_num_blocks.npy")), np.load(path("local_q_indices.npy"))
assert num.dtype == np.int32 and idx.dtype == np.int32
assert num.shape == ref.shape[:3] and idx.shape == ref.shape
for b, h, i in np.ndindex(*num.shape):
    cols = np.nonzero(ref[b, h, i])[0]
    assert num[b, h, i] == len(cols)
    assert np.array_equal(idx[b, h, i, :len(cols)], cols) and not idx[b, h, i, len(cols):].any()
t = ref.transpose(0, 1, 3, 2)
for b, h, j in np.ndindex(*qnum.shape):
    rows = np.nonzero(t[b, h, j])[0]
    assert qnum[b, h, j] == len(rows) and np.array_equal(qidx[b, h, j, :len(rows)], rows)

# 3. The .json bitmap decodes with NumPy (docs/mask-json.md) to the same mask.
run("--pattern", "local:window=3", "--seq", "5000", "--heads", "3", "--block", "64", "-o", path("local.json"))
import base64
j = json.load(open(path("local.json")))
assert j["schema"] == "bsattn.mask/v1"
bm = j["bitmap"]
n = int(np.prod(bm["shape"]))
bits = np.unpackbits(np.frombuffer(base64.b64decode(bm["data"]), np.uint8))[:n].reshape(bm["shape"]).astype(bool)
assert np.array_equal(bits, ref)
assert j["spec"]["groups"][0]["params"]["window"] == 3

# 4. NumPy writes masks (bool, uint8, int64, 3-D) that bsattn reads back through custom:file= unchanged.
rng = np.random.default_rng(12345)
for dtype, shape in [(bool, (1, 2, 40, 40)), (np.uint8, (2, 40, 40)), (np.int64, (1, 2, 40, 40))]:
    m = rng.random(shape) < 0.3
    np.save(path("numpy_in.npy"), m.astype(dtype))
    run("--pattern", "custom:file=" + path("numpy_in.npy"), "--seq", "2500", "--heads", "2", "--block", "64",
        "-o", path("back.npy"))
    back = np.load(path("back.npy"))
    assert np.array_equal(back.reshape(m.shape if m.ndim == 4 else (1,) + m.shape), m.reshape(back.shape)), dtype

# 5. Random masks: NumPy recomputes the per-row counts from the density definition.
run("--pattern", "random:density=0.3", "--seq", "4000", "--heads", "2", "--block", "128", "--causal", "--seed", "9",
    "-o", path("random.npy"))
r = np.load(path("random.npy"))
mq = r.shape[2]
for i in range(mq):
    visible = i + 1  # square, full blocks except the last: causally visible blocks of row i
    want = max(1, int(np.floor(0.3 * visible + 0.5)))
    assert (r[0, :, i].sum(axis=-1) == want).all(), (i, r[0, :, i].sum(axis=-1), want)
    assert r[0, :, i, i].all() and not r[0, :, i, i + 1:].any()
print("ok")
