// Probe: what makes the exact wgmma kernel's 64-k stage take ~1.4-1.8x the time of the same
// loads, conversions and wgmmas with their data already in shared memory?
//
// Why (BENCHMARKS.md, session 11): bench/probes/wgmma_rate.cu runs one consumer stage of
// gemm_wgmma.cu (two warpgroups, 64 channels each, N = the token tile) from fixed shared
// memory in 340 / 512 / 1024 clocks at 64 / 128 / 256 tokens; the kernel takes ~620 / ~885 /
// ~1420. This probe adds the kernel's surroundings one at a time to that stage:
//   scales  the two block-scale bytes per thread and stage from global memory, two stages
//           ahead, turned into the FP16 pairs of the multiply (ld.global.nc.L2::256B.u8, prmt,
//           cvt), instead of constants;
//   bars    a ring of stages with full / empty mbarriers: a producer thread arrives on
//           "full", every consumer thread waits on it and arrives on "empty" (256 arrives)
//           once the stage's wgmmas are done, the producer waits on "empty" before reuse;
//   copies  the producer fills each stage with bulk copies (cp.async.bulk + complete_tx):
//           4 KB of weights from a per-CTA stream (DRAM, as the kernel's weights) and the
//           token tile's FP16 activations (N x 128 bytes) from a buffer all CTAs share (L2,
//           as the kernel's activations).
// Printed: clocks per 64-k stage (median over CTAs, one CTA per SM), and the tensor time.
//   built as <build>/bench/w4a8_probe_wgmma_stage; run it on an sm_90a GPU.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <type_traits>

#include "wgmma_probe.cuh"

namespace {

constexpr int kScales = 1, kBars = 2, kCopies = 4;
constexpr int kIters = 2048;           // stages per CTA
constexpr int kWStage = 128 * 32;      // packed weights per stage: 128 rows x 64 k
constexpr int kWStream = kIters;       // weight stages per CTA: 1.1 GB in all, so from DRAM

template <int N>
__host__ __device__ constexpr int ring() {  // stages in the ring: what ~190 KB of shared memory holds
  return N == 256 ? 5 : N == 128 ? 9 : 15;
}
template <int N>
__host__ __device__ constexpr int stage_bytes() {
  return kWStage + N * 128;
}

#if defined(PROBE_WGMMA)
using namespace w4a8::kernels;
__device__ __forceinline__ void bulk_copy(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(dst),
               "l"(src), "r"(bytes), "r"(bar)
               : "memory");
}
template <int N>
__device__ __forceinline__ void mma_rs(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t dsc) {
  if constexpr (N == 64) wgmma_m64n64k16_rs(d, a, dsc, 1);
  else if constexpr (N == 128) wgmma_m64n128k16_rs(d, a, dsc, 1);
  else wgmma_m64n256k16_rs(d, a, dsc, 1);
}
#endif

