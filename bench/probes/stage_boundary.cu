// Probe: what does the fused decode call's separate quantizer stage cost, against quantizing
// inside the GEMM's own grid behind one grid-wide barrier? (Session 23's timelines: in the pi0.5
// expert trace the quantizer before each M = 50 GEMM adds 1.37 us of span per call, while the
// GEMM itself advances the span as much as without it. Session 12 showed that every CTA
// quantizing the whole input itself is slower; the form not tried splits the rows over the
// CTAs and joins them with one grid barrier.)
//
// Stand-ins with the expert's sizes (M = 50 rows of K = 1024 BF16; a grid of one 256-thread CTA
// per SM that reads every quantized row, as the decode GEMM's CTAs do), each step chained to the
// previous one as the library chains them (programmatic launches: wait first, then let the next
// kernel launch), R steps captured in one CUDA graph, microseconds per step:
//   (a) consume only                 -- the GEMM stand-in alone (the FP8-input call)
//   (b) quantize, then consume       -- two kernels (today's fused call)
//   (c) one kernel, custom barrier   -- rows split over the CTAs, an arrival counter and a
//                                       generation flag (acquire / release), then consume
//   (d) one kernel, cooperative_groups grid sync (cooperative launch)
// (b) - (a) is the stage the fused call pays; (c) - (a) and (d) - (a) what quantizing inside
// the GEMM would pay instead. Worth building only if (c) or (d) is well under (b).
// Measured (H200, session 24, bench/results/probe-stage-boundary-h200-2026-11-27.txt), us per
// step with programmatic launches: (a) 1.78, (b) 2.89, (c) 3.93, (d) 3.51 -- the grid barrier
// costs more than the separate stage (+1.73 / +2.15 against +1.11): in-grid quantization is not
// built.
//   built as <build>/bench/w4a8_probe_stage_boundary (bench/CMakeLists.txt); run it on the GPU.
#include <cooperative_groups.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "kernels/common.cuh"

namespace cg = cooperative_groups;
using w4a8::kernels::pdl_launch_dependents;
using w4a8::kernels::pdl_wait;

namespace {

constexpr int kM = 50, kK = 1024, kThreads = 256;

// Row r of x -> FP8 codes q and scale s[r] (amax / 448), with the CTA's kThreads threads.
__device__ void quantize_row(const __nv_bfloat16* x, uint8_t* q, float* s, int r) {
  __shared__ float red[kThreads / 32];
  float v[kK / kThreads];
  float amax = 0.0f;
#pragma unroll
  for (int i = 0; i < kK / kThreads; ++i) {
    v[i] = __bfloat162float(x[size_t(r) * kK + i * kThreads + threadIdx.x]);
    amax = fmaxf(amax, fabsf(v[i]));
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = amax;
  __syncthreads();
  amax = red[0];
#pragma unroll
  for (int w = 1; w < kThreads / 32; ++w) amax = fmaxf(amax, red[w]);
  const float scale = amax > 0.0f ? amax / 448.0f : 1.0f;
#pragma unroll
  for (int i = 0; i < kK / kThreads; ++i)
    q[size_t(r) * kK + i * kThreads + threadIdx.x] = __nv_fp8_e4m3(v[i] / scale).__x;
  if (threadIdx.x == 0) s[r] = scale;
  __syncthreads();  // red[] reused by the next row
}

// Every CTA reads all M rows of codes and scales (the decode GEMM's activation traffic).
__device__ void consume(const uint8_t* q, const float* s, float* out) {
  const uint4* q4 = reinterpret_cast<const uint4*>(q);
  uint32_t acc = 0;
  for (int i = threadIdx.x; i < kM * kK / 16; i += kThreads) acc ^= __ldcg(q4 + i).x;
  float f = acc * 1e-30f;
  if (threadIdx.x < kM) f += __ldcg(s + threadIdx.x);
  if (f == 1.2345f) out[blockIdx.x] = f;  // (never: keeps the loads)
}

__global__ void __launch_bounds__(kThreads) quantize_kernel(const __nv_bfloat16* x, uint8_t* q, float* s) {
  pdl_wait();
  pdl_launch_dependents();
  quantize_row(x, q, s, blockIdx.x);
}

__global__ void __launch_bounds__(kThreads) consume_kernel(const uint8_t* q, const float* s, float* out) {
  pdl_wait();
  pdl_launch_dependents();
  consume(q, s, out);
}

// bar[0]: arrivals, bar[1]: generation. The last CTA to arrive resets the count, then
// publishes the next generation (release); the others spin on it (acquire).
__device__ void grid_barrier(unsigned* bar) {
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned gen;
    asm volatile("ld.acquire.gpu.u32 %0, [%1];" : "=r"(gen) : "l"(bar + 1) : "memory");
    __threadfence();
    if (atomicAdd(bar, 1u) == gridDim.x - 1) {
      bar[0] = 0;
      asm volatile("st.release.gpu.u32 [%0], %1;" ::"l"(bar + 1), "r"(gen + 1) : "memory");
    } else {
      unsigned now;
      do {
        asm volatile("ld.acquire.gpu.u32 %0, [%1];" : "=r"(now) : "l"(bar + 1) : "memory");
      } while (now == gen);
    }
  }
  __syncthreads();
}

template <bool kCg>
__global__ void __launch_bounds__(kThreads) fused_kernel(const __nv_bfloat16* x, uint8_t* q, float* s, float* out,
                                                         unsigned* bar) {
  pdl_wait();
  pdl_launch_dependents();
  for (int r = blockIdx.x; r < kM; r += gridDim.x) quantize_row(x, q, s, r);
  if constexpr (kCg) {
    cg::this_grid().sync();
  } else {
    grid_barrier(bar);
  }
  consume(q, s, out);
}

template <class... Args>
cudaError_t launch(cudaStream_t st, void (*k)(Args...), int grid, bool pdl, bool coop, Args... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.stream = st;  // (left 0, the launches ran eagerly on the legacy stream, outside the capture)
  cfg.gridDim = dim3(grid);
  cfg.blockDim = dim3(kThreads);
  cudaLaunchAttribute at[2];
  int n = 0;
  if (pdl) {
    at[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[n++].val.programmaticStreamSerializationAllowed = 1;
  }
  if (coop) {
    at[n].id = cudaLaunchAttributeCooperative;
    at[n++].val.cooperative = 1;
  }
  cfg.attrs = at;
  cfg.numAttrs = n;
  return cudaLaunchKernelEx(&cfg, k, args...);
}

}  // namespace

int main() {
  int sms = 0, coop_ok = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  cudaDeviceGetAttribute(&coop_ok, cudaDevAttrCooperativeLaunch, 0);
  if (sms == 0) {
    printf("no CUDA GPU\n");
    return 1;
  }
  __nv_bfloat16* x;
  uint8_t* q;
  float *s, *out;
  unsigned* bar;
  cudaMalloc(&x, size_t(kM) * kK * 2);
  cudaMalloc(&q, size_t(kM) * kK);
  cudaMalloc(&s, kM * 4);
  cudaMalloc(&out, sms * 4);
  cudaMalloc(&bar, 8);
  cudaMemset(x, 0x3c, size_t(kM) * kK * 2);  // BF16 0x3c3c: ~0.0115
  cudaMemset(bar, 0, 8);
  cudaStream_t st;
  cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking);
  const int grid = sms, steps = 200;
  printf("grid %d x %d threads, M = %d, K = %d, %d steps per graph, cooperative launch %s\n", grid, kThreads, kM, kK,
         steps, coop_ok ? "supported" : "NOT supported");

