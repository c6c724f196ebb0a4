// What the probes share: a 1 GB buffer walked in 256 MB windows (each launch reads a window
// the previous ones did not, so nothing comes from L2), event timing over 40 launches after 3
// warm-up ones, and the plain streaming read (the benchmark's read floor).
#ifndef W4A8_BENCH_PROBES_PROBE_UTIL_CUH_
#define W4A8_BENCH_PROBES_PROBE_UTIL_CUH_

#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>

#include "kernels/common.cuh"

namespace probe {

// Plain 16-byte loads, 4 in flight per thread, grid-strided.
__global__ void __launch_bounds__(512) plain_read(const uint4* p, size_t n, uint32_t* sink) {
  uint32_t acc = 0;
  const size_t stride = size_t(gridDim.x) * blockDim.x;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i + 3 * stride < n; i += 4 * stride) {
    const uint4 a = w4a8::kernels::ld_stream_16(p + i), b = w4a8::kernels::ld_stream_16(p + i + stride);
    const uint4 c = w4a8::kernels::ld_stream_16(p + i + 2 * stride), d = w4a8::kernels::ld_stream_16(p + i + 3 * stride);
    acc ^= a.x ^ b.y ^ c.z ^ d.w;
  }
  if (acc == 0x9E3779B9u) *sink = acc;
}

struct Bench {
  static constexpr size_t kTotal = size_t(1) << 30, kWindow = size_t(256) << 20;
  uint8_t* buf = nullptr;
  uint32_t* sink = nullptr;
  int sms = 0;
  cudaEvent_t e0, e1;

  explicit Bench(int fill) {
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
    cudaMalloc(&buf, kTotal);
    cudaMalloc(&sink, 4);
    cudaMemset(buf, fill, kTotal);
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
  }
  // Microseconds per launch of launch(window), printed with the bandwidth of `bytes`.
  template <class Launch>
  void time(const char* name, Launch launch, size_t bytes) {
    for (int w = 0; w < 3; ++w) launch(buf + (w % 4) * kWindow);
    cudaEventRecord(e0);
    const int reps = 40;
    for (int r = 0; r < reps; ++r) launch(buf + (r % 4) * kWindow);
    cudaEventRecord(e1);
    cudaEventSynchronize(e1);
    float ms = 0;
    cudaEventElapsedTime(&ms, e0, e1);
    const double us = 1000.0 * ms / reps;
    printf("%-52s %8.2f us  %7.0f GB/s  %s\n", name, us, bytes / us / 1e3, cudaGetErrorString(cudaGetLastError()));
  }
  // The read floor of `bytes`: plain_read with 512 threads x 4 CTAs per SM at most.
  void floor(size_t bytes, const char* name) {
    time(name, [&](const uint8_t* p) {
      size_t n = bytes / 16, blocks = (n + 511) / 512;
      if (blocks > size_t(sms) * 4) blocks = size_t(sms) * 4;
      plain_read<<<blocks, 512>>>(reinterpret_cast<const uint4*>(p), n, sink);
    }, bytes);
  }
};

}  // namespace probe

#endif  // W4A8_BENCH_PROBES_PROBE_UTIL_CUH_
