"""bsattn's torch op on the GPU host (PyTorch with CUDA; run by scripts/torch-check.sh, which builds
libbsattn and installs the package first).

1. Correctness: forward (O, LSE) and gradients of bsattn.attention against PyTorch attention in float64
   on masked dense scores, on random block masks: causal and not, GQA, q_len != kv_len with partial
   blocks, varlen (cu_seqlens), block 64, bf16 and f16. Tolerance, FlashAttention's rule: bsattn's error
   against float64 at most 2x that of the same attention computed by PyTorch in the inputs' precision,
   plus 1e-3 absolute.
2. torch.library.opcheck of bsattn::fwd (schema, fake tensor, autograd registration).
3. torch.compile of a small model using the op: output and gradients equal eager's.
4. One training step of a small transformer layer, bsattn against the same layer on SDPA (dense causal,
   and a sparse block mask given to SDPA as a boolean attn_mask): loss, gradients and updated weights.
5. Timing (unless --no-bench): forward+backward through the torch op against `bsattn bench --pass
   fwd+bwd` (the same kernels timed directly) and FlexAttention (torch.compile'd, BlockMask with full
   blocks as scripts/peers.py builds it), bf16, B=1, H=16, D=128, block 128, random masks, S = 8192 and
   32768 (--quick: 8192 only). A Markdown table goes to stdout (and --markdown FILE).

    python3 tests/torch/test_torch_gpu.py --bsattn build-gpu/bsattn [--no-bench | --quick] [--markdown F]
Exit status 0 when every check passes, 1 otherwise (timings are reported, never asserted).
"""
import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import traceback

import numpy as np
import torch
import torch.nn.functional as F

import bsattn

FAILURES = []
DEV = torch.device("cuda")  # --device cpu runs sections 1-4 on the CPU reference (a check of this script)


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def section(name, fn, *args):
    print("\n## " + name, flush=True)
    try:
        fn(*args)
    except Exception:  # a crash in one section is a failure of that section; the others still run
        traceback.print_exc()
        FAILURES.append(name + ": raised")


# ---------------------------------------------------------------------------------------------------
# References
# ---------------------------------------------------------------------------------------------------

def token_mask(bits, q_len, kv_len, bq, bk, causal, len_q=None, len_k=None):
    """[H, q_len, kv_len] bool from a block bitmap [H, Mq, Mk] (bool tensor), causal bottom-right aligned."""
    tok = bits.repeat_interleave(bq, dim=1).repeat_interleave(bk, dim=2)[:, :q_len, :kv_len]
    if causal:
        lq, lk = len_q or q_len, len_k or kv_len
        rows = torch.arange(q_len, device=bits.device)[:, None]
        cols = torch.arange(kv_len, device=bits.device)[None, :]
        tok = tok & (cols <= rows + (lk - lq))[None]
    return tok


