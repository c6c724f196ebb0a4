"""`W4A8Linear` and `replace_mlp_with_w4a8`: swap the linear layers of a PyTorch model for W4A8."""
from __future__ import annotations

import fnmatch
import sys
import time
from typing import Callable, Dict, Iterable, Optional

import torch
from torch import nn

from . import onnx_export, ops
from . import _lib
from ._lib import kernel_name

MLP_PROJECTIONS = ("gate_proj", "up_proj", "down_proj")


class W4A8Linear(nn.Module):
    """y = x W^T (+ b) with NVFP4 weights and per-row dynamic FP8 activations, BF16 in and out.

    Buffers use ModelOpt's names and layout, so `state_dict()` is a ModelOpt NVFP4 layer:
      weight_packed   uint8          [out, in/2]        (ModelOpt calls it `weight`)
      weight_scale    float8_e4m3fn  [out, in/group]
      weight_scale_2  float32        []
      bias            bfloat16       [out]              (optional)
    `weight` is a meta tensor of shape [out, in] and dtype bfloat16: code that asks a layer for
    its weight dtype (as openpi does) gets BF16, and code that would compute with it fails
    loudly instead of reading garbage. `dequantize_weight()` gives the real values.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = False, group_size: int = 16,
                 device=None):
        super().__init__()
        if group_size not in (16, 32):
            raise ValueError(f"group_size: expected 16 or 32, got {group_size}")
        if in_features <= 0 or out_features <= 0 or in_features % group_size:
            raise ValueError(f"in_features={in_features} must be a positive multiple of group_size={group_size} "
                             f"(and out_features={out_features} positive)")
        self.in_features, self.out_features, self.group_size = in_features, out_features, group_size
        self.alpha = 1.0
        # Byte layout of weight_packed / weight_scale: canonical, or tiled after prepack() (same
        # shapes; state_dict() always holds the canonical bytes).
        self.layout = _lib.LAYOUT_CANONICAL
        # The FP8 tensor-core path (enable_fp8): mode (FP8_NONE until enabled) and shift.
        self.fp8_mode, self.fp8_shift = _lib.FP8_NONE, 0
        self.fp8_max_rel_error = 0.0
        self._fp8_opt_in = (False, False)  # enable_fp8's (allow_lossy, fast_accumulation)
        # GPU calls start as programmatic dependents of the kernel before them (w4a8.h,
        # w4a8_weight::overlap), reading weights while it finishes: the buffers are written at
        # load time. Eager calls notice in-place writes to the buffers (tensor versions) and run
        # the first call after one without it; traced calls (torch.compile, CUDA graphs) assume
        # the buffers are not written inside the traced region. False: every call waits.
        self.overlap = True
        self.register_buffer("weight_packed", torch.zeros(out_features, in_features // 2, dtype=torch.uint8,
                                                          device=device))
        self.register_buffer("weight_scale", torch.zeros(out_features, in_features // group_size,
                                                         dtype=torch.uint8, device=device).view(torch.float8_e4m3fn))
        self.register_buffer("weight_scale_2", torch.ones((), dtype=torch.float32, device=device))
        if bias:
            self.register_buffer("bias", torch.zeros(out_features, dtype=torch.bfloat16, device=device))
        else:
            self.bias = None

    @classmethod
    def from_weight(cls, weight: torch.Tensor, bias: Optional[torch.Tensor] = None,
                    group_size: int = 16) -> "W4A8Linear":
        """Quantizes a [out, in] weight (on its device: the GPU kernels, or the CPU reference)."""
        w = weight.detach()
        if w.dim() != 2:
            raise ValueError(f"from_weight: expected a 2-D [out, in] weight, got shape {tuple(w.shape)}")
        mod = cls(w.shape[1], w.shape[0], bias is not None, group_size, device=w.device)
        packed, scales, s2 = ops.quantize_weight(w.to(torch.bfloat16).contiguous(), group_size)
        mod.weight_packed.copy_(packed)
        mod.weight_scale.copy_(scales)
        mod.weight_scale_2.copy_(s2)
        if bias is not None:
            mod.bias.copy_(bias.detach().to(torch.bfloat16))
        return mod

    @classmethod
    def from_linear(cls, linear: nn.Linear, group_size: int = 16) -> "W4A8Linear":
        """Quantizes `linear` (on its device: the GPU kernels, or the CPU reference)."""
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"from_linear: expected torch.nn.Linear, got {type(linear).__name__}")
        return cls.from_weight(linear.weight, linear.bias, group_size)

    @property
    def weight(self) -> torch.Tensor:
        return torch.empty(self.out_features, self.in_features, dtype=torch.bfloat16, device="meta")

    def dequantize_weight(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        packed, scales = self._canonical()
        return ops.dequantize_weight(packed, scales, self.weight_scale_2, self.group_size, dtype)

    # ---- weight layout ----------------------------------------------------------------------
    @property
    def tiled(self) -> bool:
        return self.layout == _lib.LAYOUT_TILED

    def prepack(self) -> "W4A8Linear":
        """Rewrites the weight buffers in place into the tiled layout, which the decode (small M)
        kernels and the Hopper prefill kernel read faster than the canonical one (H100: 3-11% and
        mean 2.5%; the prefill kernel's results may differ in the FP32 sums' last bits); the FP8
        path runs on canonical weights only (a tiled layer keeps the exact path, see enable_fp8).
        Needs out_features % 16 == 0 and in_features % 64 == 0. state_dict() still saves the
        canonical bytes; load_state_dict() takes canonical bytes and re-tiles."""
        if not self.tiled:
            p, s = ops.prepack_weight(self.weight_packed, self.weight_scale, self.group_size)
            with torch.no_grad():
                self.weight_packed.copy_(p)
                self.weight_scale.copy_(s)
            self.layout = _lib.LAYOUT_TILED
        return self

    def unprepack(self) -> "W4A8Linear":
        """Back to the canonical layout, in place (byte for byte what prepack() was given)."""
        if self.tiled:
            p, s = self._canonical()
            with torch.no_grad():
                self.weight_packed.copy_(p)
                self.weight_scale.copy_(s)
            self.layout = _lib.LAYOUT_CANONICAL
        return self

    # ---- FP8 tensor-core path ----------------------------------------------------------------
    def enable_fp8(self, allow_lossy: bool = False, fast_accumulation: bool = False) -> str:
        """Lets the Hopper prefill kernel run this layer on FP8 tensor cores (twice the 16-bit
        rate) where it is exact: analyses the weight once (w4a8_prepare_fp8, synchronizes) and
        returns "exact" (every product e2m1 * sb is representable: same results as the exact
        path up to summation order, used from now on), or "lossy" (products round by up to
        fp8_max_rel_error, ~2-5% for ModelOpt weights: the layer keeps the exact path unless
        allow_lossy=True, which accepts the error). fast_accumulation=True (W4A8_FP8_FAST, w4a8.h)
        also accepts the tensor cores' own summation, for the FP8 path's kernels without FP32
        promotion (1.2-1.4x faster than the promoted ones at prefill sizes on an H100, and used
        from M = 128 on layers where the wgmma kernel runs; relative error 1.8e-3 .. 3.3e-3 at
        K = 2048 .. 16384 against 1.7e-3); it takes effect where the FP8 path runs (exact, or
        lossy with allow_lossy). Small M (decode) and tiled layers keep their kernels; the CPU
        reference always computes the exact path."""
        packed, scales = self._canonical()
        mode, shift, err = ops.prepare_fp8(packed, scales, self.group_size)
        self.fp8_shift, self.fp8_max_rel_error = shift, err
        self._fp8_opt_in = (allow_lossy, fast_accumulation)
        runs = mode == _lib.FP8_EXACT or allow_lossy
        self.fp8_mode = (_lib.FP8_FAST if runs and fast_accumulation else
                         _lib.FP8_ACCEPTED if (mode == _lib.FP8_LOSSY and allow_lossy) else mode)
        return "exact" if mode == _lib.FP8_EXACT else "lossy"

    def disable_fp8(self) -> "W4A8Linear":
        self.fp8_mode, self.fp8_shift = _lib.FP8_NONE, 0
        self._fp8_opt_in = (False, False)
        return self

    def _canonical(self):
        if self.tiled:
            return ops.unprepack_weight(self.weight_packed, self.weight_scale, self.group_size)
        return self.weight_packed, self.weight_scale

    def _permute_rows(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Applies a row permutation `fn` (rows = output channels) to the weight, in place: the
        canonical codes and scales and the bias; tiled again if it was (the FP8 analysis does not
        depend on the order)."""
        p, s = self._canonical()
        p, s = fn(p), fn(s)
        if self.tiled:
            p, s = ops.prepack_weight(p, s, self.group_size)
        with torch.no_grad():
            self.weight_packed.copy_(p)
            self.weight_scale.copy_(s)
            if self.bias is not None:
                self.bias.copy_(fn(self.bias))

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self.tiled:  # checkpoints hold the canonical (ModelOpt) bytes
            p, s = self._canonical()
            destination[prefix + "weight_packed"] = p
            destination[prefix + "weight_scale"] = s

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        tiled = self.tiled
        self.layout = _lib.LAYOUT_CANONICAL  # the incoming bytes are canonical
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        if tiled:
            self.prepack()
        if self.fp8_mode != _lib.FP8_NONE:  # new bytes: analyse them again, same opt-in
            self.enable_fp8(*self._fp8_opt_in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, 0)

    def forward_glu(self, x: torch.Tensor, act: int) -> torch.Tensor:
        """act(gate(x)) * up(x), [..., out_features / 2], for a layer whose rows are a gated MLP's gate
        and up projections in the gated epilogue's order (ops.glu_interleave; W4A8GatedMLP keeps
        them so): one library call (w4a8_linear_bf16_glu), the [..., out_features] intermediate
        never written. act: _lib.GLU_GELU_TANH or _lib.GLU_SILU."""
        return self._run(x, act)

    def _run(self, x: torch.Tensor, glu: int) -> torch.Tensor:
        if not torch.compiler.is_compiling():
            y = self._eager(x, glu)
            if y is not None:
                return y
        if x.dtype != torch.bfloat16:
            raise TypeError(f"W4A8Linear: expected a bfloat16 input, got {x.dtype} (cast with .to(torch.bfloat16))")
        if x.shape[-1] != self.in_features:
            raise ValueError(f"W4A8Linear: expected input [..., {self.in_features}], got shape {tuple(x.shape)}")
        if x.device != self.weight_packed.device:
            raise ValueError(f"W4A8Linear: input on {x.device}, weights on {self.weight_packed.device}")
        if onnx_export.exporting():
            if glu:
                raise RuntimeError("W4A8Linear: the TensorRT plugin has no gated epilogue; call forward()")
            if self.tiled:
                raise RuntimeError("W4A8Linear: the TensorRT plugin takes canonical weights; call unprepack() "
                                   "before exporting")
            # One W4A8GemmPlugin node on the N-D input (the plugin takes [..., K], so no
            # reshape with traced, constant leading dims); alpha absorbs s2 (constant here).
            alpha = float(self.alpha * self.weight_scale_2.item())
            return torch.ops.w4a8.trt_plugin(x, self._onnx_packed_i8, self.weight_scale, self.bias, alpha,
                                             self.in_features, self.out_features, self.group_size)
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        if not x2.is_contiguous():  # non-contiguous inputs are copied, not rejected
            x2 = x2.contiguous()
        args = (x2, self.weight_packed, self.weight_scale, self.weight_scale_2, self.bias, self.alpha,
                self.group_size) + ((glu,) if glu else ()) + (self.layout, self.fp8_mode, self.fp8_shift,
                                                              int(self.overlap))
        # Eager calls skip the dispatcher; tracing (torch.compile, export) goes through the ops.
        if torch.compiler.is_compiling() or torch.is_grad_enabled() and x2.requires_grad:
            y = torch.ops.w4a8.linear_glu(*args) if glu else torch.ops.w4a8.linear(*args)
        elif x2.is_cuda:  # input checked above: the planned path (its plan made here first)
            y = ops.linear_planned(x2, self._plan(), self.alpha, glu)
        else:
            y = ops.linear_glu_impl(*args) if glu else ops.linear_impl(*args)
        return y.reshape(*lead, self.out_features // 2 if glu else self.out_features)

    def _eager(self, x: torch.Tensor, glu: int) -> Optional[torch.Tensor]:
        """The eager GPU call once this layer has a plan: the same checks and the same library
        call as the general path of _run(), in as few Python steps as possible (an eager model
        makes one such call per linear layer, so its host time adds up: BENCHMARKS.md). None
        where it does not apply (no plan yet, another dtype, shape or device, autograd, ONNX
        export, buffers replaced or written): _run() then takes the general path, which raises
        the errors and rebuilds the plan."""
        plan = self.__dict__.get("_eager_plan")
        if (plan is None or x.dtype is not torch.bfloat16 or x.get_device() != plan.dev or x.shape[-1] != plan.K
                or (x.requires_grad and torch.is_grad_enabled()) or plan.key != self._plan_key()
                or onnx_export.exporting()):
            return None
        if x.dim() == 2:
            return ops.linear_planned(x if x.is_contiguous() else x.contiguous(), plan, self.alpha, glu)
        x2 = x.reshape(-1, plan.K)
        if not x2.is_contiguous():
            x2 = x2.contiguous()
        return ops.linear_planned(x2, plan, self.alpha, glu).view(*x.shape[:-1], plan.N // 2 if glu else plan.N)

    def _plan_key(self) -> tuple:
        """What the eager plan depends on: the buffers' addresses and versions (a replaced or moved
        buffer has a new address, one written in place a new version) and the settings. Read from
        _buffers directly: nn.Module's __getattr__ costs ~0.3 us per name."""
        b = self._buffers
        wp, ws, s2 = b["weight_packed"], b["weight_scale"], b["weight_scale_2"]
        bias = b["bias"] if "bias" in b else self.__dict__.get("bias")
        return (wp.data_ptr(), ws.data_ptr(), s2.data_ptr(), None if bias is None else bias.data_ptr(), wp._version,
                ws._version, s2._version, None if bias is None else bias._version, self.group_size, self.layout,
                self.fp8_mode, self.fp8_shift, self.overlap)

    def _plan(self) -> "ops.LinearPlan":
        """The eager call plan of the current buffers (validated once; rebuilt when a buffer is
        replaced or moved, which changes its address, or written in place, which changes its
        version: then its first call runs without `overlap`)."""
        key = self._plan_key()
        plan = self.__dict__.get("_eager_plan")
        if plan is None or plan.key != key:
            plan = ops.LinearPlan(self.weight_packed, self.weight_scale, self.weight_scale_2, self.bias,
                                  self.group_size, key, self.layout, self.fp8_mode, self.fp8_shift, int(self.overlap))
            self.__dict__["_eager_plan"] = plan
        return plan

    def extra_repr(self) -> str:
        dev = self.weight_packed.device
        kern = ""
        try:
            kern = f", kernel(M=1)={kernel_name(1, self.out_features, self.in_features, self.group_size)}"
        except Exception:  # library not loadable: repr must still work
            pass
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"format=NVFP4 g{self.group_size} x FP8 per-row, "
                f"{ {0: 'exact path', 1: 'FP8 path where exact', 2: 'exact path (FP8: lossy, off)', 3: 'FP8 path (lossy, accepted)', 4: 'FP8 path, fast accumulation (accepted)'}[self.fp8_mode]}, "
                f"layout={'tiled' if self.tiled else 'canonical'}, device={dev}{kern}")


class _GateUpHalf(nn.Module):
    """`gate_proj` / `up_proj` of a W4A8GatedMLP: answers `.weight` (BF16 meta, as W4A8Linear)
    and the feature counts for code that inspects them, and computes its half of the fused
    layer when called alone (correct, at the cost of the whole fused GEMM)."""

    def __init__(self, fused: "W4A8Linear", half: int, width: int):
        super().__init__()
        self.in_features, self.out_features, self._half = fused.in_features, width, half
        self.__dict__["_fused"] = fused  # not a submodule: the parent owns it
        self._interleaved = False  # the fused rows in the gated epilogue's order (set by the parent)

    @property
    def weight(self) -> torch.Tensor:
        return torch.empty(self.out_features, self.in_features, dtype=torch.bfloat16, device="meta")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self._fused(x)
        if self._interleaved:
            return ops.glu_split(y)[self._half].flatten(-2)
        return y.narrow(-1, self._half * self.out_features, self.out_features)


def glu_act_of(act_fn: Callable) -> int:
    """Which gated epilogue computes `act_fn` (_lib.GLU_GELU_TANH, _lib.GLU_SILU), else 0: by
    running it on every finite BF16 value (on the CPU) and comparing with PyTorch's
    gelu(approximate="tanh") and silu, so any module or function that computes one of them
    elementwise is recognized (Hugging Face's gelu_pytorch_tanh and silu included) and nothing
    else is."""
    probe = torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16).view(torch.bfloat16)
    probe = probe[torch.isfinite(probe)]
    try:
        with torch.no_grad():
            out = act_fn(probe)
    except Exception:
        return 0
    if not isinstance(out, torch.Tensor) or out.dtype != torch.bfloat16 or out.shape != probe.shape:
        return 0
    for act, ref in ops._GLU_TORCH.items():
        if torch.equal(out, ref(probe)):
            return act
    return 0


