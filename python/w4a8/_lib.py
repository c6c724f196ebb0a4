"""ctypes binding to the C API of libw4a8 (include/w4a8/w4a8.h).

The Python package does not compile a second copy of the kernels: it loads the shared
library built by CMake. Where from, in this order:
  1. $W4A8_LIBRARY (a path to libw4a8.so),
  2. libw4a8.so next to this file (an installed wheel puts it there),
  3. the repository's build folders (build/, build-gpu/) when running from a checkout,
  4. the system's library path (ctypes.util.find_library("w4a8")).
Because only the C ABI is used, no PyTorch build is tied to the library.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_REPO = _HERE.parent.parent


class W4A8Error(RuntimeError):
    """A non-success status from the library, with its detail message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Weight(ctypes.Structure):
    _fields_ = [
        ("packed", ctypes.c_void_p),
        ("block_scale", ctypes.c_void_p),
        ("tensor_scale", ctypes.c_void_p),
        ("bias", ctypes.c_void_p),
        ("N", ctypes.c_int64),
        ("K", ctypes.c_int64),
        ("group_size", ctypes.c_int),
        ("layout", ctypes.c_int),  # LAYOUT_CANONICAL or LAYOUT_TILED
        ("fp8", ctypes.c_int),  # FP8_NONE / EXACT / LOSSY (w4a8_prepare_fp8) / ACCEPTED / FAST (the caller)
        ("fp8_shift", ctypes.c_int),
        ("overlap", ctypes.c_int),  # 1: the kernel before each call never writes these arrays (w4a8.h)
    ]


LAYOUT_CANONICAL, LAYOUT_TILED = 0, 1


KERNEL_AUTO, KERNEL_MMA_EXACT, KERNEL_NAIVE, KERNEL_WGMMA_EXACT, KERNEL_WGMMA_FP8 = 0, 1, 2, 3, 4
FP8_NONE, FP8_EXACT, FP8_LOSSY, FP8_ACCEPTED, FP8_FAST = 0, 1, 2, 3, 4
GLU_GELU_TANH, GLU_SILU = 1, 2  # w4a8_glu_act


class Fp8Report(ctypes.Structure):
    _fields_ = [("shift", ctypes.c_int), ("exact", ctypes.c_int), ("max_rel_error", ctypes.c_double)]


def _candidates():
    env = os.environ.get("W4A8_LIBRARY")
    if env:
        yield Path(env)
    yield _HERE / "libw4a8.so"
    for build in ("build", "build-gpu"):
        yield _REPO / build / "libw4a8.so"
    found = ctypes.util.find_library("w4a8")
    if found:
        yield Path(found)


def _load():
    tried = []
    for path in _candidates():
        tried.append(str(path))
        if path.exists() or "/" not in str(path):
            try:
                return ctypes.CDLL(str(path))
            except OSError as e:  # pragma: no cover - reported below
                tried[-1] += f" ({e})"
    raise OSError("libw4a8.so not found; build it with `make` or set W4A8_LIBRARY. Tried: " + ", ".join(tried))


_lib = None


