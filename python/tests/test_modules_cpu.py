"""W4A8Linear and replace_mlp_with_w4a8 on small CPU models (the reference path)."""
import io

import pytest
import torch
from torch import nn

from w4a8 import W4A8Linear, _lib, ops, replace_mlp_with_w4a8


class Mlp(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.gate_proj = nn.Linear(d, h, bias=False)
        self.up_proj = nn.Linear(d, h, bias=False)
        self.down_proj = nn.Linear(h, d, bias=False)

    def forward(self, x):
        return self.down_proj(nn.functional.gelu(self.gate_proj(x), approximate="tanh") * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, d=64, h=128):
        super().__init__()
        self.self_attn = nn.Module()
        self.self_attn.q_proj = nn.Linear(d, d, bias=True)
        self.mlp = Mlp(d, h)

    def forward(self, x):
        return self.mlp(self.self_attn.q_proj(x))


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([Block(), Block()])
        self.lm_head = nn.Linear(64, 32)

    def forward(self, x):
        for l in self.layers:
            x = x + l(x)
        return self.lm_head(x)


def test_from_linear_forward_any_leading_shape_and_bias():
    torch.manual_seed(1)
    lin = nn.Linear(64, 40, bias=True).to(torch.bfloat16)
    m = W4A8Linear.from_linear(lin)
    for shape in [(64,), (3, 64), (2, 5, 64)]:
        x = torch.randn(*shape).to(torch.bfloat16)
        y = m(x)
        assert y.shape == shape[:-1] + (40,) and y.dtype == torch.bfloat16
        ref = nn.functional.linear(x.float(), m.dequantize_weight(), m.bias.float())
        # Only the activation quantization (E4M3, <= 2^-4 relative) separates y from ref.
        assert (torch.linalg.norm(y.float() - ref) / torch.linalg.norm(ref)) < 0.05
    assert m.weight.dtype == torch.bfloat16 and m.weight.shape == (40, 64) and m.weight.device.type == "meta"
    assert "in_features=64, out_features=40, bias=True" in repr(m)


def test_non_contiguous_input_is_handled_and_bad_input_rejected():
    m = W4A8Linear.from_linear(nn.Linear(64, 16).to(torch.bfloat16))
    x = torch.randn(64, 6).to(torch.bfloat16)
    assert torch.equal(m(x.t()), m(x.t().contiguous()))
    with pytest.raises(TypeError, match="expected a bfloat16 input, got torch.float32"):
        m(torch.randn(2, 64))
    with pytest.raises(ValueError, match=r"expected input \[..., 64\]"):
        m(torch.randn(2, 65).to(torch.bfloat16))
    with pytest.raises(ValueError, match="multiple of group_size=32"):
        W4A8Linear(48, 16, group_size=32)


def test_overlap_is_on_by_default_and_part_of_the_eager_plan():
    m = W4A8Linear.from_linear(nn.Linear(64, 32).to(torch.bfloat16))
    assert m.overlap is True
    x = torch.randn(3, 64).to(torch.bfloat16)
    y = m(x)
    m.overlap = False
    assert torch.equal(m(x), y)  # when kernels start, not what they compute
    # The eager plan's struct starts serial and takes `overlap` after its first call (GPU test).
    m.overlap = True
    plan = m._plan()
    assert plan.struct.overlap == 0 and plan.overlap == 1


def test_state_dict_round_trip():
    torch.manual_seed(2)
    m = W4A8Linear.from_linear(nn.Linear(96, 24, bias=True).to(torch.bfloat16), group_size=32)
    buf = io.BytesIO()
    torch.save(m.state_dict(), buf)
    buf.seek(0)
    m2 = W4A8Linear(96, 24, bias=True, group_size=32)
    m2.load_state_dict(torch.load(buf))
    x = torch.randn(4, 96).to(torch.bfloat16)
    assert torch.equal(m(x), m2(x))
    assert set(m.state_dict()) == {"weight_packed", "weight_scale", "weight_scale_2", "bias"}


def test_replace_mlp_default_include_exclude_filter():
    torch.manual_seed(3)
    model = Toy().to(torch.bfloat16)
    x = torch.randn(2, 64).to(torch.bfloat16)
    ref = model(x).float()
    got = replace_mlp_with_w4a8(model, exclude=["layers.1.mlp.down_proj"], check_error=True)
    assert sorted(got) == ["layers.0.mlp.down_proj", "layers.0.mlp.gate_proj", "layers.0.mlp.up_proj",
                           "layers.1.mlp.gate_proj", "layers.1.mlp.up_proj"]
    assert all(err < 0.2 for _, err in got.values())
    assert isinstance(model.layers[0].mlp.up_proj, W4A8Linear)
    assert isinstance(model.layers[1].mlp.down_proj, nn.Linear)
    assert isinstance(model.layers[0].self_attn.q_proj, nn.Linear)
    y = model(x).float()
    assert torch.nn.functional.cosine_similarity(y.flatten(), ref.flatten(), dim=0) > 0.98
    more = replace_mlp_with_w4a8(model, include=["*.self_attn.q_proj"], filter_fn=lambda n, m: n == "lm_head")
    assert sorted(more) == ["layers.1.mlp.down_proj", "layers.0.self_attn.q_proj", "layers.1.self_attn.q_proj",
                            "lm_head"] or sorted(more) == sorted(["layers.1.mlp.down_proj", "layers.0.self_attn.q_proj",
                                                                  "layers.1.self_attn.q_proj", "lm_head"])
    assert isinstance(model.lm_head, W4A8Linear)


def test_traces_under_torch_compile_fullgraph():
    m = W4A8Linear.from_linear(nn.Linear(64, 32).to(torch.bfloat16))
    x = torch.randn(5, 64).to(torch.bfloat16)
    compiled = torch.compile(m, fullgraph=True, backend="aot_eager")
    assert torch.equal(compiled(x), m(x))


def test_error_report_on_a_real_sample_input_uses_each_layers_own_input():
    torch.manual_seed(5)
    model = Toy().to(torch.bfloat16)
    x = torch.randn(3, 64).to(torch.bfloat16)
    seen = {}
    hook = model.layers[1].mlp.down_proj.register_forward_pre_hook(lambda m, a: seen.setdefault("x", a[0].clone()))
    model(x)
    hook.remove()
    down = model.layers[1].mlp.down_proj
    got = replace_mlp_with_w4a8(model, check_error=True, sample_input=x)
    new, err = got["layers.1.mlp.down_proj"]
    ref = nn.functional.linear(seen["x"].float(), down.weight.float())
    want = (torch.linalg.norm(new(seen["x"]).float() - ref) / torch.linalg.norm(ref)).item()
    assert err == pytest.approx(want, rel=1e-6)
    assert all(e < 0.2 for _, e in got.values())


def test_prepack_keeps_results_and_checkpoints_canonical():
    """prepack() rewrites the buffers into the tiled layout: same outputs bit for bit, different
    bytes, state_dict() still canonical, load_state_dict() of canonical bytes into a tiled module
    re-tiles them, unprepack() gives the canonical bytes back."""
    torch.manual_seed(5)
    m = W4A8Linear.from_linear(nn.Linear(128, 48, bias=True).to(torch.bfloat16))
    x = torch.randn(3, 128).to(torch.bfloat16)
    y0, sd0 = m(x), {k: v.clone() for k, v in m.state_dict().items()}
    w0 = m.dequantize_weight()
    assert m.prepack() is m and m.tiled and "layout=tiled" in repr(m)
    assert not torch.equal(m.weight_packed, sd0["weight_packed"])
    assert torch.equal(m(x), y0)
    assert torch.equal(m.dequantize_weight(), w0)
    sd1 = m.state_dict()
    assert all(torch.equal(sd1[k].view(torch.uint8), sd0[k].view(torch.uint8)) for k in ("weight_packed", "weight_scale"))
    m2 = W4A8Linear(128, 48, bias=True).prepack()
    m2.load_state_dict(sd0)
    assert m2.tiled and torch.equal(m2.weight_packed, m.weight_packed) and torch.equal(m2(x), y0)
    compiled = torch.compile(m2, fullgraph=True, backend="aot_eager")
    assert torch.equal(compiled(x), y0)
    m.unprepack()
    assert not m.tiled and torch.equal(m.weight_packed, sd0["weight_packed"])
    assert torch.equal(m.weight_scale.view(torch.uint8), sd0["weight_scale"].view(torch.uint8))


def test_prepack_refuses_shapes_it_cannot_hold_and_ops_round_trip():
    from w4a8 import ops
    with pytest.raises(ValueError, match="in_features % 64"):
        W4A8Linear.from_linear(nn.Linear(96, 32).to(torch.bfloat16)).prepack()
    with pytest.raises(ValueError, match="out_features % 16"):
        W4A8Linear.from_linear(nn.Linear(128, 40).to(torch.bfloat16)).prepack()
    g = torch.Generator().manual_seed(6)
    packed = torch.randint(0, 256, (32, 96), dtype=torch.uint8, generator=g)
    scales = torch.randint(0, 256, (32, 12), dtype=torch.uint8, generator=g)
    tp, ts = ops.prepack_weight(packed, scales, 16)
    assert tp.shape == packed.shape and ts.shape == scales.shape
    # Hand-checked: row 17, bytes 68..71 (one word) of a 192-k weight are tile (1, 2), row 1,
    # bytes 4..7, with the word's bits permuted as w4a8/formats.hpp documents: tiled byte i =
    # sign(k_i) | e1(k_i+4) | sign(k_i+4) | e1 e0 m (k_i) | e0 m (k_i+4), bit 7 first.
    word = int.from_bytes(bytes(packed[17, 68:72].tolist()), "little")
    nib = [(word >> (4 * j)) & 0xF for j in range(8)]
    want = [((nib[i] >> 3) << 7) | (((nib[i + 4] >> 2) & 1) << 6) | ((nib[i + 4] >> 3) << 5) | ((nib[i] & 7) << 2)
            | (nib[i + 4] & 3) for i in range(4)]
    at = (1 * 3 + 2) * 512 + 32 + 4
    assert tp.flatten()[at:at + 4].tolist() == want
    bp, bs = ops.unprepack_weight(tp, ts, 16)
    assert torch.equal(bp, packed) and torch.equal(bs, scales)
    model = Toy().to(torch.bfloat16)
    got = replace_mlp_with_w4a8(model, prepack=True)
    assert all(m.tiled for m in got.values())  # 64 x 128 and 128 x 64 layers fit


def _power_of_two_scales(m: W4A8Linear, seed: int = 0):
    """Block scales replaced by powers of two: every product e2m1 * sb is then E4M3-exact."""
    g = torch.Generator().manual_seed(seed)
    e = torch.randint(-4, 4, m.weight_scale.shape, generator=g).float()
    with torch.no_grad():
        m.weight_scale.copy_(torch.exp2(e).to(torch.float8_e4m3fn))
    return m


def test_enable_fp8_on_the_cpu_reference():
    """The FP8 path's analysis runs on the CPU reference too: ModelOpt weights are lossy (kept on
    the exact path unless accepted), power-of-two block scales exact; the CPU forward always
    computes the exact path, so outputs do not change; state_dict round trips re-analyse."""
    torch.manual_seed(11)
    lin = nn.Linear(256, 64, bias=False).to(torch.bfloat16)
    m = W4A8Linear.from_linear(lin)
    x = torch.randn(5, 256).to(torch.bfloat16)
    y0 = m(x)
    assert m.enable_fp8() == "lossy" and m.fp8_mode == 2 and 0 < m.fp8_max_rel_error <= 1 / 16
    assert m.enable_fp8(allow_lossy=True) == "lossy" and m.fp8_mode == 3
    assert torch.equal(m(x), y0)
    assert "accepted" in repr(m)
    e = _power_of_two_scales(W4A8Linear.from_linear(lin))
    assert e.enable_fp8() == "exact" and e.fp8_mode == 1 and e.fp8_max_rel_error == 0.0
    m2 = W4A8Linear(256, 64)
    m2.enable_fp8()  # on zeros: exact, then re-analysed on load
    m2.load_state_dict(m.state_dict())
    assert m2.fp8_mode == 2 and m2.fp8_shift == m.fp8_shift
    # Fast accumulation (W4A8_FP8_FAST): only where the FP8 path runs at all, kept across loads.
    assert m.enable_fp8(fast_accumulation=True) == "lossy" and m.fp8_mode == 2
    assert m.enable_fp8(allow_lossy=True, fast_accumulation=True) == "lossy" and m.fp8_mode == 4
    assert "fast accumulation" in repr(m) and torch.equal(m(x), y0)
    assert e.enable_fp8(fast_accumulation=True) == "exact" and e.fp8_mode == 4
    m3 = W4A8Linear(256, 64)
    m3.enable_fp8(fast_accumulation=True)  # exact on zeros; the lossy bytes loaded keep it off
    m3.load_state_dict(m.state_dict())
    assert m3.fp8_mode == 2
    m3.enable_fp8(allow_lossy=True, fast_accumulation=True)
    m3.load_state_dict(m.state_dict())
    assert m3.fp8_mode == 4
    assert m3.disable_fp8().fp8_mode == 0
    with pytest.raises(ValueError):
        replace_mlp_with_w4a8(Toy(), fp8="maybe")


class HfMlp(nn.Module):
    """The attribute layout of Hugging Face's GemmaMLP / LlamaMLP."""

    def __init__(self, d, h, bias=False):
        super().__init__()
        self.gate_proj = nn.Linear(d, h, bias=bias)
        self.up_proj = nn.Linear(d, h, bias=bias)
        self.down_proj = nn.Linear(h, d, bias=bias)
        self.act_fn = nn.GELU(approximate="tanh")

    def forward(self, x):
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


class HfModel(nn.Module):
    def __init__(self, d=64, h=128, bias=False):
        super().__init__()
        self.layers = nn.ModuleList([nn.Module() for _ in range(2)])
        for l in self.layers:
            l.mlp = HfMlp(d, h, bias)

    def forward(self, x):
        for l in self.layers:
            x = x + l.mlp(x)
        return x


@pytest.mark.parametrize("bias", [False, True])
def test_fuse_gate_up_one_gemm_per_mlp(bias):
    from w4a8 import W4A8GatedMLP

    torch.manual_seed(3)
    model = HfModel(bias=bias)
    x = torch.randn(2, 5, 64)
    with torch.no_grad():
        ref = model(x)
    sep = HfModel(bias=bias)
    sep.load_state_dict(model.state_dict())
    replace_mlp_with_w4a8(sep)
    got = replace_mlp_with_w4a8(model, fuse_gate_up=True, check_error=True, sample_input=x)
    assert sorted(got) == ["layers.0.mlp.down_proj", "layers.0.mlp.gate_up_proj", "layers.1.mlp.down_proj",
                           "layers.1.mlp.gate_up_proj"]
    mlp = model.layers[0].mlp
    assert isinstance(mlp, W4A8GatedMLP) and isinstance(mlp.down_proj, W4A8Linear)
    assert mlp.gate_up_proj.out_features == 256 and mlp.intermediate_size == 128
    # openpi reads mlp.up_proj.weight.dtype; the halves answer like W4A8Linear does.
    assert mlp.up_proj.weight.dtype == torch.bfloat16 and tuple(mlp.gate_proj.weight.shape) == (128, 64)
    assert sorted(n for n, _ in mlp.named_children()) == ["act_fn", "down_proj", "gate_up_proj"]
    for _, (layer, err) in got.items():
        assert 0 < err < 0.2, err  # 4-bit weights, 8-bit activations (as the test above)
    xb = x.to(torch.bfloat16)
    with torch.no_grad():
        # A half called alone is its slice of the fused GEMM.
        h = mlp.gate_up_proj(xb)
        assert mlp.glu_act == _lib.GLU_GELU_TANH  # (nn.GELU("tanh"): the gated epilogue is on)
        h = ops.glu_deinterleave(h, h.dim() - 1)  # its rows are kept interleaved
        assert torch.equal(mlp.gate_proj(xb), h[..., :128]) and torch.equal(mlp.up_proj(xb), h[..., 128:])
        y_f, y_s = model(xb).float(), sep(xb).float()
    e_f = (torch.linalg.norm(y_f - ref) / torch.linalg.norm(ref)).item()
    e_s = (torch.linalg.norm(y_s - ref) / torch.linalg.norm(ref)).item()
    assert e_f < 0.2 and e_f < 1.5 * e_s + 1e-3, (e_f, e_s)  # one tensor scale for both halves: same error size
    # The fused weight is exactly [gate; up] quantized as one tensor.
    w = torch.cat([sep.layers[0].mlp.gate_proj.dequantize_weight(), sep.layers[0].mlp.up_proj.dequantize_weight()])
    assert torch.allclose(ops.glu_deinterleave(mlp.gate_up_proj.dequantize_weight()), w, rtol=0.3, atol=1e-3)
    # state_dict: the fused layer under its own name, no duplicated gate/up entries.
    keys = model.state_dict().keys()
    assert "layers.0.mlp.gate_up_proj.weight_packed" in keys and not any("gate_proj" in k for k in keys)


@pytest.mark.parametrize("bias", [False, True])
def test_gated_epilogue_equals_unfused_and_keeps_checkpoints_canonical(bias):
    """W4A8GatedMLP with the gated epilogue (glu=True) against the same fused layer without it:
    equal outputs (the CPU reference applies PyTorch's act to the same GEMM outputs), equal
    state_dicts ([gate; up] rows), and either loads the other's checkpoint; prepacked too."""
    from w4a8 import W4A8GatedMLP

    torch.manual_seed(8)
    for act in (nn.GELU(approximate="tanh"), nn.SiLU()):
        base = HfMlp(64, 128, bias)
        base.act_fn = act
        on = W4A8GatedMLP.from_mlp(base, glu=True)
        off = W4A8GatedMLP.from_mlp(base, glu=False)
        assert on.glu_act in (_lib.GLU_GELU_TANH, _lib.GLU_SILU) and off.glu_act == 0
        assert ("gelu_tanh" if isinstance(act, nn.GELU) else "silu") in repr(on)
        x = torch.randn(3, 7, 64).to(torch.bfloat16)
        with torch.no_grad():
            y_on, y_off = on(x), off(x)
        assert y_on.shape == (3, 7, 64) and torch.equal(y_on, y_off)
        x_many = torch.randn(on.GLU_MAX_ROWS + 9, 64).to(torch.bfloat16)  # past GLU_MAX_ROWS: act on the views
        with torch.no_grad():
            assert torch.equal(on(x_many), off(x_many))
        sd_on, sd_off = on.state_dict(), off.state_dict()
        assert sd_on.keys() == sd_off.keys()
        for k in sd_on:
            assert torch.equal(sd_on[k].view(torch.uint8) if sd_on[k].dtype == torch.float8_e4m3fn else sd_on[k],
                               sd_off[k].view(torch.uint8) if sd_off[k].dtype == torch.float8_e4m3fn else sd_off[k]), k
        other = HfMlp(64, 128, bias)
        other.act_fn = act
        other_on = W4A8GatedMLP.from_mlp(other, glu=True)
        other_on.load_state_dict(sd_off)
        with torch.no_grad():
            assert torch.equal(other_on(x), y_off)
        on.gate_up_proj.prepack()
        with torch.no_grad():
            assert torch.equal(on(x), y_off)
        assert torch.equal(on.state_dict()["gate_up_proj.weight_packed"], sd_off["gate_up_proj.weight_packed"])


def test_glu_act_of_recognizes_only_gelu_tanh_and_silu():
    from w4a8.modules import glu_act_of

    assert glu_act_of(nn.GELU(approximate="tanh")) == _lib.GLU_GELU_TANH
    assert glu_act_of(lambda t: nn.functional.gelu(t, approximate="tanh")) == _lib.GLU_GELU_TANH
    assert glu_act_of(nn.SiLU()) == _lib.GLU_SILU and glu_act_of(nn.functional.silu) == _lib.GLU_SILU
    for other in (nn.GELU(), torch.tanh, nn.ReLU(), lambda t: t * 2, lambda t: t.float(), lambda t: 1 / 0):
        assert glu_act_of(other) == 0


def test_linear_glu_op_registration():
    torch.manual_seed(9)
    w = (torch.randn(32, 64) * 0.05).to(torch.bfloat16)
    packed, scales, s2 = ops.quantize_weight(w, 16)
    x = torch.randn(3, 64).to(torch.bfloat16)
    torch.library.opcheck(torch.ops.w4a8.linear_glu.default,
                          (x, packed, scales.view(torch.uint8), s2, None, 1.0, 16, _lib.GLU_SILU),
                          test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))
    y = ops.linear_glu(x, packed, scales, s2, None, 1.0, 16, _lib.GLU_SILU)
    full = ops.glu_deinterleave(torch.ops.w4a8.linear(x, packed, scales, s2, None, 1.0, 16), 1)
    assert torch.equal(y, nn.functional.silu(full[:, :16]) * full[:, 16:])
    with pytest.raises(ValueError, match="act: expected"):
        ops.linear_glu(x, packed, scales, s2, None, 1.0, 16, 3)


