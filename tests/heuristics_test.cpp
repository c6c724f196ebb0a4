// The dispatcher picks a whitelisted configuration for every legal problem, and the choice
// follows the documented rules.
#include <gtest/gtest.h>

#include "host/heuristics.hpp"
#include "kernels/launch.hpp"

namespace w4a8 {
namespace {

TEST(Heuristics, EveryLegalShapeGetsAConfig) {
  heuristics::Device d;
  for (int group : {16, 32})
    for (int64_t M : {1, 2, 7, 8, 9, 16, 17, 33, 50, 64, 65, 128, 968, 4096, 5000})
      for (int64_t N : {1, 15, 16, 17, 256, 1000, 2048, 16384, 32768})
        for (int64_t K : {16, 32, 48, 64, 96, 1024, 1040, 2048, 16384, 65536}) {
          if (K % group) continue;
          heuristics::Problem p{M, N, K, group};
          const int i = heuristics::choose_mma_config(p, d);
          ASSERT_GE(i, 0) << M << " " << N << " " << K << " g" << group;
          const kernels::MmaConfig& c = kernels::mma_config(i);
          EXPECT_EQ(c.group, group);
          EXPECT_EQ(c.vec, K % 32 == 0 ? 16 : 8) << "16-byte loads need K % 32 == 0";
          EXPECT_GE(8 * c.mt, M < 32 ? M : 32) << "one warp covers at least 32 tokens when M needs it";
        }
}

TEST(Heuristics, SmallGpusGetValidConfigsToo) {
  // Jetson Thor (sm_110, 20 SMs) and a one-SM corner: fewer resident CTAs, same whitelist.
  for (const heuristics::Device d : {heuristics::Device{20, 110}, heuristics::Device{1, 80}})
    for (int64_t M : {1, 10, 50, 968})
      for (int64_t N : {256, 1024, 2048, 16384, 32768})
        for (int64_t K : {1024, 2048, 4096, 16384, 1040}) {
          const int i = heuristics::choose_mma_config({M, N, K, 16}, d);
          ASSERT_GE(i, 0) << "sm=" << d.sm_count << " " << M << " " << N << " " << K;
          EXPECT_EQ(kernels::mma_config(i).vec, K % 32 == 0 ? 16 : 8);
        }
}

TEST(Heuristics, TallKSplitsKInsideTheCta) {
  heuristics::Device d;
  const kernels::MmaConfig& c = kernels::mma_config(heuristics::choose_mma_config({1, 2048, 16384, 16}, d));
  EXPECT_EQ(c.wk, 16);  // 128 row tiles, 128 chunks: 16 K-warps per CTA (sweep data)
  const kernels::MmaConfig& w = kernels::mma_config(heuristics::choose_mma_config({1, 16384, 2048, 16}, d));
  EXPECT_EQ(w.wn, 4);  // 1024 row tiles: 4 per CTA keep the tiles within one wave
}

TEST(Heuristics, NamesAreUniqueAndDescribeTheConfig) {
  for (int i = 0; i < kernels::mma_config_count(); ++i)
    for (int j = 0; j < i; ++j) EXPECT_STRNE(kernels::mma_config(i).name, kernels::mma_config(j).name);
}

}  // namespace
}  // namespace w4a8
