// The portable exact W4A8 GEMM: mma.sync m16n8k16 with FP16 operands and FP32 accumulation,
// weights dequantized in registers, read straight from the canonical NVFP4 layout.
//
// Numerics (why this is exact): e2m1 * e4m3(sb) has at most 6 significant bits and lies in
// [2^-10, 2688], and FP8 E4M3 activations are a subset of FP16, so both operands are exact in
// FP16 and every product is exact in FP32; only the FP32 accumulation rounds. The weights are
// formed as (e2m1 * 2^-6) * sb (see e2m1_lo_nibbles_to_e4m3): their smallest value 2^-16 is
// an FP16 subnormal, still exact (the lowest bit of a 6-bit significand at 2^-16 is 2^-21,
// above FP16's quantum 2^-24); the 2^6 goes into the FP32 epilogue.
//
// Operand roles ("swap AB"): weights are the MMA's A operand (16 output channels per warp),
// tokens are its N dimension (8 per n-tile), so M = 1 wastes 7/8 of an MMA that costs nothing
// next to reading the weights.
//
// Fragment mapping: the MMA's 16 k slots need not be 16 consecutive k, only the same k for
// the A rows and the B columns, because the block scale is applied to each weight before
// the MMA. Thread (g = lane/4, t = lane%4) therefore takes a contiguous piece of 2*VEC k of
// rows g and g+8 (one 16- or 8-byte load each, canonical layout), and every 32-bit word of
// it (8 k) feeds two MMAs: the even-k nibbles {0,2,4,6} and the odd ones {1,3,5,7}. The
// activations of token g are loaded as the same contiguous k piece and split the same way
// with two byte permutes. Tiled weights (w4a8/formats.hpp) hold each word's bits permuted so
// that the two MMAs of a word take k 0..3 and k 4..7 instead: the activation words then feed
// the MMAs as loaded (no permutes), and the extraction costs one integer op fewer (H100:
// 5-9% faster decode and 50-token GEMMs than canonical words). Weight rows are read once per
// token tile, 16 bytes per thread, fully coalesced (a warp reads 16 rows x 64 bytes).
//
// Work split: a CTA has WN x WK warps. The WN warps own different row tiles (RM tiles of 16
// rows each) and share the token tile; the WK warps split K (interleaved chunks, so together
// they read contiguous bytes) and are reduced through shared memory in a fixed order: results
// are bitwise reproducible, no atomics, no workspace.
//
// What bounds it (bench/probes/alu_throughput.cu, ncu): the E2M1 -> E4M3 bit operations, the
// E4M3 -> FP16 conversions (F2FP) and the activation permutes all issue on one integer pipe at
// half the FMA rate; the HMUL2s and MMAs do not. Hence the choices that cut integer work per
// weight: activations converted once per word and n-tile and shared by RM row tiles, the upper
// half converted in place (R.H1), and activation loads issued a chunk ahead so that their L2
// latency hides behind the previous chunk's work.
#include <cuda_runtime.h>

#include <atomic>

#include "kernels/common.cuh"
#include "kernels/launch.hpp"
#include "kernels/mbarrier.cuh"  // (cluster helpers: called only where __CUDA_ARCH__ >= 900)
#include "w4a8/formats.hpp"