  // One step of variant v, launched on st.
  auto step = [&](int v, bool pdl) -> cudaError_t {
    switch (v) {
      case 0: return launch(st, consume_kernel, grid, pdl, false, (const uint8_t*)q, (const float*)s, out);
      case 1: {
        cudaError_t e = launch(st, quantize_kernel, kM, pdl, false, (const __nv_bfloat16*)x, q, s);
        return e != cudaSuccess ? e : launch(st, consume_kernel, grid, pdl, false, (const uint8_t*)q, (const float*)s, out);
      }
      case 2: return launch(st, fused_kernel<false>, grid, pdl, true, (const __nv_bfloat16*)x, q, s, out, bar);
      default: return launch(st, fused_kernel<true>, grid, pdl, true, (const __nv_bfloat16*)x, q, s, out, bar);
    }
  };
  const char* names[] = {"(a) consume only (GEMM stand-in)", "(b) quantize kernel + consume kernel",
                         "(c) one kernel, custom grid barrier", "(d) one kernel, cooperative_groups grid sync"};
  for (const bool pdl : {true, false}) {
    printf("-- %s\n", pdl ? "programmatic launches (as the library chains its kernels)" : "plain launches");
    for (int v = 0; v < 4; ++v) {
      cudaGraph_t g = nullptr;
      cudaGraphExec_t ge = nullptr;
      cudaError_t err = cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal);
      for (int i = 0; i < steps && err == cudaSuccess; ++i) err = step(v, pdl);
      const cudaError_t end = cudaStreamEndCapture(st, &g);
      if (err == cudaSuccess) err = end;
      // Every step's kernels must be in the graph (else the replay times nothing).
      size_t nodes = 0;
      if (err == cudaSuccess) err = cudaGraphGetNodes(g, nullptr, &nodes);
      if (err == cudaSuccess && nodes != size_t(steps) * (v == 1 ? 2 : 1)) {
        printf("%-48s  error: %zu graph nodes for %d steps\n", names[v], nodes, steps);
        if (g) cudaGraphDestroy(g);
        continue;
      }
      if (err == cudaSuccess) err = cudaGraphInstantiate(&ge, g, 0);
      std::vector<float> us;
      cudaEvent_t e0, e1;
      cudaEventCreate(&e0);
      cudaEventCreate(&e1);
      for (int rep = 0; rep < 23 && err == cudaSuccess; ++rep) {
        cudaEventRecord(e0, st);
        err = cudaGraphLaunch(ge, st);
        cudaEventRecord(e1, st);
        if (err == cudaSuccess) err = cudaEventSynchronize(e1);
        float ms = 0;
        cudaEventElapsedTime(&ms, e0, e1);
        if (rep >= 3) us.push_back(1000.0f * ms / steps);
      }
      if (err != cudaSuccess || us.empty()) {
        printf("%-48s  error: %s\n", names[v], cudaGetErrorString(err));
        cudaGetLastError();
      } else {
        std::sort(us.begin(), us.end());
        printf("%-48s %7.2f us per step (median of %zu graph replays; min %.2f)\n", names[v], us[us.size() / 2],
               us.size(), us.front());
      }
      if (ge) cudaGraphExecDestroy(ge);
      if (g) cudaGraphDestroy(g);
      cudaEventDestroy(e0);
      cudaEventDestroy(e1);
    }
  }
  return 0;
}
