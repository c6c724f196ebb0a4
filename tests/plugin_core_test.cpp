// The TensorRT-independent core of W4A8GemmPlugin: field parsing and validation, the
// serialized field list, shape and type rules. No TensorRT needed.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "w4a8_plugin_core.hpp"

namespace w4a8 {
namespace plugin {
namespace {

struct Fields {
  int32_t in = 2048, out = 16384, group = 16, bias = 0;
  float alpha = 0.5f;
  std::vector<Field> all() {
    return {{"in_features", &in, FieldType::kINT32, 1}, {"out_features", &out, FieldType::kINT32, 1},
            {"alpha", &alpha, FieldType::kFLOAT32, 1}, {"group_size", &group, FieldType::kINT32, 1},
            {"has_bias", &bias, FieldType::kINT32, 1}};
  }
};

void expect_error(const std::string& got, const std::string& needle) {
  EXPECT_NE(got.find(needle), std::string::npos) << "message '" << got << "' lacks '" << needle << "'";
}

TEST(PluginCore, ParsesTheSeedFieldsAndDefaults) {
  Fields f;
  auto v = f.all();
  Config c;
  ASSERT_EQ(parse_fields(v.data(), 3, &c), "");  // the seed's three fields only
  EXPECT_EQ(c.in_features, 2048);
  EXPECT_EQ(c.out_features, 16384);
  EXPECT_EQ(c.alpha, 0.5f);
  EXPECT_EQ(c.group_size, 16);
  EXPECT_EQ(c.has_bias, 0);
  f.group = 32;
  f.bias = 1;
  v = f.all();
  ASSERT_EQ(parse_fields(v.data(), 5, &c), "");
  EXPECT_EQ(c.group_size, 32);
  EXPECT_EQ(c.num_inputs(), 4);
}

TEST(PluginCore, SerializedFieldsRoundTrip) {
  Config c;
  c.in_features = 1024;
  c.out_features = 4096;
  c.alpha = 3.25e-4f;
  c.group_size = 32;
  c.has_bias = 1;
  const auto fields = fields_of(c);
  Config back;
  ASSERT_EQ(parse_fields(fields.data(), static_cast<int32_t>(fields.size()), &back), "");
  EXPECT_TRUE(back == c);
}

TEST(PluginCore, BadFieldsAreReportedByName) {
  Config c;
  Fields f;
  auto v = f.all();
  expect_error(parse_fields(v.data() + 1, 2, &c), "missing field 'in_features'");
  std::vector<Field> only_in = {v[0]};
  expect_error(parse_fields(only_in.data(), 1, &c), "missing field 'out_features'");
  v[0].type = FieldType::kFLOAT32;
  expect_error(parse_fields(v.data(), 5, &c), "field 'in_features': expected type INT32, got FLOAT32");
  v = f.all();
  v[2].length = 2;
  expect_error(parse_fields(v.data(), 5, &c), "field 'alpha': expected 1 value, got 2");
  v = f.all();
  v[1].data = nullptr;
  expect_error(parse_fields(v.data(), 5, &c), "field 'out_features': data is null");
  v = f.all();
  v[4].name = "has_bais";
  expect_error(parse_fields(v.data(), 5, &c), "unknown field 'has_bais'");
  v[4].name = nullptr;
  expect_error(parse_fields(v.data(), 5, &c), "field 4 has no name");
  expect_error(parse_fields(nullptr, 2, &c), "fields is null");
  expect_error(parse_fields(v.data(), -1, &c), "negative");
  for (auto [in, out, group, msg] : std::vector<std::tuple<int, int, int, std::string>>{
           {0, 8, 16, "in_features=0 must be positive"},
           {64, -8, 16, "out_features=-8 must be positive"},
           {40, 8, 16, "in_features=40 must be a multiple of group_size=16"},
           {64, 8, 8, "group_size=8 must be 16 or 32"}}) {
    Fields g;
    g.in = in;
    g.out = out;
    g.group = group;
    auto w = g.all();
    expect_error(parse_fields(w.data(), 5, &c), msg);
  }
  Fields nan;
  nan.alpha = NAN;
  auto w = nan.all();
  expect_error(parse_fields(w.data(), 5, &c), "alpha must be finite");
  Fields b;
  b.bias = 2;
  w = b.all();
  expect_error(parse_fields(w.data(), 5, &c), "has_bias=2 must be 0 or 1");
}

TEST(PluginCore, NothingIsWrittenOnError) {
  Config c;
  c.in_features = 77;
  Fields f;
  f.group = 5;
  auto v = f.all();
  EXPECT_NE(parse_fields(v.data(), 5, &c), "");
  EXPECT_EQ(c.in_features, 77);
}

TEST(PluginCore, ShapeRulesWithDynamicBatch) {
  Config c;
  c.in_features = 2048;
  c.out_features = 256;
  EXPECT_EQ(check_input_shapes(c, {{-1, -1, 2048}, {256, 1024}, {256, 128}}), "");
  EXPECT_EQ(check_input_shapes(c, {{7, 2048}, {256, 2048}, {256, 128}}), "") << "FP4 [N, K] weights";
  EXPECT_EQ(output_dims(c, {-1, 50, 2048}), (std::vector<int64_t>{-1, 50, 256}));
  expect_error(check_input_shapes(c, {{-1, 1024}, {256, 1024}, {256, 128}}), "input 0 (activation, BF16): expected [?, 2048], got [?, 1024]");
  expect_error(check_input_shapes(c, {{3, 2048}, {255, 1024}, {256, 128}}), "input 1 (packed weight");
  expect_error(check_input_shapes(c, {{3, 2048}, {256, 1024}, {256, 64}}), "input 2 (block scales, FP8): expected [256, 128], got [256, 64]");
  expect_error(check_input_shapes(c, {{3, 2048}, {256, 1024}}), "expected 3 inputs");
  c.has_bias = 1;
  EXPECT_EQ(check_input_shapes(c, {{3, 2048}, {256, 1024}, {256, 128}, {256}}), "");
  expect_error(check_input_shapes(c, {{3, 2048}, {256, 1024}, {256, 128}, {255}}), "input 3 (bias, BF16)");
}

TEST(PluginCore, TypeRules) {
  Config c;
  c.in_features = 64;
  c.out_features = 8;
  EXPECT_TRUE(supports_type(c, 0, DType::kBF16));
  EXPECT_FALSE(supports_type(c, 0, DType::kHALF));
  EXPECT_TRUE(supports_type(c, 1, DType::kINT8));
  EXPECT_TRUE(supports_type(c, 1, DType::kFP4));
  EXPECT_FALSE(supports_type(c, 1, DType::kUINT8));
  EXPECT_TRUE(supports_type(c, 2, DType::kFP8));
  EXPECT_TRUE(supports_type(c, 3, DType::kBF16)) << "position 3 is the output without bias";
  EXPECT_FALSE(supports_type(c, 4, DType::kBF16));
  c.has_bias = 1;
  EXPECT_TRUE(supports_type(c, 3, DType::kBF16));
  EXPECT_TRUE(supports_type(c, 4, DType::kBF16));
  EXPECT_FALSE(supports_type(c, -1, DType::kBF16));
}

// Random field lists (names from the real set and garbage, random types, lengths and bytes):
// the parser must never crash and must either succeed with a valid config or say why not.
TEST(PluginCore, RandomFieldListsNeverCrash) {
  std::mt19937_64 rng(99);
  const char* names[] = {"in_features", "out_features", "alpha", "group_size", "has_bias", "x", ""};
  unsigned char blob[64];
  for (int iter = 0; iter < 200000; ++iter) {
    for (auto& b : blob) b = static_cast<unsigned char>(rng());
    std::vector<Field> v(rng() % 7);
    for (auto& f : v) {
      f.name = names[rng() % 7];
      f.type = static_cast<FieldType>(rng() % 10);
      f.length = static_cast<int32_t>(rng() % 4) - 1;
      f.data = rng() % 8 ? blob + rng() % 48 : nullptr;
    }
    Config c;
    const std::string err = parse_fields(v.data(), static_cast<int32_t>(v.size()), &c);
    if (err.empty()) {
      ASSERT_EQ(validate(c), "");
    }
  }
}

}  // namespace
}  // namespace plugin
}  // namespace w4a8
