#!/usr/bin/env python3
"""w4a8 benchmark harness (PERF.md method), run on a GPU machine with PyTorch.

In one process, on the same data: this library (GEMM on FP8 input, and the fused BF16-input
linear), cuBLAS BF16 (torch.mm), cuBLASLt FP8 with row-wise scales (torch._scaled_mm), and a
read floor (a plain 16-byte streaming read of the same weight + scale bytes). Every timing:
20+ calls captured in a CUDA graph, weights rotated through enough copies to exceed 3x the
L2, median of 15 replays, microseconds per call. Every w4a8 result is checked against the
exact FP64 reference on the same quantized operands before it is timed.

Workloads: the layer shapes of PERF.md for M in {1, 16, 50, 128, 968, 4096}, and the pi0.5
GEMM trace (every linear layer of one inference, PI05.md: P = 968, H = 50, 10 steps).

  python3 bench/bench.py --csv out.csv --md out.md --png out.png [--quick]
"""
from __future__ import annotations

import argparse
import ctypes
import datetime
import math
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "python"))
from w4a8 import _lib  # noqa: E402

SHAPES = [(16384, 2048), (2048, 16384), (32768, 2048), (4096, 1024), (1024, 4096), (2048, 2048)]
MS = [1, 16, 50, 128, 968, 4096]
GROUP = 16
CALLS_PER_GRAPH = 20
REPLAYS = 15
LAYOUT = "auto"  # weight layout of the w4a8 rows (--layout): tiled, canonical, or auto (see layout_for)
OVERLAP = False  # --overlap: the layer rows' weights marked overlap (w4a8.h)


def layout_for(M: int, N: int, K: int) -> str:
    """auto: the tiled layout (prepacked once at load time, as w4a8.h advises) for every exact-path
    row: since session 29 both the decode kernels (3-11% on an H100) and the wgmma prefill kernel
    (32 of 35 rows, mean -2.5%: bench/results/ab-tiled-tma-h100-2026-11-27-s29.txt) read it faster
    than the canonical one. (Before session 29 the wgmma rows read canonical weights here: session
    28's prefill kernel was no faster on tiled ones.) The FP8 path's rows and the traces' FP8
    prefill use canonical copies of the same weights (w4a8_prepare_fp8 takes the canonical layout)."""
    if LAYOUT != "auto":
        return LAYOUT
    return "tiled"  # (quantize_weight keeps the canonical layout where the tiled one does not fit)

E2M1 = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]


def ptr(t: torch.Tensor) -> int:
    return t.data_ptr()


def stream() -> int:
    return torch.cuda.current_stream().cuda_stream


def capture_graph(calls, n_calls=CALLS_PER_GRAPH, rotations=2):
    """`calls` (rotated) run once on a side stream, then n >= n_calls of them (and >= `rotations`
    times each) captured in one CUDA graph: (graph, n)."""
    n = max(n_calls, rotations * len(calls))
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for c in calls:
            c()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for i in range(n):
            calls[i % len(calls)]()
    return g, n


def graph_time(calls, n_calls=CALLS_PER_GRAPH, replays=REPLAYS) -> float:
    """Median microseconds per call of `calls` (rotated) captured in one CUDA graph."""
    g, n = capture_graph(calls, n_calls)
    # Warm-up: replay for >= 50 ms first, so the clocks have ramped up after the setup pause.
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(200):
        g.replay()
        b.record()
        b.synchronize()
        if a.elapsed_time(b) >= 50.0:
            break
    times = []
    for r in range(replays + 1):
        a.record()
        g.replay()
        b.record()
        b.synchronize()
        if r:
            times.append(a.elapsed_time(b) * 1000.0 / n)
    del g
    return statistics.median(times)


