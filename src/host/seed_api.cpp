// The seed's functions (include/w4a8_gemm_plugin.h), each a thin call into the C API.
#include "w4a8_gemm_plugin.h"

w4a8_status quantizeWeightToNVFP4(const __nv_bfloat16* weight_bf16, uint8_t* weight_packed,
                                  __nv_fp8_e4m3* weight_scale, float* weight_scale_2, int N,
                                  int K, cudaStream_t stream, int group_size) {
  return w4a8_quantize_weight_nvfp4(weight_bf16, weight_packed, weight_scale, weight_scale_2, N,
                                    K, group_size, stream);
}

w4a8_status quantizeActivationToFP8(const __nv_bfloat16* input_bf16, __nv_fp8_e4m3* input_fp8,
                                    float* input_scale, int M, int K, cudaStream_t stream) {
  return w4a8_quantize_activation_fp8(input_bf16, input_fp8, input_scale, M, K, stream);
}

w4a8_status w4a8GemmForward(const __nv_fp8_e4m3* input_fp8, const float* input_scale,
                            const uint8_t* weight_packed, const __nv_fp8_e4m3* weight_scale,
                            const float* weight_scale_2, __nv_bfloat16* output_bf16, int M,
                            int N, int K, float alpha, void* workspace, size_t workspace_size,
                            cudaStream_t stream, int group_size, const __nv_bfloat16* bias) {
  w4a8_weight w = {};  // canonical layout
  w.packed = weight_packed;
  w.block_scale = weight_scale;
  w.tensor_scale = weight_scale_2;
  w.bias = bias;
  w.N = N;
  w.K = K;
  w.group_size = group_size;
  return w4a8_gemm(input_fp8, input_scale, &w, output_bf16, M, alpha, workspace, workspace_size,
                   stream);
}

size_t w4a8GemmWorkspaceSize(int M, int N, int K, int group_size) {
  size_t bytes = 0;
  if (w4a8_gemm_workspace_size(M, N, K, group_size, &bytes) != W4A8_STATUS_SUCCESS) return 0;
  return bytes;
}
