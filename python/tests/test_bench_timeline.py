"""bench/timeline.py (the per-kernel split of a trace's time into advance, overlap and gaps) on
made-up kernel timelines whose answers are worked out by hand. CPU only."""
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
import timeline  # noqa: E402


def _write(tmp_path, kernels, name="t.json"):
    ev = [{"cat": "kernel", "ts": ts, "dur": dur, "name": n} for ts, dur, n in kernels]
    # what a Chrome trace also holds and the summary must ignore: runtime calls, markers
    ev += [{"cat": "cuda_runtime", "ts": 0.0, "dur": 50.0, "name": "cudaGraphLaunch"},
           {"cat": "kernel", "ts": 1.0, "name": "instant without dur", "ph": "i"}]
    p = tmp_path / name
    p.write_text(json.dumps({"traceEvents": ev}))
    return p


Q = "void w4a8::kernels::quantize_activation_regs_kernel<4, 1024, true>(...)"
G = "void w4a8::kernels::mma_exact_kernel<16, 4, 2, 4, 16, 2, true>(w4a8::kernels::GemmParams, long)"
W = "void w4a8::kernels::wgmma_exact_kernel<16, 248, true, false, 1>(...)"
R = "void w4a8::kernels::splitk_reduce_kernel<false>(...)"
C = "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize2x1x1"


def test_advance_overlap_and_gaps_add_up_to_the_span(tmp_path):
    # quantizer 0-2; GEMM starts early at 1 (prefetch), ends 5; idle 5-5.5; quantizer 5.5-6;
    # GEMM 5.8-9; a kernel wholly inside another (6.5-7) advances nothing.
    p = _write(tmp_path, [(0.0, 2.0, Q), (1.0, 4.0, G), (5.5, 0.5, Q), (5.8, 3.2, G), (6.5, 0.5, R)])
    ks = timeline.kernels(p)
    assert len(ks) == 5  # the runtime call and the instant event are not kernels
    out, span = timeline.summarize(ks)
    assert span == pytest.approx(9.0)
    n, durs, adv, ovl, gap = out["mma GEMM"]
    assert (n, adv, ovl, gap) == (2, pytest.approx(6.0), pytest.approx(1.2), pytest.approx(0.0))
    n, durs, adv, ovl, gap = out["quantizer"]
    assert (n, adv, ovl, gap) == (2, pytest.approx(2.5), pytest.approx(0.0), pytest.approx(0.5))
    assert out["split-K reduce"][2] == pytest.approx(0.0) and out["split-K reduce"][3] == pytest.approx(0.5)
    total_adv = sum(v[2] for v in out.values())
    total_gap = sum(v[4] for v in out.values())
    assert total_adv + total_gap == pytest.approx(span)


def test_roles():
    assert timeline.role(Q) == "quantizer"
    assert timeline.role(G) == "mma GEMM"
    assert timeline.role(W) == "wgmma GEMM"
    assert timeline.role(R) == "split-K reduce"
    assert timeline.role("void w4a8::kernels::permute_fp8_kernel<F16pUnit, 8, true>(...)") == "prologue"
    assert timeline.role(C) == "cuBLAS / other"


def test_per_layer_cuts_calls_and_refuses_a_ragged_count(tmp_path):
    # two layers of types A, B: fused calls (quantizer + GEMM), B's GEMM split-K (+ reduce)
    ks = timeline.kernels(_write(tmp_path, [
        (0.0, 1.0, Q), (1.0, 2.0, G),                   # call 0 (type 0): 3 us
        (3.0, 1.0, Q), (4.0, 2.0, W), (6.0, 1.0, R),    # call 1 (type 1): 4 us
        (7.0, 1.0, Q), (8.0, 1.0, G),                   # call 2 (type 0): 2 us
        (9.0, 1.0, Q), (10.0, 3.0, W), (13.0, 1.0, R),  # call 3 (type 1): 5 us
    ]))
    per, n = timeline.per_layer(ks, types=2)
    assert n == 4
    assert per == [pytest.approx(5.0), pytest.approx(9.0)]
    assert timeline.per_layer(ks, types=3) is None  # 4 calls are not whole layers of 3
    # GEMM-only calls (no quantizer): each GEMM starts a call
    ks = timeline.kernels(_write(tmp_path, [(0.0, 1.0, G), (1.0, 1.0, G), (2.0, 2.0, C), (4.0, 1.0, G)], "g.json"))
    assert timeline.per_layer(ks, types=4) == ([1.0, 1.0, 2.0, 1.0], 4)


def test_main_prints_a_table_per_timeline(tmp_path, capsys):
    _write(tmp_path, [(0.0, 2.0, Q), (1.0, 4.0, G)], "pi05_trace-expert-fused.json")
    assert timeline.main(["timeline.py", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "### pi05_trace-expert-fused: 2 kernels, span 5.0 us" in out
    assert "| mma GEMM | 1 | 4.00 | 4.0 | 3.0 | 1.0 | 0.0 |" in out
    assert timeline.main(["timeline.py", str(tmp_path / "empty")]) == 1
