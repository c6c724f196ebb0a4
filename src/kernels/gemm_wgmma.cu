// The Hopper prefill kernel (sm_90a): exact W4A8 GEMM on 16-bit wgmma, for large M.
//
// Numerics are those of the mma.sync kernel (gemm_mma.cu): weights become FP16 exactly as
// (e2m1 * 2^-6) * sb, FP8 activations become FP16 exactly, products are exact in FP32, only the
// FP32 accumulation rounds, and 2^6 * alpha * s2 * row_scale (+ bias) is applied in FP32
// before the one BF16 rounding.
//
// Roles (288 threads): warps 0-7 are two consumer warpgroups, warp 8 the producer.
//  - Producer (one thread): TMA copies, per 64-k stage, the packed weights of the CTA's 128
//    output channels ([128 rows x 32 bytes], canonical layout, no prepack) and the FP8
//    activations of its BM tokens ([BM x 64 bytes], 64-byte swizzle) into a ring of
//    kRawStages stages, each completing on an mbarrier.
//  - Consumers: per stage, (1) convert the FP8 activation tile to FP16 into a ring of
//    kB16Stages wgmma B buffers (128-byte swizzle, K-major), each consumer thread half a
//    token row; (2) read their own weights from the stage into registers and release it;
//    (3) dequantize the weights into wgmma A fragments (registers: swap-AB, weights are the
//    64 rows of each warpgroup, tokens are wgmma's N); (4) issue 4 wgmma m64nBMk16 and keep
//    one stage of wgmmas in flight while the next stage is converted and dequantized.
//
// k-slot permutation: a wgmma k16 step wants, per thread, rows g and g+8 at k slots
// {2c, 2c+1, 2c+8, 2c+9}. Reading the canonical layout, a thread takes 8 contiguous bytes
// (16 k = exactly one g16 group, so one block scale per row and stage) of each row, and
// its nibble pairs fill the 4 k16 steps of the stage in the order the shift trick produces
// them: logical slot (step s, 2c + e + 8h) holds k = 16c + 8(s>>1) + (s&1) + 4h + 2e of the
// stage. The converter writes the activations into the B buffer with the same permutation,
// so the products pair up as in an unpermuted GEMM and no prepacking is needed.
//
// Determinism: every output is accumulated by one warpgroup in a fixed k order; no split-K.
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#include <atomic>

#include "kernels/common.cuh"
#include "kernels/launch.hpp"

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define W4A8_WGMMA_DEVICE 1
#include "kernels/wgmma_ops.cuh"
#endif

