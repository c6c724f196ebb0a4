#!/usr/bin/env bash
# Session 32, second device call: A/B of the narrowed ctas32 rule against HEAD's library; where
# the 4096x1024 M = 16 fused row's full-table slowdown comes from (three runs narrowing session
# 32's first call, which reproduced it with the three large shapes and their FP8 rows before
# it); the no-cliff sweep. Everything is packed into $OUT/s32.tgz (the device tool brings back
# only a few files).
set -u
R=$OUT/r; mkdir -p $R/anom
tar -xzf build/carry.tgz && (cd build && ln -sf libw4a8.so.0.1.0 libw4a8.so.0 && ln -sf libw4a8.so.0 libw4a8.so)
(cd build/v/base && ln -sf libw4a8.so.0.1.0 libw4a8.so.0 && ln -sf libw4a8.so.0 libw4a8.so)
t0=$(date +%s); ts() { echo "[$(( $(date +%s) - t0 )) s] $*"; }
OUT=$R/ab NEW=build BASE=build/v/base SH=2560x1024,2304x1024,2560x2048,2304x2048,3072x1024,3584x2048 MS=40,48 \
  BENCH_ARGS=--no-fp8 TRACE=0 TESTS='GpuGemm.Dispatched*:GpuLinear.*' scripts/ab-bench.sh 2>&1 | tail -14
ts ab
B="python3 bench/bench.py --build build --no-trace"
L="16384x2048,2048x16384,32768x2048,4096x1024"
$B --no-fp8 --shapes $L --csv $R/anom/nofp8.csv >$R/anom/nofp8.log 2>&1; ts nofp8
PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True $B --shapes $L --csv $R/anom/expandable.csv >$R/anom/exp.log 2>&1; ts expandable
$B --shapes 16384x2048,4096x1024 --csv $R/anom/only16384.csv >$R/anom/only16384.log 2>&1; ts only16384
python3 - $R/anom/*.csv <<'PY'
import csv, sys
for f in sys.argv[1:]:
    for r in csv.DictReader(open(f)):
        if r['N'] == '4096' and r['K'] == '1024' and r['M'] in ('1', '16') and 'fp8' not in r['kernel']:
            g, u = float(r['w4a8_us']), float(r['fused_us'])
            print(f.split('/')[-1], 'M', r['M'], 'gemm %.2f fused %.2f (%+.1f%%)' % (g, u, 100 * (u / g - 1)))
PY
BUILD=build OUT=$R/nc scripts/gpu-check.sh nocliff 2>&1 | tail -2; ts nocliff
tar -czf $OUT/s32.tgz -C $R .
