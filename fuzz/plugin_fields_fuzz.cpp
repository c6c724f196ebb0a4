// libFuzzer target for the W4A8GemmPlugin field parser (plugin/w4a8_plugin_core.cpp): arbitrary
// field lists (real and garbage names, every type tag, lengths -1..6, arbitrary bytes) must never
// crash, and every accepted list must give a valid configuration that round-trips through the
// serialized field list. Run: scripts/fuzz-plugin-fields.sh [runs]
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "w4a8_plugin_core.hpp"

using namespace w4a8::plugin;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const char* kNames[] = {"in_features", "out_features", "alpha", "group_size", "has_bias",
                                 "in_feature", "", "ALPHA"};
  if (size < 1) return 0;
  size_t pos = 0;
  auto next = [&]() -> uint8_t { return pos < size ? data[pos++] : 0; };
  const int count = next() % 9;
  std::vector<Field> fields(count);
  std::vector<std::vector<uint8_t>> payloads(count, std::vector<uint8_t>(16, 0));
  for (int i = 0; i < count; ++i) {
    const uint8_t sel = next();
    fields[i].name = sel == 255 ? nullptr : kNames[sel % 8];
    fields[i].type = static_cast<FieldType>(next() % 11);
    fields[i].length = static_cast<int32_t>(next() % 8) - 1;
    for (auto& b : payloads[i]) b = next();
    fields[i].data = next() % 16 == 0 ? nullptr : payloads[i].data();
  }
  Config c;
  const std::string err = parse_fields(fields.data(), count, &c);
  if (err.empty()) {
    if (!validate(c).empty()) std::abort();
    const std::vector<Field> ser = fields_of(c);
    Config back;
    if (!parse_fields(ser.data(), static_cast<int32_t>(ser.size()), &back).empty() || !(back == c)) std::abort();
    // Shape rules on whatever dims the remaining bytes give: must not crash either.
    std::vector<std::vector<int64_t>> dims(c.num_inputs());
    for (auto& d : dims) {
      d.resize(next() % 4);
      for (auto& v : d) v = static_cast<int64_t>(next()) * 64 - 64;
    }
    check_input_shapes(c, dims);
    output_dims(c, dims.empty() ? std::vector<int64_t>{} : dims[0]);
    for (int p = -1; p <= c.num_inputs() + 1; ++p) supports_type(c, p, static_cast<DType>(next() % 13));
  }
  return 0;
}
