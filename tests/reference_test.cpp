// CPU reference: quantizers against hand-computed blocks and rows, dequantization error
// bounds, and the reference GEMM against exact small-integer answers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <random>
#include <vector>

#include "test_util.hpp"
#include "w4a8/formats.hpp"
#include "w4a8/reference.hpp"

namespace w4a8 {
namespace {

using test::random_bf16;

std::vector<uint16_t> to_bf16(const std::vector<float>& v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    out[i] = float_to_bf16(v[i]);
    EXPECT_EQ(bf16_to_float(out[i]), v[i]) << "test value " << v[i] << " is not a BF16";
  }
  return out;
}

uint8_t code_at(const std::vector<uint8_t>& packed, int64_t row_bytes, int64_t n, int64_t k) {
  return unpack_e2m1(packed[n * row_bytes + k / 2], int(k & 1));
}

TEST(NvFp4Reference, HandComputedBlocks) {
  // N = 4 rows, K = 16 (one block per row), group 16. The tensor amax is 2688, so s2 = 1.
  std::vector<float> w(4 * 16, 0.0f);
  // Row 0: all zeros -> scale 1.0 (0x38), every code 0.
  // Row 1: the tensor max, 2688 -> sb = 448 (0x7E); 2688/448 = 6 -> code 7; 224 -> 0.5 (1);
  //        336 -> 0.75 -> tie -> 1.0 (code 2); -1120 -> -2.5 -> tie -> -2 (code 0xC);
  //        -0.0 -> code 8.
  w[16 + 0] = 2688; w[16 + 1] = 224; w[16 + 2] = 336; w[16 + 3] = -1120; w[16 + 4] = -0.0f;
  // Row 2: tiny block, amax 2^-10 -> sb = 2^-10/6 < 2^-9 -> clamped to 2^-9 (0x01):
  //        2^-10 -> 0.5 (code 1); 2^-11 -> 0.25 -> tie -> 0; -2^-10 -> code 9.
  w[32 + 0] = std::ldexp(1.0f, -10); w[32 + 1] = std::ldexp(1.0f, -11); w[32 + 2] = -std::ldexp(1.0f, -10);
  // Row 3: one huge outlier: 1000 -> sb = 1000/6 = 166.67 -> e4m3 160 (0x72);
  //        1000/160 = 6.25 -> saturates at 6 (code 7); 1/160 -> 0; 80 -> 0.5 (code 1).
  w[48 + 0] = 1000; w[48 + 1] = 1; w[48 + 2] = 80;
  const auto wb = to_bf16(w);
  std::vector<uint8_t> packed(4 * 8), scales(4);
  float s2 = 0;
  ASSERT_EQ(ref::quantize_weight_nvfp4(wb.data(), 4, 16, 16, packed.data(), scales.data(), &s2),
            W4A8_STATUS_SUCCESS);
  EXPECT_EQ(s2, 1.0f);
  EXPECT_EQ(scales[0], 0x38);
  for (int k = 0; k < 16; ++k) EXPECT_EQ(code_at(packed, 8, 0, k) & 7, 0);
  EXPECT_EQ(scales[1], 0x7E);
  EXPECT_EQ(code_at(packed, 8, 1, 0), 7);
  EXPECT_EQ(code_at(packed, 8, 1, 1), 1);
  EXPECT_EQ(code_at(packed, 8, 1, 2), 2);
  EXPECT_EQ(code_at(packed, 8, 1, 3), 0xC);
  EXPECT_EQ(code_at(packed, 8, 1, 4), 8);
  EXPECT_EQ(code_at(packed, 8, 1, 5), 0);
  EXPECT_EQ(scales[2], 0x01);
  EXPECT_EQ(code_at(packed, 8, 2, 0), 1);
  EXPECT_EQ(code_at(packed, 8, 2, 1), 0);
  EXPECT_EQ(code_at(packed, 8, 2, 2), 9);
  EXPECT_EQ(scales[3], 0x72);
  EXPECT_EQ(e4m3_to_float(scales[3]), 160.0f);
  EXPECT_EQ(code_at(packed, 8, 3, 0), 7);
  EXPECT_EQ(code_at(packed, 8, 3, 1), 0);
  EXPECT_EQ(code_at(packed, 8, 3, 2), 1);
  // Packing: low nibble = even k.
  EXPECT_EQ(packed[8 + 0], 0x17);  // row 1: k0 = 7 (low), k1 = 1 (high)
}

TEST(NvFp4Reference, GroupSize32UsesOneScalePer32) {
  std::vector<float> w(64, 0.0f);
  w[0] = 2688;   // block 0 (k 0..31)
  w[40] = 1344;  // block 1 (k 32..63): sb = 224 -> code 6 at k 40
  const auto wb = to_bf16(w);
  std::vector<uint8_t> packed(32), scales(2);
  float s2 = 0;
  ASSERT_EQ(ref::quantize_weight_nvfp4(wb.data(), 1, 64, 32, packed.data(), scales.data(), &s2),
            W4A8_STATUS_SUCCESS);
  EXPECT_EQ(e4m3_to_float(scales[0]), 448.0f);
  EXPECT_EQ(e4m3_to_float(scales[1]), 224.0f);
  EXPECT_EQ(code_at(packed, 32, 0, 40), 7);
}

TEST(NvFp4Reference, NonFiniteTensorGivesNaN) {
  for (float bad : {NAN, INFINITY, -INFINITY}) {
    std::vector<float> w(32, 1.0f);
    w[17] = bad;
    std::vector<uint16_t> wb(32);
    for (int i = 0; i < 32; ++i) wb[i] = float_to_bf16(w[i]);
    std::vector<uint8_t> packed(16, 0xAA), scales(2, 0);
    float s2 = 0;
    ASSERT_EQ(ref::quantize_weight_nvfp4(wb.data(), 1, 32, 16, packed.data(), scales.data(), &s2),
              W4A8_STATUS_SUCCESS);
    EXPECT_TRUE(std::isnan(s2));
    EXPECT_EQ(scales[0], kE4M3NaN);
    EXPECT_EQ(scales[1], kE4M3NaN);
    for (uint8_t b : packed) EXPECT_EQ(b, 0);
  }
}

TEST(NvFp4Reference, AllZeroTensor) {
  std::vector<uint16_t> wb(32, 0);
  std::vector<uint8_t> packed(16, 0xAA), scales(2, 0);
  float s2 = 0;
  ASSERT_EQ(ref::quantize_weight_nvfp4(wb.data(), 1, 32, 16, packed.data(), scales.data(), &s2),
            W4A8_STATUS_SUCCESS);
  EXPECT_EQ(s2, 1.0f);
  EXPECT_EQ(scales[0], 0x38);
  for (uint8_t b : packed) EXPECT_EQ(b, 0);
}

// Dequantization error on Gaussian weights: every element is within half an E2M1 step of
// its block's grid (|w - dq| <= 0.5 * step, step <= 2 * scale), and the tensor-level
// relative error is what 4-bit weights give (~10%, well under 15%).
TEST(NvFp4Reference, DequantizationErrorBound) {
  std::mt19937_64 rng(11);
  for (int group : {16, 32}) {
    const int64_t N = 64, K = 256;
    const auto wb = random_bf16(N * K, rng, 0.02f);
    std::vector<uint8_t> packed(N * K / 2), scales(N * K / group);
    float s2 = 0;
    ASSERT_EQ(ref::quantize_weight_nvfp4(wb.data(), N, K, group, packed.data(), scales.data(), &s2),
              W4A8_STATUS_SUCCESS);
    std::vector<float> dq(N * K);
    ASSERT_EQ(ref::dequantize_weight_nvfp4(packed.data(), scales.data(), s2, N, K, group, dq.data()),
              W4A8_STATUS_SUCCESS);
    double err2 = 0, ref2 = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) {
        const double w = bf16_to_float(wb[n * K + k]);
        const double scale = e4m3_to_float(scales[n * (K / group) + k / group]) * s2;
        const double e = std::fabs(w - dq[n * K + k]);
        // Largest E2M1 gap is 2 (between 4 and 6); the block scale's own E4M3 rounding can
        // push |w| / scale up to 6 * (1 + 2^-4), saturating at 6: allow that overshoot too.
        ASSERT_LE(e, 1.0 * scale + 6.0 * scale / 16 + 1e-12) << n << "," << k;
        err2 += e * e;
        ref2 += w * w;
      }
    EXPECT_LT(std::sqrt(err2 / ref2), 0.15) << "group " << group;
  }
}

