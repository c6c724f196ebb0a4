// Probe: can bulk copies (cp.async.bulk, sm_90+) into a shared-memory ring feed the decode
// GEMM's dequantize + mma.sync work at the read floor, where the register kernel cannot?
//
// Why (BENCHMARKS.md, session 4): the register kernel keeps only ~32 KB of weights in flight
// per SM (two 1 KB batches per warp; a third spills), runs at 1.4-2x the read floor and takes
// the same time on an H200 whose floor is 20-25% lower. A bulk copy moves kilobytes per
// instruction with no per-thread registers or address math, so a ring can hold 100+ KB per SM.
//
// What it runs (M = 1, tiled weights: every 1 KB chunk is 16 rows x 128 k, two 512-byte
// tiles): one producer thread copies STAGE bytes per stage into a ring of S stages (mbarrier
// full/empty pairs); C consumer warps take the stage's chunks round robin and do the register
// kernel's per-chunk work on them -- two 16-byte shared loads per thread, the exact E2M1 ->
// FP16 dequantization with a block scale, 16 mma.sync m16n8k16, one 32-byte activation load
// from L2 -- with fake activations and scales (the sums are only kept alive, not checked).
// Variants: the same ring without the consumer work (the ring's own ceiling), and plain
// 16-byte loads (the benchmark's read floor). Sizes: the decode shapes' NVFP4 bytes.
//   built as <build>/bench/w4a8_probe_bulk_stream; run it on an sm_90 GPU.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>

#include "kernels/common.cuh"
#include "kernels/mbarrier.cuh"
#include "probe_util.cuh"

using namespace w4a8::kernels;

namespace {

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
__device__ __forceinline__ void bulk_copy(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(dst),
      "l"(src), "r"(bytes), "r"(bar)
      : "memory");
}
#endif

// One CTA per SM streams `per_cta` contiguous bytes. COMPUTE: the consumers do the GEMM work.
template <int S, int STAGE, int C, bool COMPUTE>
__global__ void __launch_bounds__(32 * (C + 1), 1)
    bulk_ring(const uint8_t* w, size_t per_cta, const uint8_t* x, uint32_t x_mask, uint32_t* sink) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  extern __shared__ __align__(128) uint8_t ring[];
  __shared__ __align__(8) uint64_t bars[2 * S];  // full[S], empty[S]
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const uint8_t* src = w + blockIdx.x * per_cta;
  const int stages = static_cast<int>(per_cta / STAGE);
  auto full = [&](int s) { return smem_u32(&bars[s]); };
  auto empty = [&](int s) { return smem_u32(&bars[S + s]); };
  if (threadIdx.x == 0) {
    for (int s = 0; s < S; ++s) {
      mbar_init(full(s), 1);
      mbar_init(empty(s), C * 32);
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncthreads();
  if (warp == 0) {  // producer
    if (lane == 0)
      for (int i = 0; i < stages; ++i) {
        const int s = i % S;
        mbar_wait(empty(s), ((i / S) & 1) ^ 1);
        mbar_expect_tx(full(s), STAGE);
        bulk_copy(smem_u32(ring + s * STAGE), src + size_t(i) * STAGE, STAGE, full(s));
      }
    return;
  }
  const int cw = warp - 1, g = lane >> 2, t = lane & 3;
  float acc[4] = {0.f, 0.f, 0.f, 0.f};
  uint32_t xor_acc = 0;
  constexpr int kChunks = STAGE / 1024;
  for (int i = 0; i < stages; ++i) {
    const int s = i % S;
    mbar_wait(full(s), (i / S) & 1);
    for (int c = cw; c < kChunks; c += C) {
      // Thread (g, t): 16 bytes of rows g and g + 8 (tile t / 2, bytes (t % 2) * 16 of the row).
      const uint8_t* chunk = ring + s * STAGE + c * 1024 + (t >> 1) * 512 + (t & 1) * 16;
      const uint4 wa = *reinterpret_cast<const uint4*>(chunk + g * 32);
      const uint4 wb = *reinterpret_cast<const uint4*>(chunk + (g + 8) * 32);
      if constexpr (COMPUTE) {
        const uint32_t k = (uint32_t(i) * kChunks + c) * 128u + t * 32u;
        const uint4 x0 = __ldg(reinterpret_cast<const uint4*>(x + (k & x_mask)));
        const uint4 x1 = __ldg(reinterpret_cast<const uint4*>(x + ((k + 16) & x_mask)));
        const uint32_t xw[8] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w};
        const uint32_t f0 = e4m3x2_to_f16x2(prmt(wa.x, 0u, 0x0000u)), f1 = e4m3x2_to_f16x2(prmt(wb.x, 0u, 0x0000u));
        const uint32_t qa[4] = {wa.x, wa.y, wa.z, wa.w}, qb[4] = {wb.x, wb.y, wb.z, wb.w};
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const uint32_t lo0 = e2m1_lo_nibbles_to_e4m3(qa[j]), hi0 = e2m1_hi_nibbles_to_e4m3(qa[j]);
          const uint32_t lo1 = e2m1_lo_nibbles_to_e4m3(qb[j]), hi1 = e2m1_hi_nibbles_to_e4m3(qb[j]);
          const uint32_t ev = prmt(xw[2 * j], xw[2 * j + 1], 0x6420), od = prmt(xw[2 * j], xw[2 * j + 1], 0x7531);
          mma_f16_16816(acc, hmul2(e4m3x2_to_f16x2(lo0), f0), hmul2(e4m3x2_to_f16x2(lo1), f1),
                        hmul2(e4m3x2_hi_to_f16x2(lo0), f0), hmul2(e4m3x2_hi_to_f16x2(lo1), f1),
                        e4m3x2_to_f16x2(ev), e4m3x2_hi_to_f16x2(ev));
          mma_f16_16816(acc, hmul2(e4m3x2_to_f16x2(hi0), f0), hmul2(e4m3x2_to_f16x2(hi1), f1),
                        hmul2(e4m3x2_hi_to_f16x2(hi0), f0), hmul2(e4m3x2_hi_to_f16x2(hi1), f1),
                        e4m3x2_to_f16x2(od), e4m3x2_hi_to_f16x2(od));
        }
      } else {
        xor_acc ^= wa.x ^ wb.w;
      }
    }
    mbar_arrive(empty(s));
  }
  if (acc[0] + acc[1] + acc[2] + acc[3] == 1234.5f || xor_acc == 0x9E3779B9u) *sink = xor_acc + 1;
