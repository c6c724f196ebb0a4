// CPU reference of every w4a8 kernel: the quantizers (bit-exact oracles for the GPU ones),
// dequantization, and the GEMM on the quantized operands (FP64 accumulation). Plain C++,
// single-threaded, no CUDA: usable by the library, the tests, the CLI and on machines
// without a GPU. Arguments are validated exactly like the device entry points (same
// statuses, same messages through w4a8_last_error()); nothing is written on error.
#ifndef W4A8_REFERENCE_HPP_
#define W4A8_REFERENCE_HPP_

#include <cstddef>
#include <cstdint>

#include "w4a8/w4a8.h"

namespace w4a8 {
namespace ref {

// BF16 [M, K] (as raw uint16 bits) -> E4M3 codes [M, K] + FP32 row scales [M].
w4a8_status quantize_activation_fp8(const uint16_t* x_bf16, int64_t M, int64_t K,
                                    uint8_t* x_fp8, float* row_scale);

// BF16 [N, K] -> packed E2M1 [N, K/2] + E4M3 block scales [N, K/group] + s2.
w4a8_status quantize_weight_nvfp4(const uint16_t* w_bf16, int64_t N, int64_t K, int group_size,
                                  uint8_t* w_packed, uint8_t* w_block_scale,
                                  float* w_tensor_scale);

// Inverses: exact values of the quantized operands (FP32 holds them all exactly, except
// that the final multiplication by the row or tensor scale rounds once).
w4a8_status dequantize_activation_fp8(const uint8_t* x_fp8, const float* row_scale, int64_t M,
                                      int64_t K, float* x);
w4a8_status dequantize_weight_nvfp4(const uint8_t* w_packed, const uint8_t* w_block_scale,
                                    float w_tensor_scale, int64_t N, int64_t K, int group_size,
                                    float* w);

// Host view of one quantized weight (same meaning as w4a8_weight, host pointers).
struct HostWeight {
  const uint8_t* packed = nullptr;       // [N, K/2]
  const uint8_t* block_scale = nullptr;  // [N, K/group]
  float tensor_scale = 1.0f;             // s2
  const uint16_t* bias = nullptr;        // BF16 [N] or nullptr
  int64_t N = 0;
  int64_t K = 0;
  int group_size = 16;
  // FP8 path oracle: when true, every weight is e4m3(e2m1 * sb * 2^fp8_shift) * 2^-fp8_shift
  // (fp8_weight_value) instead of e2m1 * sb.
  bool fp8 = false;
  int fp8_shift = 0;
};

// ---- FP8 path (w4a8_prepare_fp8) ------------------------------------------------------
// One weight as the FP8 path sees it: e4m3(e2m1(code) * e4m3(sb) * 2^shift), RNE + satfinite
// (NaN scale -> NaN), times 2^-shift. code is a 4-bit E2M1 code.
float fp8_weight_value(uint8_t code, uint8_t sb, int shift);
// mask[sb] |= 1 << magnitude (code & 7) for every code of every group with scale byte sb
// (canonical layout).
void fp8_scale_usage(const HostWeight& w, uint32_t mask[256]);
// From those masks: the shift, exactness and worst relative product error (w4a8_fp8_report).
w4a8_fp8_report fp8_analyze(const uint32_t mask[256]);

// The GEMM oracle: acc = sum_k e4m3(x) * e2m1(w) * sb in FP64 (every product is exact, and
// so is the sum for all practical K), then y = bf16(acc * alpha * s_a * s2 + bias), rounded
// once from FP64. Optional outputs, each [M, N] or nullptr:
//   y_exact: the FP64 value before BF16 rounding,
//   y_abs:   sum_k |product| * |alpha * s_a * s2|, which bounds FP32 summation-order error.
w4a8_status gemm(const uint8_t* x_fp8, const float* row_scale, const HostWeight& w, int64_t M,
                 float alpha, uint16_t* y_bf16, double* y_exact = nullptr,
                 double* y_abs = nullptr);

// Reference for selected outputs only (for checking huge GPU results): computes the same
// as gemm() for the `count` (m, n) pairs given.
w4a8_status gemm_points(const uint8_t* x_fp8, const float* row_scale, const HostWeight& w,
                        int64_t M, float alpha, const int64_t* ms, const int64_t* ns,
                        size_t count, uint16_t* y_bf16, double* y_exact, double* y_abs);

// Tolerance for one FP32-accumulated output against the FP64 reference: one BF16 rounding
// of each side plus the worst-case FP32 summation error over K terms (Higham's gamma_K).
double gemm_tolerance(double y_exact, double y_abs, int64_t K);

}  // namespace ref
}  // namespace w4a8

#endif  // W4A8_REFERENCE_HPP_
