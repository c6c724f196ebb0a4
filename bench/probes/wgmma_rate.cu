// Probe: how many SM clocks one FP16 wgmma m64nNk16 (FP32 accumulation) occupies at N = 64,
// 128 and 256, with A from registers (RS: what the prefill kernel's swap-AB tiles issue, N =
// the token count) or from shared memory (SS), one or two independent accumulators per
// warpgroup and one or two warpgroups per SM.
//
// Why (BENCHMARKS.md, session 10): the wgmma kernel's 64-, 128- and 256-token tiles take ~340,
// ~500 and ~830 ns per 64-k stage (8 wgmmas per SM), ~84, ~124 and ~205 clocks per wgmma
// against 32, 64 and 128 of tensor math, and neither more warps, deeper rings nor two
// accumulators changed that. If a lone wgmma stream shows the same clocks, the tensor pipe's
// rate at small N is the 64-token kernel's ceiling and only larger N (more tokens per wgmma,
// or tokens as M with N = channels) can lift it; if it shows ~N/2, the kernel loses the time
// elsewhere.
//
// What it runs: one CTA per SM, W = 1 or 2 warpgroups, each issuing `iters` groups of
// 4 k16 steps x C accumulators (the kernel's 64-k stage: 4 k16 steps on one accumulator),
// wgmma.fence before and commit after each group, then wait_group 0 (every group waited out,
// a latency chain) or wait_group 1 (one group in flight while the next issues: the kernel's
// schedule). Operands are fixed FP16 tiles in shared memory (128-byte swizzle, K-major, the
// kernel's descriptors); the values do not matter, the sums are only kept alive. Printed: SM
// clocks per wgmma per warpgroup and per SM (median over CTAs), and the tensor pipe's share
// (N / 2 clocks per m64nNk16 at 2048 FP16 FMA per clock per SM, the H100's dense rate).
//   built as <build>/bench/w4a8_probe_wgmma_rate; run it on an sm_90a GPU.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <type_traits>

#include "wgmma_probe.cuh"

