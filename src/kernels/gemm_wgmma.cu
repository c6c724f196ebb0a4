// The Hopper prefill kernel (sm_90a): exact W4A8 GEMM on 16-bit wgmma, for large M, and its
// FP8 tensor-core variant (end of this comment).
//
// Numerics are those of the mma.sync kernel (gemm_mma.cu): weights become FP16 exactly as
// (e2m1 * 2^-6) * sb, FP8 activations become FP16 exactly, products are exact in FP32, only the
// FP32 accumulation rounds, and 2^6 * alpha * s2 * row_scale (+ bias) is applied in FP32
// before the one BF16 rounding.
//
// Warp specialization (384 threads, three warpgroups; setmaxnreg moves registers to the
// consumers):
//  - Warpgroup 0, warp 0, one thread: TMA copies, per 64-k stage, the packed weights of the
//    CTA's 128 output channels ([128 rows x 32 bytes]: a 2-D box of the canonical layout, or
//    the tiled layout's 16-row tiles through a 3-D map of 256-byte lines, see tma_load_3d) and the
//    FP8 activations of its BM tokens ([BM x 64 bytes], 64-byte swizzle) into a ring of raw
//    stages, each completing on an mbarrier.
//  - Warpgroup 0, warps 1-3 (the converters): turn each stage's FP8 activations into FP16 in a
//    ring of wgmma B buffers (K-major, 128-byte swizzle), permuted (below).
//    Variant "f16 in" (kF16In, the fast one): the caller's prologue already wrote the
//    activations as permuted FP16 (launch_quantize_activation_f16p / launch_fp8_to_f16p, once
//    per call instead of once per CTA column), TMA brings them straight into the raw stage
//    in the wgmma B layout, and there are no converters.
//  - Warpgroups 1 and 2 (the consumers, 64 output channels each): read their weights from the
//    raw stage, dequantize them into wgmma A fragments in registers (swap-AB: weights are
//    wgmma's M, tokens its N), and issue 4 wgmma m64nBMk16 per stage, keeping one (248 or
//    256 tokens, converter variant) or two (otherwise) earlier stages in flight while they
//    dequantize the next. Block scales come from global memory, a few stages ahead.
//  - Epilogue: FP32 scaling by row scale (each warpgroup stages its own copy in shared
//    memory), alpha, s2, 2^6; bias; neighbouring channels swapped between lanes so that each
//    store writes two BF16.
// Token tiles (BM): 64, 128, 256, 248 for M = 769..992, where four tiles of 248 pad less
// than four of 256, and 160, 192, 224 (exact path, FP16 activations) where they pad least per
// round of SMs, e.g. two tiles of 192 at M = 257..384 on the large layers (heuristics.cpp).
// 128-k stages ("_s128" configurations, KH = 2; exact path with FP16 activations, 64 and 128
// tokens): each stage is two of the 64-k stages above under one mbarrier, one commit and one
// wait (AUTO's pick up to 128 tokens, heuristics.cpp).
// Persistent: the grid is at most one CTA per SM and every role walks the same tile
// sequence (tile = blockIdx.x, +gridDim.x, ...; tokens fastest), so the TMA thread runs into
// the next tile while the consumers finish the current one.
// Nothing but mbarriers connects the roles, so the converters run ahead of the consumers by
// up to the depth of the B ring and the TMA thread by up to the depth of the raw ring.
//
// k-slot permutation: a wgmma k16 step wants, per thread, rows g and g+8 at k slots
// {2c, 2c+1, 2c+8, 2c+9}. Reading the canonical layout, a thread takes 8 contiguous bytes
// (16 k = exactly one g16 group, so one block scale per row and stage) of each row, and
// its nibble pairs fill the 4 k16 steps of the stage in the order the shift trick produces
// them: logical slot (step s, 2c + e + 8h) holds k = 16c + 8(s>>1) + (s&1) + 4h + 2e of the
// stage. The converters (or the prologue, kernels/launch.hpp f16p_k_of_column) write the
// activations with the same permutation, so the products pair up as in an unpermuted GEMM
// and the weights need no prepacking for this kernel (it reads either layout). Tiled words
// (W4A8_LAYOUT_TILED) give their codes as k 0..3 and 4..7 instead: for them the prologue writes
// the order slot (s, 2c + e + 8h) -> k = 16c + 8(s>>1) + 4(s&1) + 2h + e (f16p_k_of_column(L,
// true)), and the converter variant, which writes the canonical order only, permutes the
// words' bytes back (dequant_exact).
//
// Work items and split-K: a CTA tile is 128 channels x BM tokens over all of K, or, for
// configurations with S splits, over one of S contiguous K ranges; the S partial tiles go
// to an FP32 workspace and a second kernel adds them in split order and applies the
// epilogue. Tall-K layers with few output tiles (N = 2048, K = 16384) thus run the 248- or
// 256-token tile on every SM instead of a 128-token tile (whose dequantization per MMA is
// twice as large) or half the SMs. Items are numbered split fastest, then tiles; tiles are numbered
// channel-tile fastest when the activations outweigh the weights (every SM then streams the
// same activation rows, which do not fit in L2, while the weights stay there), token-tile
// fastest otherwise.
//
// Determinism: every output (or partial) is accumulated by one warpgroup in a fixed k
// order, partials are added in a fixed order; no atomics.
//
// The FP8 path (kFp8, configurations "wgmma_fp8_*", issue 7 item 2): the same roles on E4M3
// operands, wgmma m64nBMk32 at twice the 16-bit rate, 128-k stages, 128-token tiles. The
// consumers turn each weight into e4m3(e2m1 * sb * 2^shift) from a 2 KB shared-memory table
// of rounded products (T[sb][magnitude], built by every CTA at start; e2m1x8_to_e4m3); the
// activations are the FP8 codes, permuted within 128-k blocks by the prologue (launch.hpp
// fp8p_k_of_slot) so that a thread's 32 k of a row are one or two whole groups. The tensor
// cores keep ~14 bits while summing FP8 products, so each stage pair (256 k) is summed from
// zero in `acc` and promoted into the FP32 registers `fin`; the epilogue applies 2^-shift
// instead of 2^6. Exact when every product is representable (w4a8_prepare_fp8 says), else
// lossy: what the kernel computes is what ref::fp8_weight_value describes.
//
// Its fast-accumulation variant (kFastAcc, "wgmma_fp8_fast_*", weights the caller marked
// W4A8_FP8_FAST): tiles summed in the tensor cores over the whole K range of the item, no
// promotion; 256-token tiles, and 128-token ones (session 26) where those leave SMs idle, with
// the freed registers spent on a second stage of wgmmas in flight (1.5-7% faster than the
// promoted 128-token kernel, BENCHMARKS.md "Session 26"). The promotion registers (another
// BM / 2 per thread) are what kept the FP8 path at 128-token tiles, where each consumer warp
// issues ~190 instructions per 512 clocks of tensor work (conversion, fragments, the
// promotion's adds; session 5): issue- and latency-bound at 0.66-0.78x cuBLASLt FP8. 256-token tiles halve the conversion per MMA.
// H100, same process (session 25, bench/results/fp8-fast-h100-2026-11-27-s25.txt): 0.79-1.07x
// cuBLASLt FP8 on the large layers at M = 968 / 4096, against 0.66-0.77x; the price is the
// tensor cores' own summation (about 14 bits kept, truncating): on exact weights (power-of-two
// block scales) its error stayed within the exact path's bound plus 2^-11.4 of the sum of
// |products|, and the output's relative error grew from 1.7e-3 to 1.8e-3 (K = 2048), 2.1e-3
// (K = 4096) and 3.3e-3 (K = 16384; cuBLASLt's own fast accumulation differs from its
// precise one by 1.9e-3 / 3.9e-3 on the same data).
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#include <atomic>

#include "kernels/common.cuh"
#include "kernels/launch.hpp"
#include "w4a8/formats.hpp"

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define W4A8_WGMMA_DEVICE 1
#include "kernels/mbarrier.cuh"
#include "kernels/wgmma_ops.cuh"
#endif