namespace w4a8 {
namespace kernels {
namespace {

template <int VEC>
struct Piece;  // VEC bytes of packed weights = 2*VEC k values of one row
template <>
struct Piece<16> {
  uint4 v;
  __device__ __forceinline__ void load(const uint8_t* p) { v = ld_stream_16(p); }
  __device__ __forceinline__ void zero() { v = make_uint4(0u, 0u, 0u, 0u); }
  __device__ __forceinline__ uint32_t word(int i) const {
    return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
  }
};
template <>
struct Piece<8> {
  uint2 v;
  __device__ __forceinline__ void load(const uint8_t* p) { v = ld_stream_8(p); }
  __device__ __forceinline__ void zero() { v = make_uint2(0u, 0u); }
  __device__ __forceinline__ uint32_t word(int i) const { return i == 0 ? v.x : v.y; }
};

// Where one warp's rows and tokens are, for one output tile. Indices are 32-bit (the API
// caps M, N, K at 2^31); row base pointers, chunk offsets and output offsets are 64-bit.
// Addressing of both weight layouts: the piece of thread t of row r in chunk ch starts at
//   w_row(r) + ch * w_chunk + w_t(t)   (codes),   s_row(r) + ch * s_chunk + s_t(t)  (scales)
// canonical: w_row = r * K/2, w_chunk = kChunkK / 2, w_t = t * VEC (s_row = r * K/g,
// s_chunk = kChunkK / g, s_t = t * kGroups); tiled (VEC 16: a chunk of 128 k is two 16 x 64
// tiles of 512 bytes, w4a8/formats.hpp): w_row = (r/16) * tiles * 512 + (r%16) * 32, w_chunk =
// 1 KB, w_t = (t/2) * 512 + (t%2) * 16; the scales alike with 64/g bytes per tile row.
// RM row tiles of 16 per warp: tile rr holds rows r0 + 16 rr (+ 8). Rows r0 + 8 and r0 + 16 rr
// lie a fixed distance from row r0 in both layouts (r0 % 16 < 8), so the context keeps one
// code and one scale pointer (row r0, or row 0 past N) and the loads add warp-uniform row
// offsets: four pointers fewer per row tile, and the context of the next tile is held too
// (register pressure decides how many warps an SM holds). With one 8-token tile (MT = 1, the
// decode configurations) the two pointers are cursors: they point at the thread's piece of
// the next batch to load and move on by one batch per load (a batch is U chunks WK apart, so
// the next one is a fixed number of bytes further), and a load adds immediate offsets instead
// of working its address out from the batch index: that took ~75 of the ~510 instructions of
// mt1_wn2_wk4_r2's batch loop (SASS, session 17). H100, same process, against the row
// addressing (bench/results/ab-mma-cursor-h100-2026-11-26.txt): M = 1..8 faster on 16 of 18
// rows, by up to 6.4% (2048x16384 M = 1); with cursors everywhere the MT = 2 and 4
// configurations with two row tiles per warp came out 2-6% slower (ptxas issued their MMAs
// in bursts behind the conversions), so they keep the row addressing.
template <int RM>
struct TileCtx {
  const uint8_t *w, *s;  // codes and scales of row r0: the row (MT > 1), or the cursors
  int r0, m0;            // first output row of this thread, first token of the tile
  bool ok0[RM], ok1[RM];  // rows g and g+8 of each row tile exist
  bool full;              // warp-uniform: every row of the warp's RM row tiles exists
};

// Weight and scale registers of U chunks of one warp (the HBM stream), RM row tiles.
template <int VEC, int U, int KG, int RM>
struct Batch {
  Piece<VEC> wa[RM][U], wb[RM][U];
  uint32_t sa[RM][U], sc[RM][U];  // the piece's KG scale bytes of rows g and g+8, packed
};

// The gated epilogue (p.glu, w4a8_linear_bf16_glu) of one warp's tile: rows r and r + 8 of each
// row tile are one channel's gate and up (the weight's rows interleaved in blocks of 8), so
// each pair gives one output column. Out of line, with the accumulators by value: inlined, its
// tanhf / expf copies for every output (1.8x the kernel's SASS) made the main loop 5-9% slower
// at 32-token tiles even where the branch is never taken (H100); here the kernel keeps one
// call site. ok: bit rr set where row tile rr exists (N % 16 == 0: both of its rows do).
template <int RM, int MT>
struct AccTile {
  float v[RM][MT][4];
};
// The epilogue's operands (finish_tile loads them before the reduction): row scales of tokens
// m0 + 8i + 2t + j, bias of rows r0 + 16 rr (b0) and r0 + 16 rr + 8 (b1).
template <int RM, int MT>
struct EpiOps {
  float rs[MT][2], b0[RM], b1[RM];
};
template <int RM, int MT>
__device__ __noinline__ void mma_glu_epilogue(AccTile<RM, MT> a, EpiOps<RM, MT> e, uint16_t* y, int glu, int M,
                                              int N, int r0, int m0, int t, float base, unsigned ok) {
#pragma unroll
  for (int rr = 0; rr < RM; ++rr) {
    const int r = r0 + 16 * rr;
    if (!((ok >> rr) & 1u)) continue;
    const float bias_g = e.b0[rr], bias_u = e.b1[rr];
#pragma unroll
    for (int i = 0; i < MT; ++i)
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int m = m0 + 8 * i + 2 * t + j;
        if (m >= M) continue;
        const float scale = base * e.rs[i][j];
        y[size_t(m) * unsigned(N / 2) + glu_column(r)] =
            glu_bf16(glu, a.v[rr][i][j] * scale + bias_g, a.v[rr][i][2 + j] * scale + bias_u);
      }
  }
}

// Template parameters:
//   GROUP  block-scale group size (16 or 32)
//   MT     n-tiles of 8 tokens per warp
//   WN     warps along N (output channels) per CTA
//   WK     warps along K per CTA
//   VEC    packed-weight bytes per row per thread per chunk (16 needs K % 32 == 0; 8 any K)
//   RM     row tiles of 16 per warp (1 or 2): with 2, each activation fragment a warp converts
//          serves two weight tiles, halving the activation work per weight (it dominates the
//          integer pipe from 16 tokens up); the batch then holds one chunk (same bytes in
//          flight).
//
// Residency: two 8-warp CTAs per SM (128 registers) at MT = 1 and at MT = 2 with RM = 1, one
// otherwise. (MT = 2 with RM = 2 fits 128 registers too, since the tile context keeps two
// pointers; two CTAs per SM then ran 16384x2048 M=16 alone in 10.52 us with 2 x 4 warps, against
// 11.50 us for one CTA of 4 x 2 on the H100), but made the pi0.5 trace 8% slower (12.72 ->
// 13.75 ms with overlap, unchanged without): a kernel launched as a programmatic dependent
// stacks two CTAs on the SMs its predecessor frees first. Three CTAs at MT = 1 need 80
// registers: they spill and ran 4-10% slower.) 16-warp CTAs (WN * WK = 16) get 128 registers
// and one CTA per SM: the same 16 warps per SM as two 8-warp CTAs, without the stacking. At
// MT = 2, RM = 2 they fit (16 bytes spilled in the tiled epilogue, none in the loop) and run
// the large layers at 9..16 tokens 3-12% faster than the 8-warp CTA at 152 registers (H100,
// bench/results/sweep-mt2-16warp-h100-2026-11-26.csv, heuristics.cpp rule (8)); at MT = 1
// they were no faster than two 8-warp CTAs (sweep-mt1-16warp-h100-2026-11-26.csv).
//
// Persistent: the grid is at most one wave of CTAs; each CTA walks the output tiles
// blockIdx.x, +gridDim.x, ... Every warp runs the same number of batches per tile (chunks
// past K are predicated off), and loads the next batch -- of this tile or of the next
// one -- before it computes the current one, so the weight stream does not stop at tile
// boundaries, reductions or epilogues.
template <int GROUP, int MT, int WN, int WK, int VEC, int RM, bool TILED, int CS>
__global__ void __launch_bounds__(32 * WN * WK, (MT == 1 || (MT == 2 && RM == 1)) && WN * WK <= 8 ? 2 : 1)
    mma_exact_kernel(const GemmParams p, const int64_t token_tiles) {
  constexpr int kPieceK = 2 * VEC;      // k per thread per row per chunk
  constexpr int kChunkK = 4 * kPieceK;  // k per warp chunk (the 4 threads of a row group)
  constexpr int kWords = VEC / 4;       // 32-bit words of packed weights per piece
  constexpr int kGroups = kPieceK / GROUP;  // block scales per row per piece
  static_assert(kGroups >= 1, "a piece must cover whole scale groups");
  constexpr int kWordsPerGroup = kWords / kGroups;
  constexpr int U = RM == 1 ? 2 : 1;  // chunks per batch (two batches in flight: current + prefetched)
  static_assert(RM == 1 || (RM == 2 && MT <= 4), "RM = 2 only up to 32 tokens (registers, reduction smem)");

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int wn = warp % WN, wk = warp / WN;
  // Split-K over a cluster (CS > 1, the "_c<CS>" configurations; sm_90+): the cluster's CS
  // CTAs share one output tile and split its K, so its WK * CS K-warps interleave chunks as the
  // WK warps of one CTA do (K-warp wkg = wk + WK * rank; a 1-D cluster's rank is blockIdx.x %
  // CS), and the clusters walk the tiles. Rank r > 0 hands its CTA's sum to rank 0 through
  // distributed shared memory (finish_tile), which adds them in rank order and runs the
  // epilogue. Why: a layer of few rows and long K (2048 x 16384) has only 64 row groups of two
  // row tiles, too few for the SMs; one row tile per warp doubles the activation work per
  // weight (100 instead of 132 E4M3 -> FP16 conversions per 2 KB batch at 16 tokens, SASS).
  constexpr int WKT = WK * CS;
  const int cs = CS > 1 ? int(blockIdx.x % CS) : 0;
  const int wkg = wk + WK * cs;
  const int M = static_cast<int>(p.M), N = static_cast<int>(p.N), K = static_cast<int>(p.K);
  const int nchunks = (K + kChunkK - 1) / kChunkK;
  const int batches = (nchunks + WKT * U - 1) / (WKT * U);
  const int ntok = static_cast<int>(token_tiles);
  const int tiles = ntok * ((N + 16 * WN * RM - 1) / (16 * WN * RM));

  // Layout (see TileCtx): tiled only with VEC 16 (the host never passes it otherwise). A
  // template parameter, since the tiled words also dequantize differently (see dequant).
  constexpr bool tiled = VEC == 16 && TILED;
  constexpr int kTileScaleRow = 64 / GROUP;  // scale bytes per tile row
  constexpr unsigned kTileScales = 16u * kTileScaleRow;  // scale bytes per tile
  const size_t ktiles = (unsigned(K) + 63u) / 64u;
  constexpr bool kCursor = MT == 1;  // see TileCtx
  // Interior tiles (every row of the warp's row tiles exists, every chunk of every batch lies
  // inside K) load without predicates: no zeroing of the batch registers, no per-load row and
  // chunk checks (SASS, mt1_wn2_wk4_r2: the next batch's loads 43 -> 21 instructions). H100,
  // same process (bench/results/ab-fast-loads-h100-2026-11-27.txt): with two row tiles per
  // warp 16384x2048 M = 16 -3.2%, 32768x2048 M = 1 / 16 -2.9 / -6.1%, the expert's 50-token
  // layers -0.9 .. -3.7%, pi0.5 traces -1.3 .. -5%; with one row tile (two chunks per batch)
  // the small layers at 1..16 tokens came out 5-8% slower, so those keep the checked loads.
  constexpr bool kFastLoads = RM == 2;
  constexpr unsigned w_chunk = tiled ? 1024u : unsigned(kChunkK / 2);
  constexpr unsigned s_chunk = tiled ? 2u * kTileScales : unsigned(kChunkK / GROUP);
  const unsigned w_t = tiled ? (t >> 1) * 512u + (t & 1) * 16u : unsigned(t * VEC);
  const unsigned s_t = tiled ? (t >> 1) * kTileScales + (t & 1) * kGroups : unsigned(t * kGroups);
  auto w_row = [&](int r) {
    return tiled ? size_t(r >> 4) * ktiles * 512u + unsigned(r & 15) * 32u : size_t(r) * unsigned(K / 2);
  };
  auto s_row = [&](int r) {
    return tiled ? size_t(r >> 4) * ktiles * kTileScales + unsigned(r & 15) * kTileScaleRow
                 : size_t(r) * unsigned(K / GROUP);
  };
  // Distances from row r (r % 16 < 8) to rows r + 8 and r + 16, codes and scales.
  const size_t w_8rows = tiled ? 8u * 32u : size_t(8u) * unsigned(K / 2);
  const size_t s_8rows = tiled ? 8u * kTileScaleRow : size_t(8u) * unsigned(K / GROUP);
  const size_t w_16rows = tiled ? ktiles * 512u : size_t(16u) * unsigned(K / 2);
  const size_t s_16rows = tiled ? ktiles * kTileScales : size_t(16u) * unsigned(K / GROUP);
  auto make_ctx = [&](int tile) {
    TileCtx<RM> c;
    const int token_tile = tile % ntok, row_group = tile / ntok;
    c.r0 = (row_group * WN + wn) * 16 * RM + g;
    c.m0 = token_tile * (8 * MT);
#pragma unroll
    for (int rr = 0; rr < RM; ++rr) {
      const int r = c.r0 + 16 * rr;
      c.ok0[rr] = r < N;
      c.ok1[rr] = r + 8 < N;
    }
    c.full = kFastLoads && (row_group * WN + wn + 1) * 16 * RM <= N;
    // (Rows past N are never read: their loads are predicated off by ok0 / ok1.)
    c.w = p.w + w_row(c.ok0[0] ? c.r0 : 0);
    c.s = p.sb + s_row(c.ok0[0] ? c.r0 : 0);
    if constexpr (kCursor) {  // at batch 0: chunk chunk_of(0, 0) = wk
      c.w += unsigned(wkg) * w_chunk + w_t;
      c.s += unsigned(wkg) * s_chunk + s_t;
    }
    return c;
  };
  // Chunk u of batch b of this warp: wk + WK * (U * b + u) (warps of a CTA interleave, so
  // together they read contiguous bytes of each row).
  auto chunk_of = [&](int b, int u) { return wkg + WKT * (U * b + u); };
  // Scales of one row for one piece: kGroups consecutive bytes, one load (the API asks for
  // 2-byte aligned block scales, and a piece of 2 groups starts at an even group).
  auto load_scales = [&](const uint8_t* at) -> uint32_t {
    if constexpr (kGroups == 2) return __ldg(reinterpret_cast<const uint16_t*>(at));
    else return __ldg(at);
  };
  // Every chunk of every batch lies inside K (no chunk past nchunks, no partial chunk).
  const bool k_full = K % kChunkK == 0 && nchunks % (WKT * U) == 0;
  // Batch b of the tile c (b = 0, 1, 2, ... in turn with cursors, which it moves one batch
  // on; then chunk u of the batch is u * WK chunks past them).
  // (The interior branch repeats the checked loop's offsets and cursor bump on purpose: one
  // body instantiated for both, with the predicates folded at compile time, made ptxas
  // schedule 136 of the 154 kernels differently and 32768x2048 M = 1 11% slower, M = 50 3.9%
  // (H100, same process, bench/results/ab-load-fold-h100-2026-11-27.txt).)
  auto load = [&](Batch<VEC, U, kGroups, RM>& B, TileCtx<RM>& c, int b) {
    if (kFastLoads && k_full && c.full) {  // interior: every load exists, nothing to zero
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int ch = chunk_of(b, u);
        const size_t wo = kCursor ? u * WKT * w_chunk : size_t(ch) * w_chunk + w_t;
        const size_t so = kCursor ? u * WKT * s_chunk : size_t(ch) * s_chunk + s_t;
#pragma unroll
        for (int rr = 0; rr < RM; ++rr) {
          const size_t w0 = wo + rr * w_16rows, s0 = so + rr * s_16rows;
          B.wa[rr][u].load(c.w + w0);
          B.wb[rr][u].load(c.w + w0 + w_8rows);
          B.sa[rr][u] = load_scales(c.s + s0);
          B.sc[rr][u] = load_scales(c.s + s0 + s_8rows);
        }
      }
      if constexpr (kCursor) {
        c.w += U * WKT * w_chunk;
        c.s += U * WKT * s_chunk;
      }
      return;
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int ch = chunk_of(b, u);
      const unsigned k = unsigned(ch) * kChunkK + t * kPieceK;
      const bool valid = ch < nchunks && k < unsigned(K);
      const size_t wo = kCursor ? u * WKT * w_chunk : size_t(ch) * w_chunk + w_t;
      const size_t so = kCursor ? u * WKT * s_chunk : size_t(ch) * s_chunk + s_t;
#pragma unroll
      for (int rr = 0; rr < RM; ++rr) {
        const size_t w0 = wo + rr * w_16rows, s0 = so + rr * s_16rows;
        if (valid && c.ok0[rr]) B.wa[rr][u].load(c.w + w0); else B.wa[rr][u].zero();
        if (valid && c.ok1[rr]) B.wb[rr][u].load(c.w + w0 + w_8rows); else B.wb[rr][u].zero();
        B.sa[rr][u] = valid && c.ok0[rr] ? load_scales(c.s + s0) : 0u;
        B.sc[rr][u] = valid && c.ok1[rr] ? load_scales(c.s + s0 + s_8rows) : 0u;
      }
    }
    if constexpr (kCursor) {
      c.w += U * WKT * w_chunk;
      c.s += U * WKT * s_chunk;
    }
  };

