#!/usr/bin/env bash
# ncu profiles of the dispatched GEMM kernel (through the seed's test program) for one or
# more shapes: summary sections, the per-SASS-instruction stall samples (src*.csv) and all
# section details into $OUT. Needs a build in ./build (or BUILD=...). On the GPU machine:
#   SHAPES="4096x16384x2048 968x2048x16384" KREGEX=wgmma scripts/ncu-profile.sh
set -u
OUT=${OUT:-$PWD/ncu-out}
mkdir -p "$OUT"
BUILD=${BUILD:-build}
i=0
for shape in ${SHAPES:-"4096 16384 2048"}; do
  shape=${shape//x/ }
  timeout 200 ncu --clock-control none -k regex:${KREGEX:-wgmma} --launch-count 1 \
    --section SpeedOfLight --section WarpStateStats --section SourceCounters --section MemoryWorkloadAnalysis \
    --section ComputeWorkloadAnalysis --import-source no \
    -o /tmp/prof$i "$BUILD/tools/test_w4a8_gemm" $shape > $OUT/ncu$i.txt 2>&1
  ncu -i /tmp/prof$i.ncu-rep --page source --csv --print-source sass > $OUT/src$i.csv 2>&1
  ncu -i /tmp/prof$i.ncu-rep --page details --print-details all > $OUT/details$i.txt 2>&1
  echo "$shape"; grep -E "wgmma_exact|Duration|L2 Cache Throughput|Tensor Cycles|Issue Slots" $OUT/details$i.txt | head -8
  i=$((i+1))
done
