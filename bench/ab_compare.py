#!/usr/bin/env python3
"""Compares the CSVs scripts/ab-bench.sh wrote (ab-{layers,trace}-<run>-<new|base>.csv in a
folder): one line per row of bench.py's output, the new build's GEMM and fused times against the
mean of the base runs, and how far the base runs are apart (a difference smaller than that
spread is not a result).

    python3 bench/ab_compare.py ab-out
"""
from __future__ import annotations

import csv
import math
import re
import statistics
import sys
from pathlib import Path


def _num(v: str) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def load(folder: Path):
    """{row key: {"new": [(gemm, fused)], "base": [...]}} over every ab-*.csv in folder."""
    rows: dict = {}
    for f in sorted(folder.glob("ab-*-*.csv")):
        m = re.match(r"ab-(layers|trace)-\d+-(new|base)\.csv$", f.name)
        if not m:
            continue
        for r in csv.DictReader(open(f)):
            # The kernel column names the path (exact / FP8); the new build may pick another
            # configuration of the same path, so rows are keyed by the path, not the name.
            path = "fp8" if "fp8" in r["kernel"] or "FP8 path" in r["kernel"] else "exact"
            extra = "serial" if "not marked overlap" in r["kernel"] else ""
            key = (r["workload"], r["N"], r["K"], r["M"], path, extra)
            rows.setdefault(key, {"new": [], "base": [], "kernel": {}})
            rows[key][m.group(2)].append((_num(r["w4a8_us"]), _num(r.get("fused_us"))))
            rows[key]["kernel"][m.group(2)] = r["kernel"]
    return rows


def pct(a: float, b: float) -> str:
    return "   n/a" if math.isnan(a) or math.isnan(b) or b == 0 else f"{(a / b - 1) * 100:+6.1f}%"


def main(argv) -> int:
    folder = Path(argv[1] if len(argv) > 1 else "ab-out")
    rows = load(folder)
    if not rows:
        print(f"no ab-*.csv in {folder}")
        return 1
    print("row | new gemm / base gemm (change) | new fused / base fused (change) | base spread gemm, fused")
    for key, d in rows.items():
        if not d["new"] or not d["base"]:
            continue
        wl, n, k, m, path, extra = key
        name = f"{wl} {path}{' ' + extra if extra else ''}" if wl != "layer" else f"{n}x{k} M={m} {path}"
        ng = statistics.mean(v[0] for v in d["new"])
        nf = statistics.mean(v[1] for v in d["new"])
        bg = [v[0] for v in d["base"]]
        bf = [v[1] for v in d["base"]]
        mbg, mbf = statistics.mean(bg), statistics.mean(bf)
        spread_g = (max(bg) / min(bg) - 1) * 100 if min(bg) > 0 else math.nan
        spread_f = (max(bf) / min(bf) - 1) * 100 if all(x > 0 for x in bf) else math.nan
        kn, kb = d["kernel"].get("new", ""), d["kernel"].get("base", "")
        pick = "" if kn == kb else f"  [new picks {kn}, base {kb}]"
        print(f"{name:32s} | {ng:9.2f} / {mbg:9.2f} ({pct(ng, mbg)}) | {nf:9.2f} / {mbf:9.2f} ({pct(nf, mbf)}) "
              f"| {spread_g:4.1f}%, {spread_f:4.1f}%{pick}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
