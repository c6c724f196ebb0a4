#!/usr/bin/env bash
# One GPU call for the question session 19 left open: why the 8-token decode kernel runs at
# 1.2-1.65x the read floor when more weight bytes in flight per warp made it slower
# (BENCHMARKS.md "Session 19"). Runs, on a build in ./build (or BUILD=...):
#   1. bench/probes/decode_stream.cu: the floor kernel, the floor's loads at 16 warps per SM,
#      the decode kernel's pattern and schedule without its work (1-3 batches ahead), and with
#      a stand-in for the work -- times on 18.9 / 37.7 MB tiled weights;
#   2. ncu with the same DRAM / L2 metrics on the probe's kernels and on the real decode
#      kernel (seed program, 1 x 16384 x 2048 and 1 x 32768 x 2048; it streams canonical
#      weights, where the benchmark and the probe read tiled ones).
# Written in session 19 without a GPU; run in session 20 (bench/results/decode-gap-h100-2026-11-27.txt),
# where the decode_pattern regexes matched nothing (now counted by launches). Writes $OUT/decode-gap.txt and the raw ncu
# CSVs. Needs the bench target built (w4a8_probe_decode_stream; carry it with a build made
# elsewhere) and ncu on PATH.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/decode-gap-out}
BUILD=${BUILD:-build}
mkdir -p "$OUT"
log=$OUT/decode-gap.txt
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv,noheader | tee "$log"
echo "== probe" | tee -a "$log"
timeout 120 "$BUILD/bench/w4a8_probe_decode_stream" 2>&1 | tee -a "$log"
metrics=gpu__time_duration.sum,dram__bytes_read.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,\
lts__t_sectors_srcunit_tex_op_read.sum,lts__t_sector_op_read_hit_rate.pct,lts__t_requests_srcunit_tex_op_read.sum,\
l1tex__t_requests_pipe_lsu_mem_global_op_ld.sum,sm__warps_active.avg.pct_of_peak_sustained_active,\
smsp__average_warp_latency_issue_stalled_long_scoreboard.ratio,smsp__issue_active.avg.pct_of_peak_sustained_active
echo "== ncu: probe kernels (the first launch of each: the 18.9 MB weight)" | tee -a "$log"
summarize() {  # metric = value lines of an ncu --csv file
  grep -E '"(gpu__time|dram__|lts__|l1tex__|sm__|smsp__)' "$1" | awk -F'","' '{v=$NF; gsub(/"/,"",v); print "  " $(NF-2) " = " v}'
}
i=0
# kernel regex:launches to skip, counted per kernel name (each probe row is 43 launches; the
# decode_pattern rows in order: (c) 1, 2, 3 ahead, (d) 1 ahead x 64, 1 x 256, 3 x 256): counting
# launches, not matching template arguments, which session 20's run showed ncu spells otherwise
for ks in 'plain_read:0' 'plain_read:43' 'decode_pattern:0' 'decode_pattern:86' 'decode_pattern:172' \
  'decode_pattern:215'; do
  k=${ks%:*} skip=${ks##*:}
  timeout 120 ncu --clock-control none --metrics "$metrics" --kernel-name-base demangled -k "regex:$k" \
    --launch-skip "$skip" --launch-count 1 --csv "$BUILD/bench/w4a8_probe_decode_stream" > "$OUT/ncu-probe$i.csv" 2>&1
  echo "$k (skip $skip):" | tee -a "$log"
  summarize "$OUT/ncu-probe$i.csv" | tee -a "$log"
  i=$((i + 1))
done
echo "== ncu: the decode kernel (seed program, canonical weights)" | tee -a "$log"
for shape in "1 16384 2048" "1 32768 2048"; do
  timeout 200 ncu --clock-control none --metrics "$metrics" -k regex:mma_exact --launch-count 1 --csv \
    "$BUILD/tools/test_w4a8_gemm" $shape > "$OUT/ncu-decode-${shape// /x}.csv" 2>&1
  echo "$shape:" | tee -a "$log"
  summarize "$OUT/ncu-decode-${shape// /x}.csv" | tee -a "$log"
done
