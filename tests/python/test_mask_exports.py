"""gen-mask --flex DIR (FlexAttention) and --bsa DIR (Block-Sparse-Attention) exports (issue 25).

Usage: test_mask_exports.py BSATTN_BINARY SCRATCH_DIR. NumPy reads every file. Independent checks:
- FlexAttention: partial and full blocks are disjoint and together the bitmap of the same run's .npy; a
  kept block is full exactly when, token by token (NumPy, bottom-right causal rule), it is full-size and
  every pair in it is allowed; rows list ascending indices then zeros; the q_* files are the same sets by
  column; flex.json holds the sizes; all int32. Cases: causal with tails, q_len != kv_len, non-causal.
- Block-Sparse-Attention: head_mask_type is 0 / -1 / 1..n by the head map's types, base_blockmask holds
  the sparse heads' bitmaps in order, streaming_info the (sink, local) numbers the head map gave;
  a block size other than 128 is refused (exit 2, one line, nothing written).
"""
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import CliTest  # noqa: E402

t = CliTest("mask_exports")


def run(*args, expect=0):
    p = subprocess.run([t.bin, *args], capture_output=True, text=True)
    t.check(p.returncode == expect, f"{' '.join(args)}: exit {p.returncode}, wanted {expect}; {p.stderr.strip()}")
    return p


def full_blocks(q_len, kv_len, bq, bkv, causal):
    """[Mq, Mk]: the blocks where every pair exists and is allowed (token by token)."""
    mq, mk = -(-q_len // bq), -(-kv_len // bkv)
    off = kv_len - q_len
    out = np.zeros((mq, mk), bool)
    for i in range(mq):
        for j in range(mk):
            qs = np.arange(i * bq, (i + 1) * bq)
            ks = np.arange(j * bkv, (j + 1) * bkv)
            if qs[-1] >= q_len or ks[-1] >= kv_len:
                continue
            out[i, j] = (not causal) or bool((ks[None, :] <= qs[:, None] + off).all())
    return out


def csr_sets(num, idx):
    """The set of blocks per row, checking ascending order and zero padding."""
    sets = np.zeros(idx.shape, bool)
    for pos in np.ndindex(num.shape):
        n = int(num[pos])
        row = idx[pos]
        t.check(np.all(np.diff(row[:n]) > 0), f"row {pos} ascending: {row[:n]}")
        t.check(np.all(row[n:] == 0), f"row {pos} padded with zeros: {row[n:]}")
        sets[pos + (slice(None),)][row[:n]] = True
    return sets


for n, (q_len, kv_len, block, causal) in enumerate([(1000, 1000, 128, True), (640, 1000, 64, True),
                                                      (700, 700, 128, False)]):
    d, npy = t.path(f"flex{n}"), t.path(f"flex{n}.npy")
    c = ["--causal"] if causal else []
    run("gen-mask", "--pattern", "random:density=0.5", "--q-len", str(q_len), "--kv-len", str(kv_len), "--heads", "3",
        "--block", str(block), *c, "--seed", str(n), "-o", npy, "--flex", d, "-q")
    bits = np.load(npy)
    load = lambda name: np.load(os.path.join(d, name + ".npy"))  # noqa: E731
    files = {name: load(name) for name in ("kv_num_blocks", "kv_indices", "full_kv_num_blocks", "full_kv_indices",
                                           "q_num_blocks", "q_indices", "full_q_num_blocks", "full_q_indices")}
    t.check(all(a.dtype == np.int32 for a in files.values()), "every CSR file is int32")
    part = csr_sets(files["kv_num_blocks"], files["kv_indices"])
    full = csr_sets(files["full_kv_num_blocks"], files["full_kv_indices"])
    t.check(part.shape == bits.shape, f"kv_indices shape {part.shape} vs the mask's {bits.shape}")
    t.check(not (part & full).any(), "partial and full blocks are disjoint")
    t.check(np.array_equal(part | full, bits), "partial + full = the kept blocks of the .npy")
    want_full = full_blocks(q_len, kv_len, block, block, causal)
    t.check(np.array_equal(full, bits & want_full[None, None]), f"case {n}: full blocks are the kept, all-visible, "
                                                                  "full-size ones (token by token)")
    t.check(part.any() and full.any(), f"case {n} has both kinds")
    qpart = csr_sets(files["q_num_blocks"], files["q_indices"])
    qfull = csr_sets(files["full_q_num_blocks"], files["full_q_indices"])
    t.check(np.array_equal(qpart, part.transpose(0, 1, 3, 2)) and np.array_equal(qfull, full.transpose(0, 1, 3, 2)),
            "q_* are the same sets by column")
    meta = json.load(open(os.path.join(d, "flex.json")))
    t.check((meta["q_len"], meta["kv_len"], meta["block_q"], meta["block_kv"], meta["causal"], meta["causal_offset"])
            == (q_len, kv_len, block, block, causal, kv_len - q_len), f"flex.json: {meta}")

# Block-Sparse-Attention: dense, sparse, streaming heads.
d, js = t.path("bsa"), t.path("bsa.json")
run("gen-mask", "--head-map", "0-1=dense;2-4=random:density=0.3;5=streaming:sink=1,local=3;6=random:density=0.5",
    "--seq", "2048", "--heads", "7", "--block", "128", "--causal", "--bsa", d, "-o", js, "--csr", t.path("bsa_csr"), "-q")
hmt, si, base = (np.load(os.path.join(d, f + ".npy")) for f in ("head_mask_type", "streaming_info", "base_blockmask"))
t.check(hmt.dtype == np.int32 and si.dtype == np.int32 and base.dtype == np.bool_, "dtypes int32, int32, bool")
t.check(hmt.tolist() == [0, 0, 1, 2, 3, -1, 4], f"head_mask_type {hmt.tolist()}")
t.check(si.tolist() == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 0, 0], f"streaming_info {si.tolist()}")
# The sparse heads' bitmaps, from the row CSR the same run wrote (kv_num_blocks / kv_indices of every kept block).
num, idx = np.load(t.path("bsa_csr_kv_num_blocks.npy")), np.load(t.path("bsa_csr_kv_indices.npy"))
kept = np.zeros(idx.shape, bool)
for pos in np.ndindex(num.shape):
    kept[pos + (slice(None),)][idx[pos][:num[pos]]] = True
t.check(base.shape == (1, 4, 16, 16), f"base_blockmask shape {base.shape}")
t.check(np.array_equal(base, kept[:, [2, 3, 4, 6]]), "base_blockmask = the sparse heads' bitmaps in head order")
t.check(json.load(open(os.path.join(d, "bsa.json")))["is_causal"] is True, "bsa.json is_causal")

p = run("gen-mask", "--pattern", "local", "--seq", "1024", "--block", "64", "--bsa", t.path("bsa64"), expect=2)
t.check(len(p.stderr.strip().splitlines()) == 1 and "128" in p.stderr, f"block 64 refused in one line: {p.stderr!r}")
t.check(not os.path.exists(t.path("bsa64")) or not os.listdir(t.path("bsa64")), "nothing written for a refused --bsa")

t.finish("ok: --flex partial/full CSR and --bsa head types agree with NumPy's reading of the bitmap")
