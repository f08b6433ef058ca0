"""ctypes bindings of libbsattn's C ABI (apps/capi/bsattn.h; docs/c-api.md)."""
import ctypes
import glob
import os

OK, ERROR_RUNTIME, ERROR_USAGE = 0, 1, 2
F32, F16, BF16 = 0, 1, 2
BACKEND_CPU, BACKEND_CUDA = 0, 1
SCORE_SOFTMAX, SCORE_SILU = 0, 1
HEAD_DENSE, HEAD_SPARSE, HEAD_STREAMING = 0, 1, 2
ABI_VERSION = 1


class BsattnError(RuntimeError):
    """An error the library reported: `code` is 2 for bad input, 1 for a failure at run time."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class Tensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("dtype", ctypes.c_int32), ("ndim", ctypes.c_int32),
                ("shape", ctypes.c_int64 * 4), ("strides", ctypes.c_int64 * 4)]


class MaskDesc(ctypes.Structure):
    _fields_ = [("batch", ctypes.c_int64), ("heads", ctypes.c_int64), ("q_len", ctypes.c_int64),
                ("kv_len", ctypes.c_int64), ("block_q", ctypes.c_int64), ("block_kv", ctypes.c_int64),
                ("causal", ctypes.c_int32), ("bitmap", ctypes.c_void_p), ("kv_num_blocks", ctypes.c_void_p),
                ("kv_indices", ctypes.c_void_p), ("q_num_blocks", ctypes.c_void_p), ("q_indices", ctypes.c_void_p),
                ("head_type", ctypes.c_void_p), ("head_sink", ctypes.c_void_p), ("head_local", ctypes.c_void_p)]


class Options(ctypes.Structure):
    _fields_ = [("backend", ctypes.c_int32), ("score", ctypes.c_int32), ("scale", ctypes.c_double),
                ("silu_n", ctypes.c_double), ("varlen_batch", ctypes.c_int64), ("cu_seqlens_q", ctypes.c_void_p),
                ("cu_seqlens_k", ctypes.c_void_p), ("stream", ctypes.c_void_p), ("kernel", ctypes.c_char_p), ("bwd_kernel", ctypes.c_char_p),
                ("deterministic", ctypes.c_int32), ("workspace", ctypes.c_void_p), ("workspace_bytes", ctypes.c_size_t)]


class MaskInfo(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int64) for n in ("batch", "heads", "q_len", "kv_len", "block_q", "block_kv", "mq", "mk")] + \
               [("causal", ctypes.c_int32)]


def _candidates():
    env = os.environ.get("BSATTN_LIBRARY")
    if env:
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    found = [os.path.join(here, "libbsattn.so")]
    # Run from the checkout (PYTHONPATH=python, or an editable install): the newest build folder's.
    root = os.path.dirname(os.path.dirname(here))
    found += sorted(glob.glob(os.path.join(root, "build*", "libbsattn.so")), key=os.path.getmtime, reverse=True)
    return found


def _load():
    tried = []
    for path in _candidates():
        if os.path.exists(path):
            lib = ctypes.CDLL(path)
            break
        tried.append(path)
    else:
        raise ImportError("bsattn: libbsattn.so not found (looked at: %s); build it with "
                          "`cmake --build build --target bsattn_capi`, or set BSATTN_LIBRARY to its path"
                          % ", ".join(tried))
    if lib.bsattn_abi_version() != ABI_VERSION:
        raise ImportError("bsattn: %s has C ABI version %d, this package needs %d; rebuild it"
                          % (path, lib.bsattn_abi_version(), ABI_VERSION))
    P, T, M, O = ctypes.c_void_p, ctypes.POINTER(Tensor), ctypes.POINTER(MaskDesc), ctypes.POINTER(Options)
    i64, i32 = ctypes.c_int64, ctypes.c_int32
    sig = {
        "bsattn_last_error": ([], ctypes.c_char_p),
        "bsattn_version": ([], ctypes.c_char_p),
        "bsattn_cuda_available": ([], ctypes.c_int),
        "bsattn_workspace_size": ([T, T, T, M, O, ctypes.c_int, ctypes.POINTER(ctypes.c_size_t)], ctypes.c_int),
        "bsattn_attention_forward": ([T, T, T, M, O, T, T], ctypes.c_int),
        "bsattn_attention_backward": ([T, T, T, T, T, T, M, O, T, T, T], ctypes.c_int),
        "bsattn_mask_generate": ([ctypes.c_char_p, ctypes.c_char_p, i64, i64, i64, i64, i64, i64, i32,
                                  ctypes.c_uint64, ctypes.POINTER(P)], ctypes.c_int),
        "bsattn_mask_load": ([ctypes.c_char_p, i64, i64, i64, i64, i32, ctypes.POINTER(P)], ctypes.c_int),
        "bsattn_mask_create": ([M, ctypes.POINTER(P)], ctypes.c_int),
        "bsattn_mask_free": ([P], None),
        "bsattn_mask_get_info": ([P, ctypes.POINTER(MaskInfo)], ctypes.c_int),
        "bsattn_mask_copy_bitmap": ([P, P, ctypes.c_size_t], ctypes.c_int),
        "bsattn_mask_copy_heads": ([P, P, P, P, ctypes.c_size_t], ctypes.c_int),
        "bsattn_mask_copy_csr": ([P, P, P, P, P, ctypes.c_size_t, ctypes.c_size_t], ctypes.c_int),
        "bsattn_mask_json": ([P], ctypes.c_char_p),
        "bsattn_mask_save": ([P, ctypes.c_char_p], ctypes.c_int),
    }
    for name, (args, res) in sig.items():
        f = getattr(lib, name)
        f.argtypes = args
        f.restype = res
    lib.path = path
    return lib


lib = _load()


def check(rc):
    """Raises BsattnError with the library's message for a status other than OK."""
    if rc != OK:
        raise BsattnError(rc, lib.bsattn_last_error().decode("utf-8", "replace"))


_I64x4 = ctypes.c_int64 * 4


def tensor(data_ptr, dtype, shape, strides):
    n = len(shape)
    if n > 4:
        raise ValueError("bsattn: tensors have at most 4 dimensions, got shape %s" % (tuple(shape),))
    pad = (0,) * (4 - n)
    return Tensor(data_ptr, dtype, n, _I64x4(*shape, *pad), _I64x4(*strides, *pad))
