// Probe: issue rate of the instructions the dequantization is made of, per SM per clock.
//
// Why: the decode kernel issues ~4 instructions per weight at an IPC of ~1.9 of 4 (session 4's
// probe): either latency or one pipe's throughput bounds it. Its inner loop is E2M1 -> E4M3 bit
// operations (LOP3, SHF), cvt.rn.f16x2.e4m3x2 (F2FP), HMUL2 by the block scale and mma.sync.
// If F2FP issues at a quarter of the integer rate, the exact FP16 route through E4M3 costs
// more than a conversion made of integer operations only; this probe says which.
//
// What it runs: one CTA of 1024 threads per SM, each thread 8 independent chains of one
// instruction kind, 4096 iterations; the CTA's clock64 span gives thread-instructions per
// clock per SM (the SM's issue limit is 128: 4 schedulers x 32 lanes).
//   built as <build>/bench/w4a8_probe_alu_throughput; run it on an sm_89+ GPU.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>

#include "kernels/common.cuh"

using namespace w4a8::kernels;

namespace {

enum Op { kCvt, kPrmt, kLop3, kShf, kHmul2, kImad, kIadd3, kMix, kImadHi, kCvtImad };
const char* kNames[] = {"cvt.rn.f16x2.e4m3x2 (F2FP)", "prmt", "lop3", "shf.r", "hmul2 (f16x2)",
                        "imad.shl", "iadd3", "dequant mix: 3 lop/shf + 1 hmul2", "imad.hi (mul.hi.u32)",
                        "cvt.rn.f16x2.e4m3x2 + imad (not lop3)"};

template <int OP>
__device__ __forceinline__ uint32_t step(uint32_t v, uint32_t k) {
  uint32_t d;
  if constexpr (OP == kCvt) {
    d = e4m3x2_to_f16x2(v) ^ k;  // the xor keeps the chain alive (one extra LOP3 per step)
  } else if constexpr (OP == kPrmt) {
    asm volatile("prmt.b32 %0, %1, %2, 0x5140;" : "=r"(d) : "r"(v), "r"(k));
  } else if constexpr (OP == kLop3) {
    asm volatile("lop3.b32 %0, %1, %2, 0x1C1C1C1C, 0xf8;" : "=r"(d) : "r"(v), "r"(k));
  } else if constexpr (OP == kShf) {
    asm volatile("shf.r.wrap.b32 %0, %1, %1, %2;" : "=r"(d) : "r"(v), "r"(k));
  } else if constexpr (OP == kHmul2) {
    asm volatile("mul.rn.f16x2 %0, %1, %2;" : "=r"(d) : "r"(v), "r"(k));
  } else if constexpr (OP == kImad) {
    asm volatile("mad.lo.u32 %0, %1, 16, %2;" : "=r"(d) : "r"(v), "r"(k));
  } else if constexpr (OP == kIadd3) {
    asm volatile("add.u32 %0, %1, %2;" : "=r"(d) : "r"(v), "r"(k));
  } else if constexpr (OP == kImadHi) {
    asm volatile("mul.hi.u32 %0, %1, %2;" : "=r"(d) : "r"(v), "r"(k | 0x40000000u));
  } else if constexpr (OP == kCvtImad) {
    const uint32_t c = e4m3x2_to_f16x2(v);
    asm volatile("mad.lo.u32 %0, %1, 3, %2;" : "=r"(d) : "r"(c), "r"(k));
  } else {
    uint32_t a, b;
    asm volatile("shf.r.wrap.b32 %0, %1, %1, 3;" : "=r"(a) : "r"(v));
    asm volatile("lop3.b32 %0, %1, 0x0E000E00, %2, 0xf8;" : "=r"(b) : "r"(a), "r"(v));
    asm volatile("lop3.b32 %0, %1, %2, 0x80008000, 0x6a;" : "=r"(a) : "r"(b), "r"(k));
    asm volatile("mul.rn.f16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(k));
  }
  return d;
}

constexpr int kChains = 8, kIters = 4096;

template <int OP>
__global__ void __launch_bounds__(1024, 1) spin(uint32_t seed, uint32_t* sink, unsigned long long* cycles) {
  uint32_t v[kChains];
#pragma unroll
  for (int c = 0; c < kChains; ++c) v[c] = seed * (threadIdx.x + 7u * c) + c;
  const uint32_t k = seed ^ 0x3C003C00u;
  __syncthreads();
  const unsigned long long t0 = clock64();
  for (int i = 0; i < kIters; ++i) {
#pragma unroll
    for (int c = 0; c < kChains; ++c) v[c] = step<OP>(v[c], k);
  }
  __syncthreads();
  const unsigned long long t1 = clock64();
  uint32_t x = 0;
#pragma unroll
  for (int c = 0; c < kChains; ++c) x ^= v[c];
  if (x == 0x9E3779B9u) *sink = x;
  if (threadIdx.x == 0) cycles[blockIdx.x] = t1 - t0;
}

template <int OP>
void run(int sms, uint32_t* sink, unsigned long long* cycles) {
  spin<OP><<<sms, 1024>>>(12345u, sink, cycles);  // warm-up
  spin<OP><<<sms, 1024>>>(12345u, sink, cycles);
  unsigned long long host[1024] = {};
  cudaMemcpy(host, cycles, sizeof(unsigned long long) * sms, cudaMemcpyDeviceToHost);
  double mean = 0;
  for (int i = 0; i < sms; ++i) mean += double(host[i]) / sms;
  const double thread_instr = 1024.0 * kChains * kIters;
  printf("%-40s %7.1f thread-instr/clk/SM  (%s)\n", kNames[OP], thread_instr / mean,
         cudaGetErrorString(cudaGetLastError()));
}

}  // namespace

int main() {
  int sms = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  uint32_t* sink;
  unsigned long long* cycles;
  cudaMalloc(&sink, 4);
  cudaMalloc(&cycles, sizeof(unsigned long long) * 1024);
  printf("one CTA of 1024 threads per SM, %d chains x %d steps per thread; 128 = 4 schedulers x 32\n",
         kChains, kIters);
  run<kCvt>(sms, sink, cycles);
  run<kPrmt>(sms, sink, cycles);
  run<kLop3>(sms, sink, cycles);
  run<kShf>(sms, sink, cycles);
  run<kHmul2>(sms, sink, cycles);
  run<kImad>(sms, sink, cycles);
  run<kIadd3>(sms, sink, cycles);
  run<kMix>(sms, sink, cycles);
  run<kImadHi>(sms, sink, cycles);
  run<kCvtImad>(sms, sink, cycles);
  return 0;
}