TEST(Fp8ActivationReference, RowsZeroOutlierSubnormal) {
  const int64_t K = 32;
  std::vector<float> x(4 * K, 0.0f);
  // Row 0: zeros -> scale 1/(448*512), codes 0.
  // Row 1: outlier 7040 -> s = 7040/448 = 15.71 -> q(7040) = 448 (0x7E); 15.625 -> 0.994 -> 1
  //        (0x38); -7 -> -0.4455 -> E4M3 RNE (step 1/32 there) -> -0.4375.
  x[K + 0] = 7040; x[K + 1] = 15.625f; x[K + 2] = -7;
  // Row 2: amax 448 -> s = 1: 2^-8 -> subnormal 0x02; 2^-10 -> tie between 0 and 2^-9 -> 0;
  //        3 * 2^-10 -> 1.5 quanta -> tie -> 0x02.
  x[2 * K + 0] = 448; x[2 * K + 1] = std::ldexp(1.0f, -8); x[2 * K + 2] = std::ldexp(1.0f, -10);
  x[2 * K + 3] = 3 * std::ldexp(1.0f, -10);
  // Row 3: tiny row: amax 2^-20 -> scale floor 1/(448*512) -> 2^-20 * 229376 = 0.21875
  x[3 * K + 0] = std::ldexp(1.0f, -20);
  const auto xb = to_bf16(x);
  std::vector<uint8_t> q(4 * K);
  std::vector<float> s(4);
  ASSERT_EQ(ref::quantize_activation_fp8(xb.data(), 4, K, q.data(), s.data()), W4A8_STATUS_SUCCESS);
  EXPECT_EQ(s[0], kActScaleMin);
  for (int k = 0; k < K; ++k) EXPECT_EQ(q[k], 0);
  EXPECT_EQ(s[1], 7040.0f / 448.0f);
  EXPECT_EQ(q[K + 0], 0x7E);
  EXPECT_EQ(q[K + 1], 0x38);
  EXPECT_EQ(e4m3_to_float(q[K + 2]), -0.4375f);
  EXPECT_EQ(s[2], 1.0f);
  EXPECT_EQ(q[2 * K + 0], 0x7E);
  EXPECT_EQ(q[2 * K + 1], 0x02);
  EXPECT_EQ(q[2 * K + 2], 0x00);
  EXPECT_EQ(q[2 * K + 3], 0x02);
  EXPECT_EQ(s[3], kActScaleMin);
  EXPECT_EQ(e4m3_to_float(q[3 * K]), 0.21875f);
}

