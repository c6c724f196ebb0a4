// Exact formats: E4M3 checked exhaustively against an independent construction (nearest
// representable value by search, ties to the even code), E2M1 midpoint table, BF16 rounding.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "w4a8/formats.hpp"

namespace w4a8 {
namespace {

// Independent E4M3: value of each finite positive code from the definition, then the
// encoder by nearest-value search. Shares no code with src/core/formats.cpp.
double e4m3_value_by_definition(int code) {
  const int e = (code >> 3) & 0xF, m = code & 7;
  return e == 0 ? m / 512.0 : (1.0 + m / 8.0) * std::pow(2.0, e - 7);
}

uint8_t e4m3_by_search(float f) {
  if (std::isnan(f)) return 0x7F;
  const uint8_t sign = std::signbit(f) ? 0x80 : 0;
  const double a = std::fabs(static_cast<double>(f));
  if (a >= 448.0) return sign | 0x7E;  // satfinite: 448 and everything above
  int lo = 0;  // largest code with value <= a
  for (int c = 0; c <= 0x7E; ++c)
    if (e4m3_value_by_definition(c) <= a) lo = c;
  const double vlo = e4m3_value_by_definition(lo), vhi = e4m3_value_by_definition(lo + 1);
  int code;
  if (a - vlo < vhi - a) code = lo;
  else if (a - vlo > vhi - a) code = lo + 1;
  else code = (lo % 2 == 0) ? lo : lo + 1;  // tie: even mantissa
  return static_cast<uint8_t>(sign | code);
}

TEST(E4M3, DecodeMatchesDefinitionForEveryCode) {
  for (int c = 0; c < 256; ++c) {
    const float v = e4m3_to_float(static_cast<uint8_t>(c));
    if ((c & 0x7F) == 0x7F) {
      EXPECT_TRUE(std::isnan(v)) << c;
      continue;
    }
    const double expect = (c & 0x80 ? -1 : 1) * e4m3_value_by_definition(c & 0x7F);
    EXPECT_EQ(static_cast<double>(v), expect) << "code " << c;
  }
  EXPECT_EQ(e4m3_to_float(0x7E), 448.0f);
  EXPECT_EQ(e4m3_to_float(0x01), std::ldexp(1.0f, -9));
  EXPECT_EQ(e4m3_to_float(0x08), std::ldexp(1.0f, -6));
}

TEST(E4M3, EveryCodeRoundTrips) {
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7F) == 0x7F) continue;
    EXPECT_EQ(float_to_e4m3(e4m3_to_float(static_cast<uint8_t>(c))), c) << "code " << c;
  }
}

TEST(E4M3, EveryBf16InputMatchesIndependentEncoder) {
  for (uint32_t b = 0; b < 65536; ++b) {
    const float f = bf16_to_float(static_cast<uint16_t>(b));
    ASSERT_EQ(float_to_e4m3(f), e4m3_by_search(f)) << "bf16 0x" << std::hex << b << " = " << f;
  }
}

TEST(E4M3, MidpointsAndNeighboursMatchIndependentEncoder) {
  // Every midpoint between consecutive codes, and the floats right next to it.
  for (int c = 0; c < 0x7E; ++c) {
    const float mid = static_cast<float>((e4m3_value_by_definition(c) + e4m3_value_by_definition(c + 1)) / 2);
    for (float f : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f)}) {  // NOLINT
      for (float s : {1.0f, -1.0f}) {
        EXPECT_EQ(float_to_e4m3(s * f), e4m3_by_search(s * f)) << f;
      }
    }
  }
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<float> exp_dist(-14.0f, 10.0f);
  for (int i = 0; i < 200000; ++i) {
    const float f = std::ldexp(1.0f, 0) * std::exp2(exp_dist(rng)) * (i & 1 ? -1.0f : 1.0f);
    ASSERT_EQ(float_to_e4m3(f), e4m3_by_search(f)) << f;
  }
}

TEST(E4M3, SpecialValues) {
  EXPECT_EQ(float_to_e4m3(NAN), 0x7F);
  EXPECT_EQ(float_to_e4m3(INFINITY), 0x7E);  // satfinite
  EXPECT_EQ(float_to_e4m3(-INFINITY), 0xFE);
  EXPECT_EQ(float_to_e4m3(464.0f), 0x7E);
  EXPECT_EQ(float_to_e4m3(1e30f), 0x7E);
  EXPECT_EQ(float_to_e4m3(0.0f), 0x00);
  EXPECT_EQ(float_to_e4m3(-0.0f), 0x80);
  EXPECT_EQ(float_to_e4m3(std::ldexp(1.0f, -10)), 0x00);  // half the smallest subnormal: tie to 0
  EXPECT_EQ(float_to_e4m3(std::ldexp(3.0f, -11)), 0x01);  // 0.75 quanta: up to 1
  EXPECT_EQ(float_to_e4m3(std::ldexp(3.0f, -10)), 0x02);  // 1.5 quanta: tie to even (2)
  EXPECT_EQ(float_to_e4m3(1e-30f), 0x00);
}

