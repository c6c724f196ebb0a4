// Device reference GEMM: one thread per output, FP32 accumulation in k order, the same
// epilogue as the fast kernels. Slow on purpose; it lets the tests compare every element of
// large outputs (the CPU reference checks a sample of them) and it is a second, independent
// implementation of the weight decoding (table lookup instead of bit tricks).
#include <cuda_runtime.h>

#include "kernels/common.cuh"
#include "kernels/launch.hpp"
#include "w4a8/formats.hpp"

namespace w4a8 {
namespace kernels {
namespace {

__device__ __forceinline__ float e4m3_value(uint8_t b) {
  return __half2float(__half(__nv_cvt_fp8_to_halfraw(b, __NV_E4M3)));
}

__global__ void naive_kernel(const GemmParams p) {
  const int group = p.group;
  const int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (idx >= p.M * p.N) return;
  const int64_t m = idx / p.N, n = idx % p.N;
  const uint8_t* x = p.x + m * p.K;
  float acc = 0.0f;
  for (int64_t k = 0; k < p.K; ++k) {
    // Either layout through formats.hpp's offsets and word permutation (the fast kernels have
    // their own addressing and extraction).
    uint8_t wb;
    if (p.tiled) {
      const uint32_t t = *reinterpret_cast<const uint32_t*>(p.w + tiled_packed_offset(n, (k / 8) * 4, p.K));
      wb = uint8_t(canonical_word_from_tiled(t) >> (8 * ((k / 2) % 4)));
    } else {
      wb = p.w[n * (p.K / 2) + k / 2];
    }
    const uint8_t sb = p.sb[p.tiled ? tiled_scale_offset(n, k / group, p.K, group) : n * (p.K / group) + k / group];
    const float wv = e2m1_to_float(unpack_e2m1(wb, int(k & 1))) * e4m3_value(sb);
    acc = fmaf(e4m3_value(x[k]), wv, acc);
  }
  const float s2 = p.s2 ? *p.s2 : 1.0f;
  const float bias = p.bias ? bf16_bits_to_float(p.bias[n]) : 0.0f;
  p.y[idx] = float_to_bf16_bits(acc * (p.alpha * s2 * p.row_scale[m]) + bias);
}

}  // namespace

cudaError_t launch_naive(const GemmParams& p, cudaStream_t stream) {
  const int threads = 256;
  const int64_t blocks = (p.M * p.N + threads - 1) / threads;
  if (blocks > 0x7FFFFFFF) return cudaErrorInvalidConfiguration;
  naive_kernel<<<static_cast<unsigned>(blocks), threads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace kernels
}  // namespace w4a8