  // Activations of chunk ch for the token tile at m0: token g of every n-tile, the k piece
  // of thread t (kWords pairs of words, 8 k each); zeros past M, K or the last chunk.
  // Software-pipelined one chunk ahead (kPipeX): each chunk's activation loads are issued
  // before the previous chunk's dequantization and MMAs instead of in front of its own, so
  // the L2 round trip no longer stalls every chunk. (Not at MT = 8: 64 more registers.)
  constexpr bool kPipeX = MT <= 4;
  using XRegs = uint32_t[MT][2 * kWords];
  auto load_x_chunk = [&](int m0, int ch, XRegs& xw) {
    const unsigned k = unsigned(ch) * kChunkK + t * kPieceK;
#pragma unroll
    for (int i = 0; i < MT; ++i) {
      const int m = m0 + 8 * i + g;
      const bool xv = ch < nchunks && m < M && k < unsigned(K);
      const uint8_t* xp = p.x + (xv ? size_t(m) * unsigned(K) + k : 0);
#pragma unroll
      for (int v = 0; v < kWords / 2; ++v) {
        const uint4 q = xv ? __ldg(reinterpret_cast<const uint4*>(xp) + v) : make_uint4(0, 0, 0, 0);
        xw[i][4 * v + 0] = q.x;
        xw[i][4 * v + 1] = q.y;
        xw[i][4 * v + 2] = q.z;
        xw[i][4 * v + 3] = q.w;
      }
    }
  };

