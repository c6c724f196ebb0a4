"""Calls every configuration whose name matches a regex a few times on one problem, for ncu:

    ncu -k regex:_exact --launch-skip 2 --launch-count 1 ... python3 bench/profile_configs.py 'mma_exact_mt1_wn4_wk2_v16_g16$' 1 16384 2048

(the first calls warm up; the weights are read from DRAM on every call, as in decode).
"""
from __future__ import annotations

import ctypes
import re
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import GROUP, Lib, _lib, ptr, stream  # noqa: E402


def main():
    pattern, M, N, K = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    build = Path(sys.argv[5]) if len(sys.argv) > 5 else Path(__file__).resolve().parents[1] / "build"
    lib = Lib(build)
    L = lib.L
    gen = torch.Generator(device="cuda").manual_seed(7)
    w = lib.quantize_weight((torch.randn(N, K, device="cuda", generator=gen) * 0.02).to(torch.bfloat16))
    if "fp8" in pattern:
        lib.prepare_fp8(w)  # the FP8 path's configurations refuse weights without it
    q, s = lib.quantize_act(torch.randn(M, K, device="cuda", generator=gen).to(torch.bfloat16))
    y = torch.empty(M, N, dtype=torch.bfloat16, device="cuda")
    ws = lib.any_config_workspace(M, N, K)
    flush = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")
    for i in range(L.w4a8_gemm_config_count()):
        name = L.w4a8_gemm_config_name(i).decode()
        if f"_g{GROUP}" not in name or not re.search(pattern, name):
            continue
        for _ in range(3):
            flush.zero_()  # evict the weights from L2
            _lib.check(L.w4a8_gemm_with_config(ptr(q), ptr(s), ctypes.byref(w["struct"]), ptr(y), M, 1.0, i,
                                               ptr(ws), ws.numel(), stream()))
        torch.cuda.synchronize()
        print("ran", name)


if __name__ == "__main__":
    main()
