// libw4a8_trt_plugin.so through TensorRT's own interfaces, without a TensorRT runtime: dlopen
// the library, get the creator through getCreators, create plugins from field collections,
// shapes through a small expression builder, formats, serialization round trip, clone; on a
// GPU, enqueue on device buffers == the library's w4a8_linear_bf16 bit for bit. Built only
// where TensorRT headers are found (W4A8_TRT_PLUGIN_PATH is set by CMake).
#include <NvInferRuntime.h>
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "test_util.hpp"
#include "w4a8/reference.hpp"
#include "w4a8/w4a8.h"

using namespace nvinfer1;

namespace {

// Captures what the plugin logs.
struct TestLogger : ILogger {
  std::string last;
  void log(Severity s, AsciiChar const* msg) noexcept override {
    if (s <= Severity::kERROR) last = msg;
  }
};
struct TestLoggerFinder : ILoggerFinder {
  TestLogger logger;
  ILogger* findLogger() override { return &logger; }
};

// A minimal expression builder: constants and "unknown" dimensions.
struct Expr : apiv::VDimensionExpr {
  bool constant;
  int64_t value;
  Expr(bool c, int64_t v) : constant(c), value(v) {}
  bool isConstant() const override { return constant; }
  int64_t getConstantValue() const override { return constant ? value : INT64_MIN; }
  bool isSizeTensor() const override { return false; }
};
struct DimExpr : IDimensionExpr {
  explicit DimExpr(apiv::VDimensionExpr* impl) { mImpl = impl; }
};
struct Builder : apiv::VExprBuilder {
  std::vector<std::unique_ptr<Expr>> impls;
  std::vector<std::unique_ptr<DimExpr>> exprs;
  IDimensionExpr const* make(bool c, int64_t v) {
    impls.emplace_back(new Expr(c, v));
    exprs.emplace_back(new DimExpr(impls.back().get()));
    return exprs.back().get();
  }
  IDimensionExpr const* constant(int64_t v) override { return make(true, v); }
  IDimensionExpr const* operation(DimensionOperation, IDimensionExpr const&, IDimensionExpr const&) override {
    return make(false, 0);
  }
  IDimensionExpr const* declareSizeTensor(int32_t, IDimensionExpr const&, IDimensionExpr const&) override {
    return make(false, 0);
  }
};
struct TestExprBuilder : IExprBuilder {
  explicit TestExprBuilder(apiv::VExprBuilder* impl) { mImpl = impl; }
};

using GetCreators = IPluginCreatorInterface* const* (*)(int32_t&);
using SetLoggerFinder = void (*)(ILoggerFinder*);

class TrtPlugin : public ::testing::Test {
 protected:
  void SetUp() override {
    handle_ = dlopen(W4A8_TRT_PLUGIN_PATH, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(handle_, nullptr) << dlerror();
    auto get = reinterpret_cast<GetCreators>(dlsym(handle_, "getCreators"));
    auto set = reinterpret_cast<SetLoggerFinder>(dlsym(handle_, "setLoggerFinder"));
    ASSERT_NE(get, nullptr);
    ASSERT_NE(set, nullptr);
    set(&finder_);
    int32_t n = 0;
    IPluginCreatorInterface* const* list = get(n);
    ASSERT_EQ(n, 1);
    ASSERT_STREQ(list[0]->getInterfaceInfo().kind, "PLUGIN CREATOR_V3ONE");
    creator_ = static_cast<IPluginCreatorV3One*>(list[0]);
  }
  void TearDown() override {
    if (handle_) dlclose(handle_);
  }
  IPluginV3* create(std::vector<PluginField> fields) {
    PluginFieldCollection fc{static_cast<int32_t>(fields.size()), fields.data()};
    return creator_->createPlugin("layer", &fc, TensorRTPhase::kBUILD);
  }
  // A plugin with all five fields set.
  IPluginV3* create_all(int32_t k, int32_t n, float alpha, int32_t group, int32_t bias) {
    return create({{"in_features", &k, PluginFieldType::kINT32, 1}, {"out_features", &n, PluginFieldType::kINT32, 1},
                   {"alpha", &alpha, PluginFieldType::kFLOAT32, 1}, {"group_size", &group, PluginFieldType::kINT32, 1},
                   {"has_bias", &bias, PluginFieldType::kINT32, 1}});
  }
  void* handle_ = nullptr;
  TestLoggerFinder finder_;
  IPluginCreatorV3One* creator_ = nullptr;
};

TEST_F(TrtPlugin, CreatorNamesAndFields) {
  EXPECT_STREQ(creator_->getPluginName(), "W4A8GemmPlugin");
  EXPECT_STREQ(creator_->getPluginVersion(), "1");
  EXPECT_STREQ(creator_->getPluginNamespace(), "");
  const PluginFieldCollection* names = creator_->getFieldNames();
  ASSERT_EQ(names->nbFields, 5);
  EXPECT_STREQ(names->fields[0].name, "in_features");
  EXPECT_STREQ(names->fields[2].name, "alpha");
  EXPECT_EQ(names->fields[2].type, PluginFieldType::kFLOAT32);
}

TEST_F(TrtPlugin, BadFieldsFailWithALoggedReason) {
  int32_t k = 40, n = 16;
  float a = 1.0f;
  EXPECT_EQ(create({{"in_features", &k, PluginFieldType::kINT32, 1}, {"out_features", &n, PluginFieldType::kINT32, 1},
                    {"alpha", &a, PluginFieldType::kFLOAT32, 1}}),
            nullptr);
  EXPECT_NE(finder_.logger.last.find("in_features=40 must be a multiple of group_size=16"), std::string::npos)
      << finder_.logger.last;
  EXPECT_EQ(create({{"out_features", &n, PluginFieldType::kINT32, 1}}), nullptr);
  EXPECT_NE(finder_.logger.last.find("missing field 'in_features'"), std::string::npos);
  EXPECT_EQ(creator_->createPlugin("x", nullptr, TensorRTPhase::kRUNTIME), nullptr);
}

TEST_F(TrtPlugin, ShapesFormatsSerializationClone) {
  std::unique_ptr<IPluginV3> p(create_all(2048, 256, 0.25f, 16, 1));
  ASSERT_NE(p, nullptr) << finder_.logger.last;
  auto* core = static_cast<IPluginV3OneCore*>(p->getCapabilityInterface(PluginCapabilityType::kCORE));
  auto* build = static_cast<IPluginV3OneBuild*>(p->getCapabilityInterface(PluginCapabilityType::kBUILD));
  auto* run = static_cast<IPluginV3OneRuntime*>(p->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
  EXPECT_STREQ(core->getPluginName(), "W4A8GemmPlugin");
  ASSERT_EQ(build->getNbOutputs(), 1);

  // Shapes: activation [?, ?, 2048] (dynamic batch and sequence) -> [?, ?, 256].
  Builder impl;
  TestExprBuilder eb(&impl);
  DimsExprs in[4];
  in[0].nbDims = 3;
  in[0].d[0] = impl.make(false, 0);
  in[0].d[1] = impl.make(false, 0);
  in[0].d[2] = eb.constant(2048);
  in[1].nbDims = 2;
  in[1].d[0] = eb.constant(256);
  in[1].d[1] = eb.constant(1024);
  in[2].nbDims = 2;
  in[2].d[0] = eb.constant(256);
  in[2].d[1] = eb.constant(128);
  in[3].nbDims = 1;
  in[3].d[0] = eb.constant(256);
  DimsExprs out[1];
  ASSERT_EQ(build->getOutputShapes(in, 4, nullptr, 0, out, 1, eb), 0) << finder_.logger.last;
  ASSERT_EQ(out[0].nbDims, 3);
  EXPECT_FALSE(out[0].d[0]->isConstant());
  EXPECT_EQ(out[0].d[2]->getConstantValue(), 256);
  in[2].d[1] = eb.constant(64);  // wrong block-scale shape
  EXPECT_EQ(build->getOutputShapes(in, 4, nullptr, 0, out, 1, eb), -1);
  EXPECT_NE(finder_.logger.last.find("input 2 (block scales, FP8): expected [256, 128], got [256, 64]"),
            std::string::npos)
      << finder_.logger.last;
  DataType types[1];
  DataType in_types[4] = {DataType::kBF16, DataType::kINT8, DataType::kFP8, DataType::kBF16};
  ASSERT_EQ(build->getOutputDataTypes(types, 1, in_types, 4), 0);
  EXPECT_EQ(types[0], DataType::kBF16);

  // Formats: linear BF16 / INT8 / FP8 / BF16 -> BF16.
  DynamicPluginTensorDesc io[5]{};
  const DataType want[5] = {DataType::kBF16, DataType::kINT8, DataType::kFP8, DataType::kBF16, DataType::kBF16};
  for (int i = 0; i < 5; ++i) {
    io[i].desc.format = TensorFormat::kLINEAR;
    io[i].desc.type = want[i];
    EXPECT_TRUE(build->supportsFormatCombination(i, io, 4, 1)) << i;
  }
  io[0].desc.type = DataType::kHALF;
  EXPECT_FALSE(build->supportsFormatCombination(0, io, 4, 1));
  io[1].desc.type = DataType::kUINT8;
  EXPECT_FALSE(build->supportsFormatCombination(1, io, 4, 1));
  io[2].desc.format = TensorFormat::kCHW32;
  EXPECT_FALSE(build->supportsFormatCombination(2, io, 4, 1));

  // Workspace for the largest batch.
  DynamicPluginTensorDesc ws_in[4]{};
  ws_in[0].max.nbDims = 2;
  ws_in[0].max.d[0] = 64;
  ws_in[0].max.d[1] = 2048;
  size_t need = 0;
  ASSERT_EQ(w4a8_linear_workspace_size(64, 256, 2048, 16, &need), W4A8_STATUS_SUCCESS);
  EXPECT_EQ(build->getWorkspaceSize(ws_in, 4, nullptr, 1), need);

  // Concrete shapes at configure / shape-change time.
  PluginTensorDesc rt[4]{};
  const std::vector<std::vector<int64_t>> good = {{8, 2048}, {256, 1024}, {256, 128}, {256}};
  for (int i = 0; i < 4; ++i) {
    rt[i].dims.nbDims = static_cast<int32_t>(good[i].size());
    for (size_t d = 0; d < good[i].size(); ++d) rt[i].dims.d[d] = good[i][d];
  }
  EXPECT_EQ(run->onShapeChange(rt, 4, nullptr, 1), 0) << finder_.logger.last;
  DynamicPluginTensorDesc cfg[4]{};
  for (int i = 0; i < 4; ++i) cfg[i].desc = rt[i];
  EXPECT_EQ(build->configurePlugin(cfg, 4, nullptr, 1), 0) << finder_.logger.last;
  rt[3].dims.d[0] = 255;
  EXPECT_EQ(run->onShapeChange(rt, 4, nullptr, 1), -1);
  EXPECT_NE(finder_.logger.last.find("onShapeChange: input 3 (bias, BF16): expected [256], got [255]"),
            std::string::npos)
      << finder_.logger.last;
  cfg[0].desc.dims.d[1] = 1024;
  EXPECT_EQ(build->configurePlugin(cfg, 4, nullptr, 1), -1);
  EXPECT_NE(finder_.logger.last.find("configurePlugin: input 0"), std::string::npos) << finder_.logger.last;

  // Serialize -> create -> the same fields; clone keeps them too.
  const PluginFieldCollection* ser = run->getFieldsToSerialize();
  ASSERT_EQ(ser->nbFields, 5);
  std::vector<PluginField> copy(ser->fields, ser->fields + ser->nbFields);
  std::unique_ptr<IPluginV3> q(creator_->createPlugin("again", ser, TensorRTPhase::kRUNTIME));
  ASSERT_NE(q, nullptr);
  std::unique_ptr<IPluginV3> c(p->clone());
  ASSERT_NE(c, nullptr);
  for (IPluginV3* other : {q.get(), c.get()}) {
    auto* r = static_cast<IPluginV3OneRuntime*>(other->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
    const PluginFieldCollection* s2 = r->getFieldsToSerialize();
    ASSERT_EQ(s2->nbFields, 5);
    for (int i = 0; i < 5; ++i) {
      EXPECT_STREQ(s2->fields[i].name, copy[i].name);
      EXPECT_EQ(0, std::memcmp(s2->fields[i].data, copy[i].data, 4)) << copy[i].name;
    }
  }
}

// On a GPU: enqueue on real device buffers == w4a8_linear_bf16 on the same inputs, bit for bit.
TEST_F(TrtPlugin, EnqueueEqualsLibraryOnGpu) {
  W4A8_REQUIRE_GPU();
  const int32_t M = 37, N = 300, K = 1024;
  const float a = 0.375f;
  std::unique_ptr<IPluginV3> p(create_all(K, N, a, 16, 1));
  ASSERT_NE(p, nullptr);
  auto* run = static_cast<IPluginV3OneRuntime*>(p->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
  std::mt19937_64 rng(3);
  const auto x = w4a8::test::random_bf16(size_t(M) * K, rng), w = w4a8::test::random_bf16(size_t(N) * K, rng, 0.02f);
  const auto b = w4a8::test::random_bf16(N, rng, 0.1f);
  std::vector<uint8_t> packed(size_t(N) * K / 2), scales(size_t(N) * K / 16);
  float s2 = 0;
  ASSERT_EQ(w4a8::ref::quantize_weight_nvfp4(w.data(), N, K, 16, packed.data(), scales.data(), &s2),
            W4A8_STATUS_SUCCESS);
  w4a8::test::DeviceBuffer<uint16_t> dx(size_t(M) * K), db(N), dy(size_t(M) * N), dy2(size_t(M) * N);
  w4a8::test::DeviceBuffer<uint8_t> dp(packed.size()), ds(scales.size());
  dx.upload(x);
  db.upload(b);
  dp.upload(packed);
  ds.upload(scales);
  size_t need = 0;
  ASSERT_EQ(w4a8_linear_workspace_size(M, N, K, 16, &need), W4A8_STATUS_SUCCESS);
  w4a8::test::DeviceBuffer<uint8_t> ws(need);
  PluginTensorDesc in_desc[4]{};
  in_desc[0].dims.nbDims = 3;
  in_desc[0].dims.d[0] = 1;
  in_desc[0].dims.d[1] = M;
  in_desc[0].dims.d[2] = K;
  const void* inputs[4] = {dx.get(), dp.get(), ds.get(), db.get()};
  void* outputs[1] = {dy.get()};
  dy.fill_bytes(0xFF);
  ASSERT_EQ(run->enqueue(in_desc, nullptr, inputs, outputs, ws.get(), nullptr), 0) << finder_.logger.last;
  w4a8_weight wt{dp.get(), ds.get(), nullptr, db.get(), N, K, 16, W4A8_LAYOUT_CANONICAL, W4A8_FP8_NONE, 0, 0};
  dy2.fill_bytes(0xFF);
  ASSERT_EQ(w4a8_linear_bf16(dx.get(), &wt, dy2.get(), M, a, ws.get(), need, nullptr), W4A8_STATUS_SUCCESS);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const auto y1 = dy.download(), y2 = dy2.download();
  EXPECT_EQ(0, std::memcmp(y1.data(), y2.data(), y1.size() * 2));
}

}  // namespace
