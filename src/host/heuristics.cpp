// The one place where kernel configurations are chosen. Each rule says what it is based on.
#include "host/heuristics.hpp"

#include <algorithm>
#include <vector>

#include "kernels/launch.hpp"

namespace w4a8 {
namespace heuristics {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// A wgmma configuration's fields packed into 11 bits (-1: a value no configuration has).
int wgmma_key(int group, int bm, bool f16_in, int splits, bool fp8, int kh, bool cluster, bool fast) {
  int b = -1;
  switch (bm) {
    case 64: b = 0; break;
    case 128: b = 1; break;
    case 160: b = 2; break;
    case 192: b = 3; break;
    case 224: b = 4; break;
    case 248: b = 5; break;
    case 256: b = 6; break;
    default: return -1;
  }
  const int s = splits == 1 ? 0 : splits == 2 ? 1 : splits == 4 ? 2 : splits == 8 ? 3 : -1;
  if (s < 0 || (group != 16 && group != 32) || (kh != 1 && kh != 2)) return -1;
  return (((((((group == 32) * 8 + b) * 2 + f16_in) * 4 + s) * 2 + fp8) * 2 + (kh == 2)) * 2 + cluster) * 2 + fast;
}
// The configuration with these fields, or -1. A table built once: the dispatcher asks ~30 times
// per choice, and every GEMM call and workspace query chooses (a scan of the whitelist per
// question made a workspace query at M >= 33 cost ~3 us of host time per choice; session 29).
int find_wgmma(int group, int bm, bool f16_in, int splits = 1, bool fp8 = false, int kh = 1, bool cluster = false,
               bool fast = false) {
  static const std::vector<int> table = [] {
    std::vector<int> t(2 * 8 * 2 * 4 * 2 * 2 * 2 * 2, -1);
    for (int i = kernels::wgmma_config_count() - 1; i >= 0; --i) {  // (the first of equal keys wins, as the scan did)
      const kernels::WgmmaConfig& c = kernels::wgmma_config(i);
      const int key = wgmma_key(c.group, c.bm, c.f16_in, c.splits, c.fp8, c.kh, c.cluster, c.fast);
      if (key >= 0) t[size_t(key)] = kernels::mma_config_count() + i;
    }
    return t;
  }();
  const int key = wgmma_key(group, bm, f16_in, splits, fp8, kh, cluster, fast);
  return key < 0 ? -1 : table[size_t(key)];
}

// The fewest warps along N (1..8, powers of two) that keep `tiles` within one CTA per SM.
int fewest_wn_for_one_wave(int64_t tiles, int sm_count) {
  int wn = 1;
  while (wn < 8 && ceil_div(tiles, wn) > sm_count) wn *= 2;
  return wn;
}

int find(int group, int mt, int wn, int wk, int vec, int rm = 1, int cs = 1) {
  for (int i = 0; i < kernels::mma_config_count(); ++i) {
    const kernels::MmaConfig& c = kernels::mma_config(i);
    if (c.group == group && c.mt == mt && c.wn == wn && c.wk == wk && c.vec == vec && c.rm == rm && c.cs == cs)
      return i;
  }
  return -1;
}

// Rule (9)'s twin of a one-warp-along-N, 16-K-warp pick: the same tile split over K across a
// 2-CTA cluster, or -1 where it does not apply (see rule (9) above choose_mma_config).
int cluster_twin(const Problem& p, const Device& d, int mt, int wn, int wk, int64_t tiles) {
  // Measured on sm_90 only; d.wgmma: an sm_90 GPU running this build's sm_90a code (a build
  // without it would run the cluster path from older PTX, where it traps).
  if (!d.wgmma || d.cc / 10 != 9 || wn != 1 || wk != 16 || 2 * tiles > d.sm_count) return -1;
  if (mt == 1 && p.N * p.K <= (int64_t(8) << 20)) return find(p.group, 1, 1, 8, 16, 1, 2);
  if (mt == 2 && p.N * p.K > (int64_t(8) << 20)) return find(p.group, 2, 1, 16, 16, 2, 2);
  return -1;
}

}  // namespace

// The rules below come from `bench/bench.py --sweep` on an H100 SXM (2026-11-25, every
// whitelisted configuration timed per shape and M, CUDA graphs, weights rotated past L2;
// bench/results/sweep-h100-2026-11-25.csv). Best configuration per case, in us:
//   N x K        M=1                M=16               M=50               M=128
//   16384x2048   mt1 wn4 wk2 11.2   mt2 wn4 wk2 13.3   mt8 wn8 wk1 30.6   mt8 wn4 wk2 54.6
//   2048x16384   mt1 wn1 wk16 12.6  mt2 wn1 wk16 14.6  mt8 wn1 wk8 29.9   mt8 wn2 wk4 52.1
//   32768x2048   mt1 wn8 wk1 17.7   mt2 wn8 wk1 22.3   mt8 wn4 wk2 52.8   mt8 wn4 wk2 104.8
//   4096x1024    mt1 wn1 wk8 4.1    mt2 wn1 wk8 4.6    mt2 wn4 wk2 7.8    mt8 wn4 wk2 11.1
//   1024x4096    mt1 wn1 wk16 5.0   mt1 wn1 wk16 5.2   mt2 wn2 wk8 8.1    mt8 wn1 wk8 12.1
//   2048x2048    mt1 wn1 wk8 4.4    mt2 wn1 wk8 5.0    mt2 wn2 wk4 8.1    mt8 wn2 wk4 11.3
// What they say: (1) a wave of tiles should not exceed the resident CTAs (2 per SM): wide N
// wants more rows per CTA (WN); (2) each K-warp should get >= 2 chunks per tile when few
// tokens, >= 4 when many (reduction and epilogue cost per tile); (3) tall K with few row
// tiles wants 16 K-warps; (4) 33..64 tokens on small layers run better as 32-token (or 16-token,
// within 2%) tiles than as one 64-token tile (now part of rule (5)). M=1 picks are within 5%
// of the best above.
//
// Rule (5), small layers (N * K <= 8M: the pi0.5 action expert's and the backbone's
// attention projections) at M <= 64, from two H200 sweeps that had these shapes
// (bench/results/sweep50-h200-2026-11-25.csv, sweep-small-h200-2026-11-25.csv; M in
// {1, 16, 32, 50, 64}): the best configurations give about one 8-warp CTA per SM, reached
// with the largest token tile that still makes that many tiles (fewer weight re-reads), and
// otherwise 8-token tiles. Best / pick of rules (1)-(4), us: 256x1024 M=50 (mt1 not swept
// there) mt2 wn1 wk8 3.96 / 7.50 and M=64 mt1 wn1 wk8 3.44 / 4.00; 2048x1024 M=50 mt4 wn2 wk4
// 5.80 / 7.67; 1024x2048 M=50 mt4 wn1 wk8 5.90 / 7.72 and M=16 mt1 wn1 wk8 4.15 / 4.81;
// 256x2048 M=16 mt1 wn1 wk8 3.91 / 4.60. The rule's picks are within 7% of the best in
// every swept case (worst: 2048x1024 M=32, 5.05 vs 4.73). Checked on an H100 (session 5,
// bench/results/sweep50-h100-2026-11-26.csv, M = 50, the expert's seven shapes and 2048x2048):
// the pick is the best or within 1.5% of it on every one.
//
// Rule (6), two row tiles per warp (RM = 2, session 6: each activation fragment serves two
// weight tiles; bench/results/sweep-rm2-h100-2026-11-26.csv, H100, us, RM = 2 pick / earlier
// pick): the small layers with N >= 1024 at 33..128 tokens, 32-token tiles (at <= 64 tokens
// only where that still leaves >= 2 warps along N, else 16-token ones), the fewest warps along
// N that keep one wave: M=50 4096x1024 mt4_wn2_wk4_r2 6.95 / 7.13, 1024x4096 mt2_wn1_wk8_r2
// 7.35 / 7.61, 2048x1024 mt2_wn2_wk4_r2 5.27 / 5.70, 1024x2048 mt2_wn1_wk8_r2 5.37 / 5.72,
// 2048x2048 mt2_wn2_wk4_r2 7.31 / 7.41 (256-wide layers: RM = 2 slower, 3.81 / 3.21); M=128
// 4096x1024 mt4_wn4_wk2_r2 9.22 / 10.80, 1024x4096 mt4_wn1_wk8_r2 9.74 / 11.71, 2048x1024
// mt4_wn2_wk4_r2 6.82 / 10.51, 1024x2048 mt4_wn1_wk8_r2 7.21 / 10.92, 2048x2048 mt4_wn2_wk4_r2
// 9.48 / 11.11 (and M=96 alike); the pick was the best of its sweep in every case. On the large
// layers, at <= 8 tokens the RM = 2 twin of rule (1)'s pick (same rows per CTA: half the warps
// along N, twice along K) where it has >= 2 warps along N: 16384x2048 M=1 mt1_wn2_wk4_r2 10.01
// / 10.71, 32768x2048 M=1 mt1_wn4_wk2_r2 15.87 / 17.59 (M=8 alike); at 9..32 tokens, where rule
// (1) puts >= 4 warps along N, RM = 2 with 4 warps along N and 2 along K (one CTA per SM
// resident from 9 tokens: the tiles must fit one wave): 16384x2048 M=16 mt2_wn4_wk2_r2 12.09 /
// 12.78, M=32 mt4_wn4_wk2_r2 15.20 / 19.21; 32768x2048 M=16 20.74 / 21.36, M=32 26.53 / 33.45
// (M=9 and M=24 alike; the best of the sweep; 2048x16384, one warp along N, keeps RM = 1).
// Since session 18, 9..16 tokens there take rule (8)'s 16-warp CTAs instead.
//
// Session 7 (H100 sweeps bench/results/sweep-s7-h100-2026-11-26.csv and
// sweep-tiledbits-h100-2026-11-26.csv, us; their `auto` column is the pick of the build that
// ran, `build` says which): 17..32 tokens on the small layers >= 2048 wide: 16-token tiles,
// RM = 2, one wave of one CTA per SM, 4096x1024 M=32 mt2_wn2_wk4_r2 5.45 / 5.82 (session-6
// pick), 2048x2048 mt2_wn1_wk8_r2 5.55 / 5.91, 2048x1024 4.54 / (mt4_wn1_wk8, slower than 4.57;
// best mt2_wn2_wk4 4.36); 33..64 tokens: 32-token tiles unless they leave SMs idle or a
// K-warp one chunk, 2048x2048 M=50 mt4_wn1_wk8_r2 7.05 / 7.39 (2048x1024 keeps mt2_wn2_wk4_r2
// 5.29, the best).
//
// Rule (7), session 8 (H100 sweep bench/results/sweep-narrow-h100-2026-11-26.csv, us, best /
// the earlier pick, 64-token tiles by rules (1)-(2)): above 128 tokens, where this kernel runs
// at all on an H100 (layers too narrow for the prefill kernel's tiles to fill half the SMs,
// e.g. pi0.5's 256-wide k / v projections at the 968-token prefix; every layer on GPUs
// without wgmma), 32-token tiles with the fewest rows per CTA (16, 32, 64 or 128: one warp,
// two, two with RM = 2, four with RM = 2) that keep the tiles within one CTA per SM, K-warps
// filling the CTA to 8 warps. 256x2048 M=192 mt4_wn1_wk8 5.48 / 9.78, M=512 mt4_wn2_wk4 6.81 /
// 9.89, M=968 mt4_wn2_wk4_r2 8.81 / 10.26; 512x2048 M=256 mt4_wn2_wk4 6.76 / 9.95, M=968
// mt4_wn4_wk2_r2 13.26 / 17.29; 256x1024 M=192 4.53 / 9.43; 512x1024 M=968 8.65 / 9.97: the pick
// is the best of its sweep in 13 of the 16 cases and within 1.2% in the others (512x1024 M=512
// 6.54 vs 6.50, 256x1024 M=968 tie). Large layers: 2048x2048 and 2560x2048 at M = 968 had
// mt4_wn4_wk2_r2 as their best mma configuration too (H200, session 8; the wgmma kernel runs
// those on Hopper). At M = 4096 these layers go to the prefill kernel (its tiles fill the GPU).
//
// Rule (8), session 18 (H100 sweep bench/results/sweep-mt2-16warp-h100-2026-11-26.csv, us, the
// new pick / rule (6)'s mt2_wn4_wk2_r2 at 152 registers, one 8-warp CTA per SM): the large
// layers at 9..16 tokens where rule (6) applies run 16-warp CTAs of two row tiles per warp
// (128 registers, still one CTA per SM: twice the warps to hide the load and conversion
// latency), the fewest warps along N that keep one wave: 16384x2048 M=16 mt2_wn4_wk4_r2 10.87
// / 11.23, M=12 10.89 / 11.26; 32768x2048 M=16 mt2_wn8_wk2_r2 17.48 / 19.75, M=12 17.40 / 19.85
// (the best of each sweep); dispatched, same process against the rule (6) build
// (ab-16warp-mt2-h100-2026-11-26.txt): 32768x2048 M = 9 / 12 / 16 -12.6 / -12.9 / -12.2%,
// 16384x2048 -2.6 / -2.6 / -1.1%. The same at 1..8 tokens (MT = 1) was no faster than rule
// (6)'s two 8-warp CTAs per SM (sweep-mt1-16warp-h100-2026-11-26.csv).
//
// Rule (9), session 23 (H100 sweep bench/results/sweep-mma-cluster-h100-2026-11-27.csv, us,
// the cluster twin / rule (3) or (5)'s pick): where a pick has one warp along N and 16 K-warps
// (too few row tiles for the SMs, K long) and twice its tiles still fit one CTA per SM, its
// tile is split over K across a 2-CTA thread-block cluster ("_c2": rank 1 adds its CTA's sums
// into rank 0's shared memory, no partials in global memory; sm_90 only, where it was
// measured). Large layers at 9..16 tokens take two row tiles per warp with it (fewer
// activation conversions per weight byte): 2048x16384 M=12 mt2_wn1_wk16_r2_c2 11.38 / 12.13,
// M=16 11.42 / 12.09; small layers at <= 8 tokens take 8 K-warps per CTA on twice the CTAs:
// 1024x4096 M=1 / 4 / 8 mt1_wn1_wk8_c2 4.01 / 4.18, 4.07 / 4.30, 4.03 / 4.28 (the best of each
// sweep). Dispatched, same process against the build without it (ab-mma-cluster-h100-
// 2026-11-27.txt), GEMM / fused: 2048x16384 M=12 -5.3 / -4.7%, M=16 -7.9 / -6.0%; 1024x4096
// M=1 -4.1 / -4.0%, M=4 -4.2 / -3.6%, M=8 -5.3 / -7.7%. Not at <= 8 tokens on 2048x16384 (M=1
// mt1_wn1_wk8_c2 9.95 / 9.39, M=8 9.91 / 10.11: too little to gain), at 9..16 on 1024x4096
// (twice the tiles already fill the SMs: 4.99 / 4.28 at M=16) nor on 2048x2048 (K too short:
// slower at every M swept, in the sweep of the kernel before its start barrier,
// sweep-mma-cluster-nostart-h100-2026-11-27.csv).
int choose_mma_config(const Problem& p, const Device& d) {
  // 16-byte weight loads need rows of a multiple of 16 bytes (K % 32 == 0); otherwise 8.
  const int vec = p.K % 32 == 0 ? 16 : 8;
  int mt = p.M <= 8 ? 1 : p.M <= 16 ? 2 : p.M <= 32 ? 4 : 8;
  const int64_t row_tiles = ceil_div(p.N, 16);
  const int64_t chunks = ceil_div(p.K, 8 * vec);
  const bool small = p.N * p.K <= (int64_t(8) << 20);
  const int64_t enough = d.sm_count - d.sm_count / 8;  // tiles that count as "about one per SM"
  if (vec == 16 && p.M > 128) {  // rule (7)
    static const int kRows[4][2] = {{1, 1}, {2, 1}, {2, 2}, {4, 2}};  // (WN, RM): 16, 32, 64, 128 rows per CTA
    const int64_t token_tiles = ceil_div(p.M, 32);
    int step = 0;
    while (step < 3 && ceil_div(p.N, 16 * kRows[step][0] * kRows[step][1]) * token_tiles > d.sm_count) ++step;
    const int index = find(p.group, 4, kRows[step][0], 8 / kRows[step][0], 16, kRows[step][1]);
    if (index >= 0) return index;
  }
  if (vec == 16 && p.M > 32 && p.M <= 128 && small && p.N >= 1024) {  // rule (6)
    auto wn_for = [&](int m) { return fewest_wn_for_one_wave(ceil_div(p.N, 32) * ceil_div(p.M, 8 * m), d.sm_count); };
    int m6 = 4, wn6 = wn_for(4);
    // 16-token tiles instead where 32-token ones leave SMs idle or a K-warp one chunk; there one
    // row tile per warp where K <= 2048 (rm6, session 31: since session 31's early epilogue
    // operands, gemm_mma.cu kEarlyEpi, which the one-row-tile kernels have and the 16-token
    // two-row-tile ones do not, the RM = 1 twin, same warps, is the faster one. H100 sweep at
    // M = 40 / 50 / 64, bench/results/sweep-expert-h100-2026-11-27-s31.csv, us, RM = 1 / RM = 2:
    // 2048x1024 mt2_wn2_wk4 4.30 / 4.48, 4.32 / 4.52, 4.27 / 4.47; 1024x2048 mt2_wn1_wk8 4.32 /
    // 4.61, 4.32 / 4.55, 4.44 / 4.60, the best of each sweep; at K = 4096 even, 1024x4096 6.22 /
    // 6.13, 6.09 / 6.22, 6.18 / 6.18: it keeps RM = 2.)
    int rm6 = 2;
    // Also where the 32-token pick's own CTAs (32 * wn6 rows each) leave SMs idle, 16-token
    // tiles pad fewer tokens (33..48: three 16-token tiles against two 32-token ones) and they
    // still fit one wave with as many warps along N (session 32, H100, same process against the
    // build before, bench/results/ab-ctas32-h100-2026-11-27-s32.txt: 2304x1024 / 2560x1024 at
    // M = 33 / 40 / 48 -16 .. -20%, mt2_wn2_wk4 4.3 us against mt4_wn2_wk4_r2 5.2-5.4, and at
    // K = 2048 -17 .. -18%; 2560x1024 is the expert's fused q/k/v. Without the last condition
    // 3072x1024 and 3584x2048 took mt2_wn4_wk2 there, +10% / +27..31%: the sweep's best stays
    // mt4_wn2_wk4_r2.)
    const int64_t ctas32 = ceil_div(p.N, 32 * wn6) * ceil_div(p.M, 32);
    const bool fewer_tokens = ceil_div(p.M, 16) < 2 * ceil_div(p.M, 32);
    if (p.M <= 64 && (ceil_div(p.N, 32) * ceil_div(p.M, 32) < enough || chunks * wn6 < 16 ||
                      (ctas32 < enough && fewer_tokens && wn_for(2) == wn6))) {
      m6 = 2, wn6 = wn_for(2);
      if (p.K <= 2048) rm6 = 1;
    }
    const int index = find(p.group, m6, wn6, 8 / wn6, 16, rm6);
    if (index >= 0) return index;
  }
  if (vec == 16 && p.M > 16 && p.M <= 32 && small && p.N >= 2048) {  // rule (6) at 17..32 tokens
    const int wn6 = std::min(4, fewest_wn_for_one_wave(ceil_div(p.N, 32) * ceil_div(p.M, 16), d.sm_count));
    const int index = find(p.group, 2, wn6, 8 / wn6, 16, 2);
    if (index >= 0) return index;
  }
  if (vec == 16 && p.M <= 64 && small) {  // rule (5)
    int m5 = 1;
    for (int c = std::min(mt, 4); c > 1; c /= 2)
      if (row_tiles * ceil_div(p.M, 8 * c) >= enough) {
        m5 = c;
        break;
      }
    const int wn = fewest_wn_for_one_wave(row_tiles * ceil_div(p.M, 8 * m5), d.sm_count);
    const int wk = m5 <= 2 && wn == 1 && chunks / 2 >= 16 ? 16 : 8 / wn;  // rule (3)
    const int twin = cluster_twin(p, d, m5, wn, wk, row_tiles * ceil_div(p.M, 8 * m5));  // rule (9)
    if (twin >= 0) return twin;
    return find(p.group, m5, wn, wk, vec);
  }
  if (mt == 8 && p.M <= 64 && small) mt = 4;  // rule (4), K % 32 != 0
  if (vec == 8) return find(p.group, mt, 2, 4, 8);  // the only K % 32 != 0 configurations

  const int64_t token_tiles = ceil_div(p.M, 8 * mt);
  const int64_t wave = 2 * int64_t(d.sm_count);
  // Rule (1): the fewest rows per CTA that keep the tiles within one wave.
  int wn = 1;
  while (wn < 8 && ceil_div(row_tiles, wn) * token_tiles > wave) wn *= 2;
  // Rule (2): at most chunks / 2 (few tokens) or chunks / 4 (many) K-warps.
  const int64_t wk_max = std::max<int64_t>(1, chunks / (mt <= 2 ? 2 : 4));
  int wk = 8 / wn;
  while (wk > 1 && wk > wk_max) {
    wk /= 2;
    wn *= 2;
  }
  // Rule (3): 16 K-warps for tall K on few row tiles (few tokens only).
  if (mt <= 2 && wn == 1 && wk == 8 && wk_max >= 16) wk = 16;
  if (vec == 16) {  // rule (9) at 9..16 tokens on the large layers
    const int twin = cluster_twin(p, d, mt, wn, wk, ceil_div(p.N, 32) * token_tiles);
    if (twin >= 0) return twin;
  }
  if (mt == 1 && vec == 16 && wn >= 2 && wk <= 4) {  // rule (6), its decode part
    const int twin = find(p.group, 1, wn / 2, wk * 2, 16, 2);
    if (twin >= 0) return twin;
  }
  if (mt == 2 && vec == 16 && wn >= 4 && wk <= 2) {  // rule (8) at 9..16 tokens
    // One 16-warp CTA per SM (2, 4 or 8 warps along N, the fewest that keep the tiles within
    // one wave), the rest along K.
    const int wn8 = std::max(2, fewest_wn_for_one_wave(ceil_div(p.N, 32) * token_tiles, d.sm_count));
    const int r8 = find(p.group, 2, wn8, 16 / wn8, 16, 2);
    if (r8 >= 0) return r8;
  }
  if (mt == 4 && vec == 16 && wn >= 4 && wk <= 2) {  // rule (6) at 17..32 tokens (9..16: rule (8))
    const int r2 = find(p.group, mt, 4, 2, 16, 2);
    if (r2 >= 0) return r2;
  }
  return find(p.group, mt, wn, wk, vec);
}

int config_count() { return kernels::mma_config_count() + kernels::wgmma_config_count(); }
bool is_wgmma(int index) { return index >= kernels::mma_config_count(); }
int wgmma_index(int index) { return index - kernels::mma_config_count(); }
const char* config_name(int index) {
  return is_wgmma(index) ? kernels::wgmma_config(wgmma_index(index)).name : kernels::mma_config(index).name;
}
int config_group(int index) {
  return is_wgmma(index) ? kernels::wgmma_config(wgmma_index(index)).group : kernels::mma_config(index).group;
}

// The kernel's own shape rules (the API guarantees the pointer alignment it also checks).
bool wgmma_fits(const Problem& p) {
  kernels::GemmParams g;
  g.M = p.M;
  g.N = p.N;
  g.K = p.K;
  g.group = p.group;
  return kernels::wgmma_supported(g);
}

// The wgmma kernel can run from M = 33 (tiles of 64 tokens). The workspace queries size the
// FP16 activations for every such shape (they do not know the device); whether it runs is
// decided per device below.
int64_t wgmma_min_m(const Problem&) { return 33; }

namespace {
// Persistent CTAs walk the work items round-robin, so the busiest SM runs ceil(items / SMs)
// of them; an item costs about (tokens + 64) token-rows of work per 64-k stage (the 64:
// per-tile fill, drain, epilogue, and a 128-token tile's lower efficiency per MMA; it was 32
// until the H100 sweep bench/results/sweep968-h100-2026-11-25.csv, made after the prologue
// fix: 2048x16384 M=968 bm256_k2 113.6 us, bm128 129.5; every other pick of the PERF.md
// shapes at M in {50, 64, 128, 256, 968, 4096} unchanged by 64); a unit is ~3 ns on an H100. Split-K (S items per tile, K / S stages each) adds the FP32 partials'
// round trip, S x M x N x 8 bytes (1.2e-3 units per element and split), and the reduction
// launch (~4 us, 1200 units); and it is only considered while every split keeps >= 16 stages
// (1024 k): below that the fixed costs dominate (2048x2048 M=64: 8 splits of 4 stages 10.8 us,
// mma.sync 8.1 us).
int64_t wgmma_tiles(const Problem& p, int bm) { return ceil_div(p.M, bm) * ceil_div(p.N, 128); }
bool split_ok(const Problem& p, int splits) { return splits == 1 || ceil_div(ceil_div(p.K, 64), splits) >= 16; }
double wgmma_cost(const Problem& p, const Device& d, int bm, int splits) {
  const int64_t nk = ceil_div(p.K, 64);
  const int64_t items = wgmma_tiles(p, bm) * splits;
  const double work = double(ceil_div(items, d.sm_count)) * double(bm + 64) * double(ceil_div(nk, splits));
  return work + (splits > 1 ? 1200.0 + 1.2e-3 * double(splits) * double(p.M) * double(p.N) : 0.0);
}
}  // namespace

// Tokens per tile and K splits: the cheapest by wgmma_cost (ties: the larger tile, the fewer
// splits). Split-K, from bench/results/sweep-splitk-h100-2026-11-25.csv (same method):
//   2048x16384  M=64: bm128_k8 26.1 (mma.sync 30.8)   M=128: bm128_k8 30.0, k4 39.1 (mma 51.7)
//               M=256: bm128_k4 46.5, k8 52.7   M=968: bm256_k2 157.4, bm128 159.8
//   2048x2048   M=256: bm128_k4 15.2 (mma 18.0)   1024x4096 M=256: bm128_k8 16.3 (mma 17.3)
// Unsplit, from bench/results/sweep-wgmma-h100-2026-11-25.csv (H100, CUDA graphs, us; with
// the prologue):
//   16384x2048  M=64: bm64 17.9, bm128 24.3    M=128: bm128 20.6, bm64 29.2, bm256 36.1
//               M=968: bm256 100.1, bm128 125.2   M=4096: bm256 441.9, bm128 521.8
//   2048x16384  M=968: bm128 160.0, bm256 207.3   M=4096: bm256 605.0, bm128 700.7
//   32768x2048  M=64: bm64 31.8   M=128: bm128 36.6   M=968: bm256 206.0   M=4096: bm256 864.5
// 64-token tiles in K splits (session 24; before, 8 splits ran only at 128 tokens), same
// process (bench/results/sweep-bm64-splitk-h100-2026-11-27.csv, us): 2048x16384 M=33 bm64_k8
// 19.06, bm128_k8 22.52; M=50 19.72 / 22.32; M=64 20.28 / 22.86; M=96 31.39 / 23.75 (the model
// keeps bm128_k8 there: two rounds of 64-token items); 2048x8192 M=50 14.68 / 16.42. Dispatched,
// A/B against the build without them (ab-bm64-splitk-h100-2026-11-27.txt), FP8-input / fused:
// 2048x16384 M=33 -14.9 / -14.7%, M=50 -13.1 / -11.5%, M=64 -11.5 / -10.8%; 2048x8192 M=33..64
// -7.4 .. -13.0%. (2048x8192 M=33..64: mma.sync mt4_wn1_wk8_r2 13.71 / 14.27 / 14.44 in the
// same sweep, 2-5% faster than these; their 128-k twins below, 13.51 / 13.68 / 14.16 in the next
// sweep, where bm64_k8 read within 0.5% of this one, are 1-4% faster than it.)
// Split-K only where the caller gives the FP16 activations (it needs the workspace).
// The candidates are the whitelist's (gemm_wgmma.cu: no 64-token tile in the converter
// variant, splits only with FP16 activations).
int choose_wgmma_config(const Problem& p, const Device& d, bool f16_in) {
  int best = -1, best_bm = 0, best_s = 0;
  double best_cost = 0.0;
  // 248-token tiles (exact path with FP16 activations, unsplit or 2 splits), at M = 769..992:
  // four token tiles either way, and the cost model's smaller tile wins: less padding (M = 968:
  // 992 rows computed instead of 1024). H100, same process against 256-token tiles, two runs
  // (bench/results/ab-bm248-h100-2026-11-26.txt), us: M = 968 16384x2048 99.0 / 102.4 and
  // 101.6 / 101.8, 32768x2048 191.1 / 201.1 and 196.2 / 204.7, 2048x16384 (2 splits) 113.0 /
  // 113.9 and 112.7 / 110.4, 4096x1024 -0.1% / -0.6%; pi0.5 trace 11.75 / 12.07 ms. Not above
  // 992 tokens: at M = 1600 the fused calls were 1.5-7% faster, but 32768x2048's FP8-input call
  // 5-10% slower (that call already ran 8-10% over its fused one with 256-token tiles; not
  // understood).
  // 192-token tiles (session 27; m64n192k16, 6-stage ring): the model takes them where two
  // tiles of 192 beat three of 128 or two of 256 (the large layers at M = 129..192, 257..384,
  // 513..576). H100, dispatched, same process against main without them, FP8-input / fused
  // (bench/results/ab-bm192-h100-2026-11-27-s27.txt), us: 16384x2048 M=160 23.24 / 28.37,
  // M=384 43.41 / 48.22, M=576 68.18 / 92.23; 32768x2048 M=160 42.43 / 53.51, M=320 83.08 /
  // 93.64, M=576 126.92 / 160.99; 2048x16384 (K-splits) M=384 bm192_k4 53.90 / 60.86, M=640
  // bm192_k2 87.27 / 106.42: 9-26% faster on every row where they are picked (fused alike);
  // the other rows read within the base runs' spread. Then 160 and 224 (same kernel; 160 with
  // 8 stages, 224 with 6), taken by the same model, H200, same process against the build with
  // 192 (bench/results/ab-bm160-224-h200-2026-11-27-s27.txt), FP8-input, us: 16384x2048 M=224
  // bm224 25.71 / 28.57, M=400 47.22 / 52.31, M=769 bm160 97.83 / 107.92 (bm248), M=832 bm224
  // 93.58 / 99.54; 32768x2048 M=129 bm160 38.44 / 42.24, M=769 182.23 / 227.83; 2048x16384
  // M=129 bm160_k8 25.91 / 39.73 (bm128_k4), M=160 28.45 / 37.22; 4096x1024 M=769 bm224 15.57 /
  // 17.84: faster on 30 of the 31 rows where the pick changed, by 1.9-35%; the one exception,
  // 2048x16384 M=576 bm160_k2 81.46 / 78.02, within its base spread (4.3%).
  for (int bm : {64, 128, 160, 192, 224, 248, 256})
    for (int splits : {1, 2, 4, 8}) {
      if (bm == 248 && (p.M <= 3 * 256 || p.M > 4 * 248)) continue;  // measured there only
      const int index = find_wgmma(p.group, bm, f16_in, splits);
      if (index < 0 || !split_ok(p, splits)) continue;
      const double cost = wgmma_cost(p, d, bm, splits);
      if (best < 0 || cost < best_cost || (cost == best_cost && splits == best_s && bm > best_bm))
        best = index, best_bm = bm, best_s = splits, best_cost = cost;
    }
  // An unsplit 64- or 128-token tile runs with 128-k stages (one barrier round trip and
  // wgmma wait per 128 k). H100, bench/results/sweep-s128-h100-2026-11-26.csv (same process,
  // us, 64-k / 128-k stages): 16384x2048 M=50 bm64 16.85 / 16.40, M=64 16.95 / 16.41, M=128
  // bm128 20.24 / 19.45; 32768x2048 M=50 29.19 / 28.97, M=64 30.09 / 28.73, M=128 37.88 /
  // 36.21; 2048x2048 M=50 14.31 / 13.45. Above 128 tokens (session 13,
  // bench/results/sweep-small968-h100-2026-11-26.csv, the layers where the cost model picks
  // these tiles there): 2048x2048 M=968 bm128 19.15 / 18.48, 1024x4096 M=968 bm64 28.13 /
  // 26.11, 256x2048 M=4096 bm64 22.17 / 21.65; the dispatched rows, same process against the
  // rule at M <= 128 (ab-s128-past-128-h100-2026-11-26.txt): 2048x2048 M=512 -7.2%, M=968
  // -1.9%, 1024x4096 M=968 -7.9%, 256x2048 M=4096 -7.1%, fused calls alike.
  // Split ones too where the whitelist has the twin (64 tokens in 4 or 8 splits, 128 in 8;
  // session 24, bench/results/sweep-s128-splitk-h100-2026-11-27.csv, same process, us, 128-k /
  // 64-k stages): 2048x16384 M=33 bm64_k8 18.17 / 19.13, M=64 19.03 / 20.32, M=96 bm128_k8
  // 22.92 / 24.41, M=128 24.98 / 26.04; 2048x8192 M=50 bm64_k8 13.68 / 14.45, M=128 bm64_k4
  // 18.32 / 18.92; 1024x16384 M=96 bm64_k8 19.94 / 19.84 (the one tie).
  if (best >= 0 && f16_in && best_bm <= 128) {
    const int twin = find_wgmma(p.group, best_bm, true, best_s, false, 2);
    if (twin >= 0) best = twin;
  }
  // Two K-splits reduced in a 2-CTA cluster ("_k2c": the splits of a tile swap their sums
  // through distributed shared memory, no partials in global memory, no reduction launch)
  // wherever one wave of clusters holds every tile; beyond that a cluster twin runs in more
  // waves than the persistent kernel. Session 21 measured it faster alone (same process,
  // bench/results/sweep-cluster-h100-2026-11-27.csv, us, cluster / workspace: 2048x16384
  // M=968 bm248_k2 108.3 / 113.6; two waves: 2048x16384 M=128 bm128_k8 39.4 / 25.5, M=256
  // bm128_k4 65.2 / 40.0) but left it undispatched: the BF16-input pi0.5 traces came out
  // 0.2-0.6% slower in three A/Bs (ab-cluster-splitk-h100-2026-11-27.txt). Session 24, after
  // session 22's quantizer launch rule, two A/Bs of this rule against main 67ef93f
  // (bench/results/ab-k2c-h100-2026-11-27-s24.txt, H100): the layer -6.0 / -3.8% (FP8 input), -4.8 / -3.4%
  // (fused); the four exact-path traces on BF16 input -0.2 .. -1.0% in all eight readings, on
  // FP8 input -0.8 .. +0.9% (mean -0.2%). Only 2 splits: the 4- and 8-split picks today have
  // no cluster twin (128-k stages) or take two waves.
  if (best >= 0 && best_s == 2 && wgmma_tiles(p, best_bm) <= d.cluster_slots2) {
    const int twin = find_wgmma(p.group, best_bm, f16_in, 2, false, kernels::wgmma_config(wgmma_index(best)).kh, true);
    if (twin >= 0) best = twin;
  }
  return best;
}

bool wgmma_candidate(const Problem& p) { return wgmma_fits(p) && p.M >= wgmma_min_m(p); }

// FP8 path: 128-token tiles, unsplit or 4 K-splits by the same cost model (its stages are 128 k,
// half the exact path's cost per k: a constant factor that does not change the comparison
// between its own candidates). Not yet measured against the exact path's choices: AUTO takes
// the FP8 path wherever it would run a wgmma kernel on an EXACT weight. Fast accumulation
// (W4A8_FP8_FAST) adds the 256-token tiles without promotion, unsplit or 2 K-splits, to the
// candidates (the caller accepts the faster summation, it does not ask for it), and its
// 128-token tiles take the promoted ones' place (session 26: the same kernel without the
// promotion, 1.5-7% faster on every measured point, BENCHMARKS.md): where the 256-token tiles
// leave SMs idle the 128-token ones run. Same model, and on every point session 25 measured it
// picks the faster tile (H100, us; bench/results/fp8-fast-h100-2026-11-27-s25.txt
// and h100-2026-11-27-s25.csv): 2048x16384 M = 968 fast_k2 73.4 (fast 91.4, promoted 86.0),
// M = 4096 fast 266.5 (fast_k2 317.3, promoted 350.1); 16384x2048 M = 968 fast 69.8 (fast_k2
// 155.0, promoted 88.3); 32768x2048 M = 968 fast 128.4 (promoted 184.0); 4096x1024 M = 968 fast
// 13.2 (promoted 16.0); but 2048x2048 M = 968 promoted 14.2 (fast 17.2) and 1024x4096 M = 968
// promoted_k4 22.0 (fast_k2 26.8): 64 tiles of 256 tokens on 132 SMs. One miss (session 26):
// 1024x4096 M = 968 takes 4 splits of 128 tokens, 23.9 us fast, where the unsplit tile measured
// 19.9 (the model's split cost is the exact path's; this shape is not in the pi0.5 prefill).
int choose_fp8_config(const Problem& p, const Device& d, bool fast_acc) {
  int best = -1;
  double best_cost = 0.0;
  for (const int bm : {128, 256}) {
    if (bm == 256 && !fast_acc) continue;
    for (int splits : {1, bm == 256 ? 2 : 4}) {
      const int index = find_wgmma(p.group, bm, true, splits, true, 1, false, fast_acc);
      if (index < 0 || !split_ok(p, splits)) continue;
      const double cost = wgmma_cost(p, d, bm, splits);
      if (best < 0 || cost < best_cost) best = index, best_cost = cost;
    }
  }
  return best;
}

// Where AUTO swaps the exact prefill kernel for the FP8 path on a weight that allows it: EXACT or
// ACCEPTED from M = 512, FAST from M = 128 (below). H100, bench/bench.py (2026-11-25, us, exact wgmma / FP8 path):
// M = 968: 2048x16384 126.8 / 93.3, 16384x2048 106.9 / 103.3, 2048x2048 20.1 / 17.0,
// 32768x2048 209.0 / 204.7, 1024x4096 27.8 / 25.7, 4096x1024 17.8 / 19.6 (the one loss);
// M = 4096: FP8 faster on every shape but 4096x1024 (63.6 / 66.5); M = 128: mixed
// (16384x2048 20.8 / 18.6, 2048x16384 27.4 / 29.7 with split-K on both).
// On FAST weights from M = 128 (session 26, H100, bench/results/msweep-fp8-fast-h100-2026-11-27-s26.csv,
// us, exact AUTO / FP8 fast at M = 128, 192, 256, 384, 512): 16384x2048 19.85 / 16.23, 29.32 /
// 19.34, 30.43 / 20.97, 47.07 / 35.28, 56.07 / 36.90; 32768x2048 34.28 / 27.70, 52.50 / 35.75,
// 56.80 / 38.87, 92.73 / 68.21, 106.14 / 71.79; 2048x16384 24.25 / 23.55, 36.39 / 26.20, 40.36 /
// 27.76, 59.94 / 47.47, 64.88 / 53.17: faster at every point (the narrow layers at M <= 128 stay
// on the mma.sync kernel, which AUTO picks there before this swap is considered).
bool fp8_preferred(const Problem& p, bool fast_acc) { return p.M >= (fast_acc ? 128 : 512); }

bool config_fp8(int index) { return is_wgmma(index) && kernels::wgmma_config(wgmma_index(index)).fp8; }

bool config_f16_in(int index) {
  return is_wgmma(index) && kernels::wgmma_config(wgmma_index(index)).f16_in;
}

int workspace_twin(int index) {
  if (!is_wgmma(index)) return index;
  const kernels::WgmmaConfig& c = kernels::wgmma_config(wgmma_index(index));
  return c.cluster ? find_wgmma(c.group, c.bm, c.f16_in, c.splits, c.fp8, c.kh, false, c.fast) : index;
}

int find_wgmma_config(int group, int bm, bool f16_in, int splits, bool fp8, int kh, bool cluster, bool fast) {
  return find_wgmma(group, bm, f16_in, splits, fp8, kh, cluster, fast);
}

int unsplit(int index) {
  if (!is_wgmma(index)) return index;
  const kernels::WgmmaConfig& c = kernels::wgmma_config(wgmma_index(index));
  return c.splits > 1 ? find_wgmma(c.group, c.bm, c.f16_in, 1, c.fp8, c.kh, false, c.fast) : index;
}

// wgmma when its tiles occupy at least half the SMs; below that the mma.sync kernel, which
// splits K across warps, wins (same sweep: 2048x16384 M=64 mma 31.9 us vs wgmma bm64 86.4 us
// on 32 tiles; M=128 mma 52.0 vs 87.9; 16384x2048 M=64 wgmma 17.9 vs mma 30.5 on 128 tiles).
int choose_config(const Problem& p, const Device& d, bool f16_in) {
  if (d.wgmma && wgmma_candidate(p)) {
    const int index = choose_wgmma_config(p, d, f16_in);
    const kernels::WgmmaConfig& c = kernels::wgmma_config(wgmma_index(index));
    if (2 * wgmma_tiles(p, c.bm) * kernels::wgmma_splits(wgmma_index(index), p.K) >= d.sm_count) return index;
  }
  return choose_mma_config(p, d);
}

}  // namespace heuristics
}  // namespace w4a8
