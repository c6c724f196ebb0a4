// See w4a8_plugin_core.hpp. Every message names the field or input, the expected and the
// actual value, because it ends up in TensorRT's log as the only explanation the user gets.
#include "w4a8_plugin_core.hpp"

#include <cmath>
#include <cstring>
#include <sstream>

namespace w4a8 {
namespace plugin {
namespace {

const char* type_name(FieldType t) {
  switch (t) {
    case FieldType::kFLOAT16: return "FLOAT16";
    case FieldType::kFLOAT32: return "FLOAT32";
    case FieldType::kFLOAT64: return "FLOAT64";
    case FieldType::kINT8: return "INT8";
    case FieldType::kINT16: return "INT16";
    case FieldType::kINT32: return "INT32";
    case FieldType::kCHAR: return "CHAR";
    case FieldType::kDIMS: return "DIMS";
    default: return "UNKNOWN";
  }
}

std::string dims_str(const std::vector<int64_t>& d) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < d.size(); ++i) s << (i ? ", " : "") << (d[i] < 0 ? std::string("?") : std::to_string(d[i]));
  s << "]";
  return s.str();
}

// One scalar field of the expected type; "" or the problem.
template <typename T>
std::string scalar(const Field& f, FieldType want, T* out) {
  if (f.type != want)
    return std::string("field '") + f.name + "': expected type " + type_name(want) + ", got " + type_name(f.type);
  if (f.length != 1)
    return std::string("field '") + f.name + "': expected 1 value, got " + std::to_string(f.length);
  if (f.data == nullptr) return std::string("field '") + f.name + "': data is null";
  std::memcpy(out, f.data, sizeof(T));
  return "";
}

}  // namespace

std::string parse_fields(const Field* fields, int32_t count, Config* out) {
  if (count < 0) return "field count " + std::to_string(count) + " is negative";
  if (count > 0 && fields == nullptr) return "fields is null with count " + std::to_string(count);
  Config c;
  bool have_in = false, have_out = false;
  for (int32_t i = 0; i < count; ++i) {
    const Field& f = fields[i];
    if (f.name == nullptr) return "field " + std::to_string(i) + " has no name";
    std::string err;
    if (std::strcmp(f.name, "in_features") == 0) {
      err = scalar(f, FieldType::kINT32, &c.in_features);
      have_in = err.empty();
    } else if (std::strcmp(f.name, "out_features") == 0) {
      err = scalar(f, FieldType::kINT32, &c.out_features);
      have_out = err.empty();
    } else if (std::strcmp(f.name, "alpha") == 0) {
      err = scalar(f, FieldType::kFLOAT32, &c.alpha);
    } else if (std::strcmp(f.name, "group_size") == 0) {
      err = scalar(f, FieldType::kINT32, &c.group_size);
    } else if (std::strcmp(f.name, "has_bias") == 0) {
      err = scalar(f, FieldType::kINT32, &c.has_bias);
    } else {
      return std::string("unknown field '") + f.name +
             "' (expected in_features, out_features, alpha, group_size, has_bias)";
    }
    if (!err.empty()) return err;
  }
  if (!have_in) return "missing field 'in_features' (INT32)";
  if (!have_out) return "missing field 'out_features' (INT32)";
  const std::string err = validate(c);
  if (!err.empty()) return err;
  *out = c;
  return "";
}

std::string validate(const Config& c) {
  if (c.in_features <= 0) return "in_features=" + std::to_string(c.in_features) + " must be positive";
  if (c.out_features <= 0) return "out_features=" + std::to_string(c.out_features) + " must be positive";
  if (c.group_size != 16 && c.group_size != 32)
    return "group_size=" + std::to_string(c.group_size) + " must be 16 or 32";
  if (c.in_features % c.group_size != 0)
    return "in_features=" + std::to_string(c.in_features) + " must be a multiple of group_size=" +
           std::to_string(c.group_size);
  if (!std::isfinite(c.alpha)) return "alpha must be finite";
  if (c.has_bias != 0 && c.has_bias != 1) return "has_bias=" + std::to_string(c.has_bias) + " must be 0 or 1";
  return "";
}

std::vector<Field> fields_of(const Config& c) {
  return {{"in_features", &c.in_features, FieldType::kINT32, 1},
          {"out_features", &c.out_features, FieldType::kINT32, 1},
          {"alpha", &c.alpha, FieldType::kFLOAT32, 1},
          {"group_size", &c.group_size, FieldType::kINT32, 1},
          {"has_bias", &c.has_bias, FieldType::kINT32, 1}};
}

std::string check_input_shapes(const Config& c, const std::vector<std::vector<int64_t>>& dims) {
  if (static_cast<int32_t>(dims.size()) != c.num_inputs())
    return "expected " + std::to_string(c.num_inputs()) + " inputs (activation, packed weight, block scales" +
           (c.has_bias ? ", bias" : "") + "), got " + std::to_string(dims.size());
  const int64_t K = c.in_features, N = c.out_features;
  auto mismatch = [&](const char* what, const std::vector<int64_t>& want, const std::vector<int64_t>& got) {
    return std::string("input ") + what + ": expected " + dims_str(want) + ", got " + dims_str(got);
  };
  auto same = [](const std::vector<int64_t>& want, const std::vector<int64_t>& got) {
    if (want.size() != got.size()) return false;
    for (size_t i = 0; i < want.size(); ++i)
      if (got[i] >= 0 && got[i] != want[i]) return false;  // -1: unknown until runtime
    return true;
  };
  const auto& a = dims[0];
  if (a.empty() || (a.back() >= 0 && a.back() != K)) {
    std::vector<int64_t> want(a.size() > 1 ? a.size() - 1 : 0, -1);
    want.push_back(K);
    return mismatch("0 (activation, BF16)", want, a);
  }
  // Packed weight: INT8 [N, K/2], or FP4 [N, K] where TensorRT offers FP4 tensors.
  if (!same({N, K / 2}, dims[1]) && !same({N, K}, dims[1]))
    return mismatch("1 (packed weight, INT8 [N, K/2] or FP4 [N, K])", {N, K / 2}, dims[1]);
  if (!same({N, K / c.group_size}, dims[2])) return mismatch("2 (block scales, FP8)", {N, K / c.group_size}, dims[2]);
  if (c.has_bias && !same({N}, dims[3])) return mismatch("3 (bias, BF16)", {N}, dims[3]);
  return "";
}

std::vector<int64_t> output_dims(const Config& c, const std::vector<int64_t>& activation_dims) {
  std::vector<int64_t> out = activation_dims;
  if (out.empty()) out.push_back(c.out_features);
  else out.back() = c.out_features;
  return out;
}

bool supports_type(const Config& c, int32_t pos, DType t) {
  const int32_t n_in = c.num_inputs();
  if (pos < 0 || pos > n_in) return false;
  if (pos == n_in) return t == DType::kBF16;  // output
  switch (pos) {
    case 0: return t == DType::kBF16;                        // activation (quantized inside)
    case 1: return t == DType::kINT8 || t == DType::kFP4;    // packed E2M1 (no kUINT8 for plugins)
    case 2: return t == DType::kFP8;                         // E4M3 block scales
    case 3: return t == DType::kBF16;                        // bias
    default: return false;
  }
}

}  // namespace plugin
}  // namespace w4a8