def test_fuse_gate_up_respects_exclude_and_unfusable_modules():
    from w4a8 import W4A8GatedMLP

    model = HfModel()
    got = replace_mlp_with_w4a8(model, fuse_gate_up=True, exclude=["layers.1.mlp.up_proj", "layers.0.mlp.down_proj"])
    assert isinstance(model.layers[0].mlp, W4A8GatedMLP)
    assert isinstance(model.layers[0].mlp.down_proj, nn.Linear)  # excluded: stays BF16 inside the fused MLP
    assert not isinstance(model.layers[1].mlp, W4A8GatedMLP)  # up_proj excluded: no fusion, gate alone
    assert isinstance(model.layers[1].mlp.gate_proj, W4A8Linear) and isinstance(model.layers[1].mlp.up_proj, nn.Linear)
    assert "layers.0.mlp.gate_up_proj" in got and "layers.1.mlp.gate_proj" in got
    # Modules without act_fn (Toy's Mlp) are left as separate layers.
    toy = Toy()
    got = replace_mlp_with_w4a8(toy, fuse_gate_up=True)
    assert "layers.0.mlp.gate_proj" in got and not any(isinstance(m, W4A8GatedMLP) for m in toy.modules())
    with pytest.raises(TypeError, match="gate_proj and up_proj"):
        W4A8GatedMLP.from_mlp(nn.Module())


def test_fused_mlp_traces_under_torch_compile_fullgraph():
    model = HfModel()
    replace_mlp_with_w4a8(model, fuse_gate_up=True)
    x = torch.randn(4, 64).to(torch.bfloat16)
    with torch.no_grad():
        eager = model.layers[0].mlp(x)
        compiled = torch.compile(model.layers[0].mlp, fullgraph=True, backend="aot_eager")(x)
    assert torch.allclose(compiled.float(), eager.float(), rtol=2e-2, atol=2e-2)
