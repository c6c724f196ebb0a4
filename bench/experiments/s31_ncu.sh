#!/usr/bin/env bash
# Session 31: ncu stall samples of the dispatched mma kernel on expert shapes, weights from DRAM,
# activations L2-hot (s31_ncu_expert.py), --cache-control none. SHAPES="50x4096x1024 ..."; BUILD.
set -u
O=${OUT:-$PWD/ncu-out}/ncu${TAG:-}
mkdir -p "$O"
for s in ${SHAPES:-50x4096x1024}; do
  timeout 150 ncu -f --cache-control none --clock-control none --warp-sampling-interval 0 -k regex:${KREGEX:-mma_exact} \
    --launch-skip 2 --launch-count 1 --section WarpStateStats --section SourceCounters --section SchedulerStats \
    --section SpeedOfLight --section Occupancy --section LaunchStats --import-source no -o /tmp/p$s${TAG:-} \
    python3 bench/experiments/s31_ncu_expert.py ${s//x/ } ${BUILD:-build} > "$O/run-$s.txt" 2>&1
  ncu -i /tmp/p$s${TAG:-}.ncu-rep --page source --csv --print-source sass > "$O/src-$s.csv" 2>&1
  ncu -i /tmp/p$s${TAG:-}.ncu-rep --page details --print-details all > "$O/details-$s.txt" 2>&1
  ncu -i /tmp/p$s${TAG:-}.ncu-rep --page raw --csv > "$O/raw-$s.csv" 2>&1
  echo "$s: $(grep -m1 -E '^[0-9]+ ' "$O/run-$s.txt")"; grep -E 'Duration|Issue Slots|No Eligible' "$O/details-$s.txt" | head -4
done
tar -czf "${OUT:-$PWD/ncu-out}/ncu${TAG:-}.tgz" -C "$(dirname "$O")" "$(basename "$O")" && rm -rf "$O"
