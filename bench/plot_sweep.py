#!/usr/bin/env python3
"""The no-cliff picture (issue 7): speedup of the dispatched exact path over cuBLAS BF16 and
cuBLASLt FP8 against M, one line per shape, from a bench.py CSV (its layer rows; FP8-path rows,
which carry a vs_exact_err, are left out). Lines at 1.0 and at the 0.95x target.

    python3 bench/bench.py --no-trace --no-fp8 --ms 1,8,16,...,4096 --csv sweep.csv   # GPU machine
    python3 bench/plot_sweep.py sweep.csv sweep.png                                   # anywhere with matplotlib
"""
import argparse
import csv
from collections import defaultdict


def speedup_axes(axes):
    """The two panels' common look (also bench.py's table picture): log M, a line at 1.0x."""
    for ax, title in zip(axes, ["speedup over cuBLAS BF16", "speedup over cuBLASLt FP8 (row-wise)"]):
        ax.set_xscale("log")
        ax.axhline(1.0, color="gray", lw=0.8)
        ax.set_xlabel("M (tokens)")
        ax.set_ylabel("x")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv")
    ap.add_argument("png")
    args = ap.parse_args()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = defaultdict(list)
    card = date = ""
    with open(args.csv, newline="") as f:
        for r in csv.DictReader(f):
            if r["workload"] != "layer" or r.get("vs_exact_err") or "fp8" in r["kernel"]:
                continue
            card, date = r["card"], r["date"]
            us = float(r["w4a8_us"])
            series[(int(r["N"]), int(r["K"]))].append(
                (int(r["M"]), float(r["cublas_bf16_us"]) / us, float(r["cublaslt_fp8_us"]) / us))
    if not series:
        raise SystemExit(f"{args.csv}: no exact-path layer rows")
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharex=True)
    for i, (shape, pts) in enumerate(sorted(series.items(), key=lambda kv: -kv[0][0] * kv[0][1])):
        pts.sort()
        m = [p[0] for p in pts]
        style = dict(marker="o", ms=3.5, color=f"C{i % 10}", label=f"{shape[0]}x{shape[1]}")
        axes[0].plot(m, [p[1] for p in pts], **style)
        axes[1].plot(m, [p[2] for p in pts], **style)
    speedup_axes(axes)
    axes[0].axhline(0.95, color="red", lw=0.8, ls="--", label="0.95x (target)")
    axes[0].legend(title="N x K", fontsize=8)
    fig.suptitle(f"w4a8 exact path as dispatched (AUTO), {card}, {date}")
    fig.tight_layout()
    fig.savefig(args.png, dpi=110)
    print(f"wrote {args.png}: {len(series)} shapes, {sum(len(v) for v in series.values())} points")


if __name__ == "__main__":
    main()
