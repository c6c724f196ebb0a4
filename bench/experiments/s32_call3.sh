#!/usr/bin/env bash
# Session 32, the FP8 fast accumulation's cluster-reduced 2-split tiles (81be0ba) against main
# 5a52516: their GPU tests, then an A/B of the FP8 rows where they are dispatched (2048x16384 at
# M = 800 / 968; 16384x2048 as a control, whose unsplit kernel keeps its code) and of the traces.
set -u
R=$OUT/r; mkdir -p $R
tar -xzf build/carry.tgz && (cd build && ln -sf libw4a8.so.0.1.0 libw4a8.so.0 && ln -sf libw4a8.so.0 libw4a8.so)
(cd build/v/base && ln -sf libw4a8.so.0.1.0 libw4a8.so.0 && ln -sf libw4a8.so.0 libw4a8.so)
t0=$(date +%s); ts() { echo "[$(( $(date +%s) - t0 )) s] $*"; }
OUT=$R/ab NEW=build BASE=build/v/base SH=2048x16384,16384x2048 MS=800,968 \
  TESTS='GpuFp8.EveryConfigurationMatchesFp8Reference:GpuFp8.ExactWeightsRunTheFp8PathExactly:GpuWgmma.ClusterReducedSplitsEqualWorkspaceSplits' \
  scripts/ab-bench.sh 2>&1 | tail -24
ts ab
grep -E "FAILED|Failure" -A5 $R/ab/ab-tests.log | head -30
tar -czf $OUT/s32c3.tgz -C $R .
