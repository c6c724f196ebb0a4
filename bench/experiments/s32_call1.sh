#!/usr/bin/env bash
# Session 32, first device call: A/B of the ctas32 rule (heuristics.cpp rule (6)) against HEAD's
# library, a sweep validating it on its other shapes, three runs looking for where the 4096x1024
# M = 16 fused row's full-table slowdown comes from, and the no-cliff sweep of today's library.
set -u
tar -xzf build/carry.tgz && (cd build && ln -sf libw4a8.so.0.1.0 libw4a8.so.0 && ln -sf libw4a8.so.0 libw4a8.so)
(cd build/v/base && ln -sf libw4a8.so.0.1.0 libw4a8.so.0 && ln -sf libw4a8.so.0 libw4a8.so)
OUT=$OUT/ab NEW=build BASE=build/v/base SH=2560x1024,2304x1024,3072x1024,3584x2048 MS=33,40,48,50 \
  BENCH_ARGS=--no-fp8 TRACE=0 TESTS='GpuGemm.Dispatched*:GpuLinear.*' scripts/ab-bench.sh 2>&1 | tail -25
SWEEP_MS=40,48 SWEEP_SHAPES=2304x1024,2560x2048,3072x1024,3584x2048 SWEEP_CONFIGS='^mma_exact_mt[24]_' \
  BUILD=build OUT=$OUT/sweep scripts/gpu-check.sh sweep 2>&1 | tail -3
B="python3 bench/bench.py --build build --no-trace"
mkdir -p $OUT/anom
$B --no-fp8 --shapes 4096x1024 --ms 1,16 --csv $OUT/anom/alone.csv >$OUT/anom/alone.log 2>&1
$B --no-fp8 --shapes 2048x16384,4096x1024 --csv $OUT/anom/after2048x16384.csv >$OUT/anom/b.log 2>&1
$B --shapes 16384x2048,2048x16384,32768x2048,4096x1024 --csv $OUT/anom/fullorder.csv >$OUT/anom/c.log 2>&1
for f in $OUT/anom/*.csv; do echo "$f: $(grep '^layer,4096,1024,16,' $f | cut -d, -f1-8)"; done
head -1 $OUT/anom/alone.csv
BUILD=build OUT=$OUT/nc scripts/gpu-check.sh nocliff 2>&1 | tail -3
