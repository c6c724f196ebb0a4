"""Session 32: the fused (BF16-input) call's time per CUDA graph instance. s32_anomaly.py showed
the 4096x1024 M = 16 fused call at ~4.05 us in some graph instances and ~4.5-4.8 us in others,
with the same buffers, in one process: the full table's +27% is one instance landing slow.
This captures N fresh graphs per row (each timed as bench.py times one: median of 15 replays)
and prints every instance, for the fused call and for the GEMM alone.
  python3 bench/experiments/s32_bimodal.py BUILD [N]"""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import bench as B  # noqa: E402

build = Path(sys.argv[1] if len(sys.argv) > 1 else "build")
n = int(sys.argv[2]) if len(sys.argv) > 2 else 12
lib = B.Lib(build)
gen = torch.Generator(device="cuda").manual_seed(1234)
l2 = torch.cuda.get_device_properties(0).L2_cache_size
for N, K, M in ((4096, 1024, 16), (4096, 1024, 1), (2048, 2048, 16), (1024, 4096, 16), (16384, 2048, 16)):
    w_bf16 = (torch.randn(N, K, device="cuda", generator=gen) * 0.02).to(torch.bfloat16)
    nv = lib.rotated_weights(w_bf16, l2, "tiled")
    x, q, s, y, y2, ws, gws = B.layer_buffers(lib, M, N, K, gen)
    g = sorted(round(B.graph_time([lambda w=w: lib.gemm(q, s, w, y, M, gws) for w in nv]), 2) for _ in range(n))
    f = sorted(round(B.graph_time([lambda w=w: lib.linear(x, w, y2, M, ws) for w in nv]), 2) for _ in range(n))
    print(f"{N}x{K} M={M}: gemm {g}\n{'':>{len(str(N)) + len(str(K)) + 1}} M={M}: fused {f}", flush=True)
    del nv
