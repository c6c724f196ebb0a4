#!/usr/bin/env python3
"""Where a trace's time goes, kernel by kernel: reads the per-kernel timelines that
`bench/bench.py --trace-only --timeline DIR` writes (one CUDA-graph replay of the prefill or the
expert part of the pi0.5 trace per library, CUPTI timestamps through torch.profiler) and prints
one markdown table per trace and part.

Each kernel's time is split into what it adds to the span and what it hides:
  advance  how far it moves the timeline's right edge: end - max(its start, the latest end of
           the kernels before it), or 0 -- the sum over kernels plus the idle gaps is the span;
  overlap  its duration minus its advance (spent beside kernels started earlier: a programmatic
           dependent's early start, weight prefetch before its wait);
  gap      idle GPU time before it (no kernel running), launch latency and dependency waits.
Kernels are grouped by role (quantizer, FP8 -> FP16 / permuted FP8 prologue, mma.sync GEMM,
wgmma GEMM, split-K reduction, cuBLAS); per group: count, the median duration, and the sums.

  python3 bench/timeline.py DIR            # every timeline in DIR
"""
from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

ROLES = [
    ("quantizer", re.compile(r"quantize_activation")),
    ("prologue", re.compile(r"permute_fp8|fp8_to_f16")),
    ("wgmma GEMM", re.compile(r"wgmma_exact_kernel")),
    ("mma GEMM", re.compile(r"(?<!wg)mma_exact_kernel")),  # (a substring of the wgmma kernel's name)
    ("split-K reduce", re.compile(r"splitk_reduce")),
]


def role(name: str) -> str:
    for r, pat in ROLES:
        if pat.search(name):
            return r
    return "cuBLAS / other"


def kernels(path: Path):
    ev = json.loads(path.read_text())
    ev = ev.get("traceEvents", ev)
    ks = [(float(e["ts"]), float(e["dur"]), e["name"]) for e in ev if e.get("cat") == "kernel" and "dur" in e]
    ks.sort()
    return ks


def walk(ks):
    """Each kernel in start order with its advance and the idle gap before it (see the top):
    (ts, dur, name, advance, gap); and the span."""
    out, edge = [], None
    for ts, dur, name in ks:
        end = ts + dur
        gap = 0.0 if edge is None else max(0.0, ts - edge)
        adv = dur if edge is None else max(0.0, end - max(ts, edge))
        edge = end if edge is None else max(edge, end)
        out.append((ts, dur, name, adv, gap))
    return out, (edge - ks[0][0]) if ks else 0.0


def summarize(ks):
    """Per role: [count, durations, advance, overlap, gap]; and the span."""
    out = {}
    steps, span = walk(ks)
    for ts, dur, name, adv, gap in steps:
        r = out.setdefault(role(name), [0, [], 0.0, 0.0, 0.0])
        r[0] += 1
        r[1].append(dur)
        r[2] += adv
        r[3] += dur - adv
        r[4] += gap
    return out, span


def per_layer(ks, types=7):
    """The kernels cut into calls (a call starts at a quantizer or prologue, or at a GEMM not
    right after one), the calls numbered in the trace's order: advance per layer position (call
    index modulo `types`, the PI05 order q, k, v, o, gate, up, down), or None where the count
    of calls is not a whole number of layers (e.g. a library that launches several kernels)."""
    calls, prev = [], None
    for ts, dur, name, adv, gap in walk(ks)[0]:
        r = role(name)
        starts = r in ("quantizer", "prologue") or (r != "split-K reduce" and prev not in ("quantizer", "prologue"))
        if starts or not calls:
            calls.append(0.0)
        calls[-1] += adv
        prev = r
    if len(calls) % types:
        return None
    per = [0.0] * types
    for i, a in enumerate(calls):
        per[i % types] += a
    return per, len(calls)


def main(argv):
    if len(argv) != 2:
        print(__doc__)
        return 2
    files = sorted(Path(argv[1]).glob("*.json"))
    if not files:
        print(f"no timelines (*.json) in {argv[1]}")
        return 1
    for f in files:
        ks = kernels(f)
        out, span = summarize(ks)
        busy = sum(v[2] for v in out.values())
        print(f"\n### {f.stem}: {len(ks)} kernels, span {span:.1f} us (kernels advance it {busy:.1f}, "
              f"idle gaps {span - busy:.1f})\n")
        print("| role | kernels | median us | sum of durations us | advance us | overlap us | gap before us |")
        print("|---|---|---|---|---|---|---|")
        for r, (n, durs, adv, ovl, gap) in sorted(out.items(), key=lambda kv: -kv[1][2]):
            print(f"| {r} | {n} | {statistics.median(durs):.2f} | {sum(durs):.1f} | {adv:.1f} | {ovl:.1f} | {gap:.1f} |")
        pl = per_layer(ks)
        if pl:
            per, n = pl
            print(f"\nadvance per layer position over {n} calls (q, k, v, o, gate, up, down), us: " +
                  ", ".join(f"{a:.1f}" for a in per))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
