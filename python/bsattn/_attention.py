"""bsattn.attention: NumPy arrays on the CPU reference, torch tensors through the torch op (_torch_op)."""
import ctypes

import numpy as np

from . import _capi
from ._mask import Mask, as_mask

# _torch_op.forward, set when PyTorch is importable (bsattn/__init__.py): attention() imports nothing
# while torch.compile traces it.
torch_forward = None

_NP_DTYPES = {np.dtype(np.float32): _capi.F32, np.dtype(np.float16): _capi.F16}
_SCORES = {"softmax": _capi.SCORE_SOFTMAX, "silu": _capi.SCORE_SILU}


def _np_tensor(a, name):
    if a.dtype not in _NP_DTYPES:
        raise TypeError("bsattn: %s is %s; NumPy inputs are float32 or float16 (bf16 needs torch)" % (name, a.dtype))
    return _capi.tensor(a.ctypes.data, _NP_DTYPES[a.dtype], a.shape, [s // a.itemsize for s in a.strides])


def _f32_tensor(a):
    return _capi.tensor(a.ctypes.data, _capi.F32, a.shape, [s // 4 for s in a.strides])


def mask_desc(m, ptr):
    """The C descriptor of mask `m`; `ptr(array)` gives an array's address (NumPy or torch)."""
    d = _capi.MaskDesc()
    d.batch, d.heads, d.q_len, d.kv_len = m.batch, m.heads, m.q_len, m.kv_len
    d.block_q, d.block_kv, d.causal = m.block_q, m.block_kv, int(m.causal)
    for name in ("bitmap", "kv_num_blocks", "kv_indices", "q_num_blocks", "q_indices", "head_type", "head_sink",
                 "head_local"):
        setattr(d, name, ptr(getattr(m, name)))
    return d


def options(score, scale, silu_n, cu_q=None, cu_k=None, varlen_batch=0, ptr=None):
    o = _capi.Options()
    o.backend = _capi.BACKEND_CPU
    if score not in _SCORES:
        raise ValueError("bsattn: score=%r (allowed: 'softmax', 'silu')" % (score,))
    o.score = _SCORES[score]
    o.scale = float(scale or 0.0)
    o.silu_n = float(silu_n or 0.0)
    if cu_q is not None:
        o.cu_seqlens_q, o.cu_seqlens_k, o.varlen_batch = ptr(cu_q), ptr(cu_k), varlen_batch
    return o


def _lengths(q, k, cu_q, cu_k, max_q, max_k):
    """q_len, kv_len: the tensors' sequence lengths, or for varlen the longest sequences."""
    if cu_q is None:
        return q.shape[1], k.shape[1]
    if max_q is None:
        max_q = int(np.max(np.diff(np.asarray(cu_q.cpu() if hasattr(cu_q, "cpu") else cu_q))))
    if max_k is None:
        max_k = int(np.max(np.diff(np.asarray(cu_k.cpu() if hasattr(cu_k, "cpu") else cu_k))))
    return max_q, max_k


def resolve_mask(mask, q, k, causal, block_size, cu_q, cu_k, max_q, max_k):
    heads = q.shape[-2]
    if isinstance(mask, Mask):
        return mask
    q_len, kv_len = _lengths(q, k, cu_q, cu_k, max_q, max_k)
    return as_mask(mask, q_len, kv_len, heads, block_size=block_size, causal=causal)


def with_causal(m, causal):
    """The mask with causal on when asked for (a Mask made causal stays causal)."""
    if not causal or m.causal:
        return m
    c = m.__dict__.get("_causal_variant")  # kept, so that its device copies are made once
    if c is None:
        c = object.__new__(Mask)
        c.__dict__.update((key, val) for key, val in m.__dict__.items() if key not in ("_desc", "_ws_sizes"))
        c.causal = True
        c._moved = {}
        m._causal_variant = c
    return c


def _numpy_forward(q, k, v, m, score, scale, silu_n, cu_q, cu_k):
    q, k, v = (np.ascontiguousarray(x) for x in (q, k, v))
    if cu_q is not None:
        cu_q = np.ascontiguousarray(cu_q, dtype=np.int32)
        cu_k = np.ascontiguousarray(cu_k, dtype=np.int32)
    arrays = {}

    def ptr(a):
        if a is None:
            return None
        a = np.ascontiguousarray(a)
        arrays[id(a)] = a
        return a.ctypes.data

    o = np.full_like(q, np.nan)
    if cu_q is None:
        lse = np.full((q.shape[0], q.shape[2], q.shape[1]), np.nan, np.float32)
    else:
        lse = np.full((q.shape[1], q.shape[0]), np.nan, np.float32)
    d = mask_desc(m, ptr)
    opt = options(score, scale, silu_n, cu_q, cu_k, len(cu_q) - 1 if cu_q is not None else 0, ptr)
    tq, tk, tv, to = _np_tensor(q, "q"), _np_tensor(k, "k"), _np_tensor(v, "v"), _np_tensor(o, "o")
    tl = _f32_tensor(lse)
    _capi.check(_capi.lib.bsattn_attention_forward(ctypes.byref(tq), ctypes.byref(tk), ctypes.byref(tv),
                                                    ctypes.byref(d), ctypes.byref(opt), ctypes.byref(to),
                                                    ctypes.byref(tl)))
    return o, lse


def _swap12(x):
    return np.swapaxes(x, 1, 2) if isinstance(x, np.ndarray) else x.transpose(1, 2)


def attention(q, k, v, mask, causal=False, score="softmax", cu_seqlens=None, *, cu_seqlens_k=None,
              max_seqlen_q=None, max_seqlen_k=None, scale=None, silu_n=None, block_size=None, layout="bshd",
              return_lse=False, deterministic=False, kernel=None, bwd_kernel=None):
    """Block-sparse attention: softmax(scale * Q K^T) V over the mask's kept blocks (or, score="silu", HSTU's
    SiLU(scale * Q K^T) / silu_n V).

    q [B, Sq, Hq, D], k and v [B, Sk, Hkv, D] (layout="bshd", FlashAttention's) or [B, H, S, D]
    (layout="bhsd", PyTorch's); Hq a multiple of Hkv. Varlen: packed q [total_q, Hq, D], k/v
    [total_k, Hkv, D] with cu_seqlens (and cu_seqlens_k when keys differ) as in FlashAttention.
    torch tensors run the torch op bsattn::fwd (CUDA: the bsattn kernels, bf16/f16; CPU: the reference),
    differentiable and usable under torch.compile; NumPy arrays (float32/float16) run the CPU reference.

    mask: a bsattn.Mask (gen_mask, load_mask), a mask file (.npy/.json), a bool block mask [B, H, Mq, Mk]
    (Block-Sparse-Attention's base_blockmask; blocks of `block_size`, default 128) or a FlexAttention
    BlockMask. causal=True applies the causal rule (bottom-right aligned) on top of the mask.
    CUDA: kernel= / bwd_kernel= force a forward / backward kernel by name (bsattn bench --list-kernels;
    "sm90", "sm80"); deterministic=True computes dQ without atomics.
    Returns O (q's dtype and layout), and LSE [B, Hq, Sq] (float32, natural log) when return_lse."""
    if layout not in ("bshd", "bhsd"):
        raise ValueError("bsattn: layout=%r (allowed: 'bshd', 'bhsd')" % (layout,))
    if layout == "bhsd":
        if cu_seqlens is not None:
            raise ValueError("bsattn: varlen (cu_seqlens) takes packed [total, H, D] tensors; layout must be 'bshd'")
        q, k, v = _swap12(q), _swap12(k), _swap12(v)
    cu_k = cu_seqlens_k if cu_seqlens_k is not None else cu_seqlens
    m = with_causal(resolve_mask(mask, q, k, causal, block_size, cu_seqlens, cu_k, max_seqlen_q, max_seqlen_k),
                    causal)
    if isinstance(q, np.ndarray):
        if kernel or bwd_kernel:
            raise ValueError("bsattn: kernel= / bwd_kernel= select CUDA kernels; NumPy arrays run the CPU reference")
        o, lse = _numpy_forward(q, k, v, m, score, scale, silu_n, cu_seqlens, cu_k)
    else:
        if torch_forward is None:
            raise TypeError("bsattn: q is %s; give torch tensors (with PyTorch installed) or NumPy arrays"
                            % type(q).__name__)
        o, lse = torch_forward(q, k, v, m, score, scale, silu_n, cu_seqlens, cu_k, deterministic, kernel, bwd_kernel)
    if layout == "bhsd":
        o = _swap12(o)
    return (o, lse) if return_lse else o


def attention_backward(q, k, v, out, lse, dout, mask, causal=False, score="softmax", cu_seqlens=None, *,
                       cu_seqlens_k=None, scale=None, silu_n=None, block_size=None):
    """dQ, dK, dV (float32) of attention() on NumPy arrays (BSHD, or packed varlen), from dO and the
    forward's O and LSE (attention(..., return_lse=True)). torch tensors differentiate through autograd."""
    cu_k = cu_seqlens_k if cu_seqlens_k is not None else cu_seqlens
    m = with_causal(resolve_mask(mask, q, k, causal, block_size, cu_seqlens, cu_k, None, None), causal)
    q, k, v, out, dout = (np.ascontiguousarray(x) for x in (q, k, v, out, dout))
    lse = np.ascontiguousarray(lse, dtype=np.float32)
    arrays = []

    def ptr(a):
        if a is None:
            return None
        a = np.ascontiguousarray(a)
        arrays.append(a)
        return a.ctypes.data

    if cu_seqlens is not None:
        cu_seqlens = np.ascontiguousarray(cu_seqlens, dtype=np.int32)
        cu_k = np.ascontiguousarray(cu_k, dtype=np.int32)
    d = mask_desc(m, ptr)
    opt = options(score, scale, silu_n, cu_seqlens, cu_k, len(cu_seqlens) - 1 if cu_seqlens is not None else 0, ptr)
    dq = np.full(q.shape, np.nan, np.float32)
    dk = np.full(k.shape, np.nan, np.float32)
    dv = np.full(v.shape, np.nan, np.float32)
    t = [_np_tensor(x, n) for x, n in ((q, "q"), (k, "k"), (v, "v"), (out, "out"))]
    t += [_f32_tensor(lse), _np_tensor(dout, "dout"), _f32_tensor(dq), _f32_tensor(dk), _f32_tensor(dv)]
    tq, tk, tv, to, tl, tdo, tdq, tdk, tdv = t
    _capi.check(_capi.lib.bsattn_attention_backward(
        ctypes.byref(tq), ctypes.byref(tk), ctypes.byref(tv), ctypes.byref(to), ctypes.byref(tl), ctypes.byref(tdo),
        ctypes.byref(d), ctypes.byref(opt), ctypes.byref(tdq), ctypes.byref(tdk), ctypes.byref(tdv)))
    return dq, dk, dv
