#!/usr/bin/env bash
# The branch exp/mma-cluster-splitk on the GPU machine in one call: the mma GPU tests (every
# configuration, the new "_c2" cluster split-K ones among them; the fuzz test), compute-
# sanitizer on the every-configuration tests, then a sweep of the cluster configurations against
# the dispatched ones on the layers they are for (1..16 tokens). Logs and sweep.csv under $OUT.
#   BUILD=build scripts/exp-mma-cluster.sh      (a build carried from the CPU machine)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-logs}
BUILD=${BUILD:-build}
mkdir -p "$OUT"
[ -f "$BUILD/libw4a8.so.0.1.0" ] && (cd "$BUILD" && ln -sf libw4a8.so.0.1.0 libw4a8.so.0 && ln -sf libw4a8.so.0 libw4a8.so)
status=0
timeout 300 "$BUILD/tests/w4a8_gpu_tests" --gtest_filter='GpuGemm.*:GpuTiled.*:GpuFuzz.*:GpuLinear.*' \
  >"$OUT/gpu_tests.log" 2>&1 || status=1
grep -E "^\[  (FAILED|PASSED) |Failure" "$OUT/gpu_tests.log" | head -20
timeout 300 compute-sanitizer --tool memcheck --error-exitcode 99 "$BUILD/tests/w4a8_gpu_tests" \
  --gtest_filter='GpuGemm.EveryConfigurationMatchesReference*' >"$OUT/memcheck.log" 2>&1 || status=1
echo "memcheck: $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | tail -1)"
timeout 300 compute-sanitizer --tool racecheck --error-exitcode 99 "$BUILD/tests/w4a8_gpu_tests" \
  --gtest_filter='GpuGemm.EveryConfigurationMatchesReference*' >"$OUT/racecheck.log" 2>&1 || status=1
echo "racecheck: $(grep -E 'RACECHECK SUMMARY' "$OUT/racecheck.log" | tail -1)"
PYTHONUNBUFFERED=1 python3 bench/bench.py --build "$BUILD" --sweep "$OUT/sweep.csv" --ms 1,4,8,16 \
  --shapes 2048x16384,2048x2048,1024x4096 \
  --configs 'mma_exact_mt[12]_wn1_wk(4|8|16)_v16_g16(_r2)?(_c2)?$' >"$OUT/sweep.log" 2>&1 || status=1
grep "^sweep" "$OUT/sweep.log" | head -80
echo "== status $status"
exit $status