namespace w4a8 {
namespace kernels {
namespace {

constexpr int kBN = 128;               // output channels per CTA (64 per consumer warpgroup)
constexpr int kBK = 64;                // k per stage of the exact (16-bit) path
constexpr int kBKFp8 = 128;            // k per stage of the FP8 path (one 128-byte swizzle row)
constexpr int kConsumerThreads = 256;  // warpgroups 1 and 2
constexpr int kThreads = 128 + kConsumerThreads;
constexpr int kFp8TableBytes = 256 * 8;  // FP8 path: 8 E4M3 products per block-scale byte

template <int BM, bool kF16In, bool kFp8 = false, int KH = 1>
struct Layout {
  static_assert(!kFp8 || kF16In, "the FP8 path takes its activations from a prologue");
  static_assert(KH == 1 || (KH == 2 && kF16In && !kFp8), "128-k stages: the exact f16-in variant only");
  // k per stage: 64 (exact path; KH = 2: 128, as two 64-k halves) or 128 (FP8 path).
  static constexpr int kStageK = kFp8 ? kBKFp8 : kBK * KH;
  static constexpr int kWBytes = kBN * kStageK / 2;  // packed weights per stage
  // Ring depths: as deep as shared memory allows (H100: 227 KB per block), but 8 rather than
  // 9 or 10 for the 64-token 128-k and the 128-token 64-k stages: 3.1% / 2.5% faster on average
  // (H100, same process, 9 shape x M points each, every 64-token point faster). A power of two
  // turns the stage index and phase (it % R, it / R) into shifts and masks; whether that or
  // the depth itself did it is not separated. The same change for the other tiles was neutral
  // or slower (bench/results/sweep-ring-h100-2026-11-26.csv).
  static constexpr int kRawStages = kFp8 ? (BM == 256 ? 5 : BM == 128 ? 9 : 12)
                                    : KH == 2 ? (BM == 128 ? 5 : 8)
                                    : kF16In ? (BM >= 192 ? 6 : BM >= 128 ? 8 : 12) : (BM == 256 ? 6 : 8);
  static constexpr int kB16Stages = kF16In ? 0 : BM == 256 ? 3 : 4;
  // Activations per stage: FP8 (FP8 path, converter variant) or FP16 bytes.
  static constexpr int kXBytes = BM * kStageK * (kF16In && !kFp8 ? 2 : 1);
  static constexpr int kRawBytes = kWBytes + kXBytes;
  static constexpr int kB16Bytes = BM * kBK * 2;   // FP16 activations per stage
  static constexpr int kB16Off = kRawStages * kRawBytes;
  static constexpr int kBarOff = kB16Off + kB16Stages * kB16Bytes;
  static constexpr int kRowScaleOff = kBarOff + 2 * (kRawStages + kB16Stages) * 8;
  // The tile's row scales, one copy per consumer warpgroup (each stages its own, epilogue).
  static constexpr int kTableOff = kRowScaleOff + 2 * BM * 4;
  static constexpr int kBytes = kTableOff + (kFp8 ? kFp8TableBytes : 0);
  static constexpr int kDynamicSmem = kBytes + 1024;  // slack to align the base to 1024
  static_assert(kWBytes % 1024 == 0 && kXBytes % 1024 == 0, "swizzled buffers need 1 KB alignment");
  static_assert(kDynamicSmem <= 227 * 1024, "over the sm_90 shared-memory limit");
};

#if defined(W4A8_WGMMA_DEVICE)
__device__ __forceinline__ uint2 lds64(uint32_t a) {
  uint2 v;
  asm volatile("ld.shared.v2.u32 {%0, %1}, [%2];" : "=r"(v.x), "=r"(v.y) : "r"(a) : "memory");
  return v;
}
__device__ __forceinline__ uint4 lds128(uint32_t a) {
  uint4 v;
  asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(a) : "memory");
  return v;
}
__device__ __forceinline__ float4 lds128f(uint32_t a) {
  float4 v;
  asm volatile("ld.shared.v4.f32 {%0, %1, %2, %3}, [%4];" : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w) : "r"(a) : "memory");
  return v;
}
__device__ __forceinline__ void sts128(uint32_t a, const uint4& v) {
  asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};" ::"r"(a), "r"(v.x), "r"(v.y), "r"(v.z),
               "r"(v.w)
               : "memory");
}
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const CUtensorMap* map, uint32_t bar,
                                            int c0, int c1) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%3, %4}], [%2];" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(bar), "r"(c0), "r"(c1)
      : "memory");
}
// The tiled weight layout as a 3-D tensor of 256-byte lines (bytes, lines of a row block's
// consecutive 512-byte tiles, row blocks): a box of (256, 2 * KH, 8) -- a stage's KH tiles of each of
// the CTA's 8 row blocks, one contiguous 512 * KH-byte stretch per block -- lands in shared memory as
// [8 row blocks][KH tiles][16 rows x 32 bytes], which the consumers address (w_r0 below). 256 is
// TMA's longest box line of bytes. The earlier map of 32-byte tile rows (a 4-D box of (32, 16, KH,
// 8), the same image: 8 x 16 KH lines per stage instead of 8 x 2 KH) made tiled weights 3-7% slower
// at M = 50 on the large layers and slower than canonical ones; with 256-byte lines they are
// faster than canonical on 32 of 35 dispatched wgmma rows (H100, session 29); a 2-D map of 8-byte
// elements with 512 * KH-byte lines measured no better (bench/results/ab-tiled-tma-h100-2026-11-27-s29.txt).
__device__ __forceinline__ void tma_load_3d(uint32_t dst, const CUtensorMap* map, uint32_t bar, int c0, int c1,
                                            int c2) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%3, %4, %5}], [%2];" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(bar), "r"(c0), "r"(c1), "r"(c2)
      : "memory");
}
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
}
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(N) : "memory");
}
// Keeps the compiler from moving reads/writes of a register across the wgmma fences.
__device__ __forceinline__ void fence_operand(float& r) { asm volatile("" : "+f"(r)::"memory"); }

template <int BM, bool kFp8>
__device__ __forceinline__ void wgmma_rs(float (&d)[BM / 2], const uint32_t (&a)[4], uint64_t desc, int scale_d) {
  if constexpr (kFp8) {
    if constexpr (BM == 64) wgmma_m64n64k32_e4m3_rs(d, a, desc, scale_d);
    else if constexpr (BM == 128) wgmma_m64n128k32_e4m3_rs(d, a, desc, scale_d);
    else wgmma_m64n256k32_e4m3_rs(d, a, desc, scale_d);
  } else {
    if constexpr (BM == 64) wgmma_m64n64k16_rs(d, a, desc, scale_d);
    else if constexpr (BM == 128) wgmma_m64n128k16_rs(d, a, desc, scale_d);
    else if constexpr (BM == 248) wgmma_m64n248k16_rs(d, a, desc, scale_d);
    else if constexpr (BM == 192) wgmma_m64n192k16_rs(d, a, desc, scale_d);
    else if constexpr (BM == 160) wgmma_m64n160k16_rs(d, a, desc, scale_d);
    else if constexpr (BM == 224) wgmma_m64n224k16_rs(d, a, desc, scale_d);
    else wgmma_m64n256k16_rs(d, a, desc, scale_d);
  }
}

// FP8 path: eight E2M1 codes (one 32-bit word, k = 8 consecutive values) -> two registers of
// four E4M3 bytes each, e4m3(e2m1 * sb * 2^shift), from the block scale's row of the product
// table (t: the 8 products of magnitudes 0, .5, 1, 1.5, 2, 3, 4, 6). prmt picks a magnitude
// per 3-bit index (bit 3 of a selector nibble would mean sign-replicate, hence the mask); the
// signs come from a second prmt that gathers, per output byte, the byte of q or of q << 4 whose
// bit 7 is that code's sign bit (codes 0, 2: q << 4; codes 1, 3: q), XOR-ed in (XOR, not OR,
// so that a negative block scale's products keep the right sign). Immediate selectors and
// masks only: no constant has to live in a register. lo gets codes 0-3, hi codes 4-7.
__device__ __forceinline__ void e2m1x8_to_e4m3(uint32_t q, uint2 t, uint32_t& lo, uint32_t& hi) {
  const uint32_t qm = q & 0x77777777u, q4 = q << 4;
  lo = prmt(t.x, t.y, qm) ^ (prmt(q4, q, 0x5140u) & 0x80808080u);
  hi = prmt(t.x, t.y, qm >> 16) ^ (prmt(q4, q, 0x7362u) & 0x80808080u);
}
#endif  // W4A8_WGMMA_DEVICE

// The gated epilogue (p.glu, w4a8_linear_bf16_glu) of one thread's outputs: channels n0 and
// n0 + 8 are one column's gate and up (the weight's rows interleaved in blocks of 8); a.v[4i +
// 2h + e] = (channel n0 + 8h, token m0 + 8i + e), row scales at rs (shared memory, 4 bytes per
// token, from m0). Out of line, accumulators by value, so that the kernel keeps one call site
// instead of an inlined tanhf / expf per output (see mma_glu_epilogue in gemm_mma.cu).
template <int BM>
struct WgAcc {
  float v[BM / 2];
};
template <int BM>
__device__ __noinline__ void wgmma_glu_epilogue(WgAcc<BM> a, uint16_t* y, int glu, int M, int N, int m0, int n0,
                                                uint32_t rs, float base, float bias_g, float bias_u) {
#if defined(W4A8_WGMMA_DEVICE)
  uint16_t* yc = y + glu_column(n0);
  const size_t ldy = unsigned(N / 2);
#pragma unroll
  for (int i = 0; i < BM / 8; ++i) {
    const int mb = m0 + 8 * i;
    float2 rs2;  // tokens mb, mb + 1
    asm volatile("ld.shared.v2.f32 {%0, %1}, [%2];" : "=f"(rs2.x), "=f"(rs2.y) : "r"(rs + 32 * i) : "memory");
    if (mb < M) yc[size_t(mb) * ldy] = glu_bf16(glu, a.v[4 * i] * (base * rs2.x) + bias_g, a.v[4 * i + 2] * (base * rs2.x) + bias_u);
    if (mb + 1 < M)
      yc[size_t(mb + 1) * ldy] =
          glu_bf16(glu, a.v[4 * i + 1] * (base * rs2.y) + bias_g, a.v[4 * i + 3] * (base * rs2.y) + bias_u);
  }
#endif
}

