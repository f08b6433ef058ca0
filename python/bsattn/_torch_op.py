"""The torch ops: bsattn::fwd and bsattn::bwd (torch.library.custom_op), autograd between them, and fake
implementations for torch.compile. CUDA tensors run the bsattn kernels on the current stream with a
workspace from PyTorch's allocator; CPU tensors run the reference.

Eager calls on plain tensors take a shorter road to the same launches: a torch.autograd.Function whose
forward and backward call the library directly, with the mask's C descriptor and the backward's workspace
size kept on the mask. A custom op's Python dispatch and autograd wrapper cost more host time per call
than a sparse forward+backward takes on the GPU (results/torch/). Traced calls (torch.compile, opcheck,
dispatch modes, functorch transforms) go through the registered ops."""
import ctypes
import threading
from typing import Optional, Tuple

import torch

from . import _capi
from ._attention import mask_desc, options

_DTYPES = {torch.float32: _capi.F32, torch.float16: _capi.F16, torch.bfloat16: _capi.BF16}
_HEAD_ARRAYS = ("bitmap", "kv_num_blocks", "kv_indices", "q_num_blocks", "q_indices", "head_type", "head_sink",
                "head_local")


_LOCAL = threading.local()  # per thread: the tensor descriptors by role, dtype, shape and strides


def _t(x, name):
    """The C descriptor of tensor x in role `name` (q, k, ..., dv): made once per dtype, shape and strides and
    kept per thread, with only its data pointer set per call (one role never holds two tensors at once)."""
    cache = _LOCAL.__dict__.setdefault("tensors", {})
    key = (name, x.dtype, x.shape, x.stride())
    t = cache.get(key)
    if t is None:
        if x.dtype not in _DTYPES:
            raise TypeError("bsattn: %s is %s (allowed: float32 on the CPU, bfloat16 or float16)" % (name, x.dtype))
        if len(cache) > 256:  # many shapes (varlen batches): start over rather than grow without bound
            cache.clear()
        t = cache[key] = _capi.tensor(0, _DTYPES[x.dtype], x.shape, x.stride())
    t.data = x.data_ptr()
    return t


def _ptr(x):
    return None if x is None else x.data_ptr()


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


_NULL = _nullcontext()


def _on_device(q):
    """q's device as the current one for the library's calls (a context only when it is not already)."""
    if q.is_cuda and q.device.index != torch.cuda.current_device():
        return torch.cuda.device(q.device)
    return _NULL


class _MaskView:
    """The attributes mask_desc reads, from the op's arguments."""

    def __init__(self, arrays, geom, causal):
        for name, a in zip(_HEAD_ARRAYS, arrays):
            setattr(self, name, a)
        self.batch, self.heads, self.q_len, self.kv_len, self.block_q, self.block_kv = geom
        self.causal = causal


def _raw_stream(index):
    """The current CUDA stream's handle on device `index` (the raw getter where this torch has it)."""
    if _RAW_STREAM is not None:
        return _RAW_STREAM(index)
    return torch.cuda.current_stream(index).cuda_stream


_RAW_STREAM = getattr(torch._C, "_cuda_getCurrentRawStream", None)


def _options(q, silu, scale, silu_n, cu_q, cu_k, kernel, deterministic, bwd_kernel=""):
    opt = options("silu" if silu else "softmax", scale, silu_n, cu_q, cu_k,
                  cu_q.shape[0] - 1 if cu_q is not None else 0, _ptr)
    if q.is_cuda:
        opt.backend = _capi.BACKEND_CUDA
        opt.stream = _raw_stream(q.device.index)
        opt.kernel = kernel.encode() if kernel else None
        opt.bwd_kernel = bwd_kernel.encode() if bwd_kernel else None
        opt.deterministic = int(deterministic)
    elif kernel or bwd_kernel:
        raise ValueError("bsattn: kernel= selects a CUDA kernel; these tensors are on the CPU")
    return opt


def _lse_shape(q, cu_q):
    return (q.shape[1], q.shape[0]) if cu_q is not None else (q.shape[0], q.shape[2], q.shape[1])


def _run_forward(q, k, v, d, opt, cu_q):
    """O and LSE of one forward pass (the caller has made q's device current)."""
    o = torch.empty_like(q, memory_format=torch.contiguous_format)
    lse = torch.empty(_lse_shape(q, cu_q), dtype=torch.float32, device=q.device)
    tq, tk, tv, to, tl = _t(q, "q"), _t(k, "k"), _t(v, "v"), _t(o, "o"), _t(lse, "lse")
    # No workspace: every mask form is given (the C ABI checks that this pass needs none).
    _capi.check(_capi.lib.bsattn_attention_forward(ctypes.byref(tq), ctypes.byref(tk), ctypes.byref(tv),
                                                    ctypes.byref(d), ctypes.byref(opt), ctypes.byref(to),
                                                    ctypes.byref(tl)))
    return o, lse


