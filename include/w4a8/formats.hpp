// Exact number formats of w4a8, on the host: BF16, FP8 E4M3 (FN), FP4 E2M1.
//
// These functions are the project's definition of every rounding it does. The GPU kernels
// must agree with them bit for bit (tests/gpu_quantize_test.cpp checks that), so each one is
// written for exactness, not speed: plain IEEE FP32 / FP64 arithmetic, no fast-math, no
// dependence on the host's rounding mode beyond the default round-to-nearest-even.
#ifndef W4A8_FORMATS_HPP_
#define W4A8_FORMATS_HPP_

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define W4A8_HD __host__ __device__ __forceinline__
#else
#define W4A8_HD inline
#endif

namespace w4a8 {

// ---- constants -------------------------------------------------------------------------
constexpr float kE4M3Max = 448.0f;       // largest finite E4M3 (0x7E)
constexpr float kE2M1Max = 6.0f;         // largest E2M1
constexpr float kNvfp4ScaleDenom = 2688.0f;                 // 6 * 448, ModelOpt's s2 divisor
constexpr float kBlockScaleMin = 1.0f / 512.0f;            // 2^-9, smallest E4M3 subnormal
constexpr float kActScaleMin = 1.0f / (448.0f * 512.0f);   // vLLM's floor for a row scale
constexpr uint8_t kE4M3NaN = 0x7F;
constexpr uint8_t kE4M3One = 0x38;

// ---- BF16 ------------------------------------------------------------------------------
float bf16_to_float(uint16_t b);
// Round-to-nearest-even; NaN stays NaN (quiet), Inf stays Inf, overflow goes to Inf.
uint16_t float_to_bf16(float f);
uint16_t double_to_bf16(double d);  // one rounding, straight from FP64

// ---- FP8 E4M3 (the "FN" variant: no Inf, NaN = 0x7F/0xFF, max 448) ---------------------
float e4m3_to_float(uint8_t code);
// Round-to-nearest-even, saturating to +-448 (CUDA's __NV_SATFINITE), NaN -> 0x7F.
// -0.0 keeps its sign (0x80), as the hardware conversion does.
uint8_t float_to_e4m3(float f);

W4A8_HD uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

// ---- FP4 E2M1 --------------------------------------------------------------------------
// Codes: bit 3 = sign, bits 2..0 = magnitude index into {0, .5, 1, 1.5, 2, 3, 4, 6}.
W4A8_HD float e2m1_to_float(uint8_t code) {
  // 2 * value, as integers, so the table is exact without a float literal table.
  const int twice[8] = {0, 1, 2, 3, 4, 6, 8, 12};
  const float v = 0.5f * static_cast<float>(twice[code & 7]);
  return (code & 8) ? -v : v;
}

// Round-to-nearest-even with saturation at 6. Written as a sum of comparisons so that the
// host and the device compute exactly the same thing. Ties go to the even code:
// 0.25->0, 0.75->1, 1.25->1, 1.75->2, 2.5->2, 3.5->4, 5->4. NaN -> +0 (the quantizers never
// pass NaN here: a non-finite tensor is handled before, see w4a8.h).
W4A8_HD uint8_t float_to_e2m1(float f) {
  const float a = f < 0.0f ? -f : f;
  const uint8_t mag = static_cast<uint8_t>((a > 0.25f) + (a >= 0.75f) + (a > 1.25f) +
                                           (a >= 1.75f) + (a > 2.5f) + (a >= 3.5f) + (a > 5.0f));
  // Sign from the bit, so -0.0 and tiny negatives give code 8 ("-0"), like the reference
  // implementations that copy the sign.
  return static_cast<uint8_t>(mag | ((float_bits(f) >> 28) & 8));
}

// Two codes -> one byte: the LOW nibble holds the even (lower-k) element.
W4A8_HD uint8_t pack_e2m1(uint8_t even, uint8_t odd) {
  return static_cast<uint8_t>((even & 0xF) | ((odd & 0xF) << 4));
}
W4A8_HD uint8_t unpack_e2m1(uint8_t byte, int index) {
  return static_cast<uint8_t>(index & 1 ? byte >> 4 : byte & 0xF);
}

// ---- scale rules shared by the CPU reference and the kernels ---------------------------
// Per-row activation scale from the row's amax (amax finite, >= 0).
W4A8_HD float activation_scale(float amax) {
  const float s = amax / kE4M3Max;
  return s > kActScaleMin ? s : kActScaleMin;
}

// NVFP4 tensor scale from the tensor's amax (finite, >= 0). An all-zero tensor (or one
// whose amax / 2688 underflows to 0) gets 1.0 so that nothing divides by zero; every block
// then has amax 0 (or below the smallest scale) and quantizes to zeros.
W4A8_HD float nvfp4_tensor_scale(float amax) {
  const float s2 = amax / kNvfp4ScaleDenom;
  return s2 > 0.0f ? s2 : 1.0f;
}

// Block scale before the E4M3 cast: amax_block / (6 * s2); 0 -> 1; clamp [2^-9, 448].
W4A8_HD float nvfp4_block_scale_unrounded(float amax_block, float s2) {
  const float denom = 6.0f * s2;
  float sb = amax_block / denom;
  if (sb == 0.0f) sb = 1.0f;
  if (sb < kBlockScaleMin) sb = kBlockScaleMin;
  if (sb > kE4M3Max) sb = kE4M3Max;
  return sb;
}

// ---- the tiled weight layout (W4A8_LAYOUT_TILED, see w4a8.h) --------------------------
// Canonical NVFP4 is row-major: [N, K/2] packed codes, [N, K/g] block scales. The tiled
// layout cuts it into tiles of 16 rows x 64 k, stored one after another, k-tiles of a row
// block consecutive: tile (rb, kt) starts at (rb * k_tiles + kt) * tile_bytes and holds its
// 16 rows row-major (32 bytes of codes per row, 512 per tile; 64/g bytes of scales per row in
// the separate scale array, same tile order). N is padded to a multiple of 16 and K to one of
// 64 with zero bytes. Why: a decode warp's step (16 rows x 128 k) is two whole tiles, 1 KB
// contiguous, instead of 16 rows x 64 bytes that lie K/2 bytes apart; and one tile is
// exactly what the wgmma kernel's TMA brings per 64-k stage for 16 rows (contiguous 512 B).
// (A first version had 128-k tiles: the decode kernel was as fast, but wgmma's stage boxes
// then read half tile rows and prefill ran 5-12% slower.)
//
// Within each 32-bit word (4 bytes, little-endian: codes of 8 consecutive k, k_j = nibble j
// of the canonical word) the tiled layout also permutes the bits: tiled byte i (i = 0..3)
// holds k_i and k_{i+4} as
//   bit 7: sign(k_i)   6: e1(k_{i+4})   5: sign(k_{i+4})   4..2: e1 e0 m (k_i)   1..0: e0 m (k_{i+4})
// so that one AND gives the E4M3 bytes (k_0..k_3) and two shifts and two ANDs give
// (k_4..k_7), in k order (tiled_word_e4m3_lo / _hi below): the decode kernel then needs no
// byte permutes for its activations and one integer instruction fewer per word for its weights
// than with the canonical nibbles (gemm_mma.cu).
W4A8_HD uint32_t tiled_word_from_canonical(uint32_t w) {
  uint32_t t = 0;
  for (int i = 0; i < 4; ++i) {
    const uint32_t a = (w >> (4 * i)) & 0xFu, b = (w >> (4 * (i + 4))) & 0xFu;
    const uint32_t byte = ((a >> 3) << 7) | (((b >> 2) & 1u) << 6) | ((b >> 3) << 5) | ((a & 7u) << 2) | (b & 3u);
    t |= byte << (8 * i);
  }
  return t;
}
W4A8_HD uint32_t canonical_word_from_tiled(uint32_t t) {
  uint32_t w = 0;
  for (int i = 0; i < 4; ++i) {
    const uint32_t byte = (t >> (8 * i)) & 0xFFu;
    const uint32_t a = ((byte >> 7) << 3) | ((byte >> 2) & 7u);
    const uint32_t b = (((byte >> 5) & 1u) << 3) | (((byte >> 6) & 1u) << 2) | (byte & 3u);
    w |= (a << (4 * i)) | (b << (4 * (i + 4)));
  }
  return w;
}
// The four E4M3 bytes e2m1 * 2^-6 (sign to bit 7, magnitude e1 e0 m to bits 4..2; see
// gemm_mma.cu for why 2^-6) of k_0..k_3 and of k_4..k_7 of a tiled word.
W4A8_HD uint32_t tiled_word_e4m3_lo(uint32_t t) { return t & 0x9C9C9C9Cu; }
W4A8_HD uint32_t tiled_word_e4m3_hi(uint32_t t) { return ((t << 2) & 0x8C8C8C8Cu) | ((t >> 2) & 0x10101010u); }
constexpr int64_t kTileRows = 16;
constexpr int64_t kTileK = 64;
W4A8_HD int64_t tiled_rows(int64_t N) { return (N + kTileRows - 1) / kTileRows * kTileRows; }
W4A8_HD int64_t tiled_k_tiles(int64_t K) { return (K + kTileK - 1) / kTileK; }
W4A8_HD int64_t tiled_packed_bytes(int64_t N, int64_t K) { return tiled_rows(N) * tiled_k_tiles(K) * (kTileK / 2); }
W4A8_HD int64_t tiled_scale_bytes(int64_t N, int64_t K, int group) {
  return tiled_rows(N) * tiled_k_tiles(K) * (kTileK / group);
}
// Offset in the tiled arrays of canonical byte `byte` (k / 2) of row n, and of block scale
// `grp` (k / group) of row n.
W4A8_HD int64_t tiled_packed_offset(int64_t n, int64_t byte, int64_t K) {
  constexpr int64_t row = kTileK / 2;
  return ((n / kTileRows) * tiled_k_tiles(K) + byte / row) * (kTileRows * row) + (n % kTileRows) * row + byte % row;
}
W4A8_HD int64_t tiled_scale_offset(int64_t n, int64_t grp, int64_t K, int group) {
  const int64_t row = kTileK / group;
  return ((n / kTileRows) * tiled_k_tiles(K) + grp / row) * (kTileRows * row) + (n % kTileRows) * row + grp % row;
}

}  // namespace w4a8

#endif  // W4A8_FORMATS_HPP_
