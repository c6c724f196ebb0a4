"""Export a PyTorch model whose linear layers are W4A8Linear to ONNX, each as a
`W4A8GemmPlugin` node that TensorRT's ONNX parser hands to the plugin of that name
(libw4a8_trt_plugin.so must be loaded before parsing).

Node: domain "trt.plugins", op_type "W4A8GemmPlugin", attributes = the plugin's fields
(in_features, out_features, alpha, group_size, has_bias) + plugin_version "1",
plugin_namespace "". Inputs: the activation (BF16 [..., K]), the packed weight as an INT8
initializer [N, K/2] (TensorRT plugins take no UINT8), the block scales as a FLOAT8E4M3FN
initializer [N, K/g], and the BF16 bias initializer if any. `alpha` is the layer's alpha times
its tensor scale s2 (the plugin has no s2 input).

    from w4a8.onnx_export import export_onnx
    export_onnx(model, (x,), "model.onnx", input_names=["x"], dynamic_axes={"x": {0: "batch"}})
"""
from __future__ import annotations

import contextlib
from typing import Optional

import torch

from . import ops

DOMAIN = "trt.plugins"
OP_TYPE = "W4A8GemmPlugin"
OPSET = 19  # FLOAT8E4M3FN initializers need opset >= 19

_exporting = False


def exporting() -> bool:
    """True while export_onnx runs: W4A8Linear then emits the plugin op."""
    return _exporting


@contextlib.contextmanager
def _export_mode():
    global _exporting
    prev, _exporting = _exporting, True
    try:
        yield
    finally:
        _exporting = prev


@torch.library.custom_op("w4a8::trt_plugin", mutates_args=())
def trt_plugin(x: torch.Tensor, packed: torch.Tensor, scales: torch.Tensor, bias: Optional[torch.Tensor],
               alpha: float, in_features: int, out_features: int, group_size: int) -> torch.Tensor:
    """What the plugin computes on x [..., K] (alpha already includes s2); used only while exporting."""
    s2 = torch.ones((), dtype=torch.float32, device=x.device)
    y = ops.linear_impl(x.reshape(-1, in_features).contiguous(), packed.view(torch.uint8), scales, s2, bias, alpha,
                        group_size)
    return y.reshape(*x.shape[:-1], out_features)


@trt_plugin.register_fake
def _(x, packed, scales, bias, alpha, in_features, out_features, group_size):
    return x.new_empty(*x.shape[:-1], out_features, dtype=torch.bfloat16)


def _symbolic(g, x, packed, scales, bias, alpha, in_features, out_features, group_size):
    from torch.onnx import symbolic_helper as sh

    has_bias = not sh._is_none(bias)
    inputs = [x, packed, scales] + ([bias] if has_bias else [])
    out = g.op(f"{DOMAIN}::{OP_TYPE}", *inputs, in_features_i=sh._get_const(in_features, "i", "in_features"),
               out_features_i=sh._get_const(out_features, "i", "out_features"),
               alpha_f=sh._get_const(alpha, "f", "alpha"), group_size_i=sh._get_const(group_size, "i", "group_size"),
               has_bias_i=int(has_bias), plugin_version_s="1", plugin_namespace_s="")
    out.setType(x.type().with_sizes(None))
    return out


def export_onnx(model: torch.nn.Module, args, path, **kwargs):
    """torch.onnx.export (TorchScript exporter) with W4A8Linear layers as W4A8GemmPlugin nodes.
    kwargs go to torch.onnx.export (input_names, output_names, dynamic_axes, ...)."""
    torch.onnx.register_custom_op_symbolic("w4a8::trt_plugin", _symbolic, OPSET)
    kwargs.setdefault("opset_version", OPSET)
    custom = dict(kwargs.pop("custom_opsets", {}) or {})
    custom.setdefault(DOMAIN, 1)
    from .modules import W4A8Linear

    layers = [m for m in model.modules() if isinstance(m, W4A8Linear)]
    # The packed weights as an INT8 buffer (same bytes): TensorRT plugins take no UINT8, and
    # a dtype view cannot be traced.
    for m in layers:
        m.register_buffer("_onnx_packed_i8", m.weight_packed.view(torch.int8).clone())
    try:
        with _export_mode(), torch.no_grad():
            torch.onnx.export(model, args, str(path), dynamo=False, custom_opsets=custom, **kwargs)
    finally:
        for m in layers:
            delattr(m, "_onnx_packed_i8")