template <int GROUP, int BM, bool kF16In, bool kFp8, int KH, bool kFastAcc>
__global__ void __launch_bounds__(kThreads, 1)
    wgmma_exact_kernel(const __grid_constant__ CUtensorMap wmap,
                       const __grid_constant__ CUtensorMap xmap, const GemmParams p, const int splits,
                       const int raster_n) {
#if defined(W4A8_WGMMA_DEVICE)
  constexpr int kConverterThreads = 96;  // warps 1-3 of warpgroup 0
  using L = Layout<BM, kF16In, kFp8, KH>;
  // KH = 2: each stage is two 64-k halves (weights [128 rows x 64 bytes] in one copy, the
  // activations as two [BM x 64 k] tiles), one mbarrier round trip and one wgmma commit / wait
  // per 128 k instead of per 64 k: 1-6% faster at 50-128 tokens (H100, heuristics.cpp), where
  // a 64-k stage costs ~340 ns of chained latencies (BENCHMARKS.md, session 10).
  constexpr int kStageK = L::kStageK, kWBytes = L::kWBytes;
  constexpr int R = L::kRawStages, F = kF16In ? 1 : L::kB16Stages;  // (F unused when kF16In)
  // Split-K reduced inside a thread-block cluster (the "_k<S>c" configurations, launched in
  // clusters of `splits` CTAs with one work item each: a cluster's CTAs are the splits of one
  // tile, rank = split). The ranks swap their FP32 sums through distributed shared memory and
  // each finishes a share of the tile (see the end of the main loop): no partials in global
  // memory, no reduction launch, no workspace; the hardware co-schedules a cluster's CTAs, so
  // their barriers cannot deadlock. The cluster is read where it matters (cluster_nctarank),
  // not held in a register across the main loop: that flag alone cost the 248- / 256-token
  // kernels 16-20 bytes of spills there. The exchange needs (BM / 8 + 7) x 4 KB of the ring.
  // Not in the FP8 path: there ptxas spilled in the main loop of its 128-token kernels (its
  // promotion registers), so its splits keep the workspace.
  constexpr bool kClusterFits = !kFp8 && (BM / 8 + 7) * 16 * kConsumerThreads <= R * L::kRawBytes;
  auto cluster_reduced = [&] { return kClusterFits && splits > 1 && cluster_nctarank() > 1; };
  extern __shared__ uint8_t smem_dyn[];
  const uint32_t sbase = (smem_u32(smem_dyn) + 1023u) & ~1023u;
  auto raw_w = [&](int s) { return sbase + s * L::kRawBytes; };
  auto raw_x = [&](int s) { return sbase + s * L::kRawBytes + kWBytes; };
  auto b16 = [&](int f) { return sbase + L::kB16Off + f * L::kB16Bytes; };
  auto raw_full = [&](int s) { return sbase + L::kBarOff + 8 * s; };
  auto raw_empty = [&](int s) { return sbase + L::kBarOff + 8 * (R + s); };
  auto b_full = [&](int f) { return sbase + L::kBarOff + 8 * (2 * R + f); };
  auto b_empty = [&](int f) { return sbase + L::kBarOff + 8 * (2 * R + F + f); };

  const int M = static_cast<int>(p.M), N = static_cast<int>(p.N), K = static_cast<int>(p.K);
  const int nk = (K + kStageK - 1) / kStageK;
  const int mtiles = (M + BM - 1) / BM, ntiles = (N + kBN - 1) / kBN;
  const int tiles = mtiles * ntiles;
  const int items = tiles * splits;
  const int kbs = (nk + splits - 1) / splits;  // 64-k stages per split (the host keeps none empty)
  // Work item -> output tile (mt, nt) and its stages [kb0, kb1).
  struct Item {
    int mt, nt, split, kb0, kb1;
  };
  auto item_of = [&](int item) {
    Item w;
    w.split = item % splits;
    const int tile = item / splits;
    w.mt = raster_n ? tile / ntiles : tile % mtiles;
    w.nt = raster_n ? tile % ntiles : tile / mtiles;
    w.kb0 = w.split * kbs;
    w.kb1 = min(nk, w.kb0 + kbs);
    return w;
  };

  if (threadIdx.x == 0) {
    asm volatile("prefetch.tensormap [%0];" ::"l"(reinterpret_cast<uint64_t>(&wmap)) : "memory");
    asm volatile("prefetch.tensormap [%0];" ::"l"(reinterpret_cast<uint64_t>(&xmap)) : "memory");
    for (int s = 0; s < R; ++s) {
      mbar_init(raw_full(s), 1);
      mbar_init(raw_empty(s), (kF16In ? 0 : kConverterThreads) + kConsumerThreads);
    }
    for (int f = 0; f < F; ++f) {
      mbar_init(b_full(f), kConverterThreads);
      mbar_init(b_empty(f), kConsumerThreads);
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  // Launched as a programmatic dependent (after our own prologue or quantizer, or for an
  // `overlap` weight), we read nothing the kernel before us may write until it has finished.
  // What comes before the wait reads none of it: the barrier set-up above and the prefetch of
  // the two tensor maps (kernel parameters) into the TMA unit's descriptor cache, so that the
  // first copies after the wait do not fetch them first (CUTLASS's Hopper kernels prefetch
  // theirs the same way). Then our own dependents may launch (every CTA of ours is running by
  // then, so they cannot crowd us).
  pdl_wait();
  pdl_launch_dependents();
  __syncthreads();

  if (threadIdx.x < 128) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 56;\n" ::: "memory");
    if (threadIdx.x == 0) {  // TMA
      int s = 0;           // ring slot of the next stage (the consumers' `slot`)
      uint32_t phase = 0;  // and its phase
      for (int item = blockIdx.x; item < items; item += gridDim.x) {
        const Item w = item_of(item);
        for (int kb = w.kb0; kb < w.kb1; ++kb) {
          mbar_wait(raw_empty(s), phase ^ 1u);
          mbar_expect_tx(raw_full(s), L::kRawBytes);
          if (!kFp8 && p.tiled)  // (byte 0, row 0, first k-tile of the stage, first row block)
            tma_load_3d(raw_w(s), &wmap, raw_full(s), 0, kb * 2 * KH, w.nt * (kBN / 16));
          else
            tma_load_2d(raw_w(s), &wmap, raw_full(s), kb * (kStageK / 2), w.nt * kBN);
#pragma unroll
          for (int h = 0; h < KH; ++h)  // 64 k of FP16 per copy (one 128-byte swizzle row)
            tma_load_2d(raw_x(s) + h * (BM * 128), &xmap, raw_full(s), kb * kStageK + 64 * h, w.mt * BM);
          if (++s == R) s = 0, phase ^= 1u;
        }
      }
    } else if (!kF16In && threadIdx.x >= 32) {  // converters
      const int t = threadIdx.x - 32;
      uint32_t total = 0;  // stages of this CTA's items
      for (int item = blockIdx.x; item < items; item += gridDim.x) {
        const Item w = item_of(item);
        total += uint32_t(w.kb1 - w.kb0);
      }
      for (uint32_t it = 0; it < total; ++it) {
        const int s = it % R, f = it % F;
    (void)f;
        mbar_wait(raw_full(s), (it / R) & 1);
        mbar_wait(b_empty(f), ((it / F) & 1) ^ 1);
        const uint32_t xs = raw_x(s), bs = b16(f);
        // Work item (token m, half sigma) covers logical steps 2*sigma and 2*sigma+1. Thread t
        // takes items t + 96 j: sigma = t & 1 and tokens m0 + 48 j (kTok), m0 = t >> 1, so both
        // swizzles are the same for all its items and their addresses differ by constants.
        // Two items at a time, all their shared loads first: one item per iteration left the
        // converter warps (one per scheduler) waiting on each item's loads, and the consumers
        // waiting for the converters (H100 ncu, 16384x2048 M = 968: 34% of consumer samples
        // on the B-full barrier). H100 sweep: the converter configurations 5-8% faster (cvt_bm256
        // 16384x2048 M = 968 147.7 -> 135.9 us), still 1.2-1.45x the "f16 in" kernel with its
        // prologue: per 64-k stage this variant moves ~136 KB through shared memory (FP8 tile in,
        // converter reads and FP16 writes, both warpgroups' wgmma reads) against ~104 KB.
        const int sigma = t & 1, m0 = t >> 1;
        const uint32_t ld0 = xs + m0 * 64 + 8 * sigma, st0 = bs + m0 * 128;
        const int swz_ld = (m0 >> 1) & 3, swz_st = m0 & 7;
        constexpr int kTok = kConverterThreads / 2;
        static_assert(kTok % 8 == 0, "a thread's items must share both swizzle phases");
        constexpr int kJ = (BM + kTok - 1) / kTok;  // items per thread, the last ones predicated
#pragma unroll
        for (int j0 = 0; j0 < kJ; j0 += 2) {
          uint2 q[2][4];
#pragma unroll
          for (int jj = 0; jj < 2; ++jj) {
            const int j = j0 + jj;
            if (j < kJ && m0 + kTok * j < BM)
#pragma unroll
              for (int cc = 0; cc < 4; ++cc)  // 64-byte swizzle: 16-byte chunk cc ^ ((m >> 1) & 3)
                q[jj][cc] = lds64(ld0 + j * (kTok * 64) + ((cc ^ swz_ld) << 4));
          }
#pragma unroll
          for (int jj = 0; jj < 2; ++jj) {
            const int j = j0 + jj;
            if (!(j < kJ && m0 + kTok * j < BM)) continue;
#pragma unroll
            for (int tau = 0; tau < 2; ++tau)
#pragma unroll
              for (int h = 0; h < 2; ++h) {
                const uint32_t sel = tau ? 0x7531u : 0x6420u;
                const uint32_t pa = prmt(h ? q[jj][0].y : q[jj][0].x, h ? q[jj][1].y : q[jj][1].x, sel);
                const uint32_t pb = prmt(h ? q[jj][2].y : q[jj][2].x, h ? q[jj][3].y : q[jj][3].x, sel);
                uint4 o;
                o.x = e4m3x2_to_f16x2(pa);
                o.y = e4m3x2_hi_to_f16x2(pa);
                o.z = e4m3x2_to_f16x2(pb);
                o.w = e4m3x2_hi_to_f16x2(pb);
                const int chunk = 4 * sigma + 2 * tau + h;  // 128-byte swizzle: chunk ^ (m & 7)
                sts128(st0 + j * (kTok * 128) + ((chunk ^ swz_st) << 4), o);
              }
          }
        }
        asm volatile("fence.proxy.async.shared::cta;" ::: "memory");  // B buffer -> wgmma
        mbar_arrive(b_full(f));
        mbar_arrive(raw_empty(s));
      }
    }
    // The consumers' two cluster barriers (split-K reduced in a cluster, below). A thread
    // that has exited no longer counts for barrier.cluster, so this is not needed for them to
    // complete; arriving keeps the warpgroup's part explicit rather than resting on that.
    if (cluster_reduced())
      for (int k = 0; k < 2; ++k) cluster_arrive(), cluster_wait();
    return;
  }

  // ---- consumers ----
  asm volatile("setmaxnreg.inc.sync.aligned.u32 224;\n" ::: "memory");
  const int ct = threadIdx.x - 128;
  const int wg = ct >> 7, warp = (ct >> 5) & 3, lane = ct & 31, g = lane >> 2, c = lane & 3;
  const int r0 = 64 * wg + 16 * warp + g;  // this thread's rows in the tile: r0 and r0 + 8
  const int kgroups = K / GROUP;

  // Block scales come straight from global memory: 2 bytes per thread and stage (one group
  // of 16 k per row), loaded two stages ahead into the registers of the same parity, each
  // load asking L2 for 256 bytes on a miss (ld_u8_l2_256): ncu (H100, 16384x2048, M = 50) had
  // 14% of the main loop's stall samples on the stage's first use of its scales, and the hint
  // made every configuration 2-5% faster at 50-128 tokens. (An L2 prefetch of each work item's
  // scales instead, prefetch.global.L2 per line, made them 1-7% slower.)
  // Layouts: group grp of a row lies at row + (grp / T) * s_tile + grp % T, T = 64 / GROUP
  // groups per 64 k: canonical s_tile = T; tiled (16-row tiles, w4a8/formats.hpp) 16 T.
  constexpr int T = 64 / GROUP;
  const int s_tile = p.tiled ? 16 * T : T;
  const size_t s_rowblock = size_t((K + 63) / 64) * (16 * T);  // tiled: bytes per 16 rows
  auto s_row = [&](int row) {
    return p.tiled ? size_t(row >> 4) * s_rowblock + unsigned(row & 15) * T : size_t(row) * unsigned(kgroups);
  };
  // The loads of a work item come in k order, one 64-k half (exact path) or one 128-k stage
  // (FP8 path) after the other, so the thread carries where its next one is instead of
  // working it out from the stage index each time: sk, the first k of its group (of the
  // thread's 16 k of a 64-k half; FP8: of its 32 k of a 128-k stage), and so, that group's
  // byte offset from the two rows' scales, srow0 / srow1: a compare and two adds per load
  // instead of a division and a remainder. Past the item's last stage the loads run on into
  // the next split's range or stop at K (the prefetch of stage kb + NP). In groups: the group
  // of k is k / GROUP, its byte at (grp / T) * s_tile + grp % T, so one 64-k half further is
  // s_tile bytes further (grp % T stays), one FP8 stage 128 / GROUP. Measured with the carried
  // ring slot below (session 17, H100, same process, bench/results/ab-carried-ring-h100-2026-11-26.txt):
  // the 64- and 128-token rows at M = 50 1.2-2.9% faster, the rest within the runs' spread.
  const uint8_t *srow0 = p.sb, *srow1 = p.sb;
  bool sok0 = false, sok1 = false;
  int sk = 0;
  unsigned so = 0;
  auto start_scales = [&](int kb) {  // the item's first stage kb
    sk = kFp8 ? kb * kBKFp8 + 32 * c : kb * (KH * kBK) + 16 * c;
    const int grp = sk / GROUP;
    so = kFp8 ? unsigned(grp) : unsigned(grp / T) * s_tile + grp % T;
  };
  auto load_scales = [&](uint32_t (&sc)[2]) {  // the next half's / stage's, then advance
    // grp < K / GROUP, i.e. sk < K (K % GROUP == 0). The FP8 path's offset is grp itself
    // (canonical only), so it compares that and carries no sk: with sk, ptxas spilled 4 bytes
    // more in one of its 128-token kernels.
    const bool in = kFp8 ? int(so) < kgroups : sk < K;
    if constexpr (kFp8 && GROUP == 16) {
      // k 32c .. 32c + 31 of the 128-k stage: groups 2c and 2c + 1, one aligned 2-byte load
      // (K % 32 == 0 makes a row's group count even); canonical only.
      sc[0] = sok0 && in ? ld_u16_l2_256(srow0 + so) : 0u;
      sc[1] = sok1 && in ? ld_u16_l2_256(srow1 + so) : 0u;
    } else {  // exact path: the group of the thread's 16 k; FP8 path, g32: group c
      sc[0] = sok0 && in ? ld_u8_l2_256(srow0 + so) : 0u;
      sc[1] = sok1 && in ? ld_u8_l2_256(srow1 + so) : 0u;
    }
    if constexpr (!kFp8) sk += kBK;
    so += kFp8 ? unsigned(kBKFp8 / GROUP) : unsigned(s_tile);
  };
  // A stage's scales: its KH 64-k halves' (the FP8 path: its one 128-k stage's).
  auto load_stage_scales = [&](uint32_t (&sc)[KH][2]) {
#pragma unroll
    for (int h = 0; h < KH; ++h) load_scales(sc[h]);
  };
  // Where rows r0 and r0 + 8 of a stage's weights are in shared memory, and how far apart
  // a stage's two 64-k halves are (KH = 2): the canonical layout's copy is [128 rows x 64
  // bytes], the tiled one's [8 row blocks][2 halves][16 rows x 32 bytes] (tma_load_3d).
  const uint32_t w_r0 = KH == 1 ? uint32_t(r0) * 32u
                                : p.tiled ? uint32_t(r0 >> 4) * 1024u + uint32_t(r0 & 15) * 32u : uint32_t(r0) * 64u;
  const uint32_t w_r8 = KH == 1 || p.tiled ? 256u : 512u;
  const uint32_t w_half = p.tiled ? 512u : 32u;

  // FP8 path: the product table, T[sb][i] = e4m3(mag_i * sb * 2^shift) for every block-scale
  // byte sb (NaN scales give NaN products), one row per consumer thread; exact products are
  // exact in FP32 (2 x 4 significant bits), then one RNE rounding to E4M3, as in the CPU
  // reference (w4a8/reference.hpp fp8_weight_product).
  const uint32_t table = sbase + L::kTableOff;
  if constexpr (kFp8) {
    const float f = ldexpf(__half2float(__half(__nv_cvt_fp8_to_halfraw(uint8_t(ct), __NV_E4M3))), p.fp8_shift);
    auto two = [&](float m0, float m1) {
      return uint32_t(__nv_cvt_float2_to_fp8x2(make_float2(m0 * f, m1 * f), __NV_SATFINITE, __NV_E4M3));
    };
    const uint32_t lo = two(0.0f, 0.5f) | (two(1.0f, 1.5f) << 16), hi = two(2.0f, 3.0f) | (two(4.0f, 6.0f) << 16);
    asm volatile("st.shared.v2.u32 [%0], {%1, %2};" ::"r"(table + 8 * ct), "r"(lo), "r"(hi) : "memory");
    asm volatile("bar.sync 1, %0;" ::"n"(kConsumerThreads) : "memory");
  }

  float acc[BM / 2];
  // FP8 path: the FP8 wgmma accumulates with reduced precision (about 14 bits kept, DeepSeek-V3
  // report 3.3.2), so each pair of 128-k stages (8 wgmmas, 256 k) sums from zero in acc and is
  // added ("promoted") into FP32 registers here; pairs rather than single stages halve the
  // drains of the tensor pipe that promotion costs (measured: 1-2% faster on the H100).
  // The fast-accumulation variant (see the top) has no room for them and no promotion.
  // (The FP8 path's 256-token tiles exist only without it; 128-token tiles both ways.)
  static_assert(!kFastAcc || kFp8, "fast accumulation is an FP8-path variant");
  static_assert(!kFp8 || BM != 256 || kFastAcc, "no promotion registers at 256 tokens");
  constexpr bool kPromote = kFp8 && !kFastAcc;  // the FP8 path's stage-pair sums promoted into fin
  float fin[kPromote ? BM / 2 : 1];
  // Stages of wgmmas kept in flight behind the one being issued (the FP16-fed variant keeps
  // two up to 128 tokens, so the tensor pipe has queued work while the next stage is
  // dequantized; 256 tokens have no registers for a third fragment set (ptxas would
  // serialize the wgmmas, C7512); the converter variant keeps one, to leave its B ring
  // room), and one set of A fragments and scale registers per stage in flight or prepared.
  // The FP8 path keeps one (a stage pair's sum is promoted before the next pair reuses acc);
  // its fast accumulation two at 128 tokens (the promotion's registers free: 1.2% faster on
  // average over 24 points, session 26), one at 256.
  // 128-k stages (KH = 2) keep one: eight wgmmas per stage are in flight behind the next.
  constexpr int kDepth = (kF16In && !kFp8 && BM <= 128 && KH == 1) || (kFastAcc && BM <= 128) ? 2 : 1;
  constexpr int NP = kDepth + 1;
  uint32_t afrag[NP][4 * KH][4];
  uint32_t scales[NP][KH][2] = {};
  uint32_t it = 0;  // stages consumed so far (all items)
  // Where stage `it` is in the raw ring, carried along with it: slot = it % R, phase =
  // (it / R) & 1 (R is 5, 6 or 12 for most tiles: a division per stage otherwise). The FP8
  // path keeps it % R: the two carried registers raised its 128-token kernels' spills from 8
  // to 20 bytes.
  int slot = 0;
  uint32_t phase = 0;
  int kb_first = 0;  // the current item's first stage

  auto release = [&](int back) {  // the B (and raw) buffers of stage it - back are read
    if constexpr (kFp8) {
      mbar_arrive(raw_empty((it - back) % R));
    } else if constexpr (kF16In) {
      const int s = slot - back;
      mbar_arrive(raw_empty(s < 0 ? s + R : s));
    } else {
      mbar_arrive(b_empty((it - back) % F));
    }
  };
  auto promote = [&] {  // FP8 path: acc holds the finished sum of one stage
#pragma unroll
    for (int i = 0; i < BM / 2; ++i) fence_operand(acc[i]);
    if constexpr (kPromote)
#pragma unroll
      for (int i = 0; i < BM / 2; ++i) fin[i] += acc[i];
  };
  // Exact path: dequantizes the 16 k of rows r0 and r0 + 8 of a 64-k stage into the 4 k16
  // steps' FP16 A fragments.
  // f0, f1: (sb, sb) of both rows as FP16 pairs.
  auto dequant_exact = [&](uint32_t (&a)[4][4], uint32_t s, uint32_t f0, uint32_t f1, int h) {
    const uint32_t at = raw_w(s) + w_r0 + h * w_half + 8 * c;
    const uint2 wa = lds64(at);
    const uint2 wb = lds64(at + w_r8);
    if constexpr (!kF16In) mbar_arrive(raw_empty(s));  // B lives in its own ring
#pragma unroll
    for (int word = 0; word < 2; ++word) {
      const uint32_t qa = word ? wa.y : wa.x, qb = word ? wb.y : wb.x;
      // E4M3 bytes of the two k16 steps of each row's word: canonical words give the even-k
      // and the odd-k codes. Tiled words hold their bits permuted (w4a8/formats.hpp): k 0..3
      // and k 4..7 come out of them, one integer op cheaper than the nibbles; with the FP16
      // activations in the matching order (the prologue's tiled f16p order, launch.hpp
      // f16p_k_of_column) they feed the steps as they are. The converters write the canonical
      // order only, so that variant permutes them back (two byte permutes per row and word).
      // H100 (session 28): with the permutes, tiled weights ran this kernel up to 9% slower
      // than canonical ones (-6% .. +9% per row, mostly slower); in the matching order as fast
      // on average (dispatched, same process, 18 rows at M = 50..968: mean -0.4%, from -9.2% at
      // 16384x2048 M = 128 to +9.1% at 2048x2048 M = 384;
      // bench/results/ab-tiled-order-h100-2026-11-27-s28.txt), so one tiled copy serves the
      // decode kernels (3-11% faster on it) and this one alike. (Its 16-row tiles also bring a
      // stage's bytes from one stretch of memory: the first stage lands ~1.4 us sooner than from
      // 128 rows K/2 bytes apart, bench/experiments/wgmma_timeline.py.)
      uint32_t eva, oda, evb, odb;
      if (p.tiled) {
        const uint32_t la = tiled_word_e4m3_lo(qa), ha = tiled_word_e4m3_hi(qa);
        const uint32_t lb = tiled_word_e4m3_lo(qb), hb = tiled_word_e4m3_hi(qb);
        if constexpr (kF16In) {
          eva = la, oda = ha, evb = lb, odb = hb;
        } else {
          eva = prmt(la, ha, 0x6420u), oda = prmt(la, ha, 0x7531u);
          evb = prmt(lb, hb, 0x6420u), odb = prmt(lb, hb, 0x7531u);
        }
      } else {
        eva = e2m1_lo_nibbles_to_e4m3(qa), oda = e2m1_hi_nibbles_to_e4m3(qa);
        evb = e2m1_lo_nibbles_to_e4m3(qb), odb = e2m1_hi_nibbles_to_e4m3(qb);
      }
#pragma unroll
      for (int odd = 0; odd < 2; ++odd) {
        const uint32_t ea = odd ? oda : eva;
        const uint32_t eb = odd ? odb : evb;
        e4m3_rows_to_wgmma_a(a[2 * word + odd], ea, eb, f0, f1);
      }
    }
  };
  // FP8 path: the 32 k (16 bytes) of rows r0 and r0 + 8 at k 32c.. of a 128-k stage become
  // the 4 k32 steps' E4M3 A fragments: code word st (k 32c + 8st ..) gives step st's run at
  // slots 4c.. (codes 0-3) and 16 + 4c.. (codes 4-7), so logical slot 32st + 16h + 4c + e holds
  // k = 32c + 8st + 4h + e; the prologue (launch_fp8_to_fp8p) permutes the activations alike.
  auto dequant_fp8 = [&](uint32_t (&a)[4][4], uint32_t s, const uint32_t (&sc)[2]) {
    const uint2 t00 = lds64(table + 8 * (sc[0] & 0xFFu)), t10 = lds64(table + 8 * (sc[1] & 0xFFu));
    const uint2 t01 = GROUP == 16 ? lds64(table + 8 * (sc[0] >> 8)) : t00;
    const uint2 t11 = GROUP == 16 ? lds64(table + 8 * (sc[1] >> 8)) : t10;
    const uint4 wa = lds128(raw_w(s) + r0 * 64 + 16 * c);
    const uint4 wb = lds128(raw_w(s) + (r0 + 8) * 64 + 16 * c);
    const uint32_t qa[4] = {wa.x, wa.y, wa.z, wa.w}, qb[4] = {wb.x, wb.y, wb.z, wb.w};
#pragma unroll
    for (int st = 0; st < 4; ++st) {  // words 0, 1: group 2c (g16); 2, 3: group 2c + 1
      e2m1x8_to_e4m3(qa[st], st < 2 ? t00 : t01, a[st][0], a[st][2]);
      e2m1x8_to_e4m3(qb[st], st < 2 ? t10 : t11, a[st][1], a[st][3]);
    }
  };
  auto stage = [&](auto parity, int kb) {
    constexpr int P = decltype(parity)::value;
    const int s = kFp8 ? int(it % R) : slot, f = it % F;
    (void)f;
    // This stage's scales (the exact path's as FP16 pairs, per 64-k half); then the loads for
    // stage kb + NP.
    const uint32_t sc[2] = {scales[P][0][0], scales[P][0][1]};
    uint32_t f0[KH], f1[KH];
#pragma unroll
    for (int h = 0; h < KH; ++h) {
      f0[h] = kFp8 ? 0u : e4m3x2_to_f16x2(prmt(scales[P][h][0], 0u, 0x0000u));
      f1[h] = kFp8 ? 0u : e4m3x2_to_f16x2(prmt(scales[P][h][1], 0u, 0x0000u));
    }
    load_stage_scales(scales[P]);  // those of stage kb + NP
    mbar_wait(raw_full(s), kFp8 ? (it / R) & 1 : phase);
    uint32_t(&a)[4 * KH][4] = afrag[P];
    // FP8 path: stage pairs share one sum (promoted every 256 k); the first stage of a pair
    // reuses the fragments of the previous pair's first stage, so that one must be done.
    if constexpr (kPromote)
      if (P == 0 && kb > kb_first) wgmma_wait<1>();
    if constexpr (kFp8) {
      dequant_fp8(a, s, sc);
    } else {
#pragma unroll
      for (int h = 0; h < KH; ++h)
        dequant_exact(*reinterpret_cast<uint32_t(*)[4][4]>(&a[4 * h]), s, f0[h], f1[h], h);
    }
    (void)sc;
    // The stage's 4 wgmmas once B is there; then wait until only this stage is in flight
    // and hand the previous stage's B buffer back. The FP8 path instead, at the first stage of
    // a pair, waits for the previous pair, promotes its sum, releases its two stages and then
    // overwrites acc (scale_d = 0 on the pair's first wgmma). Its fast-accumulation variant
    // runs as the exact path does: one stage in flight behind the next, acc summed throughout.
    uint32_t bsm;
    if constexpr (kF16In) {
      bsm = raw_x(s);
    } else {
      mbar_wait(b_full(f), (it / F) & 1);
      bsm = b16(f);
    }
    const uint64_t desc = wgmma_smem_desc(bsm);
    if constexpr (kPromote) {
      if (P == 0 && kb > kb_first) {  // the previous pair's sum is complete: promote it
        wgmma_wait<0>();
        promote();
        release(2);
        release(1);
      }
    }
    wgmma_fence();
#pragma unroll
    for (int st = 0; st < 4 * KH; ++st)  // +32 bytes per k16 (16-bit) or k32 (FP8) step; the
      // second 64-k half's activations are the next [BM x 128 bytes] tile (wgmma_smem_desc: addr >> 4)
      wgmma_rs<BM, kFp8>(acc, a[st], desc + (st / 4) * (BM * 128 / 16) + 2 * (st % 4),
                         kPromote && P == 0 && st == 0 ? 0 : 1);
    wgmma_commit();
    if constexpr (!kPromote) {
      wgmma_wait<kDepth>();
      if (kb - kb_first >= kDepth) release(kDepth);
    }
    ++it;
    if constexpr (!kFp8)
      if (++slot == R) slot = 0, phase ^= 1u;
  };
  auto result = [&](int i) -> float {  // the tile's FP32 sums after the main loop
    if constexpr (kPromote) return fin[i];
    else return acc[i];
  };

  const float base = epilogue_base(p.alpha, p.s2, kFp8 ? -p.fp8_shift : 6);
  // 4-byte output stores of channel pairs need an even N and a 4-byte aligned y.
  const bool pairs = N % 2 == 0 && (reinterpret_cast<uintptr_t>(p.y) & 3) == 0;
  // Each consumer warpgroup stages its own copy of the tile's row scales for the epilogue
  // (named barrier 2 + wg, its 128 threads), so that the two never wait for each other between
  // tiles: one may start its next tile while the other still finishes its epilogue. (H100, same
  // process against one 256-thread barrier pair per tile, two runs: median -1.1% on the
  // multi-tile rows of both paths, 33 of 40 faster; pi0.5 trace -3.5% / fused -1.2%;
  // bench/results/ab-rowscales-per-wg-h100-2026-11-26.txt.)
  const uint32_t rs_smem = sbase + L::kRowScaleOff + uint32_t(wg) * (BM * 4);  // this warpgroup's copy
  constexpr int kRs = (BM + 127) / 128;  // row scales each consumer thread stages per tile
  const int wt = ct & 127;
  for (int item = blockIdx.x; item < items; item += gridDim.x) {
    const Item w = item_of(item);
    const int mt = w.mt, nt = w.nt;
    kb_first = w.kb0;
    // This tile's row scales for the thread's warpgroup copy (kRs per thread), loaded now,
    // used (through shared memory) by the epilogue, so their latency hides behind the main loop.
    float my_rs[kRs];
#pragma unroll
    for (int j = 0; j < kRs; ++j) {
      const int tok = wt + 128 * j;
      my_rs[j] = splits == 1 && tok < BM && mt * BM + tok < M ? __ldg(p.row_scale + mt * BM + tok) : 0.0f;
    }
    {
      const int row = nt * kBN + r0;
      sok0 = row < N;
      sok1 = row + 8 < N;
      srow0 = p.sb + s_row(sok0 ? row : 0);
      srow1 = p.sb + s_row(sok1 ? row + 8 : 0);
    }
    start_scales(w.kb0);
#pragma unroll
    for (int k = 0; k < NP; ++k) load_stage_scales(scales[k]);  // stages kb0 .. kb0 + NP - 1
#pragma unroll
    for (int i = 0; i < BM / 2; ++i) acc[i] = 0.0f;
    if constexpr (kPromote)
#pragma unroll
      for (int i = 0; i < BM / 2; ++i) fin[i] = 0.0f;
    int kb = w.kb0;
    for (; kb + NP <= w.kb1; kb += NP) {  // unrolled so that fragment sets are compile-time
      stage(std::integral_constant<int, 0>(), kb);
      stage(std::integral_constant<int, 1>(), kb + 1);
      if constexpr (NP == 3) stage(std::integral_constant<int, 2>(), kb + 2);
    }
    if (kb < w.kb1) stage(std::integral_constant<int, 0>(), kb);
    if constexpr (NP == 3)
      if (kb + 1 < w.kb1) stage(std::integral_constant<int, 1>(), kb + 1);
    wgmma_wait<0>();
    if constexpr (kDepth == 2 || kPromote)  // FP8: the last pair's first stage, if it had two
      if (w.kb1 - w.kb0 >= 2 && (!kPromote || (w.kb1 - w.kb0) % 2 == 0)) release(2);
    promote();
    release(1);

    // This thread's output channels n0 and n0 + 8 (D fragment rows r0, r0 + 8), and their bias
    // (0 past N or without one), for whichever epilogue below finishes the tile.
    const int n0 = nt * kBN + r0;
    auto bias_at = [&](int n) { return p.bias && n < N ? bf16_bits_to_float(__ldg(p.bias + n)) : 0.0f; };
    if (cluster_reduced()) {
      // Rank q finishes the fragment rows j = q, q + S, ... (j: 4 sums per thread, 2 channels
      // x 2 tokens; S = splits): every rank pushes its sums of those rows into rank q's ring
      // (st.shared::cluster, which does not wait for the far side), at [j / S][rank][256]
      // float4, thread ct's fragment in column ct (the same fragment in every rank). The
      // first cluster barrier: every rank is past its last wgmma, so the rings are free (its
      // only item needs no more loads); the second: the pushes have landed. Then each rank
      // adds its rows' S float4 in rank (= split) order, as the reduction kernel adds the
      // partials, and runs their epilogue: spread over the cluster, from local shared memory.
      cluster_arrive();
      cluster_wait();
      constexpr uint32_t kRow = 16u * kConsumerThreads;  // bytes per fragment row
      const uint32_t xchg = sbase + 16u * uint32_t(ct);
#pragma unroll
      for (int j = 0; j < BM / 8; ++j) {
        const int q = j % splits, jl = j / splits;
        const uint32_t to = cluster_map(xchg + uint32_t(jl * splits + w.split) * kRow, uint32_t(q));
        asm volatile("st.shared::cluster.v4.f32 [%0], {%1, %2, %3, %4};" ::"r"(to), "f"(result(4 * j)),
                     "f"(result(4 * j + 1)), "f"(result(4 * j + 2)), "f"(result(4 * j + 3))
                     : "memory");
      }
      cluster_arrive();
      cluster_wait();
      const bool nok0 = n0 < N, nok1 = n0 + 8 < N;
      const float bias0 = bias_at(n0), bias1 = bias_at(n0 + 8);
      for (int j = w.split, jl = 0; j < BM / 8; j += splits, ++jl) {
        const uint32_t row = xchg + uint32_t(jl * splits) * kRow;
        float4 t = lds128f(row);
#pragma unroll
        for (int r = 1; r < 8; ++r)
          if (r < splits) {
            const float4 v = lds128f(row + r * kRow);
            t.x += v.x, t.y += v.y, t.z += v.z, t.w += v.w;
          }
        // t = (channel n0, token m), (n0, m + 1), (n0 + 8, m), (n0 + 8, m + 1)
        const int m = mt * BM + 8 * j + 2 * c;
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          if (m + e >= M) continue;
          const float sc = base * __ldg(p.row_scale + m + e);
          const float v0 = (e ? t.y : t.x) * sc + bias0, v1 = (e ? t.w : t.z) * sc + bias1;
          if (p.glu) {
            if (nok0) p.y[size_t(m + e) * unsigned(N / 2) + glu_column(n0)] = glu_bf16(p.glu, v0, v1);
          } else {
            uint16_t* yrow = p.y + size_t(m + e) * unsigned(N);
            if (nok0) yrow[n0] = float_to_bf16_bits(v0);
            if (nok1) yrow[n0 + 8] = float_to_bf16_bits(v1);
          }
        }
      }
      continue;
    } else if (splits > 1) {
      // A partial tile: raw FP32 sums to the workspace, scaled and rounded by the reduction.
      // acc[4i + 2h + e] = (channel r0 + 8h, token 8i + 2c + e); a warp's stores for one
      // register cover 8 channels x 4 tokens (32-byte segments).
      float* part = p.partial + size_t(w.split) * unsigned(M) * unsigned(N);
#pragma unroll
      for (int i = 0; i < BM / 8; ++i)
#pragma unroll
        for (int h = 0; h < 2; ++h)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int m = mt * BM + 8 * i + 2 * c + e, n = n0 + 8 * h;
            if (m < M && n < N) part[size_t(m) * unsigned(N) + n] = result(4 * i + 2 * h + e);
          }
      continue;
    }

    asm volatile("bar.sync %0, 128;" ::"r"(2 + wg) : "memory");  // previous tile's reads done
#pragma unroll
    for (int j = 0; j < kRs; ++j)
      if (wt + 128 * j < BM)
        asm volatile("st.shared.f32 [%0], %1;" ::"r"(rs_smem + 4 * (wt + 128 * j)), "f"(my_rs[j]) : "memory");
    asm volatile("bar.sync %0, 128;" ::"r"(2 + wg) : "memory");
    // Epilogue. D fragment: acc[4i + 2h + e] = (channel r0 + 8h, token 8i + 2c + e). Lanes g
    // and g^1 swap one value so that each holds two neighbouring channels of one token.
    const float bias0 = bias_at(n0), bias1 = bias_at(n0 + 8);
    if (p.glu) {  // the gated epilogue, out of line (wgmma_glu_epilogue)
      WgAcc<BM> a;
#pragma unroll
      for (int i = 0; i < BM / 2; ++i) a.v[i] = result(i);
      if (n0 < N) wgmma_glu_epilogue<BM>(a, p.y, p.glu, M, N, mt * BM + 2 * c, n0, rs_smem + 8 * c, base, bias0, bias1);
      continue;
    }
    // Row scales of tokens mb, mb + 1 for four 8-token groups at a time: four shared loads
    // issued together (each load alone before its use made a chain of shared-memory latencies
    // through the unrolled loop); body(i, scale of mb, scale of mb + 1) per group i.
    constexpr int kG = BM / 8 >= 4 ? 4 : BM / 8;
    auto each_group = [&](auto&& body) {
#pragma unroll
      for (int i0 = 0; i0 < BM / 8; i0 += kG) {
        float2 rs2[kG];
#pragma unroll
        for (int k = 0; k < kG; ++k)
          if (i0 + k < BM / 8)  // (248 tokens: 31 groups, the last step has three)
            asm volatile("ld.shared.v2.f32 {%0, %1}, [%2];"
                         : "=f"(rs2[k].x), "=f"(rs2[k].y)
                         : "r"(rs_smem + 4 * (8 * (i0 + k) + 2 * c))
                         : "memory");
#pragma unroll
        for (int k = 0; k < kG; ++k)
          if (i0 + k < BM / 8) body(i0 + k, base * rs2[k].x, base * rs2[k].y);
      }
    };
    if (pairs) {
      // Even g keeps token mb (channels n, n + 1), odd g token mb + 1 (channels n - 1, n): one
      // value crosses to lane g ^ 1, then each lane stores a BF16 pair. Row pointer, channel
      // and predicates per thread once; 8 tokens (one i) further per step.
      const bool odd_g = g & 1;
      const int m_first = mt * BM + 2 * c + (odd_g ? 1 : 0);
      const int nn0 = odd_g ? n0 - 1 : n0;
      const bool nok0 = nn0 < N, nok1 = nn0 + 8 < N;
      uint16_t* yrow = p.y + size_t(m_first) * unsigned(N) + nn0;
      const size_t step = size_t(8) * unsigned(N);
      each_group([&](int i, float sc_e0, float sc_e1) {
        const bool mok = m_first + 8 * i < M;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const float bias = h ? bias1 : bias0;
          const float v0 = result(4 * i + 2 * h) * sc_e0 + bias;      // token mb
          const float v1 = result(4 * i + 2 * h + 1) * sc_e1 + bias;  // token mb + 1
          const float other = __shfl_xor_sync(0xFFFFFFFFu, odd_g ? v0 : v1, 4);
          if (mok && (h ? nok1 : nok0)) {
            const __nv_bfloat162 two = __floats2bfloat162_rn(odd_g ? other : v0, odd_g ? v1 : other);
            *reinterpret_cast<__nv_bfloat162*>(yrow + size_t(i) * step + 8 * h) = two;
          }
        }
      });
    } else {
      each_group([&](int i, float sc_e0, float sc_e1) {
        const int mb = mt * BM + 8 * i + 2 * c;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int n = n0 + 8 * h;
          const float bias = h ? bias1 : bias0;
          if (n >= N) continue;
          if (mb < M) p.y[size_t(mb) * unsigned(N) + n] = float_to_bf16_bits(result(4 * i + 2 * h) * sc_e0 + bias);
          if (mb + 1 < M)
            p.y[size_t(mb + 1) * unsigned(N) + n] = float_to_bf16_bits(result(4 * i + 2 * h + 1) * sc_e1 + bias);
        }
      });
    }
  }