TEST(E2M1, MidpointTable) {
  struct Case {
    float in, out;
  };
  // FORMATS.md: 0.25->0, 0.75->1, 1.25->1, 1.75->2, 2.5->2, 3.5->4, 5->4; above 5 -> 6.
  const Case cases[] = {{0.0f, 0.0f},  {0.25f, 0.0f}, {0.26f, 0.5f}, {0.5f, 0.5f}, {0.74f, 0.5f},
                        {0.75f, 1.0f}, {1.0f, 1.0f},  {1.25f, 1.0f}, {1.26f, 1.5f}, {1.5f, 1.5f},
                        {1.75f, 2.0f}, {2.0f, 2.0f},  {2.5f, 2.0f},  {2.51f, 3.0f}, {3.0f, 3.0f},
                        {3.49f, 3.0f}, {3.5f, 4.0f},  {4.0f, 4.0f},  {5.0f, 4.0f},  {5.01f, 6.0f},
                        {6.0f, 6.0f},  {7.0f, 6.0f},  {1e30f, 6.0f}, {INFINITY, 6.0f}};
  for (const Case& c : cases) {
    EXPECT_EQ(e2m1_to_float(float_to_e2m1(c.in)), c.out) << c.in;
    EXPECT_EQ(e2m1_to_float(float_to_e2m1(-c.in)), -c.out) << -c.in;
  }
  EXPECT_EQ(float_to_e2m1(-0.0f), 0x8);
  EXPECT_EQ(float_to_e2m1(-0.1f), 0x8);  // rounds to -0: sign bit kept
}

TEST(E2M1, EveryCodeRoundTripsAndPacksLowNibbleFirst) {
  const float values[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
  for (int c = 0; c < 16; ++c) {
    const float v = (c & 8 ? -1.0f : 1.0f) * values[c & 7];
    EXPECT_EQ(e2m1_to_float(static_cast<uint8_t>(c)), v);
    if (c != 8) {
      EXPECT_EQ(float_to_e2m1(v), c);
    }
  }
  EXPECT_EQ(pack_e2m1(0x3, 0xA), 0xA3);
  EXPECT_EQ(unpack_e2m1(0xA3, 0), 0x3);
  EXPECT_EQ(unpack_e2m1(0xA3, 1), 0xA);
}

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(float_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(float_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3F80);   // tie -> even
  EXPECT_EQ(float_to_bf16(1.0f + std::ldexp(3.0f, -8)), 0x3F82);   // tie -> even (up)
  EXPECT_EQ(float_to_bf16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)), 0x3F81);
  EXPECT_EQ(float_to_bf16(INFINITY), 0x7F80);
  EXPECT_EQ(float_to_bf16(3.4e38f), 0x7F80);  // rounds past the largest finite BF16
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(NAN))));
  for (uint32_t b = 0; b < 65536; ++b) {
    const float f = bf16_to_float(static_cast<uint16_t>(b));
    if (!std::isnan(f)) {
      ASSERT_EQ(float_to_bf16(f), b);
    }
  }
}

TEST(Bf16, FromDoubleRoundsOnce) {
  // 1 + 2^-8 + 2^-30: FP64 -> FP32 gives 1 + 2^-8 (a tie), -> BF16 then rounds to 1.0;
  // one rounding from FP64 must go up.
  EXPECT_EQ(double_to_bf16(1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -30)), 0x3F81);
  EXPECT_EQ(double_to_bf16(1.0 + std::ldexp(1.0, -8)), 0x3F80);
  EXPECT_EQ(double_to_bf16(-2.0), 0xC000);
  EXPECT_EQ(double_to_bf16(1e300), 0x7F80);
  EXPECT_EQ(double_to_bf16(std::ldexp(1.0, -133)), 0x0001);  // smallest subnormal
  std::mt19937_64 rng(3);
  std::normal_distribution<double> d(0.0, 100.0);
  for (int i = 0; i < 100000; ++i) {
    const double x = d(rng);
    const uint16_t b = double_to_bf16(x);
    const double v = bf16_to_float(b);
    const double up = bf16_to_float(static_cast<uint16_t>(b + 1));
    const double down = bf16_to_float(static_cast<uint16_t>(b - 1));
    ASSERT_LE(std::fabs(v - x), std::fabs(up - x)) << x;
    ASSERT_LE(std::fabs(v - x), std::fabs(down - x)) << x;
  }
}

}  // namespace
}  // namespace w4a8
