"""bsattn from Python: block-sparse attention over libbsattn's C ABI (ctypes; no torch headers needed).

    import bsattn
    mask = bsattn.gen_mask("local:window=2", seq_len=8192, heads=16, causal=True)
    out = bsattn.attention(q, k, v, mask)           # torch (CUDA or CPU) or NumPy (CPU reference)

With PyTorch importable, `bsattn.attention` on torch tensors is the custom op torch.ops.bsattn.fwd with
autograd (torch.ops.bsattn.bwd) and fake implementations, so it trains and runs under torch.compile."""
from ._capi import BsattnError
from ._capi import lib as _lib
from ._mask import Mask, as_mask, from_blockmask, from_flex, gen_mask, load_mask
from ._attention import attention, attention_backward

__version__ = _lib.bsattn_version().decode()


def cuda_available():
    """True when libbsattn has the CUDA kernels and a CUDA GPU is present."""
    return bool(_lib.bsattn_cuda_available())


def library_path():
    """The libbsattn.so this package loaded."""
    return _lib.path


try:  # the torch op is registered when torch is importable, so that torch.compile sees it from the start
    import torch as _torch  # noqa: F401
except ImportError:
    _torch = None
if _torch is not None:
    from . import _attention as _attention_module
    from . import _torch_op

    _attention_module.torch_forward = _torch_op.forward

__all__ = ["Mask", "BsattnError", "attention", "attention_backward", "gen_mask", "load_mask", "from_blockmask",
           "from_flex", "as_mask", "cuda_available", "library_path"]
