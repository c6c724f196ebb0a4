// The dispatcher picks a whitelisted configuration for every legal problem, and the choice
// follows the documented rules.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "host/heuristics.hpp"
#include "kernels/launch.hpp"
#include "w4a8/w4a8.h"

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
          // 32 tokens per warp when M needs it, except rule (5): 16 on small layers with few tiles.
          // (rule (5): small layers at M <= 64 may take smaller tiles, to fill the SMs).
          const bool rule5 = M <= 64 && N * K <= (int64_t(8) << 20) && K % 32 == 0;
          if (!rule5) {
            EXPECT_GE(8 * c.mt, M < 32 ? M : 32) << "tokens per warp, M=" << M << " N=" << N << " K=" << K;
          }
        }
}

// The cluster split-K configurations ("_c2", sm_90+): their names say what they are, and AUTO
// picks them by rule (9) only -- on sm_90, for a one-warp-along-N 16-K-warp pick whose tiles
// fit one wave twice over (2048x16384 at 9..16 tokens, 1024x4096 at <= 8), never elsewhere.
TEST(Heuristics, ClusterSplitConfigsOnlyWhereRuleNinePicksThem) {
  int clusters = 0;
  for (int i = 0; i < kernels::mma_config_count(); ++i) {
    const kernels::MmaConfig& c = kernels::mma_config(i);
    const std::string name = c.name;
    EXPECT_EQ(c.cs > 1, name.find("_c2") != std::string::npos || name.find("_c4") != std::string::npos) << name;
    clusters += c.cs > 1;
  }
  EXPECT_GE(clusters, 1);
  const heuristics::Device h100{};
  auto pick = [](int64_t M, int64_t N, int64_t K, int group, const heuristics::Device& d) {
    const int i = heuristics::choose_mma_config({M, N, K, group}, d);
    return i < 0 ? std::string("none") : std::string(kernels::mma_config(i).name);
  };
  for (int64_t M : {9, 12, 16}) {
    EXPECT_EQ(pick(M, 2048, 16384, 16, h100), "mma_exact_mt2_wn1_wk16_v16_g16_r2_c2") << M;
    EXPECT_EQ(pick(M, 2048, 16384, 32, h100), "mma_exact_mt2_wn1_wk16_v16_g32_r2_c2") << M;
  }
  for (int64_t M : {1, 4, 8}) EXPECT_EQ(pick(M, 1024, 4096, 16, h100), "mma_exact_mt1_wn1_wk8_v16_g16_c2") << M;
  // Where it was slower or not measured: the plain picks.
  EXPECT_EQ(pick(16, 1024, 4096, 16, h100), "mma_exact_mt1_wn1_wk16_v16_g16");
  EXPECT_EQ(pick(1, 2048, 16384, 16, h100), "mma_exact_mt1_wn1_wk16_v16_g16");
  EXPECT_EQ(pick(8, 2048, 16384, 16, h100), "mma_exact_mt1_wn1_wk16_v16_g16");
  // An H100 running a build without sm_90a code (no cluster path): the plain picks.
  const heuristics::Device h100_no90a{132, 90, false};
  EXPECT_EQ(pick(16, 2048, 16384, 16, h100_no90a), "mma_exact_mt2_wn1_wk16_v16_g16");
  EXPECT_EQ(pick(1, 1024, 4096, 16, h100_no90a), "mma_exact_mt1_wn1_wk16_v16_g16");
  for (const heuristics::Device d : {h100, h100_no90a, heuristics::Device{20, 110}, heuristics::Device{108, 80}})
    for (int64_t M : {1, 2, 8, 9, 16, 50, 128, 968})
      for (int64_t N : {256, 1024, 2048, 16384})
        for (int64_t K : {1024, 2048, 4096, 16384, 1040}) {
          const int i = heuristics::choose_mma_config({M, N, K, 16}, d);
          ASSERT_GE(i, 0);
          const kernels::MmaConfig& c = kernels::mma_config(i);
          if (c.cs == 1) continue;
          EXPECT_TRUE(d.cc == 90 && d.wgmma) << c.name << " for " << M << "x" << N << "x" << K;
          // One CTA per SM for every CTA of every cluster: 2 x the tiles within the SMs.
          const int64_t tiles = ((M + 8 * c.mt - 1) / (8 * c.mt)) * ((N + 16 * c.wn * c.rm - 1) / (16 * c.wn * c.rm));
          EXPECT_LE(2 * tiles, d.sm_count) << c.name << " for " << M << "x" << N << "x" << K;
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
  EXPECT_EQ(w.wn * w.rm, 4);  // 1024 row tiles: 4 per CTA keep the tiles within one wave
  EXPECT_EQ(w.rm, 2);         // rule (6): as two row tiles per warp, K split in 4
  // Rule (8) at 9..16 tokens on the wide layers: RM = 2 in one 16-warp CTA per SM, the fewest
  // warps along N that keep one wave (sweep data); rule (6) at 17..32: 4 x 2 warps.
  EXPECT_STREQ(kernels::mma_config(heuristics::choose_mma_config({16, 16384, 2048, 16}, d)).name,
               "mma_exact_mt2_wn4_wk4_v16_g16_r2");
  EXPECT_STREQ(kernels::mma_config(heuristics::choose_mma_config({9, 32768, 2048, 16}, d)).name,
               "mma_exact_mt2_wn8_wk2_v16_g16_r2");
  EXPECT_STREQ(kernels::mma_config(heuristics::choose_mma_config({16, 16384, 2048, 32}, d)).name,
               "mma_exact_mt2_wn4_wk4_v16_g32_r2");  // the group-32 twin
  for (const int64_t N : {int64_t(16384), int64_t(32768)}) {
    const kernels::MmaConfig& m32 = kernels::mma_config(heuristics::choose_mma_config({32, N, 2048, 16}, d));
    EXPECT_STREQ(m32.name, "mma_exact_mt4_wn4_wk2_v16_g16_r2") << N;
  }
  // ... but not on tall K with one warp along N (RM = 2 slower there), unless rule (9) splits
  // the tile over a 2-CTA cluster: on sm_90 only (here an sm_100 GPU of as many SMs).
  EXPECT_EQ(kernels::mma_config(heuristics::choose_mma_config({16, 2048, 16384, 16}, {132, 100})).rm, 1);
}

// Rules (5), (6) and (9): the pi0.5 action expert's layers get the sweeps' best configurations
// (about one 8-warp CTA per SM, the largest token tile that still makes that many tiles; two row
// tiles per warp at 33..64 tokens on layers >= 1024 wide (in 16-token tiles one where K <= 2048,
// session 31; 16-token tiles at 33..48 on the fused q/k/v, session 32), and at 17..32 on layers >= 2048 wide;
// 1024x4096 at one token split over 2-CTA clusters).
TEST(Heuristics, SmallLayersFillTheSms) {
  heuristics::Device d;
  const struct {
    int64_t N, K, M;
    const char* name;
  } cases[] = {{256, 1024, 50, "mma_exact_mt1_wn1_wk8_v16_g16"}, {2048, 1024, 50, "mma_exact_mt2_wn2_wk4_v16_g16"},
               {1024, 2048, 50, "mma_exact_mt2_wn1_wk8_v16_g16"}, {4096, 1024, 50, "mma_exact_mt4_wn2_wk4_v16_g16_r2"},
               {2048, 1024, 40, "mma_exact_mt2_wn2_wk4_v16_g16"}, {1024, 2048, 64, "mma_exact_mt2_wn1_wk8_v16_g16"},
               {1024, 4096, 50, "mma_exact_mt2_wn1_wk8_v16_g16_r2"}, {2048, 2048, 50, "mma_exact_mt4_wn1_wk8_v16_g16_r2"},
               {4096, 1024, 32, "mma_exact_mt2_wn2_wk4_v16_g16_r2"}, {2048, 2048, 32, "mma_exact_mt2_wn1_wk8_v16_g16_r2"},
               {1024, 2048, 16, "mma_exact_mt1_wn1_wk8_v16_g16"}, {256, 2048, 64, "mma_exact_mt1_wn1_wk8_v16_g16"},
               {4096, 1024, 128, "mma_exact_mt4_wn4_wk2_v16_g16_r2"}, {1024, 4096, 128, "mma_exact_mt4_wn1_wk8_v16_g16_r2"},
               {2048, 1024, 96, "mma_exact_mt4_wn2_wk4_v16_g16_r2"}, {2048, 2048, 128, "mma_exact_mt4_wn2_wk4_v16_g16_r2"},
               {1024, 4096, 1, "mma_exact_mt1_wn1_wk8_v16_g16_c2"}, {2048, 2048, 1, "mma_exact_mt1_wn1_wk8_v16_g16"},
               // the fused q/k/v (session 32): 16-token tiles at 33..48 tokens, not at 50 nor on wider layers
               {2560, 1024, 40, "mma_exact_mt2_wn2_wk4_v16_g16"}, {2560, 1024, 50, "mma_exact_mt4_wn2_wk4_v16_g16_r2"},
               {3072, 1024, 40, "mma_exact_mt4_wn2_wk4_v16_g16_r2"}, {3584, 2048, 48, "mma_exact_mt4_wn2_wk4_v16_g16_r2"}};
  for (const auto& c : cases)
    EXPECT_STREQ(kernels::mma_config(heuristics::choose_mma_config({c.M, c.N, c.K, 16}, d)).name, c.name)
        << c.N << "x" << c.K << " M=" << c.M;
}

TEST(Heuristics, NamesAreUniqueAndDescribeTheConfig) {
  for (int i = 0; i < heuristics::config_count(); ++i)
    for (int j = 0; j < i; ++j) EXPECT_STRNE(heuristics::config_name(i), heuristics::config_name(j));
}

// The k order of the wgmma kernel's FP16 activations within a 64-k block (f16p_k_of_column,
// for canonical or tiled weights) must (1) be a permutation, (2) give each thread (c) all of its
// 16 k from one 16-k group (one block scale per row and stage), and (3) match the order the
// dequantization produces A fragments in: step s = 2 * word + half takes, from 32-bit word
// `word` of the thread's 8 bytes, the codes from k0 = 16c + 8 word + half_offset * half on, as
// pairs (k0, k0 + d) then (k0 + 2d, k0 + 3d), in wgmma fragment slots 2c, 2c+1 (reg 0/1) and
// 2c+8, 2c+9 (reg 2/3).
void expect_wgmma_activation_order(bool tiled, int half_offset, int d) {
  std::vector<int> seen(64, 0);
  for (int L = 0; L < 64; ++L) {
    const int k = kernels::f16p_k_of_column(L, tiled);
    ASSERT_GE(k, 0);
    ASSERT_LT(k, 64);
    ++seen[k];
  }
  for (int k = 0; k < 64; ++k) EXPECT_EQ(seen[k], 1) << "k=" << k;
  for (int c = 0; c < 4; ++c)
    for (int s = 0; s < 4; ++s) {
      const int word = s / 2, half = s % 2;
      const int k0 = 16 * c + 8 * word + half_offset * half;  // first code of this register pair
      EXPECT_EQ(kernels::f16p_k_of_column(16 * s + 2 * c, tiled), k0);
      EXPECT_EQ(kernels::f16p_k_of_column(16 * s + 2 * c + 1, tiled), k0 + d);
      EXPECT_EQ(kernels::f16p_k_of_column(16 * s + 2 * c + 8, tiled), k0 + 2 * d);
      EXPECT_EQ(kernels::f16p_k_of_column(16 * s + 2 * c + 9, tiled), k0 + 3 * d);
      for (int j : {0, 1, 8, 9}) EXPECT_EQ(kernels::f16p_k_of_column(16 * s + 2 * c + j, tiled) / 16, c);
    }
}

// Canonical words: the even-k (half 0) or odd-k (half 1) nibbles, pairs (k0, k0 + 2), (k0 + 4, k0 + 6).
TEST(Heuristics, WgmmaActivationOrderMatchesTheDequantization) { expect_wgmma_activation_order(false, 1, 2); }

// Tiled words: k 0..3 (half 0) or k 4..7 (half 1) of the word (formats.hpp tiled_word_e4m3_lo /
// _hi), pairs (k0, k0 + 1), (k0 + 2, k0 + 3).
TEST(Heuristics, WgmmaActivationOrderMatchesTheTiledDequantization) { expect_wgmma_activation_order(true, 4, 1); }

// The FP8 path's activation order within a 128-k block: a permutation in which thread c's
// 32 fragment slots (4 k32 steps x runs 4c.. and 16 + 4c..) hold k 32c .. 32c + 31 (the 16 bytes
// of codes it reads per row: g16 groups 2c, 2c + 1, or g32 group c), step st taking code word
// st, the run at 4c.. its codes 0-3 and the run at 16 + 4c.. its codes 4-7 (dequant_fp8).
TEST(Heuristics, Fp8ActivationOrderMatchesTheDequantization) {
  std::vector<int> seen(128, 0);
  for (int L = 0; L < 128; ++L) ++seen[kernels::fp8p_k_of_slot(L)];
  for (int k = 0; k < 128; ++k) EXPECT_EQ(seen[k], 1) << "k=" << k;
  for (int c = 0; c < 4; ++c)
    for (int st = 0; st < 4; ++st)
      for (int h = 0; h < 2; ++h)
        for (int e = 0; e < 4; ++e)
          EXPECT_EQ(kernels::fp8p_k_of_slot(32 * st + 16 * h + 4 * c + e), 32 * c + 8 * st + 4 * h + e);
  // FP8 configurations exist for both group sizes and are the only ones named "wgmma_fp8".
  int fp8 = 0;
  for (int i = 0; i < heuristics::config_count(); ++i) {
    const bool named = std::string(heuristics::config_name(i)).rfind("wgmma_fp8", 0) == 0;
    EXPECT_EQ(named, heuristics::config_fp8(i)) << heuristics::config_name(i);
    fp8 += named;
  }
  EXPECT_EQ(fp8, 12);  // promoted 128-token, fast 128- and 256-token (unsplit and split)
  EXPECT_FALSE(heuristics::fp8_preferred(heuristics::Problem{511, 2048, 2048, 16}));
  EXPECT_TRUE(heuristics::fp8_preferred(heuristics::Problem{512, 2048, 2048, 16}));
  EXPECT_FALSE(heuristics::fp8_preferred(heuristics::Problem{127, 2048, 2048, 16}, true));  // FAST weights
  EXPECT_TRUE(heuristics::fp8_preferred(heuristics::Problem{128, 2048, 2048, 16}, true));
  heuristics::Device h100;
  for (int g : {16, 32}) {
    const int i = heuristics::choose_fp8_config(heuristics::Problem{968, 2048, 16384, g}, h100);
    ASSERT_GE(i, 0);
    EXPECT_TRUE(heuristics::config_fp8(i));
    EXPECT_EQ(heuristics::config_group(i), g);
    EXPECT_EQ(std::string(heuristics::config_name(i)).rfind("wgmma_fp8_bm128", 0), 0u) << heuristics::config_name(i);
    // Fast accumulation (W4A8_FP8_FAST): 256-token tiles, split where their tiles leave SMs idle,
    // 128-token tiles (fast too) where even those do (heuristics.cpp).
    auto fast = [&](int64_t M, int64_t N, int64_t K) {
      return std::string(heuristics::config_name(heuristics::choose_fp8_config({M, N, K, g}, h100, true)));
    };
    const std::string gs = "_g" + std::to_string(g);
    EXPECT_EQ(fast(968, 2048, 16384), "wgmma_fp8_fast_bm256_k2" + gs);
    EXPECT_EQ(fast(4096, 2048, 16384), "wgmma_fp8_fast_bm256" + gs);
    EXPECT_EQ(fast(968, 16384, 2048), "wgmma_fp8_fast_bm256" + gs);
    EXPECT_EQ(fast(968, 32768, 2048), "wgmma_fp8_fast_bm256" + gs);
    EXPECT_EQ(fast(968, 4096, 1024), "wgmma_fp8_fast_bm256" + gs);
    EXPECT_EQ(fast(968, 2048, 2048), "wgmma_fp8_fast_bm128" + gs);
    EXPECT_EQ(fast(968, 1024, 4096), "wgmma_fp8_fast_bm128_k4" + gs);
    // Never a promoted kernel on a FAST weight, never a fast one on any other.
    for (int64_t M : {128, 512, 968, 4096})
      for (auto [N, K] : {std::pair<int64_t, int64_t>{16384, 2048}, {2048, 16384}, {4096, 1024}, {2048, 2048}}) {
        EXPECT_EQ(fast(M, N, K).rfind("wgmma_fp8_fast_bm", 0), 0u) << M << " " << N << "x" << K;
        const std::string promoted =
            heuristics::config_name(heuristics::choose_fp8_config({M, N, K, g}, h100, false));
        EXPECT_EQ(promoted.rfind("wgmma_fp8_bm", 0), 0u) << promoted;
      }
  }
}

// The wgmma prefill kernel: where its tiles fill the GPU, with the tile the sweep found best;
// never on GPUs without it, never when K % 32 != 0 (TMA), and the workspace queries cover
// every shape it may take.
TEST(Heuristics, WgmmaWhereItsTilesFillTheGpu) {
  heuristics::Device h100;  // 132 SMs, sm_90, wgmma
  auto name = [&](int64_t M, int64_t N, int64_t K, const heuristics::Device& d, bool f16 = true) {
    return std::string(heuristics::config_name(heuristics::choose_config({M, N, K, 16}, d, f16)));
  };
  // Unsplit 64- / 128-token tiles run with 128-k stages (sweep-s128; above 128 tokens,
  // sweep-small968); 256-token tiles and split ones with 64-k stages.
  EXPECT_EQ(name(50, 16384, 2048, h100), "wgmma_exact_bm64_s128_g16");
  EXPECT_EQ(name(128, 16384, 2048, h100), "wgmma_exact_bm128_s128_g16");
  EXPECT_EQ(name(968, 2048, 2048, h100), "wgmma_exact_bm128_s128_g16");  // 18.48 vs 19.15 us
  EXPECT_EQ(name(968, 1024, 4096, h100), "wgmma_exact_bm64_s128_g16");   // 26.11 vs 28.13 us
  EXPECT_EQ(name(200, 16384, 2048, h100).find("_s128"), std::string::npos);  // a 256-token tile
  // 248-token tiles at 769..992 tokens (ab-bm248-h100-2026-11-26.txt), 256 elsewhere.
  EXPECT_EQ(name(968, 16384, 2048, h100), "wgmma_exact_bm248_g16");
  // Two K-splits over a 128-token tile unsplit (sweep968, at 256 tokens: 113.6 vs 129.5 us),
  // reduced in 2-CTA clusters where one wave of them holds every tile (64 tiles, 66 slots on
  // an H100; session 24's A/Bs), through the workspace on a GPU with fewer slots.
  EXPECT_EQ(name(968, 2048, 16384, h100), "wgmma_exact_bm248_k2c_g16");
  heuristics::Device few_slots = h100;
  few_slots.cluster_slots2 = 63;
  EXPECT_EQ(name(968, 2048, 16384, few_slots), "wgmma_exact_bm248_k2_g16");
  few_slots.cluster_slots2 = 0;  // (a GPU where the query found none)
  EXPECT_EQ(name(968, 2048, 16384, few_slots), "wgmma_exact_bm248_k2_g16");
  EXPECT_EQ(name(992, 16384, 2048, h100), "wgmma_exact_bm248_g16");
  EXPECT_EQ(name(993, 16384, 2048, h100), "wgmma_exact_bm256_g16");
  EXPECT_EQ(name(1600, 16384, 2048, h100), "wgmma_exact_bm256_g16");
  EXPECT_EQ(name(768, 16384, 2048, h100), "wgmma_exact_bm256_g16");
  EXPECT_EQ(name(897, 16384, 2048, h100), "wgmma_exact_bm248_g16");
  EXPECT_EQ(name(4096, 2048, 16384, h100), "wgmma_exact_bm256_g16");
  // 160-, 192- and 224-token tiles (session 27, measured: heuristics.cpp) where they pad least
  // per round of SMs: e.g. two of 192 beat three of 128 or two of 256 at M = 384.
  EXPECT_EQ(name(384, 16384, 2048, h100), "wgmma_exact_bm192_g16");
  EXPECT_EQ(name(385, 16384, 2048, h100), "wgmma_exact_bm224_g16");
  EXPECT_EQ(name(320, 32768, 2048, h100), "wgmma_exact_bm160_g16");
  EXPECT_EQ(name(129, 16384, 2048, h100), "wgmma_exact_bm160_g16");
  EXPECT_EQ(name(769, 16384, 2048, h100), "wgmma_exact_bm160_g16");
  EXPECT_EQ(name(384, 2048, 16384, h100), "wgmma_exact_bm192_k4_g16");
  EXPECT_EQ(name(129, 2048, 16384, h100), "wgmma_exact_bm160_k8_g16");
  EXPECT_EQ(name(968, 16384, 2048, h100, false), "wgmma_exact_cvt_bm256_g16");  // no workspace
  EXPECT_EQ(name(64, 16384, 2048, h100, false), "wgmma_exact_cvt_bm128_g16");
  // Tall K, 16 channel tiles: 128-token tiles in 8 K-splits (sweep: 30.0 us vs mma.sync 51.7),
  // with 128-k stages (sweep-s128-splitk: 24.98 vs 26.04 us).
  EXPECT_EQ(name(128, 2048, 16384, h100), "wgmma_exact_bm128_s128_k8_g16");
  // ... and 64-token tiles in 8 K-splits up to 64 tokens (sweep-bm64-splitk: 19.72 vs 22.32 us
  // at M = 50), 128-token ones above (M = 96: 23.75 vs 31.39), both with 128-k stages.
  EXPECT_EQ(name(50, 2048, 16384, h100), "wgmma_exact_bm64_s128_k8_g16");
  EXPECT_EQ(name(64, 2048, 16384, h100), "wgmma_exact_bm64_s128_k8_g16");
  EXPECT_EQ(name(96, 2048, 16384, h100), "wgmma_exact_bm128_s128_k8_g16");
  EXPECT_EQ(name(50, 2048, 16384, h100, false).find("_k"), std::string::npos);  // no workspace
  EXPECT_EQ(name(128, 2048, 16384, h100, false).find("_k"), std::string::npos);  // no workspace: never split
  EXPECT_EQ(name(64, 2048, 2048, h100).rfind("mma_exact", 0), 0u);  // splits of 4 stages: not worth it
  EXPECT_EQ(name(50, 4096, 1024, h100).rfind("mma_exact", 0), 0u);
  EXPECT_EQ(name(32, 16384, 2048, h100).rfind("mma_exact", 0), 0u);
  EXPECT_EQ(name(968, 2048, 2064, h100).rfind("mma_exact", 0), 0u);  // K % 32 == 16
  // Rule (7): above 128 tokens on layers too narrow for the prefill kernel, 32-token tiles
  // with the fewest rows per CTA for one wave (sweep-narrow-h100-2026-11-26.csv: the best).
  EXPECT_EQ(name(192, 256, 2048, h100), "mma_exact_mt4_wn1_wk8_v16_g16");
  EXPECT_EQ(name(512, 256, 2048, h100), "mma_exact_mt4_wn2_wk4_v16_g16");
  EXPECT_EQ(name(968, 256, 2048, h100), "mma_exact_mt4_wn2_wk4_v16_g16_r2");
  EXPECT_EQ(name(968, 512, 2048, h100), "mma_exact_mt4_wn4_wk2_v16_g16_r2");
  EXPECT_EQ(name(256, 512, 1024, h100), "mma_exact_mt4_wn2_wk4_v16_g16");
  heuristics::Device ada;
  ada.cc = 89;
  ada.wgmma = false;
  heuristics::Device thor;
  thor.sm_count = 20;
  thor.cc = 110;
  thor.wgmma = false;
  for (const int64_t M : {int64_t(1), int64_t(50), int64_t(968), int64_t(4096)}) {
    EXPECT_EQ(name(M, 16384, 2048, ada).rfind("mma_exact", 0), 0u) << M;
    EXPECT_EQ(name(M, 16384, 2048, thor).rfind("mma_exact", 0), 0u) << M;
  }
  EXPECT_EQ(name(968, 16384, 2048, ada), "mma_exact_mt4_wn4_wk2_v16_g16_r2");  // rule (7), many tiles
  EXPECT_EQ(name(968, 16384, 2048, ada, false), "mma_exact_mt4_wn4_wk2_v16_g16_r2");
  EXPECT_EQ(name(968, 2048, 16400, thor).rfind("mma_exact_mt8", 0), 0u);  // K % 32 != 0: 8-byte pieces
  for (const int64_t M : {int64_t(33), int64_t(968)}) {
    EXPECT_TRUE(heuristics::wgmma_candidate({M, 2048, 2048, 16}));
    size_t ws = 0;
    ASSERT_EQ(w4a8_gemm_workspace_size(M, 2048, 2048, 16, &ws), W4A8_STATUS_SUCCESS);
    EXPECT_GE(ws, size_t(M) * 2048 * 2);
  }
  size_t ws = 1;
  ASSERT_EQ(w4a8_gemm_workspace_size(16, 2048, 2048, 16, &ws), W4A8_STATUS_SUCCESS);
  EXPECT_EQ(ws, 0u);
}

// The dispatcher's configuration lookup (a table built once, session 29) finds every whitelisted
// wgmma configuration by its fields -- the first of any with equal fields, as a scan would --
// and nothing for fields no configuration has.
TEST(Heuristics, WgmmaLookupFindsEveryConfiguration) {
  for (int i = 0; i < kernels::wgmma_config_count(); ++i) {
    const kernels::WgmmaConfig& c = kernels::wgmma_config(i);
    int first = -1;
    for (int j = 0; j < kernels::wgmma_config_count() && first < 0; ++j) {
      const kernels::WgmmaConfig& d = kernels::wgmma_config(j);
      if (d.group == c.group && d.bm == c.bm && d.f16_in == c.f16_in && d.splits == c.splits && d.fp8 == c.fp8 &&
          d.kh == c.kh && d.cluster == c.cluster && d.fast == c.fast)
        first = j;
    }
    EXPECT_EQ(heuristics::find_wgmma_config(c.group, c.bm, c.f16_in, c.splits, c.fp8, c.kh, c.cluster, c.fast),
              kernels::mma_config_count() + first)
        << c.name;
  }
  EXPECT_EQ(heuristics::find_wgmma_config(16, 96, true, 1, false, 1, false, false), -1);   // no such tile
  EXPECT_EQ(heuristics::find_wgmma_config(16, 64, true, 3, false, 1, false, false), -1);   // no such split
  EXPECT_EQ(heuristics::find_wgmma_config(64, 128, true, 1, false, 1, false, false), -1);  // no such group
}

// The few-row quantizer that keeps its CTAs one per SM as a dependent (quantize.cu) is exactly
// the one the launch policy lets start early at any K (api.cpp prologue_pdl): up to 64 rows of
// up to 32768 values, where the register kernel with wide CTAs runs. A quantizer outside it
// (more rows: many CTAs per SM are wanted; longer rows: another kernel) does not claim it.
TEST(Heuristics, QuantizerSpreadsOnlyWhereItsFewRowKernelRuns) {
  for (const int64_t M : {int64_t(1), int64_t(16), int64_t(50), int64_t(64)})
    for (const int64_t K : {int64_t(16), int64_t(1024), int64_t(16384), int64_t(32768)})
      EXPECT_TRUE(kernels::quantize_activation_spreads(M, K)) << M << " x " << K;
  EXPECT_FALSE(kernels::quantize_activation_spreads(65, 1024));
  EXPECT_FALSE(kernels::quantize_activation_spreads(968, 2048));
  EXPECT_FALSE(kernels::quantize_activation_spreads(1, 32784));
  EXPECT_FALSE(kernels::quantize_activation_spreads(64, 65536));
}

// Split-K: the split count a configuration runs with never leaves a split empty (the kernel
// gives split s the stages [s * ceil(nk / S), ...)), never exceeds the configuration's, and
// the workspace queries hold the FP16 activations plus the partials of whatever AUTO picks
// on an H100, for every shape -- for a cluster-reduced pick, the partials of its workspace
// twin, which a GPU with fewer cluster slots runs instead.
TEST(Heuristics, SplitKPartitionsAndWorkspace) {
  for (int i = 0; i < kernels::wgmma_config_count(); ++i) {
    const kernels::WgmmaConfig& c = kernels::wgmma_config(i);
    for (int64_t K = 32; K <= 70000; K += K < 2048 ? 32 : 992) {
      const int s = kernels::wgmma_splits(i, K);
      const int64_t stage_k = c.fp8 ? 128 : 64 * c.kh;  // (the kernel's k per stage)
      const int64_t nk = (K + stage_k - 1) / stage_k, per = (nk + s - 1) / s;
      ASSERT_GE(s, 1);
      ASSERT_LE(s, c.splits);
      ASSERT_LT((s - 1) * per, nk) << c.name << " K=" << K << ": an empty split";
      // (Reduced in a cluster: no partials.)
      EXPECT_EQ(kernels::wgmma_partial_bytes(i, 100, 300, K), s > 1 && !c.cluster ? size_t(s) * 100 * 300 * 4 : 0u);
    }
  }
  heuristics::Device h100;
  for (const int64_t M : {int64_t(33), int64_t(50), int64_t(128), int64_t(256), int64_t(968), int64_t(4096)})
    for (const auto& nk : std::vector<std::pair<int64_t, int64_t>>{{2048, 16384}, {16384, 2048}, {1024, 4096}, {2048, 2048}}) {
      const int idx = heuristics::choose_config({M, nk.first, nk.second, 16}, h100, true);
      size_t gemm_ws = 0, linear_ws = 0;
      ASSERT_EQ(w4a8_gemm_workspace_size(M, nk.first, nk.second, 16, &gemm_ws), W4A8_STATUS_SUCCESS);
      ASSERT_EQ(w4a8_linear_workspace_size(M, nk.first, nk.second, 16, &linear_ws), W4A8_STATUS_SUCCESS);
      size_t need = 0;
      if (heuristics::is_wgmma(idx)) {
        // The exact path's FP16 activations in whole token tiles (GemmParams::x16_rows).
        const kernels::WgmmaConfig& c = kernels::wgmma_config(heuristics::wgmma_index(idx));
        const int64_t rows = c.fp8 ? M : (M + c.bm - 1) / c.bm * c.bm;
        need = size_t(rows) * ((nk.second + 63) / 64 * 64) * 2 +
               kernels::wgmma_partial_bytes(heuristics::wgmma_index(heuristics::workspace_twin(idx)), M, nk.first,
                                            nk.second);
      }
      EXPECT_GE(gemm_ws, need) << heuristics::config_name(idx);
      EXPECT_GE(linear_ws, need + size_t(M) * 4) << heuristics::config_name(idx);
    }
}

}  // namespace
}  // namespace w4a8
