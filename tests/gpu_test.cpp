// GPU suite: the quantization kernels bit-exact with the CPU reference, the GEMM kernels
// within the stated bound of the exact CPU reference on many shapes (outputs poisoned
// first), every whitelisted configuration, determinism, CUDA-graph capture, the fused BF16
// entry point and the seed's API. Skipped with a message on machines without a GPU.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "host/heuristics.hpp"
#include "kernels/launch.hpp"
#include "test_util.hpp"
#include "w4a8/formats.hpp"
#include "w4a8/reference.hpp"
#include "w4a8/w4a8.h"
#include "w4a8_gemm_plugin.h"

namespace w4a8 {
namespace {

using test::config_index;
using test::DeviceBuffer;
using test::random_bf16;

#define W4A8_OK(expr)                                                                   \
  do {                                                                                  \
    const w4a8_status st_ = (expr);                                                     \
    ASSERT_EQ(st_, W4A8_STATUS_SUCCESS) << w4a8_status_string(st_) << ": " << w4a8_last_error(); \
  } while (0)

// ---- quantizers ---------------------------------------------------------------------------

void check_activation_quant(const std::vector<uint16_t>& x, int64_t M, int64_t K, const std::string& what) {
  std::vector<uint8_t> q_ref(M * K);
  std::vector<float> s_ref(M);
  ASSERT_EQ(ref::quantize_activation_fp8(x.data(), M, K, q_ref.data(), s_ref.data()), W4A8_STATUS_SUCCESS);
  DeviceBuffer<uint16_t> dx(M * K);
  DeviceBuffer<uint8_t> dq(M * K);
  DeviceBuffer<float> ds(M);
  dx.upload(x);
  dq.fill_bytes(0xCD);
  ds.fill_bytes(0xCD);
  W4A8_OK(w4a8_quantize_activation_fp8(dx.get(), dq.get(), ds.get(), M, K, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  const auto q = dq.download();
  const auto s = ds.download();
  for (int64_t m = 0; m < M; ++m) {
    uint32_t a, b;
    std::memcpy(&a, &s[m], 4);
    std::memcpy(&b, &s_ref[m], 4);
    ASSERT_TRUE(a == b || (std::isnan(s[m]) && std::isnan(s_ref[m])))
        << what << " row " << m << " scale " << s[m] << " vs ref " << s_ref[m];
  }
  for (int64_t i = 0; i < M * K; ++i)
    ASSERT_EQ(q[i], q_ref[i]) << what << " M=" << M << " K=" << K << " at (" << i / K << "," << i % K
                              << ") x=" << bf16_to_float(x[i]);
}

TEST(GpuQuantizeActivation, BitExactOnRandomShapes) {
  W4A8_REQUIRE_GPU();
  std::mt19937_64 rng(101);
  const int64_t shapes[][2] = {{1, 16},    {1, 2048},  {3, 48},     {7, 65536}, {17, 1040},
                               {128, 4096}, {256, 16}, {5, 16384},  {33, 2064}, {1, 1024},
                               {50, 1024}, {2, 32768}, {968, 2048}, {9, 144},   {64, 4096},
                               {1, 16400}, {4, 256},   {11, 8192},  {100, 528}, {3, 12288},
                               {1, 65536}, {16, 2048},
                               // M > 64: one-read register kernel up to K = 16384, two passes above
                               {100, 16384}, {65, 16400}, {300, 16}, {97, 1040}};
  for (const auto& sh : shapes) {
    const float stddev = std::exp2(static_cast<float>(rng() % 20) - 10.0f);
    check_activation_quant(random_bf16(sh[0] * sh[1], rng, stddev), sh[0], sh[1], "gaussian");
  }
}

TEST(GpuQuantizeActivation, BitExactOnAdversarialRows) {
  W4A8_REQUIRE_GPU();
  const int64_t K = 512, M = 8;
  std::vector<uint16_t> x(M * K, 0);
  std::mt19937_64 rng(5);
  // Row 0: zeros (and -0). Row 1: one outlier of 7000 among N(0,1). Row 2: amax 448 (scale
  // 1) and every E4M3 midpoint and its neighbours (all BF16-exact). Row 3: tiny values
  // (subnormal results). Row 4: NaN. Row 5: +Inf. Row 6: huge values (1e38). Row 7: -0 only.
  for (int k = 0; k < K; k += 2) x[k + 1] = 0x8000;
  for (int k = 0; k < K; ++k) x[K + k] = float_to_bf16(std::normal_distribution<float>()(rng));
  x[K + 17] = float_to_bf16(-7000.0f);
  x[2 * K] = float_to_bf16(448.0f);
  int k = 1;
  for (int c = 0; c < 0x7E && k + 3 < K; ++c) {
    const float mid = 0.5f * (e4m3_to_float(uint8_t(c)) + e4m3_to_float(uint8_t(c + 1)));
    const uint16_t b = float_to_bf16(mid);
    x[2 * K + k++] = b;
    x[2 * K + k++] = static_cast<uint16_t>(b + 1);
    x[2 * K + k++] = static_cast<uint16_t>(b | 0x8000);
  }
  for (int i = 0; i < K; ++i) x[3 * K + i] = float_to_bf16(std::ldexp(float(i % 7) - 3.0f, -14 - (i % 5)));
  for (int i = 0; i < K; ++i) x[4 * K + i] = float_to_bf16(1.0f);
  x[4 * K + 100] = float_to_bf16(NAN);
  x[5 * K + 3] = float_to_bf16(INFINITY);
  for (int i = 0; i < K; ++i) x[6 * K + i] = float_to_bf16((i & 1 ? -1e38f : 3e37f));
  for (int i = 0; i < K; ++i) x[7 * K + i] = 0x8000;
  check_activation_quant(x, M, K, "adversarial");
}

struct QuantizedWeight {
  std::vector<uint8_t> packed, scales;
  float s2 = 0;
};

QuantizedWeight gpu_quantize_weight(const std::vector<uint16_t>& w, int64_t N, int64_t K, int group) {
  DeviceBuffer<uint16_t> dw(N * K);
  DeviceBuffer<uint8_t> dp(N * K / 2), ds(N * K / group);
  DeviceBuffer<float> d2(1);
  dw.upload(w);
  dp.fill_bytes(0xCD);
  ds.fill_bytes(0xCD);
  QuantizedWeight out;
  const w4a8_status st = w4a8_quantize_weight_nvfp4(dw.get(), dp.get(), ds.get(), d2.get(), N, K, group, nullptr);
  EXPECT_EQ(st, W4A8_STATUS_SUCCESS) << w4a8_last_error();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  out.packed = dp.download();
  out.scales = ds.download();
  out.s2 = d2.download()[0];
  return out;
}

void check_weight_quant(const std::vector<uint16_t>& w, int64_t N, int64_t K, int group, const std::string& what) {
  QuantizedWeight r;
  r.packed.resize(N * K / 2);
  r.scales.resize(N * K / group);
  ASSERT_EQ(ref::quantize_weight_nvfp4(w.data(), N, K, group, r.packed.data(), r.scales.data(), &r.s2),
            W4A8_STATUS_SUCCESS);
  const QuantizedWeight g = gpu_quantize_weight(w, N, K, group);
  ASSERT_TRUE(g.s2 == r.s2 || (std::isnan(g.s2) && std::isnan(r.s2))) << what << " s2 " << g.s2 << " vs " << r.s2;
  for (size_t i = 0; i < r.scales.size(); ++i)
    ASSERT_EQ(g.scales[i], r.scales[i]) << what << " N=" << N << " K=" << K << " g" << group << " scale " << i;
  // Codes: compare decoded values, so +0 and -0 (codes 0 and 8) count as equal.
  for (size_t i = 0; i < r.packed.size(); ++i)
    for (int h = 0; h < 2; ++h)
      ASSERT_EQ(e2m1_to_float(unpack_e2m1(g.packed[i], h)), e2m1_to_float(unpack_e2m1(r.packed[i], h)))
          << what << " N=" << N << " K=" << K << " g" << group << " element " << 2 * i + h;
}

TEST(GpuQuantizeWeight, BitExactOnRandomShapes) {
  W4A8_REQUIRE_GPU();
  std::mt19937_64 rng(202);
  const int64_t shapes[][3] = {{1, 16, 16},     {1, 32, 32},      {3, 48, 16},     {17, 1040, 16},
                               {256, 2048, 16}, {256, 2048, 32},  {2048, 2048, 16}, {4096, 1024, 16},
                               {1000, 4096, 32}, {7, 65536, 16},  {1, 65536, 32},  {33, 96, 32},
                               {100, 160, 16},  {2560, 1024, 16}, {13, 16384, 16}, {1024, 4096, 16},
                               {5, 2080, 32},   {64, 64, 16},     {9, 9216, 32},   {300, 336, 16},
                               {16384, 64, 16}, {2, 16, 16}};
  for (const auto& sh : shapes) {
    const float stddev = std::exp2(static_cast<float>(rng() % 16) - 12.0f);
    check_weight_quant(random_bf16(sh[0] * sh[1], rng, stddev), sh[0], sh[1], int(sh[2]), "gaussian");
  }
}

TEST(GpuQuantizeWeight, BitExactOnAdversarialBlocks) {
  W4A8_REQUIRE_GPU();
  for (int group : {16, 32}) {
    const int64_t N = 6, K = 256;
    std::vector<uint16_t> w(N * K, 0);
    // Tensor amax 2688 -> s2 = 1. Row 1: blocks of amax 6 (scale exactly 1) holding every
    // E2M1 midpoint and neighbours. Row 2: tiny blocks (scale clamped to 2^-9). Row 3: one
    // outlier per block. Row 4: zeros and -0. Row 5: random signs across 12 octaves.
    w[0] = float_to_bf16(2688.0f);
    const float mids[] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f, 6.0f, 0.5f, 3.0f};
    for (int k = 0; k < K; ++k) {
      const float m = mids[k % 10] * (k % 3 == 0 ? -1.0f : 1.0f);
      uint16_t b = float_to_bf16(m);
      if (k % 7 == 0) b = static_cast<uint16_t>(b + 1);
      w[K + k] = b;
    }
    for (int k = 0; k < K; k += group) w[K + k] = float_to_bf16(6.0f);
    for (int k = 0; k < K; ++k) w[2 * K + k] = float_to_bf16(std::ldexp(float(k % 5) - 2.0f, -12));
    for (int k = 0; k < K; ++k) w[3 * K + k] = float_to_bf16(k % group == 5 ? 1000.0f : 0.7f);
    for (int k = 0; k < K; k += 2) w[4 * K + k] = 0x8000;
    std::mt19937_64 rng(9);
    for (int k = 0; k < K; ++k)
      w[5 * K + k] = float_to_bf16((rng() & 1 ? -1.0f : 1.0f) * std::ldexp(1.0f + (rng() % 256) / 256.0f, int(rng() % 12) - 6));
    check_weight_quant(w, N, K, group, "adversarial");
    std::vector<uint16_t> bad(2 * K, float_to_bf16(1.0f));
    bad[K + 3] = float_to_bf16(NAN);
    check_weight_quant(bad, 2, K, group, "nan");
    bad[K + 3] = float_to_bf16(-INFINITY);
    check_weight_quant(bad, 2, K, group, "inf");
    check_weight_quant(std::vector<uint16_t>(2 * K, 0), 2, K, group, "zeros");
  }
}

// ---- GEMM ------------------------------------------------------------------------------

// Quantized operands of one GEMM problem, on host and device.
struct Problem {
  int64_t M, N, K;
  int group;
  std::vector<uint8_t> x, packed, scales;
  std::vector<float> rs;
  std::vector<uint16_t> bias;
  float s2 = 1.0f, alpha = 1.0f;
  DeviceBuffer<uint8_t> dx, dp, ds;
  DeviceBuffer<float> drs, ds2;
  DeviceBuffer<uint16_t> dbias, dy;

  Problem(int64_t m, int64_t n, int64_t k, int g)
      : M(m), N(n), K(k), group(g), dx(m * k), dp(n * k / 2), ds(n * k / g), drs(m), ds2(1), dbias(n), dy(m * n) {}

  // BF16 activations [M, K] and weights [N, K] quantized with the (already bit-exact-tested)
  // CPU reference (host copies only: upload() after).
  void quantize(const std::vector<uint16_t>& xb, const std::vector<uint16_t>& wb) {
    x.resize(M * K);
    rs.resize(M);
    packed.resize(N * K / 2);
    scales.resize(N * K / group);
    ASSERT_EQ(ref::quantize_activation_fp8(xb.data(), M, K, x.data(), rs.data()), W4A8_STATUS_SUCCESS);
    ASSERT_EQ(ref::quantize_weight_nvfp4(wb.data(), N, K, group, packed.data(), scales.data(), &s2),
              W4A8_STATUS_SUCCESS);
  }
  // Random BF16 data, quantized.
  void randomize(std::mt19937_64& rng, bool with_bias) {
    quantize(random_bf16(M * K, rng, 1.0f), random_bf16(N * K, rng, 0.02f));
    if (with_bias) bias = random_bf16(N, rng, 0.1f);
    alpha = 0.75f;
    upload();
  }
  void upload() {
    dx.upload(x);
    dp.upload(packed);
    ds.upload(scales);
    drs.upload(rs);
    ds2.upload(std::vector<float>{s2});
    if (!bias.empty()) dbias.upload(bias);
  }
  // The weights also in the tiled layout (made by the CPU reference; weight() then returns
  // that view while `tiled` is set).
  std::unique_ptr<DeviceBuffer<uint8_t>> dtp, dts;
  bool tiled = false;
  // The FP8 path's preparation (w4a8_prepare_fp8), copied into weight(); fp8_oracle: check
  // against the FP8 path's weights (ref::fp8_weight_value) instead of the exact ones.
  int fp8 = W4A8_FP8_NONE, fp8_shift = 0;
  int overlap = 0;  // w4a8_weight::overlap of weight()
  bool fp8_oracle = false;
  // A fast-accumulation FP8 kernel runs (fp8 == W4A8_FP8_FAST, or one forced by name): the
  // looser summation bound of check_against_reference.
  bool fast_acc = false;
  void make_tiled() {
    const w4a8_weight canon{packed.data(), scales.data(), nullptr, nullptr, N, K, group, W4A8_LAYOUT_CANONICAL, W4A8_FP8_NONE, 0, 0};
    std::vector<uint8_t> tp(tiled_packed_bytes(N, K)), ts(tiled_scale_bytes(N, K, group));
    ASSERT_EQ(w4a8_ref_prepack_weight(&canon, tp.data(), ts.data()), W4A8_STATUS_SUCCESS) << w4a8_last_error();
    dtp = std::make_unique<DeviceBuffer<uint8_t>>(tp.size());
    dts = std::make_unique<DeviceBuffer<uint8_t>>(ts.size());
    dtp->upload(tp);
    dts->upload(ts);
  }
  w4a8_weight weight() const {
    if (tiled)
      return w4a8_weight{dtp->get(), dts->get(), ds2.get(), bias.empty() ? nullptr : dbias.get(), N, K, group, W4A8_LAYOUT_TILED, fp8, fp8_shift, overlap};
    return w4a8_weight{dp.get(), ds.get(), ds2.get(), bias.empty() ? nullptr : dbias.get(), N, K, group, W4A8_LAYOUT_CANONICAL, fp8, fp8_shift, overlap};
  }
  ref::HostWeight host_weight() const {
    return ref::HostWeight{packed.data(), scales.data(), s2, bias.empty() ? nullptr : bias.data(), N, K, group,
                           fp8_oracle, fp8_shift};
  }
  // w4a8_prepare_fp8 on the device copy; the report.
  w4a8_fp8_report prepare_fp8() {
    w4a8_weight w = weight();
    w4a8_fp8_report r{};
    EXPECT_EQ(w4a8_prepare_fp8(&w, &r, nullptr), W4A8_STATUS_SUCCESS) << w4a8_last_error();
    fp8 = w.fp8;
    fp8_shift = w.fp8_shift;
    return r;
  }
  kernels::GemmParams params() const {
    kernels::GemmParams p;
    p.x = dx.get();
    p.row_scale = drs.get();
    p.w = dp.get();
    p.sb = ds.get();
    p.s2 = ds2.get();
    p.bias = bias.empty() ? nullptr : dbias.get();
    p.y = dy.get();
    p.M = M;
    p.N = N;
    p.K = K;
    p.group = group;
    p.alpha = alpha;
    return p;
  }
};

// Checks a GPU result against the exact CPU reference: every element written and finite,
// each checked point within ref::gemm_tolerance, relative Frobenius error <= 4e-3 over the
// checked points. All points when the problem is small, else a random sample plus the
// first/last rows and columns.
void check_against_reference(const Problem& pb, const std::vector<uint16_t>& y, const std::string& what) {
  for (size_t i = 0; i < y.size(); ++i)
    ASSERT_TRUE(std::isfinite(bf16_to_float(y[i])))
        << what << ": element (" << i / pb.N << "," << i % pb.N << ") not written or not finite";
  std::vector<int64_t> ms, ns;
  if (pb.M * pb.N <= 40000 && pb.M * pb.N * pb.K <= (int64_t(1) << 29)) {
    for (int64_t m = 0; m < pb.M; ++m)
      for (int64_t n = 0; n < pb.N; ++n) ms.push_back(m), ns.push_back(n);
  } else {
    std::mt19937_64 rng(pb.M * 31 + pb.N * 7 + pb.K);
    for (int i = 0; i < 3000; ++i) ms.push_back(int64_t(rng() % pb.M)), ns.push_back(int64_t(rng() % pb.N));
    for (int64_t m : {int64_t(0), pb.M - 1})
      for (int64_t n : {int64_t(0), int64_t(15), pb.N - 1, pb.N / 2}) ms.push_back(m), ns.push_back(std::min(n, pb.N - 1));
  }
  std::vector<double> ye(ms.size()), ya(ms.size());
  ASSERT_EQ(ref::gemm_points(pb.x.data(), pb.rs.data(), pb.host_weight(), pb.M, pb.alpha, ms.data(), ns.data(),
                             ms.size(), nullptr, ye.data(), ya.data()),
            W4A8_STATUS_SUCCESS);
  double err2 = 0, ref2 = 0;
  for (size_t i = 0; i < ms.size(); ++i) {
    const double got = bf16_to_float(y[ms[i] * pb.N + ns[i]]);
    // The FP8 path's tensor cores keep about 14 bits while they sum 256 k (DeepSeek-V3 report
    // 3.3.2; the kernel promotes each such sum into FP32): up to ~2^-11 of the sum of
    // |products| more, the bound used here. Its fast-accumulation kernels sum all of K there:
    // 2^-9 (on exact weights the H100 stayed within 2^-11.4 at K <= 16384, BENCHMARKS.md
    // "Session 25").
    const bool fast = pb.fast_acc || pb.fp8 == W4A8_FP8_FAST;
    const double tol =
        ref::gemm_tolerance(ye[i], ya[i], pb.K) + (pb.fp8 ? std::ldexp(ya[i], fast ? -9 : -11) : 0.0);
    ASSERT_LE(std::fabs(got - ye[i]), tol) << what << " M=" << pb.M << " N=" << pb.N << " K=" << pb.K << " g"
                                           << pb.group << " at (" << ms[i] << "," << ns[i] << "): got " << got
                                           << " want " << ye[i];
    err2 += (got - ye[i]) * (got - ye[i]);
    ref2 += ye[i] * ye[i];
  }
  EXPECT_LE(std::sqrt(err2 / std::max(ref2, 1e-300)), 4e-3) << what;
}

// with_workspace: the bytes w4a8_gemm_workspace_size() asks for (the documented use); without,
// NULL/0 (the wgmma kernels then convert the activations themselves).
std::vector<uint16_t> run_api(Problem& pb, w4a8_kernel kernel, bool with_workspace = true) {
  if (kernel == W4A8_KERNEL_WGMMA_FP8 && pb.fp8 == W4A8_FP8_NONE) {
    pb.prepare_fp8();
    pb.fp8_oracle = true;
  }
  pb.dy.fill_bytes(0xFF);  // poison: BF16 NaN everywhere
  const w4a8_weight w = pb.weight();
  size_t need = 0;
  EXPECT_EQ(w4a8_gemm_workspace_size(pb.M, pb.N, pb.K, pb.group, &need), W4A8_STATUS_SUCCESS);
  if (!with_workspace) need = 0;
  DeviceBuffer<uint8_t> ws(need ? need : 1);
  // Poisoned too (FP16 / BF16 NaN): the wgmma kernels' TMA maps span whole token tiles of the
  // prologue's activations, past row M (GemmParams::x16_rows), and whatever lies there must not
  // reach a stored output.
  ws.fill_bytes(0xFF);
  const w4a8_status st = w4a8_gemm_with_kernel(pb.dx.get(), pb.drs.get(), &w, pb.dy.get(), pb.M, pb.alpha, kernel,
                                               need ? ws.get() : nullptr, need, nullptr);
  EXPECT_EQ(st, W4A8_STATUS_SUCCESS) << w4a8_last_error();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  return pb.dy.download();
}

// The dispatched kernel against the reference, and against the naive device kernel on
// every element (a second, independent decode of the weights).
void check_dispatched(int64_t M, int64_t N, int64_t K, int group, bool bias, std::mt19937_64& rng) {
  Problem pb(M, N, K, group);
  pb.randomize(rng, bias);
  const char* name = "";
  ASSERT_EQ(w4a8_gemm_kernel_name(M, N, K, group, W4A8_KERNEL_AUTO, &name), W4A8_STATUS_SUCCESS);
  const auto y = run_api(pb, W4A8_KERNEL_AUTO);
  check_against_reference(pb, y, name);
  if (M * N * K <= (int64_t(1) << 36)) {
    const auto yn = run_api(pb, W4A8_KERNEL_NAIVE);
    std::vector<double> row_rms(M, 0.0);
    for (int64_t i = 0; i < M * N; ++i) row_rms[i / N] += std::pow(bf16_to_float(yn[i]), 2) / N;
    for (int64_t i = 0; i < M * N; ++i) {
      const double a = bf16_to_float(y[i]), b = bf16_to_float(yn[i]);
      ASSERT_LE(std::fabs(a - b), std::ldexp(std::fabs(b), -7) + 1e-3 * std::sqrt(row_rms[i / N]) + 1e-30)
          << name << " vs naive at (" << i / N << "," << i % N << ")";
    }
  }
}

TEST(GpuGemm, DispatchedMatchesReferenceOnRandomShapes) {
  W4A8_REQUIRE_GPU();
  std::mt19937_64 rng(303);
  // {M, N, K, group, bias}: M from 1 to 5000, odd M, N not a multiple of any tile, K from 16
  // to 20480, both group sizes, K % 32 == 16 (8-byte loads), the pi0.5 shapes.
  const int64_t shapes[][5] = {
      {1, 16384, 2048, 16, 0},  {1, 2048, 16384, 16, 0}, {16, 2048, 2048, 16, 1},  {50, 4096, 1024, 16, 0},
      {50, 1024, 4096, 16, 1},  {50, 2048, 1024, 16, 0}, {50, 256, 1024, 16, 0},   {968, 2048, 2048, 16, 0},
      {968, 256, 2048, 16, 0},  {968, 16384, 2048, 16, 0}, {968, 2048, 16384, 16, 0}, {1, 32768, 2048, 32, 0},
      {3, 17, 16, 16, 1},       {7, 100, 48, 16, 0},     {1, 1, 16, 16, 0},        {9, 33, 32, 32, 1},
      {129, 1000, 1040, 16, 1}, {65, 515, 272, 16, 0},   {5000, 2048, 2048, 16, 0}, {4096, 2048, 1024, 32, 0},
      {33, 20000, 512, 16, 1},  {2, 1024, 20480, 16, 0}, {128, 16384, 2048, 16, 0}, {17, 4095, 4096, 32, 0},
      {8, 24, 65536, 16, 0},    {100, 2560, 1024, 16, 1}, {1, 8192, 1024, 16, 0},  {31, 311, 1008, 16, 0},
      {64, 64, 64, 32, 1},      {257, 129, 2064, 16, 0}, {1000, 300, 4096, 32, 1}, {1, 2047, 16384, 32, 0},
      {12, 16400, 144, 16, 0},  {4095, 1, 96, 16, 1}};
  for (const auto& s : shapes) {
    SCOPED_TRACE(testing::Message() << "M=" << s[0] << " N=" << s[1] << " K=" << s[2] << " g" << s[3]);
    check_dispatched(s[0], s[1], s[2], int(s[3]), s[4] != 0, rng);
    if (HasFatalFailure()) return;
  }
}

// Every whitelisted configuration, forced, on shapes with ragged M and N.
TEST(GpuGemm, EveryConfigurationMatchesReference) {
  W4A8_REQUIRE_GPU();
  std::mt19937_64 rng(404);
  for (int i = 0; i < kernels::mma_config_count(); ++i) {
    const kernels::MmaConfig& c = kernels::mma_config(i);
    for (const int64_t M : {int64_t(1), int64_t(8 * c.mt + 3)}) {
      const int64_t K = c.vec == 16 ? 32 * 37 : 16 * 37;  // 37 chunks: ragged over any WK
      const int64_t N = 16 * c.wn * 2 + 5;
      Problem pb(M, N, K, c.group);
      pb.randomize(rng, M > 1);
      pb.dy.fill_bytes(0xFF);
      CUDA_OK(kernels::launch_mma(i, pb.params(), 132, nullptr));
      CUDA_OK(cudaDeviceSynchronize());
      check_against_reference(pb, pb.dy.download(), c.name);
      if (HasFatalFailure()) return;
    }
  }
}

// The other side of the test above: K a whole number of batches for every K-warp (two each),
// where the kernels with two row tiles per warp load interior tiles without predicates
// (gemm_mma.cu kFastLoads). With sm_count 1 the grid is one SM's resident CTAs (1 or 2), so
// each CTA walks a full tile and then one of the partial row group's (after the other full
// tile where one CTA runs): the prefetch of the next tile crosses from the unpredicated loads
// to the checked ones there.
TEST(GpuGemm, EveryConfigurationMatchesReferenceOnWholeBatches) {
  W4A8_REQUIRE_GPU();
  std::mt19937_64 rng(405);
  for (int i = 0; i < kernels::mma_config_count(); ++i) {
    const kernels::MmaConfig& c = kernels::mma_config(i);
    const int64_t chunk_k = 8 * c.vec, batch_chunks = c.rm == 1 ? 2 : 1;
    const int64_t K = chunk_k * c.wk * c.cs * batch_chunks * 2;  // (K-warps: wk per CTA, cs CTAs)
    const int64_t N = 16 * c.wn * c.rm + 5;  // one full row group and a partial one
    const int64_t M = 8 * c.mt + 3;          // two token tiles
    Problem pb(M, N, K, c.group);
    pb.randomize(rng, true);
    pb.dy.fill_bytes(0xFF);
    CUDA_OK(kernels::launch_mma(i, pb.params(), 1, nullptr));
    CUDA_OK(cudaDeviceSynchronize());
    check_against_reference(pb, pb.dy.download(), c.name + std::string(" (whole batches)"));
    if (HasFatalFailure()) return;
  }
}

// Small integers with unit scales: x in [-2, 2], w in {0, +-0.5, +-1}, so every product and
// partial sum is a multiple of 0.5 and the outputs below 128 in magnitude (at least
// min_percent of them) are exact in BF16: compared exactly with the reference.
std::vector<uint16_t> run_config(Problem& pb, int index, w4a8_status* status = nullptr);

// fast_config: a fast-accumulation FP8 configuration run by name on the weight marked
// W4A8_FP8_FAST, instead of `kernel` (partial sums of small integers stay exact in the tensor
// cores' ~14 bits; AUTO takes these kernels only on problems too large for this CPU check).
void check_small_integers_exact(int64_t M, int64_t N, int64_t K, int group, w4a8_kernel kernel, int min_percent,
                                std::mt19937_64& rng, const char* fast_config = nullptr) {
  Problem pb(M, N, K, group);
  pb.x.resize(M * K);
  pb.packed.resize(N * K / 2);
  pb.scales.assign(N * K / group, kE4M3One);
  pb.rs.assign(M, 1.0f);
  std::uniform_int_distribution<int> xd(-2, 2), wd(0, 2);
  for (auto& v : pb.x) v = float_to_e4m3(static_cast<float>(xd(rng)));
  auto code = [&] { return static_cast<uint8_t>(wd(rng) | (rng() & 1 ? 8 : 0)); };
  for (auto& v : pb.packed) v = pack_e2m1(code(), code());
  pb.upload();
  if (fast_config) {
    ASSERT_EQ(pb.prepare_fp8().exact, 1);
    pb.fp8 = W4A8_FP8_FAST;
    pb.fp8_oracle = true;
    pb.fast_acc = true;
  }
  const int index = fast_config ? config_index(fast_config) : -1;
  if (fast_config) {
    ASSERT_GE(index, 0) << fast_config;
  }
  const auto y = fast_config ? run_config(pb, index) : run_api(pb, kernel);
  std::vector<uint16_t> yr(M * N);
  std::vector<double> ye(M * N);
  ASSERT_EQ(ref::gemm(pb.x.data(), pb.rs.data(), pb.host_weight(), M, pb.alpha, yr.data(), ye.data()),
            W4A8_STATUS_SUCCESS);
  int64_t checked = 0;
  for (int64_t i = 0; i < M * N; ++i) {
    if (std::fabs(ye[i]) >= 128.0) continue;  // not necessarily exact in BF16
    ASSERT_EQ(bf16_to_float(y[i]), ye[i]) << "M=" << M << " N=" << N << " K=" << K << " g" << group << " at ("
                                          << i / N << "," << i % N << ")";
    ++checked;
  }
  EXPECT_GE(checked, M * N * min_percent / 100);
}

// The fused BF16 entry point on BF16 activations xb (whose quantization pb holds): bit for bit
// `ya`, what the two steps gave (`what` names the kernel).
void check_fused_equals(const Problem& pb, const std::vector<uint16_t>& xb, const std::vector<uint16_t>& ya,
                        const std::string& what) {
  DeviceBuffer<uint16_t> dxb(pb.M * pb.K), dy2(pb.M * pb.N);
  dxb.upload(xb);
  size_t lw = 0;
  W4A8_OK(w4a8_linear_workspace_size(pb.M, pb.N, pb.K, pb.group, &lw));
  DeviceBuffer<uint8_t> lws(lw);
  lws.fill_bytes(0xFF);  // (rows past M of the wgmma kernels' activations: see run_api)
  dy2.fill_bytes(0xFF);
  const w4a8_weight w = pb.weight();
  W4A8_OK(w4a8_linear_bf16(dxb.get(), &w, dy2.get(), pb.M, pb.alpha, lws.get(), lw, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  ASSERT_TRUE(dy2.download() == ya) << "fused BF16 call differs from quantize + GEMM (" << what << ")";
}

// Whether this GPU runs the sm_90a wgmma kernels. On an sm_90 GPU they must be there: a
// build without them would otherwise skip their tests silently.
bool wgmma_available() {
  int dev = 0, major = 0, minor = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev);
  return major == 9 && minor == 0;
}

// W4A8_TEST_SMALL=1 (scripts/gpu-check.sh's sanitizer stage): the configuration loops below
// that say so leave out their large shapes, so that racecheck, 10-100x slower than the kernels,
// covers every configuration within one device call. The normal suite runs them all.
bool small_shapes_only() {
  const char* e = std::getenv("W4A8_TEST_SMALL");
  return e && e[0] == '1';
}

// Configuration `index` forced, on a poisoned output. Expected to run, unless `status` is given:
// then the call's status goes there (a refusal is the caller's to judge).
std::vector<uint16_t> run_config(Problem& pb, int index, w4a8_status* status) {
  pb.dy.fill_bytes(0xFF);
  const w4a8_weight w = pb.weight();
  // FP16 activations, then FP32 partials of up to 8 K-splits.
  DeviceBuffer<uint8_t> ws(size_t(pb.M) * ((pb.K + 63) / 64 * 64) * 2 + 256 + 8 * size_t(pb.M) * pb.N * 4 + 256);
  ws.fill_bytes(0xFF);  // (as in run_api: rows past M that a tile's TMA copy reads hold NaN)
  const w4a8_status st = w4a8_gemm_with_config(pb.dx.get(), pb.drs.get(), &w, pb.dy.get(), pb.M, pb.alpha, index,
                                               ws.get(), ws.size(), nullptr);
  if (status) *status = st;
  else EXPECT_EQ(st, W4A8_STATUS_SUCCESS) << w4a8_last_error();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  return pb.dy.download();
}

// Every wgmma configuration, forced, on ragged M and N, K with a half stage at the end
// (K % 64 == 32: for split-K in the last split), and enough work items that persistent CTAs
// walk several (M = 1000, N = 2053); K = 64 leaves split-K configurations one split. Split-K
// configurations also run twice: bit for bit the same (partials added in a fixed order).
TEST(GpuWgmma, EveryConfigurationMatchesReference) {
  W4A8_REQUIRE_GPU();
  if (!wgmma_available()) GTEST_SKIP() << "not an sm_90 GPU: the wgmma kernels do not run here";
  std::mt19937_64 rng(414);
  int tested = 0;
  for (int i = 0; i < w4a8_gemm_config_count(); ++i) {
    const std::string name = w4a8_gemm_config_name(i);
    if (name.rfind("wgmma_exact", 0) != 0) continue;  // (the FP8 path: GpuFp8.*)
    const int group = heuristics::config_group(i);
    // N odd (the epilogue's 2-byte stores), even (BF16 pairs), and a partial last channel tile
    // at N % 4 == 2 and N % 4 == 0; M = 2000 at K = 64: more tiles than SMs for every tile
    // height, one stage each, so persistent CTAs reuse their pipeline stages across tiles
    // (also under W4A8_TEST_SMALL).
    const int64_t shapes[][3] = {{1, 133, 32 * 37}, {259, 389, 32 * 37}, {1000, 2053, 2048}, {200, 128, 64},
                                 {259, 390, 32 * 37}, {77, 260, 32 * 37}, {2000, 2053, 64}};
    for (const auto& s : shapes) {
      if (s[2] % group) continue;
      if (small_shapes_only() && s[0] * s[1] * s[2] > (int64_t(1) << 28)) continue;  // (M = 1000 only)
      Problem pb(s[0], s[1], s[2], group);
      pb.randomize(rng, s[0] > 1);
      const auto y = run_config(pb, i);
      check_against_reference(pb, y, name.c_str());
      if (HasFatalFailure()) return;
      if (name.find("_k") != std::string::npos) {
        ASSERT_TRUE(run_config(pb, i) == y) << name << " not deterministic";
      }
    }
    ++tested;
  }
  EXPECT_GE(tested, 2);
}

// How many clusters of S whole-SM wgmma CTAs the GPU holds at once (what decides whether a
// cluster-reduced split-K configuration runs in one wave): S SMs of one GPC each, so at most
// SMs / S, at least one; on a 132-SM H100 the numbers heuristics.cpp quotes.
TEST(GpuWgmma, ClusterSlots) {
  W4A8_REQUIRE_GPU();
  if (!wgmma_available()) GTEST_SKIP() << "not an sm_90 GPU: the wgmma kernels do not run here";
  int dev = 0, sms = 0;
  ASSERT_EQ(cudaGetDevice(&dev), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), cudaSuccess);
  const int s2 = kernels::wgmma_cluster_slots(2, dev), s4 = kernels::wgmma_cluster_slots(4, dev),
            s8 = kernels::wgmma_cluster_slots(8, dev);
  std::printf("cluster slots on %d SMs: %d of 2, %d of 4, %d of 8\n", sms, s2, s4, s8);
  EXPECT_GE(s2, 1);
  EXPECT_LE(s2, sms / 2);
  EXPECT_GE(s4, 1);
  EXPECT_LE(s4, sms / 4);
  EXPECT_GE(s8, 1);
  EXPECT_LE(s8, sms / 8);
  if (sms == 132) {
    EXPECT_EQ(s2, 66);
    EXPECT_EQ(s4, 30);
    EXPECT_EQ(s8, 15);
  }
}

// Split-K reduced in a cluster ("_k<S>c") against its twin that reduces through the workspace
// ("_k<S>"): the same partial sums added in the same (split) order and the same epilogue, so
// the same bits -- on ragged shapes (rows and channels past the tile edge, a half stage at the
// end of K), a split count below the configuration's (K = 4 stages on 8 splits), with bias,
// and with several waves of clusters (M = 1000, N = 2053).
TEST(GpuWgmma, ClusterReducedSplitsEqualWorkspaceSplits) {
  W4A8_REQUIRE_GPU();
  if (!wgmma_available()) GTEST_SKIP() << "not an sm_90 GPU: the wgmma kernels do not run here";
  std::mt19937_64 rng(417);
  int tested = 0;
  for (int i = 0; i < w4a8_gemm_config_count(); ++i) {
    const std::string name = w4a8_gemm_config_name(i);
    const size_t at = name.find("c_g");
    if (name.rfind("wgmma_exact", 0) != 0 || at == std::string::npos) continue;
    const std::string twin_name = name.substr(0, at) + name.substr(at + 1);
    const int twin = config_index(twin_name);
    ASSERT_GE(twin, 0) << name << ": no twin " << twin_name;
    const int group = heuristics::config_group(i);
    const int64_t shapes[][3] = {{1000, 2053, 32 * 131}, {77, 390, 256}, {259, 128, 32 * 37}};
    for (const auto& sh : shapes) {
      Problem pb(sh[0], sh[1], sh[2], group);
      pb.randomize(rng, true);
      const auto y = run_config(pb, i);
      check_against_reference(pb, y, name.c_str());
      if (HasFatalFailure()) return;
      ASSERT_TRUE(run_config(pb, twin) == y) << name << " differs from " << twin_name << " at M=" << sh[0]
                                             << " N=" << sh[1] << " K=" << sh[2];
    }
    ++tested;
  }
  EXPECT_GE(tested, 10);
}

// The wgmma kernel on the pi0.5 prefill shapes and at the M the dispatcher hands over, plus
// the small-integer exact check (every product and partial sum exact).
TEST(GpuWgmma, PrefillShapesAndSmallIntegers) {
  W4A8_REQUIRE_GPU();
  if (!wgmma_available()) GTEST_SKIP() << "not an sm_90 GPU: the wgmma kernels do not run here";
  std::mt19937_64 rng(415);
  const int64_t shapes[][4] = {{968, 2048, 16384, 16}, {968, 16384, 2048, 16}, {129, 4096, 1024, 16},
                               {4096, 1024, 4096, 32}, {300, 8192, 1024, 16}};
  for (const auto& s : shapes) {
    Problem pb(s[0], s[1], s[2], int(s[3]));
    pb.randomize(rng, true);
    const auto y = run_api(pb, W4A8_KERNEL_WGMMA_EXACT);
    check_against_reference(pb, y, "wgmma");
    if (HasFatalFailure()) return;
    // Without a workspace the in-kernel converters make the same FP16 operands: same bits when
    // the workspace run used the same tile unsplit (split-K sums in another order: the bound).
    const auto yc = run_api(pb, W4A8_KERNEL_WGMMA_EXACT, false);
    const char* name = "";
    W4A8_OK(w4a8_gemm_kernel_name(pb.M, pb.N, pb.K, pb.group, W4A8_KERNEL_WGMMA_EXACT, &name));
    if (std::string(name).find("_k") == std::string::npos) {
      ASSERT_EQ(0, std::memcmp(y.data(), yc.data(), y.size() * 2)) << "converter variant differs";
    } else {
      check_against_reference(pb, yc, std::string("converter variant of ") + name);
    }
  }
  check_small_integers_exact(300, 200, 4096, 16, W4A8_KERNEL_WGMMA_EXACT, 90, rng);
}

TEST(GpuWgmma, DeterministicAndRefusedWhereItCannotRun) {
  W4A8_REQUIRE_GPU();
  std::mt19937_64 rng(416);
  Problem pb(500, 1024, 2048, 16);
  pb.randomize(rng, false);
  const w4a8_weight w = pb.weight();
  if (!wgmma_available()) {
    EXPECT_EQ(w4a8_gemm_with_kernel(pb.dx.get(), pb.drs.get(), &w, pb.dy.get(), pb.M, 1.0f,
                                    W4A8_KERNEL_WGMMA_EXACT, nullptr, 0, nullptr),
              W4A8_STATUS_NOT_SUPPORTED);
    GTEST_SKIP() << "not an sm_90 GPU: checked only that the wgmma kernel is refused";
  }
  const auto a = run_api(pb, W4A8_KERNEL_WGMMA_EXACT);
  const auto b = run_api(pb, W4A8_KERNEL_WGMMA_EXACT);
  ASSERT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 2));
  // K % 32 != 0 cannot be described to TMA: a clear NOT_SUPPORTED, nothing written.
  Problem odd(200, 64, 48, 16);
  odd.randomize(rng, false);
  odd.dy.fill_bytes(0xAB);
  const w4a8_weight wo = odd.weight();
  EXPECT_EQ(w4a8_gemm_with_kernel(odd.dx.get(), odd.drs.get(), &wo, odd.dy.get(), odd.M, 1.0f,
                                  W4A8_KERNEL_WGMMA_EXACT, nullptr, 0, nullptr),
            W4A8_STATUS_NOT_SUPPORTED);
  EXPECT_NE(std::string(w4a8_last_error()).find("K % 32"), std::string::npos) << w4a8_last_error();
  for (uint16_t v : odd.dy.download()) ASSERT_EQ(v, 0xABAB);
}

// FP16 bits of a value that FP16 holds exactly (every E4M3 value does).
uint16_t float_to_half_bits_exact(float v) {
  const uint16_t sign = std::signbit(v) ? 0x8000 : 0;
  const float a = std::fabs(v);
  if (a == 0.0f) return sign;
  int e = 0;
  const float f = std::frexp(a, &e);  // a = f * 2^e, f in [0.5, 1)
  const int E = e - 1 + 15;
  if (E >= 1) return static_cast<uint16_t>(sign | (E << 10) | static_cast<uint16_t>(std::ldexp(2.0f * f - 1.0f, 10)));
  return static_cast<uint16_t>(sign | static_cast<uint16_t>(std::ldexp(a, 24)));  // subnormal: a = m * 2^-24
}

// The wgmma kernel's FP16 activations: the FP8 quantizer's values, widened and permuted
// within 64-k blocks, rows zero-padded to a multiple of 64 (both prologue kernels).
TEST(GpuQuantizeActivation, F16PermutedEqualsFp8Codes) {
  W4A8_REQUIRE_GPU();
  std::mt19937_64 rng(17);
  // (K <= 16384: the quantizer's one-read register kernel; 16400: its two-pass kernel; M > 65535:
  // the FP8 -> FP16 pass strides rows over grid.y; M * units >= 2^20: it does 4 rows per thread,
  // here with a ragged last group of rows, and with more than 4 * 65535 rows)
  // Both orders: the canonical weights' and the tiled weights' (kernels::f16p_k_of_column).
  for (const bool tiled : {false, true})
  for (const auto& mk : std::vector<std::pair<int64_t, int64_t>>{{1, 64}, {3, 32}, {7, 2080}, {130, 2048}, {2, 16400},
                                                                 {65540, 32}, {70, 16384}, {1027, 16400},
                                                                 {262200, 32}}) {
    SCOPED_TRACE(tiled ? "tiled order" : "canonical order");
    const int64_t M = mk.first, K = mk.second, Kp = kernels::f16p_row_elems(K);
    auto xb = random_bf16(M * K, rng, 1.0f);
    if (M > 2) xb[K + 5] = 0x7FC0;  // a NaN row: NaN codes, NaN scale
    std::vector<uint8_t> q(M * K);
    std::vector<float> rs(M);
    ASSERT_EQ(ref::quantize_activation_fp8(xb.data(), M, K, q.data(), rs.data()), W4A8_STATUS_SUCCESS);
    DeviceBuffer<uint16_t> dxb(M * K), d16a(M * Kp), d16b(M * Kp);
    DeviceBuffer<uint8_t> dq(M * K);
    DeviceBuffer<float> drs(M);
    dxb.upload(xb);
    dq.upload(q);
    d16a.fill_bytes(0xCD);
    d16b.fill_bytes(0xCD);
    CUDA_OK(kernels::launch_quantize_activation_f16p(dxb.get(), d16a.get(), drs.get(), M, K, nullptr,
                                                     kernels::Pdl::kSerial, tiled));
    CUDA_OK(kernels::launch_fp8_to_f16p(dq.get(), d16b.get(), M, K, nullptr, kernels::Pdl::kSerial, tiled));
    CUDA_OK(cudaDeviceSynchronize());
    const auto a = d16a.download(), b = d16b.download();
    const auto rsd = drs.download();
    for (int64_t m = 0; m < M; ++m) {
      ASSERT_EQ(std::memcmp(&rsd[m], &rs[m], 4), 0) << "row scale " << m;
      for (int64_t j = 0; j < Kp; ++j) {
        const int64_t k = j / 64 * 64 + kernels::f16p_k_of_column(int(j % 64), tiled);
        uint16_t want = 0;
        if (k < K) {
          const float v = e4m3_to_float(q[m * K + k]);
          want = std::isnan(v) ? 0x7FFF : float_to_half_bits_exact(v);
        }
        const uint16_t got = a[m * Kp + j];
        if (want == 0x7FFF) {
          ASSERT_TRUE((got & 0x7C00) == 0x7C00 && (got & 0x3FF)) << m << "," << j;
        } else {
          ASSERT_EQ(got, want) << "quantizer, row " << m << " column " << j << " (k " << k << ")";
        }
        ASSERT_EQ(b[m * Kp + j], got) << "converter, row " << m << " column " << j;
      }
    }
  }
}

// Small integers with unit scales: every output is an exact integer, compared exactly.
TEST(GpuGemm, SmallIntegersExact) {
  W4A8_REQUIRE_GPU();
  std::mt19937_64 rng(5);
  for (int group : {16, 32}) {
    check_small_integers_exact(37, 45, 2 * 1024 + (group == 16 ? 16 : 0), group, W4A8_KERNEL_AUTO, 95, rng);
    if (HasFatalFailure()) return;
  }
}

// Block scales at the bottom of the E4M3 range make FP16 subnormal weights: still exact.
TEST(GpuGemm, TinyBlockScalesStayExact) {
  W4A8_REQUIRE_GPU();
  std::mt19937_64 rng(6);
  const int64_t M = 24, N = 40, K = 1024;
  Problem pb(M, N, K, 16);
  pb.randomize(rng, false);
  for (size_t i = 0; i < pb.scales.size(); ++i) pb.scales[i] = static_cast<uint8_t>(i % 3 == 0 ? 1 + rng() % 12 : pb.scales[i]);
  pb.upload();
  check_against_reference(pb, run_api(pb, W4A8_KERNEL_AUTO), "tiny scales");
}

TEST(GpuGemm, NaNRowScalePropagatesOnlyToItsRow) {
  W4A8_REQUIRE_GPU();
  std::mt19937_64 rng(8);
  Problem pb(5, 64, 256, 16);
  pb.randomize(rng, false);
  pb.rs[2] = NAN;
  pb.upload();
  const auto y = run_api(pb, W4A8_KERNEL_AUTO);
  for (int64_t i = 0; i < 5 * 64; ++i) EXPECT_EQ(std::isnan(bf16_to_float(y[i])), i / 64 == 2) << i;
}

TEST(GpuGemm, BitwiseDeterministic) {
  W4A8_REQUIRE_GPU();
  std::mt19937_64 rng(9);
  for (const int64_t M : {int64_t(1), int64_t(16), int64_t(50), int64_t(300)}) {
    Problem pb(M, 2048, 16384, 16);
    pb.randomize(rng, false);
    const auto a = run_api(pb, W4A8_KERNEL_AUTO);
    const auto b = run_api(pb, W4A8_KERNEL_AUTO);
    ASSERT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 2)) << "M=" << M;
  }
}

