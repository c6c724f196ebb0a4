"""ModelOpt and compressed-tensors NVFP4 checkpoints: load, save, round trip, errors."""
import json

import pytest
import torch
from torch import nn

pytest.importorskip("safetensors")
from safetensors.torch import load_file, save_file  # noqa: E402

from w4a8 import (CheckpointError, W4A8Linear, load_compressed_tensors_layer, load_modelopt_layer,  # noqa: E402
                  load_nvfp4_into, load_nvfp4_layers, save_modelopt)
from w4a8.__main__ import main as cli_main  # noqa: E402


def make_layers(group):
    torch.manual_seed(group)
    return {f"model.layers.{i}.mlp.{n}": W4A8Linear.from_linear(nn.Linear(64, 32, bias=(i == 1)).to(torch.bfloat16),
                                                                 group)
            for i in range(2) for n in ("gate_proj", "up_proj")}


def same(a: W4A8Linear, b: W4A8Linear):
    return (torch.equal(a.weight_packed, b.weight_packed) and torch.equal(a.weight_scale.view(torch.uint8),
                                                                          b.weight_scale.view(torch.uint8))
            and torch.equal(a.weight_scale_2, b.weight_scale_2) and a.group_size == b.group_size
            and ((a.bias is None and b.bias is None) or torch.equal(a.bias, b.bias)))


@pytest.mark.parametrize("group", [16, 32])
def test_modelopt_round_trip(tmp_path, group):
    layers = make_layers(group)
    path = tmp_path / "model.safetensors"
    save_modelopt(layers, path, extra={"model.embed_tokens.weight": torch.zeros(4, 64)})
    t = load_file(str(path))
    assert t["model.layers.0.mlp.up_proj.weight"].dtype == torch.uint8
    assert t["model.layers.0.mlp.up_proj.weight_scale"].dtype == torch.float8_e4m3fn
    assert t["model.layers.0.mlp.up_proj.weight_scale_2"].shape == ()
    cfg = json.loads((tmp_path / "hf_quant_config.json").read_text())
    assert cfg["quantization"]["quant_algo"] == "NVFP4" and cfg["quantization"]["group_size"] == group
    loaded = load_nvfp4_layers(path)
    assert sorted(loaded) == sorted(layers)
    for k in layers:
        assert same(layers[k], loaded[k])


def test_compressed_tensors_layout_gives_the_same_layer():
    layers = make_layers(16)
    ct = {}
    for p, m in layers.items():  # compressed-tensors: same bytes, global scale = 1 / s2
        ct[f"{p}.weight_packed"] = m.weight_packed
        ct[f"{p}.weight_scale"] = m.weight_scale
        ct[f"{p}.weight_global_scale"] = (1.0 / m.weight_scale_2).reshape(1)
        if m.bias is not None:
            ct[f"{p}.bias"] = m.bias
    loaded = load_nvfp4_layers(ct)
    for p, m in layers.items():
        got = loaded[p]
        assert torch.equal(got.weight_packed, m.weight_packed)
        # s2 goes through 1/(1/s2): equal to within one rounding, and exactly what the file says.
        assert torch.allclose(got.weight_scale_2, m.weight_scale_2, rtol=2 ** -23)
    x = torch.randn(3, 64).to(torch.bfloat16)
    p = "model.layers.0.mlp.gate_proj"
    assert torch.allclose(loaded[p](x).float(), layers[p](x).float(), rtol=1e-2, atol=1e-3)


def test_scalar_variants_and_bf16_scale_2():
    m = make_layers(16)["model.layers.0.mlp.up_proj"]
    t = {"l.weight": m.weight_packed, "l.weight_scale": m.weight_scale,
         "l.weight_scale_2": m.weight_scale_2.reshape(1)}
    assert same(load_modelopt_layer(t, "l"), m)
    t["l.weight_scale_2"] = m.weight_scale_2.to(torch.bfloat16)
    assert load_modelopt_layer(t, "l").weight_scale_2.item() == m.weight_scale_2.to(torch.bfloat16).float().item()


def test_missing_and_mismatched_tensors_name_the_tensor():
    m = make_layers(16)["model.layers.0.mlp.up_proj"]
    good = {"l.weight": m.weight_packed, "l.weight_scale": m.weight_scale, "l.weight_scale_2": m.weight_scale_2}
    with pytest.raises(CheckpointError, match="missing tensor 'l.weight_scale'"):
        load_modelopt_layer({k: v for k, v in good.items() if k != "l.weight_scale"}, "l")
    with pytest.raises(CheckpointError, match="'l.weight': expected dtype torch.uint8 or torch.int8, got torch.float32"):
        load_modelopt_layer({**good, "l.weight": m.weight_packed.float()}, "l")
    with pytest.raises(CheckpointError, match=r"'l.weight_scale': shape \(32, 3\) does not fit"):
        load_modelopt_layer({**good, "l.weight_scale": m.weight_scale[:, :3].contiguous()}, "l")
    with pytest.raises(CheckpointError, match="expected a scalar"):
        load_modelopt_layer({**good, "l.weight_scale_2": torch.ones(2)}, "l")
    with pytest.raises(CheckpointError, match="weight_global_scale': expected a finite non-zero value"):
        load_compressed_tensors_layer({"l.weight_packed": m.weight_packed, "l.weight_scale": m.weight_scale,
                                       "l.weight_global_scale": torch.zeros(1)}, "l")
    with pytest.raises(CheckpointError, match="no NVFP4 layers"):
        load_nvfp4_layers({"x.weight": torch.zeros(2, 2)})


def test_load_into_model_and_cli_quantize(tmp_path):
    torch.manual_seed(4)
    model = nn.Module()
    model.mlp = nn.Module()
    model.mlp.up_proj = nn.Linear(64, 32, bias=False)
    model.mlp.other = nn.Linear(64, 32, bias=False)
    src = tmp_path / "bf16.safetensors"
    save_file({"mlp.up_proj.weight": model.mlp.up_proj.weight.detach().to(torch.bfloat16).contiguous(),
               "mlp.other.weight": model.mlp.other.weight.detach().to(torch.bfloat16).contiguous()}, str(src))
    original = model.mlp.up_proj
    dst = tmp_path / "nvfp4.safetensors"
    assert cli_main(["quantize", str(src), str(dst), "--device", "cpu"]) == 0
    t = load_file(str(dst))
    assert "mlp.up_proj.weight_scale_2" in t and t["mlp.other.weight"].dtype == torch.bfloat16
    swapped = load_nvfp4_into(model, dst)
    assert list(swapped) == ["mlp.up_proj"] and isinstance(model.mlp.up_proj, W4A8Linear)
    # The file holds exactly what quantizing the layer in-process gives.
    assert same(model.mlp.up_proj, W4A8Linear.from_linear(original.to(torch.bfloat16)))
