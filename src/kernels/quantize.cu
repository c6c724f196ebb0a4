// Quantization kernels: BF16 activations -> FP8 E4M3 per row, BF16 weights -> NVFP4.
// Bit-exact with the CPU reference (src/core/reference.cpp): the same FP32 expressions, the
// same order, IEEE division (the library is built without fast-math), and the hardware's
// RNE + satfinite E4M3 conversion, which the reference reproduces.
#include <cuda_runtime.h>

#include <atomic>
#include <type_traits>

#include "kernels/common.cuh"
#include "kernels/launch.hpp"
#include "w4a8/formats.hpp"

namespace w4a8 {
namespace kernels {
namespace {

constexpr int kActThreads = 256;
constexpr uint32_t kBf16InfBits = 0x7F80u;

// Max of the |BF16| bit patterns in a 16-byte vector (8 values); integer order is numeric
// order for non-negative floats and puts NaN above Inf, so NaN propagates.
__device__ __forceinline__ uint32_t amax_bits8(uint4 v) {
  const uint32_t w[4] = {v.x, v.y, v.z, v.w};
  uint32_t m = 0;
#pragma unroll
  for (int i = 0; i < 4; ++i) m = max(m, max(w[i] & 0x7FFFu, (w[i] >> 16) & 0x7FFFu));
  return m;
}

// Eight BF16 values (one 16-byte vector) times 1/scale -> eight E4M3 codes, RNE + satfinite:
// the reference's expression, shared by both activation quantizers.
__device__ __forceinline__ uint2 quantize8(uint4 v, float inv) {
  const uint32_t w[4] = {v.x, v.y, v.z, v.w};
  uint32_t out[2];
#pragma unroll
  for (int j = 0; j < 2; ++j) {
    const float2 f0 = make_float2(bf16_bits_to_float(w[2 * j] & 0xFFFFu) * inv,
                                  bf16_bits_to_float(w[2 * j] >> 16) * inv);
    const float2 f1 = make_float2(bf16_bits_to_float(w[2 * j + 1] & 0xFFFFu) * inv,
                                  bf16_bits_to_float(w[2 * j + 1] >> 16) * inv);
    const uint32_t p0 = __nv_cvt_float2_to_fp8x2(f0, __NV_SATFINITE, __NV_E4M3);
    const uint32_t p1 = __nv_cvt_float2_to_fp8x2(f1, __NV_SATFINITE, __NV_E4M3);
    out[j] = p0 | (p1 << 16);
  }
  return make_uint2(out[0], out[1]);
}

// The per-row rule all three activation quantizers share (w4a8.h): from the bits of the row's
// amax, the row scale (NaN for a non-finite row) and the E4M3 codes of 8 values (all 0x7F, NaN,
// for a non-finite row).
struct RowQuant {
  bool finite;
  float scale, inv;
  __device__ __forceinline__ explicit RowQuant(uint32_t amax_bits) : finite(amax_bits < kBf16InfBits) {
    scale = finite ? activation_scale(bf16_bits_to_float(amax_bits)) : __uint_as_float(0x7FC00000u);
    inv = finite ? 1.0f / scale : 0.0f;  // IEEE division, same as the reference
  }
  __device__ __forceinline__ uint2 codes(const uint4& v) const {
    return finite ? quantize8(v, inv) : make_uint2(0x7F7F7F7Fu, 0x7F7F7F7Fu);
  }
};

// One CTA per row. Pass 1 finds the row's amax; pass 2 re-reads the row (from L1/L2) and
// converts. K % 16 == 0, so the row is a whole number of 16-byte vectors of 8 values.
template <bool kEarly>
__global__ void __launch_bounds__(kActThreads)
    quantize_activation_kernel(const uint16_t* __restrict__ x, uint8_t* __restrict__ q,
                               float* __restrict__ row_scale, int64_t K) {
  // Our programmatic dependent (the fused linear's GEMM) reads only weights before its own
  // griddepcontrol.wait, which returns once we have finished. With `early` (an `overlap`
  // weight, or launched normally) it may launch at once, so its launch and first weight loads
  // overlap the kernel before us as well as our own work; otherwise once we have waited for
  // that kernel, which may write the weights (launch.hpp Pdl). The trigger fires once every
  // CTA of ours has run it, so the GEMM's CTAs cannot crowd ours out. (kEarly is a template
  // parameter: as a kernel argument, the trigger waited for its constant-bank load at kernel
  // start, and a chain of fused calls on `overlap` weights got 0.5-1% slower, H100.)
  pdl_enter(kEarly);
  __shared__ uint32_t smem[32];
  const int64_t row = blockIdx.x;
  const uint4* xr = reinterpret_cast<const uint4*>(x + row * K);
  uint2* qr = reinterpret_cast<uint2*>(q + row * K);
  const int64_t nvec = K / 8;

  uint32_t m = 0;
  for (int64_t i = threadIdx.x; i < nvec; i += blockDim.x) m = max(m, amax_bits8(__ldg(xr + i)));
  const RowQuant rq(block_max_u32(m, smem));
  for (int64_t i = threadIdx.x; i < nvec; i += blockDim.x) qr[i] = rq.codes(__ldg(xr + i));
  if (threadIdx.x == 0) row_scale[row] = rq.scale;
}

// The same quantization with the whole row in registers, one read: one CTA per row, VECS
// 16-byte vectors per thread. Few rows (decode): VECS = 4 and up to 1024 threads (K <= 32768):
// with one 256-thread CTA per row, a 32 KB row is read twice by 256 threads in sequence (~4 us
// at K = 16384 before the GEMM may start); here every load of the row is in flight at once.
// Many rows (prefill): VECS = 8 and up to 256 threads (K <= 16384), so that 8 CTAs fit on an
// SM: one DRAM read of each row instead of the two-pass kernel's read and L2 re-read.
// Same amax (an order-free max), same scale, same conversions: bit-exact with the reference.
constexpr int kVecsPerThread = 4;
constexpr int kRegsMaxThreads = 1024;
constexpr int kVecsPerThreadMany = 8;
constexpr int kRegsManyThreads = 256;

// The row of this CTA (nvec 16-byte vectors at xr) read once into registers, VECS vectors per
// thread: its RowQuant, and the codes of vector i written to codes[i] (8 bytes, k order).
template <int VECS>
__device__ __forceinline__ RowQuant quantize_row_in_registers(const uint4* __restrict__ xr, int nvec,
                                                              uint32_t* smem32, uint2* codes) {
  uint4 v[VECS];
  uint32_t m = 0;
#pragma unroll
  for (int j = 0; j < VECS; ++j) {
    const int i = threadIdx.x + j * blockDim.x;
    v[j] = i < nvec ? __ldg(xr + i) : make_uint4(0u, 0u, 0u, 0u);
    m = max(m, amax_bits8(v[j]));
  }
  const RowQuant rq(block_max_u32(m, smem32));
#pragma unroll
  for (int j = 0; j < VECS; ++j) {
    const int i = threadIdx.x + j * blockDim.x;
    if (i < nvec) codes[i] = rq.codes(v[j]);
  }
  return rq;
}

template <int VECS, int MAX_THREADS, bool kEarly>
__global__ void __launch_bounds__(MAX_THREADS)
    quantize_activation_regs_kernel(const uint16_t* __restrict__ x, uint8_t* __restrict__ q,
                                    float* __restrict__ row_scale, int64_t K) {
  pdl_enter(kEarly);  // see quantize_activation_kernel
  __shared__ uint32_t smem[32];
  const int64_t row = blockIdx.x;
  const RowQuant rq = quantize_row_in_registers<VECS>(reinterpret_cast<const uint4*>(x + row * K),
                                                      static_cast<int>(K / 8), smem,
                                                      reinterpret_cast<uint2*>(q + row * K));
  if (threadIdx.x == 0) row_scale[row] = rq.scale;
}

// ---- Permuted activations for the wgmma kernels ------------------------------------------
// The wgmma kernels take their activations in a k order permuted within blocks of k, rows
// padded with zeros to whole blocks (gemm_wgmma.cu explains why), written by the prologue
// kernels below in 16-byte output units. A unit takes one 32-bit word of codes (4 k) from
// each quarter c = 0..3 of its block: words word0 + stride * c. Two layouts:
//  - f16p (exact path): FP16 values, 64-k blocks; logical column 16s + 8h + 2c + e holds
//    k = 16c + 8(s>>1) + (s&1) + 4h + 2e. Unit 2s + h holds the pairs c = 0..3: from word
//    2(s>>1) + h + 4c, bytes (s&1) and (s&1) + 2, widened to FP16.
//  - f16p for tiled weights (exact path on W4A8_LAYOUT_TILED): the same blocks and columns,
//    but column 16s + 8h + 2c + e holds k = 16c + 8(s>>1) + 4(s&1) + 2h + e, the order in which
//    the tiled words' bits come out (gemm_wgmma.cu dequant_exact). Unit 2s + h holds the pairs
//    c = 0..3 from word s + 4c, bytes 2h and 2h + 1.
//  - fp8p (FP8 path): the codes, 128-k blocks; slot 32s + 16h + 4c + e holds
//    k = 32c + 8s + 4h + e. Unit j holds words j + 8c unchanged.
template <bool kTiled>
struct F16pUnitOf {
  static constexpr int kBlockK = 64, kStride = 4;
  static constexpr bool kManyRows = true;  // permute_fp8_kernel: 4 rows per thread when large
  int64_t blk;   // block of the row
  int word0;     // code word of quarter 0
  uint32_t sel;  // prmt selector of the two codes in a word
  __device__ __forceinline__ explicit F16pUnitOf(int64_t unit) : blk(unit / 8) {
    const int j = static_cast<int>(unit % 8), s = j >> 1, h = j & 1;
    if constexpr (kTiled) {
      word0 = s;
      sel = h ? 0x3332u : 0x3310u;
    } else {
      word0 = 2 * (s >> 1) + h;
      sel = (s & 1) ? 0x3331u : 0x3320u;
    }
  }
  // Codes of one word -> the unit's 32-bit output from them (two FP16 values).
  __device__ __forceinline__ uint32_t out(uint32_t codes) const { return e4m3x2_to_f16x2(prmt(codes, 0u, sel)); }
};
using F16pUnit = F16pUnitOf<false>;
using F16pTiledUnit = F16pUnitOf<true>;
struct Fp8pUnit {
  static constexpr int kBlockK = 128, kStride = 8;
  static constexpr bool kManyRows = false;
  int64_t blk;
  int word0;
  __device__ __forceinline__ explicit Fp8pUnit(int64_t unit) : blk(unit / 8), word0(static_cast<int>(unit % 8)) {}
  __device__ __forceinline__ uint32_t out(uint32_t codes) const { return codes; }
};

// The code word (k = 4i .. 4i + 3 of its row) of quarter c of unit u.
template <class Unit>
__device__ __forceinline__ int64_t unit_word(const Unit& u, int c) {
  return u.blk * (Unit::kBlockK / 4) + u.word0 + Unit::kStride * c;
}

// The 16-byte output unit u of one row from the row's code words (word_at(i): code word i,
// only asked for words inside K); padding past K stays zero. For the register quantizer (words
// it just wrote to shared memory); the FP8 -> permuted prologue below does the same over
// several rows at once.
template <class Unit, class WordAt>
__device__ __forceinline__ uint4 permuted_unit(const Unit& u, int64_t K, WordAt word_at) {
  uint32_t w[4];
#pragma unroll
  for (int c = 0; c < 4; ++c) {
    const int64_t word = unit_word(u, c);
    w[c] = u.out(4 * word < K ? word_at(word) : 0u);
  }
  return make_uint4(w[0], w[1], w[2], w[3]);
}

// FP8 [M, K] -> a permuted layout, row_bytes per output row. One thread per 16-byte output
// unit, so a warp's stores cover 512 contiguous bytes; the 8 threads of a block share its
// source bytes through L1. Each thread does the unit of R rows (blockIdx.y + j * gridDim.y),
// all their loads first. Large FP16 outputs take R = 4 (kPermuteManyRows, from kPermuteManyUnits): with one row per
// thread an SM had ~16 KB of distinct source bytes in flight, too few to keep HBM busy (H100,
// ncu: [968, 16384] FP8 -> FP16 at 2.3 TB/s); same process against R = 1 (base / new / base,
// bench/results/ab-permute-rows-h100-2026-11-26.txt): the GEMMs of 2048x16384 at M = 968 -3.8%,
// 1024x4096 at M = 4096 -3.6%, 2048x2048 at M = 4096 -1.6%, the others within run-to-run noise
// (2048x16384 at M = 4096 -0.2%). Small problems keep R = 1 (with a quarter of the threads,
// 2048x2048 M = 968 was +7.5%), and so does the FP8 path's 1:1 permutation (Unit::kManyRows:
// with R = 4 its GEMMs at M = 4096 were +2.0% / +4.8% on 2048x16384 / 1024x4096).
// Grid: (units per row / blockDim, min(ceil(M / R), 65535)).
constexpr int64_t kPermuteManyUnits = int64_t(1) << 20;  // M * units per row from which R = kPermuteManyRows
constexpr int kPermuteManyRows = 4;
template <class Unit, int R, bool kEarly>
__global__ void permute_fp8_kernel(const uint8_t* __restrict__ q, uint8_t* __restrict__ out, int64_t M,
                                   int64_t K, int64_t row_bytes) {
  pdl_enter(kEarly);  // as in quantize_activation_kernel (our input is the preceding kernel's)
  const int64_t unit = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (unit * 16 >= row_bytes) return;
  const Unit u(unit);
  const int64_t G = gridDim.y;
  for (int64_t row0 = blockIdx.y; row0 < M; row0 += G * R) {
    uint32_t w[R][4];
#pragma unroll
    for (int j = 0; j < R; ++j) {
      const int64_t row = row0 + j * G;
      const uint32_t* src = reinterpret_cast<const uint32_t*>(q + (row < M ? row : 0) * K);
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int64_t word = unit_word(u, c);
        w[j][c] = row < M && 4 * word < K ? __ldg(src + word) : 0u;  // padding past K stays zero
      }
    }
#pragma unroll
    for (int j = 0; j < R; ++j) {
      const int64_t row = row0 + j * G;
      if (row < M)
        reinterpret_cast<uint4*>(out + row * row_bytes)[unit] =
            make_uint4(u.out(w[j][0]), u.out(w[j][1]), u.out(w[j][2]), u.out(w[j][3]));
    }
  }
}

// BF16 [M, K] -> a permuted layout + row scales: the FP8 quantizer above (same amax, same
// scale, same RNE + satfinite codes), written as permute_fp8_kernel would write its output.
// One CTA per row; after the amax, one thread per 16-byte output unit (coalesced stores): it
// quantizes the words of quarters c and c + 1 it needs at a time (quantize8 on 8 values)
// from the row, now in L1.
template <class Unit, bool kEarly>
__global__ void __launch_bounds__(kActThreads)
    quantize_activation_permuted_kernel(const uint16_t* __restrict__ x, uint8_t* __restrict__ out,
                                        float* __restrict__ row_scale, int64_t K, int64_t row_bytes) {
  pdl_enter(kEarly);  // see quantize_activation_kernel
  __shared__ uint32_t smem[32];
  const int64_t row = blockIdx.x;
  const uint16_t* xr = x + row * K;
  const int64_t nvec = K / 8;
  uint32_t m = 0;
  for (int64_t i = threadIdx.x; i < nvec; i += blockDim.x)
    m = max(m, amax_bits8(__ldg(reinterpret_cast<const uint4*>(xr) + i)));
  const RowQuant rq(block_max_u32(m, smem));
  uint4* orow = reinterpret_cast<uint4*>(out + row * row_bytes);
  for (int64_t unit = threadIdx.x; unit * 16 < row_bytes; unit += blockDim.x) {
    const Unit u(unit);
    uint32_t w[4];
#pragma unroll
    for (int c = 0; c < 4; c += 2) {
      const int64_t ka = u.blk * Unit::kBlockK + 4 * (u.word0 + Unit::kStride * c);
      const int64_t kb = ka + 4 * Unit::kStride;  // quarters c, c + 1
      const uint2 va = ka < K ? __ldg(reinterpret_cast<const uint2*>(xr + ka)) : make_uint2(0u, 0u);
      const uint2 vb = kb < K ? __ldg(reinterpret_cast<const uint2*>(xr + kb)) : make_uint2(0u, 0u);
      const uint2 codes = rq.codes(make_uint4(va.x, va.y, vb.x, vb.y));
      w[c] = u.out(ka < K ? codes.x : 0u);  // padding past K stays zero
      w[c + 1] = u.out(kb < K ? codes.y : 0u);
    }
    orow[unit] = make_uint4(w[0], w[1], w[2], w[3]);
  }
  if (threadIdx.x == 0) row_scale[row] = rq.scale;
}

// The same with the row in registers (rows up to kVecsPerThreadMany * kRegsManyThreads
// vectors, K <= 16384): one read of the row, its codes in k order through shared memory (K
// bytes, dynamic), then the permuted 16-byte units as above (a warp's shared-memory reads are
// consecutive words).
template <class Unit, bool kEarly>
__global__ void __launch_bounds__(kRegsManyThreads)
    quantize_activation_permuted_regs_kernel(const uint16_t* __restrict__ x, uint8_t* __restrict__ out,
                                             float* __restrict__ row_scale, int64_t K, int64_t row_bytes) {
  pdl_enter(kEarly);  // see quantize_activation_kernel
  __shared__ uint32_t smem[32];
  extern __shared__ uint32_t row_codes[];  // K / 4 words
  const int64_t row = blockIdx.x;
  const RowQuant rq = quantize_row_in_registers<kVecsPerThreadMany>(
      reinterpret_cast<const uint4*>(x + row * K), static_cast<int>(K / 8), smem, reinterpret_cast<uint2*>(row_codes));
  __syncthreads();
  uint4* orow = reinterpret_cast<uint4*>(out + row * row_bytes);
  for (int64_t unit = threadIdx.x; unit * 16 < row_bytes; unit += blockDim.x)
    orow[unit] = permuted_unit(Unit(unit), K, [&](int64_t word) { return row_codes[word]; });
  if (threadIdx.x == 0) row_scale[row] = rq.scale;
}

// FP8 path, load time: one thread per group (canonical layout): the bits of the E2M1
// magnitudes it holds, OR-ed into mask[its scale byte] through a per-CTA copy.
template <int GROUP>
__global__ void fp8_scale_usage_kernel(const uint8_t* __restrict__ packed, const uint8_t* __restrict__ scales,
                                       int64_t groups, uint32_t* __restrict__ mask) {
  __shared__ uint32_t local[256];
  for (int i = threadIdx.x; i < 256; i += blockDim.x) local[i] = 0u;
  __syncthreads();
  for (int64_t gi = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; gi < groups; gi += int64_t(gridDim.x) * blockDim.x) {
    const uint32_t* codes = reinterpret_cast<const uint32_t*>(packed + gi * (GROUP / 2));
    uint32_t bits = 0;
#pragma unroll
    for (int i = 0; i < GROUP / 8; ++i) {
      const uint32_t q = __ldg(codes + i);
#pragma unroll
      for (int n = 0; n < 8; ++n) bits |= 1u << ((q >> (4 * n)) & 7u);
    }
    atomicOr(&local[__ldg(scales + gi)], bits);
  }
  __syncthreads();
  for (int i = threadIdx.x; i < 256; i += blockDim.x)
    if (local[i]) atomicOr(mask + i, local[i]);
}

// Weight step 1: amax over the whole tensor, as float bits, atomically max-ed into
// *amax_bits (zeroed by the launcher right before).
__global__ void weight_amax_kernel(const uint16_t* __restrict__ w, int64_t nvec,
                                   uint32_t* __restrict__ amax_bits) {
  __shared__ uint32_t smem[32];
  const uint4* wv = reinterpret_cast<const uint4*>(w);
  uint32_t m = 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < nvec;
       i += int64_t(gridDim.x) * blockDim.x)
    m = max(m, amax_bits8(__ldg(wv + i)));
  m = block_max_u32(m, smem);
  if (threadIdx.x == 0 && m != 0) atomicMax(amax_bits, m << 16);
}

// Weight step 2: one thread per block of GROUP values (row-major over [N, K/GROUP]).
template <int GROUP>
__global__ void quantize_weight_kernel(const uint16_t* __restrict__ w,
                                       uint8_t* __restrict__ packed,
                                       uint8_t* __restrict__ block_scale,
                                       const uint32_t* __restrict__ amax_bits, int64_t nblocks) {
  const int64_t b = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (b >= nblocks) return;
  const uint32_t amax = *amax_bits;
  constexpr int kVecs = GROUP / 8;  // 16-byte input vectors; each gives one output word
  uint2* dst = reinterpret_cast<uint2*>(packed + b * (GROUP / 2));
  if (amax >= (kBf16InfBits << 16)) {  // non-finite tensor (w4a8.h contract)
    block_scale[b] = kE4M3NaN;
#pragma unroll
    for (int i = 0; i < kVecs / 2; ++i) dst[i] = make_uint2(0u, 0u);
    return;
  }
  const float s2 = nvfp4_tensor_scale(__uint_as_float(amax));
  uint4 v[kVecs];
  const uint4* src = reinterpret_cast<const uint4*>(w + b * GROUP);
  uint32_t bm = 0;
#pragma unroll
  for (int i = 0; i < kVecs; ++i) {
    v[i] = __ldg(src + i);
    bm = max(bm, amax_bits8(v[i]));
  }
  const float sb = nvfp4_block_scale_unrounded(bf16_bits_to_float(bm), s2);
  const uint8_t sb_code = static_cast<uint8_t>(
      __nv_cvt_float_to_fp8(sb, __NV_SATFINITE, __NV_E4M3));
  const __half_raw sb_h = __nv_cvt_fp8_to_halfraw(sb_code, __NV_E4M3);
  const float scale = __half2float(__half(sb_h)) * s2;  // exact decode, then one rounding
  uint32_t words[kVecs];
#pragma unroll
  for (int i = 0; i < kVecs; ++i) {
    const uint32_t u[4] = {v[i].x, v[i].y, v[i].z, v[i].w};
    uint32_t word = 0;  // 8 codes, low nibble = even k
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const uint32_t c0 = float_to_e2m1(bf16_bits_to_float(u[j] & 0xFFFFu) / scale);
      const uint32_t c1 = float_to_e2m1(bf16_bits_to_float(u[j] >> 16) / scale);
      word |= (c0 | (c1 << 4)) << (8 * j);
    }
    words[i] = word;
  }
#pragma unroll
  for (int i = 0; i < kVecs / 2; ++i) dst[i] = make_uint2(words[2 * i], words[2 * i + 1]);
  block_scale[b] = sb_code;
}

