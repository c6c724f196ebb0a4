"""Target for ncu: the dispatched GEMM on one problem, tiled weights read from DRAM (a 256 MB
buffer is zeroed before every call), activations L2-hot (re-read after the flush), as in pi0.5's
expert layers. Profile the third launch with --cache-control none (scripts/ncu-profile.sh with
TARGET=dispatched NCU_ARGS="--cache-control none"):

    ncu --cache-control none -k regex:mma_exact --launch-skip 2 --launch-count 1 ... \
        python3 bench/profile_dispatched.py M N K BUILD
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import Lib, _lib  # noqa: E402


def main():
    M, N, K = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    lib = Lib(Path(sys.argv[4]))
    gen = torch.Generator(device="cuda").manual_seed(11)
    w = lib.quantize_weight((torch.randn(N, K, device="cuda", generator=gen) * 0.02).to(torch.bfloat16), layout="tiled")
    q, s = lib.quantize_act(torch.randn(M, K, device="cuda", generator=gen).to(torch.bfloat16))
    y = torch.empty(M, N, dtype=torch.bfloat16, device="cuda")
    flush = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")
    acc = torch.zeros((), device="cuda")
    for _ in range(4):
        flush.zero_()
        acc += q.view(torch.uint8).sum() + s.sum()  # activations and row scales back into L2
        lib.gemm(q, s, w, y, M)
    torch.cuda.synchronize()
    print(M, N, K, _lib.kernel_name(M, N, K, 16), float(acc))


if __name__ == "__main__":
    main()
