"""The Python package (python/bsattn) on the CPU reference with NumPy, no torch: attention and its
backward against float64 attention written here (masked dense scores), masks from specs equal to
`bsattn gen-mask`'s, mask files, Block-Sparse-Attention and FlexAttention mask forms, errors, and
`pip install ./python` into a folder. Run by ctest as: /usr/bin/python3 THIS BSATTN_BINARY SCRATCH_DIR
(libbsattn.so is beside the binary)."""
import os
import subprocess
import sys
import types

import numpy as np

from clitest import CliTest

t = CliTest("python_package")
SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIBRARY = os.path.join(os.path.dirname(os.path.abspath(t.bin)), "libbsattn.so")
os.environ["BSATTN_LIBRARY"] = LIBRARY
sys.path.insert(0, os.path.join(SOURCE, "python"))
import bsattn  # noqa: E402

rng = np.random.default_rng(2024)


def dense_mask(bits, q_len, kv_len, bq, bk, causal, lens_q=None, lens_k=None):
    """[Hq, q_len, kv_len] token mask of a block bitmap [Hq, Mq, Mk] (causal bottom-right aligned)."""
    tok = np.repeat(np.repeat(bits.astype(bool), bq, axis=1), bk, axis=2)[:, :q_len, :kv_len]
    if causal:
        off = (lens_k or kv_len) - (lens_q or q_len)
        tok = tok & (np.arange(kv_len)[None, :] <= np.arange(q_len)[:, None] + off)[None]
    return tok


