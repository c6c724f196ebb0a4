// The benchmark's read floor: a plain streaming read of `bytes` bytes (16-byte loads, a
// grid of a few CTAs per SM, nothing else), timed exactly like the GEMMs. What it takes is
// the least time any kernel can need to read the same weights on this GPU.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace {

__global__ void __launch_bounds__(512) read_kernel(const uint4* __restrict__ p, size_t n, uint32_t* sink) {
  uint32_t acc = 0;
  const size_t stride = size_t(gridDim.x) * blockDim.x;
  size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  // Four independent loads in flight per thread per iteration.
  for (; i + 3 * stride < n; i += 4 * stride) {
    uint4 a, b, c, d;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(a.x), "=r"(a.y), "=r"(a.z), "=r"(a.w) : "l"(p + i));
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(b.x), "=r"(b.y), "=r"(b.z), "=r"(b.w) : "l"(p + i + stride));
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(c.x), "=r"(c.y), "=r"(c.z), "=r"(c.w) : "l"(p + i + 2 * stride));
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(d.x), "=r"(d.y), "=r"(d.z), "=r"(d.w) : "l"(p + i + 3 * stride));
    acc ^= a.x ^ a.y ^ a.z ^ a.w ^ b.x ^ b.y ^ b.z ^ b.w ^ c.x ^ c.y ^ c.z ^ c.w ^ d.x ^ d.y ^ d.z ^ d.w;
  }
  for (; i < n; i += stride) {
    const uint4 a = __ldg(p + i);
    acc ^= a.x ^ a.y ^ a.z ^ a.w;
  }
  if (acc == 0x9E3779B9u) *sink = acc;  // keeps the loads alive; practically never stores
}

}  // namespace

extern "C" __attribute__((visibility("default"))) int w4a8_bench_read(const void* p, size_t bytes, void* sink,
                                                                      void* stream) {
  int dev = 0, sms = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  const size_t n = bytes / 16;
  const int threads = 512;
  size_t blocks = (n + threads - 1) / threads;
  const size_t cap = size_t(sms) * 4;
  if (blocks > cap) blocks = cap;
  if (blocks == 0) blocks = 1;
  read_kernel<<<unsigned(blocks), threads, 0, static_cast<cudaStream_t>(stream)>>>(
      static_cast<const uint4*>(p), n, static_cast<uint32_t*>(sink));
  return static_cast<int>(cudaGetLastError());
}