// The fused BF16 entry point equals quantize + GEMM, and replays identically from a graph.
// Programmatic dependent launches: a call's quantizer / prologue always starts as a dependent
// of the kernel before it and its GEMM as a dependent of those (for weights marked `overlap`
// also the GEMM of a call without a prologue, and the quantizer lets the GEMM launch before
// its own wait); every one of them must still wait before it reads what the kernel before
// wrote or writes what it reads (the shared workspace). A chain of layers where each input
// is the previous layer's output, written by the kernel right before (mma and wgmma layers
// mixed, fused and FP8-input calls, M = 1 to 600), with and without `overlap`, eager and in a
// replayed CUDA graph: bitwise equal to the chain run one call at a time (a stream
// synchronization after each, so that no launch overlaps anything).
TEST(GpuLinear, OverlapWaitsForThePrecedingKernel) {
  W4A8_REQUIRE_GPU();
  std::mt19937_64 rng(23);
  const int64_t D = 2048;  // every layer D -> D, so outputs feed the next layer
  const int kLayers = 12;
  std::vector<std::unique_ptr<Problem>> layers;
  for (int l = 0; l < kLayers; ++l) {
    layers.push_back(std::make_unique<Problem>(1, D, D, 16));
    layers.back()->randomize(rng, l % 3 == 0);
  }
  cudaStream_t s;
  CUDA_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  // (M = 600 runs the wgmma kernel on an sm_90 GPU, the others the mma kernel)
  const char* name = nullptr;
  W4A8_OK(w4a8_gemm_kernel_name(600, D, D, 16, W4A8_KERNEL_AUTO, &name));
  if (wgmma_available()) {
    EXPECT_EQ(std::string(name).rfind("wgmma", 0), 0u) << name;
  }
  for (const int64_t M : {int64_t(1), int64_t(16), int64_t(50), int64_t(100), int64_t(600)}) {
    const auto x0 = random_bf16(M * D, rng);
    size_t lin_bytes = 0, gemm_bytes = 0;
    W4A8_OK(w4a8_linear_workspace_size(M, D, D, 16, &lin_bytes));
    W4A8_OK(w4a8_gemm_workspace_size(M, D, D, 16, &gemm_bytes));
    DeviceBuffer<uint8_t> ws(lin_bytes), gws(gemm_bytes ? gemm_bytes : 1), xq(M * D);
    DeviceBuffer<float> rs(M);
    std::vector<std::unique_ptr<DeviceBuffer<uint16_t>>> act;
    for (int l = 0; l <= kLayers; ++l) act.push_back(std::make_unique<DeviceBuffer<uint16_t>>(M * D));
    act[0]->upload(x0);
    // Odd layers: quantize (our kernel, writes xq) + w4a8_gemm; even ones: w4a8_linear_bf16.
    auto chain = [&](int overlap, bool one_at_a_time = false) {
      for (int l = 0; l < kLayers; ++l) {
        if (one_at_a_time) {
          CUDA_OK(cudaStreamSynchronize(s));
        }
        layers[l]->overlap = overlap;
        const w4a8_weight w = layers[l]->weight();
        if (l % 2) {
          W4A8_OK(w4a8_quantize_activation_fp8(act[l]->get(), xq.get(), rs.get(), M, D, s));
          if (one_at_a_time) {
            CUDA_OK(cudaStreamSynchronize(s));
          }
          W4A8_OK(w4a8_gemm(xq.get(), rs.get(), &w, act[l + 1]->get(), M, 1.0f, gemm_bytes ? gws.get() : nullptr,
                            gemm_bytes, s));
        } else {
          W4A8_OK(w4a8_linear_bf16(act[l]->get(), &w, act[l + 1]->get(), M, 1.0f, ws.get(), lin_bytes, s));
        }
      }
    };
    auto outputs = [&] {
      std::vector<std::vector<uint16_t>> o;
      for (int l = 1; l <= kLayers; ++l) o.push_back(act[l]->download());
      return o;
    };
    // (fill_bytes runs on the legacy default stream: synchronize before using s)
    for (int l = 1; l <= kLayers; ++l) act[l]->fill_bytes(0xFF);
    CUDA_OK(cudaDeviceSynchronize());
    chain(0, true);
    CUDA_OK(cudaStreamSynchronize(s));
    const auto serial = outputs();
    for (const auto& o : serial)
      for (uint16_t v : o) ASSERT_TRUE(std::isfinite(bf16_to_float(v))) << "M=" << M << ": chain output not finite";
    for (const int overlap : {0, 1}) {
      for (int l = 1; l <= kLayers; ++l) act[l]->fill_bytes(0xFF);
      CUDA_OK(cudaDeviceSynchronize());
      chain(overlap);
      CUDA_OK(cudaStreamSynchronize(s));
      EXPECT_TRUE(outputs() == serial) << "M=" << M << ": eager chain (overlap " << overlap << ") differs";
      cudaGraph_t graph;
      cudaGraphExec_t exec;
      CUDA_OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
      chain(overlap);
      CUDA_OK(cudaStreamEndCapture(s, &graph));
      CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
      for (int rep = 0; rep < 3; ++rep) {
        for (int l = 1; l <= kLayers; ++l) act[l]->fill_bytes(0xFF);
        CUDA_OK(cudaDeviceSynchronize());
        CUDA_OK(cudaGraphLaunch(exec, s));
        CUDA_OK(cudaStreamSynchronize(s));
        EXPECT_TRUE(outputs() == serial) << "M=" << M << ": graph replay " << rep << " (overlap " << overlap
                                         << ") differs";
      }
      cudaGraphExecDestroy(exec);
      cudaGraphDestroy(graph);
    }
  }
  cudaStreamDestroy(s);
}

