"""Block masks: bsattn.Mask, made from a pattern spec, a mask file, a boolean block mask
(Block-Sparse-Attention's base_blockmask) or a FlexAttention BlockMask."""
import ctypes
import json
import os

import numpy as np

from . import _capi


def _torch():
    try:
        import torch
        return torch
    except ImportError:
        return None


class Mask:
    """A block mask: the bitmap [batch, heads, Mq, Mk] (batch 1 broadcasts), the sizes it was made for,
    the causal flag, per-head types (dense, sparse, streaming) and the CSR forms the kernels read.

    Arrays are NumPy on the host; `mask.to(device)` gives the same mask with torch tensors on `device`
    (kept, so that a training loop moves it once). Make masks outside a compiled region and move them
    to the device there too: `attention` then only reads their tensors."""

    _ARRAYS = ("bitmap", "head_type", "head_sink", "head_local", "kv_num_blocks", "kv_indices",
               "q_num_blocks", "q_indices")

    def __init__(self, handle, owned=True):
        info = _capi.MaskInfo()
        _capi.check(_capi.lib.bsattn_mask_get_info(handle, ctypes.byref(info)))
        self.batch, self.heads = info.batch, info.heads
        self.q_len, self.kv_len = info.q_len, info.kv_len
        self.block_q, self.block_kv = info.block_q, info.block_kv
        self.mq, self.mk = info.mq, info.mk
        self.causal = bool(info.causal)
        B, H, mq, mk = self.batch, self.heads, self.mq, self.mk
        self.bitmap = np.empty((B, H, mq, mk), np.uint8)
        _capi.check(_capi.lib.bsattn_mask_copy_bitmap(handle, self.bitmap.ctypes.data, self.bitmap.size))
        self.head_type = np.empty(H, np.uint8)
        self.head_sink = np.empty(H, np.int32)
        self.head_local = np.empty(H, np.int32)
        _capi.check(_capi.lib.bsattn_mask_copy_heads(handle, self.head_type.ctypes.data, self.head_sink.ctypes.data,
                                                     self.head_local.ctypes.data, H))
        self.kv_num_blocks = np.empty((B, H, mq), np.int32)
        self.kv_indices = np.empty((B, H, mq, mk), np.int32)
        self.q_num_blocks = np.empty((B, H, mk), np.int32)
        self.q_indices = np.empty((B, H, mk, mq), np.int32)
        _capi.check(_capi.lib.bsattn_mask_copy_csr(handle, self.kv_num_blocks.ctypes.data, self.kv_indices.ctypes.data,
                                                   self.q_num_blocks.ctypes.data, self.q_indices.ctypes.data,
                                                   B * H * mq, B * H * mk))
        text = _capi.lib.bsattn_mask_json(handle)
        self.spec = json.loads(text.decode()).get("spec") if text else None
        self.device = None  # host (NumPy)
        self._moved = {}
        if owned:
            _capi.lib.bsattn_mask_free(handle)

    def __repr__(self):
        return ("bsattn.Mask(batch=%d, heads=%d, q_len=%d, kv_len=%d, block=%dx%d, causal=%s, density=%.4f%s)"
                % (self.batch, self.heads, self.q_len, self.kv_len, self.block_q, self.block_kv, self.causal,
                   self.density, "" if self.device is None else ", device=%s" % self.device))

    @property
    def density(self):
        return float(np.asarray(self.bitmap.cpu() if hasattr(self.bitmap, "cpu") else self.bitmap).mean())

    def numpy(self):
        """The bitmap as a bool NumPy array [B, H, Mq, Mk] (Block-Sparse-Attention's base_blockmask)."""
        b = self.bitmap.cpu().numpy() if hasattr(self.bitmap, "cpu") else self.bitmap
        return b.astype(bool)

    def tensor(self, device=None):
        """The bitmap as a bool torch tensor [B, H, Mq, Mk] on `device`."""
        torch = _torch()
        if torch is None:
            raise ImportError("bsattn: Mask.tensor needs PyTorch; use Mask.numpy()")
        return torch.from_numpy(self.numpy()).to(device or "cpu")

    def to(self, device):
        """The same mask with its arrays as torch tensors on `device` (kept for the next call)."""
        torch = _torch()
        if torch is None:
            raise ImportError("bsattn: Mask.to needs PyTorch")
        device = torch.device(device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        key = str(device)
        if self.device is not None:
            if self.device == device:
                return self
            raise ValueError("bsattn: move the host mask, not a mask already on %s" % self.device)
        if key not in self._moved:
            m = object.__new__(Mask)
            m.__dict__.update({k: v for k, v in self.__dict__.items() if k not in self._ARRAYS})
            for name in self._ARRAYS:
                setattr(m, name, torch.from_numpy(np.ascontiguousarray(getattr(self, name))).to(device))
            m.device = device
            m._moved = {}
            self._moved[key] = m
        return self._moved[key]

    def save(self, path):
        """Writes the mask as `bsattn gen-mask` would: .npy (bool [B,H,Mq,Mk]) or .json (bsattn.mask/v1)."""
        handle = _host_handle(self)
        try:
            _capi.check(_capi.lib.bsattn_mask_save(handle, os.fsencode(path)))
        finally:
            _capi.lib.bsattn_mask_free(handle)


def _host_handle(m):
    bitmap = m.numpy().astype(np.uint8)
    head_type = np.ascontiguousarray(np.asarray(m.head_type.cpu() if hasattr(m.head_type, "cpu") else m.head_type))
    sink = np.ascontiguousarray(np.asarray(m.head_sink.cpu() if hasattr(m.head_sink, "cpu") else m.head_sink))
    local = np.ascontiguousarray(np.asarray(m.head_local.cpu() if hasattr(m.head_local, "cpu") else m.head_local))
    return _create(bitmap, m.q_len, m.kv_len, m.block_q, m.block_kv, m.causal, head_type, sink, local)


def _create(bitmap, q_len, kv_len, block_q, block_kv, causal, head_type=None, head_sink=None, head_local=None,
            kv_num_blocks=None, kv_indices=None):
    d = _capi.MaskDesc()
    arrays = bitmap if bitmap is not None else kv_indices
    d.batch, d.heads = arrays.shape[0], arrays.shape[1]
    d.q_len, d.kv_len, d.block_q, d.block_kv, d.causal = q_len, kv_len, block_q, block_kv, int(bool(causal))
    keep = []

    def ptr(a, dtype, n, name):
        if a is None:
            return None
        a = np.ascontiguousarray(np.asarray(a), dtype=dtype)
        if a.size != n:
            raise ValueError("bsattn: %s has %d elements, the mask needs %d" % (name, a.size, n))
        keep.append(a)
        return a.ctypes.data

    mq = -(-q_len // block_q) if block_q > 0 else 0
    mk = -(-kv_len // block_kv) if block_kv > 0 else 0
    cells = d.batch * d.heads * mq * mk
    if bitmap is not None:
        if bitmap.shape[2:] != (mq, mk):
            raise ValueError("bsattn: the block mask is [%s] but q_len=%d, kv_len=%d with blocks %dx%d need "
                             "[B,H,%d,%d]" % (",".join(map(str, bitmap.shape)), q_len, kv_len, block_q, block_kv,
                                               mq, mk))
        d.bitmap = ptr(bitmap, np.uint8, cells, "the bitmap")
    else:
        d.kv_num_blocks = ptr(kv_num_blocks, np.int32, d.batch * d.heads * mq, "kv_num_blocks")
        d.kv_indices = ptr(kv_indices, np.int32, cells, "kv_indices")
    d.head_type = ptr(head_type, np.uint8, d.heads, "head_type")
    d.head_sink = ptr(head_sink, np.int32, d.heads, "head_sink")
    d.head_local = ptr(head_local, np.int32, d.heads, "head_local")
    handle = ctypes.c_void_p()
    _capi.check(_capi.lib.bsattn_mask_create(ctypes.byref(d), ctypes.byref(handle)))
    return handle


def gen_mask(spec=None, seq_len=None, *, q_len=None, kv_len=None, heads=1, batch=1, block_size=128, block_q=None,
             block_kv=None, causal=False, seed=0, head_map=None):
    """The mask `bsattn gen-mask --pattern SPEC` makes (or `--head-map MAP` with head_map=...): the same
    spec strings, sizes and seed give the same bitmap. Returns a bsattn.Mask; `.tensor(device)` or
    `.numpy()` give the bool [B, H, Mq, Mk] block mask."""
    ql = q_len or seq_len or 0
    kl = kv_len or seq_len or 0
    handle = ctypes.c_void_p()
    _capi.check(_capi.lib.bsattn_mask_generate(
        spec.encode() if spec is not None else None, head_map.encode() if head_map is not None else None,
        batch, heads, ql, kl, block_q or block_size, block_kv or block_size, int(bool(causal)), seed,
        ctypes.byref(handle)))
    return Mask(handle)


def load_mask(path, *, q_len=0, kv_len=0, block_size=0, block_q=0, block_kv=0, causal=False):
    """A mask file as `bsattn gen-mask` writes it: .json (self-describing), .npy (bool [B,H,Mq,Mk]; give
    q_len/kv_len and the block size unless they are full blocks of 128) or a CSR prefix."""
    handle = ctypes.c_void_p()
    _capi.check(_capi.lib.bsattn_mask_load(os.fsencode(path), q_len, kv_len, block_q or block_size,
                                           block_kv or block_size, int(bool(causal)), ctypes.byref(handle)))
    return Mask(handle)


def from_blockmask(blockmask, q_len, kv_len, *, heads=None, block_size=128, block_q=None, block_kv=None,
                   causal=False, head_type=None, head_sink=None, head_local=None):
    """A mask from a boolean block mask [B, H, Mq, Mk] (Block-Sparse-Attention's base_blockmask; NumPy or
    torch). H = 1 is repeated to `heads`. head_type (0 dense, 1 sparse, 2 streaming per head, as
    Block-Sparse-Attention's head_mask_type says dense / blocksparse / streaming) is optional."""
    b = blockmask.detach().cpu().numpy() if hasattr(blockmask, "detach") else np.asarray(blockmask)
    if b.ndim == 2:
        b = b[None, None]
    elif b.ndim == 3:
        b = b[None]
    if b.ndim != 4:
        raise ValueError("bsattn: a block mask is [B, H, Mq, Mk] bool, got shape %s" % (b.shape,))
    if heads is not None and b.shape[1] == 1 and heads > 1:
        b = np.repeat(b, heads, axis=1)
    if b.dtype != np.bool_ and not np.isin(b, (0, 1)).all():
        raise ValueError("bsattn: a block mask holds booleans (or 0/1), got values other than 0 and 1")
    handle = _create(b.astype(np.uint8), q_len, kv_len, block_q or block_size, block_kv or block_size, causal,
                     head_type, head_sink, head_local)
    return Mask(handle)


def from_flex(block_mask, q_len=None, kv_len=None, *, heads=None, causal=False):
    """A mask from FlexAttention's BlockMask: the union of its partial blocks (kv_num_blocks / kv_indices)
    and full blocks (full_kv_num_blocks / full_kv_indices). bsattn keeps whole blocks: a mask_mod's
    pattern inside partial blocks is not applied, except causal (pass causal=True)."""
    bq, bk = block_mask.BLOCK_SIZE if isinstance(block_mask.BLOCK_SIZE, (tuple, list)) else (block_mask.BLOCK_SIZE,) * 2
    lengths = getattr(block_mask, "seq_lengths", None)
    if q_len is None or kv_len is None:
        if lengths is None:
            raise ValueError("bsattn: this BlockMask does not record its sequence lengths; give q_len and kv_len")
        q_len, kv_len = q_len or int(lengths[0]), kv_len or int(lengths[1])
    mq, mk = -(-q_len // bq), -(-kv_len // bk)

    def host(x):
        return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)

    def scatter(num, idx):
        num = host(num).astype(np.int64)
        idx = host(idx).astype(np.int64)
        B, H = num.shape[0], num.shape[1]
        out = np.zeros((B, H, mq, mk), np.uint8)
        rows = min(num.shape[2], mq)
        take = np.arange(idx.shape[3])[None, None, None, :] < num[:, :, :rows, None]
        b, h, i, t = np.nonzero(take)
        j = idx[b, h, i, t]
        if (j < 0).any() or (j >= mk).any():
            raise ValueError("bsattn: the BlockMask lists key blocks outside 0..%d" % (mk - 1))
        out[b, h, i, j] = 1
        return out

    bits = scatter(block_mask.kv_num_blocks, block_mask.kv_indices)
    if getattr(block_mask, "full_kv_num_blocks", None) is not None:
        bits |= scatter(block_mask.full_kv_num_blocks, block_mask.full_kv_indices)
    return from_blockmask(bits, q_len, kv_len, heads=heads, block_q=bq, block_kv=bk, causal=causal)


def as_mask(mask, q_len, kv_len, heads, *, block_size=None, causal=False):
    """Any accepted mask form as a bsattn.Mask for these sizes."""
    if isinstance(mask, Mask):
        return mask
    if isinstance(mask, (str, os.PathLike)):
        if str(mask).endswith(".json"):
            return load_mask(mask)
        return load_mask(mask, q_len=q_len, kv_len=kv_len, block_size=block_size or 0, causal=causal)
    if hasattr(mask, "kv_num_blocks") and hasattr(mask, "kv_indices"):  # FlexAttention's BlockMask
        return from_flex(mask, q_len, kv_len, heads=heads, causal=causal)
    return from_blockmask(mask, q_len, kv_len, heads=heads, block_size=block_size or 128, causal=causal)
