#!/usr/bin/env bash
# Per-kernel times of one forced configuration's call (prologue, GEMM, split-K reduction),
# from ncu on the GPU machine: kernels serialized, caches flushed before each (so every kernel
# reads cold), SM clock left free. Three calls per configuration; the flush kernels between
# them are dropped. Session 13 found the FP8 -> FP16 prologue this way.
#   scripts/kernel-times.sh 'wgmma_exact_bm256_k2_g16$' 968 2048 16384       # pattern M N K
#   BUILD=build scripts/kernel-times.sh 'wgmma_fp8_bm128_g16$' 968 16384 2048
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
[ $# -eq 4 ] || { echo "usage: $0 CONFIG_REGEX M N K" >&2; exit 2; }
# the soname links the loader wants (a carried build has plain files)
[ -f "$BUILD/libw4a8.so.0.1.0" ] && (cd "$BUILD" && ln -sf libw4a8.so.0.1.0 libw4a8.so.0 && ln -sf libw4a8.so.0 libw4a8.so)
log=$(mktemp)
timeout 300 ncu --clock-control none --print-kernel-base function --metrics gpu__time_duration.sum \
  python3 bench/profile_configs.py "$1" "$2" "$3" "$4" "$BUILD" >"$log" 2>&1
rc=$?
awk '/^  [A-Za-z_]/{name=$1} /gpu__time_duration.sum/{print name, $NF, "us"}' "$log" | grep -vE 'elementwise|fill'
grep -E '^ran |rror' "$log" | head -5
rm -f "$log"
exit $rc
