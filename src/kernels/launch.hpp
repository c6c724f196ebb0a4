// The boundary between host dispatch (src/host) and device code (src/kernels). Plain C++:
// raw pointers, shapes and a stream; no validation here (the C API did it), no framework
// types. Each launcher enqueues its kernels and returns the launch's cudaError_t.
#ifndef W4A8_SRC_KERNELS_LAUNCH_HPP_
#define W4A8_SRC_KERNELS_LAUNCH_HPP_

#include <cuda_runtime.h>

#include <cstdint>

namespace w4a8 {
namespace kernels {

// Operands of one GEMM launch (validated by the caller; see include/w4a8/w4a8.h).
struct GemmParams {
  const uint8_t* x = nullptr;          // E4M3 [M, K]
  const float* row_scale = nullptr;    // [M]
  const uint8_t* w = nullptr;          // packed E2M1 [N, K/2]
  const uint8_t* sb = nullptr;         // E4M3 block scales [N, K/group]
  const float* s2 = nullptr;           // tensor scale, nullable (1.0)
  const uint16_t* bias = nullptr;      // BF16 [N], nullable
  uint16_t* y = nullptr;               // BF16 [M, N]
  int64_t M = 0, N = 0, K = 0;
  int group = 16;                      // block-scale group size, 16 or 32
  float alpha = 1.0f;
  // The wgmma kernel's FP16 activations (f16p layout below), when the caller made them;
  // nullptr: the kernel converts the FP8 activations itself.
  const uint16_t* x16 = nullptr;
  // Rows of x16 the kernel's TMA map spans (0: M). The caller sets it to a whole number of the
  // configuration's token tiles where its buffer has those rows: a tile's rows past M are then
  // copied as they are (whatever the buffer holds there reaches only the token columns the
  // epilogue never stores: a wgmma column n sums A[:, k] * B[k, n] over k alone) instead of
  // being zero-filled by TMA, which is slow (H100, session 29: 16384x2048 M = 50 -2%, M = 100
  // -5%; a 128-token tile at M = 50 -32%; bench/results/ab-tiled-tma-h100-2026-11-27-s29.txt).
  int64_t x16_rows = 0;
  // wgmma kernel, split-K (WgmmaConfig::splits > 1): FP32 partial sums [splits][M][N], summed
  // in split order by a second kernel (launch_wgmma runs both). Part of the workspace.
  float* partial = nullptr;
  // Weights and block scales in the tiled layout (W4A8_LAYOUT_TILED, w4a8/formats.hpp)
  // instead of the canonical one. The mma kernel takes it with 16-byte pieces only (vec 16).
  bool tiled = false;
  // FP8 tensor-core path (wgmma "fp8" configurations): weights become e4m3(e2m1 * sb *
  // 2^fp8_shift) in the kernel (fp8_shift from w4a8_prepare_fp8, undone in the epilogue),
  // activations come permuted as FP8 (fp8p layout below) from the prologue.
  bool fp8 = false;
  int fp8_shift = 0;
  const uint8_t* x8p = nullptr;
  // Gated epilogue (w4a8_linear_bf16_glu): 0 none; 1 GELU (tanh), 2 SiLU. The weight's rows are
  // gate and up channels interleaved in blocks of 8 (common.cuh glu_column), N % 16 == 0, and
  // y is [M, N/2]: act(gate) * up per channel, rounded as the unfused layer rounds. The mma and
  // wgmma kernels (and the split-K reduction) apply it; the naive kernel never gets it.
  int glu = 0;
};

// One instantiated configuration of the mma.sync exact kernel. The whitelist lives in
// gemm_mma.cu; the choice among them in src/host/heuristics.cpp.
struct MmaConfig {
  int group;  // 16 or 32: block-scale group size
  int mt;     // n-tiles of 8 tokens per warp (1, 2, 4, 8)
  int wn;     // warps along N per CTA (each warp owns 16 output channels)
  int wk;     // warps along K per CTA (reduced through shared memory, in fixed order)
  int vec;    // bytes of packed weights per row per thread and chunk: 16 (K % 32 == 0) or 8
  const char* name;
  int rm;     // row tiles of 16 per warp (1 or 2)
  int cs;     // CTAs of a cluster splitting K (1: no cluster; 2: "_c2", sm_90+ only)
};

// Number of entries and the table itself (static storage).
int mma_config_count();
const MmaConfig& mma_config(int index);
// Enqueues configuration `index` for `p` on the current device, which has `sm_count` SMs.
// pdl (sm_90+ only): launch as a programmatic dependent of the preceding kernel, which must
// not write the weights, scales or s2 (the kernel reads those before griddepcontrol.wait).
// Returns cudaErrorInvalidValue for a bad index, cudaErrorNotSupported for a cluster
// configuration (cs > 1) below sm_90.
cudaError_t launch_mma(int index, const GemmParams& p, int sm_count, cudaStream_t stream,
                       bool pdl = false);
// Checks that this build holds a kernel image for the current device (no launch).
cudaError_t mma_kernel_available();
// Whether configuration `index` can run on the current device: for a cluster configuration
// (cs > 1), that the code the driver picked for it was compiled for sm_90+ (its PTX virtual
// architecture, as CUB's PtxVersion reads it: a build with no sm_90+ image runs PTX of an older
// architecture on a newer GPU, where the cluster path is a trap). Success for the others.
cudaError_t mma_config_runnable(int index);

// One instantiated configuration of the sm_90a wgmma prefill kernel (gemm_wgmma.cu): 128
// output channels x `bm` tokens per CTA tile.
struct WgmmaConfig {
  int group;    // 16 or 32
  int bm;       // tokens per tile: 64, 128, 160, 192, 224, 248 or 256
  bool f16_in;  // takes GemmParams::x16 (FP16 activations made by the prologue), not x
  int splits;   // K cut into this many contiguous ranges (work items); > 1: needs GemmParams::partial
                // unless `cluster`
  const char* name;
  bool fp8;     // the FP8 tensor-core path (GemmParams::fp8, x8p); f16_in is then true
  int kh;       // 64-k halves per stage: 1, or 2 (128-k stages; exact f16_in only)
  bool cluster;  // splits > 1: reduced in a cluster of `splits` CTAs, no GemmParams::partial
  bool fast;     // FP8 path without FP32 promotion (fast accumulation, W4A8_FP8_FAST weights)
};
int wgmma_config_count();
const WgmmaConfig& wgmma_config(int index);
// Whether the problem meets the kernel's TMA constraints (K % 32 == 0, 16-byte aligned
// weights and activations, tile counts in 32 bits). Pure host check.
bool wgmma_supported(const GemmParams& p);
// The split count a configuration really runs with for K (never more splits than 64-k
// stages, and no empty split), and the bytes of FP32 partial sums it needs (0 unsplit).
int wgmma_splits(int index, int64_t K);
size_t wgmma_partial_bytes(int index, int64_t M, int64_t N, int64_t K);
// How many clusters of `cluster` (2, 4 or 8) wgmma CTAs device `device` holds at once
// (cudaOccupancyMaxActiveClusters; every wgmma configuration takes a whole SM, so one answer
// serves all); 0 where it cannot say (no sm_90a image, not an sm_90 GPU, a failed query).
int wgmma_cluster_slots(int cluster, int device);
// Enqueues wgmma configuration `index` on the current device (`device` = its ordinal,
// `sm_count` its SMs). Only valid where the build has an sm_90a image and the GPU is sm_90.
// pdl: launch as a programmatic dependent of the preceding kernel (the kernel waits for it
// before anything else; its split-K reduction, if any, follows as usual).
cudaError_t launch_wgmma(int index, const GemmParams& p, int device, int sm_count, cudaStream_t stream,
                         bool pdl = false);

// Device reference: one thread per output, FP32 accumulation in k order.
cudaError_t launch_naive(const GemmParams& p, cudaStream_t stream);

// How a quantizer or prologue (the kernel a call runs before its GEMM) is launched after the
// preceding kernel in the stream (sm_90+; kSerial elsewhere). It waits for that kernel
// (griddepcontrol.wait) before it reads or writes anything, so a programmatic launch only
// hides its launch; what differs is when it lets its own dependent (our GEMM, which streams
// weights before its own wait) launch:
//   kDependent       after its wait: the GEMM's early weight reads then come after every
//                    kernel before the call (any weight);
//   kDependentEarly  before its wait: only for an `overlap` weight (w4a8.h: the kernel before
//                    the call does not write it), so the GEMM's launch overlaps that kernel too.
enum class Pdl { kSerial, kDependent, kDependentEarly };

// Quantizers (see include/w4a8/w4a8.h for the numerics), launched as `pdl` says.
cudaError_t launch_quantize_activation(const uint16_t* x, uint8_t* q, float* row_scale,
                                       int64_t M, int64_t K, cudaStream_t stream, Pdl pdl = Pdl::kSerial);
// Whether launch_quantize_activation, launched as a dependent, keeps its CTAs one per SM (its
// few-row kernel: M <= 64, K <= 32768; quantize.cu spread_smem), so that they do not stack on
// the SMs the kernel before it leaves free.
bool quantize_activation_spreads(int64_t M, int64_t K);
// FP16 activations for the wgmma kernel (gemm_wgmma.cu): the FP8 values widened to FP16,
// k permuted within each 64-k block, rows padded with zeros to f16p_row_elems(K) values.
inline int64_t f16p_row_elems(int64_t K) { return (K + 63) / 64 * 64; }
// k of the block that logical column L (0..63) of a 64-k block holds. tiled: the order for
// weights in W4A8_LAYOUT_TILED, whose words give k 0..3 and 4..7 rather than the even and the
// odd k (gemm_wgmma.cu dequant_exact: the kernel then needs no byte permutes for them).
inline int f16p_k_of_column(int L, bool tiled = false) {
  const int s = L >> 4, h = (L >> 3) & 1, c = (L >> 1) & 3, e = L & 1;
  return tiled ? 16 * c + 8 * (s >> 1) + 4 * (s & 1) + 2 * h + e : 16 * c + 8 * (s >> 1) + (s & 1) + 4 * h + 2 * e;
}
// FP8 activations for the FP8 path: the codes themselves, k permuted within each 128-k
// block (slot 32s + 16h + 4c + e holds k = 32c + 8s + 4h + e, gemm_wgmma.cu dequant_fp8), rows
// padded with zeros to fp8p_row_bytes(K). A 16-byte unit j of a block holds the code words
// (4 k) j, j + 8, j + 16, j + 24.
inline int64_t fp8p_row_bytes(int64_t K) { return (K + 127) / 128 * 128; }
inline int fp8p_k_of_slot(int L) {
  const int s = L >> 5, h = (L >> 4) & 1, c = (L >> 2) & 3, e = L & 3;
  return 32 * c + 8 * s + 4 * h + e;
}
// (pdl on these prologues as on launch_quantize_activation.)
cudaError_t launch_quantize_activation_fp8p(const uint16_t* x, uint8_t* out, float* row_scale, int64_t M,
                                            int64_t K, cudaStream_t stream, Pdl pdl = Pdl::kSerial);
cudaError_t launch_fp8_to_fp8p(const uint8_t* q, uint8_t* out, int64_t M, int64_t K, cudaStream_t stream,
                               Pdl pdl = Pdl::kSerial);
// FP8 path, load time: ORs into mask[sb] (256 words, zeroed by the caller) the bit of every
// E2M1 magnitude (0..7) that occurs in a group with block scale byte sb (canonical layout).
cudaError_t launch_fp8_scale_usage(const uint8_t* packed, const uint8_t* scales, int64_t N, int64_t K,
                                   int group, uint32_t* mask, cudaStream_t stream);
// tiled: the activation order for a weight in the tiled layout (f16p_k_of_column).
cudaError_t launch_quantize_activation_f16p(const uint16_t* x, uint16_t* out, float* row_scale,
                                            int64_t M, int64_t K, cudaStream_t stream, Pdl pdl = Pdl::kSerial,
                                            bool tiled = false);
cudaError_t launch_fp8_to_f16p(const uint8_t* q, uint16_t* out, int64_t M, int64_t K,
                               cudaStream_t stream, Pdl pdl = Pdl::kSerial, bool tiled = false);
// Weight layout conversion, canonical -> tiled (to_tiled) or back (w4a8/formats.hpp);
// K % 32 == 0, outputs disjoint from inputs.
cudaError_t launch_convert_layout(const uint8_t* packed, const uint8_t* scales, uint8_t* out_packed,
                                  uint8_t* out_scales, int64_t N, int64_t K, int group, bool to_tiled,
                                  int sm_count, cudaStream_t stream);
cudaError_t launch_quantize_weight(const uint16_t* w, uint8_t* packed, uint8_t* block_scale,
                                   float* tensor_scale, int64_t N, int64_t K, int group,
                                   cudaStream_t stream);

}  // namespace kernels
}  // namespace w4a8

#endif  // W4A8_SRC_KERNELS_LAUNCH_HPP_