TEST(Fp8ActivationReference, NonFiniteRowIsNaNAndOthersUntouched) {
  const int64_t K = 16;
  std::vector<uint16_t> xb(3 * K, float_to_bf16(1.0f));
  xb[K + 5] = float_to_bf16(NAN);
  xb[2 * K + 9] = float_to_bf16(-INFINITY);
  std::vector<uint8_t> q(3 * K);
  std::vector<float> s(3);
  ASSERT_EQ(ref::quantize_activation_fp8(xb.data(), 3, K, q.data(), s.data()), W4A8_STATUS_SUCCESS);
  EXPECT_EQ(s[0], 1.0f / 448.0f);
  EXPECT_EQ(q[0], 0x7E);
  for (int r = 1; r < 3; ++r) {
    EXPECT_TRUE(std::isnan(s[r]));
    for (int k = 0; k < K; ++k) EXPECT_EQ(q[r * K + k], kE4M3NaN);
  }
}

TEST(Fp8ActivationReference, RelativeErrorOnGaussianRows) {
  std::mt19937_64 rng(5);
  const int64_t M = 16, K = 1024;
  const auto xb = random_bf16(M * K, rng);
  std::vector<uint8_t> q(M * K);
  std::vector<float> s(M), dq(M * K);
  ASSERT_EQ(ref::quantize_activation_fp8(xb.data(), M, K, q.data(), s.data()), W4A8_STATUS_SUCCESS);
  ASSERT_EQ(ref::dequantize_activation_fp8(q.data(), s.data(), M, K, dq.data()), W4A8_STATUS_SUCCESS);
  for (int64_t i = 0; i < M * K; ++i) {
    const float x = bf16_to_float(xb[i]);
    // E4M3 keeps 3 mantissa bits: relative error <= 2^-4 for normals, absolute <= s*2^-10 below.
    ASSERT_LE(std::fabs(dq[i] - x), std::fabs(x) / 16 + s[i / K] * std::ldexp(1.0f, -10) + 1e-30f) << i;
  }
}

// ---- the reference GEMM -------------------------------------------------------------------