namespace {

constexpr int kATileBytes = 64 * 128;  // 64 rows x 64 k of FP16 (one 128-byte swizzle row each)

#if defined(PROBE_WGMMA)
using namespace w4a8::kernels;

template <int N, bool SS>
__device__ __forceinline__ void mma(float (&d)[N / 2], const uint32_t (&a)[4], uint32_t sa, uint32_t sb) {
  if constexpr (SS) {
    if constexpr (N == 64) wgmma_m64n64k16_ss(d, wgmma_smem_desc(sa), wgmma_smem_desc(sb), 1);
    else if constexpr (N == 128) wgmma_m64n128k16_ss(d, wgmma_smem_desc(sa), wgmma_smem_desc(sb), 1);
    else wgmma_m64n256k16_ss(d, wgmma_smem_desc(sa), wgmma_smem_desc(sb), 1);
  } else {
    if constexpr (N == 64) wgmma_m64n64k16_rs(d, a, wgmma_smem_desc(sb), 1);
    else if constexpr (N == 128) wgmma_m64n128k16_rs(d, a, wgmma_smem_desc(sb), 1);
    else wgmma_m64n256k16_rs(d, a, wgmma_smem_desc(sb), 1);
  }
}
#endif

template <int N, bool SS, int C>
__global__ void __launch_bounds__(256, 1) wgmma_rate(int iters, int depth, float* sink, unsigned long long* spans) {
#if defined(PROBE_WGMMA)
  extern __shared__ uint8_t smem_raw[];
  const uint32_t raw = static_cast<uint32_t>(__cvta_generic_to_shared(smem_raw));
  const uint32_t sa = (raw + 1023) & ~1023u, sb = sa + kATileBytes;
  uint32_t* words = reinterpret_cast<uint32_t*>(smem_raw + (sa - raw));
  for (int i = threadIdx.x; i < (kATileBytes + N * 128) / 4; i += blockDim.x)
    words[i] = 0x2C002C00u | ((i * 0x9E3779B9u) & 0x00FF00FFu);  // FP16 near 1/16
  asm volatile("fence.proxy.async.shared::cta;" ::: "memory");  // generic writes -> wgmma reads
  __syncthreads();
  const uint32_t a[4] = {0x2C002C00u ^ threadIdx.x, 0x2C012C01u, 0x2C022C02u, 0x2C032C03u};
  float acc[C][N / 2];
#pragma unroll
  for (int c = 0; c < C; ++c)
#pragma unroll
    for (int i = 0; i < N / 2; ++i) acc[c][i] = 0.f;
  const unsigned long long t0 = clock64();
  for (int it = 0; it < iters; ++it) {
    asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#pragma unroll
    for (int kk = 0; kk < 4; ++kk)
#pragma unroll
      for (int c = 0; c < C; ++c) mma<N, SS>(acc[c], a, sa + kk * 32, sb + kk * 32);
    asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
    if (depth == 0) asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
    else asm volatile("wgmma.wait_group.sync.aligned 1;" ::: "memory");
  }
  asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
  const unsigned long long t1 = clock64();
  float s = 0.f;
#pragma unroll
  for (int c = 0; c < C; ++c)
#pragma unroll
    for (int i = 0; i < N / 2; ++i) s += acc[c][i];
  if (s == 1.2345f) *sink = s;
  if (threadIdx.x % 128 == 0) spans[blockIdx.x * 4 + threadIdx.x / 128] = t1 - t0;
#else
  if (threadIdx.x == 0 && blockIdx.x == 0) *sink = -1.f;  // not an sm_90a build: main() says so
#endif
}


// Part 2: one 64-k stage of the exact kernel's consumers (gemm_wgmma.cu, canonical weights,
// 64 output channels per warpgroup, N = the token tile), with its data already in shared
// memory: mode 0 the 4 wgmmas only (A fragments fixed), mode 1 the dequantization only (two
// 8-byte weight loads per thread, E2M1 -> E4M3 -> FP16 times the block scale: 32 weights into
// the 16 A registers of the next stage), mode 2 both, as the kernel interleaves them (the
// stage's fragments made, then its wgmmas issued behind the previous stage's, wait_group 1).
// If mode 2 costs about the larger of modes 0 and 1, the two overlap; about their sum, they
// do not, whatever the number of warps.
template <int N, int MODE>
__global__ void __launch_bounds__(256, 1) stage_rate(int iters, float* sink, unsigned long long* spans) {
#if defined(PROBE_WGMMA)
  extern __shared__ uint8_t smem_raw[];
  const uint32_t raw = static_cast<uint32_t>(__cvta_generic_to_shared(smem_raw));
  const uint32_t sb = (raw + 1023) & ~1023u, sw = sb + N * 128;  // B tile, then 8 weight stages
  uint32_t* words = reinterpret_cast<uint32_t*>(smem_raw + (sb - raw));
  for (int i = threadIdx.x; i < (N * 128 + 8 * 4096) / 4; i += blockDim.x)
    words[i] = 0x2C002C00u | ((i * 0x9E3779B9u) & 0x00FF00FFu);
  asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
  __syncthreads();
  const int wg = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31, g = lane >> 2, c = lane & 3;
  const uint32_t row = 64 * wg + 16 * warp + g;
  const uint32_t f0 = 0x3C003C00u ^ (lane << 1), f1 = 0x3C003C00u ^ lane;  // (sb, sb) as FP16 pairs
  uint32_t afrag[2][4][4];
#pragma unroll
  for (int p = 0; p < 2; ++p)
#pragma unroll
    for (int st = 0; st < 4; ++st)
#pragma unroll
      for (int j = 0; j < 4; ++j) afrag[p][st][j] = 0x2C002C00u + st + j + threadIdx.x;
  float acc[N / 2];
#pragma unroll
  for (int i = 0; i < N / 2; ++i) acc[i] = 0.f;
  uint32_t keep = 0;
  auto dequant = [&](uint32_t (&a)[4][4], int it) {
    probe::dequant_stage(a, sw + (it & 7) * 4096 + row * 32 + 8 * c, f0, f1);
  };
  auto one = [&](auto parity, int it) {
    constexpr int P = decltype(parity)::value;
    if constexpr (MODE != 0) dequant(afrag[P], it);
    if constexpr (MODE == 1) {
#pragma unroll
      for (int st = 0; st < 4; ++st) keep ^= afrag[P][st][0] ^ afrag[P][st][1] ^ afrag[P][st][2] ^ afrag[P][st][3];
    } else {
      asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#pragma unroll
      for (int st = 0; st < 4; ++st) mma<N, false>(acc, afrag[P][st], 0, sb + st * 32);
      asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
      asm volatile("wgmma.wait_group.sync.aligned 1;" ::: "memory");
    }
  };
  const unsigned long long t0 = clock64();
  for (int it = 0; it < iters; it += 2) {
    one(std::integral_constant<int, 0>(), it);
    one(std::integral_constant<int, 1>(), it + 1);
  }
  asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
  const unsigned long long t1 = clock64();
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < N / 2; ++i) s += acc[i];
  if (s == 1.2345f || keep == 0x12345678u) *sink = s + float(keep);
  if (threadIdx.x % 128 == 0) spans[blockIdx.x * 4 + threadIdx.x / 128] = t1 - t0;
#endif
}

