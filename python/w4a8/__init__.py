"""w4a8: FP8 activations x NVFP4 weights -> BF16 GEMM for NVIDIA GPUs (PyTorch front end).

    from w4a8 import W4A8Linear, replace_mlp_with_w4a8
    layer = W4A8Linear.from_linear(linear)          # quantize one layer
    replace_mlp_with_w4a8(model)                     # every gate/up/down_proj of the model
    replace_mlp_with_w4a8(model, fuse_gate_up=True)  # ... with gate and up as one GEMM per MLP

The package loads the C++ library (libw4a8.so) through its C API; see `w4a8._lib` for where
it looks. Ops are registered as `torch.ops.w4a8.*` (work under torch.compile and CUDA graphs).
"""
from . import ops  # noqa: F401  (registers torch.ops.w4a8.*)
from ._lib import W4A8Error, kernel_name, linear_workspace_size
from .checkpoint import (CheckpointError, load_compressed_tensors_layer, load_modelopt_layer, load_nvfp4_into,
                         load_nvfp4_layers, save_modelopt)
from .modules import W4A8GatedMLP, W4A8Linear, replace_mlp_with_w4a8

__version__ = "0.1.0"
__all__ = ["W4A8Linear", "W4A8GatedMLP", "replace_mlp_with_w4a8", "W4A8Error", "CheckpointError", "kernel_name",
           "linear_workspace_size", "load_modelopt_layer", "load_compressed_tensors_layer", "load_nvfp4_layers",
           "load_nvfp4_into", "save_modelopt", "ops"]
