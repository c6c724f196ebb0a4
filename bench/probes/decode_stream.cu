// Probe: what separates the decode kernel from the read floor when it does no work at all?
// Session 19 found that keeping more weight bytes in flight per warp (L2 prefetch, a cp.async
// ring) made the 8-token decode kernel slower, while the floor kernel -- 64 warps per SM, four
// 16-byte loads per thread, grid-strided over the whole buffer -- reads the same bytes in
// 0.78x its time. This reads the bytes of a tiled 16384x2048 (18.9 MB) or 32768x2048 weight
// (codes + block scales) four ways, timed like the other probes (probe_util.cuh):
//   (a) the floor kernel (512 threads x 4 CTAs per SM)
//   (b) the same kernel (probe::plain_read) at the decode kernel's occupancy (256 x 2 per SM)
//   (c) the decode kernel's access pattern and schedule without its work: CTAs walk 64-row
//       tiles (WN = 2 warps x 2 row tiles, WK = 4 warps along K, mt1_wn2_wk4_r2), each warp
//       reads per batch the 16 rows x 64 bytes of two row tiles at its chunk (1 KB of tiled
//       codes each) and their block-scale bytes, AHEAD batches ahead in registers (1: the
//       kernel's cur / nxt), and
//   (d) (c) with WORK dependent integer multiply-adds per batch on the loaded data, standing
//       in for the dequantization and MMAs (the real kernel: ~350 warp instructions per batch).
// If (b) ~ (a), occupancy is not the gap; if (c) >> (b), the pattern or the per-tile schedule
// is; (c) with AHEAD = 3 against AHEAD = 1 says whether more batches in flight help when no
// work competes; (d) against (c) prices the work's latency; (e) times one launch of (c) / (d)
// per warp with SM clocks (where the warps wait, and how long the SM runs after its last batch
// starts). H100 answers: bench/results/decode-gap-h100-2026-11-27.txt, BENCHMARKS.md session 20.
//   built as <build>/bench/w4a8_probe_decode_stream (bench/CMakeLists.txt); run it on the GPU.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "probe_util.cuh"