template <int N, int MODE>
void run_stage(int sms, float* sink, unsigned long long* spans) {
  auto kernel = stage_rate<N, MODE>;
  const int smem = 1024 + N * 128 + 8 * 4096, iters = 2000;
  cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  kernel<<<sms, 256, smem>>>(iters, sink, spans);
  kernel<<<sms, 256, smem>>>(iters, sink, spans);
  if (cudaDeviceSynchronize() != cudaSuccess) {
    printf("stage N=%d mode %d: %s\n", N, MODE, cudaGetErrorString(cudaGetLastError()));
    return;
  }
  const unsigned long long span = probe::median_span(spans, sms, 4, 2);
  const char* what[] = {"4 wgmmas only", "dequantization only", "both (the kernel's stage)"};
  printf("stage, %3d tokens, 2 warpgroups: %-26s %7.1f clk per 64-k stage (tensor work %d)\n", N, what[MODE],
         double(span) / iters, 8 * N / 2);
}

template <int N, bool SS, int C>
void run(int sms, float* sink, unsigned long long* spans) {
  auto kernel = wgmma_rate<N, SS, C>;
  const int smem = 1024 + kATileBytes + N * 128;
  cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  const int iters = 2000;
  for (int depth = 0; depth <= 1; ++depth) {
    for (int w = 1; w <= 2; ++w) {
      kernel<<<sms, 128 * w, smem>>>(iters, depth, sink, spans);  // warm-up (clocks ramp)
      kernel<<<sms, 128 * w, smem>>>(iters, depth, sink, spans);
      if (cudaDeviceSynchronize() != cudaSuccess) {
        printf("m64n%dk16 %s: %s\n", N, SS ? "SS" : "RS", cudaGetErrorString(cudaGetLastError()));
        return;
      }
      const double per_wg = double(probe::median_span(spans, sms, 4, w)) / (double(iters) * 4 * C), per_sm = per_wg / w;
      printf("m64n%-3dk16 %s  acc %d  warpgroups %d  wait_group %d | %7.1f clk/wgmma/warpgroup %7.1f clk/wgmma/SM"
             "  tensor pipe %3.0f%%\n",
             N, SS ? "SS" : "RS", C, w, depth, per_wg, per_sm, 100.0 * (N / 2) / per_sm);
    }
  }
}

}  // namespace

int main() {
  const int sms = probe::sm90_sms("wgmma_rate");
  if (sms == 0) return 0;
  float* sink = nullptr;
  unsigned long long* spans = nullptr;
  cudaMalloc(&sink, 4);
  cudaMalloc(&spans, size_t(sms) * 4 * 8);
  float h_sink = 0.f;
  cudaMemset(sink, 0, 4);
  wgmma_rate<64, false, 1><<<1, 128, 1024 + kATileBytes + 64 * 128>>>(1, 0, sink, spans);
  cudaMemcpy(&h_sink, sink, 4, cudaMemcpyDeviceToHost);
  if (h_sink == -1.f) {
    printf("wgmma_rate: built without sm_90a (W4A8_CUDA_ARCHS must include 90a)\n");
    return 0;
  }
  run<64, false, 1>(sms, sink, spans);
  run<64, false, 2>(sms, sink, spans);
  run<64, true, 1>(sms, sink, spans);
  run<64, true, 2>(sms, sink, spans);
  run<128, false, 1>(sms, sink, spans);
  run<128, false, 2>(sms, sink, spans);
  run<128, true, 1>(sms, sink, spans);
  run<256, false, 1>(sms, sink, spans);
  run<256, true, 1>(sms, sink, spans);
  run_stage<64, 0>(sms, sink, spans);
  run_stage<64, 1>(sms, sink, spans);
  run_stage<64, 2>(sms, sink, spans);
  run_stage<128, 0>(sms, sink, spans);
  run_stage<128, 1>(sms, sink, spans);
  run_stage<128, 2>(sms, sink, spans);
  run_stage<256, 0>(sms, sink, spans);
  run_stage<256, 1>(sms, sink, spans);
  run_stage<256, 2>(sms, sink, spans);
  return 0;
}
