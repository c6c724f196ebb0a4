"""Session 28: compares bench.py layer CSVs of runs in one process order (base, new, base):
python3 s28_layout_ab.py BASE1.csv NEW.csv BASE2.csv -- the exact-path rows, us, new against the
mean of the two base runs (GEMM and fused columns), with each run's kernel."""
import csv
import sys

runs = [list(csv.DictReader(open(f))) for f in sys.argv[1:4]]
key = lambda r: (r["N"], r["K"], r["M"])  # noqa: E731
rows = [{key(r): r for r in run if r["workload"] == "layer" and "fp8" not in r["kernel"]} for run in runs]
for k, n in rows[1].items():
    if k not in rows[0] or k not in rows[2]:
        continue
    b1, b2 = rows[0][k], rows[2][k]
    g = [float(x["w4a8_us"]) for x in (b1, n, b2)]
    f = [float(x["fused_us"]) for x in (b1, n, b2)]
    print(f"{k[0]}x{k[1]} M={k[2]:>4} | gemm {g[1]:8.2f} / {(g[0] + g[2]) / 2:8.2f} ({100 * (2 * g[1] / (g[0] + g[2]) - 1):+5.1f}%)"
          f" | fused {f[1]:8.2f} / {(f[0] + f[2]) / 2:8.2f} ({100 * (2 * f[1] / (f[0] + f[2]) - 1):+5.1f}%)"
          f" | spread {100 * abs(g[0] - g[2]) / min(g[0], g[2]):4.1f}% | new {n['kernel']} | base {b1['kernel']}")
