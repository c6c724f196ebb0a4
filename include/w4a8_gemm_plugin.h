// The seed's C++ API (SEED.md "Usage 1"), kept so that code written against the original
// design compiles with one documented change, on top of the C API in w4a8/w4a8.h.
//
// Where the seed was underspecified, and what this header decided:
//   * The NVFP4 weight has a third component, the FP32 tensor scale s2 (FORMATS.md). It is
//     a DEVICE float: quantizeWeightToNVFP4 writes it (new argument `weight_scale_2`, right
//     after `weight_scale`), and w4a8GemmForward reads it (same position). Passing nullptr
//     to w4a8GemmForward means s2 = 1, for callers who fold s2 into `alpha` on the host
//     (as the TensorRT plugin does).
//   * All functions return w4a8_status (w4a8_status_string / w4a8_last_error explain it).
//   * Group size 16 unless the optional trailing argument says 32; an optional BF16 bias.
//   * Layouts are the canonical ones of w4a8.h: weight_packed [N, K/2] (low nibble = even
//     k), weight_scale [N, K/group], input [M, K], output [M, N], all row-major.
//   * Workspace: w4a8GemmForward needs none (pass nullptr, 0); w4a8GemmWorkspaceSize says so.
#ifndef W4A8_GEMM_PLUGIN_H_
#define W4A8_GEMM_PLUGIN_H_

#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "w4a8/w4a8.h"

// Offline: BF16 [N, K] -> packed NVFP4 + E4M3 block scales + FP32 tensor scale (device).
W4A8_API w4a8_status quantizeWeightToNVFP4(const __nv_bfloat16* weight_bf16,
                                           uint8_t* weight_packed,
                                           __nv_fp8_e4m3* weight_scale, float* weight_scale_2,
                                           int N, int K, cudaStream_t stream,
                                           int group_size = 16);

// Per forward: BF16 [M, K] -> FP8 E4M3 [M, K] + per-row FP32 scales [M].
W4A8_API w4a8_status quantizeActivationToFP8(const __nv_bfloat16* input_bf16,
                                             __nv_fp8_e4m3* input_fp8, float* input_scale,
                                             int M, int K, cudaStream_t stream);

// y = bf16(alpha * s_a * s2 * (x_fp8 . w_nvfp4^T) + bias)
W4A8_API w4a8_status w4a8GemmForward(const __nv_fp8_e4m3* input_fp8, const float* input_scale,
                                     const uint8_t* weight_packed,
                                     const __nv_fp8_e4m3* weight_scale,
                                     const float* weight_scale_2, __nv_bfloat16* output_bf16,
                                     int M, int N, int K, float alpha, void* workspace,
                                     size_t workspace_size, cudaStream_t stream,
                                     int group_size = 16,
                                     const __nv_bfloat16* bias = nullptr);

// Bytes of workspace w4a8GemmForward needs (0 today); 0 also for invalid shapes, which
// w4a8GemmForward then reports.
W4A8_API size_t w4a8GemmWorkspaceSize(int M, int N, int K, int group_size = 16);

#endif  // W4A8_GEMM_PLUGIN_H_
