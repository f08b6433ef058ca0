#!/usr/bin/env python3
"""Time bsattn's peers on the masks `bsattn bench --save-masks DIR` wrote, and merge them into the same
bsattn.bench/v1 document (docs/bench-json.md). Runs on the GPU host (PyTorch 2.11 with CUDA).

Peers: FlexAttention (torch.compile'd flex_attention, BlockMask from bsattn's row-CSR files with the
blocks that need no token masking marked full), PyTorch SDPA with the cuDNN backend and with the
flash backend (dense: full or causal). Timing discipline as bsattn's harness (lib/bench/stats.h):
CUDA events on the stream, warm-up, L2 flushed before every sample by writing a buffer twice the L2
size, samples until stddev/mean <= --noise or --max-time, at least --min-samples; median reported.

Checks: for one mask per (D, pattern) at the smallest S (dense masks and the densest sparse mask), Q/K/V
are written as bf16 .npy and `bsattn run --backend cuda --dtype bf16 --kernel K` (K: the kernel the
benchmark timed) computes O on them; FlexAttention's O on the same inputs is compared
(relative Frobenius error), and SDPA's O against bsattn's dense (or causal) run. The error and the
reference go into each record (check_rel_err, check_max_abs_err, check_ref).

  python3 scripts/peers.py --bench bench.json --masks DIR --bsattn build/bsattn --out merged.json
  (then `bsattn bench --from merged.json --csv merged.csv --markdown merged.md` for the exports)
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.attention.flex_attention import BlockMask, flex_attention

def measure(fn, opt, flush):
    """bsattn's loop: warm-up, then samples until the noise target or the time limit (min samples)."""
    start_ev, stop_ev = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def sample():
        flush.fill_(sample.flip)  # write 2 x L2 bytes: nothing of the previous sample stays cached
        sample.flip ^= 1
        start_ev.record()
        fn()
        stop_ev.record()
        stop_ev.synchronize()
        return start_ev.elapsed_time(stop_ev)

    sample.flip = 1
    for _ in range(opt["warmup"]):
        sample()
    t0 = time.perf_counter()
    v = []
    while len(v) < opt["max_samples"]:
        v.append(sample())
        n = len(v)
        if n < opt["min_samples"]:
            continue
        mean = sum(v) / n
        sd = math.sqrt(sum((x - mean) ** 2 for x in v) / (n - 1)) if n > 1 else 0.0
        if (sd / mean if mean > 0 else 0) <= opt["noise_target"] or time.perf_counter() - t0 >= opt["max_time_s"]:
            break
    a = sorted(v)
    n = len(a)
    mean = sum(a) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in a) / (n - 1)) if n > 1 else 0.0
    return {"samples": n, "median_ms": a[n // 2] if n % 2 else 0.5 * (a[n // 2 - 1] + a[n // 2]), "mean_ms": mean,
            "min_ms": a[0], "max_ms": a[-1], "rel_noise": sd / mean if mean > 0 else 0.0,
            "noise_met": (sd / mean if mean > 0 else 0.0) <= opt["noise_target"]}


def flex_block_mask(prefix, seq, block, causal, device):
    """BlockMask from bsattn's row CSR (PREFIX_kv_num_blocks.npy / PREFIX_kv_indices.npy): kept blocks that
    are full-size and entirely visible under causal are 'full' (no mask_mod call), the rest partial."""
    num = np.load(prefix + "_kv_num_blocks.npy").astype(np.int64)  # [B,H,Mq]
    idx = np.load(prefix + "_kv_indices.npy").astype(np.int64)     # [B,H,Mq,Mk]
    b, h, mq, mk = idx.shape
    kept = np.arange(mk)[None, None, None, :] < num[..., None]
    i = np.arange(mq)[None, None, :, None]
    j = idx
    full_size = ((i + 1) * block <= seq) & ((j + 1) * block <= seq)
    visible_all = (i * block >= (j + 1) * block - 1) if causal else np.ones_like(full_size)
    is_full = kept & full_size & visible_all
    is_part = kept & ~is_full

    def pack(sel):
        # Ascending indices of the selected blocks first in each row; counts per row.
        key = np.where(sel, j, mk + j)  # selected blocks sort first, keeping ascending order
        order = np.argsort(key, axis=-1, kind="stable")
        ind = np.take_along_axis(j, order, axis=-1)
        cnt = sel.sum(-1)
        ind = np.where(np.arange(mk)[None, None, None, :] < cnt[..., None], ind, 0)
        return (torch.from_numpy(cnt.astype(np.int32)).to(device), torch.from_numpy(ind.astype(np.int32)).to(device))

    pn, pi = pack(is_part)
    fn_, fi = pack(is_full)
    # Non-causal: only sequence tails need token masking (None = FlexAttention's no-op mask_mod; the
    # same function object every time, so the compiled kernel is reused across masks).
    mask_mod = causal_mod if causal else (None if seq % block == 0 else tail_mod(seq))
    return BlockMask.from_kv_blocks(pn, pi, fn_, fi, BLOCK_SIZE=(block, block), mask_mod=mask_mod,
                                    seq_lengths=(seq, seq))


def causal_mod(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def tail_mod(seq):
    def mod(b, h, q_idx, kv_idx):
        return kv_idx < seq
    return mod


def rel_err(a, ref):
    a, ref = a.float(), ref.float()
    return float((a - ref).norm() / ref.norm().clamp_min(1e-30)), float((a - ref).abs().max())


def write_bf16_npy(path, t_bhsd):
    # bf16 as uint16 bits (bsattn run --dtype bf16 reads them), layout bhsd.
    np.save(path, t_bhsd.contiguous().view(torch.int16).cpu().numpy().view(np.uint16))


def bsattn_run(binary, mask_npy, q, k, v, block, causal, kernel, tmp):
    paths = [os.path.join(tmp, n + ".npy") for n in ("q", "k", "v", "o")]
    for p, t in zip(paths, (q, k, v)):
        write_bf16_npy(p, t)
    cmd = [binary, "run", mask_npy, "--q", paths[0], "--k", paths[1], "--v", paths[2], "--layout", "bhsd",
           "--dtype", "bf16", "--block", str(block), "--backend", "cuda", "-o", paths[3], "-q"]
    if kernel:  # the variant the benchmark timed
        cmd += ["--kernel", kernel]
    if causal:
        cmd.append("--causal")
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("bsattn run failed: " + r.stderr.strip())
    return torch.from_numpy(np.load(paths[3])).to(q.device)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench", required=True, help="bsattn bench --json output (bsattn.bench/v1)")
    ap.add_argument("--masks", required=True, help="the --save-masks folder of that run")
    ap.add_argument("--bsattn", default="build/bsattn", help="bsattn binary for the output checks ('' to skip)")
    ap.add_argument("--out", required=True, help="merged bsattn.bench/v1 JSON")
    ap.add_argument("--impls", default="flex,sdpa_cudnn,sdpa_flash")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    doc = json.load(open(a.bench))
    if doc.get("schema") != "bsattn.bench/v1":
        sys.exit("peers.py: %s is not a bsattn.bench/v1 document" % a.bench)
    if not torch.cuda.is_available():
        sys.exit("peers.py: no CUDA GPU visible to PyTorch")
    dev = torch.device("cuda")
    ctx = doc["context"]
    opt = dict(ctx["timing"])
    impls = set(a.impls.split(","))
    gemm = (ctx.get("ceilings") or {}).get("gemm_bf16_tflops")
    l2 = torch.cuda.get_device_properties(dev).L2_cache_size
    flush = torch.empty(max(2 * l2, 1 << 20), dtype=torch.uint8, device=dev)
    flex = torch.compile(flex_attention, dynamic=False)
    ours = [r for r in doc["records"] if r["impl"] == "bsattn" and r.get("mask_file")]
    cols = list(ours[0].keys()) if ours else []
    if not ours:
        sys.exit("peers.py: no bsattn records with mask files (run bench with --save-masks)")

    min_seq = min(r["seq"] for r in ours)
    gen = torch.Generator(device=dev)
    inputs = {}

    def qkv(r):
        key = (r["batch"], r["heads"], r["heads_kv"], r["seq"], r["head_dim"])
        if key not in inputs:
            inputs.clear()
            gen.manual_seed(a.seed)
            shp = (r["batch"], r["heads"], r["seq"], r["head_dim"])
            kvs = (r["batch"], r["heads_kv"], r["seq"], r["head_dim"])
            inputs[key] = tuple(torch.randn(s, generator=gen, device=dev, dtype=torch.float32).to(torch.bfloat16)
                                for s in (shp, kvs, kvs))
        return inputs[key]

    def record(base, impl, t, flops, dense_ms=None, extra=None):
        r = {c: None for c in cols}
        for c in ("pattern", "spec", "causal", "batch", "heads", "heads_kv", "seq", "head_dim", "block", "dtype",
                  "pass", "density_target", "density", "pair_density", "kept_blocks", "flops_dense_equiv",
                  "bytes_min", "mask_file", "seed"):
            r[c] = base.get(c)
        r.update({"impl": impl, "backend": "torch " + torch.__version__, "kernel": "", "flops_computed": flops})
        r.update(t)
        r["tflops_effective"] = flops / (t["median_ms"] * 1e-3) / 1e12
        r["tflops_dense_equiv"] = base["flops_dense_equiv"] / (t["median_ms"] * 1e-3) / 1e12
        r["gbytes_per_s"] = base["bytes_min"] / (t["median_ms"] * 1e-3) / 1e9 if base.get("bytes_min") else None
        if gemm:
            r["gemm_fraction"] = r["tflops_effective"] / gemm
        if dense_ms:
            r["dense_median_ms"] = dense_ms
            r["speedup_vs_dense"] = dense_ms / t["median_ms"]
        if extra:
            r.update(extra)
        return r

    merged = []
    dense_flex = {}
    checked = set()
    # Dense shapes first so that FlexAttention's speedups have their own dense baseline.
    order = sorted(ours, key=lambda r: (r["seq"], r["head_dim"], r["causal"], -(r["density_target"] or 1)))
    with tempfile.TemporaryDirectory() as tmp:
        for n, r in enumerate(order):
            q, k, v = qkv(r)
            prefix = os.path.join(a.masks, r["mask_file"])
            label = "%s@%s S=%d D=%d" % (r["pattern"], r["density_target"], r["seq"], r["head_dim"])
            print("[%d/%d] %s" % (n + 1, len(order), label), file=sys.stderr, flush=True)
            # One check per (D, pattern) on dense masks and on the densest sparse mask, at the smallest S
            # (writing and reading the tensors costs seconds at S = 32768).
            ck_key = (r["head_dim"], r["causal"], "dense" if r["spec"] in ("dense", "causal") else r["pattern"])
            want_check = a.bsattn and ck_key not in checked and r["seq"] == min_seq
            our_o = None
            if want_check:
                try:
                    our_o = bsattn_run(a.bsattn, prefix + ".npy", q, k, v, r["block"], r["causal"], r.get("kernel"), tmp)
                    checked.add(ck_key)
                except Exception as e:  # reported, and the peers are still timed
                    print("  check skipped: %s" % e, file=sys.stderr)
            if "flex" in impls:
                bm = flex_block_mask(prefix, r["seq"], r["block"], r["causal"], dev)
                fn = lambda: flex(q, k, v, block_mask=bm, enable_gqa=r["heads"] != r["heads_kv"])
                out = fn()
                extra = {}
                if our_o is not None:
                    e, m = rel_err(out, our_o)
                    extra = {"check_ref": "bsattn run --backend cuda", "check_rel_err": e, "check_max_abs_err": m}
                t = measure(fn, opt, flush)
                dkey = (r["seq"], r["head_dim"], r["causal"])
                if r["spec"] in ("dense", "causal"):
                    dense_flex[dkey] = t["median_ms"]
                merged.append(record(r, "flex_attention", t, r["flops_computed"], dense_flex.get(dkey), extra))
            if r["spec"] in ("dense", "causal") and (r["seq"], r["head_dim"], r["causal"], "sdpa") not in checked:
                checked.add((r["seq"], r["head_dim"], r["causal"], "sdpa"))
                for impl, backend in (("sdpa_cudnn", SDPBackend.CUDNN_ATTENTION),
                                      ("sdpa_flash", SDPBackend.FLASH_ATTENTION)):
                    if impl not in impls:
                        continue
                    def fn(backend=backend):
                        with sdpa_kernel(backend):
                            return F.scaled_dot_product_attention(q, k, v, is_causal=r["causal"],
                                                                  enable_gqa=r["heads"] != r["heads_kv"])
                    try:
                        out = fn()
                    except RuntimeError as e:
                        print("  %s unavailable: %s" % (impl, str(e).splitlines()[0]), file=sys.stderr)
                        continue
                    extra = {}
                    if our_o is not None:
                        e, m = rel_err(out, our_o)
                        extra = {"check_ref": "bsattn run --backend cuda", "check_rel_err": e, "check_max_abs_err": m}
                    t = measure(fn, opt, flush)
                    base = dict(r)
                    base["pattern"] = "causal" if r["causal"] else "dense"
                    merged.append(record(base, impl, t, r["flops_dense_equiv"], t["median_ms"], extra))

    doc["records"] = doc["records"] + merged
    ctx["peers"] = {"torch": torch.__version__, "impls": sorted(impls), "seed": a.seed,
                    "flex": "torch.compile(flex_attention), BlockMask.from_kv_blocks with full blocks",
                    "check": "relative Frobenius error of O against `bsattn run --backend cuda` on the same bf16 inputs",
                    "command": " ".join(sys.argv)}
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
        if smi.returncode == 0:
            ctx["nvidia_smi"] = smi.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    tmp_out = a.out + ".tmp"
    with open(tmp_out, "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(tmp_out, a.out)
    print("peers.py: %d peer records merged into %s" % (len(merged), a.out), file=sys.stderr)


if __name__ == "__main__":
    main()