// Weight step 3: turn the amax bits into s2 (NaN when non-finite).
__global__ void finalize_tensor_scale_kernel(uint32_t* amax_bits) {
  const uint32_t amax = *amax_bits;
  const float s2 = amax >= (kBf16InfBits << 16) ? __uint_as_float(0x7FC00000u)
                                                : nvfp4_tensor_scale(__uint_as_float(amax));
  *reinterpret_cast<float*>(amax_bits) = s2;
}

}  // namespace

namespace {
// The launch a Pdl asks for (launch.hpp): launch(std::bool_constant<kEarly>, dep) with dep =
// launched as a programmatic dependent and kEarly = the kernel releases its own dependent
// before its wait. kDependent: programmatic, release after the wait; kDependentEarly:
// programmatic, release before it; kSerial: a normal launch, which runs after everything
// before it and so may release at once (the kEarly kernels).
template <class Launch>
cudaError_t launch_as(Pdl pdl, Launch launch) {
  return pdl == Pdl::kDependent ? launch(std::false_type(), true) : launch(std::true_type(), pdl != Pdl::kSerial);
}

// Dynamic shared memory (unused) that keeps a kernel's CTAs one per SM: more than half an SM's.
// For a quantizer launched as a programmatic dependent: its CTAs are placed while the kernel
// before it still runs, on the few SMs that kernel leaves free, and would otherwise stack
// there (up to 32 per SM) and run their row reductions on those few SMs; one per SM, the rest
// are placed as that kernel's CTAs leave, spread over the GPU (H100: the fused pi0.5 traces
// 3.0-3.8% faster with this alone, fused calls at M <= 64 within -6% .. +2.5%; the launch
// policy it allows, api.cpp prologue_pdl). 0 where it cannot be had. The bytes are asked of
// the device once (per device), the opt-in made once per kernel and device (the kernel is a
// template argument, so each has its own record).
int spread_bytes(int dev) {
  static std::atomic<int> cached[64];  // per device: 0 not yet asked, -1 none, else bytes
  int want = dev >= 0 && dev < 64 ? cached[dev].load(std::memory_order_acquire) : 0;
  if (want == 0) {
    int per_sm = 0, per_block = 0;
    want = cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, dev) == cudaSuccess &&
                   cudaDeviceGetAttribute(&per_block, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) == cudaSuccess &&
                   per_sm / 2 + 1024 <= per_block
               ? per_sm / 2 + 1024
               : -1;
    if (dev >= 0 && dev < 64) cached[dev].store(want, std::memory_order_release);
  }
  return want;
}
template <auto kKernel>
size_t spread_smem() {
  static std::atomic<uint64_t> opted_in;
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return 0;
  const int want = spread_bytes(dev);
  if (want <= 0 || opt_in_dynamic_smem(reinterpret_cast<const void*>(kKernel), want, dev, opted_in) != cudaSuccess)
    return 0;
  return size_t(want);
}

}  // namespace

