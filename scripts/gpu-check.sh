#!/usr/bin/env bash
# One call on the GPU machine: build, run the GPU tests, compute-sanitizer on small cases,
# the seed's test program on the seed's shapes, and the benchmark. Logs go to $OUT (or
# ./gpu-logs). Stages: build test sanitize seed python bench (default: all); also sweep,
# nocliff (issue 7's M sweep and its picture), profile (PROFILE_CONFIG / PROFILE_SHAPE: one
# configuration under ncu; else the decode shapes), timeline and probe (PROBE=name:
# bench/probes/<name>.cu's program, default stage_boundary).
#
#   scripts/gpu-check.sh                 # everything
#   scripts/gpu-check.sh build test      # only these stages
#
# One device call runs at most 10 minutes. On an H100 (session 24) `test seed bench` took 4.7
# minutes (the GPU suite 3.8 of them; 5.5 in session 23) and `sanitize` 6 (the small cases ~1.5,
# the wgmma memcheck ~2, the wgmma racecheck on the small shapes ~1.5): run `test` and
# `sanitize` as separate calls (SANITIZE_WGMMA=0 leaves out the two wgmma sanitizer runs, for a
# call that only needs the decode kernels checked).
#
# GoogleTest: the GPU machine has none and installs nothing; the sources travel with the
# call in .deps/googletest (scripts/fetch-gtest.sh copies Debian's /usr/src/googletest).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-logs}
RESULTS=$OUT           # bench.csv / bench.md / bench.png come back as files
OUT=$RESULTS/logs      # everything else is packed into logs.tar.gz at the end
mkdir -p "$OUT"
pack() { tar -C "$RESULTS" -czf "$RESULTS/logs.tar.gz" logs && rm -rf "$OUT"; }
trap pack EXIT
BUILD=${BUILD:-build-gpu}
JOBS=${JOBS:-$(nproc)}
stages=${*:-build test sanitize seed python bench}   # also: sweep nocliff profile timeline probe
has() { [[ " $stages " == *" $1 "* ]]; }
status=0
step() { echo "== $*"; }

nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"

if has build; then
  step build
  gtest_opt=()
  [ -d .deps/googletest ] && gtest_opt=(-DW4A8_GTEST_SOURCE_DIR="$PWD/.deps/googletest")
  # TensorRT headers (the include/ folder of the public NVIDIA/TensorRT repository, copied to
  # .deps/tensorrt/include) let the plugin and its tests build here too.
  [ -f .deps/tensorrt/include/NvInferRuntime.h ] && gtest_opt+=(-DTENSORRT_ROOT="$PWD/.deps/tensorrt")
  cmake -S . -B "$BUILD" -DW4A8_CUDA_ARCHS="${W4A8_CUDA_ARCHS:-90a}" "${gtest_opt[@]}" >"$OUT/configure.log" 2>&1 &&
    cmake --build "$BUILD" -j "$JOBS" >"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log" "$OUT/configure.log"; exit 1; }
fi

if has test; then
  step tests
  "$BUILD/tests/w4a8_cpu_tests" --gtest_brief=1 >"$OUT/cpu_tests.log" 2>&1 || status=1
  tail -3 "$OUT/cpu_tests.log"
  # (the whole suite takes ~420-450 s on a freshly started H100: session 28's first `test` call,
  # with 400 here, stopped in the last test, GpuFuzz.Fp8PathRandomProblems)
  timeout 540 "$BUILD/tests/w4a8_gpu_tests" >"$OUT/gpu_tests.log" 2>&1 || status=1
  grep -q "^\[  PASSED  \]" "$OUT/gpu_tests.log" || echo "GPU suite did not finish (timeout?): last $(grep '^\[ RUN' "$OUT/gpu_tests.log" | tail -1)"
  grep -E "^\[  (FAILED|PASSED|SKIPPED) |Failure|error" "$OUT/gpu_tests.log" | head -40
  grep -E "^\[       OK \]" "$OUT/gpu_tests.log" | sed 's/^/  /'
  "$BUILD/tests/w4a8_plugin_core_tests" --gtest_brief=1 >"$OUT/plugin_core_tests.log" 2>&1 || status=1
  tail -1 "$OUT/plugin_core_tests.log"
  if [ -x "$BUILD/tests/w4a8_trt_plugin_tests" ]; then
    "$BUILD/tests/w4a8_trt_plugin_tests" >"$OUT/trt_plugin_tests.log" 2>&1 || status=1
    grep -E "^\[  (FAILED|PASSED|SKIPPED) |Failure" "$OUT/trt_plugin_tests.log"
  fi
fi

