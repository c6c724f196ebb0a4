"""Per-warp SM-clock timeline of the dispatched mma kernel (session 30; the library built with
bench/experiments/s30-mma-timeline.patch):  python3 bench/experiments/s30_mma_timeline.py BUILD

Per problem: 4 tiled weight copies, 12 calls in a row (eager, each a programmatic dependent of the
one before, as the tables run them), then the last call's records, medians over warps, in us from
the warp's start: after the programmatic wait, first use of the last batch, start of the last
finish_tile (K-reduction + epilogue), end; the share of time waiting for weights; and the SM span.
"""
from __future__ import annotations

import ctypes
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import Lib, _lib  # noqa: E402


def main():
    build = Path(sys.argv[1])
    lib = Lib(build)
    L = lib.L
    L.w4a8_debug_mma_timeline.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    khz = 1980000  # the H100's SM clock in kHz, as session 20's script took it (clock64 counts SM clocks)
    gen = torch.Generator(device="cuda").manual_seed(3)
    probs = [(1, 16384, 2048), (16, 16384, 2048), (50, 16384, 2048), (1, 4096, 1024), (16, 4096, 1024), (50, 4096, 1024),
             (128, 4096, 1024), (50, 1024, 4096), (50, 2048, 2048), (50, 256, 1024), (16, 2048, 16384)]
    for M, N, K in probs:
        kname = _lib.kernel_name(M, N, K, 16)
        if not kname.startswith("mma"):
            print(f"{M} x {N} x {K}: {kname} (not mma)")
            continue
        w_bf16 = (torch.randn(N, K, device="cuda", generator=gen) * 0.02).to(torch.bfloat16)
        ws = [lib.quantize_weight(w_bf16, layout="tiled") for _ in range(4)]
        for w in ws:
            w["struct"].overlap = 1
        q, s = lib.quantize_act(torch.randn(M, K, device="cuda", generator=gen).to(torch.bfloat16))
        y = torch.empty(M, N, dtype=torch.bfloat16, device="cuda")
        n = 8192 * 7
        host = (ctypes.c_ulonglong * n)()
        torch.cuda.synchronize()
        assert L.w4a8_debug_mma_timeline(host, n) == 0
        for i in range(12):
            lib.gemm(q, s, ws[i % 4], y, M)
        torch.cuda.synchronize()
        assert L.w4a8_debug_mma_timeline(host, n) == 0
        rec = [host[i * 7:(i + 1) * 7] for i in range(8192) if host[i * 7 + 6]]
        us = 1e3 / khz
        med = lambda f: statistics.median(f(r) for r in rec)
        pdl = med(lambda r: (r[1] - r[0]) * us)
        last = med(lambda r: (r[3] - r[0]) * us)
        fin = med(lambda r: (r[4] - r[0]) * us)
        end = med(lambda r: (r[5] - r[0]) * us)
        waitf = med(lambda r: r[2] / max(1, r[5] - r[0]))
        per = {}
        for r in rec:
            x = per.setdefault(r[6], [r[0], r[5]])
            x[0], x[1] = min(x[0], r[0]), max(x[1], r[5])
        span = statistics.median((x[1] - x[0]) * us for x in per.values())
        print(f"{M:>3} x {N:>6} x {K:<6} {kname:38} warps {len(rec):5}  pdl-wait {pdl:5.2f}  last batch {last:5.2f}  "
              f"finish {fin:5.2f}  end {end:5.2f} us  weights-wait {100 * waitf:3.0f}%  SM span {span:5.2f}", flush=True)


if __name__ == "__main__":
    main()