class Lib:
    def __init__(self, build: Path):
        os.environ.setdefault("W4A8_LIBRARY", str(build / "libw4a8.so"))
        self.L = _lib.lib()
        self.B = ctypes.CDLL(str(build / "libw4a8_bench.so"))
        self.B.w4a8_bench_read.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p]
        self.sink = torch.zeros(4, dtype=torch.int32, device="cuda")

    def quantize_weight(self, w: torch.Tensor, group=GROUP, layout="canonical"):
        """BF16 [N, K] -> one contiguous buffer holding packed [N, K/2] then scales [N, K/g], and s2;
        with the tiled layout (where K % 32 == 0) the GEMMs read a second buffer
        with the prepacked copy (packed then scales), and the read floor streams that one."""
        N, K = w.shape
        np_, ns = N * K // 2, N * K // group
        off = (np_ + 255) // 256 * 256
        buf = torch.empty(off + ns, dtype=torch.uint8, device="cuda")
        s2 = torch.empty(1, dtype=torch.float32, device="cuda")
        _lib.check(self.L.w4a8_quantize_weight_nvfp4(ptr(w), ptr(buf), ptr(buf) + off, ptr(s2), N, K, group, stream()))
        out = {"buf": buf, "packed": buf[:np_].view(N, K // 2), "scales": buf[off:off + ns].view(N, K // group),
               "s2": s2, "N": N, "K": K, "group": group, "read_bytes": off + ns, "layout": "canonical",
               "struct": _lib.Weight(ptr(buf), ptr(buf) + off, ptr(s2), None, N, K, group, _lib.LAYOUT_CANONICAL)}
        if layout == "tiled" and K % 32 == 0:
            tp, ts = ctypes.c_size_t(), ctypes.c_size_t()
            _lib.check(self.L.w4a8_tiled_weight_size(N, K, group, ctypes.byref(tp), ctypes.byref(ts)))
            toff = (tp.value + 255) // 256 * 256
            tbuf = torch.empty(toff + ts.value, dtype=torch.uint8, device="cuda")
            _lib.check(self.L.w4a8_prepack_weight(ctypes.byref(out["struct"]), ptr(tbuf), ptr(tbuf) + toff, stream()))
            out.update({"canonical_buf": buf, "buf": tbuf, "read_bytes": toff + ts.value, "layout": "tiled",
                        "struct": _lib.Weight(ptr(tbuf), ptr(tbuf) + toff, ptr(s2), None, N, K, group, _lib.LAYOUT_TILED)})
        return out

    def rotated_weights(self, w_bf16: torch.Tensor, l2: int, layout="canonical"):
        """Quantized copies of one weight, enough of them to exceed 3x the L2 together."""
        base = self.quantize_weight(w_bf16, layout=layout)
        return [base] + [self.quantize_weight(w_bf16, layout=layout)
                         for _ in range(copies_for(base["read_bytes"], l2) - 1)]

    def quantize_act(self, x: torch.Tensor):
        M, K = x.shape
        q = torch.empty(M, K, dtype=torch.uint8, device="cuda")
        s = torch.empty(M, dtype=torch.float32, device="cuda")
        _lib.check(self.L.w4a8_quantize_activation_fp8(ptr(x), ptr(q), ptr(s), M, K, stream()))
        return q, s

    def gemm(self, q, s, w, y, M, ws=None, alpha=1.0, kernel=None):
        """w4a8_gemm with the workspace w4a8_gemm_workspace_size asks for (gemm_workspace below);
        kernel: w4a8_gemm_with_kernel with that kernel family instead (the FP8 path's opt-in)."""
        wsp, wsn = (ptr(ws), ws.numel()) if ws is not None else (None, 0)
        if kernel is None:
            _lib.check(self.L.w4a8_gemm(ptr(q), ptr(s), ctypes.byref(w["struct"]), ptr(y), M, alpha, wsp, wsn, stream()))
        else:
            _lib.check(self.L.w4a8_gemm_with_kernel(ptr(q), ptr(s), ctypes.byref(w["struct"]), ptr(y), M, alpha, kernel,
                                                    wsp, wsn, stream()))

    def prepare_fp8(self, w):
        """w4a8_prepare_fp8 on a canonical weight: its struct then carries the FP8 fields."""
        r = _lib.Fp8Report()
        _lib.check(self.L.w4a8_prepare_fp8(ctypes.byref(w["struct"]), ctypes.byref(r), stream()))
        return r

    @staticmethod
    def any_config_workspace(M, N, K):
        """A workspace for any configuration forced with w4a8_gemm_with_config: FP16 activations,
        then FP32 partials of up to 8 K-splits (split-K wgmma configurations)."""
        return torch.empty(M * ((K + 63) // 64 * 64) * 2 + 256 + 8 * M * N * 4 + 256, dtype=torch.uint8, device="cuda")

    @staticmethod
    def gemm_workspace(M, N, K):
        need = _lib.gemm_workspace_size(M, N, K, GROUP)
        return torch.empty(need, dtype=torch.uint8, device="cuda") if need else None

    def linear(self, x, w, y, M, ws):
        _lib.check(self.L.w4a8_linear_bf16(ptr(x), ctypes.byref(w["struct"]), ptr(y), M, 1.0, ptr(ws), ws.numel(),
                                           stream()))

    def read(self, w):
        _lib.check(self.B.w4a8_bench_read(ptr(w["buf"]), w["read_bytes"], ptr(self.sink), stream()))


def sweep(lib: Lib, shapes, ms, l2, gen, out_csv=None, config_filter=None, check=True):
    """Every whitelisted configuration that fits, per (shape, M): the data behind heuristics.cpp."""
    L = lib.L
    names = [L.w4a8_gemm_config_name(i).decode() for i in range(L.w4a8_gemm_config_count())]
    lines = ["N,K,M,config,us,read_floor_us,auto,layout"]
    for N, K in shapes:
        w_bf16 = (torch.randn(N, K, device="cuda", generator=gen) * 0.02).to(torch.bfloat16)
        nv = lib.rotated_weights(w_bf16, l2, layout_for(min(ms), N, K))
        base = nv[0]
        floor = graph_time([lambda w=w: lib.read(w) for w in nv])
        for M in ms:
            x = torch.randn(M, K, device="cuda", generator=gen).to(torch.bfloat16)
            q, s = lib.quantize_act(x)
            y = torch.empty(M, N, dtype=torch.bfloat16, device="cuda")
            ref = reference_fp64(q, s, base)
            auto = _lib.kernel_name(M, N, K, GROUP)
            res = []
            ws = lib.any_config_workspace(M, N, K)
            for i, name in enumerate(names):
                if f"_g{GROUP}" not in name or (config_filter and not re.search(config_filter, name)):
                    continue
                if name.startswith("mma_exact"):
                    mt = int(name.split("_mt")[1].split("_")[0])
                    if ("_v8_" in name) != (K % 32 != 0) or 8 * mt > max(8, 2 * M) or ("_v8_" in name and base["layout"] == "tiled"):
                        continue
                elif K % 32 or M < 32 or ("wgmma_fp8" in name and base["layout"] != "canonical"):
                    continue  # wgmma: TMA rows of 16-byte units; not at decode sizes; FP8 path: canonical
                if "wgmma_fp8" in name and not base["struct"].fp8:
                    for w in nv:  # the FP8 path's load-time preparation, once per copy
                        lib.prepare_fp8(w)
                call = lambda w, i=i: _lib.check(L.w4a8_gemm_with_config(ptr(q), ptr(s), ctypes.byref(w["struct"]),
                                                                         ptr(y), M, 1.0, i, ptr(ws), ws.numel(),
                                                                         stream()))
                y.fill_(float("nan"))
                call(base)
                torch.cuda.synchronize()
                err = rel_err(y, ref)
                assert err < (5e-2 if "wgmma_fp8" in name else 4e-3) or not check, f"{name} wrong on {M}x{N}x{K}: {err}"
                us = graph_time([lambda w=w: call(w) for w in nv])
                res.append((us, name))
                lines.append(f"{N},{K},{M},{name},{us:.2f},{floor:.2f},{int(name == auto)},{base['layout']}")
            res.sort()
            best = ", ".join(f"{n.replace('mma_exact_', '')} {u:.2f}" for u, n in res[:4])
            auto_us = next((u for u, n in res if n == auto), float("nan"))
            print(f"sweep {N:>6}x{K:<6} M={M:<4} floor {floor:6.2f}  auto {auto.replace('mma_exact_', '')} "
                  f"{auto_us:.2f}  best: {best}", flush=True)
    if out_csv:
        Path(out_csv).write_text("\n".join(lines) + "\n")


def operands_fp64(q, s, w):
    """The exact operands in FP64: activations e4m3(q) * s [M, K], weights e2m1 * sb * s2 [N, K]."""
    N, K, g = w["N"], w["K"], w["group"]
    lut = torch.tensor(E2M1, dtype=torch.float64, device="cuda")
    p = w["packed"].long()
    codes = torch.stack([p & 0xF, p >> 4], dim=-1).reshape(N, K)
    sb = w["scales"].view(torch.float8_e4m3fn).to(torch.float64).repeat_interleave(g, dim=1)
    wv = lut[codes] * sb * w["s2"].double()
    xv = q.view(torch.float8_e4m3fn).to(torch.float64) * s.double()[:, None]
    return xv, wv


def reference_fp64(q, s, w):
    """Exact y = (e4m3(q) * s) @ (e2m1 * sb * s2)^T in FP64 (every product exact)."""
    xv, wv = operands_fp64(q, s, w)
    return xv @ wv.T


def rel_err(y: torch.Tensor, ref: torch.Tensor) -> float:
    return (torch.linalg.norm(y.double() - ref) / torch.linalg.norm(ref)).item()


def copies_for(nbytes: int, l2: int) -> int:
    return max(1, math.ceil(3 * l2 / nbytes))


def fp8_rowwise(w: torch.Tensor):
    amax = w.float().abs().amax(dim=1, keepdim=True).clamp(min=1e-12)
    sw = amax / 448.0
    wq = (w.float() / sw).clamp(-448, 448).to(torch.float8_e4m3fn)
    return wq, sw.reshape(1, -1).contiguous()


def layer_buffers(lib: Lib, M: int, N: int, K: int, gen):
    """One layer row's activations and outputs, in the order bench_layer allocates them (which
    decides where they lie; bench/experiments/s32_anomaly.py reproduces a row with it): BF16 input
    x, its FP8 codes q and row scales s, outputs y (GEMM) and y2 (fused), the fused call's
    workspace ws and the GEMM's gws."""
    x = torch.randn(M, K, device="cuda", generator=gen).to(torch.bfloat16)
    q, s = lib.quantize_act(x)
    y = torch.empty(M, N, dtype=torch.bfloat16, device="cuda")
    y2 = torch.empty_like(y)
    ws = torch.empty(_lib.linear_workspace_size(M, N, K, GROUP), dtype=torch.uint8, device="cuda")
    return x, q, s, y, y2, ws, lib.gemm_workspace(M, N, K)


def bench_layer(lib: Lib, N: int, K: int, ms, l2: int, rows: list, gen):
    # The previous shape ended with M = 4096 (cuBLAS and us at full power): its first light row
    # read up to 1.6x high (power/clock recovery; the same call measured alone or a moment later
    # does not). An idle second before each shape, then graph_time's warm-up, removes it.
    time.sleep(1.0)
    w_bf16 = (torch.randn(N, K, device="cuda", generator=gen) * 0.02).to(torch.bfloat16)
    sets = {}  # layout -> rotated copies, made when first needed
    bf = [w_bf16] + [w_bf16.clone() for _ in range(copies_for(N * K * 2, l2) - 1)]
    wq8, sw8 = fp8_rowwise(w_bf16)
    f8 = [wq8] + [wq8.clone() for _ in range(copies_for(N * K, l2) - 1)]
    floor_cache = {}
    for M in ms:
        lay = layout_for(M, N, K)
        if lay not in sets:
            sets[lay] = lib.rotated_weights(w_bf16, l2, lay)
            for w in sets[lay]:  # --overlap: as a model's weights (w4a8.h); default: each call alone
                w["struct"].overlap = int(OVERLAP)
        nv = sets[lay]
        base = nv[0]
        x, q, s, y, y2, ws, gws = layer_buffers(lib, M, N, K, gen)
        # Correctness first: poisoned output, exact reference, fused == two-step.
        y.fill_(float("nan"))
        lib.gemm(q, s, base, y, M, gws)
        torch.cuda.synchronize()
        err = rel_err(y, reference_fp64(q, s, base))
        lib.linear(x, base, y2, M, ws)
        torch.cuda.synchronize()
        fused_equal = bool(torch.equal(y, y2))
        t_w4a8 = graph_time([lambda w=w: lib.gemm(q, s, w, y, M, gws) for w in nv])
        t_fused = graph_time([lambda w=w: lib.linear(x, w, y2, M, ws) for w in nv])
        if lay not in floor_cache:
            floor_cache[lay] = graph_time([lambda w=w: lib.read(w) for w in nv])
        t_floor = floor_cache[lay]
        yb = torch.empty(M, N, dtype=torch.bfloat16, device="cuda")
        t_bf16 = graph_time([lambda w=w: torch.mm(x, w.t(), out=yb) for w in bf])
        xq8 = q.view(torch.float8_e4m3fn)
        sa = s.reshape(M, 1)
        try:
            t_fp8 = graph_time([lambda w=w: torch._scaled_mm(xq8, w.t(), scale_a=sa, scale_b=sw8,
                                                             out_dtype=torch.bfloat16) for w in f8])
        except RuntimeError as e:  # pragma: no cover - reported in the table
            print(f"# FP8 baseline failed for M={M} N={N} K={K}: {e}", file=sys.stderr)
            t_fp8 = float("nan")
        moved = base["read_bytes"] + M * K + M * N * 2
        tag = " [tiled]" if base["layout"] == "tiled" else ""
        rows.append({"workload": "layer", "N": N, "K": K, "M": M, "kernel": _lib.kernel_name(M, N, K, GROUP) + tag,
                     "layout": base["layout"],
                     "w4a8_us": t_w4a8, "fused_us": t_fused, "cublas_bf16_us": t_bf16, "cublaslt_fp8_us": t_fp8,
                     "read_floor_us": t_floor, "gbps": moved / t_w4a8 * 1e-3, "rel_err": err,
                     "fused_equal": fused_equal})
        r = rows[-1]
        print(f"{N:>6}x{K:<6} M={M:<5} {r['kernel']:<32} w4a8 {t_w4a8:8.2f}  fused {t_fused:8.2f}  floor {t_floor:7.2f}"
              f"  bf16 {t_bf16:8.2f}  fp8 {t_fp8:8.2f}  err {err:.2e}  fused==gemm {fused_equal}", flush=True)
        if M >= FP8_MIN_M and K % 32 == 0 and not NO_FP8:
            # cuBLASLt's own fast accumulation, the baseline of the FP8 path's fast rows.
            lt_fast = lambda: graph_time([lambda w=w: torch._scaled_mm(  # noqa: E731
                xq8, w.t(), scale_a=sa, scale_b=sw8, out_dtype=torch.bfloat16, use_fast_accum=True) for w in f8])
            bench_fp8_path(lib, N, K, M, w_bf16, l2, x, q, s, y, gws, ws, t_bf16, t_fp8, rows, sets, lt_fast)


FP8_MIN_M = 128  # the FP8 path's rows (promoted and fast accumulation): where the wgmma kernels run
NO_FP8 = False  # --no-fp8: the exact path's rows only (A/Bs of exact-path changes in one device call)


def bench_fp8_path(lib: Lib, N, K, M, w_bf16, l2, x, q, s, y, gws, ws, t_bf16, t_fp8, rows, sets, lt_fast):
    """The FP8 tensor-core path (W4A8_KERNEL_WGMMA_FP8, opt-in: these ModelOpt weights are LOSSY for
    it) on canonical copies of the same weight: its own row, error against the FP64 reference of
    the exact operands, and its error relative to the exact path's output. Fused (BF16 input):
    w4a8_linear_bf16 on the same copies marked W4A8_FP8_ACCEPTED, where AUTO then takes the FP8
    path (M >= 512); it must equal the two-step result bit for bit. Then the same again with the
    copies marked W4A8_FP8_FAST (its fast-accumulation kernels; AUTO from M = 128), with
    cuBLASLt's own fast accumulation (lt_fast(): us) as a further column."""
    for fast in (False, True):
        bench_fp8_mode(lib, N, K, M, w_bf16, l2, x, q, s, y, gws, ws, t_bf16, t_fp8, rows, sets,
                       lt_fast if fast else None)


def bench_fp8_mode(lib: Lib, N, K, M, w_bf16, l2, x, q, s, y, gws, ws, t_bf16, t_fp8, rows, sets, lt_fast):
    fast = lt_fast is not None
    if "fp8" not in sets:
        sets["fp8"] = lib.rotated_weights(w_bf16, l2, "canonical")
        reports = [lib.prepare_fp8(w) for w in sets["fp8"]]
        sets["fp8_report"] = reports[0]
    nv = sets["fp8"]
    base, rep = nv[0], sets["fp8_report"]
    for w in nv:  # W4A8_KERNEL_WGMMA_FP8 runs the fast-accumulation kernels on FAST weights
        w["struct"].fp8 = _lib.FP8_FAST if fast else _lib.FP8_LOSSY
    name = _lib.weight_kernel_name(base["struct"], M, _lib.KERNEL_WGMMA_FP8)
    # (A FAST weight never runs a promoted kernel: heuristics.cpp choose_fp8_config.)
    assert ("fp8_fast" in name) == fast, (name, fast)
    t_lt_fast = lt_fast() if fast else None
    y_exact = torch.empty_like(y)
    lib.gemm(q, s, base, y_exact, M, gws, kernel=_lib.KERNEL_WGMMA_EXACT)
    yf = torch.empty_like(y)
    yf.fill_(float("nan"))
    lib.gemm(q, s, base, yf, M, gws, kernel=_lib.KERNEL_WGMMA_FP8)
    torch.cuda.synchronize()
    err = rel_err(yf, reference_fp64(q, s, base))
    vs_exact = rel_err(yf, y_exact.double())
    t = graph_time([lambda w=w: lib.gemm(q, s, w, yf, M, gws, kernel=_lib.KERNEL_WGMMA_FP8) for w in nv])
    t_fused, fused_equal = float("nan"), ""
    for w in nv:
        w["struct"].fp8 = _lib.FP8_FAST if fast else _lib.FP8_ACCEPTED
    if _lib.weight_kernel_name(base["struct"], M) == name:
        y2 = torch.empty_like(y)
        lib.linear(x, base, y2, M, ws)
        torch.cuda.synchronize()
        fused_equal = bool(torch.equal(yf, y2))
        t_fused = graph_time([lambda w=w: lib.linear(x, w, y2, M, ws) for w in nv])
    for w in nv:
        w["struct"].fp8 = _lib.FP8_LOSSY
    mode = "exact" if rep.exact else "lossy"
    rows.append({"workload": "layer", "N": N, "K": K, "M": M, "kernel": f"{name} [{mode}]", "layout": "canonical",
                 "w4a8_us": t, "fused_us": t_fused, "cublas_bf16_us": t_bf16, "cublaslt_fp8_us": t_fp8,
                 "read_floor_us": float("nan"), "gbps": (base["read_bytes"] + M * K + M * N * 2) / t * 1e-3,
                 "rel_err": err, "fused_equal": fused_equal, "vs_exact_err": vs_exact,
                 "fp8_max_product_err": rep.max_rel_error, "cublaslt_fp8_fast_us": t_lt_fast if fast else ""})
    print(f"{N:>6}x{K:<6} M={M:<5} {rows[-1]['kernel']:<32} w4a8 {t:8.2f}  fused {t_fused:8.2f}  bf16 {t_bf16:8.2f}"
          f"  fp8 {t_fp8:8.2f}" + (f"  fp8-fast-accum {t_lt_fast:8.2f}" if fast else "") + f"  fused==gemm {fused_equal}"
          f"  err {err:.2e}  vs exact path {vs_exact:.2e}  (shift {rep.shift}, worst product {rep.max_rel_error:.3f})",
          flush=True)


PI05_BACKBONE = [(2048, 2048), (256, 2048), (256, 2048), (2048, 2048), (16384, 2048), (16384, 2048), (2048, 16384)]
PI05_EXPERT = [(2048, 1024), (256, 1024), (256, 1024), (1024, 2048), (4096, 1024), (4096, 1024), (1024, 4096)]
# The same inference with q/k/v as one GEMM and gate/up as one (PI05.md: N = 2560 and 2 x the
# MLP width), as inference engines run it (W4A8GatedMLP fuses gate/up): workload
# "pi05_trace_fused", the same fusion for every library timed.
PI05_BACKBONE_FUSED = [(2560, 2048), (2048, 2048), (32768, 2048), (2048, 16384)]
PI05_EXPERT_FUSED = [(2560, 1024), (1024, 2048), (8192, 1024), (1024, 4096)]


def profile_kernels(fn, path: Path):
    """One call of `fn` captured in a CUDA graph, replayed warm, then once under the profiler
    (CUPTI, through torch.profiler): every kernel's start and end, as a Chrome trace at `path`."""
    g, _ = capture_graph([fn], n_calls=1, rotations=1)
    for _ in range(5):
        g.replay()
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        g.replay()
        torch.cuda.synchronize()
    prof.export_chrome_trace(str(path))
    del g


def bench_trace(lib: Lib, rows: list, gen, P=968, H=50, steps=10, layers=18, fused_layers=False, timeline=None):
    """Every linear layer of one pi0.5 inference, in order, with distinct weights per layer
    (fused_layers: q/k/v and gate/up as one GEMM each, for every library)."""
    workload = "pi05_trace_fused" if fused_layers else "pi05_trace"
    time.sleep(1.0)  # after the M = 4096 rows (see bench_layer)
    def make(N, K, M):
        w = (torch.randn(N, K, device="cuda", generator=gen) * 0.02).to(torch.bfloat16)
        wq8, sw8 = fp8_rowwise(w)
        nv = lib.quantize_weight(w, layout=layout_for(M, N, K))
        # Weights of a model: written at load time, never by the kernel before a GEMM, so they
        # are marked `overlap` (w4a8.h), as W4A8Linear marks its own.
        nv["struct"].overlap = 1
        # The FP8 path's copy for the prefill layers that run the wgmma kernel (opt-in rows below):
        # canonical, which w4a8_prepare_fp8 needs; the same buffer where the exact rows' is canonical.
        nv8 = None
        if M == P and _lib.kernel_name(M, N, K, GROUP).startswith("wgmma"):
            nv8 = nv if nv["layout"] == "canonical" else lib.quantize_weight(w, layout="canonical")
            nv8["struct"].overlap = 1
        return {"bf16": w, "nv": nv, "nv8": nv8, "fp8": wq8, "sw8": sw8, "N": N, "K": K}

    backbone = [[make(N, K, P) for (N, K) in (PI05_BACKBONE_FUSED if fused_layers else PI05_BACKBONE)]
                for _ in range(layers)]
    expert = [[make(N, K, H) for (N, K) in (PI05_EXPERT_FUSED if fused_layers else PI05_EXPERT)] for _ in range(layers)]
    backbone_weights = [l for layer in backbone for l in layer]
    all_weights = backbone_weights + [l for layer in expert for l in layer]
    seq = [(P, l) for layer in backbone for l in layer] + [(H, l) for _ in range(steps) for layer in expert for l in layer]
    whole = seq  # (--timeline swaps in the prefill and the expert part, one at a time)
    xs, ys, ws = {}, {}, {}
    for M, l in seq:
        key = (M, l["K"])
        if key not in xs:
            xs[key] = torch.randn(M, l["K"], device="cuda", generator=gen).to(torch.bfloat16)
            xs[key + ("q",)] = lib.quantize_act(xs[key])
        ys.setdefault((M, l["N"]), torch.empty(M, l["N"], dtype=torch.bfloat16, device="cuda"))
        need = _lib.linear_workspace_size(M, l["N"], l["K"], GROUP)
        if need > ws.get("n", 0):
            ws["n"], ws["t"] = need, torch.empty(need, dtype=torch.uint8, device="cuda")

    cur = [seq]

    def run_fused():
        for M, l in cur[0]:
            lib.linear(xs[(M, l["K"])], l["nv"], ys[(M, l["N"])], M, ws["t"])


    # The FP8 tensor-core path for the prefill layers (opt-in: these ModelOpt weights are LOSSY for
    # it), AUTO for the expert's: canonical copies of the backbone weights the wgmma kernel runs
    # (make's nv8), prepared once (the mma.sync kernel has no FP8 path).
    for l in backbone_weights:
        if l["nv8"] is not None:
            lib.prepare_fp8(l["nv8"])
    gws = {}
    for M, l in seq:
        need = _lib.gemm_workspace_size(M, l["N"], l["K"], GROUP)
        if need > gws.get("n", 0):
            gws["n"], gws["t"] = need, torch.empty(need, dtype=torch.uint8, device="cuda")

    def run_gemm():  # with the workspace w4a8_gemm_workspace_size asks for (FP16 prologue, split-K)
        for M, l in cur[0]:
            q, s = xs[(M, l["K"], "q")]
            lib.gemm(q, s, l["nv"], ys[(M, l["N"])], M, gws["t"])

    def run_gemm_fp8():
        for M, l in cur[0]:
            q, s = xs[(M, l["K"], "q")]
            fp8 = M == P and l["nv8"] is not None and l["nv8"]["struct"].fp8 != _lib.FP8_NONE
            lib.gemm(q, s, l["nv8"] if fp8 else l["nv"], ys[(M, l["N"])], M, gws["t"],
                     kernel=_lib.KERNEL_WGMMA_FP8 if fp8 else None)

    accepted = [l for l in backbone_weights if l["nv8"] is not None and l["nv8"]["struct"].fp8]

    def run_fused_fp8():  # the FP8 copies marked ACCEPTED: w4a8_linear_bf16 takes the FP8 path
        for M, l in cur[0]:
            nv = l["nv8"] if M == P and l["nv8"] is not None else l["nv"]
            lib.linear(xs[(M, l["K"])], nv, ys[(M, l["N"])], M, ws["t"])

    def run_bf16():
        for M, l in cur[0]:
            torch.mm(xs[(M, l["K"])], l["bf16"].t(), out=ys[(M, l["N"])])

    def run_fp8(fast_accum=False):
        for M, l in cur[0]:
            q, s = xs[(M, l["K"], "q")]
            torch._scaled_mm(q.view(torch.float8_e4m3fn), l["fp8"].t(), scale_a=s.reshape(M, 1), scale_b=l["sw8"],
                             out_dtype=torch.bfloat16, use_fast_accum=fast_accum)

    def t(fn):
        return graph_time([fn], n_calls=1, replays=7) * 1.0

    res = {"gemm": t(run_gemm), "fused": t(run_fused), "bf16": t(run_bf16), "fp8": t(run_fp8),
           "gemm_fp8": t(run_gemm_fp8)}
    for l in all_weights:  # the same without `overlap`: every call waits for the one before
        l["nv"]["struct"].overlap = 0
    res["gemm_serial"], res["fused_serial"] = t(run_gemm), t(run_fused)
    for l in all_weights:
        l["nv"]["struct"].overlap = 1
    for l in accepted:
        l["nv8"]["struct"].fp8 = _lib.FP8_ACCEPTED
    res["fused_fp8"] = t(run_fused_fp8)
    # The FP8 path's fast accumulation for the prefill (weights marked FAST), against cuBLASLt's
    # own fast accumulation too.
    for l in accepted:
        l["nv8"]["struct"].fp8 = _lib.FP8_FAST
    res["gemm_fp8_fast"], res["fused_fp8_fast"] = t(run_gemm_fp8), t(run_fused_fp8)
    res["fp8_fast_accum"] = t(lambda: run_fp8(True))
    for l in accepted:
        l["nv8"]["struct"].fp8 = _lib.FP8_LOSSY
    kinds = sorted({_lib.kernel_name(M, l["N"], l["K"], GROUP) for M, l in seq})
    rows.append({"workload": workload, "N": "", "K": "", "M": f"P={P},H={H},steps={steps}", "layout": "per layer (auto)" if LAYOUT == "auto" else LAYOUT,
                 "kernel": "+".join(sorted({k.split('_mt')[0] for k in kinds})), "w4a8_us": res["gemm"],
                 "fused_us": res["fused"], "cublas_bf16_us": res["bf16"], "cublaslt_fp8_us": res["fp8"],
                 "read_floor_us": float("nan"), "gbps": float("nan"), "rel_err": float("nan"), "fused_equal": ""})
    rows.append({**rows[-1], "kernel": "FP8 path (opt-in, lossy) for the prefill + exact path for the expert",
                 "w4a8_us": res["gemm_fp8"], "fused_us": res["fused_fp8"]})
    rows.append({**rows[-2], "kernel": "FP8 path with fast accumulation (opt-in, lossy) for the prefill + exact path "
                 "for the expert", "w4a8_us": res["gemm_fp8_fast"], "fused_us": res["fused_fp8_fast"],
                 "cublaslt_fp8_fast_us": res["fp8_fast_accum"]})
    rows.append({**rows[-3], "kernel": rows[-3]["kernel"] + " (weights not marked overlap)",
                 "w4a8_us": res["gemm_serial"], "fused_us": res["fused_serial"]})
    if timeline:  # per-kernel timelines (bench/timeline.py reads them), weights `overlap` again
        Path(timeline).mkdir(parents=True, exist_ok=True)
        nb = sum(1 for M, _ in whole if M == P)
        for part, sub in (("prefill", whole[:nb]), ("expert", whole[nb:])):
            cur[0] = sub
            for name, fn in (("gemm", run_gemm), ("fused", run_fused), ("bf16", run_bf16), ("fp8", run_fp8)):
                profile_kernels(fn, Path(timeline) / f"{workload}-{part}-{name}.json")
        cur[0] = whole
    print(f"{workload} ({len(seq)} GEMMs): w4a8 gemm {res['gemm']:.0f} us, fused {res['fused']:.0f} us, "
          f"bf16 {res['bf16']:.0f} us, fp8 {res['fp8']:.0f} us; with the FP8 path for the prefill "
          f"{res['gemm_fp8']:.0f} us (fused {res['fused_fp8']:.0f} us), with its fast accumulation "
          f"{res['gemm_fp8_fast']:.0f} us (fused {res['fused_fp8_fast']:.0f} us; cuBLASLt FP8 fast accum "
          f"{res['fp8_fast_accum']:.0f} us); without overlap {res['gemm_serial']:.0f} us "
          f"(fused {res['fused_serial']:.0f} us)", flush=True)


def bench_act_quant(lib: Lib, rows_md: list, M=968, K=16384):
    """Activation quantization BF16 [M, K] -> FP8 + row scales against a device-to-device copy
    (PERF.md target: >= 80% of the copy bandwidth). Inputs rotated past 3x L2."""
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    n = copies_for(M * K * 2, l2)
    xs = [torch.randn(M, K, device="cuda").to(torch.bfloat16) for _ in range(n)]
    q = torch.empty(M, K, dtype=torch.uint8, device="cuda")
    s = torch.empty(M, dtype=torch.float32, device="cuda")
    t_q = graph_time([lambda x=x: _lib.check(lib.L.w4a8_quantize_activation_fp8(ptr(x), ptr(q), ptr(s), M, K, stream()))
                      for x in xs])
    moved = M * K * 2 + M * K + M * 4
    src = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    t_c = graph_time([lambda: dst.copy_(src)], n_calls=10)
    copy_gbps = 2 * src.numel() / t_c * 1e-3
    q_gbps = moved / t_q * 1e-3
    rows_md += ["", "| activation quantization | us | GB/s (read + write) | device copy GB/s | fraction of copy |",
                "|---|---|---|---|---|",
                f"| [{M}, {K}] BF16 -> FP8 + scales | {t_q:.2f} | {q_gbps:.0f} | {copy_gbps:.0f} | {q_gbps / copy_gbps:.2f} |"]
    print(rows_md[-1], flush=True)


def card_info():
    name = torch.cuda.get_device_name()
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=clocks.sm,clocks.max.sm,clocks.mem,driver_version",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:  # pragma: no cover
        smi = "?"
    return name, smi


def fmt(v, spec):
    return "-" if isinstance(v, float) and math.isnan(v) else format(v, spec)


def write_outputs(rows, args, card, clocks, date, cmd, extra_md=()):
    import csv
    cols = ["workload", "N", "K", "M", "kernel", "w4a8_us", "cublas_bf16_us", "cublaslt_fp8_us", "read_floor_us",
            "card", "date", "fused_us", "gbps", "rel_err", "fused_equal", "layout", "vs_exact_err",
            "fp8_max_product_err", "cublaslt_fp8_fast_us"]
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            wr = csv.DictWriter(f, fieldnames=cols)
            wr.writeheader()
            for r in rows:
                wr.writerow({**{k: r.get(k, "") for k in cols}, "card": card, "date": date})
    lines = [f"Card: {card} (clocks sm/max/mem, driver: {clocks}); date {date}; group {GROUP}; "
             f"weight layout: {LAYOUT} (auto: tiled -- prepacked once at load, kernel tagged [tiled] -- for the exact "
             "path's rows, canonical copies for the FP8 path's; the read floor streams the same bytes)"
             + ("; layer rows with weights marked overlap (back-to-back calls as in a model)." if OVERLAP else "."),
             f"Command: `{cmd}`", "",
             "| N x K | M | kernel | w4a8 us | fused (BF16 in) us | GB/s | read floor us | x floor | cuBLAS BF16 us "
             "| x BF16 | cuBLASLt FP8 us | x FP8 | rel. err vs exact |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        shape = {"layer": f"{r['N']} x {r['K']}", "pi05_trace": "pi0.5 trace (per inference)",
                 "pi05_trace_fused": "pi0.5 trace, q/k/v and gate/up fused (per inference)"}[r["workload"]]
        xf = r["w4a8_us"] / r["read_floor_us"] if r["read_floor_us"] == r["read_floor_us"] else float("nan")
        lines.append(f"| {shape} | {r['M']} | {r['kernel']} | {fmt(r['w4a8_us'], '.2f')} | {fmt(r['fused_us'], '.2f')} "
                     f"| {fmt(r['gbps'], '.0f')} | {fmt(r['read_floor_us'], '.2f')} | {fmt(xf, '.2f')} "
                     f"| {fmt(r['cublas_bf16_us'], '.2f')} | {fmt(r['cublas_bf16_us'] / r['w4a8_us'], '.2f')} "
                     f"| {fmt(r['cublaslt_fp8_us'], '.2f')} | {fmt(r['cublaslt_fp8_us'] / r['w4a8_us'], '.2f')} "
                     f"| {fmt(r['rel_err'], '.1e')}"
                     + (f" (vs exact path {fmt(r['vs_exact_err'], '.1e')})" if "vs_exact_err" in r else "")
                     + (f"; cuBLASLt FP8 fast accum {fmt(r['cublaslt_fp8_fast_us'], '.2f')} us: "
                        f"x {fmt(r['cublaslt_fp8_fast_us'] / r['w4a8_us'], '.2f')}" if r.get("cublaslt_fp8_fast_us") else "")
                     + " |")
    md = "\n".join(lines + list(extra_md)) + "\n"
    if args.md:
        Path(args.md).write_text(md)
    print(md)
    if args.png:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharex=True)
        for i, (N, K) in enumerate(sorted({(r["N"], r["K"]) for r in rows if r["workload"] == "layer"})):
            color = f"C{i % 10}"
            # exact path solid, FP8 path (opt-in) dashed, its fast accumulation (opt-in) dotted
            for path in ("exact", "fp8", "fast"):
                rs = sorted((r for r in rows if r["workload"] == "layer" and (r["N"], r["K"]) == (N, K)
                             and ("exact" if "vs_exact_err" not in r else "fast" if "fp8_fast" in r["kernel"]
                                  else "fp8") == path), key=lambda r: r["M"])
                if not rs:
                    continue
                m = [r["M"] for r in rs]
                style = dict(marker={"exact": "o", "fp8": "s", "fast": "^"}[path],
                             ls={"exact": "-", "fp8": "--", "fast": ":"}[path], color=color,
                             label=f"{N}x{K}" + {"exact": "", "fp8": " FP8 path", "fast": " FP8 fast accum"}[path])
                axes[0].plot(m, [r["cublas_bf16_us"] / r["w4a8_us"] for r in rs], **style)
                axes[1].plot(m, [r["cublaslt_fp8_us"] / r["w4a8_us"] for r in rs], **style)
        from plot_sweep import speedup_axes  # (bench/, this script's folder, is on sys.path)
        speedup_axes(axes)
        axes[0].legend(title="N x K", fontsize=8)
        fig.suptitle(f"w4a8 on {card}, {date}: exact path (solid), FP8 tensor-core path (dashed, opt-in), "
                     "its fast accumulation (dotted, opt-in)")
        fig.tight_layout()
        fig.savefig(args.png, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=str(REPO / "build-gpu"), help="CMake build folder with libw4a8.so")
    ap.add_argument("--csv")
    ap.add_argument("--md")
    ap.add_argument("--png")
    ap.add_argument("--quick", action="store_true", help="M in {1, 16} on two shapes, no trace")
    ap.add_argument("--ms", default=None, help="comma-separated M values")
    ap.add_argument("--shapes", default=None, help="comma-separated NxK")
    ap.add_argument("--no-trace", action="store_true")
    ap.add_argument("--trace-only", action="store_true", help="only the pi0.5 trace (no layer table)")
    ap.add_argument("--timeline", metavar="DIR", help="also write per-kernel timelines of the traces (CUPTI, "
                    "Chrome trace JSON per part and library) to DIR; bench/timeline.py summarizes them")
    ap.add_argument("--overlap", action="store_true",
                    help="mark the layer rows' weights overlap (w4a8.h): back-to-back calls as in a model")
    ap.add_argument("--sweep", metavar="CSV", help="time every configuration per (shape, M) instead")
    ap.add_argument("--configs", default=None, help="with --sweep: only configurations whose name matches this regex")
    ap.add_argument("--no-check", action="store_true", help="with --sweep: time even wrong results (builds made for timing experiments)")
    ap.add_argument("--no-fp8", action="store_true", help="no FP8-path rows (the exact path's and the baselines' only)")
    ap.add_argument("--layout", choices=["auto", "tiled", "canonical"], default="auto",
                    help="weight layout of the exact path's rows (tiled: w4a8_prepack_weight at load time; auto: "
                         "tiled where it fits, since session 29 faster for every kernel; the FP8 path's rows always "
                         "use canonical copies)")
    args = ap.parse_args()
    global NO_FP8
    NO_FP8 = args.no_fp8
    global LAYOUT
    LAYOUT = args.layout
    global OVERLAP
    OVERLAP = args.overlap
    torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = True
    lib = Lib(Path(args.build))
    gen = torch.Generator(device="cuda").manual_seed(1234)
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    shapes = SHAPES[:2] if args.quick else SHAPES
    ms = [1, 16] if args.quick else MS
    if args.shapes:
        shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
    if args.ms:
        ms = [int(v) for v in args.ms.split(",")]
    if args.sweep:
        sweep(lib, shapes, ms, l2, gen, args.sweep, args.configs, check=not args.no_check)
        return
    rows = []
    for N, K in ([] if args.trace_only else shapes):
        bench_layer(lib, N, K, ms, l2, rows, gen)
    if not (args.quick or args.no_trace):
        bench_trace(lib, rows, gen, timeline=args.timeline)
        torch.cuda.empty_cache()
        bench_trace(lib, rows, gen, fused_layers=True, timeline=args.timeline)
    extra = []
    if not (args.quick or args.trace_only):
        try:
            bench_act_quant(lib, extra)
        except Exception as e:  # pragma: no cover - reported, does not hide the tables above
            print(f"# activation quantization benchmark failed: {e}", file=sys.stderr)
    card, clocks = card_info()
    date = datetime.date.today().isoformat()
    cmd = "python3 bench/bench.py " + " ".join(Path(a).name if a.startswith("/") else a for a in sys.argv[1:])
    write_outputs(rows, args, card, clocks, date, cmd, extra)


if __name__ == "__main__":
    main()
