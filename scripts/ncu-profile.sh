#!/usr/bin/env bash
# ncu profiles of the dispatched GEMM kernel (through the seed's test program) for one or
# more shapes: summary sections, the per-SASS-instruction stall samples (src*.csv) and all
# section details into $OUT. Needs a build in ./build (or BUILD=...). On the GPU machine:
#   SHAPES="4096x16384x2048 968x2048x16384" KREGEX=wgmma scripts/ncu-profile.sh
# Session 31's stall samples of the expert's kernels (weights from DRAM, activations L2-hot):
#   SHAPES="50x4096x1024" KREGEX=mma_exact TARGET=dispatched \
#     NCU_ARGS="--cache-control none --warp-sampling-interval 0" scripts/ncu-profile.sh
set -u
OUT=${OUT:-$PWD/ncu-out}
mkdir -p "$OUT"
BUILD=${BUILD:-build}
i=0
for shape in ${SHAPES:-"4096 16384 2048"}; do
  shape=${shape//x/ }
  # CONFIG=regex: profile that forced configuration (bench/profile_configs.py) instead of AUTO.
  # TARGET=dispatched: AUTO on tiled weights from DRAM with L2-hot activations (bench/profile_dispatched.py).
  if [ -n "${CONFIG:-}" ]; then
    target=(python3 bench/profile_configs.py "$CONFIG" $shape "$BUILD"); skip=2
  elif [ "${TARGET:-}" = dispatched ]; then
    target=(python3 bench/profile_dispatched.py $shape "$BUILD"); skip=2
  else
    target=("$BUILD/tools/test_w4a8_gemm" $shape); skip=0
  fi
  # NCU_ARGS: more ncu options (e.g. --cache-control none --warp-sampling-interval 0).
  timeout 200 ncu -f --clock-control none ${NCU_ARGS:-} -k regex:${KREGEX:-wgmma} --launch-skip $skip --launch-count 1 \
    --section SpeedOfLight --section WarpStateStats --section SourceCounters --section MemoryWorkloadAnalysis \
    --section ComputeWorkloadAnalysis --section Occupancy --section LaunchStats --section SchedulerStats \
    --import-source no \
    -o /tmp/prof$i "${target[@]}" > $OUT/ncu$i.txt 2>&1
  ncu -i /tmp/prof$i.ncu-rep --page source --csv --print-source sass > $OUT/src$i.csv 2>&1
  ncu -i /tmp/prof$i.ncu-rep --page details --print-details all > $OUT/details$i.txt 2>&1
  echo "$shape"; grep -E "_exact|Duration|DRAM Throughput|L2 Cache Throughput|Tensor Cycles|Issue Slots|Achieved Occupancy|Theoretical Occupancy|Block Limit|Grid Size|Dynamic Shared|No Eligible|Registers Per" $OUT/details$i.txt | head -24
  i=$((i+1))
done
