// Every validation path of the public API: the status, the message (argument, expected,
// actual), and that nothing was written. Runs without a GPU: validation happens before any
// device is touched, so host buffers stand in for device pointers here.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "test_util.hpp"
#include "w4a8/reference.hpp"
#include "w4a8/w4a8.h"
#include "w4a8_gemm_plugin.h"

namespace w4a8 {
namespace {

// 16-byte aligned host storage with a canary pattern, to prove nothing was written.
struct Canary {
  alignas(256) unsigned char bytes[4096];
  Canary() { std::fill(std::begin(bytes), std::end(bytes), 0xA5); }
  bool untouched() const {
    for (unsigned char b : bytes)
      if (b != 0xA5) return false;
    return true;
  }
  void* p(size_t offset = 0) { return bytes + offset; }
};

void expect_error(w4a8_status got, w4a8_status want, const std::vector<std::string>& needles) {
  EXPECT_EQ(got, want) << w4a8_status_string(got) << ": " << w4a8_last_error();
  const std::string msg = w4a8_last_error();
  for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "message: " << msg << " lacks " << n;
}

TEST(Validation, StatusStringsAreDistinct) {
  std::vector<std::string> seen;
  for (int s = 0; s <= 10; ++s) {
    const std::string str = w4a8_status_string(static_cast<w4a8_status>(s));
    EXPECT_EQ(std::count(seen.begin(), seen.end(), str), 0) << str;
    seen.push_back(str);
  }
  EXPECT_STREQ(w4a8_status_string(static_cast<w4a8_status>(99)), "unknown status");
}

TEST(Validation, QuantizeActivation) {
  Canary in, out, sc;
  auto call = [&](const void* x, void* q, float* s, int64_t M, int64_t K) {
    return w4a8_quantize_activation_fp8(x, q, s, M, K, nullptr);
  };
  float* s = static_cast<float*>(sc.p());
  expect_error(call(in.p(), out.p(), s, 0, 64), W4A8_STATUS_INVALID_SHAPE, {"M=0", "[1,"});
  expect_error(call(in.p(), out.p(), s, -3, 64), W4A8_STATUS_INVALID_SHAPE, {"M=-3"});
  expect_error(call(in.p(), out.p(), s, 2, 0), W4A8_STATUS_INVALID_SHAPE, {"K=0"});
  expect_error(call(in.p(), out.p(), s, 2, 40), W4A8_STATUS_K_NOT_MULTIPLE, {"K=40", "16"});
  expect_error(call(nullptr, out.p(), s, 2, 64), W4A8_STATUS_NULL_POINTER, {"x_bf16"});
  expect_error(call(in.p(), nullptr, s, 2, 64), W4A8_STATUS_NULL_POINTER, {"x_fp8"});
  expect_error(call(in.p(), out.p(), nullptr, 2, 64), W4A8_STATUS_NULL_POINTER, {"row_scale"});
  expect_error(call(in.p(8), out.p(), s, 2, 64), W4A8_STATUS_MISALIGNED_POINTER, {"x_bf16", "16-byte"});
  expect_error(call(in.p(), out.p(4), s, 2, 64), W4A8_STATUS_MISALIGNED_POINTER, {"x_fp8", "16-byte"});
  expect_error(call(in.p(), out.p(), reinterpret_cast<float*>(sc.p(2)), 2, 64),
               W4A8_STATUS_MISALIGNED_POINTER, {"row_scale", "4-byte"});
  EXPECT_TRUE(out.untouched());
  EXPECT_TRUE(sc.untouched());
}

TEST(Validation, QuantizeWeight) {
  Canary in, packed, scales, s2;
  float* t = static_cast<float*>(s2.p());
  auto call = [&](const void* w, void* p, void* s, float* ts, int64_t N, int64_t K, int g) {
    return w4a8_quantize_weight_nvfp4(w, p, s, ts, N, K, g, nullptr);
  };
  expect_error(call(in.p(), packed.p(), scales.p(), t, 0, 64, 16), W4A8_STATUS_INVALID_SHAPE, {"N=0"});
  expect_error(call(in.p(), packed.p(), scales.p(), t, 4, 64, 8), W4A8_STATUS_INVALID_GROUP_SIZE,
               {"group_size=8", "16 or 32"});
  expect_error(call(in.p(), packed.p(), scales.p(), t, 4, 48, 32), W4A8_STATUS_K_NOT_MULTIPLE,
               {"K=48", "group_size=32"});
  expect_error(call(in.p(), packed.p(), scales.p(), t, 4, int64_t(1) << 40, 16), W4A8_STATUS_INVALID_SHAPE,
               {"K="});
  expect_error(call(nullptr, packed.p(), scales.p(), t, 4, 64, 16), W4A8_STATUS_NULL_POINTER, {"w_bf16"});
  expect_error(call(in.p(), nullptr, scales.p(), t, 4, 64, 16), W4A8_STATUS_NULL_POINTER, {"w_packed"});
  expect_error(call(in.p(), packed.p(), nullptr, t, 4, 64, 16), W4A8_STATUS_NULL_POINTER, {"w_block_scale"});
  expect_error(call(in.p(), packed.p(), scales.p(), nullptr, 4, 64, 16), W4A8_STATUS_NULL_POINTER,
               {"w_tensor_scale"});
  expect_error(call(in.p(2), packed.p(), scales.p(), t, 4, 64, 16), W4A8_STATUS_MISALIGNED_POINTER, {"w_bf16"});
  expect_error(call(in.p(), packed.p(8), scales.p(), t, 4, 64, 16), W4A8_STATUS_MISALIGNED_POINTER, {"w_packed"});
  EXPECT_TRUE(packed.untouched());
  EXPECT_TRUE(scales.untouched());
  EXPECT_TRUE(s2.untouched());
}

TEST(Validation, Gemm) {
  Canary x, rs, wp, ws, ts, y, bias;
  w4a8_weight w{wp.p(), ws.p(), static_cast<const float*>(ts.p()), nullptr, 32, 64, 16, W4A8_LAYOUT_CANONICAL, W4A8_FP8_NONE, 0, 0};
  auto call = [&](const void* xx, const float* r, const w4a8_weight* ww, void* yy, int64_t M, float a) {
    return w4a8_gemm(xx, r, ww, yy, M, a, nullptr, 0, nullptr);
  };
  const float* r = static_cast<const float*>(rs.p());
  expect_error(call(x.p(), r, &w, y.p(), 0, 1.0f), W4A8_STATUS_INVALID_SHAPE, {"M=0"});
  expect_error(call(x.p(), r, nullptr, y.p(), 4, 1.0f), W4A8_STATUS_NULL_POINTER, {"weight"});
  expect_error(call(nullptr, r, &w, y.p(), 4, 1.0f), W4A8_STATUS_NULL_POINTER, {"x_fp8"});
  expect_error(call(x.p(), nullptr, &w, y.p(), 4, 1.0f), W4A8_STATUS_NULL_POINTER, {"row_scale"});
  expect_error(call(x.p(), r, &w, nullptr, 4, 1.0f), W4A8_STATUS_NULL_POINTER, {"y_bf16"});
  expect_error(call(x.p(8), r, &w, y.p(), 4, 1.0f), W4A8_STATUS_MISALIGNED_POINTER, {"x_fp8", "16-byte"});
  expect_error(call(x.p(), r, &w, y.p(1), 4, 1.0f), W4A8_STATUS_MISALIGNED_POINTER, {"y_bf16", "2-byte"});
  expect_error(call(x.p(), r, &w, y.p(), 4, NAN), W4A8_STATUS_INVALID_VALUE, {"alpha"});
  expect_error(call(x.p(), r, &w, y.p(), 4, INFINITY), W4A8_STATUS_INVALID_VALUE, {"alpha"});
  {
    w4a8_weight bad = w;
    bad.N = 0;
    expect_error(call(x.p(), r, &bad, y.p(), 4, 1.0f), W4A8_STATUS_INVALID_SHAPE, {"weight->N=0"});
    bad = w;
    bad.K = 72;
    expect_error(call(x.p(), r, &bad, y.p(), 4, 1.0f), W4A8_STATUS_K_NOT_MULTIPLE, {"K=72", "group_size=16"});
    bad = w;
    bad.group_size = 64;
    expect_error(call(x.p(), r, &bad, y.p(), 4, 1.0f), W4A8_STATUS_INVALID_GROUP_SIZE, {"group_size=64"});
    bad = w;
    bad.packed = wp.p(4);
    expect_error(call(x.p(), r, &bad, y.p(), 4, 1.0f), W4A8_STATUS_MISALIGNED_POINTER, {"weight->packed", "16-byte"});
    bad = w;
    bad.block_scale = ws.p(1);
    expect_error(call(x.p(), r, &bad, y.p(), 4, 1.0f), W4A8_STATUS_MISALIGNED_POINTER, {"weight->block_scale", "2-byte"});
    bad = w;
    bad.block_scale = nullptr;
    expect_error(call(x.p(), r, &bad, y.p(), 4, 1.0f), W4A8_STATUS_NULL_POINTER, {"weight->block_scale"});
    bad = w;
    bad.tensor_scale = reinterpret_cast<const float*>(ts.p(1));
    expect_error(call(x.p(), r, &bad, y.p(), 4, 1.0f), W4A8_STATUS_MISALIGNED_POINTER, {"weight->tensor_scale"});
    bad = w;
    bad.bias = bias.p(1);
    expect_error(call(x.p(), r, &bad, y.p(), 4, 1.0f), W4A8_STATUS_MISALIGNED_POINTER, {"weight->bias"});
  }
  expect_error(w4a8_gemm_with_kernel(x.p(), r, &w, y.p(), 4, 1.0f, static_cast<w4a8_kernel>(42), nullptr, 0,
                                     nullptr),
               W4A8_STATUS_INVALID_VALUE, {"kernel=42"});
  {
    w4a8_weight bad = w;
    bad.overlap = 2;
    expect_error(call(x.p(), r, &bad, y.p(), 4, 1.0f), W4A8_STATUS_INVALID_VALUE, {"weight->overlap=2", "0 or 1"});
    // w4a8_fp8_mode: NONE .. FAST (4); anything else is refused before any work.
    bad = w;
    bad.fp8 = W4A8_FP8_FAST + 1;
    expect_error(call(x.p(), r, &bad, y.p(), 4, 1.0f), W4A8_STATUS_INVALID_VALUE, {"weight->fp8=5", "0 to 4"});
    bad.fp8 = -1;
    expect_error(call(x.p(), r, &bad, y.p(), 4, 1.0f), W4A8_STATUS_INVALID_VALUE, {"weight->fp8=-1"});
    bad = w;
    bad.overlap = 0;
    bad.layout = 3;
    expect_error(call(x.p(), r, &bad, y.p(), 4, 1.0f), W4A8_STATUS_INVALID_VALUE, {"weight->layout=3"});
    bad.layout = W4A8_LAYOUT_TILED;
    bad.K = 48;
    expect_error(call(x.p(), r, &bad, y.p(), 4, 1.0f), W4A8_STATUS_K_NOT_MULTIPLE, {"tiled", "K % 32", "K=48"});
    // The 8-byte-piece mma configurations read canonical weights only.
    bad.K = 64;
    int v8 = -1;
    for (int i = 0; i < w4a8_gemm_config_count(); ++i)
      if (std::string(w4a8_gemm_config_name(i)).find("_v8_g16") != std::string::npos) v8 = i;
    ASSERT_GE(v8, 0);
    expect_error(w4a8_gemm_with_config(x.p(), r, &bad, y.p(), 4, 1.0f, v8, nullptr, 0, nullptr),
                 W4A8_STATUS_NOT_SUPPORTED, {"canonical", "W4A8_LAYOUT_TILED"});
  }
  EXPECT_TRUE(y.untouched());
}

TEST(Validation, PrepackAndTiledSize) {
  Canary wp, ws, out_p, out_s;
  const w4a8_weight c{wp.p(), ws.p(), nullptr, nullptr, 20, 160, 16, W4A8_LAYOUT_CANONICAL, W4A8_FP8_NONE, 0, 0};
  size_t pb = 0, sb = 0;
  ASSERT_EQ(w4a8_tiled_weight_size(20, 160, 16, &pb, &sb), W4A8_STATUS_SUCCESS);
  EXPECT_EQ(pb, 32u * 3 * 32);
  EXPECT_EQ(sb, 32u * 3 * 4);
  expect_error(w4a8_tiled_weight_size(20, 48, 16, &pb, &sb), W4A8_STATUS_K_NOT_MULTIPLE, {"K % 32", "K=48"});
  expect_error(w4a8_tiled_weight_size(20, 64, 16, nullptr, &sb), W4A8_STATUS_NULL_POINTER, {"packed_bytes"});
  w4a8_weight t = c;
  t.layout = W4A8_LAYOUT_TILED;
  expect_error(w4a8_prepack_weight(&t, out_p.p(), out_s.p(), nullptr), W4A8_STATUS_INVALID_VALUE,
               {"weight->layout=1", "W4A8_LAYOUT_CANONICAL"});
  expect_error(w4a8_unprepack_weight(&c, out_p.p(), out_s.p(), nullptr), W4A8_STATUS_INVALID_VALUE,
               {"W4A8_LAYOUT_TILED"});
  expect_error(w4a8_prepack_weight(&c, out_p.p(8), out_s.p(), nullptr), W4A8_STATUS_MISALIGNED_POINTER,
               {"packed output", "16-byte"});
  expect_error(w4a8_prepack_weight(&c, out_p.p(), out_s.p(1), nullptr), W4A8_STATUS_MISALIGNED_POINTER,
               {"block_scale output", "2-byte"});
  expect_error(w4a8_prepack_weight(&c, wp.p(1024), out_s.p(), nullptr), W4A8_STATUS_INVALID_VALUE,
               {"overlaps", "weight->packed"});
  expect_error(w4a8_prepack_weight(nullptr, out_p.p(), out_s.p(), nullptr), W4A8_STATUS_NULL_POINTER, {"weight"});
  EXPECT_TRUE(out_p.untouched());
  EXPECT_TRUE(out_s.untouched());
}

TEST(Validation, LinearWorkspace) {
  Canary x, wp, ws, y, work;
  w4a8_weight w{wp.p(), ws.p(), nullptr, nullptr, 32, 64, 16, W4A8_LAYOUT_CANONICAL, W4A8_FP8_NONE, 0, 0};
  size_t need = 0;
  ASSERT_EQ(w4a8_linear_workspace_size(3, 32, 64, 16, &need), W4A8_STATUS_SUCCESS);
  EXPECT_GE(need, size_t(3 * 64 + 3 * 4));
  expect_error(w4a8_linear_bf16(x.p(), &w, y.p(), 3, 1.0f, work.p(), need - 1, nullptr),
               W4A8_STATUS_WORKSPACE_TOO_SMALL, {"workspace_size=", std::to_string(need)});
  expect_error(w4a8_linear_bf16(x.p(), &w, y.p(), 3, 1.0f, nullptr, need, nullptr),
               W4A8_STATUS_NULL_POINTER, {"workspace"});
  expect_error(w4a8_linear_bf16(x.p(8), &w, y.p(), 3, 1.0f, work.p(), need, nullptr),
               W4A8_STATUS_MISALIGNED_POINTER, {"x_bf16"});
  expect_error(w4a8_linear_workspace_size(3, 32, 64, 16, nullptr), W4A8_STATUS_NULL_POINTER, {"bytes"});
  expect_error(w4a8_linear_workspace_size(3, 32, 60, 16, &need), W4A8_STATUS_K_NOT_MULTIPLE, {"K=60"});
  size_t g = 1;
  ASSERT_EQ(w4a8_gemm_workspace_size(3, 32, 64, 16, &g), W4A8_STATUS_SUCCESS);
  EXPECT_EQ(g, 0u);
  EXPECT_TRUE(y.untouched());
  EXPECT_TRUE(work.untouched());
}

// w4a8_gemm's workspace: NULL/0 always accepted; otherwise aligned and at least the query.
TEST(Validation, GemmWorkspace) {
  Canary x, rs, wp, ws, y, work;
  w4a8_weight w{wp.p(), ws.p(), nullptr, nullptr, 32, 64, 16, W4A8_LAYOUT_CANONICAL, W4A8_FP8_NONE, 0, 0};
  size_t need = 0;
  ASSERT_EQ(w4a8_gemm_workspace_size(40, 32, 64, 16, &need), W4A8_STATUS_SUCCESS);
  EXPECT_GE(need, size_t(40 * 64 * 2));  // FP16 activations for the wgmma kernel
  expect_error(w4a8_gemm(x.p(), static_cast<const float*>(rs.p()), &w, y.p(), 40, 1.0f, work.p(), need - 1, nullptr),
               W4A8_STATUS_WORKSPACE_TOO_SMALL, {"workspace_size=", std::to_string(need)});
  expect_error(w4a8_gemm(x.p(), static_cast<const float*>(rs.p()), &w, y.p(), 40, 1.0f, work.p(8), need, nullptr),
               W4A8_STATUS_MISALIGNED_POINTER, {"workspace"});
  expect_error(w4a8_gemm_with_config(x.p(), static_cast<const float*>(rs.p()), &w, y.p(), 40, 1.0f,
                                     test::config_index("wgmma_exact_cvt_bm128_g32"), nullptr, 0, nullptr),
               W4A8_STATUS_NOT_SUPPORTED, {"wgmma_exact_cvt_bm128_g32", "group_size=32"});
  // A split-K configuration needs room for its FP32 partials after the FP16 activations:
  // K = 128 (two 64-k stages, so two splits): 40 x 128 x 2 bytes, then 2 x 40 x 32 x 4 bytes.
  const w4a8_weight w2{wp.p(), ws.p(), nullptr, nullptr, 32, 128, 16, W4A8_LAYOUT_CANONICAL, W4A8_FP8_NONE, 0, 0};
  expect_error(w4a8_gemm_with_config(x.p(), static_cast<const float*>(rs.p()), &w2, y.p(), 40, 1.0f,
                                     test::config_index("wgmma_exact_bm256_k2_g16"), work.p(), 10240, nullptr),
               W4A8_STATUS_WORKSPACE_TOO_SMALL, {"wgmma_exact_bm256_k2_g16", "split-K", std::to_string(10240 + 10240)});
  EXPECT_TRUE(y.untouched());
  EXPECT_TRUE(work.untouched());
}

TEST(Validation, SeedApiReportsThroughTheSameChecks) {
  Canary x, rs, wp, ws, y;
  const auto st = w4a8GemmForward(static_cast<const __nv_fp8_e4m3*>(x.p()), static_cast<const float*>(rs.p()),
                                  static_cast<const uint8_t*>(wp.p()), static_cast<const __nv_fp8_e4m3*>(ws.p()),
                                  nullptr, static_cast<__nv_bfloat16*>(y.p()), 4, 32, 1000, 1.0f, nullptr, 0,
                                  nullptr);
  expect_error(st, W4A8_STATUS_K_NOT_MULTIPLE, {"K=1000", "group_size=16"});
  EXPECT_EQ(w4a8GemmWorkspaceSize(4, 32, 1000), 0u);
  EXPECT_TRUE(y.untouched());
}

TEST(Validation, ReferenceFunctionsValidateToo) {
  std::vector<uint16_t> x(64);
  std::vector<uint8_t> q(64);
  float s;
  expect_error(ref::quantize_activation_fp8(x.data(), 1, 24, q.data(), &s), W4A8_STATUS_K_NOT_MULTIPLE, {"K=24"});
  expect_error(ref::quantize_weight_nvfp4(x.data(), 1, 64, 20, q.data(), q.data(), &s),
               W4A8_STATUS_INVALID_GROUP_SIZE, {"group_size=20"});
  ref::HostWeight w{q.data(), q.data(), 1.0f, nullptr, 1, 32, 16};
  uint16_t y;
  expect_error(ref::gemm(q.data(), &s, w, 1, NAN, &y), W4A8_STATUS_INVALID_VALUE, {"alpha"});
  expect_error(ref::gemm(nullptr, &s, w, 1, 1.0f, &y), W4A8_STATUS_NULL_POINTER, {"x_fp8"});
}

TEST(Validation, NoGpuGivesUnsupportedDevice) {
  if (test::gpu_available()) GTEST_SKIP() << "a GPU is present; this test covers CPU-only machines";
  Canary x, rs, wp, ws, y;
  w4a8_weight w{wp.p(), ws.p(), nullptr, nullptr, 32, 64, 16, W4A8_LAYOUT_CANONICAL, W4A8_FP8_NONE, 0, 0};
  expect_error(w4a8_gemm(x.p(), static_cast<const float*>(rs.p()), &w, y.p(), 4, 1.0f, nullptr, 0, nullptr),
               W4A8_STATUS_UNSUPPORTED_DEVICE, {"CUDA device"});
  EXPECT_TRUE(y.untouched());
}

TEST(Validation, KernelNameWorksWithoutLaunching) {
  const char* name = nullptr;
  ASSERT_EQ(w4a8_gemm_kernel_name(1, 2048, 16384, 16, W4A8_KERNEL_AUTO, &name), W4A8_STATUS_SUCCESS);
  EXPECT_NE(std::string(name).find("mma_exact"), std::string::npos);
  ASSERT_EQ(w4a8_gemm_kernel_name(1, 2048, 16384, 16, W4A8_KERNEL_NAIVE, &name), W4A8_STATUS_SUCCESS);
  EXPECT_STREQ(name, "naive_reference");
  EXPECT_EQ(w4a8_gemm_kernel_name(1, 2048, 100, 16, W4A8_KERNEL_AUTO, &name), W4A8_STATUS_K_NOT_MULTIPLE);
}

}  // namespace
}  // namespace w4a8