// Small integers everywhere: FP8 codes of integers, block scale 1.0 (0x38), s2 = 1,
// row scale 1: every output is an exact small integer, computed here with int arithmetic.
TEST(GemmReference, SmallIntegersExact) {
  const int64_t M = 5, N = 7, K = 48;
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<int> xd(-8, 8), wd(0, 15);
  std::vector<uint8_t> x(M * K), packed(N * K / 2), scales(N * K / 16, kE4M3One);
  std::vector<int> xi(M * K), wi2(N * K);  // weights as 2 * value (E2M1 has halves)
  for (int64_t i = 0; i < M * K; ++i) {
    xi[i] = xd(rng);
    x[i] = float_to_e4m3(static_cast<float>(xi[i]));
  }
  const int twice[8] = {0, 1, 2, 3, 4, 6, 8, 12};
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; k += 2) {
      const int c0 = wd(rng), c1 = wd(rng);
      packed[n * K / 2 + k / 2] = pack_e2m1(uint8_t(c0), uint8_t(c1));
      wi2[n * K + k] = (c0 & 8 ? -1 : 1) * twice[c0 & 7];
      wi2[n * K + k + 1] = (c1 & 8 ? -1 : 1) * twice[c1 & 7];
    }
  std::vector<float> rs(M, 1.0f);
  ref::HostWeight w;
  w.packed = packed.data();
  w.block_scale = scales.data();
  w.N = N;
  w.K = K;
  std::vector<uint16_t> y(M * N);
  std::vector<double> ye(M * N);
  ASSERT_EQ(ref::gemm(x.data(), rs.data(), w, M, 1.0f, y.data(), ye.data()), W4A8_STATUS_SUCCESS);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      int acc2 = 0;
      for (int64_t k = 0; k < K; ++k) acc2 += xi[m * K + k] * wi2[n * K + k];
      EXPECT_EQ(ye[m * N + n], acc2 / 2.0);  // exact before the output rounding
      EXPECT_EQ(y[m * N + n], double_to_bf16(acc2 / 2.0));
      if (std::abs(acc2) < 256) {
        EXPECT_EQ(bf16_to_float(y[m * N + n]), acc2 / 2.0f) << "|y| < 128: exact in BF16";
      }
    }
}

TEST(GemmReference, HandComputedWithScalesAlphaBias) {
  // M = 1, N = 2, K = 16. x = [1, 2, 0...] with row scale 0.5; weights row 0 = [1, -1.5, 0...]
  // with block scale 2 (0x40) and s2 = 0.25; row 1 all 6 with block scale 1; alpha = 3;
  // bias = [10, -1].
  // y0 = 3 * 0.5 * 0.25 * (1*1*2 + 2*(-1.5)*2) + 10 = 0.375 * (2 - 6) + 10 = 8.5
  // y1 = 3 * 0.5 * 0.25 * (1*6 + 2*6) - 1 = 0.375 * 18 - 1 = 5.75
  std::vector<uint8_t> x(16, 0), packed(16, 0), scales = {0x40, 0x38};
  x[0] = float_to_e4m3(1.0f);
  x[1] = float_to_e4m3(2.0f);
  packed[0] = pack_e2m1(float_to_e2m1(1.0f), float_to_e2m1(-1.5f));
  for (int i = 8; i < 16; ++i) packed[i] = pack_e2m1(7, 7);
  std::vector<uint16_t> bias = {float_to_bf16(10.0f), float_to_bf16(-1.0f)};
  const float rs = 0.5f;
  ref::HostWeight w;
  w.packed = packed.data();
  w.block_scale = scales.data();
  w.tensor_scale = 0.25f;
  w.bias = bias.data();
  w.N = 2;
  w.K = 16;
  std::vector<uint16_t> y(2);
  ASSERT_EQ(ref::gemm(x.data(), &rs, w, 1, 3.0f, y.data()), W4A8_STATUS_SUCCESS);
  EXPECT_EQ(bf16_to_float(y[0]), 8.5f);
  EXPECT_EQ(bf16_to_float(y[1]), 5.75f);
}

TEST(GemmReference, PointsAgreeWithFullGemm) {
  std::mt19937_64 rng(2);
  const int64_t M = 9, N = 33, K = 96;
  const auto xb = random_bf16(M * K, rng), wb = random_bf16(N * K, rng, 0.05f);
  std::vector<uint8_t> x(M * K), packed(N * K / 2), scales(N * K / 32);
  std::vector<float> rs(M);
  float s2;
  ASSERT_EQ(ref::quantize_activation_fp8(xb.data(), M, K, x.data(), rs.data()), W4A8_STATUS_SUCCESS);
  ASSERT_EQ(ref::quantize_weight_nvfp4(wb.data(), N, K, 32, packed.data(), scales.data(), &s2),
            W4A8_STATUS_SUCCESS);
  ref::HostWeight w{packed.data(), scales.data(), s2, nullptr, N, K, 32};
  std::vector<uint16_t> y(M * N);
  std::vector<double> ye(M * N), ya(M * N);
  ASSERT_EQ(ref::gemm(x.data(), rs.data(), w, M, 1.5f, y.data(), ye.data(), ya.data()), W4A8_STATUS_SUCCESS);
  std::vector<int64_t> ms = {0, 8, 4, 3}, ns = {0, 32, 17, 1};
  std::vector<uint16_t> yp(4);
  std::vector<double> yep(4), yap(4);
  ASSERT_EQ(ref::gemm_points(x.data(), rs.data(), w, M, 1.5f, ms.data(), ns.data(), 4, yp.data(),
                             yep.data(), yap.data()),
            W4A8_STATUS_SUCCESS);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(yp[i], y[ms[i] * N + ns[i]]);
    EXPECT_EQ(yep[i], ye[ms[i] * N + ns[i]]);
    EXPECT_EQ(yap[i], ya[ms[i] * N + ns[i]]);
  }
}