#else
  __trap();  // never launched: the host dispatches this kernel only on sm_90a builds and GPUs
#endif
}

// Split-K partials summed in split order, then the unsplit kernel's epilogue (same FP32
// expression: sum * (alpha * s2 * 2^6 * row_scale) + bias, one BF16 rounding). Two
// neighbouring channels per thread; rows in blockIdx.y (strided past 65535).
__global__ void __launch_bounds__(256) splitk_reduce_kernel(const GemmParams p, const int splits) {
  const int64_t M = p.M, N = p.N, MN = M * N;
  const int64_t n = 2 * (int64_t(blockIdx.x) * blockDim.x + threadIdx.x);
  if (n >= N) return;
  const float base = epilogue_base(p.alpha, p.s2, p.fp8 ? -p.fp8_shift : 6);
  if (p.glu) {  // gated: this thread's pair is gate row r (r % 16 < 8) and its up row r + 8
    const int64_t r = (n / 16) * 16 + (n % 16) / 2;
    const float bias_g = p.bias ? bf16_bits_to_float(__ldg(p.bias + r)) : 0.0f;
    const float bias_u = p.bias ? bf16_bits_to_float(__ldg(p.bias + r + 8)) : 0.0f;
    for (int64_t m = blockIdx.y; m < M; m += gridDim.y) {
      const float* src = p.partial + m * N;
      float g = 0.0f, u = 0.0f;
      for (int s = 0; s < splits; ++s) {
        g += __ldg(src + s * MN + r);
        u += __ldg(src + s * MN + r + 8);
      }
      const float sc = base * __ldg(p.row_scale + m);
      p.y[m * (N / 2) + glu_column(r)] = glu_bf16(p.glu, g * sc + bias_g, u * sc + bias_u);
    }
    return;
  }
  const bool two = n + 1 < N;
  const float bias0 = p.bias ? bf16_bits_to_float(__ldg(p.bias + n)) : 0.0f;
  const float bias1 = p.bias && two ? bf16_bits_to_float(__ldg(p.bias + n + 1)) : 0.0f;
  for (int64_t m = blockIdx.y; m < M; m += gridDim.y) {
    const float* src = p.partial + m * N + n;
    float v0 = 0.0f, v1 = 0.0f;
    for (int s = 0; s < splits; ++s) {
      v0 += __ldg(src + s * MN);
      if (two) v1 += __ldg(src + s * MN + 1);
    }
    const float sc = base * __ldg(p.row_scale + m);
    p.y[m * N + n] = float_to_bf16_bits(v0 * sc + bias0);
    if (two) p.y[m * N + n + 1] = float_to_bf16_bits(v1 * sc + bias1);
  }
}