// 384 threads as in the kernel: warpgroup 0 produces (one thread), 1 and 2 consume; setmaxnreg
// moves the registers to the consumers.
template <int N, int FLAGS>
__global__ void __launch_bounds__(384, 1) stage_probe(const uint8_t* wsrc, const uint8_t* xsrc, const uint8_t* scales,
                                                      float* sink, unsigned long long* spans) {
#if defined(PROBE_WGMMA)
  constexpr int R = ring<N>(), SB = stage_bytes<N>();
  constexpr bool kBarsOn = (FLAGS & kBars) != 0, kCopy = (FLAGS & kCopies) != 0;
  extern __shared__ uint8_t smem_raw[];
  const uint32_t raw = smem_u32(smem_raw);
  const uint32_t base = (raw + 1023) & ~1023u;
  const uint32_t bars = base + R * SB;  // full[R], empty[R]
  auto stage_w = [&](int s) { return base + s * SB; };
  auto stage_x = [&](int s) { return base + s * SB + kWStage; };
  auto full = [&](int s) { return bars + 8 * s; };
  auto empty = [&](int s) { return bars + 8 * (R + s); };
  uint32_t* words = reinterpret_cast<uint32_t*>(smem_raw + (base - raw));
  for (int i = threadIdx.x; i < R * SB / 4; i += blockDim.x) words[i] = 0x2C002C00u | ((i * 0x9E3779B9u) & 0x00FF00FFu);
  if (threadIdx.x == 0) {
    for (int s = 0; s < R; ++s) {
      mbar_init(full(s), 1);
      mbar_init(empty(s), 256);
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
  __syncthreads();

  if (threadIdx.x < 128) {  // producer
    asm volatile("setmaxnreg.dec.sync.aligned.u32 56;\n" ::: "memory");
    if (kBarsOn && threadIdx.x == 0) {
      const uint8_t* wcta = wsrc + size_t(blockIdx.x) * kWStream * kWStage;
      for (int it = 0; it < kIters; ++it) {
        const int s = it % R;
        mbar_wait(empty(s), ((it / R) & 1) ^ 1);
        if constexpr (kCopy) {
          mbar_expect_tx(full(s), SB);
          bulk_copy(stage_w(s), wcta + (it % kWStream) * kWStage, kWStage, full(s));
          bulk_copy(stage_x(s), xsrc + (it % 16) * (N * 128), N * 128, full(s));
        } else {
          mbar_arrive(full(s));
        }
      }
    }
    return;
  }

  asm volatile("setmaxnreg.inc.sync.aligned.u32 224;\n" ::: "memory");
  const int ct = threadIdx.x - 128;
  const int wg = ct >> 7, warp = (ct >> 5) & 3, lane = ct & 31, g = lane >> 2, c = lane & 3;
  const uint32_t row = 64 * wg + 16 * warp + g;
  const uint8_t* srow0 = scales + (size_t(blockIdx.x) * 128 + row) * 256;
  const uint8_t* srow1 = srow0 + 8 * 256;
  uint32_t afrag[2][4][4];
  uint32_t sc[2][2] = {{0x38u, 0x38u}, {0x38u, 0x38u}};  // E4M3 1.0
  float acc[N / 2];
#pragma unroll
  for (int i = 0; i < N / 2; ++i) acc[i] = 0.f;
  auto stage = [&](auto parity, int it) {
    constexpr int P = decltype(parity)::value;
    const int s = kBarsOn ? it % R : 0;
    uint32_t f0 = 0x3C003C00u ^ (lane << 1), f1 = 0x3C003C00u ^ lane;
    if constexpr ((FLAGS & kScales) != 0) {  // this stage's scales, then the loads two stages on
      f0 = e4m3x2_to_f16x2(prmt(sc[P][0], 0u, 0x0000u));
      f1 = e4m3x2_to_f16x2(prmt(sc[P][1], 0u, 0x0000u));
      const int grp = ((it + 2) * 4 + c) & 255;
      sc[P][0] = ld_u8_l2_256(srow0 + grp);
      sc[P][1] = ld_u8_l2_256(srow1 + grp);
    }
    if constexpr (kBarsOn) mbar_wait(full(s), (it / R) & 1);
    probe::dequant_stage(afrag[P], stage_w(s) + row * 32 + 8 * c, f0, f1);
    asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
    const uint64_t d = wgmma_smem_desc(stage_x(s));
#pragma unroll
    for (int st = 0; st < 4; ++st) mma_rs<N>(acc, afrag[P][st], d + 2 * st);
    asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
    asm volatile("wgmma.wait_group.sync.aligned 1;" ::: "memory");
    if constexpr (kBarsOn)
      if (it > 0) mbar_arrive(empty((it - 1) % R));
  };
  const unsigned long long t0 = clock64();
  for (int it = 0; it < kIters; it += 2) {
    stage(std::integral_constant<int, 0>(), it);
    stage(std::integral_constant<int, 1>(), it + 1);
  }
  asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
  const unsigned long long t1 = clock64();
  float sum = 0.f;
#pragma unroll
  for (int i = 0; i < N / 2; ++i) sum += acc[i];
  if (sum == 1.2345f) *sink = sum;
  if (ct % 128 == 0) spans[blockIdx.x * 2 + ct / 128] = t1 - t0;
#else
  if (threadIdx.x == 0 && blockIdx.x == 0) *sink = -1.f;
#endif
}

template <int N, int FLAGS>
void run(int sms, const uint8_t* w, const uint8_t* x, const uint8_t* sc, float* sink, unsigned long long* spans) {
  auto kernel = stage_probe<N, FLAGS>;
  const int smem = 1024 + ring<N>() * stage_bytes<N>() + 16 * ring<N>();
  cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  kernel<<<sms, 384, smem>>>(w, x, sc, sink, spans);
  kernel<<<sms, 384, smem>>>(w, x, sc, sink, spans);
  if (cudaDeviceSynchronize() != cudaSuccess) {
    printf("N=%d flags %d: %s\n", N, FLAGS, cudaGetErrorString(cudaGetLastError()));
    return;
  }
  const unsigned long long span = probe::median_span(spans, sms, 2, 2);
  printf("%3d tokens | scales %-3s bars %-3s copies %-3s | %7.1f clk per 64-k stage (tensor %d)\n", N,
         FLAGS & kScales ? "yes" : "no", FLAGS & kBars ? "yes" : "no", FLAGS & kCopies ? "yes" : "no",
         double(span) / kIters, 4 * N);
}

template <int N>
void run_all(int sms, const uint8_t* w, const uint8_t* x, const uint8_t* sc, float* sink, unsigned long long* spans) {
  run<N, 0>(sms, w, x, sc, sink, spans);
  run<N, kScales>(sms, w, x, sc, sink, spans);
  run<N, kBars>(sms, w, x, sc, sink, spans);
  run<N, kBars | kCopies>(sms, w, x, sc, sink, spans);
  run<N, kScales | kBars | kCopies>(sms, w, x, sc, sink, spans);
}

}  // namespace

int main() {
  const int sms = probe::sm90_sms("wgmma_stage");
  if (sms == 0) return 0;
  uint8_t *w = nullptr, *x = nullptr, *sc = nullptr;
  float* sink = nullptr;
  unsigned long long* spans = nullptr;
  cudaMalloc(&w, size_t(sms) * kWStream * kWStage);  // per-CTA weight streams
  cudaMalloc(&x, 16 * 256 * 128);                     // activation tiles every CTA reads
  cudaMalloc(&sc, size_t(sms) * 128 * 256);           // per-row block scales
  cudaMalloc(&sink, 4);
  cudaMalloc(&spans, size_t(sms) * 2 * 8);
  cudaMemset(w, 0x35, size_t(sms) * kWStream * kWStage);
  cudaMemset(x, 0x2C, 16 * 256 * 128);
  cudaMemset(sc, 0x38, size_t(sms) * 128 * 256);
  cudaMemset(sink, 0, 4);
  const int smem64 = 1024 + ring<64>() * stage_bytes<64>() + 16 * ring<64>();
  cudaFuncSetAttribute(stage_probe<64, 0>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem64);
  stage_probe<64, 0><<<1, 384, smem64>>>(w, x, sc, sink, spans);
  cudaDeviceSynchronize();
  float h_sink = 0.f;
  cudaMemcpy(&h_sink, sink, 4, cudaMemcpyDeviceToHost);
  if (h_sink == -1.f) {
    printf("wgmma_stage: built without sm_90a (W4A8_CUDA_ARCHS must include 90a)\n");
    return 0;
  }
  run_all<64>(sms, w, x, sc, sink, spans);
  run_all<128>(sms, w, x, sc, sink, spans);
  run_all<256>(sms, w, x, sc, sink, spans);
  return 0;
}