def _run_backward(dout, q, k, v, o, lse, d, opt, sizes=None):
    """dQ, dK, dV in the inputs' dtype (the library rounds its f32 sums once as it stores them). `sizes`:
    a dict that keeps the workspace size per problem (the mask's, on the eager road)."""
    dout = dout.to(q.dtype).contiguous()
    dq = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    dk = torch.empty(k.shape, dtype=k.dtype, device=q.device)
    dv = torch.empty(v.shape, dtype=v.dtype, device=q.device)
    t = [_t(x, n) for x, n in ((q, "q"), (k, "k"), (v, "v"), (o, "o"), (lse, "lse"), (dout, "dout"),
                                (dq, "dq"), (dk, "dk"), (dv, "dv"))]
    ws = None
    if q.is_cuda:
        key = (q.shape, k.shape, q.dtype, opt.varlen_batch, opt.score, opt.deterministic, opt.bwd_kernel)
        n = sizes.get(key) if sizes is not None else None
        if n is None:
            c = ctypes.c_size_t()
            _capi.check(_capi.lib.bsattn_workspace_size(ctypes.byref(t[0]), ctypes.byref(t[1]), ctypes.byref(t[2]),
                                                        ctypes.byref(d), ctypes.byref(opt), 1, ctypes.byref(c)))
            n = c.value
            if sizes is not None:
                sizes[key] = n
        if n:
            ws = torch.empty(n, dtype=torch.uint8, device=q.device)
            opt.workspace, opt.workspace_bytes = ws.data_ptr(), n
    _capi.check(_capi.lib.bsattn_attention_backward(*(ctypes.byref(x) for x in t[:6]), ctypes.byref(d),
                                                     ctypes.byref(opt), *(ctypes.byref(x) for x in t[6:])))
    del ws  # freed on this stream: PyTorch's allocator reuses it only for work queued after the pass
    return dq, dk, dv


# ---------------------------------------------------------------------------------------------------
# The registered ops (torch.compile, opcheck, and every call that is not plain eager)
# ---------------------------------------------------------------------------------------------------

@torch.library.custom_op("bsattn::fwd", mutates_args=())
def _fwd(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bitmap: torch.Tensor, kv_num_blocks: torch.Tensor,
         kv_indices: torch.Tensor, q_num_blocks: torch.Tensor, q_indices: torch.Tensor, head_type: torch.Tensor,
         head_sink: torch.Tensor, head_local: torch.Tensor, cu_q: Optional[torch.Tensor],
         cu_k: Optional[torch.Tensor], mask_batch: int, heads: int, q_len: int, kv_len: int, block_q: int,
         block_kv: int, causal: bool, silu: bool, scale: float, silu_n: float, kernel: str,
         deterministic: bool, bwd_kernel: str) -> Tuple[torch.Tensor, torch.Tensor]:
    arrays = (bitmap, kv_num_blocks, kv_indices, q_num_blocks, q_indices, head_type, head_sink, head_local)
    d = mask_desc(_MaskView(arrays, (mask_batch, heads, q_len, kv_len, block_q, block_kv), causal), _ptr)
    with _on_device(q):
        opt = _options(q, silu, scale, silu_n, cu_q, cu_k, kernel, deterministic)
        return _run_forward(q, k, v, d, opt, cu_q)


@_fwd.register_fake
def _fwd_fake(q, k, v, bitmap, kv_num_blocks, kv_indices, q_num_blocks, q_indices, head_type, head_sink, head_local,
              cu_q, cu_k, mask_batch, heads, q_len, kv_len, block_q, block_kv, causal, silu, scale, silu_n, kernel,
              deterministic, bwd_kernel):
    return (torch.empty_like(q, memory_format=torch.contiguous_format),
            q.new_empty(_lse_shape(q, cu_q), dtype=torch.float32))


@torch.library.custom_op("bsattn::bwd", mutates_args=())
def _bwd(dout: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, o: torch.Tensor, lse: torch.Tensor,
         bitmap: torch.Tensor, kv_num_blocks: torch.Tensor, kv_indices: torch.Tensor, q_num_blocks: torch.Tensor,
         q_indices: torch.Tensor, head_type: torch.Tensor, head_sink: torch.Tensor, head_local: torch.Tensor,
         cu_q: Optional[torch.Tensor], cu_k: Optional[torch.Tensor], mask_batch: int, heads: int, q_len: int,
         kv_len: int, block_q: int, block_kv: int, causal: bool, silu: bool, scale: float, silu_n: float,
         deterministic: bool, bwd_kernel: str) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    arrays = (bitmap, kv_num_blocks, kv_indices, q_num_blocks, q_indices, head_type, head_sink, head_local)
    d = mask_desc(_MaskView(arrays, (mask_batch, heads, q_len, kv_len, block_q, block_kv), causal), _ptr)
    with _on_device(q):
        opt = _options(q, silu, scale, silu_n, cu_q, cu_k, "", deterministic, bwd_kernel)
        return _run_backward(dout, q, k, v, o, lse, d, opt)


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
    # LSE's gradient is never used: without this, autograd fills a zero tensor for it on every backward.
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
    dq, dk, dv = torch.ops.bsattn.bwd(grad_o, q, k, v, o, lse, *mask_and_cu, *ctx.args)
    return (dq, dk, dv) + (None,) * 23