#else
  __trap();  // sm_90+ only; main() checks the device first
#endif
}

}  // namespace

int main() {
  int major = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0);
  if (major < 9) {
    printf("needs an sm_90+ GPU (bulk copies); this one is sm_%d\n", major * 10);
    return 0;
  }
  probe::Bench bench(0x35);
  const int sms = bench.sms;
  uint8_t* x;
  cudaMalloc(&x, 1 << 16);
  cudaMemset(x, 0x38, 1 << 16);
  for (const size_t bytes : {size_t(18874368), size_t(37748736), size_t(201326592)}) {
    printf("-- %zu bytes\n", bytes);
    bench.floor(bytes, "plain 16B loads, 4/thread, 512 thr x 4/SM (floor)");
    auto go = [&](auto kern, int stages, int stage_bytes, int consumers, const char* name) {
      const size_t per = bytes / sms / stage_bytes * stage_bytes;
      const int smem = stages * stage_bytes;
      cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
      bench.time(name, [&](const uint8_t* p) { kern<<<sms, 32 * (consumers + 1), smem>>>(p, per, x, 0x7FF0u, bench.sink); },
                 per * sms);
    };
    go(bulk_ring<8, 16384, 8, false>, 8, 16384, 8, "bulk ring 8 x 16 KB, 8 warps, no compute");
    go(bulk_ring<8, 16384, 8, true>, 8, 16384, 8, "bulk ring 8 x 16 KB, 8 warps, dequant + mma");
    go(bulk_ring<12, 16384, 16, true>, 12, 16384, 16, "bulk ring 12 x 16 KB, 16 warps, dequant + mma");
    go(bulk_ring<16, 8192, 8, true>, 16, 8192, 8, "bulk ring 16 x 8 KB, 8 warps, dequant + mma");
    go(bulk_ring<6, 32768, 16, true>, 6, 32768, 16, "bulk ring 6 x 32 KB, 16 warps, dequant + mma");
  }
  return 0;
}