class W4A8GatedMLP(nn.Module):
    """down(act(gate(x)) * up(x)) with gate and up as ONE W4A8 GEMM of twice the width
    (`gate_up_proj`, rows [gate; up]): one weight stream, one activation quantization and one
    launch instead of two, as inference engines fuse them (the pi0.5 expert at 50 tokens: one
    8192 x 1024 GEMM instead of two 4096 x 1024). The fused weight has one tensor scale for
    both halves (NVFP4's per-tensor FP32 scale), so its block scales differ from quantizing
    gate and up apart; the error is of the same size (tests). `gate_proj` / `up_proj` remain
    as attributes that report BF16 `.weight` (openpi reads `mlp.up_proj.weight.dtype`).
    Built by `replace_mlp_with_w4a8(model, fuse_gate_up=True)` or `from_mlp`.

    Gated epilogue (glu=True, the default): where act_fn is GELU (tanh) or SiLU (glu_act_of)
    and the width a multiple of 8, the GEMM also computes act(gate) * up in its epilogue
    (w4a8_linear_bf16_glu), so the [M, 2 x width] intermediate and the elementwise kernel
    disappear; the result equals the unfused act_fn(gate) * up of the same GEMM outputs on the
    GPU (same FP32 operations; tests). gate_up_proj's rows are then kept interleaved in blocks
    of 8 (ops.glu_interleave); state_dict() still holds them as [gate; up] and load_state_dict()
    takes them so. glu_act: the epilogue's act, 0 when off."""

    def __init__(self, gate_up_proj: "W4A8Linear", down_proj: nn.Module, act_fn: Callable, glu: bool = True):
        super().__init__()
        if gate_up_proj.out_features % 2:
            raise ValueError(f"W4A8GatedMLP: gate_up_proj.out_features must be even, got {gate_up_proj.out_features}")
        self.gate_up_proj, self.down_proj, self.act_fn = gate_up_proj, down_proj, act_fn
        self.intermediate_size = gate_up_proj.out_features // 2
        self.__dict__["gate_proj"] = _GateUpHalf(gate_up_proj, 0, self.intermediate_size)
        self.__dict__["up_proj"] = _GateUpHalf(gate_up_proj, 1, self.intermediate_size)
        self.glu_act = glu_act_of(act_fn) if glu and gate_up_proj.out_features % 16 == 0 else 0
        if self.glu_act:
            gate_up_proj._permute_rows(ops.glu_interleave)
            self.gate_proj._interleaved = self.up_proj._interleaved = True
        # (register_state_dict_post_hook is public from PyTorch 2.2 on; the private name is older)
        register = getattr(self, "register_state_dict_post_hook", None) or self._register_state_dict_hook
        register(W4A8GatedMLP._canonical_rows_in_state_dict)

    _GLU_ROWS = ("weight_packed", "weight_scale", "bias")  # gate_up_proj's per-row buffers

    @staticmethod
    def _canonical_rows_in_state_dict(module, state_dict, prefix, local_metadata):
        if module.glu_act:  # checkpoints hold [gate; up]
            for name in W4A8GatedMLP._GLU_ROWS:
                key = f"{prefix}gate_up_proj.{name}"
                if key in state_dict:
                    state_dict[key] = ops.glu_deinterleave(state_dict[key])

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # Runs before gate_up_proj loads its part of the same dict: [gate; up] -> interleaved.
        if self.glu_act:
            for name in W4A8GatedMLP._GLU_ROWS:
                key = f"{prefix}gate_up_proj.{name}"
                t = state_dict.get(key)
                if isinstance(t, torch.Tensor) and t.dim() >= 1 and t.shape[0] == self.gate_up_proj.out_features:
                    state_dict[key] = ops.glu_interleave(t)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    @classmethod
    def from_mlp(cls, mlp: nn.Module, group_size: int = 16, down: Optional[nn.Module] = None,
                 glu: bool = True) -> "W4A8GatedMLP":
        """From a module with nn.Linear gate_proj / up_proj (same input, same bias-ness), a
        down_proj and an act_fn (Hugging Face Gemma / Llama MLPs). `down` replaces down_proj
        (e.g. its W4A8Linear); by default down_proj is quantized too."""
        g, u = getattr(mlp, "gate_proj", None), getattr(mlp, "up_proj", None)
        if not (isinstance(g, nn.Linear) and isinstance(u, nn.Linear)):
            raise TypeError("W4A8GatedMLP.from_mlp: expected nn.Linear gate_proj and up_proj, got "
                            f"{type(g).__name__} and {type(u).__name__}")
        if g.weight.shape != u.weight.shape or (g.bias is None) != (u.bias is None):
            raise ValueError(f"W4A8GatedMLP.from_mlp: gate_proj {tuple(g.weight.shape)} (bias {g.bias is not None}) "
                             f"and up_proj {tuple(u.weight.shape)} (bias {u.bias is not None}) must match")
        if not hasattr(mlp, "act_fn") or not hasattr(mlp, "down_proj"):
            raise TypeError("W4A8GatedMLP.from_mlp: expected act_fn and down_proj attributes")
        w = torch.cat([g.weight.detach(), u.weight.detach()])
        b = None if g.bias is None else torch.cat([g.bias.detach(), u.bias.detach()])
        fused = W4A8Linear.from_weight(w, b, group_size)
        if down is None:
            down = mlp.down_proj if isinstance(mlp.down_proj, W4A8Linear) else W4A8Linear.from_linear(mlp.down_proj,
                                                                                                      group_size)
        return cls(fused, down, mlp.act_fn, glu)

    # Rows (tokens) up to which forward() runs the gated epilogue. Above, act_fn(gate) * up on the
    # GEMM's interleaved output (strided views of gate and up; the same bits, tested): the
    # prefill kernel's gated epilogue on 256-token tiles costs more than the elementwise kernel
    # it saves (H100, Gemma decoder layer, bench_torch.py, us: expert M = 968 307.4 gated vs
    # 281.0 not, backbone 650.6 vs 637.7; M = 50 144.4 vs 147.0 and 194.6 vs 199.6; M = 1 111.1
    # vs 116.0). 128: between the measured points, not measured itself.
    GLU_MAX_ROWS = 128

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (self.glu_act and x.numel() <= self.GLU_MAX_ROWS * x.shape[-1] and not onnx_export.exporting()):
            return self.down_proj(self.gate_up_proj.forward_glu(x, self.glu_act))
        h = self.gate_up_proj(x)
        if self.glu_act:  # rows interleaved in blocks of 8: gate and up as strided views, no copy
            gate, up = ops.glu_split(h)
            return self.down_proj((self.act_fn(gate) * up).flatten(-2))
        gate, up = h.split(self.intermediate_size, dim=-1)
        return self.down_proj(self.act_fn(gate) * up)

    def extra_repr(self) -> str:
        return f"gated epilogue={ {0: 'off', _lib.GLU_GELU_TANH: 'gelu_tanh', _lib.GLU_SILU: 'silu'}[self.glu_act]}"


