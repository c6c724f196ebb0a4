"""NVFP4 checkpoints that exist today: ModelOpt (unified HF export) and compressed-tensors
(`nvfp4-pack-quantized`), read into W4A8Linear; ours written in the ModelOpt layout.

Needs only `safetensors` (and PyTorch for the tensors), not a GPU. Field tables: FORMATS.md.

ModelOpt, per quantized Linear `<prefix>`:
  <prefix>.weight          uint8          [N, K/2]
  <prefix>.weight_scale    float8_e4m3fn  [N, K/group]
  <prefix>.weight_scale_2  float32 []  (also [1], or bfloat16)
  <prefix>.input_scale     float32 []  (static activation scale: unused, per-row dynamic here)
compressed-tensors:
  <prefix>.weight_packed        uint8          [N, K/2]   (same bytes)
  <prefix>.weight_scale         float8_e4m3fn  [N, K/16]
  <prefix>.weight_global_scale  float32 [1]    = 1 / weight_scale_2
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Mapping, Optional, Union

import torch
from torch import nn

from .modules import W4A8Linear

Tensors = Mapping[str, torch.Tensor]


class CheckpointError(ValueError):
    """A checkpoint tensor is missing or does not have the expected dtype or shape."""


def _get(t: Tensors, key: str) -> torch.Tensor:
    if key not in t:
        raise CheckpointError(f"missing tensor '{key}'")
    return t[key]


def _expect_dtype(key: str, v: torch.Tensor, dtypes):
    if v.dtype not in dtypes:
        raise CheckpointError(f"tensor '{key}': expected dtype {' or '.join(map(str, dtypes))}, got {v.dtype}")


def _scalar(key: str, v: torch.Tensor) -> torch.Tensor:
    _expect_dtype(key, v, (torch.float32, torch.bfloat16, torch.float16))
    if v.numel() != 1:
        raise CheckpointError(f"tensor '{key}': expected a scalar ([] or [1]), got shape {tuple(v.shape)}")
    return v.reshape(()).to(torch.float32)


def _build(prefix: str, packed: torch.Tensor, scales: torch.Tensor, s2: torch.Tensor,
           bias: Optional[torch.Tensor], packed_key: str) -> W4A8Linear:
    _expect_dtype(packed_key, packed, (torch.uint8, torch.int8))
    _expect_dtype(prefix + "weight_scale", scales, (torch.float8_e4m3fn, torch.uint8))
    if packed.dim() != 2 or scales.dim() != 2:
        raise CheckpointError(f"'{packed_key}' and '{prefix}weight_scale' must be 2-D, got {tuple(packed.shape)} and "
                              f"{tuple(scales.shape)}")
    N, K = packed.shape[0], packed.shape[1] * 2
    if scales.shape[0] != N or scales.shape[1] == 0 or K % scales.shape[1]:
        raise CheckpointError(f"tensor '{prefix}weight_scale': shape {tuple(scales.shape)} does not fit "
                              f"'{packed_key}' {tuple(packed.shape)} (expected [{N}, {K}/group])")
    group = K // scales.shape[1]
    if group not in (16, 32):
        raise CheckpointError(f"tensor '{prefix}weight_scale': shape {tuple(scales.shape)} implies group size {group}; "
                              f"expected 16 or 32")
    if bias is not None and tuple(bias.shape) != (N,):
        raise CheckpointError(f"tensor '{prefix}bias': expected shape ({N},), got {tuple(bias.shape)}")
    mod = W4A8Linear(K, N, bias is not None, group, device=packed.device)
    mod.weight_packed.copy_(packed.view(torch.uint8))
    mod.weight_scale.copy_(scales.view(torch.float8_e4m3fn))
    mod.weight_scale_2.copy_(s2)
    if bias is not None:
        mod.bias.copy_(bias.to(torch.bfloat16))
    return mod


def load_modelopt_layer(tensors: Tensors, prefix: str) -> W4A8Linear:
    """One W4A8Linear from ModelOpt tensors named `<prefix>.weight`, ... (prefix without the dot)."""
    p = prefix + "."
    return _build(p, _get(tensors, p + "weight"), _get(tensors, p + "weight_scale"),
                  _scalar(p + "weight_scale_2", _get(tensors, p + "weight_scale_2")), tensors.get(p + "bias"),
                  p + "weight")


def load_compressed_tensors_layer(tensors: Tensors, prefix: str) -> W4A8Linear:
    """One W4A8Linear from compressed-tensors `nvfp4-pack-quantized` tensors (s2 = 1 / global scale)."""
    p = prefix + "."
    g = _scalar(p + "weight_global_scale", _get(tensors, p + "weight_global_scale"))
    if not torch.isfinite(g) or g.item() == 0:
        raise CheckpointError(f"tensor '{p}weight_global_scale': expected a finite non-zero value, got {g.item()}")
    return _build(p, _get(tensors, p + "weight_packed"), _get(tensors, p + "weight_scale"), 1.0 / g,
                  tensors.get(p + "bias"), p + "weight_packed")


def detect_format(tensors: Tensors) -> str:
    keys = tensors.keys()
    if any(k.endswith(".weight_packed") and k.replace(".weight_packed", ".weight_global_scale") in keys for k in keys):
        return "compressed-tensors"
    if any(k.endswith(".weight_scale_2") for k in keys):
        return "modelopt"
    raise CheckpointError("no NVFP4 layers found (neither '*.weight_scale_2' nor '*.weight_global_scale' tensors)")


def quantized_prefixes(tensors: Tensors, fmt: str):
    suffix = ".weight_scale_2" if fmt == "modelopt" else ".weight_global_scale"
    return sorted(k[: -len(suffix)] for k in tensors.keys() if k.endswith(suffix))


def load_nvfp4_layers(tensors: Union[Tensors, str, Path], fmt: str = "auto") -> Dict[str, W4A8Linear]:
    """{layer prefix: W4A8Linear} for every NVFP4 layer of a checkpoint (dict or .safetensors path)."""
    if not isinstance(tensors, Mapping):
        from safetensors.torch import load_file
        tensors = load_file(str(tensors))
    fmt = detect_format(tensors) if fmt == "auto" else fmt
    load = load_modelopt_layer if fmt == "modelopt" else load_compressed_tensors_layer
    return {p: load(tensors, p) for p in quantized_prefixes(tensors, fmt)}


def load_nvfp4_into(model: nn.Module, tensors: Union[Tensors, str, Path], fmt: str = "auto",
                     strip_prefix: str = "") -> Dict[str, W4A8Linear]:
    """Replaces the modules of `model` named like the checkpoint's NVFP4 layers; returns them."""
    layers = load_nvfp4_layers(tensors, fmt)
    out = {}
    for prefix, mod in layers.items():
        name = prefix[len(strip_prefix):] if strip_prefix and prefix.startswith(strip_prefix) else prefix
        try:
            old = model.get_submodule(name)
        except AttributeError as e:
            raise CheckpointError(f"checkpoint layer '{prefix}' has no module '{name}' in the model") from e
        if isinstance(old, nn.Linear) and (old.in_features, old.out_features) != (mod.in_features, mod.out_features):
            raise CheckpointError(f"layer '{name}': model has in/out {old.in_features}/{old.out_features}, checkpoint "
                                  f"{mod.in_features}/{mod.out_features}")
        dev = next(old.buffers(), next(old.parameters(), None))
        if dev is not None:
            mod = mod.to(dev.device)
        parent_name, _, leaf = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, leaf, mod)
        out[name] = mod
    return out