TEST(GemmReference, ToleranceIsTightForExactValues) {
  // The bound allows one BF16 rounding of a large value, but not a unit error.
  EXPECT_LT(ref::gemm_tolerance(100.0, 100.0, 16), 0.5);
  EXPECT_GT(ref::gemm_tolerance(100.0, 100.0, 16), 0.2);
}

// ---- the tiled weight layout ---------------------------------------------------------

// Offsets worked out by hand from the definition in w4a8.h: N = 20, K = 160 has 2 row blocks
// of 3 k-tiles of 64 k (the last one half empty). Row 17, byte 70 (k 140..141): row block 1,
// k-tile 2 -> tile 5, row 1 of the tile, byte 6 of its 32-byte row: 5 * 512 + 32 + 6. Scale
// group 9 of row 17 at g16 (k 144..159): tile 5 (4 scale bytes per tile row, 64 per tile),
// row 1, byte 1; group 4 at g32 (k 128..159): tile 5 (2 per row, 32 per tile), row 1, byte 0.
TEST(TiledLayout, HandComputedOffsets) {
  EXPECT_EQ(tiled_packed_offset(17, 70, 160), 5 * 512 + 32 + 6);
  EXPECT_EQ(tiled_packed_offset(0, 0, 160), 0);
  EXPECT_EQ(tiled_packed_offset(15, 31, 160), 15 * 32 + 31);
  EXPECT_EQ(tiled_packed_offset(0, 32, 160), 512);
  EXPECT_EQ(tiled_scale_offset(17, 9, 160, 16), 5 * 64 + 4 + 1);
  EXPECT_EQ(tiled_scale_offset(17, 4, 160, 32), 5 * 32 + 2 + 0);
  EXPECT_EQ(tiled_packed_bytes(20, 160), 32 * 3 * 32);
  EXPECT_EQ(tiled_scale_bytes(20, 160, 16), 32 * 3 * 4);
  EXPECT_EQ(tiled_scale_bytes(20, 160, 32), 32 * 3 * 2);
}

// Prepack then unprepack gives the bytes back, the tiled arrays hold zeros in the padding,
// and the GEMM oracle gives the same bits on either layout.
TEST(TiledLayout, RoundTripPaddingAndGemm) {
  std::mt19937_64 rng(77);
  const int64_t shapes[][3] = {{20, 160, 16}, {16, 128, 32}, {33, 96, 32}, {7, 1024, 16}};
  for (const auto& s : shapes) {
    const int64_t N = s[0], K = s[1];
    const int G = int(s[2]);
    std::vector<uint8_t> packed(N * K / 2), scales(N * K / G);
    for (auto& b : packed) b = uint8_t(1 + rng() % 255);  // never 0: padding is what stays 0
    for (auto& b : scales) b = uint8_t(1 + rng() % 126);
    const w4a8_weight c{packed.data(), scales.data(), nullptr, nullptr, N, K, G, W4A8_LAYOUT_CANONICAL, W4A8_FP8_NONE, 0, 0};
    std::vector<uint8_t> tp(tiled_packed_bytes(N, K), 0xEE), ts(tiled_scale_bytes(N, K, G), 0xEE);
    ASSERT_EQ(w4a8_ref_prepack_weight(&c, tp.data(), ts.data()), W4A8_STATUS_SUCCESS) << w4a8_last_error();
    // (Codes: the padding bytes are zero; the others are canonical words with permuted bits,
    // which may contain zero bytes, so the padding is located through the offsets.)
    std::vector<bool> code_byte(tp.size(), false);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t b = 0; b < K / 2; ++b) code_byte[tiled_packed_offset(n, b, K)] = true;
    for (size_t i = 0; i < tp.size(); ++i) {
      if (!code_byte[i]) {
        ASSERT_EQ(tp[i], 0) << N << "x" << K << " padding byte " << i;
      }
    }
    EXPECT_EQ(std::count(ts.begin(), ts.end(), uint8_t(0)), int64_t(ts.size()) - N * K / G) << N << "x" << K;
    std::vector<uint8_t> bp(packed.size(), 0xEE), bs(scales.size(), 0xEE);
    const w4a8_weight t{tp.data(), ts.data(), nullptr, nullptr, N, K, G, W4A8_LAYOUT_TILED, W4A8_FP8_NONE, 0, 0};
    ASSERT_EQ(w4a8_ref_unprepack_weight(&t, bp.data(), bs.data()), W4A8_STATUS_SUCCESS) << w4a8_last_error();
    EXPECT_TRUE(bp == packed && bs == scales) << N << "x" << K << " g" << G;

    const int64_t M = 3;
    std::vector<uint8_t> x(M * K);
    for (auto& b : x) b = uint8_t(rng() % 0x70);  // finite E4M3
    const std::vector<float> rs = {0.5f, 1.0f, 0.25f};
    std::vector<uint16_t> yc(M * N), yt(M * N);
    ASSERT_EQ(w4a8_ref_gemm(x.data(), rs.data(), &c, yc.data(), M, 1.0f), W4A8_STATUS_SUCCESS);
    ASSERT_EQ(w4a8_ref_gemm(x.data(), rs.data(), &t, yt.data(), M, 1.0f), W4A8_STATUS_SUCCESS);
    EXPECT_TRUE(yc == yt);
  }
}