// ---- the whitelist ----------------------------------------------------------------------
// X(group, tokens per tile, activations from the prologue, K splits, FP8 path (0: exact path,
// 1: the FP8 path promoting its sums to FP32, 2: its fast accumulation), 64-k halves per
// stage, K splits reduced in a cluster). The first ten keep their indices from before
// split-K existed, the first twenty from before the FP8 path, the first 24 from before the
// 128-k stages ("_s128", session 10), the first 28 from before the 248-token tiles (exact,
// FP16 activations; heuristics.cpp), the first 32 from before the cluster-reduced twins of
// the exact path's split configurations ("_k<S>c", session 21: the same kernels, launched in
// clusters; not the FP8 path's, see kClusterFits), the first 44 from before the 64-token tiles'
// K splits (session 24: the kernels of the unsplit 64-token tiles, split as the 128-token ones),
// the first 50 from before the 128-k-stage twins of split configurations ("_s128_k<S>", session
// 24: the KH = 2 kernels of the unsplit "_s128" ones; heuristics.cpp takes them for their 64-k
// twins), the first 56 from before the FP8 path's fast-accumulation configurations (session 25:
// 256 tokens, unsplit or 2 K-splits; the only 256-token FP8 tiles, as the promoted path's
// registers (fin) leave no room for a 256-token accumulator), the first 60 from before the
// fast accumulation's 128-token tiles (session 26: unsplit or 4 K-splits, the promoted 128-token
// kernels without their promotion, for the shapes where 256-token tiles leave SMs idle), the
// first 64 from before the exact path's 192-token tiles (session 27: unsplit, 2 or 4
// K-splits; the cost model's pick where two tiles of 192 beat three of 128 or two of 256), the
// first 70 from before the 160- and 224-token tiles (session 27: unsplit, 2, 4 (and 8 at 160)
// K-splits; the in-between heights the cost model takes where they pad least per round).
#define W4A8_WGMMA_CONFIGS(X)                                                                      \
  X(16, 128, 1, 1, 0, 1, 0) X(16, 256, 1, 1, 0, 1, 0) X(16, 64, 1, 1, 0, 1, 0) X(32, 128, 1, 1, 0, 1, 0) X(32, 256, 1, 1, 0, 1, 0)   \
  X(32, 64, 1, 1, 0, 1, 0) X(16, 128, 0, 1, 0, 1, 0) X(16, 256, 0, 1, 0, 1, 0) X(32, 128, 0, 1, 0, 1, 0) X(32, 256, 0, 1, 0, 1, 0)   \
  X(16, 256, 1, 2, 0, 1, 0) X(16, 256, 1, 4, 0, 1, 0) X(16, 128, 1, 2, 0, 1, 0) X(16, 128, 1, 4, 0, 1, 0) X(32, 256, 1, 2, 0, 1, 0)  \
  X(32, 256, 1, 4, 0, 1, 0) X(32, 128, 1, 2, 0, 1, 0) X(32, 128, 1, 4, 0, 1, 0) X(16, 128, 1, 8, 0, 1, 0) X(32, 128, 1, 8, 0, 1, 0)  \
  X(16, 128, 1, 1, 1, 1, 0) X(32, 128, 1, 1, 1, 1, 0) X(16, 128, 1, 4, 1, 1, 0) X(32, 128, 1, 4, 1, 1, 0)  \
  X(16, 64, 1, 1, 0, 2, 0) X(32, 64, 1, 1, 0, 2, 0) X(16, 128, 1, 1, 0, 2, 0) X(32, 128, 1, 1, 0, 2, 0)  \
  X(16, 248, 1, 1, 0, 1, 0) X(32, 248, 1, 1, 0, 1, 0) X(16, 248, 1, 2, 0, 1, 0) X(32, 248, 1, 2, 0, 1, 0)  \
  X(16, 256, 1, 2, 0, 1, 1) X(16, 256, 1, 4, 0, 1, 1) X(16, 128, 1, 2, 0, 1, 1) X(16, 128, 1, 4, 0, 1, 1)  \
  X(32, 256, 1, 2, 0, 1, 1) X(32, 256, 1, 4, 0, 1, 1) X(32, 128, 1, 2, 0, 1, 1) X(32, 128, 1, 4, 0, 1, 1)  \
  X(16, 128, 1, 8, 0, 1, 1) X(32, 128, 1, 8, 0, 1, 1) X(16, 248, 1, 2, 0, 1, 1) X(32, 248, 1, 2, 0, 1, 1)  \
  X(16, 64, 1, 2, 0, 1, 0) X(16, 64, 1, 4, 0, 1, 0) X(16, 64, 1, 8, 0, 1, 0)                          \
  X(32, 64, 1, 2, 0, 1, 0) X(32, 64, 1, 4, 0, 1, 0) X(32, 64, 1, 8, 0, 1, 0)                          \
  X(16, 64, 1, 4, 0, 2, 0) X(16, 64, 1, 8, 0, 2, 0) X(32, 64, 1, 4, 0, 2, 0) X(32, 64, 1, 8, 0, 2, 0)  \
  X(16, 128, 1, 8, 0, 2, 0) X(32, 128, 1, 8, 0, 2, 0)                                              \
  X(16, 256, 1, 1, 2, 1, 0) X(32, 256, 1, 1, 2, 1, 0) X(16, 256, 1, 2, 2, 1, 0) X(32, 256, 1, 2, 2, 1, 0)  \
  X(16, 128, 1, 1, 2, 1, 0) X(32, 128, 1, 1, 2, 1, 0) X(16, 128, 1, 4, 2, 1, 0) X(32, 128, 1, 4, 2, 1, 0)  \
  X(16, 192, 1, 1, 0, 1, 0) X(32, 192, 1, 1, 0, 1, 0) X(16, 192, 1, 2, 0, 1, 0) X(32, 192, 1, 2, 0, 1, 0)  \
  X(16, 192, 1, 4, 0, 1, 0) X(32, 192, 1, 4, 0, 1, 0)                                              \
  X(16, 160, 1, 1, 0, 1, 0) X(32, 160, 1, 1, 0, 1, 0) X(16, 160, 1, 2, 0, 1, 0) X(32, 160, 1, 2, 0, 1, 0)  \
  X(16, 160, 1, 4, 0, 1, 0) X(32, 160, 1, 4, 0, 1, 0) X(16, 160, 1, 8, 0, 1, 0) X(32, 160, 1, 8, 0, 1, 0)  \
  X(16, 224, 1, 1, 0, 1, 0) X(32, 224, 1, 1, 0, 1, 0) X(16, 224, 1, 2, 0, 1, 0) X(32, 224, 1, 2, 0, 1, 0)  \
  X(16, 224, 1, 4, 0, 1, 0) X(32, 224, 1, 4, 0, 1, 0)