namespace {

// The decode kernel's weight stream (tiled layout, group 16, K = 2048: 32 k-tiles per row
// group, 16 chunks of 128 k, 4 batches per warp and tile), no dequantization, no MMA.
constexpr int kWN = 2, kWK = 4, kRM = 2, kK = 2048, kKTiles = kK / 64, kChunks = kK / 128;
constexpr int kBatches = kChunks / kWK;       // per warp and tile (U = 1 with two row tiles)
constexpr size_t kGroupCodes = kKTiles * 512;  // bytes of codes per 16-row group
constexpr size_t kGroupScales = kKTiles * 64;  // bytes of block scales per 16-row group

struct Piece {
  uint4 w[kRM][2];
  uint32_t s[kRM][2];
};

// The timeline (TL): SM clock when the warp starts, sum of the clocks it spends waiting for
// each batch's data (from just before its first use to just after it), the clock just after
// the first use of its last batch (its data may have arrived long before), the clock after its
// last work, and the SM it ran on (5 values per warp). The value a wait ends on is stored to shared memory before the clock is read, so the
// read cannot be scheduled ahead of the wait (the usual way of timing a load on NVIDIA GPUs).
__device__ __forceinline__ unsigned long long clock_after(uint32_t v, volatile uint32_t* slot) {
  *slot = v;
  return clock64();
}

template <int AHEAD, int WORK, bool TL = false>
__global__ void __launch_bounds__(32 * kWN * kWK, 2)
    decode_pattern(const uint8_t* codes, const uint8_t* scales, int tiles, uint32_t* sink,
                   unsigned long long* tl) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
  __shared__ uint32_t tl_slot[32 * kWN * kWK];
  unsigned long long t_start = 0, t_wait = 0, t_last = 0;
  if constexpr (TL) t_start = clock64();
  const int wn = warp % kWN, wk = warp / kWN;
  const int my_tiles = blockIdx.x < tiles ? (tiles - 1 - blockIdx.x) / gridDim.x + 1 : 0;
  const int Q = my_tiles * kBatches;  // this warp's batches, tile after tile
  const unsigned w_t = (t >> 1) * 512u + (t & 1) * 16u + g * 32u, s_t = (t >> 1) * 64u + (t & 1) * 2u + g * 4u;
  auto load = [&](Piece& P, int q) {
    const int tile = blockIdx.x + (q / kBatches) * gridDim.x, b = q % kBatches;
    const int ch = wk + kWK * b;
#pragma unroll
    for (int rr = 0; rr < kRM; ++rr) {
      const size_t grp = size_t(tile) * (kWN * kRM) + wn * kRM + rr;  // 16-row group
      const uint8_t* c = codes + grp * kGroupCodes + size_t(ch) * 1024 + w_t;
      const uint8_t* s = scales + grp * kGroupScales + size_t(ch) * 128 + s_t;
      P.w[rr][0] = w4a8::kernels::ld_stream_16(c);
      P.w[rr][1] = w4a8::kernels::ld_stream_16(c + 256);  // row g + 8
      P.s[rr][0] = __ldg(reinterpret_cast<const uint16_t*>(s));
      P.s[rr][1] = __ldg(reinterpret_cast<const uint16_t*>(s + 32));
    }
  };
  uint32_t acc = 0;
  Piece r[AHEAD + 1];
#pragma unroll
  for (int s = 0; s < AHEAD; ++s)
    if (s < Q) load(r[s], s);
  for (int q = 0; q < Q; q += AHEAD + 1) {
#pragma unroll
    for (int s = 0; s <= AHEAD; ++s) {
      const int qq = q + s;
      if (qq + AHEAD < Q) load(r[(s + AHEAD) % (AHEAD + 1)], qq + AHEAD);
      if (qq < Q) {
        uint32_t v = 0;
        unsigned long long ta = 0;
        if constexpr (TL) ta = clock64();
#pragma unroll
        for (int rr = 0; rr < kRM; ++rr)  // every word (unused outputs could share registers)
#pragma unroll
          for (int h = 0; h < 2; ++h) v ^= r[s].w[rr][h].x ^ r[s].w[rr][h].y ^ r[s].w[rr][h].z ^ r[s].w[rr][h].w ^ r[s].s[rr][h];
        if constexpr (TL) {
          t_last = clock_after(v, tl_slot + threadIdx.x);
          t_wait += t_last - ta;
        }
#pragma unroll 8
        for (int i = 0; i < WORK; ++i) v = v * 1664525u + 1013904223u;  // dependent: waits for the data
        acc ^= v;
      }
    }
  }
  if constexpr (TL) {
    const unsigned long long t_end = clock_after(acc, tl_slot + threadIdx.x);
    if (lane == 0) {
      unsigned smid;
      asm volatile("mov.u32 %0, %%smid;" : "=r"(smid));
      unsigned long long* o = tl + 5 * (size_t(blockIdx.x) * (kWN * kWK) + warp);
      o[0] = t_start, o[1] = t_wait, o[2] = Q > 0 ? t_last : t_start, o[3] = t_end, o[4] = smid;
    }
  }
  if (acc == 0x9E3779B9u) *sink = acc;
}

