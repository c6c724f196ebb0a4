// CPU reference quantizers and GEMM (see include/w4a8/reference.hpp). Written for
// exactness and readability; the GPU kernels are checked against these bit for bit
// (quantizers) or within ref::gemm_tolerance (GEMM).
#include "w4a8/reference.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/status.hpp"
#include "w4a8/formats.hpp"

namespace w4a8 {
namespace ref {
namespace {

using detail::check_dim;
using detail::check_group_size;
using detail::check_k;
using detail::check_not_null;
using detail::fail;

// Max of |x| over BF16 bit patterns, compared as integers: for non-negative floats integer
// order is numeric order, and every NaN sorts above +Inf, so a NaN anywhere wins. Returns
// the BF16 bits of the amax (>= 0x7F80 means the range held a non-finite value).
uint16_t amax_bits(const uint16_t* x, int64_t n) {
  uint16_t m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max<uint16_t>(m, x[i] & 0x7FFF);
  return m;
}
constexpr uint16_t kBf16InfBits = 0x7F80;

w4a8_status check_weight(const char* fn, const HostWeight& w) {
  W4A8_CHECK(check_dim(fn, "N", w.N));
  W4A8_CHECK(check_group_size(fn, w.group_size));
  W4A8_CHECK(check_k(fn, w.K, w.group_size));
  W4A8_CHECK(check_not_null(fn, "weight.packed", w.packed));
  W4A8_CHECK(check_not_null(fn, "weight.block_scale", w.block_scale));
  return W4A8_STATUS_SUCCESS;
}

w4a8_status check_gemm(const char* fn, const uint8_t* x, const float* s, const HostWeight& w,
                       int64_t M, float alpha) {
  W4A8_CHECK(check_dim(fn, "M", M));
  W4A8_CHECK(check_weight(fn, w));
  W4A8_CHECK(check_not_null(fn, "x_fp8", x));
  W4A8_CHECK(check_not_null(fn, "row_scale", s));
  if (!std::isfinite(alpha))
    return fail(W4A8_STATUS_INVALID_VALUE, fn, "alpha=%g must be finite", alpha);
  return W4A8_STATUS_SUCCESS;
}

// FP32 value of weight (n, k) without the tensor scale: e2m1 * e4m3(sb) (exact), or what the
// FP8 path makes of it.
float weight_value(const HostWeight& w, int64_t n, int64_t k) {
  const uint8_t code = unpack_e2m1(w.packed[n * (w.K / 2) + k / 2], int(k & 1));
  const uint8_t sb = w.block_scale[n * (w.K / w.group_size) + k / w.group_size];
  return w.fp8 ? fp8_weight_value(code, sb, w.fp8_shift) : e2m1_to_float(code) * e4m3_to_float(sb);
}

std::vector<float> weight_values(const HostWeight& w) {
  std::vector<float> out(static_cast<size_t>(w.N * w.K));
  for (int64_t n = 0; n < w.N; ++n)
    for (int64_t k = 0; k < w.K; ++k) out[static_cast<size_t>(n * w.K + k)] = weight_value(w, n, k);
  return out;
}

struct Point {
  double exact, abs;
};

Point dot(const uint8_t* x_row, const float* w_row, int64_t K, double scale, double bias) {
  double acc = 0.0, acc_abs = 0.0;
  for (int64_t k = 0; k < K; ++k) {
    const double p = static_cast<double>(e4m3_to_float(x_row[k])) * w_row[k];  // exact
    acc += p;
    acc_abs += std::fabs(p);
  }
  return {acc * scale + bias, acc_abs * std::fabs(scale)};
}

}  // namespace

w4a8_status quantize_activation_fp8(const uint16_t* x_bf16, int64_t M, int64_t K,
                                    uint8_t* x_fp8, float* row_scale) {
  const char* fn = "ref::quantize_activation_fp8";
  W4A8_CHECK(check_dim(fn, "M", M));
  W4A8_CHECK(check_k(fn, K, 16));
  W4A8_CHECK(check_not_null(fn, "x_bf16", x_bf16));
  W4A8_CHECK(check_not_null(fn, "x_fp8", x_fp8));
  W4A8_CHECK(check_not_null(fn, "row_scale", row_scale));
  for (int64_t m = 0; m < M; ++m) {
    const uint16_t* x = x_bf16 + m * K;
    uint8_t* q = x_fp8 + m * K;
    const uint16_t amax = amax_bits(x, K);
    if (amax >= kBf16InfBits) {  // non-finite row: NaN out (w4a8.h)
      row_scale[m] = NAN;
      std::fill(q, q + K, kE4M3NaN);
      continue;
    }
    const float s = activation_scale(bf16_to_float(amax));
    const float inv = 1.0f / s;
    row_scale[m] = s;
    for (int64_t k = 0; k < K; ++k) q[k] = float_to_e4m3(bf16_to_float(x[k]) * inv);
  }
  return detail::ok();
}

w4a8_status quantize_weight_nvfp4(const uint16_t* w_bf16, int64_t N, int64_t K, int group_size,
                                  uint8_t* w_packed, uint8_t* w_block_scale,
                                  float* w_tensor_scale) {
  const char* fn = "ref::quantize_weight_nvfp4";
  W4A8_CHECK(check_dim(fn, "N", N));
  W4A8_CHECK(check_group_size(fn, group_size));
  W4A8_CHECK(check_k(fn, K, group_size));
  W4A8_CHECK(check_not_null(fn, "w_bf16", w_bf16));
  W4A8_CHECK(check_not_null(fn, "w_packed", w_packed));
  W4A8_CHECK(check_not_null(fn, "w_block_scale", w_block_scale));
  W4A8_CHECK(check_not_null(fn, "w_tensor_scale", w_tensor_scale));
  const int64_t groups = K / group_size;
  const uint16_t amax = amax_bits(w_bf16, N * K);
  if (amax >= kBf16InfBits) {  // non-finite tensor: NaN out (w4a8.h)
    *w_tensor_scale = NAN;
    std::fill(w_block_scale, w_block_scale + N * groups, kE4M3NaN);
    std::fill(w_packed, w_packed + N * K / 2, uint8_t{0});
    return detail::ok();
  }
  const float s2 = nvfp4_tensor_scale(bf16_to_float(amax));
  *w_tensor_scale = s2;
  std::vector<uint8_t> codes(static_cast<size_t>(group_size));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t g = 0; g < groups; ++g) {
      const uint16_t* blk = w_bf16 + n * K + g * group_size;
      const float sb = nvfp4_block_scale_unrounded(bf16_to_float(amax_bits(blk, group_size)), s2);
      const uint8_t sb_code = float_to_e4m3(sb);
      w_block_scale[n * groups + g] = sb_code;
      const float scale = e4m3_to_float(sb_code) * s2;  // product first, then divide
      for (int i = 0; i < group_size; ++i) codes[i] = float_to_e2m1(bf16_to_float(blk[i]) / scale);
      uint8_t* out = w_packed + n * (K / 2) + g * (group_size / 2);
      for (int i = 0; i < group_size / 2; ++i) out[i] = pack_e2m1(codes[2 * i], codes[2 * i + 1]);
    }
  return detail::ok();
}

w4a8_status dequantize_activation_fp8(const uint8_t* x_fp8, const float* row_scale, int64_t M,
                                      int64_t K, float* x) {
  const char* fn = "ref::dequantize_activation_fp8";
  W4A8_CHECK(check_dim(fn, "M", M));
  W4A8_CHECK(check_k(fn, K, 16));
  W4A8_CHECK(check_not_null(fn, "x_fp8", x_fp8));
  W4A8_CHECK(check_not_null(fn, "row_scale", row_scale));
  W4A8_CHECK(check_not_null(fn, "x", x));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; ++k) x[m * K + k] = e4m3_to_float(x_fp8[m * K + k]) * row_scale[m];
  return detail::ok();
}