bool quantize_activation_spreads(int64_t M, int64_t K) {
  return M <= 64 && K / 8 <= int64_t(kVecsPerThread) * kRegsMaxThreads;
}

namespace {
template <bool kEarly>
cudaError_t launch_quantize_plain(const uint16_t* x, uint8_t* q, float* row_scale, int64_t M, int64_t K,
                                  cudaStream_t stream, bool dep) {
  // Few rows: the register kernel with wide CTAs (latency: the GEMM waits for it). Many rows:
  // the register kernel with CTAs of <= 256 threads, several per SM (bandwidth); rows longer
  // than 16384: the two-pass kernel.
  const int64_t nvec = K / 8;
  auto threads_for = [&](int vecs) {
    const int64_t per = (nvec + vecs - 1) / vecs;
    return static_cast<int>((per + 31) / 32 * 32);
  };
  const dim3 grid(static_cast<unsigned>(M));
  if (quantize_activation_spreads(M, K)) {  // (the few-row register kernel)
    constexpr auto kernel = quantize_activation_regs_kernel<kVecsPerThread, kRegsMaxThreads, kEarly>;
    return launch_maybe_pdl(kernel, grid, dim3(threads_for(kVecsPerThread)), dep ? spread_smem<kernel>() : 0, stream,
                            dep, x, q, row_scale, K);
  }
  if (nvec <= int64_t(kVecsPerThreadMany) * kRegsManyThreads)
    return launch_maybe_pdl(quantize_activation_regs_kernel<kVecsPerThreadMany, kRegsManyThreads, kEarly>, grid,
                            dim3(threads_for(kVecsPerThreadMany)), 0, stream, dep, x, q, row_scale, K);
  return launch_maybe_pdl(quantize_activation_kernel<kEarly>, grid, dim3(kActThreads), 0, stream, dep, x, q, row_scale,
                          K);
}

// Rows up to 16384 values: the register kernel (one read of each row); longer: two passes.
template <class Unit, bool kEarly>
cudaError_t launch_quantize_permuted(const uint16_t* x, uint8_t* out, float* row_scale, int64_t M, int64_t K,
                                     int64_t row_bytes, cudaStream_t stream, bool dep) {
  const int64_t nvec = K / 8;
  const dim3 grid(static_cast<unsigned>(M));
  if (nvec <= int64_t(kVecsPerThreadMany) * kRegsManyThreads) {
    const int64_t per = (nvec + kVecsPerThreadMany - 1) / kVecsPerThreadMany;
    const int threads = static_cast<int>((per + 31) / 32 * 32);
    return launch_maybe_pdl(quantize_activation_permuted_regs_kernel<Unit, kEarly>, grid, dim3(threads), size_t(K),
                            stream, dep, x, out, row_scale, K, row_bytes);
  }
  return launch_maybe_pdl(quantize_activation_permuted_kernel<Unit, kEarly>, grid, dim3(kActThreads), 0, stream, dep,
                          x, out, row_scale, K, row_bytes);
}
template <class Unit>
cudaError_t launch_quantize_permuted(const uint16_t* x, uint8_t* out, float* row_scale, int64_t M, int64_t K,
                                     int64_t row_bytes, cudaStream_t stream, Pdl pdl) {
  return launch_as(pdl, [&](auto early, bool dep) {
    return launch_quantize_permuted<Unit, decltype(early)::value>(x, out, row_scale, M, K, row_bytes, stream, dep);
  });
}
}  // namespace