// The mma kernels stream their first weights before they wait for the kernel before them
// (since session 19 they really do: ptxas had hoisted the wait above those loads). A weight
// that the kernel just before the call writes, weight not marked `overlap`, must still be
// read only once that kernel has finished: the quantizer in front of the GEMM lets the GEMM
// launch only after its own wait (api.cpp prologue_pdl). Library kernels that write weights
// (quantize, prepack) never let a dependent start early, so the writer here is a GEMM, which
// does: the packed codes of weight 2 are the BF16 output bytes of GEMM 1 (any byte is two
// valid E2M1 codes), poisoned before each run. A fused call that read them before GEMM 1 had
// finished differs from the same call made after a synchronize. (H100: with the quantizer's
// early trigger forced for every weight it failed at M = 1, rep 0, in both of two runs; M = 16
// did not catch it: a race, not a certainty.)
TEST(GpuLinear, WeightsWrittenByThePrecedingKernelAreRead) {
  W4A8_REQUIRE_GPU();
  std::mt19937_64 rng(77);
  const int64_t N2 = 2048, K2 = 2048;
  Problem g1(256, 4096, 4096, 16);  // its output: N2 * K2 / 2 bytes, weight 2's codes
  ASSERT_EQ(size_t(g1.M * g1.N * 2), size_t(N2 * K2 / 2));
  g1.randomize(rng, false);
  Problem w2(1, N2, K2, 16);  // for its block scales and tensor scale only
  w2.randomize(rng, false);
  const w4a8_weight w1 = g1.weight();
  const w4a8_weight w{g1.dy.get(), w2.ds.get(), w2.ds2.get(), nullptr, N2, K2, 16, W4A8_LAYOUT_CANONICAL, W4A8_FP8_NONE, 0, 0};
  size_t ws1 = 0;
  W4A8_OK(w4a8_gemm_workspace_size(g1.M, g1.N, g1.K, 16, &ws1));
  DeviceBuffer<uint8_t> dws1(ws1 ? ws1 : 1);
  cudaStream_t s;
  CUDA_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  auto gemm1 = [&](int poison) {
    CUDA_OK(cudaMemsetAsync(g1.dy.get(), poison, g1.dy.size() * 2, s));
    W4A8_OK(w4a8_gemm(g1.dx.get(), g1.drs.get(), &w1, g1.dy.get(), g1.M, g1.alpha, dws1.get(), ws1, s));
  };
  for (const int64_t M : {int64_t(1), int64_t(16)}) {
    DeviceBuffer<uint16_t> dx(M * K2), dy(M * N2);
    dx.upload(random_bf16(M * K2, rng));
    size_t ws_bytes = 0;
    W4A8_OK(w4a8_linear_workspace_size(M, N2, K2, 16, &ws_bytes));
    DeviceBuffer<uint8_t> ws(ws_bytes);
    const char* name = "";
    W4A8_OK(w4a8_weight_kernel_name(&w, M, W4A8_KERNEL_AUTO, &name));
    gemm1(0);
    CUDA_OK(cudaStreamSynchronize(s));
    dy.fill_bytes(0xFF);
    W4A8_OK(w4a8_linear_bf16(dx.get(), &w, dy.get(), M, 1.0f, ws.get(), ws_bytes, s));
    CUDA_OK(cudaStreamSynchronize(s));
    const auto settled = dy.download();
    for (int rep = 0; rep < 16; ++rep) {
      dy.fill_bytes(0xFF);
      gemm1(rep % 2 ? 0x00 : 0x77);
      W4A8_OK(w4a8_linear_bf16(dx.get(), &w, dy.get(), M, 1.0f, ws.get(), ws_bytes, s));
      CUDA_OK(cudaStreamSynchronize(s));
      const auto got = dy.download();
      if (std::memcmp(got.data(), settled.data(), settled.size() * 2) != 0) {
        ADD_FAILURE() << name << " M=" << M << " rep " << rep
                      << ": the GEMM read weights before the kernel writing them had finished";
        break;  // (on to the next M: each kernel family reports)
      }
    }
  }
  CUDA_OK(cudaStreamDestroy(s));
}

