"""GPU tests of the PyTorch front end (skipped without a GPU)."""
import ctypes

import pytest
import torch
from torch import nn

from conftest import cuda_or_skip
from w4a8 import W4A8Linear, _lib, ops, replace_mlp_with_w4a8


@pytest.fixture(autouse=True)
def _gpu():
    cuda_or_skip()


def graph_replay(fn):
    """fn() captured in a CUDA graph (after a warm-up call on a side stream, as PyTorch asks) and
    replayed once: the graph's output."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        y = fn()
    g.replay()
    torch.cuda.synchronize()
    return y


@pytest.mark.parametrize("M,N,K,g", [(1, 2048, 2048, 16), (50, 4096, 1024, 16), (7, 100, 96, 32), (300, 256, 2048, 16)])
def test_quantizers_gpu_equal_cpu_reference(M, N, K, g):
    torch.manual_seed(M + N)
    x = (torch.randn(M, K) * 4).to(torch.bfloat16)
    w = (torch.randn(N, K) * 0.02).to(torch.bfloat16)
    qc, sc = ops.quantize_activation(x)
    qg, sg = ops.quantize_activation(x.cuda())
    assert torch.equal(qc, qg.cpu()) and torch.equal(sc, sg.cpu())
    pc, bc, s2c = ops.quantize_weight(w, g)
    pg, bg, s2g = ops.quantize_weight(w.cuda(), g)
    assert torch.equal(bc.view(torch.uint8), bg.view(torch.uint8).cpu()) and s2c.item() == s2g.item()
    assert torch.equal(ops.dequantize_weight(pc, bc, s2c, g), ops.dequantize_weight(pg, bg, s2g, g).cpu())


def test_module_equals_direct_library_call_and_cpu_reference():
    torch.manual_seed(1)
    lin = nn.Linear(2048, 1000, bias=True).to(torch.bfloat16)
    m_cpu = W4A8Linear.from_linear(lin)
    m = W4A8Linear.from_linear(lin.cuda())
    x = torch.randn(3, 17, 2048).to(torch.bfloat16).cuda()
    y = m(x)
    # Bit-exact with the C API called directly on the same operands.
    x2 = x.reshape(-1, 2048)
    y_direct = torch.empty(x2.shape[0], 1000, dtype=torch.bfloat16, device="cuda")
    ws = torch.empty(_lib.linear_workspace_size(x2.shape[0], 1000, 2048, 16), dtype=torch.uint8, device="cuda")
    wt = _lib.Weight(m.weight_packed.data_ptr(), m.weight_scale.data_ptr(), m.weight_scale_2.data_ptr(),
                     m.bias.data_ptr(), 1000, 2048, 16)
    _lib.check(_lib.lib().w4a8_linear_bf16(x2.data_ptr(), ctypes.byref(wt), y_direct.data_ptr(), x2.shape[0], 1.0,
                                           ws.data_ptr(), ws.numel(), torch.cuda.current_stream().cuda_stream))
    assert torch.equal(y.reshape(-1, 1000), y_direct)
    # Same as the CPU reference path, up to FP32 summation order and one BF16 rounding.
    y_cpu = m_cpu(x.cpu())
    assert torch.allclose(y.cpu().float(), y_cpu.float(), rtol=2 ** -7, atol=1e-3)


def test_eager_plan_follows_the_buffers():
    """The eager fast path caches the weight's C struct; it must follow load_state_dict (in
    place), a moved module (new addresses) and a replaced bias, and equal the custom op."""
    torch.manual_seed(3)
    a = W4A8Linear.from_linear(nn.Linear(512, 300, bias=True).to(torch.bfloat16).cuda())
    b = W4A8Linear.from_linear(nn.Linear(512, 300, bias=True).to(torch.bfloat16).cuda())
    x = torch.randn(5, 512).to(torch.bfloat16).cuda()
    op_x = lambda m, xx: torch.ops.w4a8.linear(xx, m.weight_packed, m.weight_scale, m.weight_scale_2, m.bias,
                                               m.alpha, m.group_size)
    op = lambda m: op_x(m, x)
    assert torch.equal(a(x), op(a))
    a.load_state_dict(b.state_dict())  # in place: same addresses, new values
    assert torch.equal(a(x), op(b))
    a.bias = torch.zeros(300, dtype=torch.bfloat16, device="cuda")  # new buffer, new address
    assert torch.equal(a(x), op(a))
    if torch.cuda.device_count() > 1:
        a2 = a.to("cuda:1")
        assert torch.equal(a2(x.to("cuda:1")).cpu(), a(x).cpu())
    # Once the plan exists (the eager fast path, W4A8Linear._eager): N-D and non-contiguous
    # inputs equal the custom op on the same rows, and bad inputs still get the general path's errors.
    x3 = torch.randn(2, 3, 512).to(torch.bfloat16).cuda()
    assert a.__dict__.get("_eager_plan") is not None
    assert torch.equal(a(x3).reshape(6, 300), op_x(a, x3.reshape(6, 512)))
    xt = torch.randn(512, 7).to(torch.bfloat16).cuda().t()  # non-contiguous [7, 512]
    assert torch.equal(a(xt), op_x(a, xt.contiguous()))
    with pytest.raises(TypeError, match="expected a bfloat16 input"):
        a(x.float())
    with pytest.raises(ValueError, match=r"expected input \[..., 512\]"):
        a(x[:, :256])
    with pytest.raises(ValueError, match="input on cpu"):
        a(x.cpu())
    with pytest.raises(ValueError, match="bias: expected shape"):
        a.bias = torch.zeros(299, dtype=torch.bfloat16, device="cuda")
        a(x)


def test_linear_op_plans_follow_their_arguments():
    """torch.ops.w4a8.linear keeps a validated plan per weight (ops._op_plan): repeated calls,
    in-place writes of the weight, other weights and bad arguments behave as without it."""
    torch.manual_seed(6)
    a = W4A8Linear.from_linear(nn.Linear(256, 96, bias=True).to(torch.bfloat16).cuda())
    b = W4A8Linear.from_linear(nn.Linear(256, 96, bias=True).to(torch.bfloat16).cuda())
    x = torch.randn(7, 256).to(torch.bfloat16).cuda()
    op = lambda m, xx=x, bias=None: torch.ops.w4a8.linear(xx, m.weight_packed, m.weight_scale, m.weight_scale_2,
                                                          m.bias if bias is None else bias, 1.0, 16)
    y_a, y_b = op(a), op(b)
    assert torch.equal(op(a), y_a) and not torch.equal(y_a, y_b)
    with torch.no_grad():  # in place: same addresses (same plan), new bytes
        for name in ("weight_packed", "weight_scale", "weight_scale_2", "bias"):
            getattr(a, name).copy_(getattr(b, name))
    assert torch.equal(op(a), y_b)
    with pytest.raises(ValueError, match="expected 256 columns"):
        op(a, torch.randn(7, 128).to(torch.bfloat16).cuda())
    with pytest.raises(TypeError, match="expected dtype torch.bfloat16"):
        op(a, x.float())
    with pytest.raises(ValueError, match="bias: expected shape"):
        op(a, bias=torch.zeros(95, dtype=torch.bfloat16, device="cuda"))
    with pytest.raises(RuntimeError, match="overlap=2 must be 0 or 1"):
        torch.ops.w4a8.linear(x, a.weight_packed, a.weight_scale, a.weight_scale_2, None, 1.0, 16, 0, 0, 0, 2)


def test_overlap_chain_equals_serial_and_sees_in_place_writes():
    """`overlap` (the default): each layer starts while the one before finishes. A chain whose
    inputs are the previous outputs must equal the serial chain bit for bit (eager, compiled,
    CUDA graph), and a call right after an in-place write of its weights must use the new bytes."""
    torch.manual_seed(4)
    layers = [W4A8Linear.from_linear(nn.Linear(1024, 1024, bias=i % 2 == 0).to(torch.bfloat16).cuda())
              for i in range(8)]
    x = torch.randn(16, 1024).to(torch.bfloat16).cuda()

    seq = nn.Sequential(*layers)

    def chain(overlap):
        for m in layers:
            m.overlap = overlap
        return seq(x)

    serial = chain(False)
    assert torch.equal(chain(True), serial)
    assert torch.equal(torch.compile(seq, fullgraph=True)(x), serial)
    assert torch.equal(graph_replay(lambda: seq(x)), serial)
    # In-place writes right before the call (the copy kernels precede the GEMM directly).
    other = W4A8Linear.from_linear(nn.Linear(1024, 1024, bias=True).to(torch.bfloat16).cuda())
    want = other(x)
    m = layers[0]
    m(x)  # a plan that would overlap
    assert m._plan().struct.overlap == 1  # (from a plan's second call on)
    m.weight_packed.copy_(other.weight_packed)
    m.weight_scale.copy_(other.weight_scale)
    m.weight_scale_2.copy_(other.weight_scale_2)
    m.bias.copy_(other.bias)
    assert m._plan().struct.overlap == 0  # new bytes, new plan: its first call runs serial
    assert torch.equal(m(x), want)
    assert m._plan().struct.overlap == 1


def test_cuda_graph_and_compile_equal_eager():
    torch.manual_seed(2)
    m = W4A8Linear.from_linear(nn.Linear(1024, 4096).to(torch.bfloat16).cuda())
    x = torch.randn(50, 1024).to(torch.bfloat16).cuda()
    eager = m(x)
    compiled = torch.compile(m, fullgraph=True)
    assert torch.equal(compiled(x), eager)
    assert torch.equal(graph_replay(lambda: m(x)), eager)


@pytest.mark.parametrize("M", [1, 50, 300, 968])
def test_gated_epilogue_equals_torch_act_on_the_gemm_outputs(M):
    """W4A8GatedMLP's gated epilogue (GELU tanh, SiLU) against the same fused layer without it
    (our GEMM, then PyTorch's CUDA act_fn(gate) * up): bit for bit, eagerly, in a CUDA graph and
    compiled; M reaches the mma kernel (1, 50, and 300 on this 1024-wide layer by rule (7)) and
    the wgmma kernel (968)."""
    from w4a8 import W4A8GatedMLP

    torch.manual_seed(11)

    class Mlp(nn.Module):
        def __init__(self, act):
            super().__init__()
            self.gate_proj, self.up_proj = nn.Linear(1024, 2048, bias=True), nn.Linear(1024, 2048, bias=True)
            self.down_proj, self.act_fn = nn.Linear(2048, 1024), act

    for act in (nn.GELU(approximate="tanh"), nn.SiLU()):
        base = Mlp(act).to(torch.bfloat16).cuda()
        on = W4A8GatedMLP.from_mlp(base, glu=True)
        off = W4A8GatedMLP.from_mlp(base, glu=False)
        assert on.glu_act != 0 and off.glu_act == 0
        x = torch.randn(M, 1024, device="cuda").to(torch.bfloat16) * 3
        with torch.no_grad():
            h_on = on.gate_up_proj.forward_glu(x, on.glu_act)
            full = off.gate_up_proj(x)
            h_off = act(full[:, :2048]) * full[:, 2048:]
            assert h_on.shape == (M, 2048)
            diff = (h_on != h_off).sum().item()
            assert diff == 0, f"{act}: {diff} of {h_on.numel()} differ"
            y = on(x)  # (gated up to GLU_MAX_ROWS tokens, unfused above: the same bits either way)
            assert torch.equal(y, off(x))
            assert torch.equal(graph_replay(lambda: on(x)), y)
            assert torch.equal(torch.compile(on.gate_up_proj.forward_glu, fullgraph=True)(x, on.glu_act), h_on)


@pytest.mark.parametrize("fuse", [False, True])
@pytest.mark.parametrize("which", ["backbone", "expert"])
def test_gemma_decoder_layer_with_w4a8_mlp(which, fuse):
    pytest.importorskip("transformers")
    import gemma_util

    shape = gemma_util.BACKBONE if which == "backbone" else gemma_util.EXPERT
    layer, call = gemma_util.make_layer(shape, outliers="balanced")
    M = 50
    x = torch.randn(1, M, shape["hidden_size"], device="cuda").to(torch.bfloat16)
    with torch.no_grad():
        mid = layer.mlp.up_proj(layer.post_attention_layernorm(x)).float()
        assert mid[..., :4].abs().max() > 5 * mid[..., 4:].abs().max(), "outlier channels injected"
        ref = call(x).float()
        replaced = replace_mlp_with_w4a8(layer, fuse_gate_up=fuse)
        assert sorted(replaced) == (["mlp.down_proj", "mlp.gate_up_proj"] if fuse else
                                    ["mlp.down_proj", "mlp.gate_proj", "mlp.up_proj"])
        assert layer.mlp.up_proj.weight.dtype == torch.bfloat16  # what openpi reads
        y = call(x)
        cos = nn.functional.cosine_similarity(y.float().flatten(), ref.flatten(), dim=0).item()
        assert cos >= 0.99, cos
        # The same layer captured in a CUDA graph gives the eager output bit for bit.
        assert torch.equal(graph_replay(lambda: call(x)), y)
        # Under torch.compile(fullgraph=True) the W4A8 ops run unchanged (bit-exact, see
        # test_cuda_graph_and_compile_equal_eager); Inductor fuses the surrounding BF16 ops
        # (RMSNorm, gelu(gate) * up) with one rounding instead of several, and the down_proj's
        # per-row FP8 quantization sees those slightly different inputs. So the whole layer is
        # compared closely, not bit for bit.
        yc = torch.compile(call, fullgraph=True)(x)
        cos_c = nn.functional.cosine_similarity(yc.float().flatten(), y.float().flatten(), dim=0).item()
        assert cos_c > 0.999, cos_c
        print(f"{which}{' (gate/up fused)' if fuse else ''}: cosine vs BF16 {cos:.5f}, compiled vs eager {cos_c:.6f}")


def test_prepack_on_gpu_equals_cpu_and_keeps_results():
    """GPU prepack = the CPU reference's bytes; a tiled module gives the canonical module's
    results within a BF16 rounding, eagerly, compiled and in a CUDA graph (the same bits as its
    eager calls)."""
    torch.manual_seed(7)
    lin = nn.Linear(2048, 1024, bias=True).to(torch.bfloat16)
    m = W4A8Linear.from_linear(lin.cuda())
    cpu_p, cpu_s = ops.prepack_weight(m.weight_packed.cpu(), m.weight_scale.cpu(), 16)
    xs = [torch.randn(M, 2048).to(torch.bfloat16).cuda() for M in (1, 50, 968)]
    want = [m(x) for x in xs]
    m.prepack()
    assert torch.equal(m.weight_packed.cpu(), cpu_p)
    assert torch.equal(m.weight_scale.cpu().view(torch.uint8), cpu_s.view(torch.uint8))
    got = [m(x) for x in xs]
    # The tiled words pair their k differently in the MMAs of both kernels (w4a8/formats.hpp;
    # the prefill kernel takes its activations in the matching order), so FP32 sums may round
    # differently: within a BF16 rounding of the canonical result.
    for y, w in zip(got, want):
        d = (y.float() - w.float()).abs()
        assert (d <= w.float().abs() * 2.0**-7 + 1e-3 * w.float().abs().max()).all(), d.max()
    compiled = torch.compile(m, fullgraph=True)
    assert torch.equal(compiled(xs[1]), got[1])
    assert torch.equal(graph_replay(lambda: m(xs[0])), got[0])



def test_fp8_path_exact_weights_and_opt_in():
    """enable_fp8(): an exact weight (power-of-two block scales) runs the FP8 tensor-core path at
    prefill sizes with the exact path's results up to summation order; a ModelOpt weight stays
    on the exact path (bit for bit) until allow_lossy=True, then differs by about the reported
    product error; torch.compile and CUDA graphs carry the mode."""
    torch.manual_seed(21)
    lin = nn.Linear(2048, 2048, bias=True).to(torch.bfloat16).cuda()
    x = torch.randn(1000, 2048).to(torch.bfloat16).cuda()
    m = W4A8Linear.from_linear(lin)
    with torch.no_grad():
        e = torch.randint(-4, 4, m.weight_scale.shape, device="cuda").float()
        m.weight_scale.copy_(torch.exp2(e).to(torch.float8_e4m3fn))
    y_exact = m(x)
    assert m.enable_fp8() == "exact"
    assert "fp8" in _lib.weight_kernel_name(ops._weight_struct(m.weight_packed, m.weight_scale, m.weight_scale_2, None,
                                                                16, 0, m.fp8_mode, m.fp8_shift), 1000)
    y_fp8 = m(x)
    rel = (torch.linalg.norm(y_fp8.float() - y_exact.float()) / torch.linalg.norm(y_exact.float())).item()
    assert rel < 4e-3, rel
    compiled = torch.compile(m, fullgraph=True)
    assert torch.equal(compiled(x), y_fp8)
    # A ModelOpt weight: lossy, exact path unless accepted.
    n = W4A8Linear.from_linear(lin)
    y0 = n(x)
    assert n.enable_fp8() == "lossy"
    assert torch.equal(n(x), y0)
    n.enable_fp8(allow_lossy=True)
    y1 = n(x)
    rel = (torch.linalg.norm(y1.float() - y0.float()) / torch.linalg.norm(y0.float())).item()
    assert 1e-3 < rel < 4 * n.fp8_max_rel_error, (rel, n.fp8_max_rel_error)
    assert torch.equal(graph_replay(lambda: n(x)), y1)
    # Fast accumulation: the kernels without promotion run, within the summation's extra error of
    # the promoted result: 128-token tiles on this layer (64 tiles of 256 tokens would leave SMs
    # idle), 256-token ones on 8192 channels.
    def kernel_of(mod):
        return _lib.weight_kernel_name(ops._weight_struct(mod.weight_packed, mod.weight_scale, mod.weight_scale_2,
                                                          None, 16, 0, mod.fp8_mode, mod.fp8_shift), x.shape[0])
    n.enable_fp8(allow_lossy=True, fast_accumulation=True)
    assert kernel_of(n).startswith("wgmma_fp8_fast_bm128"), kernel_of(n)
    y2 = n(x)
    rel = (torch.linalg.norm(y2.float() - y1.float()) / torch.linalg.norm(y1.float())).item()
    assert 0 < rel < 4e-3, rel
    f = W4A8Linear.from_linear(nn.Linear(2048, 8192, bias=True).to(torch.bfloat16).cuda())
    f.enable_fp8(allow_lossy=True)
    ya = f(x)
    f.enable_fp8(allow_lossy=True, fast_accumulation=True)
    assert kernel_of(f).startswith("wgmma_fp8_fast_bm256"), kernel_of(f)
    yb = f(x)
    rel = (torch.linalg.norm(yb.float() - ya.float()) / torch.linalg.norm(ya.float())).item()
    assert 0 < rel < 4e-3, rel
    assert torch.equal(graph_replay(lambda: f(x)), yb)
    n.disable_fp8()
    assert torch.equal(n(x), y0)
