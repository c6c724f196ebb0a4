"""Where a dispatched wgmma GEMM's time goes, per CTA, from a library built with the session-28
timeline experiment (bench/experiments/s28-wgmma-timeline.patch: gemm_wgmma.cu records
%globaltimer at points of each CTA's life, the FP8 -> FP16 prologue its CTAs' entry and exit):

    python3 bench/experiments/wgmma_timeline.py [BUILD [LAYOUT]]      (LAYOUT: canonical, the default, or tiled)

For each problem: w4a8_gemm on FP8 input with its workspace, weights rotated past 3x the L2,
captured in a CUDA graph and replayed as bench.py times them; the records are the
last call's. Times in us, relative to the end of that call's prologue (the last of its CTAs
to exit); medians over CTAs unless marked max / min.
"""
from __future__ import annotations

import ctypes
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import Lib, _lib, graph_time  # noqa: E402

NG, NP = 4096 * 8, 4096 * 2


def main():
    build = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "build"
    layout = sys.argv[2] if len(sys.argv) > 2 else "canonical"
    lib = Lib(build)
    L = lib.L
    L.w4a8_debug_wgmma_timeline.argtypes = [ctypes.c_void_p]
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    gen = torch.Generator(device="cuda").manual_seed(5)
    host = (ctypes.c_ulonglong * (NG + NP))()
    print("M x N x K, kernel | graph us per call | prologue: CTAs, first entry, last exit | GEMM: CTAs, entry first / "
          "median / last, after the wait first / median / last, first TMA, first stage in, main loop end median / max, "
          "epilogue end median / max")
    for M, N, K in [(50, 16384, 2048), (128, 16384, 2048), (50, 32768, 2048), (968, 16384, 2048), (384, 2048, 2048),
                    (192, 4096, 1024), (640, 4096, 1024), (384, 1024, 4096)]:
        w_bf16 = (torch.randn(N, K, device="cuda", generator=gen) * 0.02).to(torch.bfloat16)
        ws = lib.rotated_weights(w_bf16, l2, layout=layout)
        q, s = lib.quantize_act(torch.randn(M, K, device="cuda", generator=gen).to(torch.bfloat16))
        y = torch.empty(M, N, dtype=torch.bfloat16, device="cuda")
        work = Lib.gemm_workspace(M, N, K)
        us = graph_time([lambda w=w: lib.gemm(q, s, w, y, M, work) for w in ws])
        torch.cuda.synchronize()
        assert L.w4a8_debug_wgmma_timeline(host) == 0
        g = [host[i * 8:(i + 1) * 8] for i in range(4096)]
        p = [host[NG + 2 * i:NG + 2 * i + 2] for i in range(4096)]
        g = [r for r in g if r[0] and r[5]]
        p = [r for r in p if r[0] and r[1]]
        kname = _lib.kernel_name(M, N, K, 16)
        if not g or not p:
            print(f"{M} x {N} x {K} {kname}: no records (not a wgmma problem?)")
            continue
        t0 = max(r[1] for r in p)  # the prologue's last exit
        f = lambda v: (v - t0) / 1e3  # noqa: E731
        med = lambda k: statistics.median(f(r[k]) for r in g)  # noqa: E731
        print(f"{M} x {N} x {K} {kname} | {us:.2f} | prologue {len(p)} CTAs, {f(min(r[0] for r in p)):+.2f} .. 0 | "
              f"GEMM {len(g)} CTAs, entry {f(min(r[0] for r in g)):+.2f} / {med(0):+.2f} / {f(max(r[0] for r in g)):+.2f}, "
              f"waited {f(min(r[1] for r in g)):+.2f} / {med(1):+.2f} / {f(max(r[1] for r in g)):+.2f}, "
              f"TMA {med(2):+.2f}, stage 0 in {med(3):+.2f} (max {f(max(r[3] for r in g)):+.2f}), "
              f"loop end {med(4):+.2f} / {f(max(r[4] for r in g)):+.2f}, "
              f"end {med(5):+.2f} / {f(max(r[5] for r in g)):+.2f}", flush=True)


if __name__ == "__main__":
    main()
