#!/usr/bin/env bash
# ncu of the dispatched GEMM kernel on a few problems (the seed program, canonical weights, FP8
# input): speed of light, scheduler and warp-state statistics, pipe utilization, occupancy. One
# launch per problem, after the program's check launch, clocks left to the GPU (as the tables run).
#   OUT=... scripts/ncu-limits.sh 1x16384x2048 16x2048x16384 ...     (M x N x K)
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
OUT=${OUT:-$PWD/ncu-out}
mkdir -p "$OUT"
for p in "$@"; do
  IFS=x read -r M N K <<<"$p"
  timeout 120 ncu --clock-control none --kernel-name regex:'mma_exact_kernel|wgmma_exact_kernel' --launch-skip 1 \
    --launch-count 1 --section SpeedOfLight --section SchedulerStats --section WarpStateStats \
    --section ComputeWorkloadAnalysis --section Occupancy --section LaunchStats \
    "$BUILD/tools/test_w4a8_gemm" "$M" "$N" "$K" >"$OUT/ncu-$p.txt" 2>&1
  echo "$p: exit $?"
done