TEST(GpuLinear, FusedEqualsTwoStepsAndGraphReplays) {
  W4A8_REQUIRE_GPU();
  std::mt19937_64 rng(10);
  for (const int64_t M : {int64_t(1), int64_t(13), int64_t(200)}) {
    const int64_t N = 1000, K = 2048;
    Problem pb(M, N, K, 16);
    pb.randomize(rng, true);
    const auto xb = random_bf16(M * K, rng);
    DeviceBuffer<uint16_t> dxb(M * K), dy2(M * N);
    dxb.upload(xb);
    // Two steps through the public API.
    W4A8_OK(w4a8_quantize_activation_fp8(dxb.get(), pb.dx.get(), pb.drs.get(), M, K, nullptr));
    const w4a8_weight w = pb.weight();
    pb.dy.fill_bytes(0xFF);
    W4A8_OK(w4a8_gemm(pb.dx.get(), pb.drs.get(), &w, pb.dy.get(), M, pb.alpha, nullptr, 0, nullptr));
    CUDA_OK(cudaDeviceSynchronize());
    const auto two = pb.dy.download();
    // Fused, captured in a graph on a non-default stream, replayed twice.
    size_t ws_bytes = 0;
    W4A8_OK(w4a8_linear_workspace_size(M, N, K, 16, &ws_bytes));
    DeviceBuffer<uint8_t> ws(ws_bytes);
    cudaStream_t s;
    CUDA_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    CUDA_OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    W4A8_OK(w4a8_linear_bf16(dxb.get(), &w, dy2.get(), M, pb.alpha, ws.get(), ws_bytes, s));
    CUDA_OK(cudaStreamEndCapture(s, &graph));
    CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
    for (int rep = 0; rep < 2; ++rep) {
      dy2.fill_bytes(0xFF);
      CUDA_OK(cudaGraphLaunch(exec, s));
      CUDA_OK(cudaStreamSynchronize(s));
      const auto fused = dy2.download();
      ASSERT_EQ(0, std::memcmp(fused.data(), two.data(), two.size() * 2)) << "M=" << M << " replay " << rep;
    }
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    cudaStreamDestroy(s);
  }
}