w4a8_status dequantize_weight_nvfp4(const uint8_t* w_packed, const uint8_t* w_block_scale,
                                    float w_tensor_scale, int64_t N, int64_t K, int group_size,
                                    float* w) {
  const char* fn = "ref::dequantize_weight_nvfp4";
  HostWeight hw;
  hw.packed = w_packed;
  hw.block_scale = w_block_scale;
  hw.N = N;
  hw.K = K;
  hw.group_size = group_size;
  W4A8_CHECK(check_weight(fn, hw));
  W4A8_CHECK(check_not_null(fn, "w", w));
  const std::vector<float> v = weight_values(hw);
  for (size_t i = 0; i < v.size(); ++i) w[i] = v[i] * w_tensor_scale;
  return detail::ok();
}

w4a8_status gemm(const uint8_t* x_fp8, const float* row_scale, const HostWeight& w, int64_t M,
                 float alpha, uint16_t* y_bf16, double* y_exact, double* y_abs) {
  const char* fn = "ref::gemm";
  W4A8_CHECK(check_gemm(fn, x_fp8, row_scale, w, M, alpha));
  W4A8_CHECK(check_not_null(fn, "y_bf16", y_bf16));
  const std::vector<float> wv = weight_values(w);
  for (int64_t m = 0; m < M; ++m) {
    const double scale = static_cast<double>(alpha) * row_scale[m] * w.tensor_scale;
    for (int64_t n = 0; n < w.N; ++n) {
      const double bias = w.bias ? bf16_to_float(w.bias[n]) : 0.0;
      const Point p = dot(x_fp8 + m * w.K, wv.data() + n * w.K, w.K, scale, bias);
      const int64_t i = m * w.N + n;
      y_bf16[i] = double_to_bf16(p.exact);
      if (y_exact) y_exact[i] = p.exact;
      if (y_abs) y_abs[i] = p.abs;
    }
  }
  return detail::ok();
}

