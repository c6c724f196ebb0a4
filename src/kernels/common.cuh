// Device helpers shared by the kernels: format conversions, the tensor-core instruction,
// cached loads, programmatic dependent launch (and its host-side launcher). Every conversion
// here is exact (see the comments for why).
#ifndef W4A8_SRC_KERNELS_COMMON_CUH_
#define W4A8_SRC_KERNELS_COMMON_CUH_

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <atomic>
#include <cstdint>

namespace w4a8 {
namespace kernels {

// Two E4M3 bytes (low byte -> low half) -> two FP16, exactly (E4M3 is a subset of FP16).
// sm_89+ has one instruction for it (cvt.rn.f16x2.e4m3x2); older GPUs get the intrinsic's
// software path.
__device__ __forceinline__ uint32_t e4m3x2_to_f16x2(uint32_t two_bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  uint32_t out;
  const uint16_t in = static_cast<uint16_t>(two_bytes);
  asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(out) : "h"(in));
  return out;
#else
  const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(
      static_cast<__nv_fp8x2_storage_t>(two_bytes & 0xFFFF), __NV_E4M3);
  return static_cast<uint32_t>(h.x) | (static_cast<uint32_t>(h.y) << 16);
#endif
}

// The same for the HIGH two bytes of `four_bytes`. sm_89+: the conversion reads the upper
// half of the register itself (F2FP ... R.H1), where `x >> 16` would cost a shift per call.
__device__ __forceinline__ uint32_t e4m3x2_hi_to_f16x2(uint32_t four_bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  uint32_t out;
  asm("{ .reg .b16 lo, hi; mov.b32 {lo, hi}, %1; cvt.rn.f16x2.e4m3x2 %0, hi; }" : "=r"(out) : "r"(four_bytes));
  return out;
#else
  return e4m3x2_to_f16x2(four_bytes >> 16);
#endif
}

// Four E2M1 codes sitting in the LOW nibbles of the four bytes of `w` -> four E4M3 bytes
// whose values are e2m1 * 2^-6 (sign to bit 7, the 3 magnitude bits e e m to bits 4..2:
// E2M1's bias is 1, E4M3's is 7, so the same exponent field means a factor 2^-6, and the
// E2M1 subnormal 0.5 lands on the E4M3 subnormal 2^-7). The kernel folds 2^6 back into its
// FP32 epilogue, where it is exact.
__device__ __forceinline__ uint32_t e2m1_lo_nibbles_to_e4m3(uint32_t w) {
  return ((w << 4) & 0x80808080u) | ((w << 2) & 0x1C1C1C1Cu);
}
// The same for the HIGH nibbles of each byte.
__device__ __forceinline__ uint32_t e2m1_hi_nibbles_to_e4m3(uint32_t w) {
  return (w & 0x80808080u) | ((w >> 2) & 0x1C1C1C1Cu);
}

// alpha * s2 * 2^w_exp: the FP32 epilogue factor of the GEMM kernels. The exact kernels
// pass 6 (undoing the weights' e2m1 * 2^-6, see e2m1_lo_nibbles_to_e4m3), the FP8 path
// -shift (its weights are e2m1 * sb * 2^shift); a power of two, so the factor is exact up to
// the rounding of alpha * s2. s2 may be null (1.0).
__device__ __forceinline__ float load_tensor_scale(const float* s2) { return s2 ? __ldg(s2) : 1.0f; }
__device__ __forceinline__ float epilogue_base_of(float alpha, float s2v, int w_exp = 6) {
  return alpha * s2v * ldexpf(1.0f, w_exp);
}
__device__ __forceinline__ float epilogue_base(float alpha, const float* s2, int w_exp = 6) {
  return epilogue_base_of(alpha, load_tensor_scale(s2), w_exp);
}

__device__ __forceinline__ uint32_t hmul2(uint32_t a, uint32_t b) {
  uint32_t d;
  asm("mul.rn.f16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
  return d;
}

// One k16 step's wgmma A fragment (the exact path of gemm_wgmma.cu, and its probes): from the
// E4M3 byte pairs of rows r0 (ea) and r0 + 8 (eb), both halves of each, widened to FP16 and
// times the row's block scale (f0, f1: FP16 pairs); slots {ea lo, eb lo, ea hi, eb hi}.
__device__ __forceinline__ void e4m3_rows_to_wgmma_a(uint32_t (&as)[4], uint32_t ea, uint32_t eb, uint32_t f0,
                                                     uint32_t f1) {
  as[0] = hmul2(e4m3x2_to_f16x2(ea), f0);
  as[1] = hmul2(e4m3x2_to_f16x2(eb), f1);
  as[2] = hmul2(e4m3x2_hi_to_f16x2(ea), f0);
  as[3] = hmul2(e4m3x2_hi_to_f16x2(eb), f1);
}

// wgmma shared-memory descriptor (sm_90a; plain integer math, so it lives here): K-major,
// 128-byte swizzle, 8-row groups 1024 bytes apart.
__device__ __forceinline__ uint64_t wgmma_smem_desc(uint32_t saddr) {
  return static_cast<uint64_t>((saddr & 0x3FFFF) >> 4) | (uint64_t(1) << 16) |
         (uint64_t(1024 >> 4) << 32) | (uint64_t(1) << 62);
}

// a * (b.half[H], b.half[H]): the block scale broadcast from one half of an FP16 pair. ptxas
// folds the broadcast into the multiply's operand swizzle (HMUL2 ... R.H0_H0 / R.H1_H1), so
// one E4M3 -> FP16 conversion serves two scale groups with no permute per group.
template <int H>
__device__ __forceinline__ uint32_t hmul2_bcast(uint32_t a, uint32_t b) {
  uint32_t d;
  if constexpr (H == 0)
    asm("{ .reg .b16 lo, hi; .reg .b32 s; mov.b32 {lo, hi}, %2; mov.b32 s, {lo, lo}; mul.rn.f16x2 %0, %1, s; }"
        : "=r"(d) : "r"(a), "r"(b));
  else
    asm("{ .reg .b16 lo, hi; .reg .b32 s; mov.b32 {lo, hi}, %2; mov.b32 s, {hi, hi}; mul.rn.f16x2 %0, %1, s; }"
        : "=r"(d) : "r"(a), "r"(b));
  return d;
}

__device__ __forceinline__ uint32_t prmt(uint32_t a, uint32_t b, uint32_t sel) {
  uint32_t d;
  asm("prmt.b32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(sel));
  return d;
}

// D += A * B, m16n8k16, FP16 inputs, FP32 accumulation (sm_80+).
__device__ __forceinline__ void mma_f16_16816(float (&c)[4], uint32_t a0, uint32_t a1,
                                              uint32_t a2, uint32_t a3, uint32_t b0,
                                              uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
      "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// Read-only 16-byte load that is not kept in L1 (weights are read once).
__device__ __forceinline__ uint4 ld_stream_16(const void* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}
// Read-only loads of block scales that ask L2 to bring 256 bytes on a miss (.L2::256B): the
// wgmma kernel loads its scales only a few stages ahead, one byte per row and stage, and the
// next stages' bytes (and the neighbouring rows') then come with the first miss (H100: 2-5%
// faster at 50-128 tokens, every configuration; the same hint on the decode kernel's weight
// loads changed nothing).
__device__ __forceinline__ uint32_t ld_u8_l2_256(const uint8_t* p) {
  uint32_t v;
  asm("ld.global.nc.L2::256B.u8 %0, [%1];" : "=r"(v) : "l"(p));
  return v;
}
__device__ __forceinline__ uint32_t ld_u16_l2_256(const void* p) {
  uint32_t v;
  asm("ld.global.nc.L2::256B.u16 %0, [%1];" : "=r"(v) : "l"(p));
  return v;
}
__device__ __forceinline__ uint2 ld_stream_8(const void* p) {
  uint2 v;
  asm volatile("ld.global.nc.L1::no_allocate.v2.u32 {%0,%1}, [%2];"
               : "=r"(v.x), "=r"(v.y)
               : "l"(p));
  return v;
}

// Programmatic dependent launch (sm_90+; no-ops elsewhere and when the kernel was launched
// without the attribute). wait: block until the preceding kernel in the stream has finished
// and its writes are visible; launch_dependents: let the next kernel start its prologue now.
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// pdl_wait for a kernel that has issued loads it wants in flight while it waits (the mma
// kernel's first batch of weights). ptxas hoists griddepcontrol.wait (SASS ACQBULK) above
// independent non-coherent loads: with a bare pdl_wait, cuobjdump (CUDA 13.0, sm_90a) showed
// the wait ahead of every first-batch load in all 136 mma kernels, so a programmatic
// dependent read none of its weights before its predecessor had finished. An L2 prefetch
// between them stays in program order with both -- and it need not run: an executed
// prefetch.global.L2 held each warp for about a memory latency on the H100 (session 19: one
// per thread made the decode GEMMs 0.4-34% slower), so it sits behind `never`, a condition the
// caller knows to be false and the compiler cannot (scripts/check_pdl_order.py checks the
// order in the built library).
__device__ __forceinline__ void pdl_wait_after_loads(const void* line, bool never) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if (never) asm volatile("prefetch.global.L2 [%0];" ::"l"(line));
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// The start of a quantizer or prologue (launch.hpp Pdl): wait for the preceding kernel (a
// no-op when launched normally) and let our dependent launch, before that wait when `early`
// (Pdl::kDependentEarly, or a normal launch: nothing runs before us then), else right after.
__device__ __forceinline__ void pdl_enter(bool early) {
  if (early) pdl_launch_dependents();
  pdl_wait();
  if (!early) pdl_launch_dependents();
}

// Host: launches kernel<<<grid, block, smem, stream>>>(args...), as a programmatic dependent
// of the preceding kernel in the stream when pdl (sm_90+ only; the kernel must call
// pdl_wait before it reads anything that kernel may write).
// cluster > 1: in thread-block clusters of `cluster` CTAs along x (sm_90+; grid.x a multiple).
template <class... Params, class... Args>
cudaError_t launch_maybe_pdl_cluster(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                                     cudaStream_t stream, bool pdl, unsigned cluster, Args... args) {
  if (!pdl && cluster <= 1) {
    kernel<<<grid, block, smem, stream>>>(args...);
    return cudaGetLastError();
  }
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[2];
  unsigned n = 0;
  if (pdl) {
    attr[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[n++].val.programmaticStreamSerializationAllowed = 1;
  }
  if (cluster > 1) {
    attr[n].id = cudaLaunchAttributeClusterDimension;
    attr[n].val.clusterDim.x = cluster;
    attr[n].val.clusterDim.y = 1;
    attr[n++].val.clusterDim.z = 1;
  }
  cfg.attrs = attr;
  cfg.numAttrs = n;
  return cudaLaunchKernelEx(&cfg, kernel, static_cast<Params>(args)...);
}
template <class... Params, class... Args>
cudaError_t launch_maybe_pdl(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                             bool pdl, Args... args) {
  return launch_maybe_pdl_cluster(kernel, grid, block, smem, stream, pdl, 1u, args...);
}

// Host: how many clusters of `cluster` CTAs along x (blocks of `threads`, `smem` bytes of
// dynamic shared memory) of `kernel` the current device holds at once
// (cudaOccupancyMaxActiveClusters); 0 where the query fails (error cleared).
inline int max_active_clusters(const void* kernel, int cluster, int threads, size_t smem) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(unsigned(cluster));
  cfg.blockDim = dim3(unsigned(threads));
  cfg.dynamicSmemBytes = smem;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = unsigned(cluster);
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  int n = 0;
  if (cudaOccupancyMaxActiveClusters(&n, kernel, &cfg) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

// Host: opts `kernel` in to `bytes` of dynamic shared memory on `device`, once per device for
// this `record` (the devices, as bits, where it is done; ordinals >= 64: every call). One
// record per kernel: the opt-in is per kernel, and a record shared by two kernels leaves the
// second without it (cudaErrorInvalidValue at launch).
inline cudaError_t opt_in_dynamic_smem(const void* kernel, int bytes, int device, std::atomic<uint64_t>& record) {
  const uint64_t bit = device >= 0 && device < 64 ? uint64_t(1) << device : 0;
  if (bit && (record.load(std::memory_order_acquire) & bit)) return cudaSuccess;
  const cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  if (err == cudaSuccess) record.fetch_or(bit, std::memory_order_acq_rel);
  return err;
}

// BF16 bits -> float (exact).
__device__ __forceinline__ float bf16_bits_to_float(uint32_t b) {
  return __uint_as_float(b << 16);
}

__device__ __forceinline__ uint16_t float_to_bf16_bits(float f) {
  return __bfloat16_as_ushort(__float2bfloat16_rn(f));
}

// Gated epilogue (w4a8_linear_bf16_glu): output channel j of a gated MLP's gate/up GEMM from
// the FP32 results g (gate channel j) and u (up channel j) after scales and bias, as the
// unfused layer computes it: the GEMM rounds both to BF16, then PyTorch's act(gate) * up
// computes act in FP32 and rounds it to BF16, then multiplies in FP32 and rounds. act: the
// expressions of PyTorch's CUDA kernels (gelu(approximate="tanh"), silu), so that the fused
// result can equal the unfused one bit for bit (same FP32 operations, CUDA's tanhf / expf).
// act: 1 = GELU (tanh approximation), 2 = SiLU (w4a8_glu_act).
__device__ __forceinline__ float glu_act(int act, float x) {
  if (act == 1) {
    constexpr float kBeta = float(1.4142135623730950488 * 1.1283791670955125739 * 0.5);  // sqrt(2) * 2/sqrt(pi) / 2
    constexpr float kKappa = 0.044715f;
    const float x_cube = x * x * x;
    const float inner = kBeta * (x + kKappa * x_cube);
    return 0.5f * x * (1.0f + tanhf(inner));
  }
  return x / (1.0f + expf(-x));
}
__device__ __forceinline__ uint16_t glu_bf16(int act, float g, float u) {
  const float gb = bf16_bits_to_float(float_to_bf16_bits(g));
  const float ub = bf16_bits_to_float(float_to_bf16_bits(u));
  const float a = bf16_bits_to_float(float_to_bf16_bits(glu_act(act, gb)));
  return float_to_bf16_bits(a * ub);
}
// Rows of a gated weight (N = 2I rows, interleaved in blocks of 8: rows 16b .. 16b+7 are gate
// channels 8b .. 8b+7, rows 16b+8 .. 16b+15 the up channels): the output column of gate row r.
__device__ __forceinline__ int64_t glu_column(int64_t r) { return (r >> 4) * 8 + (r & 15); }

// Max of a uint32 over a block (blockDim.x a multiple of 32, <= 1024). All threads get it.
__device__ __forceinline__ uint32_t block_max_u32(uint32_t v, uint32_t* smem32) {
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xFFFFFFFFu, v, o));
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (lane == 0) smem32[warp] = v;
  __syncthreads();
  const int nwarps = blockDim.x >> 5;
  v = lane < nwarps ? smem32[lane] : 0u;
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xFFFFFFFFu, v, o));
  return v;
}

}  // namespace kernels
}  // namespace w4a8

#endif  // W4A8_SRC_KERNELS_COMMON_CUH_