// The gated epilogue (w4a8_linear_bf16_glu) against the ungated call on the same data: the
// same kernel runs (the choice does not depend on it), so the gate and up values are the
// ungated output's BF16 values, and each output must be bf16(bf16(act(g)) * u) of them. The
// CPU's tanhf / expf may differ from CUDA's in the last FP32 bit, which moves the rounded act
// by one BF16 step in rare cases: every element within two BF16 steps, at least 99% equal.
// Shapes reach the mma kernel (M = 1, 13, 50, 200), the wgmma kernel (M = 600) and its split-K
// reduction (M = 128 on 2048 x 16384); outputs poisoned first; bad act and N refused.
float glu_act_host(int act, float x) {
  if (act == W4A8_GLU_GELU_TANH) {
    const float kBeta = float(1.4142135623730950488 * 1.1283791670955125739 * 0.5), kKappa = 0.044715f;
    const float x_cube = x * x * x;
    return 0.5f * x * (1.0f + std::tanh(kBeta * (x + kKappa * x_cube)));
  }
  return x / (1.0f + std::exp(-x));
}

// Runs w4a8_linear_bf16 and w4a8_linear_bf16_glu on the same input and weight and checks the
// gated output against bf16(bf16(act(g)) * u) of the ungated one (see above); returns the name
// of the kernel that ran.
std::string check_gated(Problem& pb, int act, std::mt19937_64& rng) {
  const int64_t M = pb.M, N = pb.N, K = pb.K, I = N / 2;
  const auto xb = random_bf16(M * K, rng, 2.0f);
  DeviceBuffer<uint16_t> dxb(M * K), dg(M * I);
  dxb.upload(xb);
  size_t ws_bytes = 0;
  EXPECT_EQ(w4a8_linear_workspace_size(M, N, K, pb.group, &ws_bytes), W4A8_STATUS_SUCCESS);
  DeviceBuffer<uint8_t> ws(ws_bytes);
  const w4a8_weight w = pb.weight();
  pb.dy.fill_bytes(0xFF);
  dg.fill_bytes(0xFF);
  EXPECT_EQ(w4a8_linear_bf16(dxb.get(), &w, pb.dy.get(), M, pb.alpha, ws.get(), ws_bytes, nullptr),
            W4A8_STATUS_SUCCESS) << w4a8_last_error();
  EXPECT_EQ(w4a8_linear_bf16_glu(dxb.get(), &w, w4a8_glu_act(act), dg.get(), M, pb.alpha, ws.get(), ws_bytes,
                                 nullptr),
            W4A8_STATUS_SUCCESS) << w4a8_last_error();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const auto full = pb.dy.download(), gated = dg.download();
  const char* name = "";
  EXPECT_EQ(w4a8_weight_kernel_name(&w, M, W4A8_KERNEL_AUTO, &name), W4A8_STATUS_SUCCESS);
  const std::string what = std::string(name) + " M=" + std::to_string(M) + " N=" + std::to_string(N) +
                           " K=" + std::to_string(K) + " act=" + std::to_string(act);
  int64_t equal = 0;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t j = 0; j < I; ++j) {
      const int64_t r = (j / 8) * 16 + j % 8;
      const float g = bf16_to_float(full[m * N + r]), u = bf16_to_float(full[m * N + r + 8]);
      const uint16_t want = float_to_bf16(bf16_to_float(float_to_bf16(glu_act_host(act, g))) * u);
      const uint16_t got = gated[m * I + j];
      if (!std::isfinite(bf16_to_float(got))) {
        ADD_FAILURE() << what << ": (" << m << "," << j << ") not written";
        return name;
      }
      if (got == want) {
        ++equal;
        continue;
      }
      const float d = std::fabs(bf16_to_float(got) - bf16_to_float(want));
      if (!(d <= std::ldexp(std::fabs(bf16_to_float(want)), -6) + 1e-30f)) {
        ADD_FAILURE() << what << ": (" << m << "," << j << ") " << bf16_to_float(got) << " vs " << bf16_to_float(want);
        return name;
      }
    }
  EXPECT_GE(equal, (M * I * 99) / 100) << what << ": " << equal << " of " << M * I << " equal";
  return name;
}

TEST(GpuLinear, GatedEpilogueEqualsUngatedThenAct) {
  W4A8_REQUIRE_GPU();
  std::mt19937_64 rng(77);
  struct Case {
    int64_t M, N, K;
  };
  for (const Case c : {Case{1, 96, 256}, Case{13, 2048, 1024}, Case{50, 8192, 1024}, Case{200, 512, 2048},
                       Case{600, 2048, 2048}, Case{128, 2048, 16384},
                       Case{50, 16384, 2048}, Case{100, 16384, 2048}})  // (the 128-k-stage wgmma tiles)
    for (const int act : {int(W4A8_GLU_GELU_TANH), int(W4A8_GLU_SILU)}) {
      Problem pb(c.M, c.N, c.K, 16);
      pb.randomize(rng, true);
      check_gated(pb, act, rng);
      if (HasFailure()) return;
    }
  // Refusals: an unknown act, N not a multiple of 16; the output untouched.
  Problem pb(4, 40, 64, 16);
  pb.randomize(rng, false);
  DeviceBuffer<uint16_t> dxb(4 * 64), dg(4 * 20);
  dxb.upload(random_bf16(4 * 64, rng));
  dg.fill_bytes(0xAB);
  size_t ws_bytes = 0;
  W4A8_OK(w4a8_linear_workspace_size(4, 40, 64, 16, &ws_bytes));
  DeviceBuffer<uint8_t> ws(ws_bytes);
  const w4a8_weight w = pb.weight();
  EXPECT_EQ(w4a8_linear_bf16_glu(dxb.get(), &w, w4a8_glu_act(3), dg.get(), 4, 1.0f, ws.get(), ws_bytes, nullptr),
            W4A8_STATUS_INVALID_VALUE);
  EXPECT_NE(std::string(w4a8_last_error()).find("act=3"), std::string::npos) << w4a8_last_error();
  EXPECT_EQ(w4a8_linear_bf16_glu(dxb.get(), &w, W4A8_GLU_SILU, dg.get(), 4, 1.0f, ws.get(), ws_bytes, nullptr),
            W4A8_STATUS_INVALID_VALUE);
  EXPECT_NE(std::string(w4a8_last_error()).find("multiple of 16"), std::string::npos) << w4a8_last_error();
  CUDA_OK(cudaDeviceSynchronize());
  for (uint16_t v : dg.download()) ASSERT_EQ(v, 0xABAB);
}

// The seed's flow end to end (SEED.md usage 1): quantize weight and activation on the GPU,
// GEMM; compare with the reference built from the same BF16 inputs.
// ---- the tiled weight layout ----------------------------------------------------------------

// GPU prepack equals the CPU reference's bytes (padding zeros included; outputs poisoned first),
// and GPU unprepack gives the canonical bytes back. Random bytes, not only quantizer output:
// the conversion must not care what the bytes mean.
TEST(GpuTiled, PrepackMatchesReferenceAndRoundTrips) {
  W4A8_REQUIRE_GPU();
  std::mt19937_64 rng(616);
  const int64_t shapes[][3] = {{1, 32, 16}, {20, 160, 16}, {33, 4096, 16}, {100, 96, 32}, {2053, 2048, 32}, {16, 128, 16}};
  for (const auto& s : shapes) {
    const int64_t N = s[0], K = s[1];
    const int G = int(s[2]);
    std::vector<uint8_t> packed(N * K / 2), scales(N * K / G);
    for (auto& b : packed) b = uint8_t(rng());
    for (auto& b : scales) b = uint8_t(rng());
    const w4a8_weight hc{packed.data(), scales.data(), nullptr, nullptr, N, K, G, W4A8_LAYOUT_CANONICAL, W4A8_FP8_NONE, 0, 0};
    std::vector<uint8_t> tp(tiled_packed_bytes(N, K)), ts(tiled_scale_bytes(N, K, G));
    ASSERT_EQ(w4a8_ref_prepack_weight(&hc, tp.data(), ts.data()), W4A8_STATUS_SUCCESS) << w4a8_last_error();
    DeviceBuffer<uint8_t> dp(packed.size()), ds(scales.size()), dtp(tp.size()), dts(ts.size());
    dp.upload(packed);
    ds.upload(scales);
    dtp.fill_bytes(0xA5);
    dts.fill_bytes(0xA5);
    const w4a8_weight dc{dp.get(), ds.get(), nullptr, nullptr, N, K, G, W4A8_LAYOUT_CANONICAL, W4A8_FP8_NONE, 0, 0};
    ASSERT_EQ(w4a8_prepack_weight(&dc, dtp.get(), dts.get(), nullptr), W4A8_STATUS_SUCCESS) << w4a8_last_error();
    ASSERT_TRUE(dtp.download() == tp) << "packed codes, N=" << N << " K=" << K;
    ASSERT_TRUE(dts.download() == ts) << "block scales, N=" << N << " K=" << K << " g" << G;
    dp.fill_bytes(0x5A);
    ds.fill_bytes(0x5A);
    const w4a8_weight dt{dtp.get(), dts.get(), nullptr, nullptr, N, K, G, W4A8_LAYOUT_TILED, W4A8_FP8_NONE, 0, 0};
    ASSERT_EQ(w4a8_unprepack_weight(&dt, dp.get(), ds.get(), nullptr), W4A8_STATUS_SUCCESS) << w4a8_last_error();
    ASSERT_TRUE(dp.download() == packed) << "round trip, packed, N=" << N << " K=" << K;
    ASSERT_TRUE(ds.download() == scales) << "round trip, scales, N=" << N << " K=" << K;
  }
}