namespace w4a8 {
namespace kernels {
namespace {

constexpr int kBN = 128;         // output channels per CTA (64 per consumer warpgroup)
constexpr int kBK = 64;          // k per stage
constexpr int kRawStages = 4;    // TMA ring: packed weights + FP8 activations
constexpr int kB16Stages = 3;    // FP16 activation ring (wgmma B); 3 = one stage in flight per
                                 // warpgroup + the one being written (see the main loop)
constexpr int kConsumerThreads = 256;
constexpr int kThreads = kConsumerThreads + 32;
constexpr int kWBytes = kBN * kBK / 2;  // packed weights per stage

template <int BM>
struct Layout {
  static constexpr int kXBytes = BM * kBK;         // FP8 activations per stage
  static constexpr int kRawBytes = kWBytes + kXBytes;
  static constexpr int kB16Bytes = BM * kBK * 2;   // FP16 activations per stage
  static constexpr int kB16Off = kRawStages * kRawBytes;
  static constexpr int kBarOff = kB16Off + kB16Stages * kB16Bytes;
  static constexpr int kBytes = kBarOff + 2 * kRawStages * 8;
  static constexpr int kDynamicSmem = kBytes + 1024;  // slack to align the base to 1024
  static_assert(kWBytes % 1024 == 0 && kXBytes % 1024 == 0, "swizzled buffers need 1 KB alignment");
};

#if defined(W4A8_WGMMA_DEVICE)
__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  asm volatile(
      "{\n.reg .pred P1;\nLAB_WAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 P1, [%0], %1;\n"
      "@P1 bra DONE;\nbra LAB_WAIT;\nDONE:\n}\n" ::"r"(bar),
      "r"(parity)
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

// wgmma shared-memory descriptor: K-major, 128-byte swizzle, 8-row groups 1024 bytes apart.
__device__ __forceinline__ uint64_t b_desc(uint32_t saddr) {
  return static_cast<uint64_t>((saddr & 0x3FFFF) >> 4) | (uint64_t(1) << 16) |
         (uint64_t(1024 >> 4) << 32) | (uint64_t(1) << 62);
}

template <int BM>
__device__ __forceinline__ void wgmma_rs(float (&d)[BM / 2], const uint32_t (&a)[4], uint64_t desc) {
  if constexpr (BM == 64) wgmma_m64n64k16_rs(d, a, desc, 1);
  else if constexpr (BM == 128) wgmma_m64n128k16_rs(d, a, desc, 1);
  else wgmma_m64n256k16_rs(d, a, desc, 1);
}
#endif  // W4A8_WGMMA_DEVICE

template <int GROUP, int BM>
__global__ void __launch_bounds__(kThreads, 1)
    wgmma_exact_kernel(const __grid_constant__ CUtensorMap wmap,
                       const __grid_constant__ CUtensorMap xmap, const GemmParams p) {
#if defined(W4A8_WGMMA_DEVICE)
  using L = Layout<BM>;
  extern __shared__ uint8_t smem_dyn[];
  uint8_t* smem = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(smem_dyn) + 1023) & ~uintptr_t(1023));
  const uint32_t sbase = smem_u32(smem);
  auto raw_w = [&](int s) { return smem + s * L::kRawBytes; };
  auto raw_x = [&](int s) { return smem + s * L::kRawBytes + kWBytes; };
  auto b16 = [&](int f) { return smem + L::kB16Off + f * L::kB16Bytes; };
  auto full_bar = [&](int s) { return sbase + L::kBarOff + 8 * s; };
  auto empty_bar = [&](int s) { return sbase + L::kBarOff + 8 * (kRawStages + s); };

  const int M = static_cast<int>(p.M), N = static_cast<int>(p.N), K = static_cast<int>(p.K);
  const int nk = (K + kBK - 1) / kBK;
  const int mtiles = (M + BM - 1) / BM;
  const int tiles = mtiles * ((N + kBN - 1) / kBN);

