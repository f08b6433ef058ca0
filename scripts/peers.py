#!/usr/bin/env python3
"""Time bsattn's peers on the masks `bsattn bench --save-masks DIR` wrote, and merge them into the same
bsattn.bench/v1 document (docs/bench-json.md). Runs on the GPU host (PyTorch 2.11 with CUDA).

Peers: FlexAttention (torch.compile'd flex_attention, BlockMask from bsattn's row-CSR files with the
blocks that need no token masking marked full), PyTorch SDPA with the cuDNN backend and with the
flash backend (dense: full or causal). Timing discipline as bsattn's harness (lib/bench/stats.h):
CUDA events on the stream, warm-up, L2 flushed before every sample by writing a buffer twice the L2
size, samples until stddev/mean <= --noise or --max-time, at least --min-samples; median reported.

Backward (when the bsattn records include pass `bwd` or `fwd+bwd`): FlexAttention's backward through
torch.autograd.grad with a seeded bf16 dO, on the same BlockMask, and SDPA cuDNN / flash backward on the
dense (or causal) mask. `bwd` times the backward alone: the forward runs once outside the timed region
and every sample replays its graph (retain_graph=True; Inductor's donated buffers are turned off so that
the compiled backward may run again); `fwd+bwd` times forward and backward in each sample. FLOPs:
backward 2.5 x forward, fwd+bwd 3.5 x (as bsattn's records).

Checks: for one mask per (D, pattern) at the smallest S (dense masks and the densest sparse mask), Q/K/V
are written as bf16 .npy and `bsattn run --backend cuda --dtype bf16 --kernel K` (K: the kernel the
benchmark timed) computes O on them; FlexAttention's O on the same inputs is compared
(relative Frobenius error), and SDPA's O against bsattn's dense (or causal) run. The error and the
reference go into each record (check_rel_err, check_max_abs_err, check_ref). Masks that have backward
records run with `--do dO.npy --dq --dk --dv` too: the peers' dQ, dK, dV are compared with bsattn's, the
worst of the three goes into the backward records and each one into context.peers.grad_checks.
The parts that need no PyTorch live in scripts/peer_records.py.

Dilated attention (records of `bsattn bench --dilated`, pattern "dilated-attn SPEC", forward, standard order): the same
LongNet computation in PyTorch, FlexAttention with one mask_mod per branch, merged by the branches' LSE
(flex_attention(..., return_lse=True), natural log). Each branch packs each query head's tokens (its class in
every segment) into one sequence of S/r tokens, where the branch is block-diagonal by segment (full blocks
marked, the mask_mod masking the partial ones by segment), so that no row is empty. Two records:
`flex_dilated` times everything on the GPU (the gathers into each head's packed order, the flex_attention
calls, the scatter back and the merge; S a multiple of every segment),
`flex_dilated_branches` only the flex_attention calls on inputs packed beforehand. A third, `sdpa_dilated` (with sdpa_flash in --impls), is
LongNet's own construction: each segment's class of tokens as one sequence of a dense SDPA flash call (a strided
view per head, as LongNet's reference code does), the LSEs from aten._scaled_dot_product_flash_attention, scattered
back and merged the same way (S a multiple of every segment). bsattn's cuda record times everything on the GPU
from the inputs to the merged output, so `flex_dilated` and `sdpa_dilated` are its peers. The peers' O is
checked against `bsattn run --dilated --backend cuda` on the same bf16 inputs (smallest S of each spec).

  python3 scripts/peers.py --bench bench.json --masks DIR --bsattn build/bsattn --out merged.json
  python3 scripts/peers.py --bench dilated.json --bsattn build/bsattn --out merged.json   (bench --dilated records)
  (then `bsattn bench --from merged.json --csv merged.csv --markdown merged.md` for the exports)

HSTU (issue 21, docs/hstu.md; records of `bsattn bench --score silu [--rab pos+ts] [--gate-u]`, fixed length,
dense or causal masks, forward): HSTU attention in plain PyTorch, SiLU(alpha QK^T + rab) / n over the visible
pairs, times V, times U: rab from per-head tables gathered by the clamped distance and by HSTU's timestamp
bucket (float64 timestamps, torch.log), all as [B, H, S, S] tensors. Two records per bsattn record: `torch_hstu`
(eager) and `torch_compile_hstu` (the same function through torch.compile). Seeded inputs and tables of the
record's shape; for the smallest S of each (D, causal, rab, gate_u), `bsattn run --score silu --backend cuda`
with the same tables (.npy) computes O, and both peers' outputs are checked against it.

NSA (issue 21, docs/nsa.md): `--nsa` times NSA's forward in PyTorch, bf16, computing what bsattn computes
(qblock queries share a selection): mean-pooled K/V, the compressed scores and probabilities as dense
matmuls, the importance per key block, the top-n selection shared across each GQA group (forced initial and
local blocks), then FlexAttention for the selected branch (a BlockMask built from the selection in the
timed call) and the window branch (its BlockMask, fixed by the shape, built once), and the 1/3 gate sum.
With --bench (bsattn bench --nsa --backend cuda --json), one peer record per bsattn NSA record, merged into
it; with --bsattn, the peer's O is checked against `bsattn run --nsa --backend cuda` at the smallest S:

  python3 scripts/peers.py --nsa --bench nsa.json --bsattn build/bsattn --out nsa-merged.json
  python3 scripts/peers.py --nsa block=64,stride=32,select=64,topn=16,window=512,qblock=64 --seq 32768 \
      --heads 16 --kv-heads 4 --head-dim 128 --out nsa-peers.json
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
from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_records as pr  # noqa: E402  (the part without PyTorch, beside this script)

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


def flex_kernel_options(block):
    """FlexAttention's kernel tiles for a BlockMask of BLOCK-token blocks: its default tiles (128 query
    rows forward) must divide the mask's blocks, so blocks under 128 take tiles of their size in both passes
    (None: the defaults)."""
    if block >= 128:
        return None
    return {"BLOCK_M": block, "BLOCK_N": block, "BLOCK_M1": block, "BLOCK_N1": block,
            "BLOCK_M2": block, "BLOCK_N2": block}


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


def bsattn_run(binary, mask_npy, q, k, v, block, causal, kernel, tmp, d_o=None):
    """bsattn's O on the same bf16 inputs and, with D_O, its dQ, dK, dV (`run --do`); layout bhsd."""
    paths = [os.path.join(tmp, n + ".npy") for n in ("q", "k", "v", "o")]
    for p, t in zip(paths, (q, k, v)):
        write_bf16_npy(p, t)
    cmd = [binary, "run", mask_npy, "--q", paths[0], "--k", paths[1], "--v", paths[2], "--layout", "bhsd",
           "--dtype", "bf16", "--block", str(block), "--backend", "cuda", "-o", paths[3], "-q"]
    if kernel:  # the variant the benchmark timed
        cmd += ["--kernel", kernel]
    if causal:
        cmd.append("--causal")
    grad_paths = [os.path.join(tmp, g + ".npy") for g in pr.GRAD_NAMES]
    if d_o is not None:
        write_bf16_npy(os.path.join(tmp, "do.npy"), d_o)
        cmd += ["--do", os.path.join(tmp, "do.npy"), "--dq", grad_paths[0], "--dk", grad_paths[1],
                "--dv", grad_paths[2]]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("bsattn run failed: " + r.stderr.strip())
    o = torch.from_numpy(np.load(paths[3])).to(q.device)
    grads = None
    if d_o is not None:
        grads = tuple(torch.from_numpy(np.load(g)).to(q.device) for g in grad_paths)
    return o, grads


