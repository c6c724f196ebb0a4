// See gemm_check.hpp.
#include "gemm_check.hpp"

#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "w4a8/formats.hpp"
#include "w4a8/reference.hpp"
#include "w4a8/w4a8.h"
#include "w4a8_gemm_plugin.h"

namespace w4a8 {
namespace tools {
namespace {

#define CHECK_W4A8(expr)                                                              \
  do {                                                                                \
    const w4a8_status s_ = (expr);                                                    \
    if (s_ != W4A8_STATUS_SUCCESS) {                                                  \
      std::printf("error: %s: %s\n", w4a8_status_string(s_), w4a8_last_error());     \
      std::printf("FAILED\n");                                                        \
      return 1;                                                                       \
    }                                                                                 \
  } while (0)
#define CHECK_CUDA(expr)                                                              \
  do {                                                                                \
    const cudaError_t e_ = (expr);                                                    \
    if (e_ != cudaSuccess) {                                                          \
      std::printf("error: %s: %s\n", #expr, cudaGetErrorString(e_));                  \
      std::printf("FAILED\n");                                                        \
      return 1;                                                                       \
    }                                                                                 \
  } while (0)

template <typename T>
struct Dev {
  T* p = nullptr;
  explicit Dev(size_t n) { cudaMalloc(reinterpret_cast<void**>(&p), std::max<size_t>(n, 1) * sizeof(T)); }
  ~Dev() { cudaFree(p); }
};

struct Sample {
  std::vector<int64_t> ms, ns;
};

// All points of a small problem, else 4096 random ones plus the corners.
Sample choose_points(int64_t M, int64_t N, int64_t K, uint64_t seed) {
  Sample s;
  if (M * N * K <= (int64_t(1) << 31)) {
    // n-major, so the reference decodes each weight row once.
    for (int64_t n = 0; n < N; ++n)
      for (int64_t m = 0; m < M; ++m) s.ms.push_back(m), s.ns.push_back(n);
    return s;
  }
  std::mt19937_64 rng(seed ^ 0x5EED);
  for (int i = 0; i < 4096; ++i) s.ms.push_back(int64_t(rng() % M)), s.ns.push_back(int64_t(rng() % N));
  for (int64_t m : {int64_t(0), M - 1})
    for (int64_t n : {int64_t(0), N - 1}) s.ms.push_back(m), s.ns.push_back(n);
  return s;
}

struct Errors {
  double max_ratio = 0;  // max |got - exact| / tolerance (<= 1 passes)
  double rel_fro = 0;    // ||got - exact|| / ||exact||
  double cos_bf16 = 0;   // cosine(got, unquantized BF16 product)
  double rel_bf16 = 0;   // ||got - bf16 product|| / ||bf16 product||
  size_t points = 0;
};

Errors compare(const Sample& s, const std::vector<uint16_t>& got_at_points, const std::vector<double>& exact,
               const std::vector<double>& absum, const std::vector<double>& bf16prod, int64_t K) {
  Errors e;
  double d2 = 0, r2 = 0, dot = 0, g2 = 0, b2 = 0, db2 = 0;
  for (size_t i = 0; i < s.ms.size(); ++i) {
    const double g = bf16_to_float(got_at_points[i]);
    const double tol = ref::gemm_tolerance(exact[i], absum[i], K);
    e.max_ratio = std::max(e.max_ratio, std::isfinite(g) ? std::fabs(g - exact[i]) / tol : INFINITY);
    d2 += (g - exact[i]) * (g - exact[i]);
    r2 += exact[i] * exact[i];
    dot += g * bf16prod[i];
    g2 += g * g;
    b2 += bf16prod[i] * bf16prod[i];
    db2 += (g - bf16prod[i]) * (g - bf16prod[i]);
  }
  e.rel_fro = std::sqrt(d2 / std::max(r2, 1e-300));
  e.cos_bf16 = dot / std::sqrt(std::max(g2 * b2, 1e-300));
  e.rel_bf16 = std::sqrt(db2 / std::max(b2, 1e-300));
  e.points = s.ms.size();
  return e;
}

// The unquantized product of the BF16 inputs, in FP64, at the chosen points.
std::vector<double> bf16_product(const std::vector<uint16_t>& x, const std::vector<uint16_t>& w, int64_t K,
                                 const Sample& s) {
  std::vector<float> xf(x.size());
  for (size_t i = 0; i < x.size(); ++i) xf[i] = bf16_to_float(x[i]);
  std::vector<float> wrow(static_cast<size_t>(K));
  std::vector<double> out(s.ms.size());
  int64_t cached = -1;
  for (size_t i = 0; i < s.ms.size(); ++i) {
    if (s.ns[i] != cached) {
      for (int64_t k = 0; k < K; ++k) wrow[k] = bf16_to_float(w[s.ns[i] * K + k]);
      cached = s.ns[i];
    }
    const float* xr = xf.data() + s.ms[i] * K;
    double acc = 0;
    for (int64_t k = 0; k < K; ++k) acc += double(xr[k]) * wrow[k];
    out[i] = acc;
  }
  return out;
}

bool gpu_present() {
  int n = 0;
  const bool ok = cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
  cudaGetLastError();
  return ok;
}

int report(const CheckOptions& o, const Errors& e, const char* path) {
  const bool pass = e.max_ratio <= 1.0 && e.rel_fro <= 4e-3 && e.cos_bf16 >= 0.99;
  std::printf("compared %zu outputs (%s)\n", e.points, path);
  std::printf("  vs exact reference on the same quantized operands: max |err|/tolerance = %.3f (<= 1), "
              "rel. Frobenius error = %.2e (<= 4e-3)\n", e.max_ratio, e.rel_fro);
  std::printf("  vs unquantized BF16 product: cosine similarity = %.6f (>= 0.99), rel. error = %.3e\n",
              e.cos_bf16, e.rel_bf16);
  std::printf("%s  M=%lld N=%lld K=%lld group=%d\n", pass ? "PASSED" : "FAILED", (long long)o.M,
              (long long)o.N, (long long)o.K, o.group);
  return pass ? 0 : 1;
}

int run_cpu(const CheckOptions& o, const std::vector<uint16_t>& xb, const std::vector<uint16_t>& wb) {
  std::vector<uint8_t> xq(o.M * o.K), packed(o.N * o.K / 2), scales(o.N * o.K / o.group);
  std::vector<float> rs(o.M);
  float s2 = 0;
  CHECK_W4A8(ref::quantize_activation_fp8(xb.data(), o.M, o.K, xq.data(), rs.data()));
  CHECK_W4A8(ref::quantize_weight_nvfp4(wb.data(), o.N, o.K, o.group, packed.data(), scales.data(), &s2));
  const Sample s = choose_points(o.M, o.N, o.K, o.seed);
  std::vector<uint16_t> y(s.ms.size());
  std::vector<double> exact(s.ms.size()), absum(s.ms.size());
  const ref::HostWeight w{packed.data(), scales.data(), s2, nullptr, o.N, o.K, o.group};
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_W4A8(ref::gemm_points(xq.data(), rs.data(), w, o.M, 1.0f, s.ms.data(), s.ns.data(), s.ms.size(), y.data(),
                              exact.data(), absum.data()));
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("CPU reference GEMM: %.1f ms for %zu outputs (CPU timing; says nothing about GPU speed)\n", ms,
              s.ms.size());
  return report(o, compare(s, y, exact, absum, bf16_product(xb, wb, o.K, s), o.K), "CPU reference path");
}

}  // namespace

int run_gemm_check(const CheckOptions& o) {
  std::printf("w4a8 %s: W4A8 GEMM check, y[M,N] = fp8(x[M,K]) . nvfp4(W[N,K])^T, group %d\n", w4a8_version(),
              o.group);
  if (o.M <= 0 || o.N <= 0 || o.K <= 0 || o.K % o.group != 0) {
    std::printf("error: need M, N, K > 0 and K a multiple of the group size %d (got M=%lld N=%lld K=%lld)\nFAILED\n",
                o.group, (long long)o.M, (long long)o.N, (long long)o.K);
    return 1;
  }
  std::mt19937_64 rng(o.seed);
  std::normal_distribution<float> dx(0.0f, 1.0f), dw(0.0f, 0.02f);
  std::vector<uint16_t> xb(o.M * o.K), wb(o.N * o.K);
  for (auto& v : xb) v = float_to_bf16(dx(rng));
  for (auto& v : wb) v = float_to_bf16(dw(rng));

  if (o.force_cpu || !gpu_present()) {
    if (!o.force_cpu) std::printf("no CUDA GPU found: running the CPU reference path instead\n");
    return run_cpu(o, xb, wb);
  }
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s (sm_%d%d, %d SMs)\n", prop.name, prop.major, prop.minor, prop.multiProcessorCount);
  const char* name = "";
  CHECK_W4A8(w4a8_gemm_kernel_name(o.M, o.N, o.K, o.group, W4A8_KERNEL_AUTO, &name));
  std::printf("kernel: %s (exact path: FP16 MMA on exactly dequantized weights)\n", name);

  Dev<uint16_t> dxb(o.M * o.K), dwb(o.N * o.K), dy(o.M * o.N);
  Dev<uint8_t> dxq(o.M * o.K), dwp(o.N * o.K / 2), dws(o.N * o.K / o.group);
  Dev<float> drs(o.M), ds2(1);
  CHECK_CUDA(cudaMemcpy(dxb.p, xb.data(), xb.size() * 2, cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMemcpy(dwb.p, wb.data(), wb.size() * 2, cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMemset(dy.p, 0xFF, o.M * o.N * 2));  // poison: NaN
  auto* xq = reinterpret_cast<__nv_fp8_e4m3*>(dxq.p);
  auto* ws = reinterpret_cast<__nv_fp8_e4m3*>(dws.p);
  CHECK_W4A8(quantizeWeightToNVFP4(reinterpret_cast<const __nv_bfloat16*>(dwb.p), dwp.p, ws, ds2.p, int(o.N),
                                   int(o.K), nullptr, o.group));
  CHECK_W4A8(quantizeActivationToFP8(reinterpret_cast<const __nv_bfloat16*>(dxb.p), xq, drs.p, int(o.M), int(o.K),
                                     nullptr));
  // The workspace the library asks for (FP16 activations for the Hopper prefill kernel).
  const size_t ws_bytes = w4a8GemmWorkspaceSize(int(o.M), int(o.N), int(o.K), o.group);
  Dev<uint8_t> dwork(ws_bytes ? ws_bytes : 1);
  auto gemm = [&](cudaStream_t s) {
    return w4a8GemmForward(xq, drs.p, dwp.p, ws, ds2.p, reinterpret_cast<__nv_bfloat16*>(dy.p), int(o.M), int(o.N),
                           int(o.K), 1.0f, ws_bytes ? dwork.p : nullptr, ws_bytes, s, o.group);
  };
  CHECK_W4A8(gemm(nullptr));
  CHECK_CUDA(cudaDeviceSynchronize());

  // Compare with the CPU reference on the GPU's own quantized operands.
  std::vector<uint8_t> xq_h(o.M * o.K), packed(o.N * o.K / 2), scales(o.N * o.K / o.group);
  std::vector<float> rs(o.M);
  float s2 = 0;
  std::vector<uint16_t> y(o.M * o.N);
  CHECK_CUDA(cudaMemcpy(xq_h.data(), dxq.p, xq_h.size(), cudaMemcpyDeviceToHost));
  CHECK_CUDA(cudaMemcpy(packed.data(), dwp.p, packed.size(), cudaMemcpyDeviceToHost));
  CHECK_CUDA(cudaMemcpy(scales.data(), dws.p, scales.size(), cudaMemcpyDeviceToHost));
  CHECK_CUDA(cudaMemcpy(rs.data(), drs.p, rs.size() * 4, cudaMemcpyDeviceToHost));
  CHECK_CUDA(cudaMemcpy(&s2, ds2.p, 4, cudaMemcpyDeviceToHost));
  CHECK_CUDA(cudaMemcpy(y.data(), dy.p, y.size() * 2, cudaMemcpyDeviceToHost));
  size_t unwritten = 0;
  for (uint16_t v : y) unwritten += !std::isfinite(bf16_to_float(v));
  const Sample s = choose_points(o.M, o.N, o.K, o.seed);
  std::vector<uint16_t> got(s.ms.size());
  for (size_t i = 0; i < s.ms.size(); ++i) got[i] = y[s.ms[i] * o.N + s.ns[i]];
  std::vector<double> exact(s.ms.size()), absum(s.ms.size());
  const ref::HostWeight w{packed.data(), scales.data(), s2, nullptr, o.N, o.K, o.group};
  CHECK_W4A8(ref::gemm_points(xq_h.data(), rs.data(), w, o.M, 1.0f, s.ms.data(), s.ns.data(), s.ms.size(), nullptr,
                              exact.data(), absum.data()));

  // Timing: 20 calls captured in a CUDA graph, median of 15 replays. (Weights stay in L2
  // here when they fit; `w4a8 bench` rotates them past the L2 for the published numbers.)
  cudaStream_t st;
  CHECK_CUDA(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CHECK_CUDA(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
  for (int i = 0; i < 20; ++i) CHECK_W4A8(gemm(st));
  CHECK_CUDA(cudaStreamEndCapture(st, &graph));
  CHECK_CUDA(cudaGraphInstantiate(&exec, graph, 0));
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  std::vector<float> times;
  for (int r = 0; r < 16; ++r) {
    CHECK_CUDA(cudaEventRecord(a, st));
    CHECK_CUDA(cudaGraphLaunch(exec, st));
    CHECK_CUDA(cudaEventRecord(b, st));
    CHECK_CUDA(cudaEventSynchronize(b));
    float ms = 0;
    cudaEventElapsedTime(&ms, a, b);
    if (r > 0) times.push_back(ms * 1000.0f / 20.0f);
  }
  std::sort(times.begin(), times.end());
  const double us = times[times.size() / 2];
  const double bytes = o.N * o.K * 0.5 + double(o.N) * o.K / o.group + double(o.M) * o.K + o.M * o.N * 2.0;
  std::printf("time: %.2f us per GEMM (median, CUDA graph, weights L2-warm) = %.1f TFLOP/s, %.0f GB/s\n", us,
              2.0 * o.M * o.N * o.K / us * 1e-6, bytes / us * 1e-3);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(st);
  if (unwritten) std::printf("error: %zu outputs not written or not finite\n", unwritten);
  const int rc = report(o, compare(s, got, exact, absum, bf16_product(xb, wb, o.K, s), o.K), "GPU");
  return unwritten ? 1 : rc;
}

}  // namespace tools
}  // namespace w4a8
