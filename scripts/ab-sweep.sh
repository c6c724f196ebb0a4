#!/usr/bin/env bash
# A/B of kernel builds in one process order on the GPU machine: `bench.py --sweep` (every
# configuration matching CF, checked against the reference, then timed) for the library in
# ./build ("new") and for each other variant in build/<name>/ (a libw4a8.so.0.1.0 built from
# another tree, e.g. `git worktree add /tmp/base HEAD` + a w4a8-only build, copied there),
# then one line per (shape, M): each variant's best configuration and time. Same card, same
# process order, so differences of a few percent mean something (BENCHMARKS.md's A/B rows).
#
#   VARIANTS="new base" MS=1,16,50 SH=16384x2048,4096x1024 scripts/ab-sweep.sh
#   NCU="50x4096x1024" ...  also ncu-profiles those shapes (M x N x K) with ./build
#
# Writes sweep-<variant>.csv/.log under $OUT (or ./ab-out).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/ab-out}
mkdir -p "$OUT"
VARIANTS=${VARIANTS:-new base}
SH=${SH:-16384x2048,2048x16384,32768x2048,4096x1024,1024x4096,2048x2048}
MS=${MS:-1,16,50}
CF=${CF:-mma_exact}
for lib in build build/*/; do  # the soname links the loader wants (the carried files are plain)
  [ -f "$lib/libw4a8.so.0.1.0" ] && (cd "$lib" && ln -sf libw4a8.so.0.1.0 libw4a8.so.0 && ln -sf libw4a8.so.0 libw4a8.so)
done
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv,noheader
for v in $VARIANTS; do
  if [ "$v" = new ]; then B=build; else B=build/$v; [ -f "$B/libw4a8_bench.so" ] || cp build/libw4a8_bench.so "$B/"; fi
  W4A8_LIBRARY=$B/libw4a8.so timeout 280 python3 bench/bench.py --build "$B" --sweep "$OUT/sweep-$v.csv" \
    --configs "$CF" --ms "$MS" --shapes "$SH" >"$OUT/sweep-$v.log" 2>&1
  echo "$v: exit $?"
done
OUT=$OUT VARIANTS=$VARIANTS python3 - <<'PY'
import csv, os
out, rows = os.environ["OUT"], {}
for v in os.environ["VARIANTS"].split():
    for r in csv.DictReader(open(f"{out}/sweep-{v}.csv")):
        rows.setdefault((r["N"], r["K"], r["M"]), {}).setdefault(v, []).append((float(r["us"]), r["config"]))
for (n, k, m), d in rows.items():
    print(f"{n}x{k} M={m} | " + " | ".join(f"{v}: best {min(l)[0]:.2f} {min(l)[1]}" for v, l in d.items()))
PY
if [ -n "${NCU:-}" ]; then
  SHAPES="$NCU" KREGEX=mma_exact BUILD=build OUT=$OUT/ncu timeout 250 scripts/ncu-profile.sh
fi
