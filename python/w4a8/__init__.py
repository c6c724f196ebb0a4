"""w4a8: FP8 activations x NVFP4 weights -> BF16 GEMM (Python front end)."""
from ._lib import W4A8Error, kernel_name, linear_workspace_size  # noqa: F401

__all__ = ["W4A8Error", "kernel_name", "linear_workspace_size"]