  float acc[RM][MT][4];
  // MT = 1: each word's second MMA sums into its own set (acc2), added to acc before the
  // reduction, so the chain of dependent MMAs per tile is half as long (kTwoAcc). H100, same
  // process (bench/results/ab-two-acc-mt1-h100-2026-11-26.txt): M = 1..8 faster on 16 of 18
  // rows, by up to 3.7% (16384x2048, 32768x2048 -2..-4%), traces within noise; session 7 had
  // it in every configuration, where the 16- and 50-token tiles came out up to 4% slower.
  constexpr bool kTwoAcc = MT == 1;
  float acc2[RM][MT][4];
  // xn (kPipeX): on entry the activations of this batch's first chunk; on return those of
  // the warp's next chunk with work: the next one of this tile, else the first of the next
  // tile (nc, when has_next).
  auto compute = [&](const Batch<VEC, U, kGroups, RM>& B, const TileCtx<RM>& c, int b, XRegs& xn,
                     const TileCtx<RM>& nc, bool has_next) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int ch = chunk_of(b, u);
      if (ch >= nchunks) break;  // warp-uniform
      XRegs xc;
      if constexpr (kPipeX) {
#pragma unroll
        for (int i = 0; i < MT; ++i)
#pragma unroll
          for (int j = 0; j < 2 * kWords; ++j) xc[i][j] = xn[i][j];
        const int after = u + 1 < U ? chunk_of(b, u + 1) : chunk_of(b + 1, 0);  // chunks only grow
        if (after < nchunks) load_x_chunk(c.m0, after, xn);
        else if (has_next) load_x_chunk(nc.m0, chunk_of(0, 0), xn);
      }
      // The piece's block scales of rows g and g+8 as FP16 pairs (group j in half j), one
      // conversion per row; each multiply below broadcasts its group's half (hmul2_bcast).
      uint32_t f0[RM], f1[RM];
#pragma unroll
      for (int rr = 0; rr < RM; ++rr) {
        f0[rr] = e4m3x2_to_f16x2(B.sa[rr][u]);
        f1[rr] = e4m3x2_to_f16x2(B.sc[rr][u]);
      }
      // A fragments of word w (8 k of rows g and g+8): [0] even-k nibbles, [1] odd-k.
      // A regs: {row g k-slots 2t.., row g+8 2t.., row g 2t+8.., row g+8 2t+8..}
      auto dequant = [&](int rr, int w, uint32_t (&a)[2][4]) {
        const uint32_t q0 = B.wa[rr][u].word(w), q1 = B.wb[rr][u].word(w);
        const uint32_t s0 = f0[rr], s1 = f1[rr];
        const bool h = w / kWordsPerGroup;  // the group's half of s0, s1 (resolved when unrolled)
        auto scale = [&](uint32_t v, uint32_t sp) { return h ? hmul2_bcast<1>(v, sp) : hmul2_bcast<0>(v, sp); };
        // Canonical words: E4M3 bytes of the even k (lo) and of the odd k (hi); tiled words
        // (w4a8/formats.hpp): of k 0..3 (lo) and of k 4..7 (hi), one integer op fewer.
        uint32_t lo0, hi0, lo1, hi1;
        if constexpr (tiled) {
          lo0 = tiled_word_e4m3_lo(q0), hi0 = tiled_word_e4m3_hi(q0);
          lo1 = tiled_word_e4m3_lo(q1), hi1 = tiled_word_e4m3_hi(q1);
        } else {
          lo0 = e2m1_lo_nibbles_to_e4m3(q0), hi0 = e2m1_hi_nibbles_to_e4m3(q0);
          lo1 = e2m1_lo_nibbles_to_e4m3(q1), hi1 = e2m1_hi_nibbles_to_e4m3(q1);
        }
        a[0][0] = scale(e4m3x2_to_f16x2(lo0), s0);
        a[0][1] = scale(e4m3x2_to_f16x2(lo1), s1);
        a[0][2] = scale(e4m3x2_hi_to_f16x2(lo0), s0);
        a[0][3] = scale(e4m3x2_hi_to_f16x2(lo1), s1);
        a[1][0] = scale(e4m3x2_to_f16x2(hi0), s0);
        a[1][1] = scale(e4m3x2_to_f16x2(hi1), s1);
        a[1][2] = scale(e4m3x2_hi_to_f16x2(hi0), s0);
        a[1][3] = scale(e4m3x2_hi_to_f16x2(hi1), s1);
      };
      // Two MMAs of word w for n-tile i: the halves a[0] and a[1] of the weights' k; their
      // activations: the even and the odd k (canonical), or the activation words as loaded
      // (tiled: k 0..3 and 4..7, no permutes).
      auto mma_word = [&](float (&acc_i)[4], float (&acc_j)[4], int w, const uint32_t (&a)[2][4],
                          const uint32_t (&xw)[2 * kWords]) {
        const uint32_t ev = tiled ? xw[2 * w] : prmt(xw[2 * w], xw[2 * w + 1], 0x6420);     // x0 x2 x4 x6
        const uint32_t od = tiled ? xw[2 * w + 1] : prmt(xw[2 * w], xw[2 * w + 1], 0x7531);  // x1 x3 x5 x7
        mma_f16_16816(acc_i, a[0][0], a[0][1], a[0][2], a[0][3], e4m3x2_to_f16x2(ev),
                      e4m3x2_hi_to_f16x2(ev));
        mma_f16_16816(acc_j, a[1][0], a[1][1], a[1][2], a[1][3], e4m3x2_to_f16x2(od),
                      e4m3x2_hi_to_f16x2(od));
      };
      if constexpr (!kPipeX) load_x_chunk(c.m0, ch, xc);
      if constexpr (MT <= 2) {
        // Few tokens: dequantize word by word and use it at once (fewer live registers).
#pragma unroll
        for (int w = 0; w < kWords; ++w)
#pragma unroll
          for (int rr = 0; rr < RM; ++rr) {
            uint32_t a[2][4];
            dequant(rr, w, a);
#pragma unroll
            for (int i = 0; i < MT; ++i) mma_word(acc[rr][i], kTwoAcc ? acc2[rr][i] : acc[rr][i], w, a, xc[i]);
          }
      } else {
        // Many tokens: dequantize the whole piece once, reuse it for every n-tile.
#pragma unroll
        for (int rr = 0; rr < RM; ++rr) {
          uint32_t a[kWords][2][4];
#pragma unroll
          for (int w = 0; w < kWords; ++w) dequant(rr, w, a[w]);
#pragma unroll
          for (int i = 0; i < MT; ++i)
#pragma unroll
            for (int w = 0; w < kWords; ++w) mma_word(acc[rr][i], acc[rr][i], w, a[w], xc[i]);
        }
      }
    }
  };

  // Fixed-order reduction over the K-warps ([wk-1][wn][reg][lane] keeps lanes on banks),
  // then the FP32 epilogue: 2^6 (weight bias, see the top), alpha, s2, row scale, bias; one
  // BF16 rounding. C fragment: c0,c1 = (row g, tokens 2t, 2t+1); c2,c3 = (row g+8, same).
  __shared__ float red[WK > 1 ? WK - 1 : 1][WN][RM * MT * 4][32];
  // CS > 1: rank 0's copy receives the other ranks' sums, [tile parity][rank - 1][...], so that
  // the pushes of the next tile need no second cluster barrier (rank 0 has read this tile's
  // sums before it arrives at the next tile's barrier, which the pushes after it wait for; its
  // arrive there is relaxed, but the epilogue has consumed every value it loaded from xred, so
  // those loads have completed before the arrive issues: no write-after-read through it).
  constexpr int kX = CS > 1;
  __shared__ float xred[kX ? 2 : 1][kX ? CS - 1 : 1][kX ? WN : 1][kX ? RM * MT * 4 : 1][32];
  int xpar = 0;
  // Adds the other K-warps' (red) or cluster ranks' (xred) sums to this warp's, in their order:
  // sums[w][wn][register][lane], w = 0 .. extent - 1.
  auto add_sums = [&](const auto& sums) {
    constexpr int kW = int(sizeof(sums) / sizeof(sums[0]));
#pragma unroll
    for (int w = 0; w < kW; ++w)
#pragma unroll
      for (int rr = 0; rr < RM; ++rr)
#pragma unroll
        for (int i = 0; i < MT; ++i)
#pragma unroll
          for (int j = 0; j < 4; ++j) acc[rr][i][j] += sums[w][wn][(rr * MT + i) * 4 + j][lane];
  };
  // The epilogue factor alpha * s2 * 2^6 (kLateS2): multiplied out in finish_tile, not in
  // front of the batch loop, where its wait for the tensor scale's load held every warp before
  // it issued its second batch of weights (ncu, H100, session 18: 15-19% of the decode kernels'
  // stall samples on that one FMUL). The empty asm keeps the compiler from hoisting the
  // multiply back out of the loop. H100, same process (bench/results/ab-late-s2-h100-2026-11-26.txt):
  // 2048x2048 -5.0 / -2.9% (M = 1 / 16), 2048x16384 -3.3 / -2.0%, the rest within +-1%; not in
  // the 16-warp CTAs with two row tiles per warp, at their 128-register cap (16384x2048 M = 16
  // +4.5% with it). Only in the configuration families that A/B measured (8-token tiles, and
  // 16-token tiles of one row tile per warp); the others keep the early multiply until measured.
  constexpr bool kLateS2 = (MT == 1 && !(WN * WK == 16 && RM == 2)) || (MT == 2 && RM == 1);
  float s2v = 1.0f;     // kLateS2: the tensor scale, loaded after pdl_wait below
  float base_early = 0.0f;  // otherwise: the factor itself, computed there
  // The epilogue's operands (row scales of the tile's tokens, bias of its rows), loaded by the
  // warps that run the epilogue (wk == 0, rank 0), all together so that their round trips overlap.
  auto load_epi = [&](const TileCtx<RM>& c, EpiOps<RM, MT>& e) {
    if (wk == 0 && cs == 0) {
#pragma unroll
      for (int i = 0; i < MT; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          const int m = c.m0 + 8 * i + 2 * t + j;
          e.rs[i][j] = m < M ? __ldg(p.row_scale + m) : 0.0f;
        }
#pragma unroll
      for (int rr = 0; rr < RM; ++rr) {
        const int r = c.r0 + 16 * rr;
        e.b0[rr] = p.bias && c.ok0[rr] ? bf16_bits_to_float(__ldg(p.bias + r)) : 0.0f;
        e.b1[rr] = p.bias && c.ok1[rr] ? bf16_bits_to_float(__ldg(p.bias + r + 8)) : 0.0f;
      }
    }
  };
  // kEarlyEpi: loaded when the tile starts (after the programmatic wait: the row scales come from
  // the kernel before us), so that their L2 round trip hides behind the main loop instead of
  // following it (session 30's per-warp timeline: the reduction and epilogue took 0.7 us of
  // every tile, 50 x 4096 x 1024 and 1 x 16384 x 2048 alike). Otherwise at finish_tile's start.
  // Only in the 32-token and the one-row-tile configurations: in every configuration (session 30,
  // bench/experiments/s30-mma-early-epilogue.patch) the two-row-tile ones at 8-16 tokens came out
  // 5-13% slower. H100, same process, this rule against none (bench/results/ab-early-epi-h100-2026-11-27-s31.txt):
  // the rows whose kernel it changes 0 .. -6.5% (4096x1024 M = 50 -4.6%, 2048x1024 M = 1 -6.5%),
  // those it leaves alone -1.7 .. +1.7% (noise), the six pi0.5 traces -0.6 .. -2.5%.
  constexpr bool kEarlyEpi = MT >= 4 || RM == 1;
  auto finish_tile = [&](const TileCtx<RM>& c, const EpiOps<RM, MT>& e_early) {
    float base = base_early;
    if constexpr (kLateS2) {
      float s2c = s2v;
      asm volatile("" : "+f"(s2c));
      base = epilogue_base_of(p.alpha, s2c);
    }
    if constexpr (kTwoAcc) {
#pragma unroll
      for (int rr = 0; rr < RM; ++rr)
#pragma unroll
        for (int i = 0; i < MT; ++i)
#pragma unroll
          for (int j = 0; j < 4; ++j) acc[rr][i][j] += acc2[rr][i][j];
    }
    // Without kEarlyEpi: the epilogue's operands first, all loads issued together, so that their
    // L2 round trip overlaps the reduction. (Loaded in the epilogue itself, ptxas reused one
    // register for every row-scale load, so each waited for the previous one's use: one round
    // trip per token after the main loop, on the critical path of every tile.)
    EpiOps<RM, MT> e = e_early;
    if constexpr (!kEarlyEpi) load_epi(c, e);
    if constexpr (WK > 1) {
      if (wk > 0) {
#pragma unroll
        for (int rr = 0; rr < RM; ++rr)
#pragma unroll
          for (int i = 0; i < MT; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) red[wk - 1][wn][(rr * MT + i) * 4 + j][lane] = acc[rr][i][j];
      }
      __syncthreads();
      if (wk == 0) add_sums(red);
      __syncthreads();  // red[] is free again for the next tile
    }
    if constexpr (CS > 1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
      if (wk == 0 && cs > 0) {  // push this CTA's sums into rank 0's xred (scalar, [reg][lane])
        const uint32_t to = cluster_map(smem_u32(&xred[xpar][cs - 1][wn][0][lane]), 0u);
#pragma unroll
        for (int rr = 0; rr < RM; ++rr)
#pragma unroll
          for (int i = 0; i < MT; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j)
              asm volatile("st.shared::cluster.f32 [%0], %1;" ::"r"(to + uint32_t(((rr * MT + i) * 4 + j) * 32 * 4)),
                           "f"(acc[rr][i][j])
                           : "memory");
      }
      // Release by the ranks that pushed (their stores are visible to rank 0 after its wait);
      // rank 0 only arrives (a release is a GPU-scope membar in SASS, which would also wait
      // for the weights the warp has in flight for its next tile). Per rank rather than per
      // pushing warp: a warp-level choice made ptxas spill in the tile loop (28 bytes).
      if (cs > 0) cluster_arrive();
      else cluster_arrive_relaxed();
      cluster_wait();
      if (wk == 0 && cs == 0) add_sums(xred[xpar]);
      xpar ^= 1;
#else
      (void)xred, (void)xpar;
      __trap();  // never launched below sm_90 (launch_mma refuses it)
#endif
    }
    if (wk == 0 && cs == 0 && p.glu) {  // the gated epilogue, out of line (mma_glu_epilogue)
      AccTile<RM, MT> a;
      unsigned ok = 0;
#pragma unroll
      for (int rr = 0; rr < RM; ++rr) {
        ok |= unsigned(c.ok0[rr]) << rr;
#pragma unroll
        for (int i = 0; i < MT; ++i)
#pragma unroll
          for (int j = 0; j < 4; ++j) a.v[rr][i][j] = acc[rr][i][j];
      }
      mma_glu_epilogue<RM, MT>(a, e, p.y, p.glu, M, N, c.r0, c.m0, t, base, ok);
    } else if (wk == 0 && cs == 0) {
#pragma unroll
      for (int rr = 0; rr < RM; ++rr) {
        const int r = c.r0 + 16 * rr;
        const float bias0 = e.b0[rr], bias1 = e.b1[rr];
#pragma unroll
        for (int i = 0; i < MT; ++i)
#pragma unroll
          for (int j = 0; j < 2; ++j) {
            const int m = c.m0 + 8 * i + 2 * t + j;
            if (m >= M) continue;
            const float scale = base * e.rs[i][j];
            uint16_t* yrow = p.y + size_t(m) * unsigned(N);
            if (c.ok0[rr]) yrow[r] = float_to_bf16_bits(acc[rr][i][j] * scale + bias0);
            if (c.ok1[rr]) yrow[r + 8] = float_to_bf16_bits(acc[rr][i][2 + j] * scale + bias1);
          }
      }
    }
  };

  int tile = blockIdx.x / CS;  // (a cluster's CTAs share their tiles)
  if (tile >= tiles) return;  // whole CTA (whole cluster)
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  // CS > 1: a CTA may write another's shared memory only once that CTA has started (CUDA
  // programming guide, distributed shared memory; compute-sanitizer's racecheck flagged the
  // first tile's pushes without this). Each CTA arrives here and waits after issuing its
  // first weights, so the round trip overlaps them; the per-tile barriers follow in phase.
  if constexpr (CS > 1) cluster_arrive_relaxed();
