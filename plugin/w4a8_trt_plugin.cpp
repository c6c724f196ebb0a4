// W4A8GemmPlugin, version "1", namespace "": a TensorRT IPluginV3 (OneCore + OneBuild +
// OneRuntime) and its IPluginCreatorV3One. Inputs: activation BF16 [..., K], packed NVFP4
// weight INT8 [N, K/2] (or FP4 [N, K]), E4M3 block scales FP8 [N, K/g], optional bias BF16 [N];
// output BF16 [..., N]. The plugin quantizes the activations per row to FP8 itself (through
// w4a8_linear_bf16, workspace from getWorkspaceSize). `alpha` carries the weight's FP32
// tensor scale s2 (and any user factor): TensorRT passes no scalar device input.
//
// All logic that does not need TensorRT types lives in w4a8_plugin_core.cpp (tested in CI);
// this file translates TensorRT's structures and calls the library's C API. It links no
// libnvinfer: TensorRT provides itself when it loads the library (getCreators /
// setLoggerFinder below), so `trtexec --dynamicPlugins=libw4a8_trt_plugin.so` works.
#include <NvInferRuntime.h>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "w4a8/w4a8.h"
#include "w4a8_plugin_core.hpp"

using namespace nvinfer1;

namespace w4a8 {
namespace plugin {
namespace {

ILoggerFinder* g_logger_finder = nullptr;

void log_error(const std::string& msg) {
  const std::string text = std::string(kPluginName) + ": " + msg;
  ILogger* logger = g_logger_finder ? g_logger_finder->findLogger() : nullptr;
  if (logger) logger->log(ILogger::Severity::kERROR, text.c_str());
  else std::fprintf(stderr, "[E] %s\n", text.c_str());
}

// Rows of the activation: the product of all but its last dimension.
int64_t rows_of(const Dims& d) {
  int64_t m = 1;
  for (int32_t i = 0; i + 1 < d.nbDims; ++i) m *= d.d[i];
  return m;
}

std::vector<int64_t> dims_vec(const Dims& d) {
  return std::vector<int64_t>(d.d, d.d + (d.nbDims > 0 ? d.nbDims : 0));
}

class W4A8GemmPlugin final : public IPluginV3, public IPluginV3OneCore, public IPluginV3OneBuild,
                             public IPluginV3OneRuntime {
 public:
  explicit W4A8GemmPlugin(const Config& c) : cfg_(c) {}

  // IPluginV3
  IPluginCapability* getCapabilityInterface(PluginCapabilityType type) noexcept override {
    switch (type) {
      case PluginCapabilityType::kCORE: return static_cast<IPluginV3OneCore*>(this);
      case PluginCapabilityType::kBUILD: return static_cast<IPluginV3OneBuild*>(this);
      case PluginCapabilityType::kRUNTIME: return static_cast<IPluginV3OneRuntime*>(this);
    }
    return nullptr;
  }
  IPluginV3* clone() noexcept override {
    try {
      return new W4A8GemmPlugin(cfg_);
    } catch (const std::exception& e) {
      log_error(std::string("clone failed: ") + e.what());
      return nullptr;
    }
  }

  // IPluginV3OneCore
  AsciiChar const* getPluginName() const noexcept override { return kPluginName; }
  AsciiChar const* getPluginVersion() const noexcept override { return kPluginVersion; }
  AsciiChar const* getPluginNamespace() const noexcept override { return kPluginNamespace; }

  // IPluginV3OneBuild
  int32_t getNbOutputs() const noexcept override { return 1; }

  int32_t getOutputDataTypes(DataType* out, int32_t nb_out, DataType const* in, int32_t nb_in) const noexcept override {
    if (nb_out != 1 || nb_in != cfg_.num_inputs()) {
      log_error("expected " + std::to_string(cfg_.num_inputs()) + " inputs and 1 output, got " +
                std::to_string(nb_in) + " and " + std::to_string(nb_out));
      return -1;
    }
    (void)in;
    out[0] = DataType::kBF16;
    return 0;
  }

  int32_t getOutputShapes(DimsExprs const* inputs, int32_t nb_in, DimsExprs const* /*shape_inputs*/,
                          int32_t /*nb_shape_inputs*/, DimsExprs* outputs, int32_t nb_out,
                          IExprBuilder& builder) noexcept override {
    try {
      std::vector<std::vector<int64_t>> dims(static_cast<size_t>(nb_in > 0 ? nb_in : 0));
      for (int32_t i = 0; i < nb_in; ++i)
        for (int32_t d = 0; d < inputs[i].nbDims; ++d)
          dims[i].push_back(inputs[i].d[d]->isConstant() ? inputs[i].d[d]->getConstantValue() : -1);
      std::string err = nb_out == 1 ? check_input_shapes(cfg_, dims) : "expected 1 output";
      if (!err.empty()) {
        log_error(err);
        return -1;
      }
      outputs[0] = inputs[0];
      outputs[0].d[inputs[0].nbDims - 1] = builder.constant(cfg_.out_features);
      return 0;
    } catch (const std::exception& e) {
      log_error(std::string("getOutputShapes: ") + e.what());
      return -1;
    }
  }

  bool supportsFormatCombination(int32_t pos, DynamicPluginTensorDesc const* in_out, int32_t nb_in,
                                 int32_t nb_out) noexcept override {
    if (nb_in != cfg_.num_inputs() || nb_out != 1 || pos < 0 || pos >= nb_in + nb_out) return false;
    const PluginTensorDesc& d = in_out[pos].desc;
    return d.format == TensorFormat::kLINEAR && supports_type(cfg_, pos, static_cast<DType>(d.type));
  }

  int32_t configurePlugin(DynamicPluginTensorDesc const* in, int32_t nb_in, DynamicPluginTensorDesc const* /*out*/,
                          int32_t nb_out) noexcept override {
    return check_shapes("configurePlugin", nb_in, nb_out, [&](int32_t i) { return in[i].desc.dims; });
  }

  size_t getWorkspaceSize(DynamicPluginTensorDesc const* inputs, int32_t nb_in, DynamicPluginTensorDesc const*,
                          int32_t) const noexcept override {
    if (nb_in < 1) return 0;
    size_t bytes = 0;
    const int64_t m = rows_of(inputs[0].max);
    if (m <= 0 ||
        w4a8_linear_workspace_size(m, cfg_.out_features, cfg_.in_features, cfg_.group_size, &bytes) !=
            W4A8_STATUS_SUCCESS)
      return 0;
    return bytes;
  }

  // IPluginV3OneRuntime
  int32_t onShapeChange(PluginTensorDesc const* in, int32_t nb_in, PluginTensorDesc const*,
                        int32_t nb_out) noexcept override {
    return check_shapes("onShapeChange", nb_in, nb_out, [&](int32_t i) { return in[i].dims; });
  }

  int32_t enqueue(PluginTensorDesc const* input_desc, PluginTensorDesc const*, void const* const* inputs,
                  void* const* outputs, void* workspace, cudaStream_t stream) noexcept override {
    const int64_t m = rows_of(input_desc[0].dims);
    if (m == 0) return 0;  // empty batch: nothing to write
    w4a8_weight w{};
    w.packed = inputs[1];
    w.block_scale = inputs[2];
    w.tensor_scale = nullptr;  // s2 travels in alpha
    w.bias = cfg_.has_bias ? inputs[3] : nullptr;
    w.N = cfg_.out_features;
    w.K = cfg_.in_features;
    w.group_size = cfg_.group_size;
    size_t bytes = 0;
    w4a8_status st = w4a8_linear_workspace_size(m, w.N, w.K, w.group_size, &bytes);
    if (st == W4A8_STATUS_SUCCESS)
      st = w4a8_linear_bf16(inputs[0], &w, outputs[0], m, cfg_.alpha, workspace, bytes,
                            reinterpret_cast<w4a8_stream_t>(stream));
    if (st != W4A8_STATUS_SUCCESS) {
      log_error(std::string("enqueue: ") + w4a8_status_string(st) + ": " + w4a8_last_error());
      return -1;
    }
    return 0;
  }

  IPluginV3* attachToContext(IPluginResourceContext*) noexcept override { return clone(); }

  PluginFieldCollection const* getFieldsToSerialize() noexcept override {
    const std::vector<Field> core = fields_of(cfg_);
    serialized_.clear();
    for (const Field& f : core)
      serialized_.emplace_back(f.name, f.data, static_cast<PluginFieldType>(f.type), f.length);
    collection_.nbFields = static_cast<int32_t>(serialized_.size());
    collection_.fields = serialized_.data();
    return &collection_;
  }

 private:
  // The concrete input shapes against the fields (configurePlugin and onShapeChange): 0 or
  // -1 with the reason logged.
  template <typename DimsOf>
  int32_t check_shapes(const char* where, int32_t nb_in, int32_t nb_out, DimsOf dims_of) const noexcept {
    try {
      std::vector<std::vector<int64_t>> dims;
      for (int32_t i = 0; i < nb_in; ++i) dims.push_back(dims_vec(dims_of(i)));
      const std::string err = nb_out == 1 ? check_input_shapes(cfg_, dims) : "expected 1 output";
      if (!err.empty()) {
        log_error(std::string(where) + ": " + err);
        return -1;
      }
      return 0;
    } catch (const std::exception& e) {
      log_error(std::string(where) + ": " + e.what());
      return -1;
    }
  }

  Config cfg_;
  std::vector<PluginField> serialized_;
  PluginFieldCollection collection_{};
};

class W4A8GemmPluginCreator final : public IPluginCreatorV3One {
 public:
  W4A8GemmPluginCreator() {
    // The same names and types the plugin serializes (one list, in the core).
    for (const Field& f : fields_of(Config{}))
      names_.emplace_back(f.name, nullptr, static_cast<PluginFieldType>(f.type), f.length);
    collection_.nbFields = static_cast<int32_t>(names_.size());
    collection_.fields = names_.data();
  }