#define W4A8_STR2(x) #x
#define W4A8_STR(x) W4A8_STR2(x)
#define W4A8_CLUSTER_SUFFIX0 ""
#define W4A8_CLUSTER_SUFFIX1 "c"
#define W4A8_WGMMA_NAME1(PFX, G, BM, S, CL)                                                   \
  ((S) > 1 ? PFX W4A8_STR(BM) "_k" W4A8_STR(S) W4A8_CLUSTER_SUFFIX##CL "_g" W4A8_STR(G) \
           : PFX W4A8_STR(BM) "_g" W4A8_STR(G))
#define W4A8_WGMMA_NAME_S128(G, BM, S)                                                      \
  ((S) > 1 ? "wgmma_exact_bm" W4A8_STR(BM) "_s128_k" W4A8_STR(S) "_g" W4A8_STR(G)          \
           : "wgmma_exact_bm" W4A8_STR(BM) "_s128_g" W4A8_STR(G))
#define W4A8_WGMMA_NAME(G, BM, F16, S, FP8, KH, CL)                                          \
  ((FP8) == 2 ? W4A8_WGMMA_NAME1("wgmma_fp8_fast_bm", G, BM, S, CL)                  \
   : (FP8)     ? W4A8_WGMMA_NAME1("wgmma_fp8_bm", G, BM, S, CL)                               \
   : (KH) == 2 ? W4A8_WGMMA_NAME_S128(G, BM, S)                                              \
   : (F16)     ? W4A8_WGMMA_NAME1("wgmma_exact_bm", G, BM, S, CL)                             \
               : W4A8_WGMMA_NAME1("wgmma_exact_cvt_bm", G, BM, S, CL))