  if (threadIdx.x == 0) {
    for (int s = 0; s < kRawStages; ++s) {
      mbar_init(full_bar(s), 1);
      mbar_init(empty_bar(s), 1);
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncthreads();

  if (threadIdx.x >= kConsumerThreads) {  // producer warp: one thread issues every copy
    if (threadIdx.x == kConsumerThreads) {
      uint32_t it = 0;
      for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        const int mt = tile % mtiles, nt = tile / mtiles;
        for (int kb = 0; kb < nk; ++kb, ++it) {
          const int s = it % kRawStages;
          mbar_wait(empty_bar(s), ((it / kRawStages) & 1) ^ 1);
          mbar_expect_tx(full_bar(s), L::kRawBytes);
          tma_load_2d(smem_u32(raw_w(s)), &wmap, full_bar(s), kb * (kBK / 2), nt * kBN);
          tma_load_2d(smem_u32(raw_x(s)), &xmap, full_bar(s), kb * kBK, mt * BM);
        }
      }
    }
    return;
  }

  // ---- consumers ----
  const int ct = threadIdx.x;
  const int wg = ct >> 7, warp = (ct >> 5) & 3, lane = ct & 31, g = lane >> 2, c = lane & 3;
  const int r0 = 64 * wg + 16 * warp + g;  // this thread's rows in the tile: r0 and r0 + 8
  const int kgroups = K / GROUP;

  // Block scales come straight from global memory (2 bytes per thread and stage), loaded two
  // stages ahead, across tile boundaries too.
  auto load_scales = [&](int tile, int kb, uint32_t& s0, uint32_t& s1) {
    const int row = (tile / mtiles) * kBN + r0;
    const int grp = (kb * kBK + 16 * c) / GROUP;
    const bool ok = tile < tiles && grp < kgroups;
    const uint8_t* base = p.sb + grp;
    s0 = ok && row < N ? __ldg(base + size_t(row) * unsigned(kgroups)) : 0u;
    s1 = ok && row + 8 < N ? __ldg(base + size_t(row + 8) * unsigned(kgroups)) : 0u;
  };
  int pf_tile = blockIdx.x, pf_kb = 0;
  auto advance = [&]() {
    if (++pf_kb == nk) {
      pf_kb = 0;
      pf_tile += gridDim.x;
    }
  };
  uint32_t sc0, sc1, sn0, sn1;
  load_scales(pf_tile, pf_kb, sc0, sc1);
  advance();
  load_scales(pf_tile, pf_kb, sn0, sn1);
  advance();

  float acc[BM / 2];
  uint32_t afrag[2][4][4];
  uint32_t it = 0;

  auto stage = [&](auto parity) {
    constexpr int P = decltype(parity)::value;
    const int s = it % kRawStages, f = it % kB16Stages;
    const uint32_t s0 = sc0, s1 = sc1;
    sc0 = sn0;
    sc1 = sn1;
    load_scales(pf_tile, pf_kb, sn0, sn1);
    advance();

    mbar_wait(full_bar(s), (it / kRawStages) & 1);
    // (1) FP8 -> FP16 activations, permuted (see the top), into B buffer f. Work item
    // (token m, half sigma) covers logical steps 2*sigma and 2*sigma+1: 4 x 16 bytes out.
    const uint8_t* xs = raw_x(s);
    uint8_t* bs = b16(f);
#pragma unroll
    for (int item = ct; item < 2 * BM; item += kConsumerThreads) {
      const int m = item >> 1, sigma = item & 1;
      uint2 q[4];
#pragma unroll
      for (int cc = 0; cc < 4; ++cc)  // 64-byte swizzle: 16-byte chunk cc ^ ((m >> 1) & 3)
        q[cc] = *reinterpret_cast<const uint2*>(xs + m * 64 + ((cc ^ ((m >> 1) & 3)) << 4) + 8 * sigma);
#pragma unroll
      for (int tau = 0; tau < 2; ++tau)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const uint32_t sel = tau ? 0x7531u : 0x6420u;
          const uint32_t pa = prmt(h ? q[0].y : q[0].x, h ? q[1].y : q[1].x, sel);
          const uint32_t pb = prmt(h ? q[2].y : q[2].x, h ? q[3].y : q[3].x, sel);
          uint4 o;
          o.x = e4m3x2_to_f16x2(pa);
          o.y = e4m3x2_to_f16x2(pa >> 16);
          o.z = e4m3x2_to_f16x2(pb);
          o.w = e4m3x2_to_f16x2(pb >> 16);
          const int chunk = 4 * sigma + 2 * tau + h;  // 128-byte swizzle: chunk ^ (m & 7)
          *reinterpret_cast<uint4*>(bs + m * 128 + ((chunk ^ (m & 7)) << 4)) = o;
        }
    }
    // (2) this thread's packed weights: 16 k of rows r0 and r0 + 8.
    const uint2 wa = *reinterpret_cast<const uint2*>(raw_w(s) + r0 * 32 + 8 * c);
    const uint2 wb = *reinterpret_cast<const uint2*>(raw_w(s) + (r0 + 8) * 32 + 8 * c);
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");  // B buffer -> wgmma
    asm volatile("bar.sync 1, %0;" ::"n"(kConsumerThreads) : "memory");
    if (ct == 0) mbar_arrive(empty_bar(s));  // every consumer has read stage s

    // (3) dequantize: (sb, sb) per row, then 4 k16 steps of A fragments.
    const uint32_t f0 = e4m3x2_to_f16x2(prmt(s0, 0u, 0x0000u));
    const uint32_t f1 = e4m3x2_to_f16x2(prmt(s1, 0u, 0x0000u));
    uint32_t(&a)[4][4] = afrag[P];
#pragma unroll
    for (int word = 0; word < 2; ++word) {
      const uint32_t qa = word ? wa.y : wa.x, qb = word ? wb.y : wb.x;
#pragma unroll
      for (int odd = 0; odd < 2; ++odd) {
        const uint32_t ea = odd ? e2m1_hi_nibbles_to_e4m3(qa) : e2m1_lo_nibbles_to_e4m3(qa);
        const uint32_t eb = odd ? e2m1_hi_nibbles_to_e4m3(qb) : e2m1_lo_nibbles_to_e4m3(qb);
        uint32_t(&as)[4] = a[2 * word + odd];
        as[0] = hmul2(e4m3x2_to_f16x2(ea), f0);
        as[1] = hmul2(e4m3x2_to_f16x2(eb), f1);
        as[2] = hmul2(e4m3x2_to_f16x2(ea >> 16), f0);
        as[3] = hmul2(e4m3x2_to_f16x2(eb >> 16), f1);
      }
    }
    // (4) the stage's 4 wgmmas; then wait until only this stage is in flight.
    const uint64_t desc = b_desc(smem_u32(bs));
    wgmma_fence();
#pragma unroll
    for (int st = 0; st < 4; ++st) wgmma_rs<BM>(acc, a[st], desc + 2 * st);  // +32 bytes per k16
    wgmma_commit();
    wgmma_wait<1>();
    ++it;
  };

