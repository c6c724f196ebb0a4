// What the wgmma probes (wgmma_rate.cu, wgmma_stage.cu) share: the GPU check, the kernel's
// consumer-stage dequantization (made of its own pieces, kernels/common.cuh), and the median
// over CTAs.
#ifndef W4A8_BENCH_PROBES_WGMMA_PROBE_CUH_
#define W4A8_BENCH_PROBES_WGMMA_PROBE_CUH_

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define PROBE_WGMMA 1
#include "kernels/common.cuh"
#include "kernels/mbarrier.cuh"
#include "kernels/wgmma_ops.cuh"
#endif

namespace probe {

// The SM count of an sm_90 GPU, or 0 after saying why the probe cannot run here.
inline int sm90_sms(const char* name) {
  int sms = 0, major = 0, minor = 0, devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    printf("%s: no GPU here (needs an sm_90a GPU)\n", name);
    return 0;
  }
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0);
  if (major != 9 || minor != 0) {
    printf("%s: needs an sm_90 GPU (this one is sm_%d%d)\n", name, major, minor);
    return 0;
  }
  return sms;
}

// Median over CTAs of each CTA's longest warpgroup span: spans[b * stride + i], i < used.
inline unsigned long long median_span(const unsigned long long* d_spans, int sms, int stride, int used) {
  std::vector<unsigned long long> h(size_t(sms) * stride), per_cta;
  cudaMemcpy(h.data(), d_spans, h.size() * 8, cudaMemcpyDeviceToHost);
  for (int b = 0; b < sms; ++b) per_cta.push_back(*std::max_element(&h[b * stride], &h[b * stride] + used));
  std::nth_element(per_cta.begin(), per_cta.begin() + sms / 2, per_cta.end());
  return per_cta[sms / 2];
}

#if defined(PROBE_WGMMA)
// The exact kernel's consumer work for one 64-k stage of canonical weights (gemm_wgmma.cu
// dequant_exact): two 8-byte loads of rows r0 and r0 + 8 at `at` and `at + 256`, E2M1 -> E4M3
// -> FP16 times the rows' block scales f0 / f1 (FP16 pairs), into the 4 k16 steps' fragments.
__device__ __forceinline__ void dequant_stage(uint32_t (&a)[4][4], uint32_t at, uint32_t f0, uint32_t f1) {
  using namespace w4a8::kernels;
  uint2 wa, wb;
  asm volatile("ld.shared.v2.u32 {%0, %1}, [%2];" : "=r"(wa.x), "=r"(wa.y) : "r"(at) : "memory");
  asm volatile("ld.shared.v2.u32 {%0, %1}, [%2];" : "=r"(wb.x), "=r"(wb.y) : "r"(at + 256) : "memory");
#pragma unroll
  for (int word = 0; word < 2; ++word) {
    const uint32_t qa = word ? wa.y : wa.x, qb = word ? wb.y : wb.x;
    const uint32_t eva = e2m1_lo_nibbles_to_e4m3(qa), oda = e2m1_hi_nibbles_to_e4m3(qa);
    const uint32_t evb = e2m1_lo_nibbles_to_e4m3(qb), odb = e2m1_hi_nibbles_to_e4m3(qb);
#pragma unroll
    for (int odd = 0; odd < 2; ++odd) {
      e4m3_rows_to_wgmma_a(a[2 * word + odd], odd ? oda : eva, odd ? odb : evb, f0, f1);
    }
  }
}
#endif

}  // namespace probe

#endif  // W4A8_BENCH_PROBES_WGMMA_PROBE_CUH_
