#!/usr/bin/env bash
# Scratch script for short device runs during development (not part of the product checks).
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 150 build/tests/w4a8_gpu_tests --gtest_filter="${FILTER:-GpuWgmma.*:GpuGemm.Dispatched*:GpuQuantizeActivation.F16*:GpuLinear.*}" 2>&1 | grep -E "OK|FAIL|Failure|PASSED|rror|got" | head -20
if [ -n "${SWEEP:-}" ]; then
timeout 300 python3 bench/bench.py --build build --sweep $OUT/sweep.csv --configs "$SWEEP" --ms ${MS:-968,4096} --shapes ${SHAPES:-16384x2048,2048x16384,32768x2048} 2>&1 | grep -E "^sweep|rror" | tail -40
else
timeout 300 python3 bench/bench.py --build build --ms ${MS:-128,256,968,4096} --no-trace --shapes ${SHAPES:-16384x2048,2048x16384,32768x2048} 2>&1 | grep -E "^ +[0-9]|rror" | tail -40
fi