#define W4A8_WGMMA_ENTRY(G, BM, F16, S, FP8, KH, CL) \
  {G, BM, F16 != 0, S, W4A8_WGMMA_NAME(G, BM, F16, S, FP8, KH, CL), FP8 != 0, KH, CL != 0, FP8 == 2},
const WgmmaConfig kConfigs[] = {W4A8_WGMMA_CONFIGS(W4A8_WGMMA_ENTRY)};
using KernelFn = void (*)(const CUtensorMap, const CUtensorMap, const GemmParams, const int, const int);
#define W4A8_WGMMA_FN(G, BM, F16, S, FP8, KH, CL) &wgmma_exact_kernel<G, BM, F16 != 0, FP8 != 0, KH, FP8 == 2>,
const KernelFn kKernels[] = {W4A8_WGMMA_CONFIGS(W4A8_WGMMA_FN)};
#define W4A8_WGMMA_SMEM(G, BM, F16, S, FP8, KH, CL) Layout<BM, F16 != 0, FP8 != 0, KH>::kDynamicSmem,
const int kSmem[] = {W4A8_WGMMA_CONFIGS(W4A8_WGMMA_SMEM)};
constexpr int kNumConfigs = sizeof(kConfigs) / sizeof(kConfigs[0]);

PFN_cuTensorMapEncodeTiled_v12000 encode_fn() {
  static PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult q;
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q) !=
            cudaSuccess ||
        q != cudaDriverEntryPointSuccess)
      f = nullptr;
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
  }();
  return fn;
}