// Every configuration that can read tiled weights (mma with 16-byte pieces, every wgmma one),
// forced, on ragged N and K % 64 != 0: the wgmma converter variant (FP8 activations converted
// in the kernel) gives bit for bit what it gives on the canonical layout (same order of
// accumulation: only the addresses and the code extraction differ); mma, and wgmma on FP16
// activations from a prologue, pair the k of their MMAs differently on tiled words (k 0..3 /
// 4..7 instead of even / odd, w4a8/formats.hpp; the prologue then writes the activations in the
// matching order, launch.hpp f16p_k_of_column), so their FP32 sums may round differently: their
// tiled result is held to the CPU reference's bound instead, and to determinism. The canonical
// result is checked against the reference where check_ref. The 8-byte-piece configurations
// refuse tiled weights.
void check_tiled_configs(const std::vector<std::array<int64_t, 3>>& shapes, bool check_ref, std::mt19937_64& rng) {
  int tested = 0;
  for (int i = 0; i < w4a8_gemm_config_count(); ++i) {
    const std::string name = w4a8_gemm_config_name(i);
    const bool wgmma = name.rfind("wgmma", 0) == 0;
    if (wgmma && !wgmma_available()) continue;
    if (name.rfind("wgmma_fp8", 0) == 0) continue;  // canonical only (GpuFp8.RefusalsAndOptIn)
    const int group = heuristics::config_group(i);
    const bool v8 = name.find("_v8_") != std::string::npos;
    for (const auto& s : shapes) {
      Problem pb(s[0], s[1], s[2], group);
      pb.randomize(rng, s[0] > 1);
      pb.make_tiled();
      if (v8) {
        pb.tiled = true;
        const w4a8_weight w = pb.weight();
        EXPECT_EQ(w4a8_gemm_with_config(pb.dx.get(), pb.drs.get(), &w, pb.dy.get(), pb.M, 1.0f, i, nullptr, 0, nullptr),
                  W4A8_STATUS_NOT_SUPPORTED) << name;
        break;
      }
      const auto yc = run_config(pb, i);
      if (check_ref) check_against_reference(pb, yc, name.c_str());
      pb.tiled = true;
      const auto yt = run_config(pb, i);
      if (::testing::Test::HasFatalFailure()) return;
      if (wgmma && !heuristics::config_f16_in(i)) {
        ASSERT_EQ(0, std::memcmp(yc.data(), yt.data(), yc.size() * 2)) << name << " M=" << s[0] << " N=" << s[1]
                                                                       << " K=" << s[2] << ": tiled != canonical";
      } else {
        check_against_reference(pb, yt, name + " (tiled)");
        ASSERT_TRUE(run_config(pb, i) == yt) << name << " (tiled) not deterministic";
      }
    }
    ++tested;
  }
  EXPECT_GE(tested, 40);
}

// Small enough for compute-sanitizer (gpu-check.sh runs it under memcheck).
TEST(GpuTiled, EveryConfigurationEqualsCanonicalSmall) {
  W4A8_REQUIRE_GPU();
  std::mt19937_64 rng(617);
  check_tiled_configs({{1, 133, 32 * 37}, {37, 389, 32 * 37}}, true, rng);
}

// Enough tiles that persistent CTAs walk several, and several row blocks per tile.
TEST(GpuTiled, EveryConfigurationEqualsCanonical) {
  W4A8_REQUIRE_GPU();
  std::mt19937_64 rng(619);
  check_tiled_configs({{259, 2053, 2048}}, false, rng);
}

// AUTO and the naive kernel on tiled weights, across the M range (decode, the mma/wgmma
// hand-over, prefill) and the pi0.5 shapes: the same bits as on canonical ones where the
// summation order is the same (naive); within the reference's bound where AUTO runs an mma or
// a wgmma configuration (tiled words pair their k differently, see check_tiled_configs).
TEST(GpuTiled, DispatchedAndNaiveEqualCanonical) {
  W4A8_REQUIRE_GPU();
  std::mt19937_64 rng(618);
  const int64_t shapes[][4] = {{1, 2048, 16384, 16}, {16, 16384, 2048, 16}, {50, 1024, 4096, 32},
                               {128, 2048, 16384, 16}, {968, 2048, 2048, 16}, {300, 8200, 1056, 16}};
  for (const auto& s : shapes) {
    Problem pb(s[0], s[1], s[2], int(s[3]));
    pb.randomize(rng, true);
    pb.make_tiled();
    const auto yc = run_api(pb, W4A8_KERNEL_AUTO);
    const auto nc = s[0] * s[1] * s[2] <= (int64_t(1) << 33) ? run_api(pb, W4A8_KERNEL_NAIVE) : std::vector<uint16_t>();
    pb.tiled = true;
    const auto yt = run_api(pb, W4A8_KERNEL_AUTO);
    const w4a8_weight wt = pb.weight();
    const char* kname = nullptr;
    ASSERT_EQ(w4a8_weight_kernel_name(&wt, pb.M, W4A8_KERNEL_AUTO, &kname), W4A8_STATUS_SUCCESS);
    check_against_reference(pb, yc, std::string("canonical AUTO ") + kname);
    check_against_reference(pb, yt, std::string("tiled AUTO ") + kname);
    if (!nc.empty()) {
      const auto nt = run_api(pb, W4A8_KERNEL_NAIVE);
      ASSERT_EQ(0, std::memcmp(nc.data(), nt.data(), nc.size() * 2)) << "naive, M=" << s[0];
    }
    if (s[0] == 50) check_against_reference(pb, yt, "tiled AUTO");
  }
}