// One timeline launch (after launches of the same kernel over the other windows, as the timed
// rows run it), summarized per SM: the span from the first warp's start to the last warp's
// end, how much of it comes after the first use of the SM's last batch, and the share of the
// warps' time spent waiting for their data. Medians over SMs, microseconds at the SM clock.
template <class Kern>
void timeline(probe::Bench& bench, Kern kern, int grid, size_t cbytes, int tiles,
              const char* name) {
  const int warps = grid * kWN * kWK;
  unsigned long long* d = nullptr;
  cudaMalloc(&d, size_t(warps) * 5 * sizeof(unsigned long long));
  for (int w = 0; w < 4; ++w) {
    const uint8_t* p = bench.buf + w * probe::Bench::kWindow;
    kern<<<grid, 32 * kWN * kWK>>>(p, p + cbytes, tiles, bench.sink, d);
  }
  std::vector<unsigned long long> h(size_t(warps) * 5);
  cudaMemcpy(h.data(), d, h.size() * sizeof(h[0]), cudaMemcpyDeviceToHost);
  cudaFree(d);
  int khz = 0;
  cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, 0);
  const double us_per_clock = 1e3 / khz;
  struct Sm { unsigned long long start = ~0ull, last = 0, end = 0, wait = 0, busy = 0; };
  std::vector<Sm> sm(bench.sms);
  for (int i = 0; i < warps; ++i) {
    const unsigned long long* o = &h[size_t(i) * 5];
    Sm& x = sm[o[4] % bench.sms];
    x.start = std::min(x.start, o[0]), x.last = std::max(x.last, o[2]), x.end = std::max(x.end, o[3]);
    x.wait += o[1], x.busy += o[3] - o[0];
  }
  std::vector<double> span, tail, waitf;
  for (const Sm& x : sm) {
    if (x.end == 0) continue;
    span.push_back((x.end - x.start) * us_per_clock);
    tail.push_back((x.end - x.last) * us_per_clock);
    waitf.push_back(double(x.wait) / double(x.busy));
  }
  auto med = [](std::vector<double> v) { std::sort(v.begin(), v.end()); return v.empty() ? 0.0 : v[v.size() / 2]; };
  printf("%-52s span %5.2f us, after the last batch starts %4.2f us, waiting %3.0f%% (per-SM medians, %d kHz)\n", name,
         med(span), med(tail), 100 * med(waitf), khz);
}

}  // namespace

int main() {
  probe::Bench bench(1);
  const int sms = bench.sms;
  for (const int N : {16384, 32768}) {
    const size_t cbytes = size_t(N) / 16 * kGroupCodes, sbytes = size_t(N) / 16 * kGroupScales;
    const size_t bytes = cbytes + sbytes;
    const int tiles = N / (16 * kWN * kRM);
    printf("-- %dx%d tiled, %zu bytes (codes + scales), %d tiles of 64 rows\n", N, kK, bytes, tiles);
    bench.floor(bytes, "(a) floor: 512 thr x 4/SM, 4 x 16 B per thread");
    bench.time("(b) the floor's kernel at 256 thr x 2/SM", [&](const uint8_t* p) {
      probe::plain_read<<<2 * sms, 256>>>(reinterpret_cast<const uint4*>(p), bytes / 16, bench.sink);
    }, bytes);
    const int grid = tiles < 2 * sms ? tiles : 2 * sms;
    auto go = [&](auto kern, const char* name) {
      bench.time(name, [&](const uint8_t* p) { kern<<<grid, 32 * kWN * kWK>>>(p, p + cbytes, tiles, bench.sink, nullptr); }, bytes);
    };
    go(decode_pattern<1, 0>, "(c) decode pattern, 1 batch ahead, no work");
    go(decode_pattern<2, 0>, "(c) decode pattern, 2 batches ahead, no work");
    go(decode_pattern<3, 0>, "(c) decode pattern, 3 batches ahead, no work");
    go(decode_pattern<1, 64>, "(d) 1 ahead, 64 dependent IMADs per batch");
    go(decode_pattern<1, 256>, "(d) 1 ahead, 256 dependent IMADs per batch");
    go(decode_pattern<3, 256>, "(d) 3 ahead, 256 dependent IMADs per batch");
    timeline(bench, decode_pattern<1, 0, true>, grid, cbytes, tiles, "(e) timeline of (c) 1 ahead");
    timeline(bench, decode_pattern<3, 0, true>, grid, cbytes, tiles, "(e) timeline of (c) 3 ahead");
    timeline(bench, decode_pattern<1, 256, true>, grid, cbytes, tiles, "(e) timeline of (d) 1 ahead, 256");
    timeline(bench, decode_pattern<3, 256, true>, grid, cbytes, tiles, "(e) timeline of (d) 3 ahead, 256");
  }
  return 0;
}