def to_modelopt_tensors(layers: Mapping[str, W4A8Linear]) -> Dict[str, torch.Tensor]:
    """ModelOpt-layout tensors for {prefix: W4A8Linear} (CPU, contiguous)."""
    out = {}
    for prefix, m in layers.items():
        out[f"{prefix}.weight"] = m.weight_packed.detach().cpu().contiguous()
        out[f"{prefix}.weight_scale"] = m.weight_scale.detach().cpu().contiguous()
        out[f"{prefix}.weight_scale_2"] = m.weight_scale_2.detach().cpu().reshape(()).contiguous()
        if m.bias is not None:
            out[f"{prefix}.bias"] = m.bias.detach().cpu().contiguous()
    return out


def hf_quant_config(layers: Mapping[str, W4A8Linear], exclude_modules=()) -> dict:
    groups = {m.group_size for m in layers.values()} or {16}
    return {"producer": {"name": "w4a8", "version": "0.1.0"},
            "quantization": {"quant_algo": "NVFP4", "group_size": max(groups), "exclude_modules": list(exclude_modules),
                             "kv_cache_quant_algo": None}}


def save_modelopt(layers: Mapping[str, W4A8Linear], path: Union[str, Path], extra: Optional[Tensors] = None):
    """Writes `layers` (plus `extra` unquantized tensors) as a ModelOpt NVFP4 safetensors file and
    an `hf_quant_config.json` beside it."""
    from safetensors.torch import save_file
    tensors = dict(extra or {})
    tensors.update(to_modelopt_tensors(layers))
    path = Path(path)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata={"format": "pt"})
    (path.parent / "hf_quant_config.json").write_text(json.dumps(hf_quant_config(layers), indent=2) + "\n")