// Property check on 200 random shapes (N 1..70, K a multiple of 32 up to 1024, both groups):
// the offset functions map canonical bytes one-to-one into the tiled arrays (every target hit
// once, padding exactly the rest), and the conversions invert each other.
TEST(TiledLayout, RandomShapesAreBijections) {
  std::mt19937_64 rng(78);
  for (int it = 0; it < 200; ++it) {
    const int64_t N = 1 + int64_t(rng() % 70), K = 32 * (1 + int64_t(rng() % 32));
    const int G = rng() & 1 ? 32 : 16;
    std::vector<int> hits(tiled_packed_bytes(N, K), 0), shits(tiled_scale_bytes(N, K, G), 0);
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t b = 0; b < K / 2; ++b) ++hits[tiled_packed_offset(n, b, K)];
      for (int64_t g = 0; g < K / G; ++g) ++shits[tiled_scale_offset(n, g, K, G)];
    }
    ASSERT_EQ(std::count(hits.begin(), hits.end(), 1), N * K / 2) << N << "x" << K;
    ASSERT_EQ(std::count(hits.begin(), hits.end(), 0), int64_t(hits.size()) - N * K / 2) << N << "x" << K;
    ASSERT_EQ(std::count(shits.begin(), shits.end(), 1), N * K / G) << N << "x" << K << " g" << G;
    std::vector<uint8_t> packed(N * K / 2), scales(N * K / G);
    for (auto& b : packed) b = uint8_t(rng());
    for (auto& b : scales) b = uint8_t(rng());
    const w4a8_weight c{packed.data(), scales.data(), nullptr, nullptr, N, K, G, W4A8_LAYOUT_CANONICAL, W4A8_FP8_NONE, 0, 0};
    std::vector<uint8_t> tp(hits.size()), ts(shits.size()), bp(packed.size()), bs(scales.size());
    ASSERT_EQ(w4a8_ref_prepack_weight(&c, tp.data(), ts.data()), W4A8_STATUS_SUCCESS);
    const w4a8_weight t{tp.data(), ts.data(), nullptr, nullptr, N, K, G, W4A8_LAYOUT_TILED, W4A8_FP8_NONE, 0, 0};
    ASSERT_EQ(w4a8_ref_unprepack_weight(&t, bp.data(), bs.data()), W4A8_STATUS_SUCCESS);
    ASSERT_TRUE(bp == packed && bs == scales) << N << "x" << K << " g" << G;
  }
}

