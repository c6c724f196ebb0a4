// Canonical <-> tiled weight layout (w4a8_prepack_weight / w4a8_unprepack_weight; the layout,
// tile order and the bit permutation within each word, is defined once, in
// include/w4a8/formats.hpp). Run once per weight at load time, so
// written for clarity: one thread per 16 bytes of codes (a 16-byte piece never straddles a
// tile row: rows are K/2 bytes with K % 32 == 0, tile rows 32 bytes), one per scale byte.
// Tiled padding (rows past N, k past K) is written as zeros.
#include <cuda_runtime.h>

#include "kernels/launch.hpp"
#include "w4a8/formats.hpp"

namespace w4a8 {
namespace kernels {
namespace {

// to_tiled: canonical -> tiled, iterating over the tiled output (so padding gets zeros);
// otherwise tiled -> canonical, iterating over the canonical output.
__global__ void convert_packed_kernel(const uint8_t* __restrict__ in, uint8_t* __restrict__ out,
                                      int64_t N, int64_t K, bool to_tiled) {
  const int64_t units = (to_tiled ? tiled_packed_bytes(N, K) : N * (K / 2)) / 16;
  for (int64_t u = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; u < units; u += int64_t(gridDim.x) * blockDim.x) {
    if (to_tiled) {
      // Tiled unit u: tile (rb, kt), row r of the tile, 16-byte piece j of the tile row.
      constexpr int64_t per_row = kTileK / 2 / 16, per_tile = kTileRows * per_row;
      const int64_t tile = u / per_tile, rb = tile / tiled_k_tiles(K), kt = tile % tiled_k_tiles(K);
      const int64_t n = rb * kTileRows + (u % per_tile) / per_row, byte = kt * (kTileK / 2) + (u % per_row) * 16;
      uint4 v = make_uint4(0u, 0u, 0u, 0u);
      if (n < N && byte < K / 2) {
        v = *reinterpret_cast<const uint4*>(in + n * (K / 2) + byte);
        v = make_uint4(tiled_word_from_canonical(v.x), tiled_word_from_canonical(v.y), tiled_word_from_canonical(v.z),
                       tiled_word_from_canonical(v.w));
      }
      reinterpret_cast<uint4*>(out)[u] = v;
    } else {
      const int64_t n = u / (K / 32), byte = (u % (K / 32)) * 16;
      const uint4 v = *reinterpret_cast<const uint4*>(in + tiled_packed_offset(n, byte, K));
      reinterpret_cast<uint4*>(out)[u] = make_uint4(canonical_word_from_tiled(v.x), canonical_word_from_tiled(v.y),
                                                    canonical_word_from_tiled(v.z), canonical_word_from_tiled(v.w));
    }
  }
}

__global__ void convert_scales_kernel(const uint8_t* __restrict__ in, uint8_t* __restrict__ out,
                                      int64_t N, int64_t K, int group, bool to_tiled) {
  const int64_t row = kTileK / group;  // scale bytes per tile row
  const int64_t count = to_tiled ? tiled_scale_bytes(N, K, group) : N * (K / group);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x) {
    if (to_tiled) {
      const int64_t tile = i / (kTileRows * row), rb = tile / tiled_k_tiles(K), kt = tile % tiled_k_tiles(K);
      const int64_t n = rb * kTileRows + (i % (kTileRows * row)) / row, grp = kt * row + i % row;
      out[i] = n < N && grp < K / group ? in[n * (K / group) + grp] : uint8_t(0);
    } else {
      const int64_t n = i / (K / group), grp = i % (K / group);
      out[i] = in[tiled_scale_offset(n, grp, K, group)];
    }
  }
}

}  // namespace

cudaError_t launch_convert_layout(const uint8_t* packed, const uint8_t* scales, uint8_t* out_packed,
                                  uint8_t* out_scales, int64_t N, int64_t K, int group, bool to_tiled,
                                  int sm_count, cudaStream_t stream) {
  const int threads = 256;
  const unsigned grid = static_cast<unsigned>(sm_count > 0 ? 8 * sm_count : 1024);
  convert_packed_kernel<<<grid, threads, 0, stream>>>(packed, out_packed, N, K, to_tiled);
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  convert_scales_kernel<<<grid, threads, 0, stream>>>(scales, out_scales, N, K, group, to_tiled);
  return cudaGetLastError();
}

}  // namespace kernels
}  // namespace w4a8
