"""PyTorch custom ops over the C API: `torch.ops.w4a8.*`.

Each op has a fake (meta) implementation, so it traces under `torch.compile(fullgraph=True)`
and can be captured in CUDA graphs. The per-call ops of a model (`linear`, `linear_glu`) are
registered through torch.library's low-level API (fewer Python layers per call than
`@torch.library.custom_op`, which registers the others). CUDA tensors
run the library's kernels on the current CUDA stream; CPU tensors run the library's CPU
reference (same numerics, slow), so models can be tested on machines without a GPU.

Tensor conventions (the ModelOpt layout, see FORMATS.md):
  packed   uint8          [N, K/2]   E2M1 codes, low nibble = even k
  scales   float8_e4m3fn  [N, K/g]   block scales (uint8 accepted)
  s2       float32        [] or [1]  tensor scale
  x        bfloat16       [M, K]     activations (FP8 inputs: uint8 or float8_e4m3fn [M, K])
"""
from __future__ import annotations

import ctypes
from typing import Optional, Tuple

import torch

from . import _lib

Tensor = torch.Tensor


def _ptr(t: Optional[Tensor]):
    return None if t is None else t.data_ptr()


class _OnDevice:
    """Makes `t`'s GPU current for the call (cheap when it already is) and gives its stream."""

    __slots__ = ("t", "prev")

    def __init__(self, t: Tensor):
        self.t, self.prev = t, None

    def __enter__(self):
        idx = self.t.device.index
        cur = torch.cuda.current_device()
        if idx is not None and idx != cur:
            self.prev = cur
            torch.cuda.set_device(idx)
        return torch.cuda.current_stream().cuda_stream

    def __exit__(self, *exc):
        if self.prev is not None:
            torch.cuda.set_device(self.prev)
        return False


# Checks below are written `if not ...: raise` so that messages are only formatted on
# failure: an eager call pays for a few comparisons, not for string building.


def _check_tensor(name: str, t: Tensor, dtypes, ndim: int, device: torch.device):
    if not (isinstance(t, torch.Tensor)):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if not (t.dtype in dtypes):
        raise TypeError(f"{name}: expected dtype {' or '.join(str(d) for d in dtypes)}, got {t.dtype}")
    if not (t.dim() == ndim):
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {tuple(t.shape)}")
    if not (t.device == device):
        raise ValueError(f"{name}: expected device {device}, got {t.device}")
    if not (t.is_contiguous()):
        raise ValueError(f"{name}: expected a contiguous tensor (call .contiguous())")


def _u8(t: Tensor) -> Tensor:
    return t.view(torch.uint8) if t.dtype != torch.uint8 else t


