"""Session 32: the 4096x1024 M = 16 fused row that reads ~+27% over the GEMM in full table runs
and +2..7% elsewhere. Session 32's first two calls tied it to the process's allocation history
(FP8 rows of a large shape before it; gone with PYTORCH_CUDA_ALLOC_CONF=expandable_segments).
This runs 16384x2048's rows (as bench.py does), then the 4096x1024 rows set up as bench_layer
sets them up, and times the fused call again with each of its buffers moved (fresh copies
allocated while the old ones stay alive), printing where each lies.
  python3 bench/experiments/s32_anomaly.py BUILD"""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import bench as B  # noqa: E402

build = Path(sys.argv[1] if len(sys.argv) > 1 else "build")
lib = B.Lib(build)
gen = torch.Generator(device="cuda").manual_seed(1234)
l2 = torch.cuda.get_device_properties(0).L2_cache_size
rows = []
if "--fresh" not in sys.argv:
    B.bench_layer(lib, 16384, 2048, B.MS, l2, rows, gen)

N, K = 4096, 1024
w_bf16 = (torch.randn(N, K, device="cuda", generator=gen) * 0.02).to(torch.bfloat16)
bf = [w_bf16] + [w_bf16.clone() for _ in range(B.copies_for(N * K * 2, l2) - 1)]
wq8, sw8 = B.fp8_rowwise(w_bf16)
f8 = [wq8] + [wq8.clone() for _ in range(B.copies_for(N * K, l2) - 1)]
nv = lib.rotated_weights(w_bf16, l2, "tiled")
keep = []
for M in (1, 16):
    x, q, s, y, y2, ws, gws = B.layer_buffers(lib, M, N, K, gen)
keep += [x, q, s, y, y2, ws]


def where(t):
    p = t.data_ptr()
    return f"{p:#x} (2MB page +{p % (2 << 20):#x})"


def fused(x, ws, y2, reps=3):
    return [round(B.graph_time([lambda w=w: lib.linear(x, w, y2, M, ws) for w in nv]), 2) for _ in range(reps)]


tg = [round(B.graph_time([lambda w=w: lib.gemm(q, s, w, y, M, gws) for w in nv]), 2) for _ in range(3)]
print(f"M={M} gemm {tg}  (q at {where(q)}, s at {where(s)}, y at {where(y)})")
print(f"fused, bench_layer's buffers: {fused(x, ws, y2)}  x at {where(x)}, ws at {where(ws)} ({ws.numel()} B), y2 at {where(y2)}")
x_b = x.clone(); keep.append(x_b)
print(f"fused, x moved:  {fused(x_b, ws, y2)}  x at {where(x_b)}")
ws_b = torch.empty_like(ws); keep.append(ws_b)
print(f"fused, ws moved: {fused(x, ws_b, y2)}  ws at {where(ws_b)}")
y2_b = torch.empty_like(y2); keep.append(y2_b)
print(f"fused, y2 moved: {fused(x, ws, y2_b)}  y2 at {where(y2_b)}")
big = torch.empty(64 << 20, dtype=torch.uint8, device="cuda"); keep.append(big)  # a fresh segment
x_c, ws_c, y2_c = x.clone(), torch.empty_like(ws), torch.empty_like(y2); keep += [x_c, ws_c, y2_c]
print(f"fused, all moved: {fused(x_c, ws_c, y2_c)}  x {where(x_c)} ws {where(ws_c)} y2 {where(y2_c)}")
print(f"fused, bench_layer's buffers again: {fused(x, ws, y2)}")