  IPluginV3* createPlugin(AsciiChar const* name, PluginFieldCollection const* fc, TensorRTPhase) noexcept override {
    try {
      if (fc == nullptr) {
        log_error(std::string("createPlugin(") + (name ? name : "") + "): no field collection");
        return nullptr;
      }
      std::vector<Field> fields;
      for (int32_t i = 0; i < fc->nbFields && fc->fields; ++i) {
        const PluginField& f = fc->fields[i];
        fields.push_back(Field{f.name, f.data, static_cast<FieldType>(f.type), f.length});
      }
      Config c;
      const std::string err = parse_fields(fields.data(), fc->nbFields, &c);
      if (!err.empty()) {
        log_error(std::string("createPlugin(") + (name ? name : "") + "): " + err);
        return nullptr;
      }
      return new W4A8GemmPlugin(c);
    } catch (const std::exception& e) {
      log_error(std::string("createPlugin: ") + e.what());
      return nullptr;
    }
  }

  PluginFieldCollection const* getFieldNames() noexcept override { return &collection_; }
  AsciiChar const* getPluginName() const noexcept override { return kPluginName; }
  AsciiChar const* getPluginVersion() const noexcept override { return kPluginVersion; }
  AsciiChar const* getPluginNamespace() const noexcept override { return kPluginNamespace; }

 private:
  std::vector<PluginField> names_;
  PluginFieldCollection collection_{};
};

}  // namespace
}  // namespace plugin
}  // namespace w4a8

// The two entry points TensorRT looks for in a plugin library (IPluginRegistry::loadLibrary,
// trtexec --dynamicPlugins).
extern "C" __attribute__((visibility("default"))) IPluginCreatorInterface* const* getCreators(int32_t& nb_creators) {
  static w4a8::plugin::W4A8GemmPluginCreator creator;
  static IPluginCreatorInterface* const creators[] = {&creator};
  nb_creators = 1;
  return creators;
}

extern "C" __attribute__((visibility("default"))) void setLoggerFinder(ILoggerFinder* finder) {
  w4a8::plugin::g_logger_finder = finder;
}