cudaError_t launch_quantize_activation(const uint16_t* x, uint8_t* q, float* row_scale,
                                       int64_t M, int64_t K, cudaStream_t stream, Pdl pdl) {
  return launch_as(pdl, [&](auto early, bool dep) {
    return launch_quantize_plain<decltype(early)::value>(x, q, row_scale, M, K, stream, dep);
  });
}

cudaError_t launch_quantize_activation_f16p(const uint16_t* x, uint16_t* out, float* row_scale,
                                            int64_t M, int64_t K, cudaStream_t stream, Pdl pdl, bool tiled) {
  if (tiled)
    return launch_quantize_permuted<F16pTiledUnit>(x, reinterpret_cast<uint8_t*>(out), row_scale, M, K,
                                                   f16p_row_elems(K) * 2, stream, pdl);
  return launch_quantize_permuted<F16pUnit>(x, reinterpret_cast<uint8_t*>(out), row_scale, M, K,
                                            f16p_row_elems(K) * 2, stream, pdl);
}

cudaError_t launch_quantize_activation_fp8p(const uint16_t* x, uint8_t* out, float* row_scale, int64_t M,
                                            int64_t K, cudaStream_t stream, Pdl pdl) {
  return launch_quantize_permuted<Fp8pUnit>(x, out, row_scale, M, K, fp8p_row_bytes(K), stream, pdl);
}