def _check_codes(packed: Tensor, scales: Tensor, group_size: int):
    """Validates packed codes and block scales of a weight; returns (N, K)."""
    if not (group_size in (16, 32)):
        raise ValueError(f"group_size: expected 16 or 32, got {group_size}")
    dev = packed.device
    _check_tensor("weight_packed", packed, (torch.uint8,), 2, dev)
    _check_tensor("weight_scale", scales, (torch.float8_e4m3fn, torch.uint8), 2, dev)
    N, K = packed.shape[0], packed.shape[1] * 2
    if not (tuple(scales.shape) == (N, K // group_size)):
        raise ValueError(f"weight_scale: expected shape ({N}, {K // group_size}) for weight_packed {tuple(packed.shape)} and "
                     f"group_size {group_size}, got {tuple(scales.shape)}")
    return N, K


def check_weight(packed: Tensor, scales: Tensor, s2: Tensor, bias: Optional[Tensor], group_size: int):
    """Validates a quantized weight; returns (N, K)."""
    N, K = _check_codes(packed, scales, group_size)
    dev = packed.device
    if not (s2.dtype == torch.float32 and s2.numel() == 1 and s2.device == dev):
        raise ValueError(f"weight_scale_2: expected one float32 value on {dev}, got {s2.dtype} with {s2.numel()} elements on "
                     f"{s2.device}")
    if bias is not None:
        _check_tensor("bias", bias, (torch.bfloat16,), 1, dev)
        if not (bias.shape[0] == N):
            raise ValueError(f"bias: expected shape ({N},), got {tuple(bias.shape)}")
    return N, K


def _weight_struct(packed, scales, s2, bias, group_size, layout=_lib.LAYOUT_CANONICAL, fp8=0, fp8_shift=0, overlap=0):
    N, K = packed.shape[0], packed.shape[1] * 2
    return _lib.Weight(_ptr(packed), _ptr(scales), _ptr(s2), _ptr(bias), N, K, group_size, layout, fp8, fp8_shift,
                       overlap)


# ---- FP8 tensor-core path (w4a8.h, w4a8_prepare_fp8) -----------------------------------------

def prepare_fp8(packed: Tensor, scales: Tensor, group_size: int = 16) -> Tuple[int, int, float]:
    """The FP8 path's load-time analysis of a canonical weight (GPU kernel, or the CPU reference
    for CPU tensors): (mode, shift, max_rel_error) with mode FP8_EXACT (every product e2m1 * sb
    is an E4M3 value times 2^-shift: the FP8 path gives the exact path's products) or FP8_LOSSY
    (products round by up to max_rel_error). Synchronizes the device."""
    N, K = _check_codes(packed, scales, group_size)
    w = _weight_struct(packed, _u8(scales), None, None, group_size)
    r = _lib.Fp8Report()
    L = _lib.lib()
    if packed.is_cuda:
        with _OnDevice(packed) as stream:
            _lib.check(L.w4a8_prepare_fp8(ctypes.byref(w), ctypes.byref(r), stream))
    else:
        _lib.check(L.w4a8_ref_prepare_fp8(ctypes.byref(w), ctypes.byref(r)))
    return int(w.fp8), int(r.shift), float(r.max_rel_error)


# ---- weight layout ---------------------------------------------------------------------------
# The tiled layout (w4a8.h, W4A8_LAYOUT_TILED): the decode kernels stream it 3-11% faster, the
# Hopper prefill kernel reads it ~2.5% faster on average (H100, BENCHMARKS.md "Session 29"). In
# PyTorch a tiled weight keeps the canonical tensors' shapes and dtypes, which hold exactly its
# bytes when N % 16 == 0 and K % 64 == 0 (no padding); other shapes stay canonical.

def tiled_layout_fits(N: int, K: int) -> bool:
    """Whether an N x K weight can be held tiled in tensors of the canonical shapes."""
    return N % 16 == 0 and K % 64 == 0


def _convert_layout(packed: Tensor, scales: Tensor, group_size: int, to_tiled: bool) -> Tuple[Tensor, Tensor]:
    N, K = _check_codes(packed, scales, group_size)
    if not tiled_layout_fits(N, K):
        raise ValueError(f"the tiled layout in PyTorch needs out_features % 16 == 0 and in_features % 64 == 0; "
                         f"got {N} x {K}")
    src_layout = _lib.LAYOUT_CANONICAL if to_tiled else _lib.LAYOUT_TILED
    w = _lib.Weight(_ptr(packed), _ptr(_u8(scales)), None, None, N, K, group_size, src_layout)
    out_p, out_s = torch.empty_like(packed), torch.empty_like(_u8(scales))
    L = _lib.lib()
    if packed.is_cuda:
        fn = L.w4a8_prepack_weight if to_tiled else L.w4a8_unprepack_weight
        with _OnDevice(packed) as stream:
            _lib.check(fn(ctypes.byref(w), _ptr(out_p), _ptr(out_s), stream))
    else:
        fn = L.w4a8_ref_prepack_weight if to_tiled else L.w4a8_ref_unprepack_weight
        _lib.check(fn(ctypes.byref(w), _ptr(out_p), _ptr(out_s)))
    return out_p, out_s.view(scales.dtype)


def prepack_weight(packed: Tensor, scales: Tensor, group_size: int = 16) -> Tuple[Tensor, Tensor]:
    """Canonical -> tiled bytes (w4a8_prepack_weight on CUDA, the CPU reference otherwise), in new
    tensors of the same shapes and dtypes. Needs N % 16 == 0 and K % 64 == 0 (tiled_layout_fits)."""
    return _convert_layout(_contig(packed), _contig(scales), group_size, True)


def unprepack_weight(packed: Tensor, scales: Tensor, group_size: int = 16) -> Tuple[Tensor, Tensor]:
    """Tiled -> canonical bytes: the inverse of prepack_weight, byte for byte."""
    return _convert_layout(_contig(packed), _contig(scales), group_size, False)


def _contig(t: Tensor) -> Tensor:
    return t if t.is_contiguous() else t.contiguous()


# ---- quantize_activation ---------------------------------------------------------------------

@torch.library.custom_op("w4a8::quantize_activation", mutates_args=())
def quantize_activation(x: Tensor) -> Tuple[Tensor, Tensor]:
    """BF16 [M, K] -> (E4M3 codes uint8 [M, K], FP32 row scales [M])."""
    _check_tensor("x", x, (torch.bfloat16,), 2, x.device)
    M, K = x.shape
    q = torch.empty(M, K, dtype=torch.uint8, device=x.device)
    s = torch.empty(M, dtype=torch.float32, device=x.device)
    if M == 0:
        return q, s
    L = _lib.lib()
    if x.is_cuda:
        with _OnDevice(x) as stream:
            _lib.check(L.w4a8_quantize_activation_fp8(_ptr(x), _ptr(q), _ptr(s), M, K, stream))
    else:
        _lib.check(L.w4a8_ref_quantize_activation_fp8(_ptr(x), _ptr(q), _ptr(s), M, K))
    return q, s


@quantize_activation.register_fake
def _(x):
    M, K = x.shape
    return x.new_empty(M, K, dtype=torch.uint8), x.new_empty(M, dtype=torch.float32)


# ---- quantize_weight -------------------------------------------------------------------------

@torch.library.custom_op("w4a8::quantize_weight", mutates_args=())
def quantize_weight(w: Tensor, group_size: int = 16) -> Tuple[Tensor, Tensor, Tensor]:
    """BF16 [N, K] -> (packed uint8 [N, K/2], block scales float8_e4m3fn [N, K/g], s2 float32 [])."""
    _check_tensor("weight", w, (torch.bfloat16,), 2, w.device)
    if not (group_size in (16, 32)):
        raise ValueError(f"group_size: expected 16 or 32, got {group_size}")
    N, K = w.shape
    if not (K % group_size == 0):
        raise ValueError(f"weight: in_features K={K} must be a multiple of group_size={group_size}")
    packed = torch.empty(N, K // 2, dtype=torch.uint8, device=w.device)
    scales = torch.empty(N, K // group_size, dtype=torch.uint8, device=w.device)
    s2 = torch.empty((), dtype=torch.float32, device=w.device)
    L = _lib.lib()
    if w.is_cuda:
        with _OnDevice(w) as stream:
            _lib.check(L.w4a8_quantize_weight_nvfp4(_ptr(w), _ptr(packed), _ptr(scales), _ptr(s2), N, K, group_size,
                                                    stream))
    else:
        _lib.check(L.w4a8_ref_quantize_weight_nvfp4(_ptr(w), _ptr(packed), _ptr(scales), _ptr(s2), N, K, group_size))
    return packed, scales.view(torch.float8_e4m3fn), s2


@quantize_weight.register_fake
def _(w, group_size=16):
    N, K = w.shape
    return (w.new_empty(N, K // 2, dtype=torch.uint8), w.new_empty(N, K // group_size, dtype=torch.float8_e4m3fn),
            w.new_empty((), dtype=torch.float32))


# ---- gemm (FP8 in) and linear (BF16 in) ------------------------------------------------------

def _gemm_impl(q: Tensor, s: Tensor, packed, scales, s2, bias, alpha: float, group_size: int,
               layout: int = 0, fp8: int = 0, fp8_shift: int = 0, overlap: int = 0) -> Tensor:
    N, K = check_weight(packed, scales, s2, bias, group_size)
    _check_tensor("x_fp8", q, (torch.uint8, torch.float8_e4m3fn), 2, packed.device)
    if not (q.shape[1] == K):
        raise ValueError(f"x_fp8: expected {K} columns (in_features), got shape {tuple(q.shape)}")
    M = q.shape[0]
    if not (tuple(s.shape) == (M,) and s.dtype == torch.float32):
        raise ValueError(f"row_scale: expected float32 shape ({M},), got {s.dtype} {tuple(s.shape)}")
    y = torch.empty(M, N, dtype=torch.bfloat16, device=q.device)
    if M == 0:
        return y
    L = _lib.lib()
    w = _weight_struct(packed, _u8(scales), s2, bias, group_size, layout, fp8, fp8_shift, overlap)
    if q.is_cuda:
        need = _lib.gemm_workspace_size(M, N, K, group_size)
        ws = torch.empty(need, dtype=torch.uint8, device=q.device) if need else None
        with _OnDevice(q) as stream:
            _lib.check(L.w4a8_gemm(_ptr(q), _ptr(s), ctypes.byref(w), _ptr(y), M, alpha,
                                   _ptr(ws) if need else None, need, stream))
    else:
        _lib.check(L.w4a8_ref_gemm(_ptr(q), _ptr(s), ctypes.byref(w), _ptr(y), M, alpha))
    return y


@torch.library.custom_op("w4a8::gemm", mutates_args=())
def gemm(q: Tensor, s: Tensor, packed: Tensor, scales: Tensor, s2: Tensor, bias: Optional[Tensor], alpha: float,
         group_size: int, layout: int = 0, fp8: int = 0, fp8_shift: int = 0, overlap: int = 0) -> Tensor:
    """y[M, N] BF16 from FP8 activations (codes + row scales) and an NVFP4 weight (layout: 0 canonical,
    1 tiled; fp8, fp8_shift: the weight's FP8-path mode and shift, see prepare_fp8; 0, 0: none;
    overlap 1: the kernel right before never writes the weight, w4a8.h)."""
    return _gemm_impl(_u8(q), s, packed, scales, s2, bias, alpha, group_size, layout, fp8, fp8_shift, overlap)


@gemm.register_fake
def _(q, s, packed, scales, s2, bias, alpha, group_size, layout=0, fp8=0, fp8_shift=0, overlap=0):
    return q.new_empty(q.shape[0], packed.shape[0], dtype=torch.bfloat16)


def linear_impl(x: Tensor, packed: Tensor, scales: Tensor, s2: Tensor, bias: Optional[Tensor], alpha: float,
                group_size: int, layout: int = 0, fp8: int = 0, fp8_shift: int = 0, overlap: int = 0) -> Tensor:
    """y = x W^T (+ bias) for BF16 x [M, K]: per-row FP8 quantization and the GEMM in one library call.
    The body of torch.ops.w4a8.linear (CPU and CUDA). GPU calls reuse the weight's validated C
    struct across calls (_op_plan)."""
    if x.is_cuda and packed.is_cuda:
        return linear_planned(x, _op_plan_for(x, packed, scales, s2, bias, group_size, layout, fp8, fp8_shift,
                                              overlap), alpha)
    N, K = check_weight(packed, scales, s2, bias, group_size)
    _check_tensor("x", x, (torch.bfloat16,), 2, packed.device)
    if not (x.shape[1] == K):
        raise ValueError(f"x: expected {K} columns (in_features), got shape {tuple(x.shape)}")
    # The CPU reference (computes the exact path).
    q, s = quantize_activation(x)
    return _gemm_impl(q, s, packed, scales, s2, bias, alpha, group_size, layout, fp8, fp8_shift, overlap)


# The current device and its current stream as plain ints, without the Python wrappers of
# torch.cuda (current_stream() builds a Stream object: ~4 us of an eager call). Absent from
# CPU-only builds of PyTorch, where no plan exists (plans are made for CUDA weights only).
_get_device = getattr(torch._C, "_cuda_getDevice", None)
_raw_stream = getattr(torch._C, "_cuda_getCurrentRawStream", None)


class LinearPlan:
    """What an eager GPU linear call needs besides its input, made once per weight: the
    validated weight (as the C struct of its buffers' addresses, and a pointer to it) and the
    workspace size per M. `W4A8Linear` keeps one and rebuilds it when its buffers move or are
    written (see `W4A8Linear._plan`). overlap: the struct's `overlap` from the second call on
    (set after the first call returns); the first call of a plan runs without it (serial),
    since the kernel right before it may be the one that wrote the buffers."""

    __slots__ = ("key", "struct", "ptr", "fn", "glu_fn", "overlap", "N", "K", "dev", "group_size", "ws")

    def __init__(self, packed: Tensor, scales: Tensor, s2: Tensor, bias: Optional[Tensor], group_size: int, key,
                 layout: int = 0, fp8: int = 0, fp8_shift: int = 0, overlap: int = 0):
        self.N, self.K = check_weight(packed, scales, s2, bias, group_size)
        self.group_size = group_size
        self.dev = packed.get_device()  # -1 on the CPU (no plan is made there)
        self.struct = _weight_struct(packed, _u8(scales), s2, bias, group_size, layout, fp8, fp8_shift, 0)
        self.ptr = ctypes.pointer(self.struct)  # argtypes POINTER(Weight): passed without conversion
        self.fn = _lib.lib().w4a8_linear_bf16
        self.glu_fn = getattr(_lib.lib(), "w4a8_linear_bf16_glu", None)
        self.overlap = overlap  # still to be set on the struct (after the first call)
        self.key = key
        self.ws = {}


def linear_planned(x: Tensor, plan: LinearPlan, alpha: float, glu: int = 0) -> Tensor:
    """linear_impl for a CUDA input already checked by the caller (BF16, contiguous [M, K] on the
    weight's device): the eager fast path of `W4A8Linear` (no per-call weight checks, struct or
    workspace-size query; outputs from x.new_empty, the stream as an int). glu: the gated
    epilogue's act (w4a8_linear_bf16_glu; the weight's rows interleaved), output [M, N / 2]."""
    M = x.shape[0]
    y = x.new_empty((M, plan.N // 2 if glu else plan.N))  # BF16 on x's device, like x
    if M == 0:
        return y
    need = plan.ws.get(M)
    if need is None:
        need = plan.ws[M] = _lib.linear_workspace_size(M, plan.N, plan.K, plan.group_size)
    ws = x.new_empty((need,), dtype=torch.uint8)
    if _get_device() == plan.dev:
        stream = _raw_stream(plan.dev)
    else:  # x's GPU is not the current one: make it current for the call
        with _OnDevice(x) as stream:
            return _planned_call(x, plan, alpha, glu, y, ws, need, stream)
    return _planned_call(x, plan, alpha, glu, y, ws, need, stream)


def _planned_call(x, plan, alpha, glu, y, ws, need, stream):
    if glu:
        status = plan.glu_fn(x.data_ptr(), plan.ptr, glu, y.data_ptr(), x.shape[0], alpha, ws.data_ptr(), need, stream)
    else:
        status = plan.fn(x.data_ptr(), plan.ptr, y.data_ptr(), x.shape[0], alpha, ws.data_ptr(), need, stream)
    if status:
        _lib.check(status)
    if plan.overlap:  # the library read the struct during the call (launches, graph capture included)
        plan.struct.overlap, plan.overlap = plan.overlap, 0
    return y


# Plans of torch.ops.w4a8.linear's GPU calls, by everything check_weight looks at (addresses,
# shapes, strides, dtypes, device) and the settings: the op is called with the same weight
# tensors every time (a module's buffers, a compiled graph's constants), so validation and the
# C struct are made once. Tensor versions are not part of it: the struct holds addresses only,
# and here `overlap` is the caller's promise on every call (as in w4a8_linear_bf16), set on the
# struct from the start. Bounded: cleared when it holds more weights than a model has.
_OP_PLANS: dict = {}
_OP_PLANS_MAX = 4096


def _op_plan(packed, scales, s2, bias, group_size, layout, fp8, fp8_shift, overlap) -> LinearPlan:
    key = (packed.data_ptr(), packed.shape, packed.stride(), packed.dtype, packed.get_device(), scales.data_ptr(),
           scales.shape, scales.stride(), scales.dtype, s2.data_ptr(), s2.shape, s2.dtype, s2.get_device(),
           None if bias is None else (bias.data_ptr(), bias.shape, bias.stride(), bias.dtype, bias.get_device()),
           group_size, layout, fp8, fp8_shift, overlap)
    plan = _OP_PLANS.get(key)
    if plan is None:
        plan = LinearPlan(packed, scales, s2, bias, group_size, key, layout, fp8, fp8_shift)
        plan.struct.overlap = int(overlap)
        if len(_OP_PLANS) >= _OP_PLANS_MAX:
            _OP_PLANS.clear()
        _OP_PLANS[key] = plan
    return plan


def _op_plan_for(x, packed, scales, s2, bias, group_size, layout, fp8, fp8_shift, overlap) -> LinearPlan:
    """_op_plan, and x checked against it (the ops' GPU calls)."""
    plan = _op_plan(packed, scales, s2, bias, group_size, layout, fp8, fp8_shift, overlap)
    _check_tensor("x", x, (torch.bfloat16,), 2, packed.device)
    if not (x.shape[1] == plan.K):
        raise ValueError(f"x: expected {plan.K} columns (in_features), got shape {tuple(x.shape)}")
    return plan


# torch.ops.w4a8.linear, the op W4A8Linear runs under torch.compile (and any caller may use):
# registered with torch.library's low-level API rather than @custom_op, whose Python layers cost
# ~40 us more per call on the GPU machine's host (109 vs 67 us; bench_torch.py measures the op
# and a compiled module). Same schema, a fake (meta) implementation for tracing, and a backward
# that raises (inference only) as @custom_op's missing autograd formula did.
_LIB = torch.library.Library("w4a8", "FRAGMENT")
_LIB.define("linear(Tensor x, Tensor packed, Tensor scales, Tensor s2, Tensor? bias, float alpha, int group_size, "
            "int layout=0, int fp8=0, int fp8_shift=0, int overlap=0) -> Tensor")
_LIB.impl("linear", linear_impl, "CPU")
_LIB.impl("linear", linear_impl, "CUDA")


@torch.library.register_fake("w4a8::linear")
def _(x, packed, scales, s2, bias, alpha, group_size, layout=0, fp8=0, fp8_shift=0, overlap=0):
    return x.new_empty(x.shape[0], packed.shape[0], dtype=torch.bfloat16)


def _linear_backward(ctx, grad):
    raise RuntimeError("w4a8::linear has no backward: W4A8 layers are for inference (quantized weights are buffers, "
                       "and no gradient is defined for the activation quantization)")


torch.library.register_autograd("w4a8::linear", _linear_backward)


def linear(x: Tensor, packed: Tensor, scales: Tensor, s2: Tensor, bias: Optional[Tensor], alpha: float,
           group_size: int, layout: int = 0, fp8: int = 0, fp8_shift: int = 0, overlap: int = 0) -> Tensor:
    """y = x W^T (+ bias) for BF16 x [M, K]: torch.ops.w4a8.linear (layout: 0 canonical, 1 tiled; fp8,
    fp8_shift: the weight's FP8-path mode and shift; overlap: see gemm)."""
    return torch.ops.w4a8.linear(x, packed, scales, s2, bias, alpha, group_size, layout, fp8, fp8_shift, overlap)


# ---- gated MLP projections (w4a8_linear_bf16_glu) ---------------------------------------------

# Row order of a gated weight: [gate; up] (2I rows) interleaved in blocks of 8, as the kernels'
# gated epilogue reads them (rows 16b .. 16b+7: gate 8b .. 8b+7; 16b+8 .. 16b+15: up 8b .. 8b+7).
def _glu_permute(t: Tensor, dim: int, outer: Tuple[int, int]) -> Tensor:
    n = t.shape[dim]
    if n % 16:
        raise ValueError(f"gated weight order: expected a multiple of 16 along dim {dim}, got {n}")
    fp8 = t.dtype == torch.float8_e4m3fn  # (permuted as bytes)
    u = t.view(torch.uint8) if fp8 else t
    shape = u.shape[:dim] + (outer[0], outer[1], 8) + u.shape[dim + 1:]
    out = u.reshape(shape).transpose(dim, dim + 1).reshape(u.shape).contiguous()
    return out.view(torch.float8_e4m3fn) if fp8 else out


def glu_interleave(t: Tensor, dim: int = 0) -> Tensor:
    """[gate; up] along `dim` (2I, I % 8 == 0) -> the gated epilogue's interleaved order."""
    return _glu_permute(t, dim, (2, t.shape[dim] // 16))


def glu_deinterleave(t: Tensor, dim: int = 0) -> Tensor:
    """The inverse of glu_interleave: back to [gate; up]."""
    return _glu_permute(t, dim, (t.shape[dim] // 16, 2))


def glu_split(h: Tensor) -> Tuple[Tensor, Tensor]:
    """The gate and up halves of an output in the interleaved order (last dim 2I) as strided views,
    shaped [..., I / 8, 8] (no copy): act(gate) * up of them is contiguous, .flatten(-2) gives
    [..., I]."""
    hv = h.unflatten(-1, (h.shape[-1] // 16, 2, 8))
    return hv.select(-2, 0), hv.select(-2, 1)


_GLU_TORCH = {_lib.GLU_GELU_TANH: lambda g: torch.nn.functional.gelu(g, approximate="tanh"),
              _lib.GLU_SILU: torch.nn.functional.silu}


def linear_glu_impl(x: Tensor, packed: Tensor, scales: Tensor, s2: Tensor, bias: Optional[Tensor], alpha: float,
                    group_size: int, act: int, layout: int = 0, fp8: int = 0, fp8_shift: int = 0,
                    overlap: int = 0) -> Tensor:
    """act(gate(x)) * up(x) for BF16 x [M, K] and a gated weight (glu_interleave'd rows, N = 2I):
    y [M, I] BF16. The body of torch.ops.w4a8.linear_glu: the GPU's gated epilogue, or on the CPU
    the reference GEMM and PyTorch's act and product."""
    if act not in _GLU_TORCH:
        raise ValueError(f"act: expected {_lib.GLU_GELU_TANH} (GELU tanh) or {_lib.GLU_SILU} (SiLU), got {act}")
    if x.is_cuda and packed.is_cuda:
        plan = _op_plan_for(x, packed, scales, s2, bias, group_size, layout, fp8, fp8_shift, overlap)
        if not (plan.N % 16 == 0):
            raise ValueError(f"weight: a gated weight needs out_features % 16 == 0, got {plan.N}")
        return linear_planned(x, plan, alpha, act)
    gate, up = glu_split(linear_impl(x, packed, scales, s2, bias, alpha, group_size, layout, fp8, fp8_shift, overlap))
    return (_GLU_TORCH[act](gate) * up).flatten(-2)


_LIB.define("linear_glu(Tensor x, Tensor packed, Tensor scales, Tensor s2, Tensor? bias, float alpha, int group_size, "
            "int act, int layout=0, int fp8=0, int fp8_shift=0, int overlap=0) -> Tensor")
_LIB.impl("linear_glu", linear_glu_impl, "CPU")
_LIB.impl("linear_glu", linear_glu_impl, "CUDA")


@torch.library.register_fake("w4a8::linear_glu")
def _(x, packed, scales, s2, bias, alpha, group_size, act, layout=0, fp8=0, fp8_shift=0, overlap=0):
    return x.new_empty(x.shape[0], packed.shape[0] // 2, dtype=torch.bfloat16)


torch.library.register_autograd("w4a8::linear_glu", _linear_backward)


def linear_glu(x: Tensor, packed: Tensor, scales: Tensor, s2: Tensor, bias: Optional[Tensor], alpha: float,
               group_size: int, act: int, layout: int = 0, fp8: int = 0, fp8_shift: int = 0,
               overlap: int = 0) -> Tensor:
    """torch.ops.w4a8.linear_glu (see linear_glu_impl; act: _lib.GLU_GELU_TANH or _lib.GLU_SILU)."""
    return torch.ops.w4a8.linear_glu(x, packed, scales, s2, bias, alpha, group_size, act, layout, fp8, fp8_shift,
                                     overlap)


# ---- exact dequantization in PyTorch (for checks and for `W4A8Linear.dequantize_weight`) -----

_E2M1 = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]


def dequantize_weight(packed: Tensor, scales: Tensor, s2: Tensor, group_size: int,
                      dtype: torch.dtype = torch.float32) -> Tensor:
    """e2m1 * e4m3(sb) * s2 as a dense [N, K] tensor (exact in float64; float32 rounds once)."""
    N, K = packed.shape[0], packed.shape[1] * 2
    lut = torch.tensor(_E2M1, dtype=torch.float64, device=packed.device)
    p = packed.long()
    codes = torch.stack([p & 0xF, p >> 4], dim=-1).reshape(N, K)
    sb = scales.view(torch.float8_e4m3fn).to(torch.float64).repeat_interleave(group_size, dim=1)
    return (lut[codes] * sb * s2.double().reshape(())).to(dtype)


def dequantize_activation(q: Tensor, s: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    return (q.view(torch.float8_e4m3fn).to(torch.float64) * s.double()[:, None]).to(dtype)
