"""ONNX route of the TensorRT plugin: W4A8Linear layers export as W4A8GemmPlugin nodes."""
import pytest
import torch
from torch import nn

onnx = pytest.importorskip("onnx")

from w4a8 import W4A8Linear, replace_mlp_with_w4a8  # noqa: E402
from w4a8.onnx_export import DOMAIN, OP_TYPE, export_onnx  # noqa: E402


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.gate_proj = nn.Linear(64, 128, bias=False)
        self.up_proj = nn.Linear(64, 128, bias=True)
        self.down_proj = nn.Linear(128, 64, bias=False)

    def forward(self, x):
        return self.down_proj(nn.functional.gelu(self.gate_proj(x), approximate="tanh") * self.up_proj(x))


def test_export_gives_plugin_nodes_with_fields_and_initializers(tmp_path):
    torch.manual_seed(0)
    model = Mlp().to(torch.bfloat16)
    replace_mlp_with_w4a8(model)
    x = torch.randn(2, 5, 64).to(torch.bfloat16)
    path = tmp_path / "mlp.onnx"
    export_onnx(model, (x,), path, input_names=["x"], output_names=["y"],
                dynamic_axes={"x": {0: "batch", 1: "seq"}, "y": {0: "batch", 1: "seq"}})
    m = onnx.load(str(path))
    onnx.checker.check_model(m)
    nodes = [n for n in m.graph.node if n.op_type == OP_TYPE]
    assert len(nodes) == 3 and all(n.domain == DOMAIN for n in nodes)
    inits = {i.name: i for i in m.graph.initializer}
    up = model.up_proj
    for n in nodes:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        assert set(attrs) == {"in_features", "out_features", "alpha", "group_size", "has_bias", "plugin_version",
                              "plugin_namespace"}
        assert attrs["plugin_version"] == b"1" and attrs["group_size"] == 16
        packed, scales = inits[n.input[1]], inits[n.input[2]]
        assert packed.data_type == onnx.TensorProto.INT8
        assert list(packed.dims) == [attrs["out_features"], attrs["in_features"] // 2]
        assert scales.data_type == onnx.TensorProto.FLOAT8E4M3FN
        assert list(scales.dims) == [attrs["out_features"], attrs["in_features"] // 16]
        assert len(n.input) == 3 + attrs["has_bias"]
        if attrs["out_features"] == 128 and attrs["has_bias"]:
            assert attrs["alpha"] == pytest.approx(up.weight_scale_2.item(), rel=1e-6)
            assert inits[n.input[3]].data_type == onnx.TensorProto.BFLOAT16
    x_in = m.graph.input[0].type.tensor_type
    assert x_in.elem_type == onnx.TensorProto.BFLOAT16
    assert [d.dim_param for d in x_in.shape.dim[:2]] == ["batch", "seq"]
    # Dynamic batch survives: no Reshape with traced constant shapes around the plugin nodes.
    assert not [n for n in m.graph.node if n.op_type == "Reshape"]


def test_plain_forward_unaffected_after_export(tmp_path):
    layer = W4A8Linear.from_linear(nn.Linear(32, 16).to(torch.bfloat16))
    x = torch.randn(3, 32).to(torch.bfloat16)
    before = layer(x)
    export_onnx(layer, (x,), tmp_path / "l.onnx")
    assert torch.equal(layer(x), before)
