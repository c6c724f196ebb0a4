#!/usr/bin/env python3
"""SM clock and board power while one GEMM runs back to back, on the GPU machine.

The harness (bench.py) reports microseconds; turning them into clocks per pipeline stage (what
the kernel probes of BENCHMARKS.md measure) needs the SM clock the kernel actually ran at, which
under a full tensor-core load is set by the power limit, not by the boost clock. For each
problem M x N x K: this library's dispatched call (FP8 input, as bench.py times it), cuBLAS BF16
and cuBLASLt FP8 with row-wise scales, each as a CUDA graph of calls over weights rotated past
3x the L2, replayed back to back for --seconds while nvidia-smi samples the SM clock and the
board power every 20 ms. Prints per call: us, median SM MHz and W over the window (first
0.3 s dropped), and us x MHz = kilo-clocks per call.

  python3 bench/clocks.py --build build --problems 968x16384x2048,968x2048x16384 --seconds 2
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (the harness: its Lib, weights, graph timing)
from w4a8 import _lib  # noqa: E402


def replay_with_clocks(calls, seconds: float):
    """us per call (graph replays timed with events) and the median (MHz, W) sampled meanwhile."""
    g, n = bench.capture_graph(calls)
    smi = subprocess.Popen(["nvidia-smi", "--query-gpu=clocks.sm,power.draw", "--format=csv,noheader,nounits",
                            "-lms", "20"], stdout=subprocess.PIPE, text=True)
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start = time.time()
    replays = 0
    a.record()
    while time.time() - start < seconds:
        for _ in range(10):
            g.replay()
        replays += 10
        torch.cuda.synchronize()  # keeps the host loop's view of elapsed time honest
    b.record()
    torch.cuda.synchronize()
    smi.terminate()
    out, _ = smi.communicate()
    samples = []
    for line in out.strip().splitlines():
        try:
            mhz, watts = (float(v) for v in line.split(","))
            samples.append((mhz, watts))
        except ValueError:
            continue
    samples = samples[15:]  # the first ~0.3 s: nvidia-smi start-up and the clock ramp
    us = a.elapsed_time(b) * 1e3 / (replays * n)
    if not samples:
        return us, float("nan"), float("nan")
    return us, statistics.median(m for m, _ in samples), statistics.median(w for _, w in samples)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=str(bench.REPO / "build-gpu"))
    ap.add_argument("--problems", default="968x16384x2048,968x2048x16384,4096x16384x2048",
                    help="comma-separated MxNxK")
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    lib = bench.Lib(Path(args.build))
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    gen = torch.Generator(device="cuda").manual_seed(7)
    print(f"# {torch.cuda.get_device_name(0)}; per call: us, median SM MHz, median W, kilo-clocks (us x MHz / 1e3)")
    for prob in args.problems.split(","):
        M, N, K = (int(v) for v in prob.split("x"))
        w_bf16 = (torch.randn(N, K, device="cuda", generator=gen) * 0.02).to(torch.bfloat16)
        nv = lib.rotated_weights(w_bf16, l2, bench.layout_for(M, N, K))
        x = torch.randn(M, K, device="cuda", generator=gen).to(torch.bfloat16)
        q, s = lib.quantize_act(x)
        y = torch.empty(M, N, dtype=torch.bfloat16, device="cuda")
        gws = lib.gemm_workspace(M, N, K)
        bf = [w_bf16] + [w_bf16.clone() for _ in range(bench.copies_for(N * K * 2, l2) - 1)]
        wq8, sw8 = bench.fp8_rowwise(w_bf16)
        f8 = [wq8] + [wq8.clone() for _ in range(bench.copies_for(N * K, l2) - 1)]
        xq8, sa = q.view(torch.float8_e4m3fn), s.reshape(M, 1)
        rows = [
            (f"w4a8 {_lib.kernel_name(M, N, K, bench.GROUP)}", [lambda w=w: lib.gemm(q, s, w, y, M, gws) for w in nv]),
        ]
        if nv[0]["layout"] == "canonical":  # the FP8 path (opt-in), on copies prepared for it
            n8 = lib.rotated_weights(w_bf16, l2, "canonical")
            for w in n8:
                lib.prepare_fp8(w)
            rows.append((_lib.weight_kernel_name(n8[0]["struct"], M, _lib.KERNEL_WGMMA_FP8),
                         [lambda w=w: lib.gemm(q, s, w, y, M, gws, kernel=_lib.KERNEL_WGMMA_FP8) for w in n8]))
        rows += [
            ("cuBLAS BF16", [lambda w=w: torch.mm(x, w.t(), out=y) for w in bf]),
            ("cuBLASLt FP8 row-wise", [lambda w=w: torch._scaled_mm(xq8, w.t(), scale_a=sa, scale_b=sw8,
                                                                    out_dtype=torch.bfloat16) for w in f8]),
        ]
        for name, calls in rows:
            time.sleep(1.0)  # as bench.py: let the clocks recover between heavy rows
            us, mhz, watts = replay_with_clocks(calls, args.seconds)
            print(f"{M}x{N}x{K}  {name:<40} {us:9.2f} us  {mhz:6.0f} MHz  {watts:5.0f} W  {us * mhz / 1e3:9.1f} kclk",
                  flush=True)


if __name__ == "__main__":
    main()