#endif
  TileCtx<RM> ctx = make_ctx(tile);
  Batch<VEC, U, kGroups, RM> cur;
  load(cur, ctx, 0);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if constexpr (CS > 1) cluster_wait();
#endif
  // Launched as a programmatic dependent (of the activation quantizer of w4a8_linear_bf16,
  // or of any kernel for a weight marked `overlap`), the first batch of weights is in flight
  // before we wait for the preceding kernel (pdl_wait_after_loads: ptxas would otherwise
  // move the wait above the loads). Only weights and scales are read above: nothing that
  // kernel writes.
  pdl_wait_after_loads(p.w, M <= 0);  // (never: the API rejects M < 1)
  // Now a kernel launched as our programmatic dependent may start (its weight loads overlap
  // our work; it waits for our outputs in its own pdl_wait). Only now: everything before the
  // preceding kernel has finished once we get here, so our dependent's early weight reads
  // cannot meet a writer further back in the stream.
  pdl_launch_dependents();
  EpiOps<RM, MT> epi{};
  if constexpr (kEarlyEpi) load_epi(ctx, epi);
  XRegs xn;  // the activations of the next chunk (compute's pipeline)
  if constexpr (kPipeX) load_x_chunk(ctx.m0, chunk_of(0, 0), xn);
  if constexpr (kLateS2) s2v = load_tensor_scale(p.s2);
  else base_early = epilogue_base(p.alpha, p.s2);
  while (true) {
#pragma unroll
    for (int rr = 0; rr < RM; ++rr)
#pragma unroll
      for (int i = 0; i < MT; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[rr][i][j] = acc2[rr][i][j] = 0.0f;
    const int next_tile = tile + int(gridDim.x / CS);
    TileCtx<RM> next_ctx = make_ctx(next_tile < tiles ? next_tile : tile);
    for (int b = 0; b < batches; ++b) {
      // Prefetch the next batch (of this tile, or the first of the next tile) first.
      Batch<VEC, U, kGroups, RM> nxt;
      if (b + 1 < batches) load(nxt, ctx, b + 1);
      else if (next_tile < tiles) load(nxt, next_ctx, 0);
      compute(cur, ctx, b, xn, next_ctx, next_tile < tiles);
      cur = nxt;
    }
    finish_tile(ctx, epi);
    if (next_tile >= tiles) break;
    tile = next_tile;
    ctx = next_ctx;
    if constexpr (kEarlyEpi) load_epi(ctx, epi);
  }
}

