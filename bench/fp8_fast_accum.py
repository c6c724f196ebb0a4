#!/usr/bin/env python3
"""Session 25: the FP8 tensor-core path without FP32 promotion ("fast accumulation", W4A8_FP8_FAST),
which frees the registers for 256-token tiles, against the promoted 128-token kernel and against
cuBLASLt FP8 with and without its own fast accumulation (torch._scaled_mm use_fast_accum), same
process, same data, bench.py's method (CUDA graphs, weights rotated past 3x L2, medians).

  python3 bench/fp8_fast_accum.py --build build [--shapes NxK,..] [--ms ..]

Prints one line per (shape, M, kernel): us, x cuBLASLt FP8 (both modes), error against the exact
FP64 reference and against the promoted kernel's output.
"""
import argparse
import ctypes
import re
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench as B  # noqa: E402

_lib = B._lib


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--shapes", default="16384x2048,2048x16384,32768x2048")
    ap.add_argument("--ms", default="968,4096")
    ap.add_argument("--configs", default=r"^wgmma_fp8_(fast_)?bm(128|256)(_k2)?_g16$")
    ap.add_argument("--pow2", action="store_true", help="power-of-two block scales (EXACT weights: the FP8 path's "
                    "products are exact, so its error is the summation's); no timing, error statistics only")
    args = ap.parse_args()
    lib = B.Lib(Path(args.build))
    L = lib.L
    gen = torch.Generator(device="cuda").manual_seed(4321)
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    names = [L.w4a8_gemm_config_name(i).decode() for i in range(L.w4a8_gemm_config_count())]
    picked = [(i, n) for i, n in enumerate(names) if re.search(args.configs, n)]
    print("configs:", ", ".join(n for _, n in picked), flush=True)
    for shape in args.shapes.split(","):
        N, K = (int(v) for v in shape.split("x"))
        w_bf16 = (torch.randn(N, K, device="cuda", generator=gen) * 0.02).to(torch.bfloat16)
        nv = lib.rotated_weights(w_bf16, l2, "canonical") if not args.pow2 else [lib.quantize_weight(w_bf16)]
        if args.pow2:  # E4M3 2^(e - 7), e in 4..10, random per block
            sc = nv[0]["scales"]
            sc.copy_((torch.randint(4, 11, sc.shape, device="cuda", generator=gen) << 3).to(torch.uint8))
        for w in nv:
            r = lib.prepare_fp8(w)
        if args.pow2:
            print(f"{N}x{K}: prepare_fp8 exact={r.exact} shift={r.shift}", flush=True)
        base = nv[0]
        wq8, sw8 = B.fp8_rowwise(w_bf16)
        f8 = [wq8] + [wq8.clone() for _ in range(B.copies_for(N * K, l2) - 1)]
        for M in (int(v) for v in args.ms.split(",")):
            x = torch.randn(M, K, device="cuda", generator=gen).to(torch.bfloat16)
            q, s = lib.quantize_act(x)
            ref = B.reference_fp64(q, s, base)
            ws = torch.empty(M * ((K + 127) // 128 * 128) * 2 + 256 + 8 * M * N * 4 + 256, dtype=torch.uint8,
                             device="cuda")
            xq8, sa = q.view(torch.float8_e4m3fn), s.reshape(M, 1)
            if args.pow2:
                pow2_errors(lib, L, picked, q, s, base, ref, ws, M, N, K)
                continue
            t_lt = {}
            for fast in (False, True):
                t_lt[fast] = B.graph_time([lambda w=w, f=fast: torch._scaled_mm(
                    xq8, w.t(), scale_a=sa, scale_b=sw8, out_dtype=torch.bfloat16, use_fast_accum=f) for w in f8])
            y_lt = torch._scaled_mm(xq8, wq8.t(), scale_a=sa, scale_b=sw8, out_dtype=torch.bfloat16)
            y_ltf = torch._scaled_mm(xq8, wq8.t(), scale_a=sa, scale_b=sw8, out_dtype=torch.bfloat16,
                                     use_fast_accum=True)
            print(f"{N}x{K} M={M}: cuBLASLt FP8 {t_lt[False]:.2f} us, fast accum {t_lt[True]:.2f} us; "
                  f"its fast vs precise output: rel {B.rel_err(y_ltf, y_lt.double()):.2e}", flush=True)
            outs = {}
            for i, name in picked:
                y = torch.empty(M, N, dtype=torch.bfloat16, device="cuda")

                def call(w, i=i, y=y):
                    _lib.check(L.w4a8_gemm_with_config(B.ptr(q), B.ptr(s), ctypes.byref(w["struct"]), B.ptr(y), M, 1.0,
                                                       i, B.ptr(ws), ws.numel(), B.stream()))
                y.fill_(float("nan"))
                call(base)
                torch.cuda.synchronize()
                outs[name] = y.clone()
                us = B.graph_time([lambda w=w: call(w) for w in nv])
                err = B.rel_err(y, ref)
                vs = B.rel_err(y, outs[picked[0][1]].double()) if name != picked[0][1] else 0.0
                print(f"  {name:28s} {us:8.2f} us  x LtFP8 {t_lt[False] / us:.2f}  x LtFP8-fast {t_lt[True] / us:.2f}"
                      f"  err {err:.3e}  vs {picked[0][1]} {vs:.2e}", flush=True)


def pow2_errors(lib, L, picked, q, s, base, ref, ws, M, N, K):
    """Per element: (|y - ref| - the exact path's bound) / sum |products|, max and 99.9th percentile."""
    xv, wv = B.operands_fp64(q, s, base)
    ya = xv.abs() @ wv.abs().T
    bound = torch.ldexp(ref.abs(), torch.tensor(-8, device="cuda")) + (K + 8) * 2.0 ** -24 * ya
    for i, name in picked:
        y = torch.empty(M, N, dtype=torch.bfloat16, device="cuda")
        y.fill_(float("nan"))
        _lib.check(L.w4a8_gemm_with_config(B.ptr(q), B.ptr(s), ctypes.byref(base["struct"]), B.ptr(y), M, 1.0, i,
                                           B.ptr(ws), ws.numel(), B.stream()))
        torch.cuda.synchronize()
        d = (y.double() - ref).abs()
        over = ((d - bound).clamp(min=0) / ya.clamp(min=1e-300)).flatten()
        raw = (d / ya.clamp(min=1e-300)).flatten()
        q999 = torch.quantile(raw[:: max(1, raw.numel() // 1000000)].float(), 0.999).item()
        print(f"  pow2 {N}x{K} M={M} {name:28s} max over-bound/sum|p| {over.max().item():.3e} (log2 "
              f"{torch.log2(over.max()).item():.1f})  max |err|/sum|p| {raw.max().item():.3e}  p99.9 {q999:.3e}  "
              f"rel {B.rel_err(y, ref):.3e}", flush=True)


if __name__ == "__main__":
    main()
