// TensorRT-independent logic of the W4A8GemmPlugin (TENSORRT.md): its fields, their parsing and
// validation, the field list it serializes, and the input/output shape and type rules. Plain
// C++ with no TensorRT types, so that CI (which has no TensorRT) tests and fuzzes it; the
// IPluginV3 classes only translate between TensorRT's structures and these.
#ifndef W4A8_PLUGIN_W4A8_PLUGIN_CORE_HPP_
#define W4A8_PLUGIN_W4A8_PLUGIN_CORE_HPP_

#include <cstdint>
#include <string>
#include <vector>

namespace w4a8 {
namespace plugin {

constexpr const char* kPluginName = "W4A8GemmPlugin";
constexpr const char* kPluginVersion = "1";
constexpr const char* kPluginNamespace = "";

// The plugin's fields (names as in the seed, plus group_size and has_bias).
struct Config {
  int32_t in_features = 0;   // K
  int32_t out_features = 0;  // N
  float alpha = 1.0f;        // carries the weight's FP32 tensor scale s2 and any user factor
  int32_t group_size = 16;   // 16 or 32
  int32_t has_bias = 0;      // 0 or 1: a fourth input, BF16 [N]

  bool operator==(const Config& o) const {
    return in_features == o.in_features && out_features == o.out_features && alpha == o.alpha &&
           group_size == o.group_size && has_bias == o.has_bias;
  }
  int32_t num_inputs() const { return has_bias ? 4 : 3; }
};

// A field as TensorRT hands it over (PluginField without the TensorRT types): the values of
// FieldType match nvinfer1::PluginFieldType for the two kinds the plugin uses.
enum class FieldType : int32_t { kFLOAT16 = 0, kFLOAT32 = 1, kFLOAT64 = 2, kINT8 = 3, kINT16 = 4, kINT32 = 5,
                                 kCHAR = 6, kDIMS = 7, kUNKNOWN = 8 };
struct Field {
  const char* name = nullptr;
  const void* data = nullptr;
  FieldType type = FieldType::kUNKNOWN;
  int32_t length = 0;
};

// Parses `fields` into `out`. Required: in_features, out_features (INT32, length 1).
// Optional: alpha (FLOAT32), group_size (INT32), has_bias (INT32). Unknown names are errors
// (a typo must not silently fall back to a default). Returns "" on success, else what is wrong.
std::string parse_fields(const Field* fields, int32_t count, Config* out);

// Checks the values: sizes > 0, in_features % group_size == 0, group 16/32, finite alpha,
// has_bias 0/1. Returns "" or the problem.
std::string validate(const Config& c);

// The fields to serialize (they point into `c`, which must outlive them).
std::vector<Field> fields_of(const Config& c);

// Shape rules. Inputs: 0 activation BF16 [..., K] (rank >= 1, leading dims dynamic);
// 1 packed weight INT8 [N, K/2] (or FP4 [N, K]); 2 block scales FP8 [N, K/g]; 3 bias BF16 [N].
// `dims[i]` holds the input's dimensions, -1 where unknown at build time. Returns "" or the
// first mismatch, naming the input, the expected and the actual shape.
std::string check_input_shapes(const Config& c, const std::vector<std::vector<int64_t>>& dims);

// Output: the activation's dims with the last replaced by N.
std::vector<int64_t> output_dims(const Config& c, const std::vector<int64_t>& activation_dims);

// Data types, in TensorRT's DataType numbering (TENSORRT.md).
enum class DType : int32_t { kFLOAT = 0, kHALF = 1, kINT8 = 2, kINT32 = 3, kBOOL = 4, kUINT8 = 5, kFP8 = 6,
                             kBF16 = 7, kINT64 = 8, kINT4 = 9, kFP4 = 10, kE8M0 = 11 };
// Whether input/output `pos` (inputs first, then the output) may have type `t` (linear layout).
bool supports_type(const Config& c, int32_t pos, DType t);

}  // namespace plugin
}  // namespace w4a8

#endif  // W4A8_PLUGIN_W4A8_PLUGIN_CORE_HPP_