if has seed; then
  step "seed test program"
  for shape in "256 2048 2048" "1 16384 2048" "968 2048 16384" "50 4096 1024" "1 2048 16384 32"; do
    "$BUILD/tools/test_w4a8_gemm" $shape >>"$OUT/seed.log" 2>&1 || status=1
  done
  grep -E "^(kernel|time|  vs|PASSED|FAILED|error)" "$OUT/seed.log"
fi

if has sanitize; then
  step "compute-sanitizer (memcheck, racecheck) on small cases"
  small='GpuWgmma.ClusterReducedSplitsEqualWorkspaceSplits:GpuGemm.EveryConfigurationMatchesReference:GpuGemm.EveryConfigurationMatchesReferenceOnWholeBatches:GpuGemm.NaNRow*:GpuQuantizeActivation.BitExactOnAdversarialRows:GpuQuantizeActivation.F16PermutedEqualsFp8Codes:GpuQuantizeWeight.BitExactOnAdversarialBlocks:GpuLinear.*:GpuTiled.PrepackMatchesReferenceAndRoundTrips:GpuFp8.PrepareMatchesReference'
  for tool in memcheck racecheck; do
    compute-sanitizer --tool $tool --error-exitcode 99 "$BUILD/tests/w4a8_gpu_tests" --gtest_filter="$small" \
      >"$OUT/sanitize_$tool.log" 2>&1
    rc=$?
    echo "$tool: exit $rc; $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/sanitize_$tool.log" | tail -1)"
    [ $rc -eq 0 ] || status=1
  done
  # The wgmma prefill kernel (TMA, mbarriers, async-proxy writes): memcheck on its tests.
  if [ "${SANITIZE_WGMMA:-1}" != 0 ]; then
    timeout 300 compute-sanitizer --tool memcheck --error-exitcode 99 "$BUILD/tests/w4a8_gpu_tests" \
      --gtest_filter='GpuWgmma.EveryConfigurationMatchesReference:GpuWgmma.DeterministicAndRefusedWhereItCannotRun:GpuTiled.EveryConfigurationEqualsCanonicalSmall:GpuFp8.EveryConfigurationMatchesFp8Reference:GpuFp8.RefusalsAndOptIn:GpuLinear.OverlapWaitsForThePrecedingKernel' \
      >"$OUT/sanitize_memcheck_wgmma.log" 2>&1
    rc=$?
    echo "memcheck (wgmma): exit $rc; $(grep -E 'ERROR SUMMARY' "$OUT/sanitize_memcheck_wgmma.log" | tail -1)"
    [ $rc -eq 0 ] || status=1
    # racecheck on every wgmma configuration (shared-memory staging between its warpgroups' named
    # barriers) on the test's small shapes only (W4A8_TEST_SMALL=1): with its M = 1000 shape
    # too it had not finished after 560 s on an H100 (session 24).
    W4A8_TEST_SMALL=1 timeout 400 compute-sanitizer --tool racecheck --error-exitcode 99 "$BUILD/tests/w4a8_gpu_tests" \
      --gtest_filter='GpuWgmma.EveryConfigurationMatchesReference' >"$OUT/sanitize_racecheck_wgmma.log" 2>&1
    rc=$?
    echo "racecheck (wgmma): exit $rc; $(grep -E 'RACECHECK SUMMARY' "$OUT/sanitize_racecheck_wgmma.log" | tail -1)"
    [ $rc -eq 0 ] || status=1
  fi
fi

if has sweep; then
  step "configuration sweep (bench/bench.py --sweep)"
  # SWEEP_MS, SWEEP_SHAPES (NxK,...), SWEEP_CONFIGS (regex of configuration names) narrow it.
  PYTHONUNBUFFERED=1 python3 bench/bench.py --build "$BUILD" --sweep "$RESULTS/sweep.csv" --ms "${SWEEP_MS:-1,16,50,128}" \
    ${SWEEP_SHAPES:+--shapes "$SWEEP_SHAPES"} ${SWEEP_CONFIGS:+--configs "$SWEEP_CONFIGS"} \
    >"$OUT/sweep.log" 2>&1 || { status=1; tail -20 "$OUT/sweep.log"; }
  grep "^sweep" "$OUT/sweep.log"
fi

if has profile && [ -n "${PROFILE_CONFIG:-}" ]; then
  # One forced configuration on one problem, e.g. the small layers' mid-M cliff (BENCHMARKS.md
  # "Session 27"): PROFILE_CONFIG='wgmma_exact_bm64_s128_g16$' PROFILE_SHAPE='192 4096 1024'.
  # The third call is profiled (the first two warm up), its full sections in ncu_config.log.
  step "ncu ($PROFILE_CONFIG on M N K = ${PROFILE_SHAPE:?set PROFILE_SHAPE='M N K'})"
  timeout 300 ncu --clock-control none -k "regex:${PROFILE_KERNEL:-wgmma_exact|mma_exact}" --launch-skip 2 --launch-count 1 \
    --section SpeedOfLight --section Occupancy --section SchedulerStats --section WarpStateStats \
    --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis --section LaunchStats \
    python3 bench/profile_configs.py "$PROFILE_CONFIG" $PROFILE_SHAPE "$BUILD" >"$RESULTS/ncu_config.log" 2>&1 || status=1
  grep -E "exact_kernel|Duration|DRAM Throughput|Achieved Occupancy|Issue Slots Busy|Issued Warp|No Eligible|Executed Ipc|Stall|Pipe" \
    "$RESULTS/ncu_config.log" | head -40
