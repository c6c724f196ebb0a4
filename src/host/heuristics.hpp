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
  bool wgmma = true;   // the sm_90a wgmma kernels can run (sm_90 GPU and an sm_90a image)
  int ordinal = 0;     // CUDA device ordinal (for per-device kernel attributes)
  // Clusters of two whole-SM wgmma CTAs the GPU holds at once (kernels::wgmma_cluster_slots;
  // an SM left alone in a GPC holds no part of one): where every tile of a 2-split
  // configuration fits one wave of them, its cluster-reduced twin runs. 0: none. Default: the
  // H100 SXM's, as queried there (132 SMs: 66).
  int cluster_slots2 = 66;
};

// The one index space of kernel configurations (the tuning API's): the mma.sync whitelist
// first, then the wgmma one.
int config_count();
bool is_wgmma(int index);      // index >= kernels::mma_config_count()
int wgmma_index(int index);    // its position in kernels::wgmma_config()
const char* config_name(int index);
int config_group(int index);

// Index into kernels::mma_config(); -1 if no configuration fits (never for valid input).
int choose_mma_config(const Problem& problem, const Device& device);
// The smallest M from which the wgmma kernel runs (where the device has it).
int64_t wgmma_min_m(const Problem& problem);
// The wgmma configuration (index in the shared space) for a problem it supports; f16_in:
// the caller can give it FP16 activations made by a prologue (it has the workspace).
int choose_wgmma_config(const Problem& problem, const Device& device, bool f16_in);
// Whether the wgmma kernel can take this problem shape at all (K % 32 == 0 for TMA rows).
bool wgmma_fits(const Problem& problem);
// The configuration AUTO runs (index in the shared space).
int choose_config(const Problem& problem, const Device& device, bool f16_in);
// Whether AUTO may pick a wgmma kernel for this shape on an sm_90a device: the workspace
// queries (host-only, device-agnostic) size the FP16 activations for it when true, plus the
// split-K partials of the configuration an H100 would run.
bool wgmma_candidate(const Problem& problem);
bool config_f16_in(int index);  // takes activations made by a prologue (FP8 path included)
// The FP8 path (sm_90a wgmma on E4M3 weights): whether a configuration is one, and the one
// for a problem the wgmma kernel fits (index in the shared space).
bool config_fp8(int index);
// Whether AUTO runs the FP8 path (where the prefill kernel runs) for a weight that allows it;
// fast_acc: the weight is marked W4A8_FP8_FAST.
bool fp8_preferred(const Problem& problem, bool fast_acc = false);
// fast_acc: the weight is marked W4A8_FP8_FAST (only fast-accumulation configurations, 128- and
// 256-token, are candidates).
int choose_fp8_config(const Problem& problem, const Device& device, bool fast_acc = false);
// The unsplit configuration with the same tile (itself when not a split-K wgmma one).
int unsplit(int index);
// The twin of a cluster-reduced split-K configuration that reduces through the workspace
// (itself for every other configuration): what the workspace queries plan for.
int workspace_twin(int index);
// The wgmma configuration with exactly these fields (kernels::WgmmaConfig's; index in the
// shared space), or -1: the lookup every choice above makes, from a table built once.
int find_wgmma_config(int group, int bm, bool f16_in, int splits, bool fp8, int kh, bool cluster, bool fast);

}  // namespace heuristics
}  // namespace w4a8

#endif  // W4A8_SRC_HOST_HEURISTICS_HPP_
