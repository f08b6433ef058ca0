"""The torch ops: bsattn::fwd and bsattn::bwd (torch.library.custom_op), autograd between them, and fake
implementations for torch.compile. CUDA tensors run the bsattn kernels on the current stream with a
workspace from PyTorch's allocator; CPU tensors run the reference."""
import ctypes
from typing import Optional, Tuple

import torch

from . import _capi
from ._attention import mask_desc, options

_DTYPES = {torch.float32: _capi.F32, torch.float16: _capi.F16, torch.bfloat16: _capi.BF16}
_HEAD_ARRAYS = ("bitmap", "kv_num_blocks", "kv_indices", "q_num_blocks", "q_indices", "head_type", "head_sink",
                "head_local")


def _t(x, name):
    if x.dtype not in _DTYPES:
        raise TypeError("bsattn: %s is %s (allowed: float32 on the CPU, bfloat16 or float16)" % (name, x.dtype))
    return _capi.tensor(x.data_ptr(), _DTYPES[x.dtype], x.shape, x.stride())


def _ptr(x):
    return None if x is None else x.data_ptr()


class _MaskView:
    """The attributes mask_desc reads, from the op's arguments."""

    def __init__(self, arrays, geom, causal):
        for name, a in zip(_HEAD_ARRAYS, arrays):
            setattr(self, name, a)
        self.batch, self.heads, self.q_len, self.kv_len, self.block_q, self.block_kv = geom
        self.causal = causal


def _prepare(q, k, v, arrays, geom, causal, silu, scale, silu_n, cu_q, cu_k, kernel, deterministic, bwd_kernel=""):
    m = _MaskView(arrays, geom, causal)
    d = mask_desc(m, _ptr)
    opt = options("silu" if silu else "softmax", scale, silu_n, cu_q, cu_k,
                  cu_q.shape[0] - 1 if cu_q is not None else 0, _ptr)
    if q.is_cuda:
        opt.backend = _capi.BACKEND_CUDA
        opt.stream = torch.cuda.current_stream(q.device).cuda_stream
        opt.kernel = kernel.encode() if kernel else None
        opt.bwd_kernel = bwd_kernel.encode() if bwd_kernel else None
        opt.deterministic = int(deterministic)
    elif kernel or bwd_kernel:
        raise ValueError("bsattn: kernel= selects a CUDA kernel; these tensors are on the CPU")
    return d, opt


def _workspace(q, tq, tk, tv, d, opt, backward):
    if not q.is_cuda:
        return None
    n = ctypes.c_size_t()
    _capi.check(_capi.lib.bsattn_workspace_size(ctypes.byref(tq), ctypes.byref(tk), ctypes.byref(tv), ctypes.byref(d),
                                                ctypes.byref(opt), int(backward), ctypes.byref(n)))
    if n.value == 0:  # the forward with every mask form given
        return None
    ws = torch.empty(n.value, dtype=torch.uint8, device=q.device)
    opt.workspace, opt.workspace_bytes = ws.data_ptr(), n.value
    return ws


def _lse_shape(q, cu_q):
    return (q.shape[1], q.shape[0]) if cu_q is not None else (q.shape[0], q.shape[2], q.shape[1])


@torch.library.custom_op("bsattn::fwd", mutates_args=())
def _fwd(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bitmap: torch.Tensor, kv_num_blocks: torch.Tensor,
         kv_indices: torch.Tensor, q_num_blocks: torch.Tensor, q_indices: torch.Tensor, head_type: torch.Tensor,
         head_sink: torch.Tensor, head_local: torch.Tensor, cu_q: Optional[torch.Tensor],
         cu_k: Optional[torch.Tensor], mask_batch: int, heads: int, q_len: int, kv_len: int, block_q: int,
         block_kv: int, causal: bool, silu: bool, scale: float, silu_n: float, kernel: str,
         deterministic: bool, bwd_kernel: str) -> Tuple[torch.Tensor, torch.Tensor]:
    arrays = (bitmap, kv_num_blocks, kv_indices, q_num_blocks, q_indices, head_type, head_sink, head_local)
    geom = (mask_batch, heads, q_len, kv_len, block_q, block_kv)
    o = torch.empty_like(q, memory_format=torch.contiguous_format)
    lse = torch.empty(_lse_shape(q, cu_q), dtype=torch.float32, device=q.device)
    with torch.cuda.device(q.device) if q.is_cuda else _nullcontext():
        d, opt = _prepare(q, k, v, arrays, geom, causal, silu, scale, silu_n, cu_q, cu_k, kernel, deterministic)
        tq, tk, tv, to, tl = _t(q, "q"), _t(k, "k"), _t(v, "v"), _t(o, "o"), _t(lse, "lse")
        # No workspace: every mask form is given (the C ABI checks that this pass needs none).
        _capi.check(_capi.lib.bsattn_attention_forward(ctypes.byref(tq), ctypes.byref(tk), ctypes.byref(tv),
                                                        ctypes.byref(d), ctypes.byref(opt), ctypes.byref(to),
                                                        ctypes.byref(tl)))
    return o, lse


@_fwd.register_fake
def _fwd_fake(q, k, v, bitmap, kv_num_blocks, kv_indices, q_num_blocks, q_indices, head_type, head_sink, head_local,
              cu_q, cu_k, mask_batch, heads, q_len, kv_len, block_q, block_kv, causal, silu, scale, silu_n, kernel,
              deterministic, bwd_kernel):
    return (torch.empty_like(q, memory_format=torch.contiguous_format),
            q.new_empty(_lse_shape(q, cu_q), dtype=torch.float32))