// ---- the whitelist ----------------------------------------------------------------------
// Every configuration the dispatcher may pick, with its name. Adding one here is the only
// way to add a kernel variant. (group, MT, WN, WK, VEC, RM); RM = 2 ones are named "..._r2".
#define W4A8_MMA_CONFIGS(X)                                                                 \
  X(16, 1, 1, 8, 16, 1) X(16, 1, 2, 4, 16, 1) X(16, 1, 4, 2, 16, 1) X(16, 1, 8, 1, 16, 1)   \
  X(16, 2, 1, 8, 16, 1) X(16, 2, 2, 4, 16, 1) X(16, 2, 4, 2, 16, 1) X(16, 2, 8, 1, 16, 1)   \
  X(16, 4, 1, 8, 16, 1) X(16, 4, 2, 4, 16, 1) X(16, 4, 4, 2, 16, 1) X(16, 4, 8, 1, 16, 1)   \
  X(16, 8, 1, 8, 16, 1) X(16, 8, 2, 4, 16, 1) X(16, 8, 4, 2, 16, 1) X(16, 8, 8, 1, 16, 1)   \
  X(32, 1, 1, 8, 16, 1) X(32, 1, 2, 4, 16, 1) X(32, 1, 4, 2, 16, 1) X(32, 1, 8, 1, 16, 1)   \
  X(32, 2, 1, 8, 16, 1) X(32, 2, 2, 4, 16, 1) X(32, 2, 4, 2, 16, 1) X(32, 2, 8, 1, 16, 1)   \
  X(32, 4, 1, 8, 16, 1) X(32, 4, 2, 4, 16, 1) X(32, 4, 4, 2, 16, 1) X(32, 4, 8, 1, 16, 1)   \
  X(32, 8, 1, 8, 16, 1) X(32, 8, 2, 4, 16, 1) X(32, 8, 4, 2, 16, 1) X(32, 8, 8, 1, 16, 1)   \
  X(16, 1, 1, 16, 16, 1) X(16, 2, 1, 16, 16, 1) X(16, 1, 2, 8, 16, 1) X(16, 2, 2, 8, 16, 1) \
  X(32, 1, 1, 16, 16, 1) X(32, 2, 1, 16, 16, 1) X(32, 1, 2, 8, 16, 1) X(32, 2, 2, 8, 16, 1) \
  X(16, 1, 2, 4, 8, 1) X(16, 2, 2, 4, 8, 1) X(16, 4, 2, 4, 8, 1) X(16, 8, 2, 4, 8, 1)       \
  X(16, 1, 1, 8, 16, 2) X(16, 1, 2, 4, 16, 2) X(16, 1, 4, 2, 16, 2) X(16, 2, 1, 8, 16, 2)   \
  X(16, 2, 2, 4, 16, 2) X(16, 2, 4, 2, 16, 2) X(16, 4, 1, 8, 16, 2) X(16, 4, 2, 4, 16, 2)   \
  X(16, 4, 4, 2, 16, 2) X(32, 1, 1, 8, 16, 2) X(32, 1, 2, 4, 16, 2) X(32, 1, 4, 2, 16, 2)   \
  X(32, 2, 1, 8, 16, 2) X(32, 2, 2, 4, 16, 2) X(32, 2, 4, 2, 16, 2) X(32, 4, 1, 8, 16, 2)   \
  X(32, 4, 2, 4, 16, 2) X(32, 4, 4, 2, 16, 2)                                               \
  X(16, 2, 4, 4, 16, 2) X(16, 2, 2, 8, 16, 2) X(16, 2, 8, 2, 16, 2) X(32, 2, 4, 4, 16, 2)   \
  X(32, 2, 2, 8, 16, 2) X(32, 2, 8, 2, 16, 2)