_fwd.register_autograd(_backward, setup_context=_setup_context)


# ---------------------------------------------------------------------------------------------------
# The eager road
# ---------------------------------------------------------------------------------------------------

def _plain_eager(q, k, v):
    """True when nothing traces or transforms this call: no torch.compile, no dispatch mode (fake tensors,
    opcheck), no functorch transform, plain tensors."""
    if torch.compiler.is_compiling() or not (type(q) is torch.Tensor and type(k) is torch.Tensor
                                             and type(v) is torch.Tensor):
        return False
    stack = getattr(torch._C, "_len_torch_dispatch_stack", None)
    if stack is not None and stack() > 0:
        return False
    peek = getattr(getattr(torch._C, "_functorch", None), "peek_interpreter_stack", None)
    return peek is None or peek() is None


def _descriptor(m):
    """The C descriptor of mask `m` (on a device), made once and kept on the mask with the workspace sizes."""
    d = m.__dict__.get("_desc")
    if d is None:
        d = m._desc = mask_desc(m, _ptr)
        m._ws_sizes = {}
    return d


class _Attention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, m, call):
        cu_q, cu_k, silu, scale, silu_n, kernel, deterministic, bwd_kernel = call
        with _on_device(q):
            o, lse = _run_forward(q, k, v, _descriptor(m),
                                  _options(q, silu, scale, silu_n, cu_q, cu_k, kernel, deterministic), cu_q)
        ctx.save_for_backward(q, k, v, o, lse)
        ctx.mask, ctx.call = m, call
        ctx.mark_non_differentiable(lse)
        ctx.set_materialize_grads(False)
        return o, lse

    @staticmethod
    def backward(ctx, grad_o, grad_lse):
        if grad_o is None:
            return None, None, None, None, None
        q, k, v, o, lse = ctx.saved_tensors
        cu_q, cu_k, silu, scale, silu_n, _, deterministic, bwd_kernel = ctx.call
        m = ctx.mask
        with _on_device(q):
            opt = _options(q, silu, scale, silu_n, cu_q, cu_k, "", deterministic, bwd_kernel)
            dq, dk, dv = _run_backward(grad_o, q, k, v, o, lse, _descriptor(m), opt, m._ws_sizes)
        return dq, dk, dv, None, None


def forward(q, k, v, m, score, scale, silu_n, cu_q, cu_k, deterministic, kernel, bwd_kernel):
    """attention() on torch tensors: the mask's arrays moved to q's device (kept on the mask), inputs
    contiguous, then the eager road or the op. Returns O and LSE (detached)."""
    if score not in ("softmax", "silu"):
        raise ValueError("bsattn: score=%r (allowed: 'softmax', 'silu')" % (score,))
    if m.device is None or m.device != q.device:
        m = m.to(q.device)
    if cu_q is not None:
        cu_q = cu_q.to(device=q.device, dtype=torch.int32)
        cu_k = cu_k.to(device=q.device, dtype=torch.int32)
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    silu, scale, silu_n = score == "silu", float(scale or 0.0), float(silu_n or 0.0)
    kernel, bwd_kernel, deterministic = kernel or "", bwd_kernel or "", bool(deterministic)
    if _plain_eager(q, k, v):
        call = (cu_q, cu_k, silu, scale, silu_n, kernel, deterministic, bwd_kernel)
        if torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad):
            o, lse = _Attention.apply(q, k, v, m, call)
        else:
            with _on_device(q):
                o, lse = _run_forward(q, k, v, _descriptor(m),
                                      _options(q, silu, scale, silu_n, cu_q, cu_k, kernel, deterministic), cu_q)
        return o, lse
    o, lse = torch.ops.bsattn.fwd(q, k, v, m.bitmap, m.kv_num_blocks, m.kv_indices, m.q_num_blocks, m.q_indices,
                                  m.head_type, m.head_sink, m.head_local, cu_q, cu_k, m.batch, m.heads,
                                  m.q_len, m.kv_len, m.block_q, m.block_kv, m.causal, silu, scale, silu_n, kernel,
                                  deterministic, bwd_kernel)
    return o, lse.detach()
