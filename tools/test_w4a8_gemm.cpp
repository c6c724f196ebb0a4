// The seed's test program: `test_w4a8_gemm M N K [group]`. Quantizes random BF16 data,
// runs the W4A8 GEMM (GPU, or the CPU reference where there is no GPU), compares and times
// it, prints PASSED/FAILED and exits non-zero on failure.
#include <cstdio>
#include <cstdlib>

#include "gemm_check.hpp"

int main(int argc, char** argv) {
  if (argc != 4 && argc != 5) {
    std::fprintf(stderr, "usage: %s M N K [group_size=16]\n  e.g. %s 256 2048 2048\n", argv[0], argv[0]);
    return 2;
  }
  w4a8::tools::CheckOptions o;
  o.M = std::atoll(argv[1]);
  o.N = std::atoll(argv[2]);
  o.K = std::atoll(argv[3]);
  if (argc == 5) o.group = std::atoi(argv[4]);
  return w4a8::tools::run_gemm_check(o);
}