// Split-K over clusters of CS CTAs (sm_90+; named "..._c<CS>"), after the rest so that their
// indices stay: (group, MT, WN, WK, VEC, RM, CS). For 1..16 tokens on layers of few rows:
// 2048 x 16384 with two row tiles per warp (16 K-warps per CTA), 2048 x 2048 likewise (4 per
// CTA), 1024 x 4096 on every SM instead of 64 (one row tile, 8 per CTA). The dispatcher picks
// mt2_wn1_wk16_r2_c2 and mt1_wn1_wk8_c2 (heuristics.cpp rule (9)); the others were slower
// where swept (H100, bench/results/sweep-mma-cluster-h100-2026-11-27.csv) and stay selectable
// by name.
#define W4A8_MMA_CLUSTER_CONFIGS(X)                                                                \
  X(16, 1, 1, 16, 16, 2, 2) X(16, 2, 1, 16, 16, 2, 2) X(32, 1, 1, 16, 16, 2, 2) X(32, 2, 1, 16, 16, 2, 2) \
  X(16, 1, 1, 4, 16, 2, 2) X(16, 2, 1, 4, 16, 2, 2) X(16, 1, 1, 8, 16, 1, 2) X(16, 2, 1, 8, 16, 1, 2)

#define W4A8_STR2(x) #x
#define W4A8_STR(x) W4A8_STR2(x)
#define W4A8_RM_SUFFIX1 ""
#define W4A8_RM_SUFFIX2 "_r2"
#define W4A8_MMA_NAME(G, MT, WN, WK, V, RM)                                                           \
  "mma_exact_mt" W4A8_STR(MT) "_wn" W4A8_STR(WN) "_wk" W4A8_STR(WK) "_v" W4A8_STR(V) "_g" W4A8_STR(G) \
      W4A8_RM_SUFFIX##RM