namespace {
template <class Unit>
cudaError_t launch_permute(const uint8_t* q, uint8_t* out, int64_t M, int64_t K, int64_t row_bytes,
                           cudaStream_t stream, Pdl pdl) {
  const int64_t units = row_bytes / 16;
  const int threads = 128;
  const int R = Unit::kManyRows && M * units >= kPermuteManyUnits ? kPermuteManyRows : 1;
  const int64_t rows = (M + R - 1) / R;
  const dim3 grid(static_cast<unsigned>((units + threads - 1) / threads), static_cast<unsigned>(rows < 65535 ? rows : 65535));
  return launch_as(pdl, [&](auto early, bool dep) {
    constexpr bool kEarly = decltype(early)::value;
    if constexpr (Unit::kManyRows)  // (no R = 4 kernel for units that never take it)
      if (R == kPermuteManyRows)
        return launch_maybe_pdl(permute_fp8_kernel<Unit, kPermuteManyRows, kEarly>, grid, dim3(threads), 0, stream,
                                dep, q, out, M, K, row_bytes);
    return launch_maybe_pdl(permute_fp8_kernel<Unit, 1, kEarly>, grid, dim3(threads), 0, stream, dep, q, out, M, K,
                            row_bytes);
  });
}
}  // namespace

cudaError_t launch_fp8_to_f16p(const uint8_t* q, uint16_t* out, int64_t M, int64_t K,
                               cudaStream_t stream, Pdl pdl, bool tiled) {
  if (tiled)
    return launch_permute<F16pTiledUnit>(q, reinterpret_cast<uint8_t*>(out), M, K, f16p_row_elems(K) * 2, stream, pdl);
  return launch_permute<F16pUnit>(q, reinterpret_cast<uint8_t*>(out), M, K, f16p_row_elems(K) * 2, stream, pdl);
}

