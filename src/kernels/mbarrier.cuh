// Shared-memory addresses and mbarrier operations (sm_90+): the completion mechanism of the
// asynchronous copies (TMA in gemm_wgmma.cu, bulk copies in bench/probes/bulk_stream.cu).
// Call only from code compiled for sm_90+ (the callers guard with __CUDA_ARCH__).
#ifndef W4A8_SRC_KERNELS_MBARRIER_CUH_
#define W4A8_SRC_KERNELS_MBARRIER_CUH_

#include <cstdint>

namespace w4a8 {
namespace kernels {

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(count) : "memory");
}
// Arrives and adds `bytes` to the transaction count the phase waits for.
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(bar) : "memory");
}
// Spins until the phase of parity `parity` has completed.
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  asm volatile(
      "{\n.reg .pred P1;\nLAB_WAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 P1, [%0], %1;\n"
      "@P1 bra DONE;\nbra LAB_WAIT;\nDONE:\n}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}

}  // namespace kernels
}  // namespace w4a8

#endif  // W4A8_SRC_KERNELS_MBARRIER_CUH_
