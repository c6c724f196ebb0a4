// Kernel selection: which whitelisted configuration runs for a problem on a device. Pure
// host logic (no CUDA calls), so it is unit-tested on machines without a GPU.
#ifndef W4A8_SRC_HOST_HEURISTICS_HPP_
#define W4A8_SRC_HOST_HEURISTICS_HPP_

#include <cstdint>

namespace w4a8 {
namespace heuristics {

struct Problem {
  int64_t M = 0, N = 0, K = 0;
  int group = 16;
};

struct Device {
  int sm_count = 132;  // H100 SXM
  int cc = 90;         // compute capability, major * 10 + minor
};

// Index into kernels::mma_config(); -1 if no configuration fits (never for valid input).
int choose_mma_config(const Problem& problem, const Device& device);

}  // namespace heuristics
}  // namespace w4a8

#endif  // W4A8_SRC_HOST_HEURISTICS_HPP_
