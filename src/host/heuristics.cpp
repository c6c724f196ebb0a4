// The one place where kernel configurations are chosen. Each rule says what it is based on.
#include "host/heuristics.hpp"

#include "kernels/launch.hpp"

namespace w4a8 {
namespace heuristics {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

int find(int group, int mt, int wn, int wk, int vec) {
  for (int i = 0; i < kernels::mma_config_count(); ++i) {
    const kernels::MmaConfig& c = kernels::mma_config(i);
    if (c.group == group && c.mt == mt && c.wn == wn && c.wk == wk && c.vec == vec) return i;
  }
  return -1;
}

}  // namespace

int choose_mma_config(const Problem& p, const Device& d) {
  // 16-byte weight loads need rows of a multiple of 16 bytes (K % 32 == 0); otherwise 8.
  const int vec = p.K % 32 == 0 ? 16 : 8;
  // Tokens per warp: as few n-tiles as cover M (an MMA is 8 tokens wide), up to 64 tokens,
  // where one dequantized weight fragment already feeds 8 MMAs per k step.
  const int mt = p.M <= 8 ? 1 : p.M <= 16 ? 2 : p.M <= 32 ? 4 : 8;
  if (vec == 8) return find(p.group, mt, 2, 4, 8);  // the only K % 32 != 0 shape class

  // Warps per CTA are 8. Put them along N (WN) while that still gives >= 2 CTAs per SM
  // (enough independent loads in flight to cover HBM latency); otherwise split K inside the
  // CTA (WK), which keeps every SM streaming for tall-K shapes such as 2048 x 16384.
  const int64_t row_tiles = ceil_div(p.N, 16);
  const int64_t token_tiles = ceil_div(p.M, 8 * mt);
  const int64_t chunks = ceil_div(p.K, 8 * vec);
  const int64_t target = 2 * int64_t(d.sm_count);
  int wn = 1;
  for (int cand : {8, 4, 2}) {
    if (ceil_div(row_tiles, cand) * token_tiles >= target) {
      wn = cand;
      break;
    }
  }
  int wk = 8 / wn;
  // Idle K-warps help nobody: shrink WK to the number of chunks.
  while (wk > 1 && chunks < wk) {
    wk /= 2;
    wn *= 2;
  }
  return find(p.group, mt, wn, wk, vec);
}

}  // namespace heuristics
}  // namespace w4a8