def dense_attention(q, k, v, tok, scale=None):
    """One sequence, BSHD without batch: q [S, Hq, D], k/v [Sk, Hkv, D], tok [Hq, S, Sk]. In q's dtype
    (float64 for the reference). Rows that see no key give 0 and LSE -inf."""
    hq, hkv, d = q.shape[1], k.shape[1], q.shape[2]
    scale = scale or d ** -0.5
    k = k.repeat_interleave(hq // hkv, dim=1)
    v = v.repeat_interleave(hq // hkv, dim=1)
    s = torch.einsum("qhd,khd->hqk", q, k).float() * scale if q.dtype != torch.float64 else \
        torch.einsum("qhd,khd->hqk", q, k) * scale
    s = s.masked_fill(~tok, float("-inf"))
    lse = torch.logsumexp(s, dim=-1)
    p = torch.exp(s - torch.where(torch.isfinite(lse), lse, torch.zeros_like(lse))[..., None])
    o = torch.einsum("hqk,khd->qhd", p.to(v.dtype), v)
    return o, lse


def reference(q, k, v, bits, bq, bk, causal, cu=None, dtype=torch.float64):
    """O and LSE for a batch (BSHD, or packed varlen with cu [B+1]) in `dtype`; bits [Bm, H, Mq, Mk]."""
    outs, lses = [], []
    if cu is None:
        for b in range(q.shape[0]):
            bb = bits[b if bits.shape[0] > 1 else 0]
            tok = token_mask(bb, q.shape[1], k.shape[1], bq, bk, causal)
            o, lse = dense_attention(q[b].to(dtype), k[b].to(dtype), v[b].to(dtype), tok)
            outs.append(o)
            lses.append(lse)
        return torch.stack(outs), torch.stack(lses)
    cu = cu.tolist()
    for b in range(len(cu) - 1):
        a, e = cu[b], cu[b + 1]
        n = e - a
        tok = token_mask(bits[0], n, n, bq, bk, causal)
        o, lse = dense_attention(q[a:e].to(dtype), k[a:e].to(dtype), v[a:e].to(dtype), tok)
        outs.append(o)
        lses.append(lse)
    return torch.cat(outs), torch.cat(lses, dim=1)


def random_bits(batch, heads, mq, mk, density, gen, device):
    bits = torch.rand(batch, heads, mq, mk, generator=gen) < density
    d = torch.arange(min(mq, mk))
    bits[:, :, d, d] = True  # every row keeps a block, so that no row of the references is empty
    return bits.to(device)


def max_err(a, b):
    return (a.double() - b.double()).abs().max().item()


# ---------------------------------------------------------------------------------------------------
# 1. Correctness
# ---------------------------------------------------------------------------------------------------

def correctness():
    dev = DEV
    gen = torch.Generator().manual_seed(0)
    cases = [
        # name, B, Sq, Sk, Hq, Hkv, D, block, density, causal, dtype, varlen lengths
        ("bf16 D=128 random 0.3", 2, 1024, 1024, 4, 4, 128, 128, 0.3, False, torch.bfloat16, None),
        ("bf16 D=128 causal", 2, 1024, 1024, 4, 4, 128, 128, 0.5, True, torch.bfloat16, None),
        ("bf16 D=64 GQA 8/2 causal", 1, 2048, 2048, 8, 2, 64, 128, 0.3, True, torch.bfloat16, None),
        ("f16 D=128 MQA 4/1", 1, 1024, 1024, 4, 1, 128, 128, 0.4, False, torch.float16, None),
        ("bf16 Sq=700 Sk=1000 partial blocks causal", 2, 700, 1000, 4, 2, 128, 128, 0.5, True, torch.bfloat16, None),
        ("bf16 block 64", 1, 1024, 1024, 4, 4, 64, 64, 0.3, False, torch.bfloat16, None),
        ("bf16 varlen causal", 3, None, None, 4, 2, 128, 128, 0.5, True, torch.bfloat16, [300, 1000, 517]),
    ]
    for name, B, Sq, Sk, Hq, Hkv, D, blk, dens, causal, dtype, lens in cases:
        torch.manual_seed(1)
        if lens is None:
            q = torch.randn(B, Sq, Hq, D, device=dev, dtype=dtype)
            k = torch.randn(B, Sk, Hkv, D, device=dev, dtype=dtype)
            v = torch.randn(B, Sk, Hkv, D, device=dev, dtype=dtype)
            cu = None
            mb = B
        else:
            Sq = Sk = max(lens)
            cu = torch.tensor([0] + np.cumsum(lens).tolist(), dtype=torch.int32, device=dev)
            total = int(cu[-1])
            q = torch.randn(total, Hq, D, device=dev, dtype=dtype)
            k = torch.randn(total, Hkv, D, device=dev, dtype=dtype)
            v = torch.randn(total, Hkv, D, device=dev, dtype=dtype)
            mb = 1
        mq, mk = -(-Sq // blk), -(-Sk // blk)
        bits = random_bits(mb, Hq, mq, mk, dens, gen, dev)
        mask = bsattn.from_blockmask(bits, Sq, Sk, block_size=blk, causal=causal).to(dev)
        q.requires_grad_(True)
        k.requires_grad_(True)
        v.requires_grad_(True)
        o, lse = bsattn.attention(q, k, v, mask, cu_seqlens=cu, return_lse=True)
        dout = torch.randn_like(o)
        dq, dk, dv = torch.autograd.grad(o, (q, k, v), dout)
        if DEV.type == "cuda":
            torch.cuda.synchronize()

        # float64 reference and the same computation in the inputs' precision, both through autograd.
        refs = {}
        for prec in (torch.float64, dtype):
            qq, kk, vv = (x.detach().to(prec).requires_grad_(True) for x in (q, k, v))
            ro, rl = reference(qq, kk, vv, bits, blk, blk, causal, cu, prec)
            g = torch.autograd.grad(ro, (qq, kk, vv), dout.to(prec))
            refs[prec] = (ro, rl, g)
        ro64, rl64, g64 = refs[torch.float64]
        rol, rll, gl = refs[dtype]
        lse_cmp = rl64 if cu is not None else rl64  # [B,H,S] or [H,total]
        for what, got, want, low in (("O", o, ro64, rol), ("LSE", lse, lse_cmp, rll), ("dQ", dq, g64[0], gl[0]),
                                     ("dK", dk, g64[1], gl[1]), ("dV", dv, g64[2], gl[2])):
            ours, theirs = max_err(got, want), max_err(low, want)
            check(ours <= 2 * theirs + 1e-3 and torch.isfinite(got).all().item(),
                  "%s: %s max error %.3g (PyTorch in %s: %.3g)" % (name, what, ours, str(dtype)[6:], theirs))


def eager_equals_op():
    """The eager road (autograd.Function over the library) and the registered ops give the same bits:
    O, LSE and deterministic dQ, dK, dV; also a causal variant of a device mask (its own descriptor) and
    inference under no_grad."""
    dev = DEV
    torch.manual_seed(6)
    m = bsattn.gen_mask("random:density=0.4", seq_len=1000, heads=4, block_size=128, seed=7).to(dev)
    q = torch.randn(2, 1000, 4, 64, device=dev, dtype=torch.bfloat16 if dev.type == "cuda" else torch.float32,
                    requires_grad=True)
    k = torch.randn(2, 1000, 2, 64, device=dev, dtype=q.dtype, requires_grad=True)
    v = torch.randn(2, 1000, 2, 64, device=dev, dtype=q.dtype, requires_grad=True)
    dout = torch.randn(2, 1000, 4, 64, device=dev, dtype=q.dtype)
    for causal in (False, True, False):  # the third call reuses the descriptor made by the first
        mc = bsattn._attention.with_causal(m, causal)
        o, lse = bsattn.attention(q, k, v, m, causal=causal, return_lse=True, deterministic=True)
        g = torch.autograd.grad(o, (q, k, v), dout)
        o2, lse2 = torch.ops.bsattn.fwd(q, k, v, mc.bitmap, mc.kv_num_blocks, mc.kv_indices, mc.q_num_blocks,
                                        mc.q_indices, mc.head_type, mc.head_sink, mc.head_local, None, None, mc.batch,
                                        mc.heads, mc.q_len, mc.kv_len, mc.block_q, mc.block_kv, mc.causal, False, 0.0,
                                        0.0, "", True, "")
        g2 = torch.autograd.grad(o2, (q, k, v), dout)
        same = all(torch.equal(a, b) for a, b in zip((o, lse) + g, (o2, lse2) + g2))
        check(same, "eager road equals bsattn::fwd/bwd bit for bit (causal=%s)" % causal)
        with torch.no_grad():
            o3 = bsattn.attention(q, k, v, m, causal=causal)
        check(torch.equal(o3, o) and not o3.requires_grad, "no_grad call: same O, no graph (causal=%s)" % causal)


# ---------------------------------------------------------------------------------------------------
# 2. opcheck, 3. torch.compile
# ---------------------------------------------------------------------------------------------------

def opcheck():
    dev = DEV
    m = bsattn.gen_mask("random:density=0.5", seq_len=512, heads=2, causal=True, seed=3).to(dev)
    q = torch.randn(1, 512, 2, 64, device=dev, dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(1, 512, 2, 64, device=dev, dtype=torch.bfloat16, requires_grad=True)
    v = torch.randn(1, 512, 2, 64, device=dev, dtype=torch.bfloat16, requires_grad=True)
    args = (q, k, v, m.bitmap, m.kv_num_blocks, m.kv_indices, m.q_num_blocks, m.q_indices, m.head_type, m.head_sink,
            m.head_local, None, None, m.batch, m.heads, m.q_len, m.kv_len, m.block_q, m.block_kv, m.causal, False,
            0.0, 0.0, "", True, "")
    result = torch.library.opcheck(torch.ops.bsattn.fwd.default, args)
    print(result)
    check(all(v == "SUCCESS" for v in result.values()), "torch.library.opcheck(bsattn::fwd)")


class TinyModel(torch.nn.Module):
    def __init__(self, dim, heads, mask):
        super().__init__()
        self.heads, self.mask = heads, mask
        self.qkv = torch.nn.Linear(dim, 3 * dim)
        self.out = torch.nn.Linear(dim, dim)

    def forward(self, x):
        b, s, d = x.shape
        q, k, v = self.qkv(x).view(b, s, 3, self.heads, d // self.heads).unbind(2)
        return self.out(bsattn.attention(q, k, v, self.mask).reshape(b, s, d))


def compile_check():
    dev = DEV
    torch.manual_seed(2)
    mask = bsattn.gen_mask("local:window=2", seq_len=1024, heads=4, causal=True).to(dev)
    model = TinyModel(256, 4, mask).to(dev, torch.bfloat16)
    x = torch.randn(2, 1024, 256, device=dev, dtype=torch.bfloat16)
    eager = model(x)
    eager.float().square().mean().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    compiled = torch.compile(model)
    got = compiled(x)
    got.float().square().mean().backward()
    check(max_err(got, eager) <= 2e-2, "torch.compile: output equals eager (max diff %.3g)" % max_err(got, eager))
    worst = max(max_err(p.grad, g) / (g.abs().max().item() + 1e-6) for p, g in zip(model.parameters(), grads))
    check(worst <= 2e-2, "torch.compile: gradients equal eager's (worst relative %.3g)" % worst)
    try:  # the whole model as one graph: the mask is already on the device, so attention only reads it
        torch.compiler.reset()
        full = torch.compile(model, fullgraph=True)(x)
        print("     torch.compile(fullgraph=True) traced the model in one graph (max diff %.3g)" % max_err(full, eager))
    except Exception as e:  # reported, not a failure: graph breaks are allowed
        print("     note: torch.compile(fullgraph=True) did not trace it as one graph: %s" % str(e).splitlines()[0])


# ---------------------------------------------------------------------------------------------------
# 4. A training step against SDPA
# ---------------------------------------------------------------------------------------------------

class Layer(torch.nn.Module):
    """Pre-norm transformer layer; `attend(q, k, v)` takes and returns [B, H, S, D]."""

    def __init__(self, dim, heads, attend):
        super().__init__()
        self.heads, self.attend = heads, attend
        self.norm1, self.norm2 = torch.nn.LayerNorm(dim), torch.nn.LayerNorm(dim)
        self.qkv = torch.nn.Linear(dim, 3 * dim)
        self.proj = torch.nn.Linear(dim, dim)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(dim, 4 * dim), torch.nn.GELU(), torch.nn.Linear(4 * dim, dim))

    def forward(self, x):
        b, s, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, s, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = self.attend(q, k, v).transpose(1, 2).reshape(b, s, d)
        x = x + self.proj(a)
        return x + self.mlp(self.norm2(x))


def train_step(layer, x, target, lr=1e-2):
    opt = torch.optim.SGD(layer.parameters(), lr=lr)
    opt.zero_grad()
    loss = F.mse_loss(layer(x).float(), target)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in layer.named_parameters()}
    opt.step()
    return loss.item(), grads, {n: p.detach().clone() for n, p in layer.named_parameters()}


def training():
    dev = DEV
    S, dim, heads, blk = 2048, 512, 8, 128
    torch.manual_seed(3)
    x = torch.randn(2, S, dim, device=dev, dtype=torch.bfloat16)
    target = torch.randn(2, S, dim, device=dev)
    gen = torch.Generator().manual_seed(4)
    bits = random_bits(1, heads, S // blk, S // blk, 0.3, gen, dev)
    tok = token_mask(bits[0], S, S, blk, blk, True)  # [H, S, S]
    variants = {
        "dense causal": (bsattn.gen_mask("dense", seq_len=S, heads=heads, causal=True).to(dev),
                         lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)),
        "sparse causal": (bsattn.from_blockmask(bits, S, S, block_size=blk, causal=True).to(dev),
                          lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=tok[None])),
    }
    base = Layer(dim, heads, None).to(dev, torch.bfloat16)
    for name, (mask, sdpa) in variants.items():
        ours = copy.deepcopy(base)
        ours.attend = lambda q, k, v, m=mask: bsattn.attention(q, k, v, m, layout="bhsd")
        theirs = copy.deepcopy(base)
        theirs.attend = sdpa
        l1, g1, w1 = train_step(ours, x, target)
        l2, g2, w2 = train_step(theirs, x, target)
        check(abs(l1 - l2) <= 1e-2 * abs(l2), "training step, %s: loss %.6f vs SDPA %.6f" % (name, l1, l2))
        worst = max((g1[n].float() - g2[n].float()).norm().item() / (g2[n].float().norm().item() + 1e-12) for n in g2)
        check(worst <= 5e-2, "training step, %s: gradients, worst relative Frobenius error %.3g" % (name, worst))
        wdiff = max(max_err(w1[n], w2[n]) for n in w2)
        check(wdiff <= 1e-2, "training step, %s: updated weights, max difference %.3g" % (name, wdiff))


# ---------------------------------------------------------------------------------------------------
# 5. Timing
# ---------------------------------------------------------------------------------------------------

def measure(fn, flush, min_samples=5, max_samples=50, noise=0.02, max_time_s=3.0):
    """Median ms of fn() by CUDA events: warm-up, L2 flushed (2 x L2 bytes written) before each sample."""
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times, spent = [], 0.0
    while len(times) < max_samples:
        flush.fill_(len(times) & 1)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        t = start.elapsed_time(stop)
        times.append(t)
        spent += t / 1e3
        if len(times) >= min_samples:
            a = np.array(times)
            if a.std() / a.mean() <= noise or spent >= max_time_s:
                break
    return float(np.median(times)), len(times)


def host_per_call(fn, calls=20):
    """The host's ms per call of fn() queued back to back (the GPU drained before and after, not timed)."""
    import time
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    t1 = time.perf_counter()
    torch.cuda.synchronize()
    return (t1 - t0) * 1e3 / calls


def bench_direct(bsattn_bin, S, density, seed, masks_dir):
    """`bsattn bench --pass fwd+bwd` of one configuration: its record (median ms, mask_file in masks_dir)."""
    cmd = [bsattn_bin, "bench", "--backend", "cuda", "--pass", "fwd+bwd", "--seq", str(S), "--heads", "16",
           "--head-dim", "128", "--batch", "1", "--density", str(density), "--pattern", "random", "--dtype", "bf16",
           "--block", "128", "--seed", str(seed), "--no-ceilings", "--min-samples", "5", "--noise", "0.02",
           "--max-time", "3", "--save-masks", masks_dir, "--quiet", "--json", "-"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), r.stderr.strip()))
    recs = [x for x in json.loads(r.stdout)["records"] if x.get("impl") == "bsattn" and x.get("pass") == "fwd+bwd"]
    return recs[0]