def reference(q, k, v, tok, scale=None):
    """float64 attention of one sequence: q [S, Hq, D], k/v [Sk, Hkv, D], tok [Hq, S, Sk] bool. Returns
    O [S, Hq, D], LSE [Hq, S], and the pieces the backward needs."""
    q, k, v = (x.astype(np.float64) for x in (q, k, v))
    Hq, Hkv, D = q.shape[1], k.shape[1], q.shape[2]
    scale = scale or 1 / np.sqrt(D)
    kk = np.repeat(k, Hq // Hkv, axis=1)
    vv = np.repeat(v, Hq // Hkv, axis=1)
    s = scale * np.einsum("qhd,khd->hqk", q, kk)
    s = np.where(tok, s, -np.inf)
    mx = np.max(s, axis=2, keepdims=True)
    mx = np.where(np.isfinite(mx), mx, 0)
    p = np.exp(s - mx)
    z = p.sum(axis=2, keepdims=True)
    p = np.divide(p, z, out=np.zeros_like(p), where=z > 0)
    o = np.einsum("hqk,khd->qhd", p, vv)
    lse = np.where(z[..., 0] > 0, np.log(np.where(z[..., 0] > 0, z[..., 0], 1)) + mx[..., 0], -np.inf)
    return o, lse, (p, kk, vv, scale)


def reference_grads(q, k, v, tok, dout):
    o, _, (p, kk, vv, scale) = reference(q, k, v, tok)
    do = dout.astype(np.float64)
    dp = np.einsum("qhd,khd->hqk", do, vv)
    delta = np.einsum("qhd,qhd->hq", do, o)[..., None]
    ds = p * (dp - delta)
    dq = scale * np.einsum("hqk,khd->qhd", ds, kk)
    dk_full = scale * np.einsum("hqk,qhd->khd", ds, q.astype(np.float64))
    dv_full = np.einsum("hqk,qhd->khd", p, do)
    g = q.shape[1] // k.shape[1]
    fold = lambda x: x.reshape(x.shape[0], k.shape[1], g, x.shape[2]).sum(axis=2)  # noqa: E731
    return dq, fold(dk_full), fold(dv_full)


def close(got, want, tol):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    both_inf = np.isinf(want) & (got == want)
    with np.errstate(invalid="ignore"):
        err = np.where(both_inf, 0, np.abs(got - want) / (tol + tol * np.abs(want)))
    return np.isfinite(got[~both_inf]).all() and err.max() <= 1, float(err.max())


# 1. gen_mask gives the bitmap `bsattn gen-mask` writes for the same spec, sizes and seed.
spec_path = t.path("random.npy")
r = subprocess.run([t.bin, "gen-mask", "--quiet", "--pattern", "random:density=0.3", "--seed", "5", "--seq", "1000",
                    "--heads", "3", "--block", "64", "--causal", "-o", spec_path], capture_output=True, text=True)
t.check(r.returncode == 0, "gen-mask: " + r.stderr)
m = bsattn.gen_mask("random:density=0.3", seq_len=1000, heads=3, block_size=64, causal=True, seed=5)
t.check(m.numpy().shape == (1, 3, 16, 16) and (m.numpy() == np.load(spec_path)).all(), "gen_mask equals gen-mask -o")
t.check(m.causal and m.q_len == 1000 and m.block_q == 64, "gen_mask sizes: %r" % m)
t.check((m.kv_num_blocks == m.numpy().sum(axis=3)).all(), "row CSR counts")
hm = bsattn.gen_mask(head_map="0=dense;1=streaming:sink=1,local=2", seq_len=512, heads=2)
t.check(list(hm.head_type) == [0, 2] and hm.head_sink[1] == 1 and hm.head_local[1] == 2, "head map head types")

# 2. The forward on float32 against float64 (GQA, q_len != kv_len with partial blocks, a random block
#    mask as Block-Sparse-Attention's base_blockmask, causal and not). f32 accumulation over <= 200 keys:
#    2e-5 relative.
B, Sq, Sk, Hq, Hkv, D, blk = 2, 150, 200, 4, 2, 32, 32
q = rng.standard_normal((B, Sq, Hq, D), dtype=np.float32)
k = rng.standard_normal((B, Sk, Hkv, D), dtype=np.float32)
v = rng.standard_normal((B, Sk, Hkv, D), dtype=np.float32)
bits = rng.random((B, Hq, 5, 7)) < 0.5
for causal in (False, True):
    o, lse = bsattn.attention(q, k, v, bits, causal=causal, block_size=blk, return_lse=True)
    for b in range(B):
        ro, rl, _ = reference(q[b], k[b], v[b], dense_mask(bits[b], Sq, Sk, blk, blk, causal))
        ok, err = close(o[b], ro, 2e-5)
        t.check(ok, "forward O, causal=%s, batch %d: worst %.3g" % (causal, b, err))
        ok, err = close(lse[b], rl, 2e-5)
        t.check(ok, "forward LSE, causal=%s, batch %d: worst %.3g" % (causal, b, err))

# 3. The backward (dQ, dK summed over each GQA group, dV) against float64: 1e-4 (dS is a difference).
dout = rng.standard_normal(q.shape, dtype=np.float32)
o, lse = bsattn.attention(q, k, v, bits, causal=True, block_size=blk, return_lse=True)
dq, dk, dv = bsattn.attention_backward(q, k, v, o, lse, dout, bits, causal=True, block_size=blk)
for b in range(B):
    want = reference_grads(q[b], k[b], v[b], dense_mask(bits[b], Sq, Sk, blk, blk, True), dout[b])
    for name, got, w in zip(("dq", "dk", "dv"), (dq[b], dk[b], dv[b]), want):
        ok, err = close(got, w, 1e-4)
        t.check(ok, "backward %s, batch %d: worst %.3g" % (name, b, err))

# 4. PyTorch's layout (bhsd) gives the same numbers transposed; float16 within its rounding (2^-10).
o_bhsd = bsattn.attention(q.transpose(0, 2, 1, 3), k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3), bits,
                          block_size=blk, layout="bhsd")
o_bshd = bsattn.attention(q, k, v, bits, block_size=blk)
t.check(np.array_equal(o_bhsd.transpose(0, 2, 1, 3), o_bshd), "layout bhsd = bshd transposed")
o16 = bsattn.attention(q.astype(np.float16), k.astype(np.float16), v.astype(np.float16), bits, block_size=blk)
t.check(o16.dtype == np.float16 and close(o16, o_bshd, 5e-3)[0], "float16 inputs: %.3g" % close(o16, o_bshd, 5e-3)[1])

# 5. Varlen: packed sequences with cu_seqlens, the mask's rows relative to each sequence.
lens = [70, 130, 20]
cu = np.concatenate([[0], np.cumsum(lens)]).astype(np.int32)
qp = rng.standard_normal((cu[-1], Hq, D), dtype=np.float32)
kp = rng.standard_normal((cu[-1], Hkv, D), dtype=np.float32)
vp = rng.standard_normal((cu[-1], Hkv, D), dtype=np.float32)
vbits = rng.random((1, Hq, 5, 5)) < 0.6
o, lse = bsattn.attention(qp, kp, vp, vbits, causal=True, cu_seqlens=cu, block_size=blk, return_lse=True)
t.check(lse.shape == (Hq, cu[-1]), "varlen LSE shape %s" % (lse.shape,))
for s, n in enumerate(lens):
    a, e = cu[s], cu[s + 1]
    tok = dense_mask(vbits[0], max(lens), max(lens), blk, blk, True)[:, :n, :n]
    ro, rl, _ = reference(qp[a:e], kp[a:e], vp[a:e], tok)
    t.check(close(o[a:e], ro, 2e-5)[0] and close(lse[:, a:e], rl, 2e-5)[0], "varlen sequence %d" % s)

# 6. Mask files (.npy with sizes, .json self-describing) and FlexAttention's BlockMask (partial + full
#    blocks, as torch would hold them; NumPy arrays stand in for the tensors here).
json_path = t.path("random.json")
m.save(json_path)
back = bsattn.load_mask(json_path)
t.check((back.numpy() == m.numpy()).all() and back.causal, "Mask.save / load_mask .json")
qm = rng.standard_normal((1, 1000, 3, 16), dtype=np.float32)
km = rng.standard_normal((1, 1000, 3, 16), dtype=np.float32)
from_file = bsattn.attention(qm, km, km, spec_path, causal=True, block_size=64)
from_spec = bsattn.attention(qm, km, km, m)
t.check(np.array_equal(from_file, from_spec), "a .npy mask file gives the generated mask's result")
nb = m.numpy()
full = np.zeros_like(nb)
full[..., 0] = nb[..., 0]  # column 0 as "full" blocks, the rest as partial ones
part = nb & ~full


def csr(b):
    num = b.sum(axis=3).astype(np.int32)
    idx = np.zeros(b.shape, np.int32)
    for bh in np.ndindex(b.shape[:3]):
        kept = np.nonzero(b[bh])[0]
        idx[bh][:len(kept)] = kept
    return num, idx


flex = types.SimpleNamespace(BLOCK_SIZE=(64, 64), seq_lengths=(1000, 1000))
flex.kv_num_blocks, flex.kv_indices = csr(part)
flex.full_kv_num_blocks, flex.full_kv_indices = csr(full)
t.check(np.array_equal(bsattn.from_flex(flex).numpy(), nb), "FlexAttention BlockMask: partial | full blocks")
t.check(np.array_equal(bsattn.attention(qm, km, km, flex, causal=True), from_spec), "attention with a BlockMask")

# 7. Bad input: a BsattnError with code 2 and the library's one line, or a Python TypeError/ValueError.
def raises(fn, kind, text):
    try:
        fn()
    except kind as e:
        t.check(text in str(e), "message %r lacks %r" % (str(e), text))
        return getattr(e, "code", None)
    t.check(False, "no %s for %s" % (kind.__name__, text))


code = raises(lambda: bsattn.attention(q, k, v[:, :100], bits, block_size=blk), bsattn.BsattnError, "v: shape")
t.check(code == 2, "bad shapes are code 2")
raises(lambda: bsattn.attention(q.astype(np.float64), k, v, bits, block_size=blk), TypeError, "float64")
raises(lambda: bsattn.attention(q, k.astype(np.float16), v, bits, block_size=blk), bsattn.BsattnError, "k: dtype f16")
raises(lambda: bsattn.attention(q, k, v, bits[:, :2], block_size=blk), bsattn.BsattnError, "mask has 2 heads")
raises(lambda: bsattn.attention(q, k, v, bits, block_size=64), ValueError, "the block mask is [2,4,5,7]")
raises(lambda: bsattn.attention(q, k, v, bits, score="relu", block_size=blk), ValueError, "score='relu'")
raises(lambda: bsattn.gen_mask("local:window=x", seq_len=100), bsattn.BsattnError, "window")
raises(lambda: bsattn.load_mask(t.path("missing.npy")), bsattn.BsattnError, "missing.npy")

# 8. `pip install ./python` (here into a folder, without the index) bundles the library; the installed
#    package imports from there and computes.
if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode == 0:
    target = t.path("site")
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--upgrade",
                        "--target", target, os.path.join(SOURCE, "python")], capture_output=True, text=True)
    t.check(r.returncode == 0, "pip install ./python: " + r.stderr[-2000:])
    env = dict(os.environ, PYTHONPATH=target)
    env.pop("BSATTN_LIBRARY")
    r = subprocess.run([sys.executable, "-c", "import bsattn, numpy as np; x = np.ones((1, 64, 1, 16), np.float32); "
                        "print(bsattn.library_path()); print(bsattn.attention(x, x, x, bsattn.gen_mask('dense', "
                        "seq_len=64, block_size=64)).sum())"], capture_output=True, text=True, env=env, cwd=t.scratch)
    t.check(r.returncode == 0 and r.stdout.startswith(os.path.join(target, "bsattn")) and "1024.0" in r.stdout,
            "the installed package: " + r.stdout + r.stderr)
else:
    print("pip is not installed: skipping the pip install check")

t.finish("python package: attention, backward, masks, files, errors and pip install checked")
