"""The ops' CPU path (the library's reference) against independent PyTorch constructions."""

import pytest
import torch

import w4a8
from w4a8 import ops

E4M3_MAX = 448.0


def torch_quantize_activation(x):
    """vLLM's per-row FP8 recipe written with PyTorch ops (independent of the library)."""
    xf = x.float()
    amax = xf.abs().amax(dim=1)
    s = torch.maximum(amax / E4M3_MAX, torch.tensor(1.0 / (448.0 * 512.0)))
    q = (xf * (1.0 / s)[:, None]).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn)
    return q.view(torch.uint8), s


def e2m1_round(v):
    a = v.abs()
    mag = ((a > 0.25).int() + (a >= 0.75).int() + (a > 1.25).int() + (a >= 1.75).int() + (a > 2.5).int()
           + (a >= 3.5).int() + (a > 5.0).int())
    vals = torch.tensor([0, 0.5, 1, 1.5, 2, 3, 4, 6])
    return vals[mag] * torch.sign(v)


def torch_quantize_weight_values(w, g):
    """ModelOpt's NVFP4 recipe with PyTorch ops: the dequantized values e2m1 * sb * s2."""
    wf = w.float()
    N, K = wf.shape
    s2 = wf.abs().amax() / 2688.0
    blocks = wf.reshape(N, K // g, g)
    sb = blocks.abs().amax(dim=2) / (6.0 * s2)
    sb = torch.where(sb == 0, torch.ones_like(sb), sb).clamp(2.0 ** -9, 448.0)
    sb = sb.to(torch.float8_e4m3fn).float()
    scale = sb * s2
    codes = e2m1_round(blocks / scale[:, :, None])
    return (codes * sb[:, :, None]).reshape(N, K), s2


@pytest.mark.parametrize("M,K", [(1, 16), (3, 48), (7, 1024), (16, 2064)])
def test_quantize_activation_matches_torch_bit_for_bit(M, K):
    torch.manual_seed(M * K)
    x = (torch.randn(M, K) * 3).to(torch.bfloat16)
    x[0, 0] = -7040.0  # outlier
    if M > 2:
        x[1] = 0  # zero row
    q, s = ops.quantize_activation(x)
    qt, st = torch_quantize_activation(x)
    assert torch.equal(s, st)
    assert torch.equal(q, qt)


@pytest.mark.parametrize("N,K,g", [(5, 64, 16), (8, 96, 32), (33, 256, 16)])
def test_quantize_weight_matches_torch_recipe(N, K, g):
    torch.manual_seed(N + K)
    w = (torch.randn(N, K) * 0.02).to(torch.bfloat16)
    packed, scales, s2 = ops.quantize_weight(w, g)
    assert packed.shape == (N, K // 2) and scales.shape == (N, K // g) and scales.dtype == torch.float8_e4m3fn
    vals, s2t = torch_quantize_weight_values(w, g)
    assert s2.item() == s2t.item()
    dq = ops.dequantize_weight(packed, scales, torch.ones(()), g, torch.float64)
    assert torch.equal(dq.float(), vals)


def test_gemm_and_linear_match_exact_reference():
    torch.manual_seed(0)
    M, N, K = 5, 24, 128
    x = torch.randn(M, K).to(torch.bfloat16)
    w = (torch.randn(N, K) * 0.05).to(torch.bfloat16)
    bias = torch.randn(N).to(torch.bfloat16)
    packed, scales, s2 = ops.quantize_weight(w, 16)
    q, s = ops.quantize_activation(x)
    y = torch.ops.w4a8.gemm(q, s, packed, scales, s2, bias, 0.5, 16)
    ref = 0.5 * ops.dequantize_activation(q, s, torch.float64) @ ops.dequantize_weight(packed, scales, s2, 16,
                                                                                        torch.float64).T + bias.double()
    assert torch.allclose(y.double(), ref, rtol=2 ** -7, atol=1e-6)
    y2 = torch.ops.w4a8.linear(x, packed, scales, s2, bias, 0.5, 16)
    assert torch.equal(y, y2)
    # `overlap` (w4a8.h) changes when kernels start, never what they compute; the library
    # validates it (0 or 1).
    assert torch.equal(torch.ops.w4a8.linear(x, packed, scales, s2, bias, 0.5, 16, 0, 0, 0, 1), y)
    assert torch.equal(torch.ops.w4a8.gemm(q, s, packed, scales, s2, bias, 0.5, 16, 0, 0, 0, 1), y)
    with pytest.raises(RuntimeError, match="overlap=2 must be 0 or 1"):
        torch.ops.w4a8.gemm(q, s, packed, scales, s2, bias, 0.5, 16, 0, 0, 0, 2)


def test_bad_inputs_raise_clear_errors():
    w = torch.randn(8, 64).to(torch.bfloat16)
    packed, scales, s2 = ops.quantize_weight(w, 16)
    x = torch.randn(3, 64).to(torch.bfloat16)
    with pytest.raises(TypeError, match="expected dtype torch.bfloat16, got torch.float32"):
        torch.ops.w4a8.linear(x.float(), packed, scales, s2, None, 1.0, 16)
    with pytest.raises(ValueError, match="expected 64 columns"):
        torch.ops.w4a8.linear(torch.randn(3, 32).to(torch.bfloat16), packed, scales, s2, None, 1.0, 16)
    with pytest.raises(ValueError, match="contiguous"):
        torch.ops.w4a8.linear(torch.randn(64, 3).to(torch.bfloat16).t(), packed, scales, s2, None, 1.0, 16)
    with pytest.raises(ValueError, match=r"weight_scale: expected shape \(8, 2\)"):
        torch.ops.w4a8.linear(x, packed, scales, s2, None, 1.0, 32)
    with pytest.raises(ValueError, match="multiple of group_size=16"):
        ops.quantize_weight(torch.randn(4, 40).to(torch.bfloat16), 16)
    with pytest.raises(ValueError, match="bias: expected shape"):
        torch.ops.w4a8.linear(x, packed, scales, s2, torch.zeros(7, dtype=torch.bfloat16), 1.0, 16)


def test_library_error_is_reported_with_detail():
    with pytest.raises(w4a8.W4A8Error, match="K=40 must be a multiple of group_size=16"):
        w4a8.kernel_name(1, 16, 40, 16)


def test_empty_batch():
    w = torch.randn(8, 64).to(torch.bfloat16)
    packed, scales, s2 = ops.quantize_weight(w, 16)
    y = torch.ops.w4a8.linear(torch.empty(0, 64, dtype=torch.bfloat16), packed, scales, s2, None, 1.0, 16)
    assert y.shape == (0, 8)


def test_linear_op_registration():
    """torch.ops.w4a8.linear (low-level torch.library registration, not @custom_op): schema, fake
    implementation and autograd registration pass torch.library.opcheck; backward raises."""
    torch.manual_seed(5)
    w = (torch.randn(16, 64) * 0.05).to(torch.bfloat16)
    packed, scales, s2 = ops.quantize_weight(w, 16)
    x = torch.randn(3, 64).to(torch.bfloat16)
    # (scales as uint8, which the op also takes: opcheck's schema test cannot compare FP8 tensors)
    torch.library.opcheck(torch.ops.w4a8.linear.default, (x, packed, scales.view(torch.uint8), s2, None, 1.0, 16),
                          test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))
    xg = x.clone().requires_grad_()
    y = torch.ops.w4a8.linear(xg, packed, scales, s2, None, 1.0, 16)
    assert torch.equal(y.detach(), torch.ops.w4a8.linear(x, packed, scales, s2, None, 1.0, 16))
    with pytest.raises(RuntimeError, match="w4a8::linear has no backward"):
        y.float().sum().backward()
    assert torch.equal(ops.linear(x, packed, scales, s2, None, 1.0, 16), y.detach())