// Bad requests: wrong input layout, K % 32 != 0, unknown layout value, overlapping buffers;
// nothing written.
TEST(TiledLayout, RefusesBadRequests) {
  std::vector<uint8_t> packed(16 * 64, 1), scales(16 * 8, 1), tp(2048, 0xEE), ts(256, 0xEE);
  w4a8_weight c{packed.data(), scales.data(), nullptr, nullptr, 16, 128, 16, W4A8_LAYOUT_CANONICAL, W4A8_FP8_NONE, 0, 0};
  w4a8_weight t = c;
  t.layout = W4A8_LAYOUT_TILED;
  EXPECT_EQ(w4a8_ref_prepack_weight(&t, tp.data(), ts.data()), W4A8_STATUS_INVALID_VALUE);
  EXPECT_NE(std::string(w4a8_last_error()).find("W4A8_LAYOUT_CANONICAL"), std::string::npos) << w4a8_last_error();
  EXPECT_EQ(w4a8_ref_unprepack_weight(&c, tp.data(), ts.data()), W4A8_STATUS_INVALID_VALUE);
  w4a8_weight k48 = c;
  k48.K = 48;
  EXPECT_EQ(w4a8_ref_prepack_weight(&k48, tp.data(), ts.data()), W4A8_STATUS_K_NOT_MULTIPLE);
  EXPECT_NE(std::string(w4a8_last_error()).find("K % 32"), std::string::npos) << w4a8_last_error();
  EXPECT_EQ(w4a8_ref_prepack_weight(&c, packed.data() + 16, ts.data()), W4A8_STATUS_INVALID_VALUE);
  EXPECT_NE(std::string(w4a8_last_error()).find("overlaps"), std::string::npos) << w4a8_last_error();
  w4a8_weight odd = c;
  odd.layout = 7;
  std::vector<uint16_t> y(16);
  std::vector<uint8_t> x(128);
  const float rs = 1.0f;
  EXPECT_EQ(w4a8_ref_gemm(x.data(), &rs, &odd, y.data(), 1, 1.0f), W4A8_STATUS_INVALID_VALUE);
  EXPECT_NE(std::string(w4a8_last_error()).find("layout=7"), std::string::npos) << w4a8_last_error();
  w4a8_weight bad_overlap = c;
  bad_overlap.overlap = -1;
  std::fill(y.begin(), y.end(), uint16_t(0xABAB));
  EXPECT_EQ(w4a8_ref_gemm(x.data(), &rs, &bad_overlap, y.data(), 1, 1.0f), W4A8_STATUS_INVALID_VALUE);
  EXPECT_NE(std::string(w4a8_last_error()).find("overlap=-1"), std::string::npos) << w4a8_last_error();
  EXPECT_TRUE(std::all_of(y.begin(), y.end(), [](uint16_t v) { return v == 0xABAB; }));
  EXPECT_TRUE(std::all_of(tp.begin(), tp.end(), [](uint8_t b) { return b == 0xEE; }));
  EXPECT_TRUE(std::all_of(ts.begin(), ts.end(), [](uint8_t b) { return b == 0xEE; }));
}

// The FP8 path's analysis by hand: unit scales with every magnitude -> largest product 6,
// shift 6 (6 * 64 = 384 <= 448 < 768), all products exact; scale 1.125 makes 1.5 * 1.125 =
// 1.6875 (four significant bits) round to 1.625 or 1.75 -> LOSSY with that error; the FP8
// value of a code follows the sign of the code and of the scale; NaN scales stay NaN.
TEST(Fp8Reference, HandComputedAnalysis) {
  uint32_t mask[256] = {};
  mask[kE4M3One] = 0xFF;
  w4a8_fp8_report r = ref::fp8_analyze(mask);
  EXPECT_EQ(r.shift, 6);
  EXPECT_EQ(r.exact, 1);
  EXPECT_EQ(r.max_rel_error, 0.0);
  const uint8_t s1125 = float_to_e4m3(1.125f);
  ASSERT_EQ(e4m3_to_float(s1125), 1.125f);
  mask[s1125] = 1u << 3;  // magnitude 1.5 only
  r = ref::fp8_analyze(mask);
  EXPECT_EQ(r.shift, 6);
  EXPECT_EQ(r.exact, 0);
  // 1.6875 * 64 = 108 lies between E4M3 104 and 112: a tie, to even (mantissa 0b100 = 112 ->
  // 1.75): error 0.0625 / 1.6875.
  EXPECT_DOUBLE_EQ(r.max_rel_error, 0.0625 / 1.6875);
  EXPECT_EQ(ref::fp8_weight_value(3, s1125, 6), 1.75f);
  EXPECT_EQ(ref::fp8_weight_value(3 | 8, s1125, 6), -1.75f);
  EXPECT_EQ(ref::fp8_weight_value(7, kE4M3One, 6), 6.0f);
  EXPECT_EQ(ref::fp8_weight_value(7, static_cast<uint8_t>(kE4M3One | 0x80), 6), -6.0f);
  EXPECT_TRUE(std::isnan(ref::fp8_weight_value(0, kE4M3NaN, 6)));
  // Large scales: 6 * 448 = 2688 needs shift -3 (336); tiny ones a large shift.
  uint32_t big[256] = {};
  big[0x7E] = 1u << 7;
  EXPECT_EQ(ref::fp8_analyze(big).shift, -3);
  uint32_t tiny[256] = {};
  tiny[0x01] = 1u << 1;  // 0.5 * 2^-9 = 2^-10: 2^-10 * 2^17 = 128 <= 448 < 256 * 2
  EXPECT_EQ(ref::fp8_analyze(tiny).shift, 18);
  uint32_t none[256] = {};
  EXPECT_EQ(ref::fp8_analyze(none).shift, 0);
  EXPECT_EQ(ref::fp8_analyze(none).exact, 1);
  // The C entry point on a host weight; tiled refused, nothing written.
  std::vector<uint8_t> packed(16 * 32, 0x77), scales(16 * 4, kE4M3One);
  w4a8_weight w{packed.data(), scales.data(), nullptr, nullptr, 16, 64, 16, W4A8_LAYOUT_CANONICAL, W4A8_FP8_NONE, 0, 0};
  ASSERT_EQ(w4a8_ref_prepare_fp8(&w, nullptr), W4A8_STATUS_SUCCESS) << w4a8_last_error();
  EXPECT_EQ(w.fp8, W4A8_FP8_EXACT);
  EXPECT_EQ(w.fp8_shift, 6);
  w4a8_weight t = w;
  t.layout = W4A8_LAYOUT_TILED;
  t.fp8 = W4A8_FP8_NONE;
  EXPECT_EQ(w4a8_ref_prepare_fp8(&t, nullptr), W4A8_STATUS_NOT_SUPPORTED);
  EXPECT_EQ(t.fp8, W4A8_FP8_NONE);
  EXPECT_EQ(w4a8_ref_prepare_fp8(nullptr, nullptr), W4A8_STATUS_NULL_POINTER);
}

