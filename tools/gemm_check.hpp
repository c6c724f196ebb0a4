// The end-to-end GEMM check shared by the seed's `test_w4a8_gemm M N K` and `w4a8 check`:
// random BF16 data -> quantize -> GEMM, compared with the exact CPU reference on the same
// quantized operands and with the unquantized BF16 product, and timed. On a machine
// without a GPU it says so and runs the CPU reference path.
#ifndef W4A8_TOOLS_GEMM_CHECK_HPP_
#define W4A8_TOOLS_GEMM_CHECK_HPP_

#include <cstdint>

namespace w4a8 {
namespace tools {

struct CheckOptions {
  int64_t M = 256, N = 2048, K = 2048;
  int group = 16;
  uint64_t seed = 1;
  bool force_cpu = false;  // run the CPU path even where a GPU exists
};

// Prints what it compared, the errors, the timing and PASSED/FAILED; returns 0 on PASSED.
int run_gemm_check(const CheckOptions& options);

}  // namespace tools
}  // namespace w4a8

#endif  // W4A8_TOOLS_GEMM_CHECK_HPP_
