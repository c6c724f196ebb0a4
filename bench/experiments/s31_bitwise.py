"""Outputs of every mma configuration on a few problems, saved for a bitwise comparison of two
library builds (session 31: the split epilogue must give the same bits as the one it replaces):

    python3 bench/experiments/s31_bitwise.py BUILD_A a.pt && python3 bench/experiments/s31_bitwise.py BUILD_B b.pt
    python3 bench/experiments/s31_bitwise.py --compare a.pt b.pt

Problems: ragged M, N, K (partial token and row tiles, K not a whole number of batches), random
data with a bias-free epilogue and alpha != 1, canonical and tiled weights, fixed seeds.
"""
from __future__ import annotations

import ctypes
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import Lib, _lib, ptr, stream  # noqa: E402

PROBLEMS = [(1, 2048, 1024), (13, 1040, 2080), (50, 4096, 1024), (50, 1024, 4096), (77, 528, 3072), (128, 2048, 2048)]


def run(build: Path, out: Path):
    lib = Lib(build)
    L = lib.L
    res = {}
    for (M, N, K) in PROBLEMS:
        gen = torch.Generator(device="cuda").manual_seed(M * 7919 + N * 31 + K)
        wb = (torch.randn(N, K, device="cuda", generator=gen) * 0.02).to(torch.bfloat16)
        q, s = lib.quantize_act(torch.randn(M, K, device="cuda", generator=gen).to(torch.bfloat16))
        ws = lib.any_config_workspace(M, N, K)
        for layout in ("canonical", "tiled"):
            w = lib.quantize_weight(wb, layout=layout)
            for i in range(L.w4a8_gemm_config_count()):
                name = L.w4a8_gemm_config_name(i).decode()
                if not name.startswith("mma_exact") or "_g16" not in name:
                    continue
                y = torch.full((M, N), float("nan"), dtype=torch.bfloat16, device="cuda")
                st = L.w4a8_gemm_with_config(ptr(q), ptr(s), ctypes.byref(w["struct"]), ptr(y), M, 0.75, i, ptr(ws),
                                             ws.numel(), stream())
                if st != 0:
                    continue  # (configurations this device or layout refuses)
                res[f"{M}x{N}x{K} {layout} {name}"] = y.view(torch.int16).cpu()
    torch.cuda.synchronize()
    torch.save(res, out)
    print(f"{len(res)} outputs -> {out}")


def compare(a: Path, b: Path):
    A, B = torch.load(a), torch.load(b)
    keys = sorted(set(A) | set(B))
    same = sum(1 for k in keys if k in A and k in B and torch.equal(A[k], B[k]))
    for k in keys:
        if k not in A or k not in B or not torch.equal(A[k], B[k]):
            print("DIFFERS:", k)
    print(f"bitwise equal: {same} / {len(keys)}")
    return same == len(keys)


if __name__ == "__main__":
    if sys.argv[1] == "--compare":
        sys.exit(0 if compare(Path(sys.argv[2]), Path(sys.argv[3])) else 1)
    run(Path(sys.argv[1]), Path(sys.argv[2]))
