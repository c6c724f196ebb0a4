#!/usr/bin/env python3
"""PyTorch front end costs (issue 5), on a GPU machine:

1. W4A8Linear inside a CUDA graph vs the raw library call (w4a8_linear_bf16 through ctypes)
   in a CUDA graph, same weights (rotated past 3x L2), same inputs: the module's cost in a graph.
2. Eager host overhead per W4A8Linear call: host time of 200 back-to-back calls (no sync; few
   enough that the launch queue does not fill, so the GPU's time does not count), best of 5;
   the same for the raw library call through ctypes (stream handle precomputed) and for
   nn.Linear in BF16 (cuBLAS), for scale.
3. One Gemma decoder layer of pi0.5's backbone and expert shapes (Hugging Face), BF16 vs the
   same layer with its MLP replaced by W4A8Linear (and by W4A8GatedMLP, gate/up fused, without
   and with the gated epilogue), at M = 1, 50 and 968, in CUDA graphs.

  python3 bench/bench_torch.py --build build-gpu --md torch.md
"""
from __future__ import annotations

import argparse
import ctypes
import math
import os
import sys
import time
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "python"))
sys.path.insert(0, str(REPO / "python" / "tests"))
sys.path.insert(0, str(REPO / "bench"))


def host_time(fn, n=200):
    """Host us per call to enqueue n calls (no sync inside; few enough calls that the launch
    queue does not fill, so GPU time does not count), best of 5."""
    best = float("inf")
    for _ in range(5):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n * 1e6)
    torch.cuda.synchronize()
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(REPO / "build-gpu"))
    ap.add_argument("--md")
    args = ap.parse_args()
    os.environ.setdefault("W4A8_LIBRARY", str(Path(args.build) / "libw4a8.so"))
    from w4a8 import W4A8Linear, _lib, replace_mlp_with_w4a8
    from bench import graph_time, copies_for

    L = _lib.lib()
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    lines = [f"Card: {torch.cuda.get_device_name()}; torch {torch.__version__}; command: "
             f"`python3 bench/bench_torch.py {' '.join(sys.argv[1:])}`", "",
             "| N x K | M | raw library call us | W4A8Linear in graph us | overhead | eager host us/call "
             "| raw ctypes call host us | nn.Linear BF16 host us |",
             "|---|---|---|---|---|---|---|---|"]
    for (N, K) in [(16384, 2048), (2048, 2048), (4096, 1024)]:
        lin = nn.Linear(K, N, bias=False).to(torch.bfloat16).cuda()
        mods = [W4A8Linear.from_linear(lin) for _ in range(copies_for(N * K * 0.5625, l2))]
        for M in (1, 50):
            x = torch.randn(M, K, device="cuda").to(torch.bfloat16)
            y = torch.empty(M, N, dtype=torch.bfloat16, device="cuda")
            ws = torch.empty(_lib.linear_workspace_size(M, N, K, 16), dtype=torch.uint8, device="cuda")
            # The module's own `overlap` setting (W4A8Linear marks its weights), so that the two
            # columns differ only by what the module adds.
            structs = [_lib.Weight(m.weight_packed.data_ptr(), m.weight_scale.data_ptr(), m.weight_scale_2.data_ptr(),
                                   None, N, K, 16, _lib.LAYOUT_CANONICAL, 0, 0, int(m.overlap)) for m in mods]

            def raw(w, stream=None):  # (graph capture runs on a side stream: ask for it then)
                _lib.check(L.w4a8_linear_bf16(x.data_ptr(), ctypes.byref(w), y.data_ptr(), M, 1.0, ws.data_ptr(),
                                              ws.numel(), stream or torch.cuda.current_stream().cuda_stream))
            t_raw = graph_time([lambda w=w: raw(w) for w in structs])
            t_mod = graph_time([lambda m=m: m(x) for m in mods])
            m0 = mods[0]

            for _ in range(50):
                m0(x)
            host = host_time(lambda: m0(x))
            stream = torch.cuda.current_stream().cuda_stream
            host_raw = host_time(lambda: raw(structs[0], stream))
            host_bf16 = host_time(lambda: lin(x))
            size_out = ctypes.c_size_t()  # a ctypes call that launches nothing: the binding's floor
            host_noop = host_time(lambda: L.w4a8_linear_workspace_size(M, N, K, 16, ctypes.byref(size_out)))
            if (N, K, M) == (2048, 2048, 1):  # where the eager time goes, once
                import cProfile
                import io
                import pstats
                pr = cProfile.Profile()
                pr.enable()
                for _ in range(300):
                    m0(x)
                pr.disable()
                torch.cuda.synchronize()
                out = io.StringIO()
                pstats.Stats(pr, stream=out).sort_stats("tottime").print_stats(14)
                print(out.getvalue(), flush=True)
            print(f"# host us/call: module {host:.1f}, raw ctypes call {host_raw:.1f}, nn.Linear {host_bf16:.1f}, "
                  f"ctypes call without launches {host_noop:.1f}", flush=True)
            lines.append(f"| {N} x {K} | {M} | {t_raw:.2f} | {t_mod:.2f} | {100 * (t_mod / t_raw - 1):+.1f}% | "
                         f"{host:.1f} | {host_raw:.1f} | {host_bf16:.1f} |")
            print(lines[-1], flush=True)

    # Host cost of each way to call one layer (4096 x 1024, M = 50, the pi0.5 expert's MLP width):
    # the module eagerly, the op, a compiled module without CUDA graphs (torch.compile's default
    # mode, where Inductor's code calls the op each time), and nn.Linear in BF16 the same ways.
    N, K, M = 4096, 1024, 50
    lin = nn.Linear(K, N, bias=False).to(torch.bfloat16).cuda()
    mod = W4A8Linear.from_linear(lin)
    x = torch.randn(M, K, device="cuda").to(torch.bfloat16)
    op_args = (x, mod.weight_packed, mod.weight_scale, mod.weight_scale_2, None, 1.0, 16, 0, 0, 0, 1)
    cmod, clin = torch.compile(mod), torch.compile(lin)
    for _ in range(5):
        mod(x), cmod(x), clin(x), torch.ops.w4a8.linear(*op_args)
    host = {"W4A8Linear eager": host_time(lambda: mod(x)),
            "torch.ops.w4a8.linear": host_time(lambda: torch.ops.w4a8.linear(*op_args)),
            "W4A8Linear compiled (default mode, no CUDA graphs)": host_time(lambda: cmod(x)),
            "nn.Linear BF16 eager": host_time(lambda: lin(x)),
            "nn.Linear BF16 compiled (default mode)": host_time(lambda: clin(x))}
    lines += ["", f"| host time per call, {N} x {K}, M = {M} | us |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in host.items()]
    print("\n".join(lines[-len(host) - 2:]), flush=True)

    try:
        import gemma_util
    except Exception as e:  # pragma: no cover
        print(f"# Gemma layer skipped: {e}")
        gemma_util = None
    if gemma_util is not None:
        lines += ["", "| Gemma decoder layer | M | BF16 layer us | layer with W4A8 MLP us | speedup "
                  "| W4A8 MLP, gate/up fused us | speedup | fused + gated epilogue us | speedup "
                  "| same, FP8 path with fast accumulation (opt-in, lossy) us | speedup |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for which, shape in [("backbone (2048, mlp 16384)", gemma_util.BACKBONE),
                             ("expert (1024, mlp 4096)", gemma_util.EXPERT)]:
            # Enough layer copies to rotate the weights past the L2, like a real 18-layer stack.
            n_copies = max(1, math.ceil(3 * l2 / (shape["hidden_size"] * shape["intermediate_size"] * 3 * 2)))
            layers = [gemma_util.make_layer(shape, outliers=False, seed=i) for i in range(n_copies)]
            for M in (1, 50, 968):
                x = torch.randn(1, M, shape["hidden_size"], device="cuda").to(torch.bfloat16)
                with torch.no_grad():
                    t_bf16 = graph_time([lambda c=c: c(x) for _, c in layers], n_calls=2 * n_copies)
                    for layer, _ in layers:
                        replace_mlp_with_w4a8(layer)
                    t_w4 = graph_time([lambda c=c: c(x) for _, c in layers], n_calls=2 * n_copies)
                    t_fused = {}
                    # gate/up as one GEMM; then also act(gate) * up in its epilogue; then that with
                    # the FP8 path's fast accumulation (fp8="fast": AUTO takes it from M = 128 on
                    # the wide layers, so only the M = 968 rows can differ from the column before)
                    for glu, fp8 in ((False, None), (True, None), (True, "fast")):
                        layers = [gemma_util.make_layer(shape, outliers=False, seed=i) for i in range(n_copies)]
                        for layer, _ in layers:
                            replace_mlp_with_w4a8(layer, fuse_gate_up=True, glu=glu, fp8=fp8)
                        t_fused[glu, fp8] = graph_time([lambda c=c: c(x) for _, c in layers], n_calls=2 * n_copies)
                t_wf, t_wg, t_wq = t_fused[False, None], t_fused[True, None], t_fused[True, "fast"]
                lines.append(f"| {which} | {M} | {t_bf16:.1f} | {t_w4:.1f} | {t_bf16 / t_w4:.2f}x | {t_wf:.1f} "
                             f"| {t_bf16 / t_wf:.2f}x | {t_wg:.1f} | {t_bf16 / t_wg:.2f}x | {t_wq:.1f} | {t_bf16 / t_wq:.2f}x |")
                print(lines[-1], flush=True)
                layers = [gemma_util.make_layer(shape, outliers=False, seed=i) for i in range(n_copies)]
        # Accuracy of the layer with its MLP replaced, vs the BF16 layer, for both outlier
        # constructions of gemma_util (balanced = trained-model-like; raw = stress case).
        lines += ["", "| Gemma decoder layer, M = 50 | outliers | cosine vs BF16 layer |", "|---|---|---|"]
        for which, shape in [("backbone", gemma_util.BACKBONE), ("expert", gemma_util.EXPERT)]:
            for kind in ("balanced", "raw", False):
                layer, call = gemma_util.make_layer(shape, outliers=kind)
                x = torch.randn(1, 50, shape["hidden_size"], device="cuda").to(torch.bfloat16)
                ref = call(x).float().flatten()
                replace_mlp_with_w4a8(layer)
                cos = torch.nn.functional.cosine_similarity(call(x).float().flatten(), ref, dim=0).item()
                lines.append(f"| {which} | {kind or 'none'} | {cos:.5f} |")
                print(lines[-1], flush=True)
        # The same at the prefill's M = 968 with gate/up fused and the gated epilogue, on the exact
        # path and on the FP8 path's opt-in modes (the products rounded to E4M3; also the tensor
        # cores' own summation): what the FP8 path costs a whole layer's output.
        lines += ["", "| Gemma decoder layer, M = 968, gate/up fused | outliers | exact path | FP8 path (lossy) "
                  "| FP8 path, fast accumulation |", "|---|---|---|---|---|"]
        for which, shape in [("backbone", gemma_util.BACKBONE), ("expert", gemma_util.EXPERT)]:
            x = torch.randn(1, 968, shape["hidden_size"], device="cuda").to(torch.bfloat16)
            for kind in ("balanced", "raw"):
                cos = []
                for fp8 in (None, "lossy", "fast"):
                    layer, call = gemma_util.make_layer(shape, outliers=kind)
                    ref = call(x).float().flatten()
                    replace_mlp_with_w4a8(layer, fuse_gate_up=True, fp8=fp8)
                    cos.append(torch.nn.functional.cosine_similarity(call(x).float().flatten(), ref, dim=0).item())
                lines.append(f"| {which} | {kind} | " + " | ".join(f"{c:.5f}" for c in cos) + " |")
                print(lines[-1], flush=True)
    md = "\n".join(lines) + "\n"
    print(md)
    if args.md:
        Path(args.md).write_text(md)


if __name__ == "__main__":
    with torch.no_grad():
        main()
