"""Per-SASS-instruction warp-stall samples from an ncu source page CSV (ncu -i R --page source --csv --print-source sass):
   python3 bench/experiments/s31_ncu_srcparse.py SRC.csv top N      the N instructions with the most samples
   python3 bench/experiments/s31_ncu_srcparse.py SRC.csv range A B  instructions A..B in order (session 31)."""
import csv, sys
f = sys.argv[1]
rows = list(csv.reader(open(f)))
hdr = rows[1]; data = rows[2:]
ix = {h: i for i, h in enumerate(hdr)}
reasons = [h for h in hdr if h.startswith('stall_') and '(' not in h]
tot = sum(int(r[ix["Warp Stall Sampling (All Samples)"]] or 0) for r in data)
print("instructions", len(data), "samples", tot)
# region summary: print instructions with samples, in order, compressed: cumulative
cum = 0
out = []
for n, r in enumerate(data):
    s = int(r[ix["Warp Stall Sampling (All Samples)"]] or 0)
    ex = int(r[ix["Instructions Executed"]] or 0)
    top = sorted(((int(r[ix[k]] or 0), k[6:]) for k in reasons), reverse=True)[:3]
    out.append((n, s, ex, r[ix["Source"]].strip(), top))
mode = sys.argv[2] if len(sys.argv) > 2 else "top"
if mode == "top":
    for n, s, ex, src, top in sorted(out, key=lambda x: -x[1])[:int(sys.argv[3]) if len(sys.argv) > 3 else 40]:
        print(f"{n:5d} {s:5d} ex={ex:6d} {src[:60]:60s} {top}")
else:
    lo, hi = int(sys.argv[3]), int(sys.argv[4])
    for n, s, ex, src, top in out[lo:hi]:
        print(f"{n:5d} {s:5d} ex={ex:6d} {src[:70]:70s} {[t for t in top if t[0]]}")