w4a8_status gemm_points(const uint8_t* x_fp8, const float* row_scale, const HostWeight& w,
                        int64_t M, float alpha, const int64_t* ms, const int64_t* ns,
                        size_t count, uint16_t* y_bf16, double* y_exact, double* y_abs) {
  const char* fn = "ref::gemm_points";
  W4A8_CHECK(check_gemm(fn, x_fp8, row_scale, w, M, alpha));
  W4A8_CHECK(check_not_null(fn, "ms", ms));
  W4A8_CHECK(check_not_null(fn, "ns", ns));
  for (size_t i = 0; i < count; ++i)
    if (ms[i] < 0 || ms[i] >= M || ns[i] < 0 || ns[i] >= w.N)
      return fail(W4A8_STATUS_INVALID_VALUE, fn, "point %zu = (%lld, %lld) outside [0,%lld)x[0,%lld)",
                  i, static_cast<long long>(ms[i]), static_cast<long long>(ns[i]),
                  static_cast<long long>(M), static_cast<long long>(w.N));
  // Decode each needed weight row once, and every activation row once, then dot.
  std::vector<float> wrow(static_cast<size_t>(w.K));
  int64_t cached_n = -1;
  for (size_t i = 0; i < count; ++i) {
    const int64_t m = ms[i], n = ns[i];
    if (n != cached_n) {
      for (int64_t k = 0; k < w.K; ++k) wrow[static_cast<size_t>(k)] = weight_value(w, n, k);
      cached_n = n;
    }
    const double scale = static_cast<double>(alpha) * row_scale[m] * w.tensor_scale;
    const double bias = w.bias ? bf16_to_float(w.bias[n]) : 0.0;
    const Point p = dot(x_fp8 + m * w.K, wrow.data(), w.K, scale, bias);
    if (y_bf16) y_bf16[i] = double_to_bf16(p.exact);
    if (y_exact) y_exact[i] = p.exact;
    if (y_abs) y_abs[i] = p.abs;
  }
  return detail::ok();
}