def timing(args):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
    import peers  # scripts/peers.py: FlexAttention's BlockMask as the peer comparison builds it
    from torch.nn.attention.flex_attention import flex_attention

    dev = torch.device("cuda")
    l2 = torch.cuda.get_device_properties(dev).L2_cache_size
    flush = torch.empty(max(2 * l2, 1 << 20), dtype=torch.uint8, device=dev)
    flex = torch.compile(flex_attention, dynamic=False)
    seqs = [8192] if args.quick else [8192, 32768]
    rows = []
    tmp = tempfile.mkdtemp(prefix="bsattn-torch-")
    for S in seqs:
        for density in (0.1, 0.5, 1.0):
            masks_dir = os.path.join(tmp, "masks_%d_%g" % (S, density))
            rec = bench_direct(args.bsattn, S, density, args.seed, masks_dir)
            prefix = os.path.join(masks_dir, rec["mask_file"])  # the mask the bench timed, for both peers
            mask = bsattn.load_mask(prefix + ".npy", q_len=S, kv_len=S, block_size=128, causal=bool(rec["causal"]))
            torch.manual_seed(5)
            q, k, v = (torch.randn(1, S, 16, 128, device=dev, dtype=torch.bfloat16, requires_grad=True)
                       for _ in range(3))
            dout = torch.randn(1, S, 16, 128, device=dev, dtype=torch.bfloat16)
            m = mask.to(dev)

            def ours():
                o = bsattn.attention(q, k, v, m)
                torch.autograd.grad(o, (q, k, v), dout)

            op_ms, _ = measure(ours, flush)
            host_ms = host_per_call(ours)
            bm = peers.flex_block_mask(prefix, S, 128, mask.causal, dev)
            qf, kf, vf = (x.detach().transpose(1, 2).contiguous().requires_grad_(True) for x in (q, k, v))
            doutf = dout.transpose(1, 2).contiguous()

            def theirs():
                o = flex(qf, kf, vf, block_mask=bm)
                torch.autograd.grad(o, (qf, kf, vf), doutf)

            flex_ms, _ = measure(theirs, flush)
            rows.append((S, mask.density, rec["median_ms"], op_ms, host_ms, flex_ms))
            print("S=%d density %.3f: bench %.4g ms, torch op %.4g ms (%.3fx; host %.4g ms per call), "
                  "FlexAttention %.4g ms" % (S, mask.density, rec["median_ms"], op_ms, op_ms / rec["median_ms"],
                                             host_ms, flex_ms), flush=True)
            del q, k, v, qf, kf, vf, m
            torch.cuda.empty_cache()
    p = torch.cuda.get_device_properties(dev)
    lines = ["bsattn forward+backward: torch op (bsattn.attention + torch.autograd.grad) against `bsattn bench "
             "--pass fwd+bwd` and FlexAttention; %s, torch %s, bsattn %s, bf16, B=1, H=16, D=128, block 128, random "
             "masks, median ms (CUDA events, L2 flushed, each sample from an idle GPU). host: the Python side's "
             "time per call of forward+backward (host clock over 20 calls queued back to back)."
             % (p.name, torch.__version__, bsattn.__version__), "",
             "| S | density | bench fwd+bwd | torch op | op / bench | host | FlexAttention | Flex / op |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for S, dens_m, bench_ms, op_ms, host_ms, flex_ms in rows:
        lines.append("| %d | %.3f | %.4g | %.4g | %.3f | %.3g | %.4g | %.2fx |"
                     % (S, dens_m, bench_ms, op_ms, op_ms / bench_ms, host_ms, flex_ms, flex_ms / op_ms))
    table = "\n".join(lines)
    print("\n" + table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bsattn", default="build-gpu/bsattn", help="the bsattn binary of the same build (bench)")
    ap.add_argument("--no-bench", action="store_true", help="checks only, no timing")
    ap.add_argument("--quick", action="store_true", help="time S=8192 only")
    ap.add_argument("--markdown", help="also write the timing table to this file")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda", help="cuda, or cpu: sections 1-4 on the CPU reference, no timing")
    args = ap.parse_args()
    global DEV
    DEV = torch.device(args.device)
    if DEV.type == "cpu":
        args.no_bench = True
        print("torch %s on the CPU; bsattn %s from %s" % (torch.__version__, bsattn.__version__, bsattn.library_path()))
    elif not torch.cuda.is_available():
        print("no CUDA device visible to PyTorch", file=sys.stderr)
        return 2
    else:
        print("torch %s (CUDA %s), %s; bsattn %s from %s; bsattn CUDA: %s"
              % (torch.__version__, torch.version.cuda, torch.cuda.get_device_name(), bsattn.__version__,
                 bsattn.library_path(), bsattn.cuda_available()))
    if DEV.type == "cuda" and not bsattn.cuda_available():
        print("libbsattn has no CUDA kernels or sees no GPU: build it with CUDA (scripts/torch-check.sh does)",
              file=sys.stderr)
        return 1
    section("1. correctness against float64 attention", correctness)
    section("1b. the eager road against the registered ops", eager_equals_op)
    section("2. torch.library.opcheck", opcheck)
    section("3. torch.compile", compile_check)
    section("4. a training step against SDPA", training)
    if not args.no_bench:
        section("5. timing", timing, args)
    print("\n%d failure(s)%s" % (len(FAILURES), "".join("\n  " + f for f in FAILURES)))
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