  const float base = p.alpha * (p.s2 ? __ldg(p.s2) : 1.0f) * 64.0f;
  for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const int mt = tile % mtiles, nt = tile / mtiles;
#pragma unroll
    for (int i = 0; i < BM / 2; ++i) acc[i] = 0.0f;
    int kb = 0;
    for (; kb + 1 < nk; kb += 2) {
      stage(std::integral_constant<int, 0>());
      stage(std::integral_constant<int, 1>());
    }
    if (kb < nk) stage(std::integral_constant<int, 0>());
    wgmma_wait<0>();
#pragma unroll
    for (int i = 0; i < BM / 2; ++i) fence_operand(acc[i]);

    // Epilogue. D fragment: acc[4i + 2h + e] = (row r0 + 8h, token 8i + 2c + e).
    const int n0 = nt * kBN + r0, n1 = n0 + 8;
    const float bias0 = p.bias && n0 < N ? bf16_bits_to_float(__ldg(p.bias + n0)) : 0.0f;
    const float bias1 = p.bias && n1 < N ? bf16_bits_to_float(__ldg(p.bias + n1)) : 0.0f;
#pragma unroll
    for (int i = 0; i < BM / 8; ++i)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int m = mt * BM + 8 * i + 2 * c + e;
        if (m >= M) continue;
        const float scale = base * __ldg(p.row_scale + m);
        uint16_t* yrow = p.y + size_t(m) * unsigned(N);
        if (n0 < N) yrow[n0] = float_to_bf16_bits(acc[4 * i + e] * scale + bias0);
        if (n1 < N) yrow[n1] = float_to_bf16_bits(acc[4 * i + 2 + e] * scale + bias1);
      }
  }
#else
  __trap();  // never launched: the host dispatches this kernel only on sm_90a builds and GPUs
#endif
}