def lib():
    """The loaded library, with argument types declared (loaded on first use)."""
    global _lib
    if _lib is None:
        L = _load()
        i64, vp, f32, i32 = ctypes.c_int64, ctypes.c_void_p, ctypes.c_float, ctypes.c_int
        L.w4a8_status_string.restype = ctypes.c_char_p
        L.w4a8_status_string.argtypes = [i32]
        L.w4a8_last_error.restype = ctypes.c_char_p
        L.w4a8_version.restype = ctypes.c_char_p
        L.w4a8_quantize_activation_fp8.argtypes = [vp, vp, vp, i64, i64, vp]
        L.w4a8_quantize_weight_nvfp4.argtypes = [vp, vp, vp, vp, i64, i64, i32, vp]
        L.w4a8_gemm.argtypes = [vp, vp, ctypes.POINTER(Weight), vp, i64, f32, vp, ctypes.c_size_t, vp]
        L.w4a8_gemm_with_kernel.argtypes = [vp, vp, ctypes.POINTER(Weight), vp, i64, f32, i32, vp,
                                            ctypes.c_size_t, vp]
        L.w4a8_linear_bf16.argtypes = [vp, ctypes.POINTER(Weight), vp, i64, f32, vp, ctypes.c_size_t, vp]
        if hasattr(L, "w4a8_linear_bf16_glu"):  # (absent from libraries built before it: A/B runs load those)
            L.w4a8_linear_bf16_glu.argtypes = [vp, ctypes.POINTER(Weight), i32, vp, i64, f32, vp, ctypes.c_size_t,
                                               vp]
            L.w4a8_linear_bf16_glu.restype = i32
        L.w4a8_linear_workspace_size.argtypes = [i64, i64, i64, i32, ctypes.POINTER(ctypes.c_size_t)]
        L.w4a8_gemm_config_count.restype = i32
        L.w4a8_gemm_config_name.restype = ctypes.c_char_p
        L.w4a8_gemm_config_name.argtypes = [i32]
        L.w4a8_gemm_with_config.argtypes = [vp, vp, ctypes.POINTER(Weight), vp, i64, f32, i32, vp,
                                            ctypes.c_size_t, vp]
        L.w4a8_gemm_workspace_size.argtypes = [i64, i64, i64, i32, ctypes.POINTER(ctypes.c_size_t)]
        L.w4a8_gemm_with_config.restype = i32
        L.w4a8_ref_quantize_activation_fp8.argtypes = [vp, vp, vp, i64, i64]
        L.w4a8_ref_quantize_weight_nvfp4.argtypes = [vp, vp, vp, vp, i64, i64, i32]
        L.w4a8_ref_gemm.argtypes = [vp, vp, ctypes.POINTER(Weight), vp, i64, f32]
        for name in ("w4a8_ref_quantize_activation_fp8", "w4a8_ref_quantize_weight_nvfp4", "w4a8_ref_gemm"):
            getattr(L, name).restype = i32
        L.w4a8_gemm_kernel_name.argtypes = [i64, i64, i64, i32, i32, ctypes.POINTER(ctypes.c_char_p)]
        L.w4a8_tiled_weight_size.argtypes = [i64, i64, i32, ctypes.POINTER(ctypes.c_size_t),
                                             ctypes.POINTER(ctypes.c_size_t)]
        L.w4a8_prepack_weight.argtypes = [ctypes.POINTER(Weight), vp, vp, vp]
        L.w4a8_unprepack_weight.argtypes = [ctypes.POINTER(Weight), vp, vp, vp]
        L.w4a8_ref_prepack_weight.argtypes = [ctypes.POINTER(Weight), vp, vp]
        L.w4a8_prepare_fp8.argtypes = [ctypes.POINTER(Weight), ctypes.POINTER(Fp8Report), vp]
        L.w4a8_ref_prepare_fp8.argtypes = [ctypes.POINTER(Weight), ctypes.POINTER(Fp8Report)]
        L.w4a8_weight_kernel_name.argtypes = [ctypes.POINTER(Weight), i64, i32, ctypes.POINTER(ctypes.c_char_p)]
        L.w4a8_ref_unprepack_weight.argtypes = [ctypes.POINTER(Weight), vp, vp]
        for name in ("w4a8_quantize_activation_fp8", "w4a8_quantize_weight_nvfp4", "w4a8_gemm",
                     "w4a8_gemm_with_kernel", "w4a8_linear_bf16", "w4a8_linear_workspace_size",
                     "w4a8_gemm_workspace_size", "w4a8_tiled_weight_size", "w4a8_prepack_weight",
                     "w4a8_unprepack_weight", "w4a8_ref_prepack_weight", "w4a8_ref_unprepack_weight",
                     "w4a8_gemm_kernel_name", "w4a8_prepare_fp8", "w4a8_ref_prepare_fp8",
                     "w4a8_weight_kernel_name"):
            getattr(L, name).restype = i32
        _lib = L
    return _lib


def check(status: int) -> None:
    """Raise W4A8Error for a non-success status."""
    if status != 0:
        L = lib()
        raise W4A8Error(status, f"{L.w4a8_status_string(status).decode()}: {L.w4a8_last_error().decode()}")


def kernel_name(M: int, N: int, K: int, group_size: int = 16, kernel: int = KERNEL_AUTO) -> str:
    out = ctypes.c_char_p()
    check(lib().w4a8_gemm_kernel_name(M, N, K, group_size, kernel, ctypes.byref(out)))
    return out.value.decode()


def weight_kernel_name(weight: Weight, M: int, kernel: int = KERNEL_AUTO) -> str:
    """What w4a8_gemm / w4a8_linear_bf16 run for this weight at M (its layout and FP8 preparation count)."""
    out = ctypes.c_char_p()
    check(lib().w4a8_weight_kernel_name(ctypes.byref(weight), M, kernel, ctypes.byref(out)))
    return out.value.decode()


def gemm_workspace_size(M: int, N: int, K: int, group_size: int = 16) -> int:
    """Bytes w4a8_gemm wants (FP16 activations for the Hopper prefill kernel; 0 at small M)."""
    out = ctypes.c_size_t()
    check(lib().w4a8_gemm_workspace_size(M, N, K, group_size, ctypes.byref(out)))
    return out.value


def tiled_weight_size(N: int, K: int, group_size: int = 16) -> tuple[int, int]:
    """Bytes of the tiled (prepacked) codes and block scales of an N x K weight."""
    p, s = ctypes.c_size_t(), ctypes.c_size_t()
    check(lib().w4a8_tiled_weight_size(N, K, group_size, ctypes.byref(p), ctypes.byref(s)))
    return p.value, s.value


def linear_workspace_size(M: int, N: int, K: int, group_size: int = 16) -> int:
    out = ctypes.c_size_t()
    check(lib().w4a8_linear_workspace_size(M, N, K, group_size, ctypes.byref(out)))
    return out.value
