"""Engine-level test of W4A8GemmPlugin: a one-layer TensorRT network built with add_plugin_v3,
run on the GPU, compared bit for bit with the library's w4a8_linear_bf16 on the same inputs.

Runs only where the TensorRT Python package, a GPU and libw4a8_trt_plugin.so (built with
-DTENSORRT_ROOT=...; path in $W4A8_TRT_PLUGIN or the repo's build folders) are all present;
skipped with a message elsewhere (our CI and GPU machine have no TensorRT runtime).
"""
import ctypes
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT, cuda_or_skip

trt = pytest.importorskip("tensorrt", reason="TensorRT Python package not installed: engine-level test skipped")


def plugin_library():
    env = os.environ.get("W4A8_TRT_PLUGIN")
    candidates = [Path(env)] if env else [ROOT / b / "libw4a8_trt_plugin.so" for b in ("build", "build-gpu", "build-trt")]
    for c in candidates:
        if c.exists():
            return str(c)
    pytest.skip("libw4a8_trt_plugin.so not built (configure with -DTENSORRT_ROOT=...)")


def test_one_layer_engine_equals_library():
    cuda_or_skip()
    from w4a8 import W4A8Linear, _lib

    lib_path = plugin_library()
    M, N, K = 37, 300, 1024
    torch.manual_seed(0)
    layer = W4A8Linear.from_linear(torch.nn.Linear(K, N, bias=True).to(torch.bfloat16).cuda())
    x = torch.randn(M, K, device="cuda").to(torch.bfloat16)
    s2 = float(layer.weight_scale_2.item())

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    registry = builder.get_plugin_registry()
    registry.load_library(lib_path)
    creator = registry.get_creator("W4A8GemmPlugin", "1", "")
    assert creator is not None
    fields = trt.PluginFieldCollection([
        trt.PluginField("in_features", np.array([K], np.int32), trt.PluginFieldType.INT32),
        trt.PluginField("out_features", np.array([N], np.int32), trt.PluginFieldType.INT32),
        trt.PluginField("alpha", np.array([s2], np.float32), trt.PluginFieldType.FLOAT32),
        trt.PluginField("has_bias", np.array([1], np.int32), trt.PluginFieldType.INT32)])
    plugin = creator.create_plugin("w4a8_gemm", fields, trt.TensorRTPhase.BUILD)
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    tx = network.add_input("x", trt.bfloat16, (-1, K))
    tw = network.add_input("w", trt.int8, (N, K // 2))
    ts = network.add_input("s", trt.fp8, (N, K // 16))
    tb = network.add_input("b", trt.bfloat16, (N,))
    out = network.add_plugin_v3([tx, tw, ts, tb], [], plugin).get_output(0)
    out.name = "y"
    network.mark_output(out)
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (1, K), (M, K), (256, K))
    config.add_optimization_profile(profile)
    blob = builder.build_serialized_network(network, config)
    assert blob is not None, "engine build failed (see the TensorRT log)"
    engine = trt.Runtime(logger).deserialize_cuda_engine(blob)
    ctx = engine.create_execution_context()
    ctx.set_input_shape("x", (M, K))
    y = torch.full((M, N), float("nan"), dtype=torch.bfloat16, device="cuda")
    tensors = {"x": x, "w": layer.weight_packed.view(torch.int8), "s": layer.weight_scale, "b": layer.bias, "y": y}
    for name, t in tensors.items():
        ctx.set_tensor_address(name, t.data_ptr())
    stream = torch.cuda.current_stream()
    assert ctx.execute_async_v3(stream.cuda_stream)
    stream.synchronize()

    # The library on the same inputs, s2 folded into alpha exactly as the plugin does.
    y_lib = torch.empty_like(y)
    ws = torch.empty(_lib.linear_workspace_size(M, N, K, 16), dtype=torch.uint8, device="cuda")
    w = _lib.Weight(layer.weight_packed.data_ptr(), layer.weight_scale.data_ptr(), None, layer.bias.data_ptr(), N, K, 16)
    _lib.check(_lib.lib().w4a8_linear_bf16(x.data_ptr(), ctypes.byref(w), y_lib.data_ptr(), M, s2, ws.data_ptr(),
                                           ws.numel(), stream.cuda_stream))
    stream.synchronize()
    assert torch.equal(y, y_lib)