// ---- the whitelist ----------------------------------------------------------------------
#define W4A8_WGMMA_CONFIGS(X) X(16, 128) X(16, 256) X(16, 64) X(32, 128) X(32, 256) X(32, 64)
#define W4A8_STR2(x) #x
#define W4A8_STR(x) W4A8_STR2(x)
#define W4A8_WGMMA_ENTRY(G, BM) {G, BM, "wgmma_exact_bm" W4A8_STR(BM) "_g" W4A8_STR(G)},
const WgmmaConfig kConfigs[] = {W4A8_WGMMA_CONFIGS(W4A8_WGMMA_ENTRY)};
using KernelFn = void (*)(const CUtensorMap, const CUtensorMap, const GemmParams);
#define W4A8_WGMMA_FN(G, BM) &wgmma_exact_kernel<G, BM>,
const KernelFn kKernels[] = {W4A8_WGMMA_CONFIGS(W4A8_WGMMA_FN)};
#define W4A8_WGMMA_SMEM(G, BM) Layout<BM>::kDynamicSmem,
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
               uint32_t box_rows, CUtensorMapSwizzle swizzle) {
  auto fn = encode_fn();
  if (!fn) return false;
  const cuuint64_t dims[2] = {cols, rows};
  const cuuint64_t strides[1] = {cols};
  const cuuint32_t box[2] = {box_cols, box_rows};
  const cuuint32_t elem[2] = {1, 1};
  return fn(map, CU_TENSOR_MAP_DATA_TYPE_UINT8, 2, const_cast<void*>(base), dims, strides, box, elem,
            CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
            CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

}  // namespace

int wgmma_config_count() { return kNumConfigs; }
const WgmmaConfig& wgmma_config(int index) { return kConfigs[index]; }

bool wgmma_supported(const GemmParams& p) {
  // TMA: 16-byte aligned bases (the API asks for it) and row strides that are multiples of 16
  // bytes (packed weights K/2); 32-bit tile and coordinate arithmetic.
  return p.K % 32 == 0 && p.K > 0 && (reinterpret_cast<uintptr_t>(p.w) % 16) == 0 &&
         (reinterpret_cast<uintptr_t>(p.x) % 16) == 0 && p.M < (int64_t(1) << 31) &&
         p.N < (int64_t(1) << 31) && p.K < (int64_t(1) << 31) &&
         ((p.M + 63) / 64) * ((p.N + kBN - 1) / kBN) < (int64_t(1) << 31);
}

cudaError_t launch_wgmma(int index, const GemmParams& p, int device, int sm_count, cudaStream_t stream) {
  if (index < 0 || index >= kNumConfigs || !wgmma_supported(p)) return cudaErrorInvalidValue;
  const WgmmaConfig& c = kConfigs[index];
  if (p.M == 0 || p.N == 0) return cudaSuccess;
  CUtensorMap wmap, xmap;
  if (!encode_2d(&wmap, p.w, uint64_t(p.K / 2), uint64_t(p.N), kBK / 2, kBN, CU_TENSOR_MAP_SWIZZLE_NONE) ||
      !encode_2d(&xmap, p.x, uint64_t(p.K), uint64_t(p.M), kBK, c.bm, CU_TENSOR_MAP_SWIZZLE_64B))
    return cudaErrorInvalidValue;
  // The dynamic shared-memory opt-in is per kernel and device: once per config and device
  // (ordinals >= 64 set it on every call).
  static std::atomic<uint64_t> attr_set[kNumConfigs];
  const uint64_t bit = device >= 0 && device < 64 ? uint64_t(1) << device : 0;
  if (!bit || !(attr_set[index].load(std::memory_order_acquire) & bit)) {
    const cudaError_t err = cudaFuncSetAttribute(reinterpret_cast<const void*>(kKernels[index]),
                                                 cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem[index]);
    if (err != cudaSuccess) return err;
    attr_set[index].fetch_or(bit, std::memory_order_acq_rel);
  }
  const int64_t tiles = ((p.M + c.bm - 1) / c.bm) * ((p.N + kBN - 1) / kBN);
  const int64_t grid = tiles < sm_count ? tiles : sm_count;  // persistent: one CTA per SM
  kKernels[index]<<<static_cast<unsigned>(grid), kThreads, kSmem[index], stream>>>(wmap, xmap, p);
  return cudaGetLastError();
}

}  // namespace kernels
}  // namespace w4a8