#define W4A8_CS_SUFFIX2 "_c2"
#define W4A8_CS_SUFFIX4 "_c4"
#define W4A8_MMA_ENTRY(G, MT, WN, WK, V, RM) {G, MT, WN, WK, V, W4A8_MMA_NAME(G, MT, WN, WK, V, RM), RM, 1},
#define W4A8_MMA_CLUSTER_ENTRY(G, MT, WN, WK, V, RM, CS) \
  {G, MT, WN, WK, V, W4A8_MMA_NAME(G, MT, WN, WK, V, RM) W4A8_CS_SUFFIX##CS, RM, CS},
const MmaConfig kConfigs[] = {W4A8_MMA_CONFIGS(W4A8_MMA_ENTRY) W4A8_MMA_CLUSTER_CONFIGS(W4A8_MMA_CLUSTER_ENTRY)};

using KernelFn = void (*)(const GemmParams, const int64_t);
// [config][tiled]: each configuration for both weight layouts.
#define W4A8_MMA_CLUSTER_FN(G, MT, WN, WK, V, RM, CS) \
  {&mma_exact_kernel<G, MT, WN, WK, V, RM, false, CS>, &mma_exact_kernel<G, MT, WN, WK, V, RM, true, CS>},
#define W4A8_MMA_FN(G, MT, WN, WK, V, RM) W4A8_MMA_CLUSTER_FN(G, MT, WN, WK, V, RM, 1)
const KernelFn kKernels[][2] = {W4A8_MMA_CONFIGS(W4A8_MMA_FN) W4A8_MMA_CLUSTER_CONFIGS(W4A8_MMA_CLUSTER_FN)};

constexpr int kNumConfigs = sizeof(kConfigs) / sizeof(kConfigs[0]);
static_assert(kNumConfigs == sizeof(kKernels) / sizeof(kKernels[0]), "table mismatch");

}  // namespace

int mma_config_count() { return kNumConfigs; }
const MmaConfig& mma_config(int index) { return kConfigs[index]; }

// Resident CTAs per SM of configuration i for one layout on the current device (cached).
int resident_ctas(int index, bool tiled) {
  static std::atomic<int> cache[kNumConfigs][2];
  int v = cache[index][tiled].load(std::memory_order_relaxed);
  if (v == 0) {
    const MmaConfig& c = kConfigs[index];
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&v, reinterpret_cast<const void*>(kKernels[index][tiled]),
                                                      32 * c.wn * c.wk, 0) != cudaSuccess || v < 1) {
      cudaGetLastError();
      v = 1;
    }
    cache[index][tiled].store(v, std::memory_order_relaxed);
  }
  return v;
}

// Clusters of configuration i (CS > 1) the current device holds at once (cached; 0 unknown).
int resident_clusters(int index, bool tiled) {
  static std::atomic<int> cache[kNumConfigs][2];
  int v = cache[index][tiled].load(std::memory_order_relaxed);
  if (v == 0) {
    const MmaConfig& c = kConfigs[index];
    v = max_active_clusters(reinterpret_cast<const void*>(kKernels[index][tiled]), c.cs, 32 * c.wn * c.wk, 0);
    if (v < 1) return 0;
    cache[index][tiled].store(v, std::memory_order_relaxed);
  }
  return v;
}

cudaError_t launch_mma(int index, const GemmParams& p, int sm_count, cudaStream_t stream, bool pdl) {
  if (index < 0 || index >= kNumConfigs) return cudaErrorInvalidValue;
  const MmaConfig& c = kConfigs[index];
  if (c.cs > 1) {  // thread-block clusters: sm_90+
    int dev = 0, cc = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&cc, cudaDevAttrComputeCapabilityMajor, dev) !=
                                                  cudaSuccess)
      return cudaErrorInvalidDevice;
    if (cc < 9) return cudaErrorNotSupported;
  }
  const int64_t token_tiles = (p.M + 8 * c.mt - 1) / (8 * c.mt);
  const int64_t row_groups = (p.N + 16 * c.wn * c.rm - 1) / (16 * c.wn * c.rm);
  const int64_t tiles = token_tiles * row_groups;
  if (tiles > 0x7FFFFFFF) return cudaErrorInvalidConfiguration;  // the kernel counts tiles in int
  // One wave at most: the CTAs (clusters) walk the tiles themselves.
  const bool tiled = p.tiled && c.vec == 16;  // (the host passes tiled weights with VEC 16 only)
  int64_t wave = int64_t(sm_count > 0 ? sm_count : 1) * resident_ctas(index, tiled);
  if (c.cs > 1) {  // in clusters: as many as fit at once (and at least one)
    wave /= c.cs;
    const int fit = resident_clusters(index, tiled);
    if (fit > 0 && fit < wave) wave = fit;
    if (wave < 1) wave = 1;
  }
  const int64_t grid = (tiles < wave ? tiles : wave) * c.cs;
  return launch_maybe_pdl_cluster(kKernels[index][tiled], dim3(static_cast<unsigned>(grid)), dim3(32 * c.wn * c.wk),
                                  0, stream, pdl, unsigned(c.cs), p, token_tiles);
}

cudaError_t mma_kernel_available() {
  cudaFuncAttributes attr;
  return cudaFuncGetAttributes(&attr, reinterpret_cast<const void*>(kKernels[0][0]));
}

cudaError_t mma_config_runnable(int index) {
  if (index < 0 || index >= kNumConfigs) return cudaErrorInvalidValue;
  if (kConfigs[index].cs == 1) return cudaSuccess;
  cudaFuncAttributes attr;
  const cudaError_t err = cudaFuncGetAttributes(&attr, reinterpret_cast<const void*>(kKernels[index][0]));
  if (err != cudaSuccess) return err;
  return attr.ptxVersion >= 90 ? cudaSuccess : cudaErrorNotSupported;
}

}  // namespace kernels
}  // namespace w4a8