// A 2-D byte tensor [rows, cols] with row stride `cols` bytes, copied in [box_rows, box_cols].
bool encode_2d(CUtensorMap* map, const void* base, uint64_t cols, uint64_t rows, uint32_t box_cols,
               uint32_t box_rows, CUtensorMapSwizzle swizzle, int elem_bytes = 1) {
  auto fn = encode_fn();
  if (!fn) return false;
  const cuuint64_t dims[2] = {cols, rows};
  const cuuint64_t strides[1] = {cols * elem_bytes};
  const cuuint32_t box[2] = {box_cols, box_rows};
  const cuuint32_t elem[2] = {1, 1};
  return fn(map, elem_bytes == 2 ? CU_TENSOR_MAP_DATA_TYPE_UINT16 : CU_TENSOR_MAP_DATA_TYPE_UINT8, 2, const_cast<void*>(base), dims, strides, box, elem,
            CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
            CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

// The tiled weights [row blocks][k-tiles][16 rows][32 bytes] as a 3-D byte tensor of 256-byte
// lines (two per tile), copied in boxes of 256 bytes x 2 kh lines (one stage) x 8 row blocks
// (see tma_load_3d).
bool encode_tiled_weights(CUtensorMap* map, const void* base, int64_t N, int64_t K, int kh) {
  auto fn = encode_fn();
  if (!fn) return false;
  const cuuint64_t ktiles = cuuint64_t((K + 63) / 64), blocks = cuuint64_t((N + 15) / 16);
  const cuuint64_t dims[3] = {256, 2 * ktiles, blocks};
  const cuuint64_t strides[2] = {256, 512 * ktiles};
  const cuuint32_t box[3] = {256, cuuint32_t(2 * kh), kBN / 16};
  const cuuint32_t elem[3] = {1, 1, 1};
  return fn(map, CU_TENSOR_MAP_DATA_TYPE_UINT8, 3, const_cast<void*>(base), dims, strides, box, elem,
            CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_NONE, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
            CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

// The dynamic shared-memory opt-in of configuration `index`, once per device.
std::atomic<uint64_t> g_opted_in[kNumConfigs];
cudaError_t opt_in(int index, int device) {
  return opt_in_dynamic_smem(reinterpret_cast<const void*>(kKernels[index]), kSmem[index], device,
                             g_opted_in[index]);
}

}  // namespace

int wgmma_cluster_slots(int cluster, int device) {
  // The 248-token kernel (configuration 28: one CTA per SM, as every configuration).
  constexpr int kProbe = 28;
  static_assert(kProbe < kNumConfigs, "the probe configuration");
  if (opt_in(kProbe, device) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return max_active_clusters(reinterpret_cast<const void*>(kKernels[kProbe]), cluster, kThreads,
                             size_t(kSmem[kProbe]));
}

int wgmma_config_count() { return kNumConfigs; }

int wgmma_splits(int index, int64_t K) {
  const int64_t stage_k = kConfigs[index].fp8 ? kBKFp8 : kBK * kConfigs[index].kh;
  const int64_t nk = (K + stage_k - 1) / stage_k;
  int64_t s = kConfigs[index].splits;
  if (s > nk) s = nk > 0 ? nk : 1;
  const int64_t per = (nk + s - 1) / s;  // stages per split; then no split is left empty
  return static_cast<int>(per > 0 ? (nk + per - 1) / per : 1);
}

size_t wgmma_partial_bytes(int index, int64_t M, int64_t N, int64_t K) {
  const int s = wgmma_splits(index, K);
  return s > 1 && !kConfigs[index].cluster ? size_t(s) * size_t(M) * size_t(N) * sizeof(float) : 0;
}
const WgmmaConfig& wgmma_config(int index) { return kConfigs[index]; }

bool wgmma_supported(const GemmParams& p) {
  // TMA: 16-byte aligned bases (the API asks for it) and row strides that are multiples of 16
  // bytes (packed weights K/2); 32-bit tile and coordinate arithmetic.
  return p.K % 32 == 0 && p.K > 0 && (reinterpret_cast<uintptr_t>(p.w) % 16) == 0 &&
         (reinterpret_cast<uintptr_t>(p.x) % 16) == 0 && p.M < (int64_t(1) << 31) &&
         p.N < (int64_t(1) << 31) && p.K < (int64_t(1) << 31) &&
         ((p.M + 63) / 64) * ((p.N + kBN - 1) / kBN) * 8 < (int64_t(1) << 31);  // items, 8 splits
}

cudaError_t launch_wgmma(int index, const GemmParams& p, int device, int sm_count, cudaStream_t stream, bool pdl) {
  if (index < 0 || index >= kNumConfigs || !wgmma_supported(p)) return cudaErrorInvalidValue;
  const WgmmaConfig& c = kConfigs[index];
  if (p.M == 0 || p.N == 0) return cudaSuccess;
  CUtensorMap wmap, xmap;
  // Each variant takes its own activations: the FP8 path permuted FP8 (x8p, canonical weights
  // only), the exact "f16 in" one permuted FP16 (x16), the converter one the FP8 codes (x).
  if (c.fp8 ? (p.x8p == nullptr || !p.fp8 || p.tiled || p.x16 != nullptr)
            : (p.fp8 || p.x8p != nullptr || c.f16_in != (p.x16 != nullptr)))
    return cudaErrorInvalidValue;
  const bool xok = c.fp8      ? encode_2d(&xmap, p.x8p, uint64_t(fp8p_row_bytes(p.K)), uint64_t(p.M), kBKFp8,
                                          c.bm, CU_TENSOR_MAP_SWIZZLE_128B)
                   : c.f16_in ? encode_2d(&xmap, p.x16, uint64_t(f16p_row_elems(p.K)),
                                          uint64_t(p.x16_rows > p.M ? p.x16_rows : p.M), kBK,
                                          c.bm, CU_TENSOR_MAP_SWIZZLE_128B, 2)
                              : encode_2d(&xmap, p.x, uint64_t(p.K), uint64_t(p.M), kBK, c.bm,
                                          CU_TENSOR_MAP_SWIZZLE_64B);
  const uint32_t wbox = (c.fp8 ? kBKFp8 : kBK * c.kh) / 2;  // bytes of a row per stage
  const bool wok = p.tiled ? encode_tiled_weights(&wmap, p.w, p.N, p.K, c.kh)
                           : encode_2d(&wmap, p.w, uint64_t(p.K / 2), uint64_t(p.N), wbox, kBN,
                                       CU_TENSOR_MAP_SWIZZLE_NONE);
  if (!xok || !wok) return cudaErrorInvalidValue;
  // The dynamic shared-memory opt-in, once per configuration and device.
  if (const cudaError_t err = opt_in(index, device); err != cudaSuccess) return err;
  const int splits = wgmma_splits(index, p.K);
  const bool cluster = c.cluster && splits > 1;  // split-K reduced in a cluster: no partials
  if (splits > 1 && !c.f16_in) return cudaErrorInvalidValue;
  if (splits > 1 && !cluster && p.partial == nullptr) return cudaErrorInvalidValue;
  const int64_t items = ((p.M + c.bm - 1) / c.bm) * ((p.N + kBN - 1) / kBN) * splits;
  // Persistent, one CTA per SM; in clusters one CTA per work item (the exchange reuses the
  // ring, so a CTA must not start another item), the hardware scheduling the waves.
  const int64_t grid = cluster || items < sm_count ? items : sm_count;
  // Channel tiles fastest when the activations outweigh the weights (see the top).
  const int raster_n = p.M * p.K * (c.f16_in && !c.fp8 ? 2 : 1) > p.N * p.K / 2;
  cudaError_t err = launch_maybe_pdl_cluster(kKernels[index], dim3(static_cast<unsigned>(grid)), dim3(kThreads),
                                             kSmem[index], stream, pdl, cluster ? unsigned(splits) : 1u, wmap, xmap,
                                             p, splits, raster_n);
  if (err != cudaSuccess || splits == 1 || cluster) return err;
  const dim3 rgrid(static_cast<unsigned>((p.N / 2 + 1 + 255) / 256), static_cast<unsigned>(p.M < 65535 ? p.M : 65535));
  splitk_reduce_kernel<<<rgrid, 256, 0, stream>>>(p, splits);
  return cudaGetLastError();
}

}  // namespace kernels
}  // namespace w4a8
