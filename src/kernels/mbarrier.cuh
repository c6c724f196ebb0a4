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

// Thread-block clusters (sm_90+): the cluster's size, a shared-memory address of this CTA
// mapped to the same offset in CTA `rank` of the cluster (for st.shared::cluster), and the
// cluster-wide barrier. barrier.cluster.wait waits for every
// non-exited thread of the cluster to arrive, so warps that have returned do not hold it.
__device__ __forceinline__ uint32_t cluster_nctarank() {
  uint32_t r;
  asm volatile("mov.u32 %0, %%cluster_nctarank;" : "=r"(r));
  return r;
}
__device__ __forceinline__ uint32_t cluster_map(uint32_t addr, uint32_t rank) {
  uint32_t r;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(r) : "r"(addr), "r"(rank));
  return r;
}
__device__ __forceinline__ void cluster_arrive() { asm volatile("barrier.cluster.arrive.release;" ::: "memory"); }
// Arrival without release semantics, for threads that have nothing to publish (the release
// form is a GPU-scope memory barrier in SASS, MEMBAR.ALL.GPU, which waits for the thread's
// outstanding memory operations).
__device__ __forceinline__ void cluster_arrive_relaxed() {
  asm volatile("barrier.cluster.arrive.relaxed;" ::: "memory");
}
__device__ __forceinline__ void cluster_wait() { asm volatile("barrier.cluster.wait.acquire;" ::: "memory"); }

}  // namespace kernels
}  // namespace w4a8

#endif  // W4A8_SRC_KERNELS_MBARRIER_CUH_
