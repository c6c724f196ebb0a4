#!/usr/bin/env bash
# A/B of two library builds on the GPU machine, the dispatched kernels as users get them:
# bench.py's layer table (and/or the pi0.5 traces) for ./build ("new") and build/base/ (a
# libw4a8.so.0.1.0 of another tree, e.g. `git worktree add /tmp/base HEAD~1` + a w4a8-only
# build, copied there; libw4a8_bench.so is taken from ./build if missing), run base, new, base
# in one call so that a drift of the card over the run shows as the two base runs differing
# (session 9: the fused traces read 0.5-1% apart between runs of the same build, in run order). Then one line per row:
# new against the mean of the base runs, GEMM and fused columns, and the base spread.
#
#   SH=16384x2048,4096x1024 MS=1,16,50 scripts/ab-bench.sh          # layer rows, then traces
#   TRACE=0 ... / LAYERS=0 ...                                     # only one of the two
#   BENCH_ARGS=--no-fp8 ...                                        # more bench.py options (layers)
#   TESTS='GpuLinear.*' ...                                        # GPU tests of ./build first
#   NEW=/tmp/v/pf BASE=/tmp/v/head ...                             # other directories (several
#                                                                  # A/Bs in one device call)
#
# Needs ./build/tests/w4a8_gpu_tests only with TESTS. Writes, under $OUT, ab-summary.txt (the
# comparison printed at the end) and ab-files.tgz (every ab-*.csv / .log: the device tool brings
# back a limited number of files, and session 18 lost the trace CSVs of an A/B to that; unpack
# and rerun `bench/ab_compare.py DIR` to recompute the summary).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/ab-out}
mkdir -p "$OUT"
SH=${SH:-16384x2048,2048x16384,32768x2048,4096x1024,2048x2048}
MS=${MS:-1,16,50,128,968}
NEW=${NEW:-build}
BASE=${BASE:-build/base}
for lib in "$NEW" "$BASE"; do  # the soname links the loader wants (the carried files are plain)
  [ -f "$lib/libw4a8.so.0.1.0" ] || { echo "missing $lib/libw4a8.so.0.1.0"; exit 2; }
  (cd "$lib" && ln -sf libw4a8.so.0.1.0 libw4a8.so.0 && ln -sf libw4a8.so.0 libw4a8.so)
  [ -f "$lib/libw4a8_bench.so" ] || cp build/libw4a8_bench.so "$lib/"  # as ab-sweep.sh does
done
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv,noheader
if [ -n "${TESTS:-}" ]; then
  timeout 300 "$NEW/tests/w4a8_gpu_tests" --gtest_filter="$TESTS" >"$OUT/ab-tests.log" 2>&1
  echo "tests ($TESTS): exit $?, $(grep -cE '^\[       OK' "$OUT/ab-tests.log") passed $(grep -E '^\[  FAILED' "$OUT/ab-tests.log" | head -3)"
fi
run=0
for v in base new base; do
  run=$((run + 1))
  B=$NEW; [ "$v" = base ] && B=$BASE
  tag="$run-$v"
  if [ "${LAYERS:-1}" = 1 ]; then
    W4A8_LIBRARY=$B/libw4a8.so timeout ${LAYER_TIMEOUT:-200} python3 bench/bench.py --build "$B" --no-trace --shapes "$SH" --ms "$MS" \
      ${BENCH_ARGS:-} --csv "$OUT/ab-layers-$tag.csv" >"$OUT/ab-layers-$tag.log" 2>&1 || echo "layers $tag: exit $?"
  fi
  if [ "${TRACE:-1}" = 1 ]; then
    W4A8_LIBRARY=$B/libw4a8.so timeout 120 python3 bench/bench.py --build "$B" --trace-only \
      --csv "$OUT/ab-trace-$tag.csv" >"$OUT/ab-trace-$tag.log" 2>&1 || echo "trace $tag: exit $?"
  fi
done
python3 bench/ab_compare.py "$OUT" | tee "$OUT/ab-summary.txt"
(cd "$OUT" && tar -czf ab-files.tgz ab-*.csv ab-*.log 2>/dev/null && rm -f ab-*.csv ab-*.log)