def _bwd_impl(dout: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, o: torch.Tensor, lse: torch.Tensor,
         bitmap: torch.Tensor, kv_num_blocks: torch.Tensor, kv_indices: torch.Tensor, q_num_blocks: torch.Tensor,
         q_indices: torch.Tensor, head_type: torch.Tensor, head_sink: torch.Tensor, head_local: torch.Tensor,
         cu_q: Optional[torch.Tensor], cu_k: Optional[torch.Tensor], mask_batch: int, heads: int, q_len: int,
         kv_len: int, block_q: int, block_kv: int, causal: bool, silu: bool, scale: float, silu_n: float,
         deterministic: bool, bwd_kernel: str) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    arrays = (bitmap, kv_num_blocks, kv_indices, q_num_blocks, q_indices, head_type, head_sink, head_local)
    geom = (mask_batch, heads, q_len, kv_len, block_q, block_kv)
    dout = dout.to(q.dtype).contiguous()
    # The gradients in the inputs' dtype: the library rounds its f32 sums once as it stores them.
    dq = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    dk = torch.empty(k.shape, dtype=k.dtype, device=q.device)
    dv = torch.empty(v.shape, dtype=v.dtype, device=q.device)
    with torch.cuda.device(q.device) if q.is_cuda else _nullcontext():
        d, opt = _prepare(q, k, v, arrays, geom, causal, silu, scale, silu_n, cu_q, cu_k, "", deterministic,
                          bwd_kernel)
        t = [_t(x, n) for x, n in ((q, "q"), (k, "k"), (v, "v"), (o, "o"), (lse, "lse"), (dout, "dout"),
                                    (dq, "dq"), (dk, "dk"), (dv, "dv"))]
        ws = _workspace(q, t[0], t[1], t[2], d, opt, True)
        _capi.check(_capi.lib.bsattn_attention_backward(*(ctypes.byref(x) for x in t[:6]), ctypes.byref(d),
                                                         ctypes.byref(opt), *(ctypes.byref(x) for x in t[6:])))
        del ws  # freed on this stream: PyTorch's allocator reuses it only for work queued after the pass
    return dq, dk, dv


_bwd = torch.library.custom_op("bsattn::bwd", _bwd_impl, mutates_args=())


@_bwd.register_fake
def _bwd_fake(dout, q, k, v, o, lse, bitmap, kv_num_blocks, kv_indices, q_num_blocks, q_indices, head_type, head_sink,
              head_local, cu_q, cu_k, mask_batch, heads, q_len, kv_len, block_q, block_kv, causal, silu, scale, silu_n,
              deterministic, bwd_kernel):
    return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)


def _setup_context(ctx, inputs, output):
    (q, k, v, bitmap, kv_num_blocks, kv_indices, q_num_blocks, q_indices, head_type, head_sink, head_local, cu_q, cu_k,
     mask_batch, heads, q_len, kv_len, block_q, block_kv, causal, silu, scale, silu_n, kernel, deterministic,
     bwd_kernel) = inputs
    o, lse = output
    # LSE's gradient is never used: without this, autograd fills a zero tensor for it on every backward
    # (a kernel launch and its host cost per call, measured on the H200: results/torch/).
    ctx.set_materialize_grads(False)
    ctx.save_for_backward(q, k, v, o, lse, bitmap, kv_num_blocks, kv_indices, q_num_blocks, q_indices, head_type,
                          head_sink, head_local, cu_q, cu_k)
    ctx.args = (mask_batch, heads, q_len, kv_len, block_q, block_kv, causal, silu, scale, silu_n, deterministic,
                bwd_kernel)


def _backward(ctx, grad_o, grad_lse):
    # LSE is an output for inspection, not differentiated (attention returns it detached).
    q, k, v, o, lse, *mask_and_cu = ctx.saved_tensors
    if grad_o is None:
        grad_o = torch.zeros_like(o)
    # Eager autograd on plain tensors calls the backward's implementation directly: through the dispatcher
    # it cost a custom op's Python overhead on every step (results/torch/torch-profile-h200-48f2598.md).
    # Tracing (torch.compile: fake or functional tensor subclasses) gets the op and its fake implementation.
    eager = not torch.compiler.is_compiling() and all(type(t) is torch.Tensor for t in (grad_o, q, k, v, o, lse))
    bwd = _bwd_impl if eager else torch.ops.bsattn.bwd
    dq, dk, dv = bwd(grad_o, q, k, v, o, lse, *mask_and_cu, *ctx.args)
    return (dq, dk, dv) + (None,) * 23


_fwd.register_autograd(_backward, setup_context=_setup_context)


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def forward(q, k, v, m, score, scale, silu_n, cu_q, cu_k, deterministic, kernel, bwd_kernel):
    """attention() on torch tensors: the mask's arrays moved to q's device (kept on the mask), inputs
    contiguous, then the op. Returns O and LSE (detached)."""
    if score not in ("softmax", "silu"):
        raise ValueError("bsattn: score=%r (allowed: 'softmax', 'silu')" % (score,))
    if m.device is None or m.device != q.device:
        m = m.to(q.device)
    if cu_q is not None:
        cu_q = cu_q.to(device=q.device, dtype=torch.int32)
        cu_k = cu_k.to(device=q.device, dtype=torch.int32)
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    o, lse = torch.ops.bsattn.fwd(q, k, v, m.bitmap, m.kv_num_blocks, m.kv_indices, m.q_num_blocks, m.q_indices,
                                  m.head_type, m.head_sink, m.head_local, cu_q, cu_k, m.batch, m.heads,
                                  m.q_len, m.kv_len, m.block_q, m.block_kv, m.causal, score == "silu",
                                  float(scale or 0.0), float(silu_n or 0.0), kernel or "", bool(deterministic),
                                  bwd_kernel or "")
    return o, lse.detach()