TEST(GpuSeedApi, QuantizeQuantizeGemm) {
  W4A8_REQUIRE_GPU();
  std::mt19937_64 rng(12);
  const int M = 256, N = 2048, K = 2048;
  const auto xb = random_bf16(size_t(M) * K, rng), wb = random_bf16(size_t(N) * K, rng, 0.02f);
  DeviceBuffer<uint16_t> dxb(size_t(M) * K), dwb(size_t(N) * K), dy(size_t(M) * N);
  DeviceBuffer<uint8_t> dxq(size_t(M) * K), dwp(size_t(N) * K / 2), dws(size_t(N) * K / 16);
  DeviceBuffer<float> drs(M), ds2(1);
  dxb.upload(xb);
  dwb.upload(wb);
  dy.fill_bytes(0xFF);
  W4A8_OK(quantizeWeightToNVFP4(reinterpret_cast<const __nv_bfloat16*>(dwb.get()), dwp.get(),
                                reinterpret_cast<__nv_fp8_e4m3*>(dws.get()), ds2.get(), N, K, nullptr));
  W4A8_OK(quantizeActivationToFP8(reinterpret_cast<const __nv_bfloat16*>(dxb.get()),
                                  reinterpret_cast<__nv_fp8_e4m3*>(dxq.get()), drs.get(), M, K, nullptr));
  W4A8_OK(w4a8GemmForward(reinterpret_cast<const __nv_fp8_e4m3*>(dxq.get()), drs.get(), dwp.get(),
                          reinterpret_cast<const __nv_fp8_e4m3*>(dws.get()), ds2.get(),
                          reinterpret_cast<__nv_bfloat16*>(dy.get()), M, N, K, 1.0f, nullptr, 0, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  Problem pb(M, N, K, 16);
  pb.x = dxq.download();
  pb.rs = drs.download();
  pb.packed = dwp.download();
  pb.scales = dws.download();
  pb.s2 = ds2.download()[0];
  check_against_reference(pb, dy.download(), "seed api");
}

TEST(GpuDevice, UnsupportedKernelIndexIsReported) {
  W4A8_REQUIRE_GPU();
  kernels::GemmParams p;
  EXPECT_EQ(kernels::launch_mma(-1, p, 132, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(kernels::launch_mma(kernels::mma_config_count(), p, 132, nullptr), cudaErrorInvalidValue);
}

// ---- FP8 tensor-core path ------------------------------------------------------------------

// Block scales replaced by powers of two (2^-4 .. 2^3): every product e2m1 * sb is then an
// E4M3 value times a power of two, so the weight is EXACT for the FP8 path.
void power_of_two_scales(Problem& pb, std::mt19937_64& rng) {
  for (auto& v : pb.scales) v = static_cast<uint8_t>(float_to_e4m3(std::ldexp(1.0f, int(rng() % 8) - 4)));
  pb.upload();
}

// The gated epilogue on the FP8 path (an EXACT weight, where AUTO takes it from M = 512): the
// same check as GpuLinear.GatedEpilogueEqualsUngatedThenAct, both acts, group 16 and 32.
TEST(GpuFp8, GatedEpilogueOnTheFp8Path) {
  W4A8_REQUIRE_GPU();
  if (!wgmma_available()) GTEST_SKIP() << "not an sm_90 GPU: the wgmma kernels do not run here";
  std::mt19937_64 rng(805);
  for (const int group : {16, 32})
    for (const int act : {int(W4A8_GLU_GELU_TANH), int(W4A8_GLU_SILU)}) {
      Problem pb(700, 2048, 2048, group);
      pb.randomize(rng, true);
      power_of_two_scales(pb, rng);
      ASSERT_EQ(pb.prepare_fp8().exact, 1);
      const std::string name = check_gated(pb, act, rng);
      EXPECT_EQ(name.rfind("wgmma_fp8", 0), 0u) << name;
      if (HasFailure()) return;
    }
  // The fast-accumulation kernel's gated epilogue: a FAST weight where AUTO takes it.
  Problem pb(1000, 8192, 1024, 16);
  pb.randomize(rng, true);
  pb.prepare_fp8();
  pb.fp8 = W4A8_FP8_FAST;
  const std::string name = check_gated(pb, int(W4A8_GLU_SILU), rng);
  EXPECT_EQ(name.rfind("wgmma_fp8_fast", 0), 0u) << name;
}

// The device analysis equals the CPU one (shift, exactness, worst product error) on ModelOpt
// weights (lossy), power-of-two scales (exact), and a NaN block scale (skipped by both).
TEST(GpuFp8, PrepareMatchesReference) {
  W4A8_REQUIRE_GPU();
  std::mt19937_64 rng(801);
  for (int group : {16, 32})
    for (int kind = 0; kind < 3; ++kind) {
      Problem pb(96, 320, 1024, group);
      pb.randomize(rng, false);
      if (kind >= 1) power_of_two_scales(pb, rng);
      if (kind == 2) {
        pb.scales[7] = kE4M3NaN;
        pb.upload();
      }
      const w4a8_fp8_report r = pb.prepare_fp8();
      w4a8_weight hw{pb.packed.data(), pb.scales.data(), nullptr, nullptr, pb.N, pb.K, group, W4A8_LAYOUT_CANONICAL,
                     W4A8_FP8_NONE, 0, 0};
      w4a8_fp8_report hr{};
      W4A8_OK(w4a8_ref_prepare_fp8(&hw, &hr));
      EXPECT_EQ(r.shift, hr.shift);
      EXPECT_EQ(r.exact, hr.exact);
      EXPECT_EQ(r.max_rel_error, hr.max_rel_error);
      EXPECT_EQ(pb.fp8, hw.fp8);
      EXPECT_EQ(pb.fp8, kind == 0 ? W4A8_FP8_LOSSY : W4A8_FP8_EXACT) << "kind " << kind << " g" << group;
      if (kind == 0) {
        EXPECT_GT(r.max_rel_error, 0.0);
      }
      EXPECT_LE(r.max_rel_error, 1.0 / 16);  // half an E4M3 ulp, relative
    }
  // Tiled weights are refused (the FP8 kernel reads canonical ones); nothing is written.
  Problem pb(32, 64, 128, 16);
  pb.randomize(rng, false);
  pb.make_tiled();
  pb.tiled = true;
  w4a8_weight w = pb.weight();
  EXPECT_EQ(w4a8_prepare_fp8(&w, nullptr, nullptr), W4A8_STATUS_NOT_SUPPORTED);
  EXPECT_EQ(w.fp8, W4A8_FP8_NONE);
  EXPECT_EQ(w4a8_prepare_fp8(nullptr, nullptr, nullptr), W4A8_STATUS_NULL_POINTER);
}

// Both FP8-path prologues write the FP8 codes permuted within 128-k blocks
// (kernels::fp8p_k_of_slot), rows zero-padded to a multiple of 128; the quantizer's row scales
// are the FP8 quantizer's.
TEST(GpuFp8, PermutedActivationsEqualFp8Codes) {
  W4A8_REQUIRE_GPU();
  std::mt19937_64 rng(802);
  // (the last two as in F16PermutedEqualsFp8Codes, where the FP16 pass does 4 rows per thread;
  // this one keeps one row per thread, here too past 65535 rows)
  for (const auto& mk : std::vector<std::pair<int64_t, int64_t>>{{1, 128}, {3, 32}, {7, 2080}, {130, 2048}, {2, 16400},
                                                                 {65540, 48}, {70, 16384}, {1027, 16400},
                                                                 {262200, 48}}) {
    const int64_t M = mk.first, K = mk.second, Kp = kernels::fp8p_row_bytes(K);
    auto xb = random_bf16(M * K, rng, 1.0f);
    if (M > 2) xb[K + 5] = 0x7FC0;  // a NaN row
    std::vector<uint8_t> q(M * K);
    std::vector<float> rs(M);
    ASSERT_EQ(ref::quantize_activation_fp8(xb.data(), M, K, q.data(), rs.data()), W4A8_STATUS_SUCCESS);
    DeviceBuffer<uint16_t> dxb(M * K);
    DeviceBuffer<uint8_t> dq(M * K), da(M * Kp), db(M * Kp);
    DeviceBuffer<float> drs(M);
    dxb.upload(xb);
    dq.upload(q);
    da.fill_bytes(0xCD);
    db.fill_bytes(0xCD);
    drs.fill_bytes(0xCD);
    CUDA_OK(kernels::launch_quantize_activation_fp8p(dxb.get(), da.get(), drs.get(), M, K, nullptr));
    CUDA_OK(kernels::launch_fp8_to_fp8p(dq.get(), db.get(), M, K, nullptr));
    CUDA_OK(cudaDeviceSynchronize());
    const auto a = da.download(), b = db.download();
    const auto rsd = drs.download();
    for (int64_t m = 0; m < M; ++m) {
      ASSERT_EQ(std::memcmp(&rsd[m], &rs[m], 4), 0) << "row scale " << m;
      for (int64_t j = 0; j < Kp; ++j) {
        const int64_t k = j / 128 * 128 + kernels::fp8p_k_of_slot(int(j % 128));
        const uint8_t want = k < K ? q[m * K + k] : 0;
        ASSERT_EQ(a[m * Kp + j], want) << "quantizer, M=" << M << " K=" << K << " row " << m << " slot " << j;
        ASSERT_EQ(b[m * Kp + j], want) << "permutation, M=" << M << " K=" << K << " row " << m << " slot " << j;
      }
    }
  }
}

// Every FP8-path configuration, forced, on lossy (ModelOpt) weights against the FP8 path's own
// oracle (weights rounded as the kernel rounds them), ragged M and N, K with 32, 64 or 96 k in
// the last 128-k stage; split configurations also twice, bit for bit. Also shows the FP8 path's
// error against the exact result stays near the documented weight error.
TEST(GpuFp8, EveryConfigurationMatchesFp8Reference) {
  W4A8_REQUIRE_GPU();
  if (!wgmma_available()) GTEST_SKIP() << "not an sm_90 GPU: the wgmma kernels do not run here";
  std::mt19937_64 rng(803);
  int tested = 0;
  for (int i = 0; i < w4a8_gemm_config_count(); ++i) {
    const std::string name = w4a8_gemm_config_name(i);
    if (name.rfind("wgmma_fp8", 0) != 0) continue;
    const int group = heuristics::config_group(i);
    const int64_t shapes[][3] = {{1, 133, 32 * 37}, {259, 389, 32 * 37}, {1000, 2053, 2048}, {200, 128, 64}, {77, 256, 4192}};
    for (const auto& sh : shapes) {
      if (sh[2] % group) continue;
      Problem pb(sh[0], sh[1], sh[2], group);
      pb.randomize(rng, sh[0] > 1);
      pb.prepare_fp8();
      pb.fp8_oracle = true;
      pb.fast_acc = name.rfind("wgmma_fp8_fast", 0) == 0;
      const auto y = run_config(pb, i);
      check_against_reference(pb, y, name);
      if (HasFatalFailure()) return;
      if (name.find("_k") != std::string::npos) {
        ASSERT_TRUE(run_config(pb, i) == y) << name << " not deterministic";
      }
    }
    ++tested;
  }
  EXPECT_EQ(tested, 12);
}

// An EXACT weight: AUTO runs the FP8 path where it would run the prefill kernel (and says so),
// within the exact reference's bound (plus the FP8 accumulation term); the fused BF16 entry
// point gives the same bits as quantize + GEMM; small integers come out exactly.
TEST(GpuFp8, ExactWeightsRunTheFp8PathExactly) {
  W4A8_REQUIRE_GPU();
  if (!wgmma_available()) GTEST_SKIP() << "not an sm_90 GPU: the wgmma kernels do not run here";
  std::mt19937_64 rng(804);
  // Shapes where AUTO runs the prefill kernel (its tiles fill the SMs).
  const int64_t shapes[][4] = {{968, 2048, 16384, 16}, {1000, 2048, 2048, 32}, {700, 4096, 1184, 16}};
  for (const auto& sh : shapes) {
    Problem pb(sh[0], sh[1], sh[2], int(sh[3]));
    pb.randomize(rng, true);
    power_of_two_scales(pb, rng);
    const w4a8_fp8_report r = pb.prepare_fp8();
    ASSERT_EQ(r.exact, 1);
    ASSERT_EQ(r.max_rel_error, 0.0);
    const w4a8_weight w = pb.weight();
    const char* name = "";
    W4A8_OK(w4a8_weight_kernel_name(&w, pb.M, W4A8_KERNEL_AUTO, &name));
    ASSERT_EQ(std::string(name).rfind("wgmma_fp8", 0), 0u) << name;
    const auto y = run_api(pb, W4A8_KERNEL_AUTO);
    check_against_reference(pb, y, std::string("AUTO on an exact weight: ") + name);
    if (HasFatalFailure()) return;
    // The fused entry point: quantize (permuted FP8) + the same kernel, same bits as the two steps
    // run on the quantizer's output.
    const auto xb = random_bf16(pb.M * pb.K, rng, 1.0f);
    DeviceBuffer<uint16_t> dxb(pb.M * pb.K);
    dxb.upload(xb);
    W4A8_OK(w4a8_quantize_activation_fp8(dxb.get(), pb.dx.get(), pb.drs.get(), pb.M, pb.K, nullptr));
    CUDA_OK(cudaDeviceSynchronize());
    const auto y2 = run_api(pb, W4A8_KERNEL_AUTO);
    check_fused_equals(pb, xb, y2, name);
    if (HasFatalFailure()) return;
  }
  check_small_integers_exact(300, 200, 4096, 16, W4A8_KERNEL_WGMMA_FP8, 90, rng);
  check_small_integers_exact(129, 136, 1056, 32, W4A8_KERNEL_WGMMA_FP8, 90, rng);
  check_small_integers_exact(520, 200, 4096, 16, W4A8_KERNEL_WGMMA_FP8, 90, rng, "wgmma_fp8_fast_bm256_k2_g16");
  check_small_integers_exact(260, 136, 1056, 32, W4A8_KERNEL_WGMMA_FP8, 90, rng, "wgmma_fp8_fast_bm256_g32");
  check_small_integers_exact(200, 264, 4096, 16, W4A8_KERNEL_WGMMA_FP8, 90, rng, "wgmma_fp8_fast_bm128_k4_g16");
  check_small_integers_exact(129, 136, 1056, 32, W4A8_KERNEL_WGMMA_FP8, 90, rng, "wgmma_fp8_fast_bm128_g32");
}

// What the FP8 path refuses, with a reason and nothing written: an unprepared weight, a tiled
// one, no workspace. And AUTO never takes it for a LOSSY weight.
TEST(GpuFp8, RefusalsAndOptIn) {
  W4A8_REQUIRE_GPU();
  std::mt19937_64 rng(805);
  Problem pb(500, 1024, 2048, 16);
  pb.randomize(rng, false);
  pb.dy.fill_bytes(0xAB);
  size_t need = 0;
  W4A8_OK(w4a8_gemm_workspace_size(pb.M, pb.N, pb.K, pb.group, &need));
  DeviceBuffer<uint8_t> ws(need);
  auto call = [&](const w4a8_weight& w, bool with_ws) {
    return w4a8_gemm_with_kernel(pb.dx.get(), pb.drs.get(), &w, pb.dy.get(), pb.M, pb.alpha, W4A8_KERNEL_WGMMA_FP8,
                                 with_ws ? ws.get() : nullptr, with_ws ? need : 0, nullptr);
  };
  if (!wgmma_available()) {
    EXPECT_EQ(call(pb.weight(), true), W4A8_STATUS_NOT_SUPPORTED);
    GTEST_SKIP() << "not an sm_90 GPU: checked only that the FP8 path is refused";
  }
  EXPECT_EQ(call(pb.weight(), true), W4A8_STATUS_NOT_SUPPORTED);
  EXPECT_NE(std::string(w4a8_last_error()).find("w4a8_prepare_fp8"), std::string::npos) << w4a8_last_error();
  pb.prepare_fp8();
  ASSERT_EQ(pb.fp8, W4A8_FP8_LOSSY);
  EXPECT_EQ(call(pb.weight(), false), W4A8_STATUS_NOT_SUPPORTED);
  EXPECT_NE(std::string(w4a8_last_error()).find("workspace"), std::string::npos) << w4a8_last_error();
  pb.make_tiled();
  pb.tiled = true;
  EXPECT_EQ(call(pb.weight(), true), W4A8_STATUS_NOT_SUPPORTED);
  EXPECT_NE(std::string(w4a8_last_error()).find("canonical"), std::string::npos) << w4a8_last_error();
  for (uint16_t v : pb.dy.download()) ASSERT_EQ(v, 0xABAB);
  pb.tiled = false;
  // A lossy weight: AUTO keeps the exact path; the opt-in names the FP8 path.
  const w4a8_weight w = pb.weight();
  const char* name = "";
  W4A8_OK(w4a8_weight_kernel_name(&w, pb.M, W4A8_KERNEL_AUTO, &name));
  EXPECT_NE(std::string(name).rfind("wgmma_fp8", 0), 0u) << name;
  W4A8_OK(w4a8_weight_kernel_name(&w, pb.M, W4A8_KERNEL_WGMMA_FP8, &name));
  EXPECT_EQ(std::string(name).rfind("wgmma_fp8", 0), 0u) << name;
  // ACCEPTED: the caller takes the rounding; AUTO then runs the FP8 path where the prefill kernel
  // runs, bit for bit what the forced FP8 path gives.
  {
    Problem big(1000, 2048, 2048, 16);
    big.randomize(rng, true);
    big.prepare_fp8();
    ASSERT_EQ(big.fp8, W4A8_FP8_LOSSY);
    big.fp8 = W4A8_FP8_ACCEPTED;
    big.fp8_oracle = true;
    const w4a8_weight wa = big.weight();
    W4A8_OK(w4a8_weight_kernel_name(&wa, big.M, W4A8_KERNEL_AUTO, &name));
    EXPECT_EQ(std::string(name).rfind("wgmma_fp8", 0), 0u) << name;
    const auto ya = run_api(big, W4A8_KERNEL_AUTO);
    check_against_reference(big, ya, "AUTO on an ACCEPTED weight");
    ASSERT_TRUE(run_api(big, W4A8_KERNEL_WGMMA_FP8) == ya);
    // FAST: the caller also accepts the tensor cores' own summation; here (8 x 16 tiles of 128
    // tokens, one round on 132 SMs; 256-token tiles would leave half the SMs idle) the
    // 128-token fast-accumulation kernel runs: within its bound, bit for bit what the forced
    // FP8 path gives, and not as the promoted kernel sums.
    big.fp8 = W4A8_FP8_FAST;
    const w4a8_weight wf = big.weight();
    W4A8_OK(w4a8_weight_kernel_name(&wf, big.M, W4A8_KERNEL_AUTO, &name));
    EXPECT_EQ(std::string(name), "wgmma_fp8_fast_bm128_g16");
    const auto yf = run_api(big, W4A8_KERNEL_AUTO);
    check_against_reference(big, yf, "AUTO on a FAST weight (128-token tiles)");
    if (HasFatalFailure()) return;
    ASSERT_TRUE(run_api(big, W4A8_KERNEL_WGMMA_FP8) == yf);
    ASSERT_FALSE(yf == ya);
  }
  {
    // Four times the channels: AUTO and the forced FP8 path run the 256-token fast-accumulation
    // kernel, within its bound, bit for bit alike, and not as the promoted kernel sums; on FAST
    // weights from M = 128 (the other modes from 512), below that AUTO keeps the exact kernels.
    Problem big(1000, 8192, 2048, 16);
    big.randomize(rng, true);
    big.prepare_fp8();
    big.fp8_oracle = true;
    big.fp8 = W4A8_FP8_ACCEPTED;
    const auto ya = run_api(big, W4A8_KERNEL_AUTO);
    big.fp8 = W4A8_FP8_FAST;
    const w4a8_weight wf = big.weight();
    W4A8_OK(w4a8_weight_kernel_name(&wf, big.M, W4A8_KERNEL_AUTO, &name));
    EXPECT_EQ(std::string(name), "wgmma_fp8_fast_bm256_g16");
    W4A8_OK(w4a8_weight_kernel_name(&wf, 511, W4A8_KERNEL_AUTO, &name));
    EXPECT_EQ(std::string(name).rfind("wgmma_fp8_fast", 0), 0u) << name;
    W4A8_OK(w4a8_weight_kernel_name(&wf, 128, W4A8_KERNEL_AUTO, &name));
    EXPECT_EQ(std::string(name).rfind("wgmma_fp8_fast", 0), 0u) << name;
    W4A8_OK(w4a8_weight_kernel_name(&wf, 127, W4A8_KERNEL_AUTO, &name));
    EXPECT_NE(std::string(name).rfind("wgmma_fp8", 0), 0u) << name;
    const w4a8_weight wacc = [&] { w4a8_weight t = wf; t.fp8 = W4A8_FP8_ACCEPTED; return t; }();
    W4A8_OK(w4a8_weight_kernel_name(&wacc, 511, W4A8_KERNEL_AUTO, &name));
    EXPECT_NE(std::string(name).rfind("wgmma_fp8", 0), 0u) << name;
    const auto yf = run_api(big, W4A8_KERNEL_AUTO);
    check_against_reference(big, yf, "AUTO on a FAST weight");
    if (HasFatalFailure()) return;
    ASSERT_TRUE(run_api(big, W4A8_KERNEL_WGMMA_FP8) == yf);
    ASSERT_FALSE(yf == ya);  // a different summation: the FAST mode reached the kernel
  }
  // Invalid preparation fields are refused by every entry point.
  w4a8_weight bad = w;
  bad.fp8 = 7;
  EXPECT_EQ(w4a8_gemm(pb.dx.get(), pb.drs.get(), &bad, pb.dy.get(), pb.M, 1.0f, ws.get(), need, nullptr),
            W4A8_STATUS_INVALID_VALUE);
}

// A NaN block scale (what the quantizer writes for a non-finite weight tensor) makes its
// output channel NaN on the FP8 path too (NaN products from the table), nothing else: the
// other channels still match the FP8 oracle.
TEST(GpuFp8, NaNBlockScaleGivesNaNChannelOnly) {
  W4A8_REQUIRE_GPU();
  if (!wgmma_available()) GTEST_SKIP() << "not an sm_90 GPU: the wgmma kernels do not run here";
  std::mt19937_64 rng(806);
  Problem pb(300, 256, 1024, 16);
  pb.randomize(rng, false);
  const int64_t bad = 37;
  pb.scales[bad * (pb.K / pb.group) + 5] = kE4M3NaN;
  pb.upload();
  pb.prepare_fp8();
  pb.fp8_oracle = true;
  const auto y = run_api(pb, W4A8_KERNEL_WGMMA_FP8);
  std::vector<int64_t> ms, ns;
  for (int64_t m = 0; m < pb.M; ++m) {
    ASSERT_TRUE(std::isnan(bf16_to_float(y[m * pb.N + bad]))) << "token " << m;
    for (int64_t n = 0; n < pb.N; n += 7)
      if (n != bad) ms.push_back(m), ns.push_back(n);
  }
  std::vector<double> ye(ms.size()), ya(ms.size());
  ASSERT_EQ(ref::gemm_points(pb.x.data(), pb.rs.data(), pb.host_weight(), pb.M, pb.alpha, ms.data(), ns.data(),
                             ms.size(), nullptr, ye.data(), ya.data()),
            W4A8_STATUS_SUCCESS);
  for (size_t i = 0; i < ms.size(); ++i) {
    const double got = bf16_to_float(y[ms[i] * pb.N + ns[i]]);
    ASSERT_LE(std::fabs(got - ye[i]), ref::gemm_tolerance(ye[i], ya[i], pb.K) + std::ldexp(ya[i], -11))
        << "(" << ms[i] << "," << ns[i] << ")";
  }
}


// ---- fuzz ---------------------------------------------------------------------------------

// The fuzz tests' operands: BF16 activations and weights at scales xs and wsc, with a zero row,
// an outlier, a -0 channel and a large negative weight each a quarter of the time, quantized by
// the CPU reference; a bias half the time, a power-of-two-ish alpha; uploaded. xb: the BF16
// activations (for the fused entry point).
void fuzz_operands(Problem& pb, std::mt19937_64& rng, double xs, double wsc, std::vector<uint16_t>& xb) {
  const int64_t M = pb.M, N = pb.N, K = pb.K;
  auto uni = [&](double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); };
  xb = random_bf16(M * K, rng, float(xs));
  auto wb = random_bf16(N * K, rng, float(wsc));
  if (rng() % 4 == 0) std::fill_n(xb.begin() + (rng() % M) * K, K, uint16_t(0));       // a zero row
  if (rng() % 4 == 0) xb[rng() % (M * K)] = float_to_bf16(float(xs * 300));             // an outlier
  if (rng() % 4 == 0) std::fill_n(wb.begin() + (rng() % N) * K, K, uint16_t(0x8000));  // a -0 channel
  if (rng() % 4 == 0) wb[rng() % (N * K)] = float_to_bf16(float(-wsc * 500));
  pb.quantize(xb, wb);
  if (testing::Test::HasFatalFailure()) return;
  if (rng() % 2) pb.bias = random_bf16(N, rng, float(uni(0.01, 2.0)));
  pb.alpha = float(std::ldexp(1.0 + (rng() % 8) / 8.0, int(uni(-4, 4))));
  pb.upload();
}

// Configuration `index` forced on the fuzz problem: within the reference's bound and the same
// bits on a second run (*ran = true), or refused with NOT_SUPPORTED and nothing written.
void fuzz_forced(Problem& pb, int index, const std::string& name, bool* ran) {
  w4a8_status st = W4A8_STATUS_SUCCESS;
  const auto y = run_config(pb, index, &st);
  *ran = st == W4A8_STATUS_SUCCESS;
  if (!*ran) {
    ASSERT_EQ(st, W4A8_STATUS_NOT_SUPPORTED) << w4a8_last_error();
    ASSERT_TRUE(std::all_of(y.begin(), y.end(), [](uint16_t v) { return v == 0xFFFF; })) << "refused, but wrote";
    return;
  }
  check_against_reference(pb, y, name);
  if (testing::Test::HasFatalFailure()) return;
  ASSERT_TRUE(run_config(pb, index) == y) << name << ": a second run differs";
}

// Random problems on random configurations, apart from every fixed shape above: M, N and K
// log-uniform (M 1 .. 2500, N 1 .. 5000, K = group x 1 .. 640, mostly a multiple of 32 for a
// wgmma configuration), group 16 or 32, canonical or
// tiled weights, bias or not, alpha from 2^-4 to 2^4, activations and weights scaled by 2^-8 ..
// 2^8 and 2^-20 .. 2^6, some rows of zeros, some with one large value. Each problem runs on a
// configuration drawn from the whole whitelist (the FP8 path aside: GpuFp8.*) and on AUTO:
// within the exact reference's bound, the same bits when run again, outputs poisoned first; a
// refusal must be W4A8_STATUS_NOT_SUPPORTED with the output untouched. The fused BF16 entry
// point must equal quantize + GEMM bit for bit. W4A8_FUZZ_SEED and W4A8_FUZZ_ITERS widen it
// by hand (the suite runs 40 problems from a fixed seed).
TEST(GpuFuzz, RandomProblemsOnRandomConfigurations) {
  W4A8_REQUIRE_GPU();
  const char* seed_env = std::getenv("W4A8_FUZZ_SEED");
  const char* iters_env = std::getenv("W4A8_FUZZ_ITERS");
  const uint64_t seed = seed_env ? std::strtoull(seed_env, nullptr, 10) : 20261126;
  const int iters = iters_env ? std::atoi(iters_env) : 40;
  std::mt19937_64 rng(seed);
  auto uni = [&](double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); };
  auto log_int = [&](double lo, double hi) { return int64_t(std::floor(std::exp(uni(std::log(lo), std::log(hi + 1))))); };
  std::vector<int> exact;  // every configuration of the exact path this GPU runs
  for (int i = 0; i < w4a8_gemm_config_count(); ++i) {
    const std::string name = w4a8_gemm_config_name(i);
    if (name.find("_fp8") != std::string::npos || name.find("naive") != std::string::npos) continue;
    if (name.rfind("wgmma", 0) == 0 && !wgmma_available()) continue;
    exact.push_back(i);
  }
  ASSERT_GE(exact.size(), 10u);
  int ran = 0, refused = 0;
  for (int it = 0; it < iters; ++it) {
    const int index = exact[rng() % exact.size()];
    const std::string name = w4a8_gemm_config_name(index);
    // Mostly the configuration's own group size (a refusal otherwise, also checked).
    const int group = (name.find("_g32") != std::string::npos) == (rng() % 8 != 0) ? 32 : 16;
    const int64_t M = std::min<int64_t>(log_int(1, 2500), 2500);
    const int64_t N = std::max<int64_t>(1, std::min<int64_t>(log_int(1, 5000), 2000000 / M));
    int64_t K = group * std::min<int64_t>(log_int(1, 640), (int64_t(16) << 20) / (group * std::max(M, N)) + 1);
    // The wgmma configurations (a third of the whitelist) need K % 32 == 0: mostly give it
    // them (a refusal otherwise, also checked), so that most problems run.
    if (name.rfind("wgmma", 0) == 0 && K % 32 != 0 && rng() % 8 != 0) K += 16;
    const double xs = std::ldexp(1.0, int(uni(-8, 8))), wsc = std::ldexp(1.0, int(uni(-20, 6)));
    SCOPED_TRACE(testing::Message() << "fuzz " << it << " (seed " << seed << "): " << name << " M=" << M << " N=" << N
                                    << " K=" << K << " g" << group << " x*" << xs << " w*" << wsc);
    Problem pb(M, N, K, group);
    std::vector<uint16_t> xb;
    fuzz_operands(pb, rng, xs, wsc, xb);
    if (HasFatalFailure()) return;
    if (K % 32 == 0 && rng() % 2) {
      pb.make_tiled();
      pb.tiled = true;
    }
    // The forced configuration.
    bool forced_ran = false;
    fuzz_forced(pb, index, name, &forced_ran);
    if (HasFatalFailure()) return;
    (forced_ran ? ran : refused) += 1;
    // AUTO, and the fused BF16 entry point against quantize + GEMM.
    const auto ya = run_api(pb, W4A8_KERNEL_AUTO);
    check_against_reference(pb, ya, "AUTO");
    if (HasFatalFailure()) return;
    check_fused_equals(pb, xb, ya, "AUTO");
    if (HasFatalFailure()) return;
  }
  EXPECT_GE(ran, iters / 2) << refused << " refused";
}

// The same for the FP8 path (every "wgmma_fp8_*" configuration, promoted and fast): random
// shapes (K mostly a multiple of 32, else a refusal), scales and outliers on canonical weights
// prepared by w4a8_prepare_fp8, against the FP8 oracle; then AUTO and the fused entry point on
// the weight marked ACCEPTED or FAST, against the oracle of whichever path AUTO names.
TEST(GpuFuzz, Fp8PathRandomProblems) {
  W4A8_REQUIRE_GPU();
  if (!wgmma_available()) GTEST_SKIP() << "not an sm_90 GPU: the FP8 path does not run here";
  const char* seed_env = std::getenv("W4A8_FUZZ_SEED");
  const char* iters_env = std::getenv("W4A8_FUZZ_ITERS");
  const uint64_t seed = seed_env ? std::strtoull(seed_env, nullptr, 10) : 20261127;
  const int iters = iters_env ? std::atoi(iters_env) / 2 : 20;
  std::mt19937_64 rng(seed);
  auto uni = [&](double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); };
  auto log_int = [&](double lo, double hi) { return int64_t(std::floor(std::exp(uni(std::log(lo), std::log(hi + 1))))); };
  std::vector<int> fp8;
  for (int i = 0; i < w4a8_gemm_config_count(); ++i)
    if (std::string(w4a8_gemm_config_name(i)).rfind("wgmma_fp8", 0) == 0) fp8.push_back(i);
  ASSERT_GE(fp8.size(), 8u);
  int ran = 0, on_fp8 = 0;
  for (int it = 0; it < iters; ++it) {
    const int index = fp8[rng() % fp8.size()];
    const std::string name = w4a8_gemm_config_name(index);
    const int group = name.find("_g32") != std::string::npos ? 32 : 16;
    const int64_t M = std::min<int64_t>(log_int(1, 3000), 3000);
    const int64_t N = std::max<int64_t>(1, std::min<int64_t>(log_int(1, 6000), 4000000 / M));
    int64_t K = 32 * std::min<int64_t>(log_int(1, 400), (int64_t(24) << 20) / (32 * std::max(M, N)) + 1);
    if (group == 16 && rng() % 10 == 0) K += 16;  // not a multiple of 32 (still of the group): refused
    const double xs = std::ldexp(1.0, int(uni(-8, 8))), wsc = std::ldexp(1.0, int(uni(-20, 6)));
    SCOPED_TRACE(testing::Message() << "fp8 fuzz " << it << " (seed " << seed << "): " << name << " M=" << M
                                    << " N=" << N << " K=" << K << " g" << group << " x*" << xs << " w*" << wsc);
    Problem pb(M, N, K, group);
    std::vector<uint16_t> xb;
    fuzz_operands(pb, rng, xs, wsc, xb);
    if (HasFatalFailure()) return;
    pb.prepare_fp8();
    pb.fp8_oracle = true;
    pb.fast_acc = name.rfind("wgmma_fp8_fast", 0) == 0;
    bool forced_ran = false;
    fuzz_forced(pb, index, name, &forced_ran);
    if (HasFatalFailure()) return;
    if (!forced_ran) {
      ASSERT_NE(K % 32, 0) << "refused a K the FP8 path takes: " << w4a8_last_error();
      continue;
    }
    ++ran;
    // AUTO and the fused entry point on the weight the caller opted in.
    pb.fp8 = rng() % 2 ? W4A8_FP8_FAST : W4A8_FP8_ACCEPTED;
    const w4a8_weight w = pb.weight();
    const char* auto_name = "";
    W4A8_OK(w4a8_weight_kernel_name(&w, M, W4A8_KERNEL_AUTO, &auto_name));
    const std::string an = auto_name;
    pb.fp8_oracle = an.rfind("wgmma_fp8", 0) == 0;
    pb.fast_acc = an.rfind("wgmma_fp8_fast", 0) == 0;
    on_fp8 += pb.fp8_oracle;
    const auto ya = run_api(pb, W4A8_KERNEL_AUTO);
    check_against_reference(pb, ya, "AUTO: " + an);
    if (HasFatalFailure()) return;
    check_fused_equals(pb, xb, ya, an);
    if (HasFatalFailure()) return;
  }
  EXPECT_GE(ran, iters / 2);
  std::printf("fp8 fuzz: %d of %d ran (AUTO on the FP8 path %d times)\n", ran, iters, on_fp8);
}

}  // namespace
}  // namespace w4a8