elif has profile; then
  step "ncu (decode shapes)"
  for shape in "1 16384 2048" "1 2048 16384"; do
    ncu --clock-control none -k regex:mma_exact --launch-count 1 --section SpeedOfLight --section Occupancy \
      --section SchedulerStats --section WarpStateStats --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis \
      "$BUILD/tools/test_w4a8_gemm" $shape >"$OUT/ncu_${shape// /_}.log" 2>&1
    grep -E "mma_exact|Duration|DRAM Throughput|Achieved Occupancy|Issue Slots Busy|Issued Warp|No Eligible|Executed Ipc|Pipe" \
      "$OUT/ncu_${shape// /_}.log" | head -24
  done
fi

if has nocliff; then
  # Issue 7's no-cliff sweep: the exact path as AUTO dispatches it, every PERF.md shape, M = 1..4096
  # (~3 minutes on an H100), and its picture (BENCHMARKS.md "Session 27").
  step "no-cliff sweep (bench.py --no-fp8, bench/plot_sweep.py)"
  PYTHONUNBUFFERED=1 timeout 400 python3 bench/bench.py --build "$BUILD" --no-trace --no-fp8 \
    --ms "${NOCLIFF_MS:-1,8,16,32,50,64,96,128,160,192,224,256,320,384,448,512,640,768,968,1536,2048,4096}" \
    --csv "$RESULTS/nocliff.csv" >"$OUT/nocliff.log" 2>&1 || { status=1; tail -20 "$OUT/nocliff.log"; }
  python3 bench/plot_sweep.py "$RESULTS/nocliff.csv" "$RESULTS/nocliff.png" || status=1
fi

if has timeline; then
  step "per-kernel timelines of the pi0.5 traces (bench.py --timeline, bench/timeline.py)"
  # Where each kernel's time goes in the traces (advance / overlap / idle gap per role and layer
  # position): the quantizer's share of the fused trace, the overlap programmatic launches buy.
  PYTHONUNBUFFERED=1 python3 bench/bench.py --build "$BUILD" --trace-only --timeline "$OUT/timeline" \
    --csv "$OUT/timeline-trace.csv" >"$OUT/timeline.log" 2>&1 || { status=1; tail -20 "$OUT/timeline.log"; }
  python3 bench/timeline.py "$OUT/timeline" >"$RESULTS/timeline.md" 2>&1 || status=1
  grep -E "^### " "$RESULTS/timeline.md"
fi

if has probe; then
  step "probe ${PROBE:-stage_boundary} (bench/probes)"
  timeout 300 "$BUILD/bench/w4a8_probe_${PROBE:-stage_boundary}" >"$RESULTS/probe-${PROBE:-stage_boundary}.txt" 2>&1 || status=1
  cat "$RESULTS/probe-${PROBE:-stage_boundary}.txt"
fi

if has python; then
  step "python: pytest (CPU + GPU) and bench/bench_torch.py"
  # pytest is not on the GPU machine: its wheels travel in .whl (scripts/fetch-wheels.sh).
  if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl &&
      export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
  fi
  export W4A8_LIBRARY=$PWD/$BUILD/libw4a8.so
  PYTHONUNBUFFERED=1 python3 -m pytest -q -rs -s python/tests >"$OUT/pytest.log" 2>&1 || status=1
  grep -E "passed|failed|error|SKIP|cosine|Error" "$OUT/pytest.log" | tail -20
  PYTHONUNBUFFERED=1 python3 bench/bench_torch.py --build "$BUILD" --md "$RESULTS/torch.md" >"$OUT/bench_torch.log" 2>&1 ||
    { status=1; tail -20 "$OUT/bench_torch.log"; }
  cat "$RESULTS/torch.md" 2>/dev/null
fi

if has bench; then
  step "benchmark (bench/bench.py)"
  PYTHONUNBUFFERED=1 python3 bench/bench.py --build "$BUILD" --csv "$RESULTS/bench.csv" --md "$RESULTS/bench.md" \
    --png "$RESULTS/bench.png" ${BENCH_ARGS:-} >"$OUT/bench.log" 2>&1 || { status=1; tail -30 "$OUT/bench.log"; }
  grep -vE "^\|" "$OUT/bench.log" | head -60
fi

echo "== gpu-check status: $status"
exit $status
