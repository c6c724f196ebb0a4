// Probe: can a cp.async ring in shared memory stream weights at the read floor on this GPU?
// Reads the same bytes four ways, timed with events over many launches (L2 flushed by size:
// 1 GB buffer walked in 256 MB windows): (a) plain 16-byte loads, 4 in flight per thread
// (the benchmark's read floor), (b) cp.async 16 B into a per-thread ring of D stages,
// wait_group D-2 and a CTA barrier per stage (a shared-memory stream GEMM's schedule), (c) the same
// without the barrier, (d) like (b) with each warp reading 16 rows x 64 B per stage (the
// GEMM's access pattern on the canonical layout) instead of consecutive 512 B, (e) like (b)
// with each warp streaming its own region, 1 KB per stage (a prepacked layout that stores a
// warp's 16 rows x 128-k chunk contiguously).
//   built as <build>/bench/w4a8_probe_cp_async_stream (bench/CMakeLists.txt); run it on the GPU.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>

#include "probe_util.cuh"

__device__ __forceinline__ void cp16(void* s, const void* g) {
  const uint32_t a = static_cast<uint32_t>(__cvta_generic_to_shared(s));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(a), "l"(g) : "memory");
}
template <int N>
__device__ __forceinline__ void wait_g() {
  asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}
__device__ __forceinline__ void commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }

// Each CTA streams `per_cta` bytes: stage = 2 x 16 B per thread (like the GEMM's two rows).
// PATTERN 0 = the CTA's consecutive bytes; 1 = GEMM pattern on the canonical layout (thread
// (g, t) of warp w reads rows 16 w + g and + 8 at byte 64 s + 16 t of a row of `row_bytes`);
// 2 = prepacked: warp w streams its own 1/8 of the CTA's bytes, 1 KB per stage.
template <int D, bool BARRIER, int PATTERN>
__global__ void __launch_bounds__(256) ring(const uint8_t* p, size_t per_cta, size_t row_bytes, uint32_t* sink) {
  extern __shared__ uint4 sm[];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const uint8_t* base = p + blockIdx.x * per_cta;
  const int steps = static_cast<int>(per_cta / (256 * 32));
  auto src = [&](int s, int r) -> const uint8_t* {
    if (PATTERN == 0) return base + size_t(s) * 256 * 32 + r * 256 * 16 + tid * 16;
    if (PATTERN == 2) return base + warp * (per_cta / 8) + size_t(s) * 1024 + r * 512 + lane * 16;
    const size_t row = 16 * warp + g + 8 * r;  // 128 rows of row_bytes per CTA
    return base + row * row_bytes + size_t(s) * 64 + t * 16;
  };
  for (int s = 0; s < D - 1; ++s) {
    if (s < steps) {
      cp16(sm + ((s % D) * 2 + 0) * 256 + tid, src(s, 0));
      cp16(sm + ((s % D) * 2 + 1) * 256 + tid, src(s, 1));
    }
    commit();
  }
  uint32_t acc = 0;
  for (int s = 0; s < steps; ++s) {
    wait_g<D - 2>();
    if (BARRIER) __syncthreads();
    const int n = s + D - 1;
    if (n < steps) {
      cp16(sm + ((n % D) * 2 + 0) * 256 + tid, src(n, 0));
      cp16(sm + ((n % D) * 2 + 1) * 256 + tid, src(n, 1));
    }
    commit();
    const uint4 a = sm[((s % D) * 2 + 0) * 256 + tid], b = sm[((s % D) * 2 + 1) * 256 + tid];
    acc ^= a.x ^ b.w;
  }
  if (acc == 0x9E3779B9u) *sink = acc;
}

int main() {
  probe::Bench bench(1);
  const int sms = bench.sms;
  for (const size_t bytes : {size_t(18874368), size_t(37748736), size_t(201326592)}) {
    printf("-- %zu bytes\n", bytes);
    bench.floor(bytes, "plain 16B loads, 4/thread, 512 thr x 4/SM");
    // 256-thread CTAs, 2 per SM, each a contiguous slice (consecutive) or 128 rows.
    const int ctas = 2 * sms;
    const size_t per = bytes / ctas / 8192 * 8192;
    auto go = [&](auto kern, int D, const char* name) {
      const int smem = D * 2 * 256 * 16;
      cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
      bench.time(name, [&](const uint8_t* p) { kern<<<ctas, 256, smem>>>(p, per, per / 128, bench.sink); }, per * ctas);
    };
    go(ring<8, true, 0>, 8, "cp.async ring D=8, barrier, consecutive");
    go(ring<8, false, 0>, 8, "cp.async ring D=8, no barrier, consecutive");
    go(ring<12, true, 0>, 12, "cp.async ring D=12, barrier, consecutive");
    go(ring<8, true, 1>, 8, "cp.async ring D=8, barrier, GEMM rows");
    go(ring<12, true, 1>, 12, "cp.async ring D=12, barrier, GEMM rows");
    go(ring<4, true, 1>, 4, "cp.async ring D=4, barrier, GEMM rows");
    go(ring<8, true, 2>, 8, "cp.async ring D=8, barrier, prepacked warp blocks");
    go(ring<4, true, 2>, 4, "cp.async ring D=4, barrier, prepacked warp blocks");
  }
  return 0;
}