def _capture_inputs(model: nn.Module, names, sample_input) -> Dict[str, torch.Tensor]:
    """Runs `model` once on `sample_input` and returns the first input each named layer saw."""
    captured: Dict[str, torch.Tensor] = {}
    hooks = []
    for name in names:
        def hook(_mod, args, name=name):
            if name not in captured and args and isinstance(args[0], torch.Tensor):
                captured[name] = args[0].detach().clone()
        hooks.append(model.get_submodule(name).register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            args = sample_input if isinstance(sample_input, tuple) else (sample_input,)
            model(*args)
    finally:
        for h in hooks:
            h.remove()
    return captured


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def replace_mlp_with_w4a8(model: nn.Module, include: Iterable[str] = (), exclude: Iterable[str] = (),
                          filter_fn: Optional[Callable[[str, nn.Linear], bool]] = None, group_size: int = 16,
                          progress: bool = False, check_error: bool = False,
                          sample_tokens: int = 16, sample_input=None, prepack: bool = False,
                          fp8: Optional[str] = None, fuse_gate_up: bool = False, glu: bool = True) -> Dict[str, object]:
    """Swaps linear layers of `model` for W4A8Linear, in place.

    Which layers: every nn.Linear whose name ends in gate_proj, up_proj or down_proj (the MLPs
    of Gemma / Llama-style models), plus those whose full name matches a glob in `include`
    (e.g. "*.self_attn.q_proj"), or for which `filter_fn(name, module)` is true; minus those
    matching a glob in `exclude`.
    Returns {name: W4A8Linear}; with check_error=True, {name: (W4A8Linear, rel_error)} where
    rel_error is ||y_w4a8 - y_orig|| / ||y_orig||, measured on each layer's own input when the
    model is run once on `sample_input` (a tensor, or a tuple of positional arguments), else
    on `sample_tokens` Gaussian rows. prepack=True: each new layer whose shape allows it
    (W4A8Linear.prepack) gets the tiled layout (faster at every M on the exact path).
    fp8="exact": each new (canonical) layer may run the Hopper prefill on FP8 tensor cores where
    that is exact (W4A8Linear.enable_fp8); fp8="lossy" accepts the FP8 path's rounding too;
    fp8="fast" that and the tensor cores' own summation (enable_fp8(fast_accumulation=True)).
    fuse_gate_up=True: where both gate_proj and up_proj of a module are chosen (and it has
    act_fn and down_proj, as Hugging Face MLPs), that module is replaced by a W4A8GatedMLP
    whose one W4A8 GEMM computes both; its entry in the result is "<mlp>.gate_up_proj";
    glu=True lets it apply the activation in the GEMM's epilogue where it can (W4A8GatedMLP).
    """
    if fp8 not in (None, "exact", "lossy", "fast"):
        raise ValueError(f"fp8: expected None, 'exact', 'lossy' or 'fast', got {fp8!r}")
    include, exclude = tuple(include), tuple(exclude)
    chosen = []
    for name, mod in model.named_modules():
        if not isinstance(mod, nn.Linear):
            continue
        leaf = name.rsplit(".", 1)[-1]
        want = leaf in MLP_PROJECTIONS or _matches(name, include) or (filter_fn is not None and filter_fn(name, mod))
        if want and not _matches(name, exclude):
            chosen.append((name, mod))
    captured: Dict[str, torch.Tensor] = {}
    if check_error and sample_input is not None:
        captured = _capture_inputs(model, [n for n, _ in chosen], sample_input)
    out: Dict[str, object] = {}
    t0 = time.time()
    pending = {}  # fuse_gate_up: name -> MLP module whose gate/up become one W4A8GatedMLP
    if fuse_gate_up:
        names = {n for n, _ in chosen}
        for n, _ in chosen:
            parent, _, leaf = n.rpartition(".")
            mlp = model.get_submodule(parent) if parent else model
            if (parent and leaf == "gate_proj" and f"{parent}.up_proj" in names and hasattr(mlp, "act_fn")
                    and hasattr(mlp, "down_proj")):  # (a root module cannot be replaced in place)
                pending[parent] = mlp
    for i, (name, lin) in enumerate(chosen):
        parent_name, _, leaf = name.rpartition(".")
        fused_here = parent_name in pending and leaf in ("gate_proj", "up_proj")
        if fused_here:
            mlp = pending[parent_name]
            if mlp is None:
                continue  # the module's other half already built the fused layer
            pending[parent_name] = None
            # The original gate/up (still nn.Linear) make the fused layer and the reference;
            # down_proj is taken as it is now (it is replaced in its own turn, or excluded).
            fused = W4A8GatedMLP.from_mlp(mlp, group_size, down=mlp.down_proj, glu=glu)
            new, out_name, refs = fused.gate_up_proj, f"{parent_name}.gate_up_proj", (mlp.gate_proj, mlp.up_proj)
            grand, _, mlp_leaf = parent_name.rpartition(".")
            setattr(model.get_submodule(grand) if grand else model, mlp_leaf, fused)
        else:
            new, out_name, refs = W4A8Linear.from_linear(lin, group_size), name, (lin,)
        if prepack and ops.tiled_layout_fits(new.out_features, new.in_features):
            new.prepack()
        elif fp8 is not None:
            new.enable_fp8(allow_lossy=fp8 in ("lossy", "fast"), fast_accumulation=fp8 == "fast")
        if check_error:
            with torch.no_grad():
                x = captured.get(name)
                if x is None:
                    x = torch.randn(sample_tokens, new.in_features, device=refs[0].weight.device)
                x = x.to(torch.bfloat16)
                # The original layer(s): a fused layer's reference is [gate; up] side by side.
                ref = torch.cat([nn.functional.linear(x.float(), r.weight.float(),
                                                      None if r.bias is None else r.bias.float()) for r in refs], -1)
                y = new(x)
                if fused_here and fused.glu_act:  # its rows are interleaved: back to [gate; up]
                    y = ops.glu_deinterleave(y, y.dim() - 1)
                err = (torch.linalg.norm(y.float() - ref) / torch.linalg.norm(ref).clamp_min(1e-30)).item()
            out[out_name] = (new, err)
        else:
            out[out_name] = new
        if not fused_here:
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, leaf, new)
        if progress:
            done = i + 1
            bar = "#" * (30 * done // len(chosen))
            sys.stderr.write(f"\rw4a8: [{bar:<30}] {done}/{len(chosen)} layers, {time.time() - t0:.1f} s")
            if done == len(chosen):
                sys.stderr.write("\n")
            sys.stderr.flush()
    return out