def dilated_branches(branches, heads, seq, block, causal, device):
    """Per branch (segment w, rate r): the tokens of each query head packed into one sequence
    (peer_records.dilated_head_index: [H, S/r], its class in every segment) and the BlockMask of that packed
    sequence, where each segment's w/r tokens attend to each other (peer_records.segment_blocks; the mask_mod
    masks the partial blocks by segment). Every row keeps its own segment: the compiled kernel of this torch
    computed wrong outputs for a residue-ordered sequence whose rows a head does not select (empty rows).
    ValueError when S is not a multiple of every segment."""
    out = []
    for w, r in branches:
        n = w // r
        idx = torch.from_numpy(pr.dilated_head_index(seq, w, r, heads)).to(device)
        kept, full = (torch.from_numpy(x).to(device)[None, None] for x in pr.segment_blocks(seq // r, n, block, causal))

        def mask_mod(b, h, q_idx, kv_idx, n=n):
            keep = q_idx // n == kv_idx // n
            return keep & (kv_idx <= q_idx) if causal else keep
        pn, pi = kv_blocks(kept & ~full)
        fn_, fi = kv_blocks(full)
        bm = BlockMask.from_kv_blocks(pn, pi, fn_, fi, BLOCK_SIZE=(block, block), mask_mod=mask_mod,
                                      seq_lengths=(seq // r, seq // r))
        out.append((idx, bm))
    return out


def dilated_pack(q, k, v, idx):
    """Q, K, V [B, H(kv), S, D] packed for one branch: [B, H, S/r, D], query head h's class tokens (K/V from
    its KV head)."""
    H, hkv = q.shape[1], k.shape[1]
    heads = torch.arange(H, device=q.device)[:, None]
    kvh = heads // (H // hkv)
    return q[:, heads, idx], k[:, kvh, idx], v[:, kvh, idx]


def merge_by_lse(outs, lses):
    """LongNet's merge: O = sum_b exp(L_b - L) O_b with L = logsumexp_b L_b; a row no branch selects (every
    L_b = -inf) gets O = 0."""
    lse = torch.stack([x.float() for x in lses])              # [nb, B, H, S]
    total = torch.logsumexp(lse, dim=0)                          # -inf where no branch selects the row
    w = torch.nan_to_num(torch.exp(lse - total), nan=0.0)      # -inf - -inf = nan -> weight 0
    o = sum(wb.unsqueeze(-1) * ob.float() for wb, ob in zip(w, outs))
    return o, total


def flex_dilated_forward(flex, q, k, v, branch_masks):
    """Dilated attention, BHSD: per branch, each head's tokens packed (dilated_pack), flex_attention with its
    LSE, scattered back (rows a head does not select: O = 0, LSE = -inf); then merge."""
    B, H, S, D = q.shape
    heads = torch.arange(H, device=q.device)[:, None]
    outs, lses = [], []
    for idx, bm in branch_masks:
        o, lse = flex(*dilated_pack(q, k, v, idx), block_mask=bm, return_lse=True)
        full = torch.zeros(B, H, S, D, device=q.device, dtype=torch.float32)
        full[:, heads, idx] = o.float()
        lfull = torch.full((B, H, S), float("-inf"), device=q.device, dtype=torch.float32)
        lfull[:, heads, idx] = lse.float()
        outs.append(full)
        lses.append(lfull)
    o, _ = merge_by_lse(outs, lses)
    return o.to(q.dtype)


def sdpa_dilated_forward(q, k, v, branches, causal):
    """Dilated attention with SDPA's flash backend, LongNet's own way: per branch (w, r), head h keeps the tokens of
    class h mod r of each segment (a strided view), each segment's class is one sequence of a dense (or causal)
    SDPA call with its LSE (aten._scaled_dot_product_flash_attention, natural log), scattered back and merged by
    LSE. BHSD; S must be a multiple of every segment (ValueError otherwise)."""
    B, H, S, D = q.shape
    hkv = k.shape[1]
    heads = torch.arange(H, device=q.device)
    outs, lses = [], []
    for w, r in branches:
        if S % w:
            raise ValueError("S=%d is not a multiple of segment %d" % (S, w))
        n = w // r
        cls = heads % r

        def pick(x, hidx):
            # [B, Hx, S, D] -> [B, H, S/w, n, D]: head h's kv (or query) head, its class in every segment.
            y = x.view(B, x.shape[1], S // w, n, r, D)[:, hidx, :, :, cls, :]  # [H, B, S/w, n, D]
            return y.permute(1, 0, 2, 3, 4).reshape(B, H * (S // w), n, D)
        qs, ks, vs = pick(q, heads), pick(k, heads // (H // hkv)), pick(v, heads // (H // hkv))
        o, lse = torch.ops.aten._scaled_dot_product_flash_attention(qs, ks, vs, 0.0, causal)[:2]
        full = torch.zeros(B, H, S // w, n, r, D, device=q.device, dtype=torch.float32)
        full[:, heads, :, :, cls, :] = o.view(B, H, S // w, n, D).permute(1, 0, 2, 3, 4).float()
        lfull = torch.full((B, H, S // w, n, r), float("-inf"), device=q.device, dtype=torch.float32)
        lfull[:, heads, :, :, cls] = lse.view(B, H, S // w, n).permute(1, 0, 2, 3).float()
        outs.append(full.view(B, H, S, D))
        lses.append(lfull.view(B, H, S))
    o, _ = merge_by_lse(outs, lses)
    return o.to(q.dtype)


def bsattn_run_dilated(binary, spec, q, k, v, block, causal, tmp):
    """bsattn's dilated O on the same bf16 inputs (`run --dilated --backend cuda`), layout bhsd."""
    paths = [os.path.join(tmp, n + ".npy") for n in ("q", "k", "v", "o")]
    for p, t in zip(paths, (q, k, v)):
        write_bf16_npy(p, t)
    cmd = [binary, "run", "--dilated", spec, "--q", paths[0], "--k", paths[1], "--v", paths[2], "--layout", "bhsd",
           "--dtype", "bf16", "--block", str(block), "--backend", "cuda", "-o", paths[3], "-q"]
    if causal:
        cmd.append("--causal")
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("bsattn run --dilated failed: " + r.stderr.strip())
    return torch.from_numpy(np.load(paths[3])).to(q.device)


def time_dilated(records, flex, opt, flush, gemm, binary, seed, dev, tmp, sdpa=True):
    """Peer records for bsattn's dilated forward records (standard order): flex_dilated (end to end on the GPU),
    flex_dilated_branches (the flex_attention calls alone, inputs packed beforehand) and, with SDPA,
    sdpa_dilated (sdpa_dilated_forward, end to end)."""
    merged = []
    checked = set()
    todo = [r for r in records if r["pass"] == "fwd" and pr.parse_dilated_spec(r["spec"])[1] == "standard"]
    todo.sort(key=lambda r: (r["seq"], r["head_dim"], r["spec"]))
    for n, r in enumerate(todo):
        branches, _ = pr.parse_dilated_spec(r["spec"])
        print("[dilated %d/%d] %s%s S=%d D=%d" % (n + 1, len(todo), r["spec"], " causal" if r["causal"] else "",
                                                  r["seq"], r["head_dim"]), file=sys.stderr, flush=True)
        gen = torch.Generator(device=dev)
        gen.manual_seed(seed)
        shp = (r["batch"], r["heads"], r["seq"], r["head_dim"])
        kvs = (r["batch"], r["heads_kv"], r["seq"], r["head_dim"])
        q, k, v = (torch.randn(s, generator=gen, device=dev, dtype=torch.float32).to(torch.bfloat16)
                   for s in (shp, kvs, kvs))
        try:
            masks = dilated_branches(branches, r["heads"], r["seq"], r["block"], r["causal"], dev)
        except ValueError as e:
            print("  flex_dilated unavailable: %s" % e, file=sys.stderr)
            continue
        flops = pr.peer_flops(r, False)
        extra = {}
        ours = None
        ckey = (r["spec"], r["causal"], r["head_dim"])
        if binary and ckey not in checked:
            checked.add(ckey)
            try:
                ours = bsattn_run_dilated(binary, r["spec"].partition(";order=")[0], q, k, v, r["block"], r["causal"], tmp)
                extra = pr.output_check(*rel_err(flex_dilated_forward(flex, q, k, v, masks), ours))
            except Exception as e:  # reported, and the peer is still timed
                print("  check skipped: %s" % e, file=sys.stderr)

        def end_to_end():
            return flex_dilated_forward(flex, q, k, v, masks)
        t = measure(end_to_end, opt, flush)
        merged.append(pr.peer_record(list(r.keys()), r, "flex_dilated", t, flops, torch.__version__, gemm,
                                     r.get("dense_median_ms"), extra))
        permuted = [dilated_pack(q, k, v, idx) + (bm,) for idx, bm in masks]

        def branches_only():
            for qq, kk, vv, bm in permuted:
                flex(qq, kk, vv, block_mask=bm, return_lse=True)
        t = measure(branches_only, opt, flush)
        merged.append(pr.peer_record(list(r.keys()), r, "flex_dilated_branches", t, flops, torch.__version__, gemm,
                                     r.get("dense_median_ms")))
        del permuted
        if sdpa:
            def sdpa_dilated():
                return sdpa_dilated_forward(q, k, v, branches, r["causal"])
            try:
                got = sdpa_dilated()
                sextra = pr.output_check(*rel_err(got, ours)) if ours is not None else {}
                del got
                t = measure(sdpa_dilated, opt, flush)
                merged.append(pr.peer_record(list(r.keys()), r, "sdpa_dilated", t, flops, torch.__version__, gemm,
                                             r.get("dense_median_ms"), sextra))
            except (RuntimeError, ValueError) as e:
                print("  sdpa_dilated unavailable: %s" % str(e).splitlines()[0], file=sys.stderr)
    return merged


def grad_timer(forward, leaves, d_o, pass_name):
    """The timed call of a backward pass and its first gradients. `bwd`: FORWARD runs once here, and each
    call replays the backward of that graph (retain_graph); `fwd+bwd`: each call runs both."""
    if pass_name == "fwd+bwd":
        def fn():
            return torch.autograd.grad(forward(), leaves, d_o)
        return fn, fn()
    out = forward()

    def fn():
        return torch.autograd.grad(out, leaves, d_o, retain_graph=True)
    grads = fn()
    fn()  # a graph that cannot be replayed fails here, before the timing loop
    return fn, grads


def grad_errors(got, ours):
    return {g: rel_err(a, b) for g, a, b in zip(pr.GRAD_NAMES, got, ours)}


HSTU_BUCKETS = 129  # the bench's timestamp table: HSTU's 128 buckets + 1


def hstu_torch(q, k, v, u, pos, ts, t, alpha, n, causal):
    """HSTU attention, BHSD: q [B,H,S,D], k/v [B,Hkv,S,D] bf16, u like q or None; pos [H,Np] / ts [H,Nb] float32
    or None, t [B,S] float64. O = (SiLU(alpha q.k + rab) / n over visible pairs) v, times u (docs/hstu.md)."""
    B, H, S, D = q.shape
    g = H // k.shape[1]
    kk, vv = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)
    s = torch.matmul(q, kk.transpose(-1, -2)).float() * alpha          # [B,H,S,S]
    i = torch.arange(S, device=q.device)
    if pos is not None:
        dist = (i[:, None] - i[None, :]).abs().clamp(max=pos.shape[1] - 1)
        s = s + pos[:, dist].unsqueeze(0)                                # [1,H,S,S]
    if ts is not None:
        tq = t[:, (i + 1).clamp(max=S - 1)]                              # the timestamp of the next item
        dt = (tq[:, :, None] - t[:, None, :]).abs().clamp(min=1.0)       # [B,S,S] float64
        b = torch.floor(torch.log(dt) / 0.301).clamp(0, ts.shape[1] - 1).long()
        s = s + ts[:, b].permute(1, 0, 2, 3)                             # [H,B,S,S] -> [B,H,S,S]
    p = F.silu(s) / n
    if causal:
        p = p.masked_fill(i[None, :] > i[:, None], 0.0)
    o = torch.matmul(p.to(q.dtype), vv)
    return o * u if u is not None else o


def hstu_inputs(r, seed, dev):
    """Seeded Q, K, V (and U) bf16, the tables and timestamps for bench record R (as the bench draws them:
    tables uniform in [-1, 1), pos [H, S], ts [H, 129], timestamps increasing by 0 s to ~2 years)."""
    gen = torch.Generator(device=dev)
    gen.manual_seed(seed)
    B, H, Hkv, S, D = r["batch"], r["heads"], r["heads_kv"], r["seq"], r["head_dim"]
    q, k, v, u = (torch.randn(s, generator=gen, device=dev).to(torch.bfloat16)
                  for s in ((B, H, S, D), (B, Hkv, S, D), (B, Hkv, S, D), (B, H, S, D)))
    rab = r.get("rab") or "none"
    pos = torch.rand((H, S), generator=gen, device=dev) * 2 - 1 if "pos" in rab else None
    ts = torch.rand((H, HSTU_BUCKETS), generator=gen, device=dev) * 2 - 1 if "ts" in rab else None
    gaps = torch.floor(torch.exp(torch.rand((B, S), generator=gen, device=dev, dtype=torch.float64) * 17.9))
    t = 1.7e9 + torch.cumsum(gaps, 1) - gaps[:, :1]
    return q, k, v, (u if r.get("gate_u") else None), pos, ts, t


def bsattn_run_hstu(binary, r, q, k, v, u, pos, ts, t, tmp):
    """bsattn's HSTU O on the same bf16 inputs and tables (`run --score silu --backend cuda`), layout bhsd."""
    paths = [os.path.join(tmp, n + ".npy") for n in ("q", "k", "v", "o")]
    for p, x in zip(paths, (q, k, v)):
        write_bf16_npy(p, x)
    cmd = [binary, "run", "dense", "--q", paths[0], "--k", paths[1], "--v", paths[2],
           "--layout", "bhsd", "--dtype", "bf16", "--block", str(r["block"]), "--backend", "cuda", "--score", "silu",
           "--silu-n", str(r["seq"]), "-o", paths[3], "-q"]
    if r["causal"]:
        cmd.append("--causal")
    if u is not None:  # float32 holding U's bf16 values exactly: rounded back to the same bf16 by bsattn
        np.save(os.path.join(tmp, "u.npy"), u.float().cpu().numpy())
        cmd += ["--gate-u", os.path.join(tmp, "u.npy")]
    if pos is not None:
        np.save(os.path.join(tmp, "pos.npy"), pos.cpu().numpy())
        cmd += ["--rab-pos", os.path.join(tmp, "pos.npy")]
    if ts is not None:
        np.save(os.path.join(tmp, "ts.npy"), ts.cpu().numpy())
        np.save(os.path.join(tmp, "t.npy"), t.cpu().numpy())
        cmd += ["--rab-ts", os.path.join(tmp, "ts.npy"), "--timestamps", os.path.join(tmp, "t.npy")]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError("bsattn run --score silu failed: " + res.stderr.strip())
    return torch.from_numpy(np.load(paths[3])).to(q.device)


def time_hstu(records, cols, opt, flush, gemm, binary, seed, dev, tmp):
    """Peer records (torch_hstu, torch_compile_hstu) for bsattn's HSTU records (bench --score silu)."""
    compiled = torch.compile(hstu_torch, dynamic=False)
    merged, checked = [], set()
    todo = [r for r in records if r["pass"] == "fwd" and r["spec"] in pr.DENSE_SPECS and not r.get("cu_seqlens")]
    for r in records:
        if r not in todo:
            print("  hstu peers: skipped %s S=%d %s (dense or causal fixed-length forward records only)"
                  % (r["spec"], r["seq"], r["pass"]), file=sys.stderr)
    todo.sort(key=lambda r: (r["seq"], r["head_dim"]))
    for n, r in enumerate(todo):
        print("[hstu %d/%d] %s S=%d D=%d rab=%s%s" % (n + 1, len(todo), r["spec"], r["seq"], r["head_dim"], r.get("rab"),
                                                       " u-gating" if r.get("gate_u") else ""), file=sys.stderr, flush=True)
        q, k, v, u, pos, ts, t = hstu_inputs(r, seed, dev)
        alpha, norm = r["head_dim"] ** -0.5, float(r["seq"])
        ckey = (r["head_dim"], r["causal"], r.get("rab"), r.get("gate_u"))
        ours = None
        if binary and ckey not in checked:
            checked.add(ckey)
            try:
                ours = bsattn_run_hstu(binary, r, q, k, v, u, pos, ts, t, tmp)
            except Exception as e:  # reported, and the peers are still timed
                print("  check skipped: %s" % e, file=sys.stderr)
        for impl, fn in (("torch_hstu", hstu_torch), ("torch_compile_hstu", compiled)):
            def call(fn=fn):
                return fn(q, k, v, u, pos, ts, t, alpha, norm, r["causal"])
            try:
                out = call()
            except torch.OutOfMemoryError as e:
                print("  %s: out of memory (%s)" % (impl, str(e).splitlines()[0]), file=sys.stderr)
                torch.cuda.empty_cache()
                continue
            extra = pr.output_check(*rel_err(out, ours)) if ours is not None else {}
            del out
            tm = measure(call, opt, flush)
            merged.append(pr.peer_record(cols, r, impl, tm, pr.peer_flops(r, False), torch.__version__, gemm,
                                         None, extra))
            print("  %s: %.3f ms%s" % (impl, tm["median_ms"], " (check rel err %.2e)" % extra["check_rel_err"]
                                       if extra else ""), file=sys.stderr)
    return merged


def nsa_spec(text):
    p = dict(block=64, stride=32, select=64, topn=16, window=512, init=1, local=2, qblock=1)
    for item in filter(None, text.split(",")):
        key, _, val = item.partition("=")
        if key not in p:
            sys.exit("peers.py: --nsa: unknown key %r (allowed: %s)" % (key, ", ".join(p)))
        p[key] = int(val)
    return p


def kv_blocks(keep):
    """FlexAttention's row CSR of a bool block mask [..., rows, cols]: counts and ascending kept indices, then
    zeros (the compiled kernel reads past a row's count: other indices there gave wrong outputs on this torch)."""
    num = keep.sum(-1, dtype=torch.int32)
    idx = torch.argsort((~keep).to(torch.int8), dim=-1, stable=True).to(torch.int32)
    past = torch.arange(keep.shape[-1], device=keep.device) >= num[..., None].to(torch.int64)
    return num, idx.masked_fill(past, 0)


def nsa_window_mask(B, H, S, p, dev):
    """The window branch's BlockMask (docs/nsa.md: the W = ceil(window/select) key blocks ending at the block of
    the row's first query, causal), 128-blocks; it depends on the shape only, so it is built once per shape."""
    Q, ls = p["qblock"], p["select"]
    w = (p["window"] + ls - 1) // ls

    def win_mod(b, h, q_idx, kv_idx):
        return (kv_idx // ls >= (q_idx // Q * Q) // ls - w + 1) & (kv_idx <= q_idx)
    return create_block_mask(win_mod, B, H, S, S, device=dev, BLOCK_SIZE=128, _compile=True)


def nsa_selected_mod(sel, G, Q, ls):
    """The selected branch's mask_mod over the selection buffer SEL [B,Hkv,rows,Ms] (a token pair is kept when its
    query row selected its key block, causal). Built once per shape over one buffer that each call refills: the
    compiled flex_attention sees the same function and tensor every time (no recompilation per call)."""
    def sel_mod(b, h, q_idx, kv_idx):
        return sel[b, h // G, q_idx // Q, kv_idx // ls] & (kv_idx <= q_idx)
    return sel_mod


def nsa_torch(q, k, v, p, flex, bm_win, sel_buf, sel_mod):
    """NSA forward (docs/nsa.md; qblock queries share a selection, 1 = per token), as bsattn computes it:
    q [B,Hq,S,D], k/v [B,Hkv,S,D] bf16 -> O [B,Hq,S,D] bf16. Pooled K/V in the input type, scores in float32
    (TF32 on exact bf16 values: the products are exact), P rounded to bf16 for P Vc, the importance of each
    key block from the float32 probabilities summed over the group and the row, top-n by torch.topk with the
    forced blocks, the selected branch by FlexAttention on a BlockMask built from the selection (128-blocks,
    SEL_MOD reading the selection, copied into SEL_BUF), the window branch on BM_WIN, and the 1/3 gate sum."""
    B, H, S, D = q.shape
    Hkv = k.shape[1]
    G = H // Hkv
    l, d, ls, Q = p["block"], p["stride"], p["select"], p["qblock"]
    scale = D ** -0.5
    dev = q.device
    kc = k.unfold(2, l, d).mean(-1)  # [B,Hkv,Nc,D]
    vc = v.unfold(2, l, d).mean(-1)
    nc, ms, rows = kc.shape[2], (S + ls - 1) // ls, (S + Q - 1) // Q
    t = torch.arange(S, device=dev)
    i = torch.arange(nc, device=dev)
    j = torch.arange(ms, device=dev)
    vis = (i[None, :] * d + l - 1) <= t[:, None]  # [S,Nc]
    s = torch.matmul(q.view(B, Hkv, G, S, D).float(), kc.float().unsqueeze(2).transpose(-1, -2)) * scale
    pc = torch.softmax(s.masked_fill_(~vis, float("-inf")), -1).nan_to_num_(0.0)  # [B,Hkv,G,S,Nc]; no block: 0
    del s
    o_cmp = torch.matmul(pc.to(q.dtype), vc.unsqueeze(2)).view(B, H, S, D)
    mass = pc.sum(2)  # [B,Hkv,S,Nc]
    del pc
    mass = F.pad(mass, (0, 0, 0, rows * Q - S)).view(B, Hkv, rows, Q, nc).sum(3)  # per row of Q queries
    overlap = ((i[:, None] * d) < (j[None, :] + 1) * ls) & ((i[:, None] * d + l) > j[None, :] * ls)  # [Nc,Ms]
    imp = torch.matmul(mass, overlap.float())  # [B,Hkv,rows,Ms]
    c = ((torch.arange(rows, device=dev) * Q + Q).clamp(max=S) - 1) // ls  # key block of each row's last query
    cand = j[None, :] <= c[:, None]
    forced = cand & ((j[None, :] < p["init"]) | (j[None, :] > c[:, None] - p["local"]))
    imp = imp.masked_fill(~cand, float("-inf")).masked_fill(forced, float("inf"))
    top = imp.topk(min(p["topn"], ms), -1).indices
    sel = torch.zeros(B, Hkv, rows, ms, dtype=torch.bool, device=dev)
    sel.scatter_(-1, top, True)
    sel = (sel & cand) | forced  # a row with fewer candidates than topn took invisible blocks; forced past topn
    # The selected branch: the 128 x 128 blocks that hold a selected (Q x ls) block, all partial (the mask_mod
    # masks tokens: the selection and causality).
    keep = torch.zeros(B, Hkv, rows, (S + 127) // 128, device=dev)
    sf = sel.float()
    for first in (True, False):  # a block of ls <= 128 tokens lies in at most two 128-blocks
        keep.index_add_(3, ((j * ls if first else (j + 1) * ls - 1).clamp(max=S - 1)) // 128, sf)
    keep128 = torch.zeros(B, Hkv, (S + 127) // 128, keep.shape[3], device=dev)
    r = torch.arange(rows, device=dev)
    for first in (True, False):  # likewise a row of Q <= 128 queries
        keep128.index_add_(2, ((r * Q if first else (r + 1) * Q - 1).clamp(max=S - 1)) // 128, keep)
    num, idx = kv_blocks((keep128 > 0).repeat_interleave(G, 1))
    sel_buf.copy_(sel)
    bm_sel = BlockMask.from_kv_blocks(num, idx, BLOCK_SIZE=128, mask_mod=sel_mod, seq_lengths=(S, S))
    o_slc = flex(q, k, v, block_mask=bm_sel, enable_gqa=True)
    o_win = flex(q, k, v, block_mask=bm_win, enable_gqa=True)
    return ((o_cmp.float() + o_slc.float() + o_win.float()) / 3).to(q.dtype)


def bsattn_run_nsa(binary, spec, q, k, v, tmp):
    """bsattn's NSA output on the same bf16 inputs (`run --nsa SPEC --backend cuda`), layout bhsd."""
    paths = [os.path.join(tmp, n + ".npy") for n in ("q", "k", "v", "o")]
    for path, t in zip(paths, (q, k, v)):
        write_bf16_npy(path, t)
    cmd = [binary, "run", "--nsa", spec, "--q", paths[0], "--k", paths[1], "--v", paths[2], "--layout", "bhsd",
           "--dtype", "bf16", "--backend", "cuda", "-o", paths[3], "-q"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("bsattn run --nsa failed: " + r.stderr.strip())
    return torch.from_numpy(np.load(paths[3])).to(q.device)


def nsa_main():
    ap = argparse.ArgumentParser(description="NSA forward in PyTorch (FlexAttention per branch + the gate sum)")
    ap.add_argument("--nsa", nargs="?", const="", help="NSA spec (docs/nsa.md); with --bench, taken from its records")
    ap.add_argument("--bench", default="", help="bsattn bench --nsa JSON: time the peer on its records' shapes and "
                                                "merge the peer records into it")
    ap.add_argument("--seq", default="32768")
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--bsattn", default="", help="bsattn binary: check the peer's O against `run --nsa --backend cuda` "
                                                 "at the smallest S")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("peers.py: no CUDA GPU visible to PyTorch")
    dev = torch.device("cuda")
    # Float32 matmuls as TF32: the compressed scores multiply bf16 values, which TF32 holds exactly.
    torch.backends.cuda.matmul.allow_tf32 = True
    import torch._dynamo.config as dynamo_config
    for knob in ("recompile_limit", "cache_size_limit"):
        if hasattr(dynamo_config, knob):
            setattr(dynamo_config, knob, 64)
    flex = torch.compile(flex_attention, dynamic=False)
    if a.bench:
        doc = json.load(open(a.bench))
        base = [r for r in doc["records"] if r["impl"] == "bsattn" and r["pattern"] == "nsa"]
        if not base:
            sys.exit("peers.py: %s has no bsattn NSA records (bsattn bench --nsa ... --json)" % a.bench)
        opt = dict(doc["context"]["timing"])
        gemm = (doc["context"].get("ceilings") or {}).get("gemm_bf16_tflops")
    else:
        if not a.nsa:
            sys.exit("peers.py: give --nsa SPEC (or --bench with bsattn's NSA records)")
        base = [dict(spec="nsa:" + a.nsa, batch=1, heads=a.heads, heads_kv=a.kv_heads, seq=int(x), head_dim=a.head_dim)
                for x in a.seq.split(",")]
        opt = {"warmup": 2, "min_samples": 5, "max_samples": 1000, "noise_target": 0.02, "max_time_s": 2.0}
        doc, gemm = None, None
    flush = torch.empty(max(2 * torch.cuda.get_device_properties(dev).L2_cache_size, 1 << 20), dtype=torch.uint8, device=dev)
    records = []
    checked = set()
    with tempfile.TemporaryDirectory() as tmp:
        for r in sorted(base, key=lambda x: (x["seq"], x["head_dim"])):
            spec = r["spec"].partition("nsa:")[2]
            p = nsa_spec(spec)
            B, S = r["batch"], r["seq"]
            gen = torch.Generator(device=dev)
            gen.manual_seed(a.seed)
            q, k, v = (torch.randn((B, h, S, r["head_dim"]), generator=gen, device=dev).to(torch.bfloat16)
                       for h in (r["heads"], r["heads_kv"], r["heads_kv"]))
            bm_win = nsa_window_mask(B, r["heads"], S, p, dev)
            G = r["heads"] // r["heads_kv"]
            sel_buf = torch.zeros(B, r["heads_kv"], (S + p["qblock"] - 1) // p["qblock"], (S + p["select"] - 1) // p["select"],
                                  dtype=torch.bool, device=dev)
            sel_mod = nsa_selected_mod(sel_buf, G, p["qblock"], p["select"])

            def run():
                return nsa_torch(q, k, v, p, flex, bm_win, sel_buf, sel_mod)
            extra = {}
            key = (spec, r["head_dim"])
            if a.bsattn and key not in checked:
                checked.add(key)
                try:
                    extra = pr.output_check(*rel_err(run(), bsattn_run_nsa(a.bsattn, spec, q, k, v, tmp)))
                    print("flex_nsa S=%d: relative error against bsattn %.3g" % (S, extra["check_rel_err"]))
                except Exception as e:  # reported, and the peer is still timed
                    print("  check skipped: %s" % e, file=sys.stderr)
            st = measure(run, opt, flush)
            if doc is not None:
                rec = pr.peer_record(list(r.keys()), r, "flex_nsa", st, r["flops_computed"], torch.__version__, gemm,
                                     r.get("dense_median_ms"), extra)
            else:
                rec = dict(st, impl="flex_nsa", backend="cuda", pattern="nsa", spec=r["spec"], causal=True, batch=B,
                           heads=r["heads"], heads_kv=r["heads_kv"], seq=S, head_dim=r["head_dim"], block=p["select"],
                           dtype="bf16", **{"pass": "fwd"}, seed=a.seed, **extra)
            records.append(rec)
            print("flex_nsa S=%d: %.3f ms" % (S, st["median_ms"]))
    peers_ctx = {"tool": "scripts/peers.py --nsa", "gpu": torch.cuda.get_device_name(dev), "torch": torch.__version__,
                 "timing": opt, "command": " ".join(sys.argv),
                 "flex_nsa": "pooled K/V (mean), compressed scores in float32 (TF32), softmax, P V in bf16, importance "
                             "per key block, torch.topk with forced blocks, FlexAttention for the selected branch "
                             "(BlockMask from the selection, built in the timed call) and the window branch "
                             "(BlockMask built once per shape), 1/3 gate sum"}
    if doc is None:
        doc = {"schema": "bsattn.bench/v1", "context": peers_ctx, "records": records, "skipped": []}
    else:
        doc["records"] += records
        doc["context"]["peers"] = peers_ctx
    with open(a.out + ".tmp", "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(a.out + ".tmp", a.out)


def main():
    if "--nsa" in sys.argv:
        return nsa_main()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench", required=True, help="bsattn bench --json output (bsattn.bench/v1)")
    ap.add_argument("--masks", default="", help="the --save-masks folder of that run (not needed for dilated records)")
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
    hstu = [r for r in doc["records"] if r["impl"] == "bsattn" and r.get("score") == "silu"]
    ours = [r for r in doc["records"] if r["impl"] == "bsattn" and r.get("mask_file") and r.get("score") != "silu"]
    dilated = [r for r in doc["records"] if r["impl"] == "bsattn" and pr.is_dilated(r)]
    cols = list(ours[0].keys()) if ours else []
    if not ours and not dilated and not hstu:
        sys.exit("peers.py: no bsattn records with mask files (run bench with --save-masks), no dilated records and "
                 "no HSTU (--score silu) records")
    if ours and not a.masks:
        sys.exit("peers.py: the records have mask files: give --masks, the --save-masks folder of that run")
    has_bwd = any(pr.needs_grads(r["pass"]) for r in ours)
    if has_bwd:
        # The compiled backward runs again on a retained graph, which Inductor's donated buffers forbid;
        # and each (shape, mask_mod, pass) is a compiled entry of flex_attention: more than dynamo's
        # default of 8, past which it would fall back to the eager (dense-materializing) path.
        import torch._dynamo.config as dynamo_config
        import torch._functorch.config as functorch_config
        if hasattr(functorch_config, "donated_buffer"):
            functorch_config.donated_buffer = False
        for knob in ("recompile_limit", "cache_size_limit"):
            if hasattr(dynamo_config, knob):
                setattr(dynamo_config, knob, 64)
    flex = torch.compile(flex_attention, dynamic=False)

    min_seq = min(r["seq"] for r in ours) if ours else 0
    gen = torch.Generator(device=dev)
    inputs = {}
    grad_inputs = {}

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

    def backward_inputs(r):
        """Leaf copies of Q/K/V that require gradients and the seeded dO (seed + 1), for the shape of R."""
        key = (r["batch"], r["heads"], r["heads_kv"], r["seq"], r["head_dim"])
        if key not in grad_inputs:
            grad_inputs.clear()
            q, k, v = qkv(r)
            g = torch.Generator(device=dev)
            g.manual_seed(a.seed + 1)
            d_o = torch.randn(q.shape, generator=g, device=dev, dtype=torch.float32).to(torch.bfloat16)
            grad_inputs[key] = ([x.detach().clone().requires_grad_() for x in (q, k, v)], d_o)
        return grad_inputs[key]

    def record(base, impl, t, dense, dense_ms=None, extra=None):
        return pr.peer_record(cols, base, impl, t, pr.peer_flops(base, dense), torch.__version__, gemm, dense_ms, extra)

    merged = []
    dense_peer = {}
    sdpa_done = set()
    chosen = {}        # check_key -> the mask whose bsattn run serves that key's checks
    ours_out = {}      # mask_identity -> (O, gradients or None) of `bsattn run`
    grad_masks = {pr.mask_identity(r) for r in ours if pr.needs_grads(r["pass"])}
    fwd_kernel = pr.forward_kernels(ours)
    grad_checks = []
    bwd_failures = []
    # Dense shapes first so that FlexAttention's speedups have their own dense baseline.
    order = pr.timing_order(ours)
    with tempfile.TemporaryDirectory() as tmp:
        for n, r in enumerate(order):
            q, k, v = qkv(r)
            grads_pass = pr.needs_grads(r["pass"])
            gqa = r["heads"] != r["heads_kv"]
            prefix = os.path.join(a.masks, r["mask_file"])
            label = "%s@%s S=%d D=%d %s" % (r["pattern"], r["density_target"], r["seq"], r["head_dim"], r["pass"])
            print("[%d/%d] %s" % (n + 1, len(order), label), file=sys.stderr, flush=True)
            # One check per (D, pattern) on dense masks and on the densest sparse mask, at the smallest S
            # (writing and reading the tensors costs seconds at S = 32768); every pass of that mask uses it.
            ident = pr.mask_identity(r)
            decision = pr.check_decision(chosen, r, min_seq) if a.bsattn else None
            if decision == "run":
                try:
                    d_o = backward_inputs(r)[1] if ident in grad_masks else None
                    ours_out[ident] = bsattn_run(a.bsattn, prefix + ".npy", q, k, v, r["block"], r["causal"],
                                                 r.get("kernel") if r["pass"] == "fwd" else fwd_kernel.get(ident),
                                                 tmp, d_o)
                    chosen[pr.check_key(r)] = ident
                except Exception as e:  # reported, and the peers are still timed
                    print("  check skipped: %s" % e, file=sys.stderr)
            our_o, our_g = ours_out.get(ident, (None, None)) if decision else (None, None)

            def timed(impl, forward, dense):
                """FORWARD's pass of R: the timing, the output compared and the record's check keys."""
                extra = {}
                if not grads_pass:
                    out = forward()
                    if our_o is not None:
                        extra = pr.output_check(*rel_err(out, our_o))
                    return measure(forward, opt, flush), extra
                leaves, d_o = backward_inputs(r)
                fn, grads = grad_timer(lambda: forward(*leaves), leaves, d_o, r["pass"])
                if our_g is not None:
                    errs = grad_errors(grads, our_g)
                    extra = pr.grad_check(errs)
                    grad_checks.append(pr.grad_check_context(r, impl, errs))
                return measure(fn, opt, flush), extra

            if "flex" in impls:
                bm = flex_block_mask(prefix, r["seq"], r["block"], r["causal"], dev)
                fopts = flex_kernel_options(r["block"])

                def flex_fwd(qq=q, kk=k, vv=v):
                    return flex(qq, kk, vv, block_mask=bm, enable_gqa=gqa, kernel_options=fopts)
                try:
                    t, extra = timed("flex_attention", flex_fwd, False)
                except RuntimeError as e:
                    if not grads_pass:
                        raise
                    print("  flex_attention %s unavailable: %s" % (r["pass"], str(e).splitlines()[0]), file=sys.stderr)
                    bwd_failures.append({"impl": "flex_attention", "pass": r["pass"], "spec": r["spec"],
                                         "seq": r["seq"], "head_dim": r["head_dim"], "reason": str(e).splitlines()[0]})
                    t = None
                if t is not None:
                    dkey = (r["seq"], r["head_dim"], r["causal"], r["pass"])
                    if pr.is_dense(r):
                        dense_peer[dkey] = t["median_ms"]
                    merged.append(record(r, "flex_attention", t, False, dense_peer.get(dkey), extra))
            skey = (r["seq"], r["head_dim"], r["causal"], r["pass"], "sdpa")
            if pr.is_dense(r) and skey not in sdpa_done:
                sdpa_done.add(skey)
                for impl, backend in (("sdpa_cudnn", SDPBackend.CUDNN_ATTENTION),
                                      ("sdpa_flash", SDPBackend.FLASH_ATTENTION)):
                    if impl not in impls:
                        continue

                    def sdpa_fwd(qq=q, kk=k, vv=v, backend=backend):
                        with sdpa_kernel(backend):
                            return F.scaled_dot_product_attention(qq, kk, vv, is_causal=r["causal"], enable_gqa=gqa)
                    try:
                        t, extra = timed(impl, sdpa_fwd, True)
                    except RuntimeError as e:
                        print("  %s unavailable: %s" % (impl, str(e).splitlines()[0]), file=sys.stderr)
                        continue
                    base = dict(r)
                    base["pattern"] = "causal" if r["causal"] else "dense"
                    merged.append(record(base, impl, t, True, t["median_ms"], extra))

        if dilated and "flex" in impls:
            merged += time_dilated(dilated, flex, opt, flush, gemm, a.bsattn, a.seed, dev, tmp, "sdpa_flash" in impls)
        if hstu:
            merged += time_hstu(hstu, list(hstu[0].keys()), opt, flush, gemm, a.bsattn, a.seed, dev, tmp)

    doc["records"] = doc["records"] + merged
    ctx["peers"] = {"torch": torch.__version__, "impls": sorted(impls), "seed": a.seed,
                    "flex": "torch.compile(flex_attention), BlockMask.from_kv_blocks with full blocks; for blocks "
                            "under 128, kernel_options with tiles of the block's size (BLOCK_M, BLOCK_N, "
                            "BLOCK_M1/N1/M2/N2)",
                    "check": "relative Frobenius error of O against `bsattn run --backend cuda` on the same bf16 inputs",
                    "command": " ".join(sys.argv)}
    if has_bwd:
        ctx["peers"]["backward"] = (
            "torch.autograd.grad of Q, K, V with a bf16 dO drawn with seed + 1; bwd: the forward once outside the "
            "timed region, each sample replays the backward of its graph (retain_graph=True, "
            "torch._functorch.config.donated_buffer=False); fwd+bwd: forward and backward in each sample; "
            "FLOPs: backward 2.5 x forward, fwd+bwd 3.5 x")
        ctx["peers"]["grad_check"] = ("relative Frobenius error and largest absolute difference of dQ, dK, dV against "
                                      "`bsattn run --backend cuda --do` on the same bf16 inputs; records hold the worst")
        ctx["peers"]["grad_checks"] = grad_checks
        ctx["peers"]["backward_unavailable"] = bwd_failures
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