namespace {
// Buffers for the canonical copy of a tiled weight (checked: shape, group, layout).
w4a8_status canonical_sizes(const char* fn, const w4a8_weight* w, std::vector<uint8_t>* packed,
                            std::vector<uint8_t>* scales) {
  W4A8_CHECK(check_dim(fn, "weight->N", w->N));
  W4A8_CHECK(check_group_size(fn, w->group_size));
  W4A8_CHECK(check_k(fn, w->K, w->group_size));
  W4A8_CHECK(detail::check_layout(fn, w->layout, w->K));
  packed->assign(static_cast<size_t>(w->N * (w->K / 2)), 0);
  scales->assign(static_cast<size_t>(w->N * (w->K / w->group_size)), 0);
  return W4A8_STATUS_SUCCESS;
}

// Canonical <-> tiled, word by word through formats.hpp's offsets and bit permutation. `from`
// is the layout the input must have; the output gets the other one (tiled padding written as
// zeros). Rows are whole words (K % 32 == 0), and a word never straddles a tile row.
w4a8_status convert_layout(const char* fn, const w4a8_weight* in, int from, uint8_t* out_packed,
                           uint8_t* out_scales) {
  W4A8_CHECK(detail::check_weight_codes(fn, in));
  W4A8_CHECK(check_not_null(fn, "packed output", out_packed));
  W4A8_CHECK(check_not_null(fn, "block_scale output", out_scales));
  W4A8_CHECK(detail::check_conversion(fn, in, from, out_packed, out_scales));
  const int64_t N = in->N, K = in->K, G = in->group_size;
  const bool to_tiled = from == W4A8_LAYOUT_CANONICAL;
  const size_t tp = static_cast<size_t>(tiled_packed_bytes(N, K)), ts = static_cast<size_t>(tiled_scale_bytes(N, K, int(G)));
  const uint8_t* ip = static_cast<const uint8_t*>(in->packed);
  const uint8_t* is = static_cast<const uint8_t*>(in->block_scale);
  if (to_tiled) {
    std::fill(out_packed, out_packed + tp, uint8_t(0));
    std::fill(out_scales, out_scales + ts, uint8_t(0));
  }
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t b = 0; b < K / 2; b += 4) {
      const int64_t t = tiled_packed_offset(n, b, K), c = n * (K / 2) + b;
      uint32_t word;
      std::memcpy(&word, ip + (to_tiled ? c : t), 4);
      word = to_tiled ? tiled_word_from_canonical(word) : canonical_word_from_tiled(word);
      std::memcpy(out_packed + (to_tiled ? t : c), &word, 4);
    }
    for (int64_t grp = 0; grp < K / G; ++grp) {
      const int64_t t = tiled_scale_offset(n, grp, K, int(G)), c = n * (K / G) + grp;
      if (to_tiled) out_scales[t] = is[c]; else out_scales[c] = is[t];
    }
  }
  return detail::ok();
}
}  // namespace

float fp8_weight_value(uint8_t code, uint8_t sb, int shift) {
  const float v = e2m1_to_float(code) * e4m3_to_float(sb);  // exact (2 x 4 significant bits)
  return std::ldexp(e4m3_to_float(float_to_e4m3(std::ldexp(v, shift))), -shift);
}

void fp8_scale_usage(const HostWeight& w, uint32_t mask[256]) {
  for (int64_t n = 0; n < w.N; ++n)
    for (int64_t k = 0; k < w.K; ++k) {
      const uint8_t code = unpack_e2m1(w.packed[n * (w.K / 2) + k / 2], int(k & 1));
      mask[w.block_scale[n * (w.K / w.group_size) + k / w.group_size]] |= 1u << (code & 7u);
    }
}

w4a8_fp8_report fp8_analyze(const uint32_t mask[256]) {
  // Largest |e2m1 * sb| that occurs (NaN scales skipped: NaN stays NaN on both paths).
  float top = 0.0f;
  for (int sb = 0; sb < 256; ++sb)
    for (int mag = 0; mag < 8; ++mag)
      if (mask[sb] >> mag & 1u) {
        const float v = std::fabs(e2m1_to_float(uint8_t(mag)) * e4m3_to_float(uint8_t(sb)));
        if (std::isfinite(v) && v > top) top = v;
      }
  // The largest shift that keeps every product <= 448 (E4M3's largest finite value), so
  // nothing saturates and small products keep as many bits as E4M3 has.
  int shift = 0;
  if (top > 0.0f) {
    while (shift < 64 && std::ldexp(top, shift + 1) <= kE4M3Max) ++shift;
    while (shift > -64 && std::ldexp(top, shift) > kE4M3Max) --shift;
  }
  w4a8_fp8_report r{shift, 1, 0.0};
  for (int sb = 0; sb < 256; ++sb)
    for (int mag = 1; mag < 8; ++mag)
      if (mask[sb] >> mag & 1u) {
        const double v = double(e2m1_to_float(uint8_t(mag))) * e4m3_to_float(uint8_t(sb));
        if (!std::isfinite(v) || v == 0.0) continue;
        const double err = std::fabs(double(fp8_weight_value(uint8_t(mag), uint8_t(sb), shift)) - v) / std::fabs(v);
        if (err > 0.0) r.exact = 0;
        if (err > r.max_rel_error) r.max_rel_error = err;
      }
  return r;
}

double gemm_tolerance(double y_exact, double y_abs, int64_t K) {
  // BF16 output rounding (half an ulp is <= 2^-9 relative; allow 2^-8 for the kernel's own
  // FP32 epilogue rounding), FP32 summation over K terms plus a few reduction steps
  // (gamma_{K+8} * sum |terms|), and the smallest BF16 subnormal for results near zero.
  const double u32 = std::ldexp(1.0, -24);
  return std::ldexp(std::fabs(y_exact), -8) + static_cast<double>(K + 8) * u32 * y_abs +
         std::ldexp(1.0, -133);
}

}  // namespace ref
}  // namespace w4a8