cudaError_t launch_fp8_to_fp8p(const uint8_t* q, uint8_t* out, int64_t M, int64_t K, cudaStream_t stream, Pdl pdl) {
  return launch_permute<Fp8pUnit>(q, out, M, K, fp8p_row_bytes(K), stream, pdl);
}

cudaError_t launch_fp8_scale_usage(const uint8_t* packed, const uint8_t* scales, int64_t N, int64_t K,
                                   int group, uint32_t* mask, cudaStream_t stream) {
  const int64_t groups = N * (K / group);
  const int threads = 256;
  const int64_t want = (groups + threads - 1) / threads;
  const unsigned grid = static_cast<unsigned>(want < 1024 ? want : 1024);
  if (group == 16)
    fp8_scale_usage_kernel<16><<<grid, threads, 0, stream>>>(packed, scales, groups, mask);
  else
    fp8_scale_usage_kernel<32><<<grid, threads, 0, stream>>>(packed, scales, groups, mask);
  return cudaGetLastError();
}

cudaError_t launch_quantize_weight(const uint16_t* w, uint8_t* packed, uint8_t* block_scale,
                                   float* tensor_scale, int64_t N, int64_t K, int group,
                                   cudaStream_t stream) {
  // The tensor-scale slot doubles as the amax accumulator until step 3 rewrites it.
  uint32_t* amax = reinterpret_cast<uint32_t*>(tensor_scale);
  cudaError_t err = cudaMemsetAsync(amax, 0, sizeof(uint32_t), stream);
  if (err != cudaSuccess) return err;
  const int64_t nvec = N * K / 8;
  const int threads = 256;
  const int64_t want = (nvec + threads - 1) / threads;
  const unsigned grid = static_cast<unsigned>(want < 4096 ? want : 4096);
  weight_amax_kernel<<<grid, threads, 0, stream>>>(w, nvec, amax);
  if ((err = cudaGetLastError()) != cudaSuccess) return err;
  const int64_t nblocks = N * K / group;
  const unsigned qgrid = static_cast<unsigned>((nblocks + threads - 1) / threads);
  if (group == 16)
    quantize_weight_kernel<16><<<qgrid, threads, 0, stream>>>(w, packed, block_scale, amax, nblocks);
  else
    quantize_weight_kernel<32><<<qgrid, threads, 0, stream>>>(w, packed, block_scale, amax, nblocks);
  if ((err = cudaGetLastError()) != cudaSuccess) return err;
  finalize_tensor_scale_kernel<<<1, 1, 0, stream>>>(amax);
  return cudaGetLastError();
}

}  // namespace kernels
}  // namespace w4a8
