// Shared helpers for the test suites: random data, BF16 buffers, device buffers, GPU skip.
#ifndef W4A8_TESTS_TEST_UTIL_HPP_
#define W4A8_TESTS_TEST_UTIL_HPP_

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "w4a8/formats.hpp"
#include "w4a8/w4a8.h"

namespace w4a8 {
namespace test {

inline std::vector<uint16_t> random_bf16(size_t n, std::mt19937_64& rng, float stddev = 1.0f) {
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<uint16_t> v(n);
  for (auto& x : v) x = float_to_bf16(dist(rng));
  return v;
}

// Index of the kernel configuration named `name` in the tuning API's list, or -1.
inline int config_index(const std::string& name) {
  for (int i = 0; i < w4a8_gemm_config_count(); ++i)
    if (name == w4a8_gemm_config_name(i)) return i;
  return -1;
}

inline bool gpu_available() {
  int n = 0;
  const bool ok = cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
  cudaGetLastError();
  return ok;
}

#define W4A8_REQUIRE_GPU()                                                            \
  do {                                                                                \
    if (!::w4a8::test::gpu_available())                                               \
      GTEST_SKIP() << "no CUDA GPU on this machine: GPU test skipped (run "           \
                      "scripts/gpu-check.sh on a GPU machine)";                       \
  } while (0)

#define CUDA_OK(expr) ASSERT_EQ((expr), cudaSuccess) << cudaGetErrorString(cudaGetLastError())

// Owning device buffer.
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t n) : n_(n) {
    if (cudaMalloc(&p_, n * sizeof(T) + 64) != cudaSuccess) p_ = nullptr;
  }
  ~DeviceBuffer() {
    if (p_) cudaFree(p_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return p_; }
  size_t size() const { return n_; }
  void upload(const std::vector<T>& v) { cudaMemcpy(p_, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice); }
  std::vector<T> download() const {
    std::vector<T> v(n_);
    cudaMemcpy(v.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost);
    return v;
  }
  void fill_bytes(int byte) { cudaMemset(p_, byte, n_ * sizeof(T)); }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

}  // namespace test
}  // namespace w4a8

#endif  // W4A8_TESTS_TEST_UTIL_HPP_
