// Host definitions of the exact conversions declared in include/w4a8/formats.hpp.
#include "w4a8/formats.hpp"

#include <cmath>
#include <cstring>

namespace w4a8 {

float bf16_to_float(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

uint16_t float_to_bf16(float f) {
  uint32_t u = float_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // quiet NaN
  // Round to nearest even on the 16 dropped bits; carries into the exponent are correct
  // (they produce the next binade or Inf).
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

uint16_t double_to_bf16(double d) {
  // Rounding FP64 -> FP32 -> BF16 could double-round; do it in one step instead.
  if (std::isnan(d)) return 0x7FC0;
  if (d == 0.0) return std::signbit(d) ? 0x8000 : 0x0000;
  const double a = std::fabs(d);
  const uint16_t sign = std::signbit(d) ? 0x8000 : 0;
  if (a >= 0x1.FFp127) {
    // Above the largest BF16 (0x1.FEp127) the midpoint to "next" (2^128) rounds to Inf.
    return static_cast<uint16_t>(sign | 0x7F80);
  }
  int e;
  std::frexp(a, &e);           // a = f * 2^e, f in [0.5, 1)
  int exp = e - 1;             // a in [2^exp, 2^(exp+1))
  if (exp < -126) exp = -126;  // subnormal BF16: fixed quantum 2^-133
  const double quantum = std::ldexp(1.0, exp - 7);
  const double q = std::nearbyint(a / quantum);  // RNE; a / quantum is exact (power of 2)
  const float r = static_cast<float>(q * quantum);  // exact: q has <= 9 bits
  return static_cast<uint16_t>(sign | (float_to_bf16(r) & 0x7FFF));
}

namespace {
float e4m3_decode(uint8_t code) {
  const int s = code >> 7;
  const int e = (code >> 3) & 0xF;
  const int m = code & 7;
  float v;
  if (e == 0xF && m == 7) {
    v = NAN;
  } else if (e == 0) {
    v = std::ldexp(static_cast<float>(m), -9);  // subnormal: m * 2^-9
  } else {
    v = std::ldexp(static_cast<float>(8 + m), e - 7 - 3);
  }
  return s ? -v : v;
}

struct E4M3Table {
  float v[256];
  E4M3Table() {
    for (int i = 0; i < 256; ++i) v[i] = e4m3_decode(static_cast<uint8_t>(i));
  }
};
}  // namespace

// Table lookup: the reference GEMM decodes every operand once per use.
float e4m3_to_float(uint8_t code) {
  static const E4M3Table table;
  return table.v[code];
}

uint8_t float_to_e4m3(float f) {
  if (std::isnan(f)) return kE4M3NaN;
  const uint8_t sign = std::signbit(f) ? 0x80 : 0x00;
  const float a = std::fabs(f);
  if (a > kE4M3Max) return static_cast<uint8_t>(sign | 0x7E);  // satfinite (Inf too)
  if (a < 0x1p-6f) {
    // Subnormal range: quantum 2^-9; q == 8 is the smallest normal, encoded as 0x08.
    const float q = std::nearbyint(a * 512.0f);  // exact scaling, RNE
    return static_cast<uint8_t>(sign | static_cast<uint8_t>(q));
  }
  int e;
  std::frexp(a, &e);  // a in [2^(e-1), 2^e)
  int exp = e - 1;    // -6 .. 8
  float q = std::nearbyint(std::ldexp(a, 3 - exp));  // 8 .. 16, RNE
  if (q == 16.0f) {
    q = 8.0f;
    ++exp;
  }
  const int code = ((exp + 7) << 3) | (static_cast<int>(q) - 8);
  if (code > 0x7E) return static_cast<uint8_t>(sign | 0x7E);  // rounds past 448
  return static_cast<uint8_t>(sign | code);
}

}  // namespace w4a8