// The FP8 oracle: a GEMM on weights rounded like the FP8 path rounds them equals the exact
// GEMM on an EXACT weight, and differs (by at most the product error) on a lossy one.
TEST(Fp8Reference, GemmOracle) {
  const int64_t M = 3, N = 5, K = 32;
  std::vector<uint8_t> x(M * K), packed(N * K / 2), scales(N * K / 16);
  std::mt19937_64 rng(9);
  for (auto& v : x) v = float_to_e4m3(float(int(rng() % 9) - 4));
  for (auto& v : packed) v = uint8_t(rng());
  std::vector<float> rs(M, 1.0f);
  for (int lossy = 0; lossy < 2; ++lossy) {
    for (auto& v : scales) v = lossy ? float_to_e4m3(1.125f) : kE4M3One;
    ref::HostWeight w{packed.data(), scales.data(), 1.0f, nullptr, N, K, 16};
    std::vector<uint16_t> y0(M * N), y1(M * N);
    std::vector<double> e0(M * N), e1(M * N), a0(M * N);
    ASSERT_EQ(ref::gemm(x.data(), rs.data(), w, M, 1.0f, y0.data(), e0.data(), a0.data()), W4A8_STATUS_SUCCESS);
    w.fp8 = true;
    w.fp8_shift = 6;
    ASSERT_EQ(ref::gemm(x.data(), rs.data(), w, M, 1.0f, y1.data(), e1.data()), W4A8_STATUS_SUCCESS);
    bool any_diff = false;
    for (int64_t i = 0; i < M * N; ++i) {
      if (!lossy) {
        EXPECT_EQ(e0[i], e1[i]);
      }
      EXPECT_LE(std::fabs(e0[i] - e1[i]), a0[i] * (0.0625 / 1.6875) + 1e-12);
      any_diff |= e0[i] != e1[i];
    }
    EXPECT_EQ(any_diff, lossy == 1);
  }
}

// The bit permutation of tiled words (w4a8/formats.hpp) is a bijection, and what the decode
// kernel extracts from a tiled word (one AND; two shifts and two ANDs) is the E4M3 form
// e2m1 * 2^-6 of the canonical word's codes k 0..3 and k 4..7 in k order: on every nibble
// value in every position and on random words.
TEST(TiledLayout, WordPermutationAndExtraction) {
  auto e4m3_of = [](uint32_t nib) { return ((nib >> 3) << 7) | ((nib & 7u) << 2); };  // sign; e1 e0 m -> 4..2
  auto check = [&](uint32_t w) {
    const uint32_t t = tiled_word_from_canonical(w);
    ASSERT_EQ(canonical_word_from_tiled(t), w) << std::hex << w;
    uint32_t lo = 0, hi = 0;
    for (int j = 0; j < 4; ++j) {
      lo |= e4m3_of((w >> (4 * j)) & 0xFu) << (8 * j);
      hi |= e4m3_of((w >> (4 * (j + 4))) & 0xFu) << (8 * j);
    }
    ASSERT_EQ(tiled_word_e4m3_lo(t), lo) << std::hex << w;
    ASSERT_EQ(tiled_word_e4m3_hi(t), hi) << std::hex << w;
  };
  for (int pos = 0; pos < 8; ++pos)
    for (uint32_t v = 0; v < 16; ++v) check(v << (4 * pos));
  std::mt19937_64 rng(79);
  for (int i = 0; i < 100000; ++i) check(uint32_t(rng()));
  // And the E4M3 byte of a code is the exact value e2m1 * 2^-6.
  for (uint32_t v = 0; v < 16; ++v)
    EXPECT_EQ(e4m3_to_float(uint8_t(e4m3_of(v))), e2m1_to_float(uint8_t(v)) / 64.0f) << v;
}

}  // namespace
}  // namespace w4a8