// C entry points of the reference (include/w4a8/w4a8.h, "CPU reference").
extern "C" {

w4a8_status w4a8_ref_quantize_activation_fp8(const void* x_bf16, void* x_fp8, float* row_scale,
                                             int64_t M, int64_t K) {
  return w4a8::ref::quantize_activation_fp8(static_cast<const uint16_t*>(x_bf16), M, K,
                                            static_cast<uint8_t*>(x_fp8), row_scale);
}

w4a8_status w4a8_ref_quantize_weight_nvfp4(const void* w_bf16, void* w_packed, void* w_block_scale,
                                           float* w_tensor_scale, int64_t N, int64_t K,
                                           int group_size) {
  return w4a8::ref::quantize_weight_nvfp4(static_cast<const uint16_t*>(w_bf16), N, K, group_size,
                                          static_cast<uint8_t*>(w_packed),
                                          static_cast<uint8_t*>(w_block_scale), w_tensor_scale);
}

w4a8_status w4a8_ref_gemm(const void* x_fp8, const float* row_scale, const w4a8_weight* weight,
                          void* y_bf16, int64_t M, float alpha) {
  const char* fn = "w4a8_ref_gemm";
  W4A8_CHECK(w4a8::detail::check_not_null(fn, "weight", weight));
  W4A8_CHECK(w4a8::detail::check_overlap(fn, weight));  // (meaningless here, but validated alike)
  w4a8::ref::HostWeight w;
  w.packed = static_cast<const uint8_t*>(weight->packed);
  w.block_scale = static_cast<const uint8_t*>(weight->block_scale);
  // A tiled weight: back to the canonical layout first (an independent path from the
  // kernels' tiled addressing, which the GPU tests compare against this).
  std::vector<uint8_t> packed, scales;
  if (weight->layout != W4A8_LAYOUT_CANONICAL) {
    W4A8_CHECK(w4a8::ref::canonical_sizes(fn, weight, &packed, &scales));
    W4A8_CHECK(w4a8_ref_unprepack_weight(weight, packed.data(), scales.data()));
    w.packed = packed.data();
    w.block_scale = scales.data();
  }
  w.tensor_scale = weight->tensor_scale ? *weight->tensor_scale : 1.0f;
  w.bias = static_cast<const uint16_t*>(weight->bias);
  w.N = weight->N;
  w.K = weight->K;
  w.group_size = weight->group_size;
  return w4a8::ref::gemm(static_cast<const uint8_t*>(x_fp8), row_scale, w, M, alpha,
                         static_cast<uint16_t*>(y_bf16));
}

w4a8_status w4a8_ref_prepare_fp8(w4a8_weight* weight, w4a8_fp8_report* report) {
  const char* fn = "w4a8_ref_prepare_fp8";
  W4A8_CHECK(w4a8::detail::check_fp8_prepare(fn, weight));
  w4a8::ref::HostWeight w;
  w.packed = static_cast<const uint8_t*>(weight->packed);
  w.block_scale = static_cast<const uint8_t*>(weight->block_scale);
  w.N = weight->N;
  w.K = weight->K;
  w.group_size = weight->group_size;
  uint32_t mask[256] = {};
  w4a8::ref::fp8_scale_usage(w, mask);
  const w4a8_fp8_report r = w4a8::ref::fp8_analyze(mask);
  weight->fp8 = r.exact ? W4A8_FP8_EXACT : W4A8_FP8_LOSSY;
  weight->fp8_shift = r.shift;
  if (report) *report = r;
  return w4a8::detail::ok();
}

w4a8_status w4a8_ref_prepack_weight(const w4a8_weight* canonical, void* tiled_packed,
                                    void* tiled_block_scale) {
  return w4a8::ref::convert_layout("w4a8_ref_prepack_weight", canonical, W4A8_LAYOUT_CANONICAL,
                                   static_cast<uint8_t*>(tiled_packed), static_cast<uint8_t*>(tiled_block_scale));
}

w4a8_status w4a8_ref_unprepack_weight(const w4a8_weight* tiled, void* packed, void* block_scale) {
  return w4a8::ref::convert_layout("w4a8_ref_unprepack_weight", tiled, W4A8_LAYOUT_TILED,
                                   static_cast<uint8_t*>(packed), static_cast<uint8_t*>(block_scale));
}

}  // extern "C"
