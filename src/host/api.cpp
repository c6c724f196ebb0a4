// The C API (include/w4a8/w4a8.h): validate every argument, check the device once, pick a
// kernel (src/host/heuristics.cpp), launch (src/kernels), report. Nothing is written before
// validation has passed.
#include <cuda_runtime.h>

#include <atomic>
#include <cmath>

#include "core/status.hpp"
#include "host/heuristics.hpp"
#include "kernels/launch.hpp"
#include "w4a8/formats.hpp"
#include "w4a8/reference.hpp"
#include "w4a8/w4a8.h"

namespace w4a8 {
namespace {

using detail::check_aligned;
using detail::check_dim;
using detail::check_group_size;
using detail::check_k;
using detail::check_not_null;
using detail::fail;

constexpr size_t kWorkspaceAlign = 256;

// The wgmma kernels exist only in builds with an sm_90a image (CMake defines W4A8_HAS_SM90A),
// and run only on sm_90 GPUs (the sm_90a image is not forward compatible).
#ifdef W4A8_HAS_SM90A
constexpr bool kHasSm90a = true;
#else
constexpr bool kHasSm90a = false;
#endif
size_t align_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

// Per-device facts, filled once per device ordinal (idempotent, so a race only repeats work).
struct DeviceEntry {
  std::atomic<int> state{0};  // 0 unknown, 1 supported, 2 unsupported
  int sm_count = 0;
  int cc = 0;
  int cluster_slots2 = 0;  // clusters of 2 whole-SM wgmma CTAs (sm_90a only)
};
constexpr int kMaxDevices = 64;
DeviceEntry g_devices[kMaxDevices];

w4a8_status cuda_fail(const char* fn, const char* what, cudaError_t err) {
  cudaGetLastError();  // clear a non-sticky error so it does not leak into the caller's next check
  return fail(W4A8_STATUS_CUDA_ERROR, fn, "%s failed: %s (%s)", what, cudaGetErrorName(err),
              cudaGetErrorString(err));
}

// Checks that there is a current device this build can run on; fills `dev`.
w4a8_status current_device(const char* fn, heuristics::Device* dev) {
  int ordinal = -1;
  cudaError_t err = cudaGetDevice(&ordinal);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return fail(W4A8_STATUS_UNSUPPORTED_DEVICE, fn, "no usable CUDA device: %s",
                cudaGetErrorString(err));
  }
  if (ordinal < 0 || ordinal >= kMaxDevices)
    return fail(W4A8_STATUS_UNSUPPORTED_DEVICE, fn, "device ordinal %d outside [0, %d)", ordinal,
                kMaxDevices);
  DeviceEntry& e = g_devices[ordinal];
  if (e.state.load(std::memory_order_acquire) == 0) {
    int major = 0, minor = 0, sms = 0;
    if ((err = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, ordinal)) ||
        (err = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, ordinal)) ||
        (err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, ordinal)))
      return cuda_fail(fn, "cudaDeviceGetAttribute", err);
    e.cc = major * 10 + minor;
    e.sm_count = sms;
    // The kernels need sm_80 (mma.sync FP16, cp-style loads); the build must also hold an
    // image (or PTX) the driver can use on this GPU.
    const bool image = kernels::mma_kernel_available() == cudaSuccess;
    cudaGetLastError();
    if (kHasSm90a && e.cc == 90) e.cluster_slots2 = kernels::wgmma_cluster_slots(2, ordinal);
    cudaGetLastError();
    e.state.store(e.cc >= 80 && image ? 1 : 2, std::memory_order_release);
  }
  if (e.state.load(std::memory_order_acquire) != 1)
    return fail(W4A8_STATUS_UNSUPPORTED_DEVICE, fn,
                "device %d is sm_%d; this build needs sm_80 or newer and holds kernels for "
                "CUDA architectures [%s]",
                ordinal, e.cc, W4A8_CUDA_ARCHS_STRING);
  dev->sm_count = e.sm_count;
  dev->cc = e.cc;
  dev->wgmma = kHasSm90a && e.cc == 90;
  dev->ordinal = ordinal;
  dev->cluster_slots2 = e.cluster_slots2;
  return W4A8_STATUS_SUCCESS;
}

w4a8_status check_weight(const char* fn, const w4a8_weight* w) {
  W4A8_CHECK(check_not_null(fn, "weight", w));
  W4A8_CHECK(check_dim(fn, "weight->N", w->N));
  W4A8_CHECK(check_group_size(fn, w->group_size));
  W4A8_CHECK(check_k(fn, w->K, w->group_size));
  W4A8_CHECK(detail::check_layout(fn, w->layout, w->K));
  W4A8_CHECK(check_aligned(fn, "weight->packed", w->packed, 16));
  W4A8_CHECK(check_aligned(fn, "weight->block_scale", w->block_scale, 2));
  if (w->tensor_scale) W4A8_CHECK(check_aligned(fn, "weight->tensor_scale", w->tensor_scale, 4));
  if (w->bias) W4A8_CHECK(check_aligned(fn, "weight->bias", w->bias, 2));
  if (w->fp8 < W4A8_FP8_NONE || w->fp8 > W4A8_FP8_FAST)
    return fail(W4A8_STATUS_INVALID_VALUE, fn, "weight->fp8=%d is not a w4a8_fp8_mode value (0 to 4)", w->fp8);
  W4A8_CHECK(detail::check_overlap(fn, w));
  if (w->fp8 != W4A8_FP8_NONE && (w->fp8_shift < -64 || w->fp8_shift > 64))
    return fail(W4A8_STATUS_INVALID_VALUE, fn, "weight->fp8_shift=%d outside [-64, 64] (set by w4a8_prepare_fp8)",
                w->fp8_shift);
  return W4A8_STATUS_SUCCESS;
}

w4a8_status check_gemm_common(const char* fn, const w4a8_weight* w, const void* y, int64_t M,
                              float alpha) {
  W4A8_CHECK(check_weight(fn, w));
  W4A8_CHECK(check_dim(fn, "M", M));
  W4A8_CHECK(check_aligned(fn, "y_bf16", y, 2));
  if (!std::isfinite(alpha))
    return fail(W4A8_STATUS_INVALID_VALUE, fn, "alpha=%g must be finite", alpha);
  return W4A8_STATUS_SUCCESS;
}

// M, N, K, group size of a problem (the checks every query and entry point shares).
w4a8_status check_problem(const char* fn, int64_t M, int64_t N, int64_t K, int group_size) {
  W4A8_CHECK(check_dim(fn, "M", M));
  W4A8_CHECK(check_dim(fn, "N", N));
  W4A8_CHECK(check_group_size(fn, group_size));
  return check_k(fn, K, group_size);
}

// Everything an FP8-input GEMM call checks (w4a8_gemm, w4a8_gemm_with_kernel/_config).
w4a8_status check_fp8_gemm(const char* fn, const void* x_fp8, const float* row_scale,
                           const w4a8_weight* w, const void* y, int64_t M, float alpha) {
  W4A8_CHECK(check_gemm_common(fn, w, y, M, alpha));
  W4A8_CHECK(check_aligned(fn, "x_fp8", x_fp8, 16));
  return check_aligned(fn, "row_scale", row_scale, 4);
}

kernels::GemmParams make_params(const void* x, const float* row_scale, const w4a8_weight* w,
                                void* y, int64_t M, float alpha) {
  kernels::GemmParams p;
  p.x = static_cast<const uint8_t*>(x);
  p.row_scale = row_scale;
  p.w = static_cast<const uint8_t*>(w->packed);
  p.sb = static_cast<const uint8_t*>(w->block_scale);
  p.s2 = w->tensor_scale;
  p.bias = static_cast<const uint16_t*>(w->bias);
  p.y = static_cast<uint16_t*>(y);
  p.M = M;
  p.N = w->N;
  p.K = w->K;
  p.group = w->group_size;
  p.alpha = alpha;
  p.tiled = w->layout == W4A8_LAYOUT_TILED;
  return p;
}

bool valid_kernel(w4a8_kernel k) {
  return k == W4A8_KERNEL_AUTO || k == W4A8_KERNEL_MMA_EXACT || k == W4A8_KERNEL_NAIVE ||
         k == W4A8_KERNEL_WGMMA_EXACT || k == W4A8_KERNEL_WGMMA_FP8;
}

// Bytes of the FP16 activations a wgmma kernel takes from its prologue (kernels/launch.hpp).
size_t f16p_bytes(int64_t M, int64_t K) {
  return static_cast<size_t>(M) * static_cast<size_t>(kernels::f16p_row_elems(K)) * 2;
}
bool wgmma_candidate(int64_t M, int64_t N, int64_t K, int group) {
  return heuristics::wgmma_candidate(heuristics::Problem{M, N, K, group});
}
// M rounded up to whole token tiles of the exact wgmma configuration `index` (M for any other):
// the FP16 activation rows its TMA map may span (GemmParams::x16_rows), so that the last tile's
// rows past M are not zero-filled by TMA.
int64_t x16_tile_rows(int index, int64_t M) {
  if (index < 0 || !heuristics::is_wgmma(index)) return M;
  const kernels::WgmmaConfig& c = kernels::wgmma_config(heuristics::wgmma_index(index));
  return c.f16_in && !c.fp8 ? (M + c.bm - 1) / c.bm * c.bm : M;
}
// The configuration the workspace queries plan for: the one AUTO picks on an H100 with a
// workspace (the queries do not know the device), or -1 where no wgmma kernel can run.
int planned_config(int64_t M, int64_t N, int64_t K, int group) {
  if (!wgmma_candidate(M, N, K, group)) return -1;
  heuristics::Device h100;
  h100.wgmma = true;
  return heuristics::choose_config(heuristics::Problem{M, N, K, group}, h100, true);
}
// The FP16 activation region of w4a8_gemm's workspace (0: none needed): the rows of the
// planned configuration; a GPU that picks a taller tile runs with the map ending at M where
// the region is short (prepare_f16_in).
size_t f16_region_bytes(int64_t M, int64_t N, int64_t K, int group) {
  const int planned = planned_config(M, N, K, group);
  return planned < 0 ? 0 : align_up(f16p_bytes(x16_tile_rows(planned, M), K), kWorkspaceAlign);
}
// FP32 split-K partials of configuration `index` (0 for unsplit and mma.sync configurations).
size_t partial_bytes(int index, int64_t M, int64_t N, int64_t K) {
  if (index < 0 || !heuristics::is_wgmma(index)) return 0;
  return align_up(kernels::wgmma_partial_bytes(heuristics::wgmma_index(index), M, N, K), kWorkspaceAlign);
}
// The partials the dispatcher plans for on an H100 (the queries do not know the device; on
// another sm_90 GPU a split configuration that needs more than the caller has runs unsplit).
// Where it would reduce the splits in a cluster, the partials of the workspace twin: a GPU
// with fewer cluster slots than the H100 runs that twin instead.
size_t planned_partial_bytes(int64_t M, int64_t N, int64_t K, int group) {
  const int planned = planned_config(M, N, K, group);
  return planned < 0 ? 0 : partial_bytes(heuristics::workspace_twin(planned), M, N, K);
}
// w4a8_gemm's workspace: FP16 activations, then the partials.
size_t gemm_workspace_bytes(int64_t M, int64_t N, int64_t K, int group) {
  return f16_region_bytes(M, N, K, group) + planned_partial_bytes(M, N, K, group);
}

// What the FP8 path needs of a weight (`what` names the kernel family or configuration asked for):
// prepared by w4a8_prepare_fp8, canonical layout.
w4a8_status check_fp8_ready(const char* fn, const char* what, const w4a8_weight* w) {
  if (w == nullptr || w->fp8 == W4A8_FP8_NONE)
    return fail(W4A8_STATUS_NOT_SUPPORTED, fn,
                "%s (FP8 path) needs a weight prepared by w4a8_prepare_fp8 (weight->fp8 is W4A8_FP8_NONE)", what);
  if (w->layout != W4A8_LAYOUT_CANONICAL)
    return fail(W4A8_STATUS_NOT_SUPPORTED, fn, "%s (FP8 path) reads the canonical weight layout only; got layout=%d",
                what, w->layout);
  return W4A8_STATUS_SUCCESS;
}

// Resolves AUTO and checks the kernel exists; returns the config index (shared index space of
// heuristics::config_name) or -1 for the naive kernel. f16_in: the caller has the workspace
// for activations made by a prologue (the fast wgmma variant, the FP8 path). w: the weight
// (its FP8 preparation and layout), or nullptr for a query without one.
w4a8_status select_kernel(const char* fn, const kernels::GemmParams& p, w4a8_kernel kernel,
                          const heuristics::Device& dev, bool f16_in, int* index,
                          const w4a8_weight* w = nullptr) {
  if (kernel == W4A8_KERNEL_NAIVE) {
    *index = -1;
    return W4A8_STATUS_SUCCESS;
  }
  if (!valid_kernel(kernel))
    return fail(W4A8_STATUS_INVALID_VALUE, fn, "kernel=%d is not a w4a8_kernel value",
                static_cast<int>(kernel));
  heuristics::Problem prob;
  prob.M = p.M;
  prob.N = p.N;
  prob.K = p.K;
  prob.group = p.group;
  const bool fast_acc = w && w->fp8 == W4A8_FP8_FAST;  // the FP8 path without promotion (w4a8.h)
  // The wgmma kernels (both paths) need an sm_90 GPU, an sm_90a build and K % 32 == 0.
  const char* wgmma_name = kernel == W4A8_KERNEL_WGMMA_EXACT ? "W4A8_KERNEL_WGMMA_EXACT" : "W4A8_KERNEL_WGMMA_FP8";
  if ((kernel == W4A8_KERNEL_WGMMA_EXACT || kernel == W4A8_KERNEL_WGMMA_FP8) && !dev.wgmma)
    return fail(W4A8_STATUS_NOT_SUPPORTED, fn,
                "%s needs an sm_90 GPU and a build with sm_90a; this is sm_%d with CUDA architectures [%s]",
                wgmma_name, dev.cc, W4A8_CUDA_ARCHS_STRING);
  if ((kernel == W4A8_KERNEL_WGMMA_EXACT || kernel == W4A8_KERNEL_WGMMA_FP8) && !heuristics::wgmma_fits(prob))
    return fail(W4A8_STATUS_NOT_SUPPORTED, fn,
                "%s needs K %% 32 == 0 (TMA rows of whole 16-byte units); got K=%lld", wgmma_name,
                static_cast<long long>(p.K));
  if (kernel == W4A8_KERNEL_WGMMA_EXACT) {
    *index = heuristics::choose_wgmma_config(prob, dev, f16_in);
  } else if (kernel == W4A8_KERNEL_WGMMA_FP8) {
    W4A8_CHECK(check_fp8_ready(fn, "W4A8_KERNEL_WGMMA_FP8", w));
    if (!f16_in)
      return fail(W4A8_STATUS_NOT_SUPPORTED, fn,
                  "W4A8_KERNEL_WGMMA_FP8 needs the workspace (w4a8_gemm_workspace_size() bytes) for its "
                  "permuted FP8 activations; got NULL/0");
    *index = heuristics::choose_fp8_config(prob, dev, fast_acc);
  } else if (kernel == W4A8_KERNEL_MMA_EXACT) {
    *index = heuristics::choose_mma_config(prob, dev);
  } else {
    *index = heuristics::choose_config(prob, dev, f16_in);
    // An EXACT weight runs the FP8 path where the prefill kernel would run and the FP8 path is
    // the faster (same products; twice the tensor rate), and so does one whose caller ACCEPTED
    // its rounding, or also the tensor cores' own summation (FAST: its kernels without promotion,
    // from M = 128).
    if (w && (w->fp8 == W4A8_FP8_EXACT || w->fp8 == W4A8_FP8_ACCEPTED || w->fp8 == W4A8_FP8_FAST) &&
        w->layout == W4A8_LAYOUT_CANONICAL && heuristics::fp8_preferred(prob, fast_acc) && *index >= 0 &&
        heuristics::config_f16_in(*index)) {
      const int f = heuristics::choose_fp8_config(prob, dev, fast_acc);
      if (f >= 0) *index = f;
    }
  }
  if (*index < 0)
    return fail(W4A8_STATUS_NOT_SUPPORTED, fn, "no kernel configuration for M=%lld N=%lld K=%lld group=%d",
                static_cast<long long>(p.M), static_cast<long long>(p.N),
                static_cast<long long>(p.K), p.group);
  return W4A8_STATUS_SUCCESS;
}

// Whether the GEMM kernel is launched as a programmatic dependent of the preceding kernel
// (sm_90+): the mma kernel streams its first weights while that kernel finishes (it waits for
// it before it reads activations or writes outputs), the wgmma kernel only hides its launch.
// Allowed where that kernel does not write the weights: our own prologue or quantizer
// (after_ours; it lets the GEMM launch only once it has waited for the kernels before the
// call, unless the weight is `overlap`, see prologue_pdl), or any kernel for a weight marked
// `overlap` (w4a8.h). A dependent launches only once every CTA of the kernel before it has
// started, so its waiting CTAs take only what that kernel leaves free.
bool gemm_pdl(const w4a8_weight* w, const heuristics::Device& dev, bool after_ours) {
  return dev.cc >= 90 && (after_ours || w->overlap == 1);
}
// How a call's prologue (w4a8_gemm's FP8 -> FP16 / permuted FP8 pass) or quantizer
// (w4a8_linear_bf16) is launched (launch.hpp Pdl). It waits before it reads or writes
// anything, so as a programmatic dependent it only hides its launch behind the preceding
// kernel (w4a8_gemm's prologue, for an `overlap` weight, also releases the GEMM before its
// wait: kDependentEarly; a quantizer no longer does, see session 22 below). But its CTAs then
// land on the SMs that kernel leaves free, typically a few, and wait there stacked: fine for
// the streaming prologue (H100, session 9, w4a8_gemm at M = 50..968, same process against the
// build before: 1-12% faster on every wgmma row but one, 32768x2048 M = 968, equal), costly
// for a quantizer of many rows (a row reduction per CTA: 16384x2048 M = 128 fused 25.0 vs
// 22.0 us, 2048x16384 M = 16 15.6 vs 13.6, with the GEMM after it early too), a gain for a
// small one (M = 1: 16384x2048 10.18 vs 10.57 us, 4096x1024 4.39 vs 4.89;
// M = 16 on K = 2048: 16384x2048 11.93 vs 12.30). Hence quantizers of up to kTinyQuantizer
// values (128 KB of BF16) start early on any weight, larger ones in stream order (until
// session 22 also early for `overlap` weights, as early dependents: see below) unless they
// spread (session 15).
// (Session 12 raised it from 32768, same process on the rows it moves: 4096x1024 M = 50 fused
// 6.94 vs 7.21 us, 2048x2048 M = 32 5.89 vs 6.05, 1024x4096 M = 16 5.55 vs 5.62; 131072 was
// worse on the rows that would add: 4096x1024 M = 128 11.29 vs 10.31, 1024x4096 M = 32 6.96 vs
// 6.54, 2048x2048 M = 64 7.92 vs 7.53.)
// Session 15: the quantizer of up to 64 rows (the decode kernels' FP8 one) keeps its CTAs one
// per SM when launched as a dependent (kernels::quantize_activation_spreads), so they no longer
// stack on the few SMs the kernel before leaves free, and then starts early at any K it takes
// (<= 32768). H100, same process, base / new / base (bench/results/ab-quantizer-spread-h100-2026-11-26.txt), fused
// calls at M = 16..64 on the six PERF.md shapes: 22 of 24 faster, up to 6.9%, e.g. 2048x16384
// M = 16 14.15 -> 13.59 us, 1024x4096 M = 50 7.65 -> 7.12 (16384x2048 M = 50 +1.8%); the fused
// pi0.5 traces 2.8-4.4% faster (14.68 -> 14.26 ms with `overlap` weights, where only the
// spreading applies: 3.3% of it in a run with the spreading alone).
// quantizer_values: the quantizer's M * K; a prologue passes none (-1: always dependent, and
// early for an `overlap` weight).
// spreads: the quantizer keeps its CTAs one per SM as a dependent.
// Session 22: a quantizer no longer releases the GEMM before its own wait for an `overlap` weight;
// only the prologue of w4a8_gemm does. The benchmark's tables had measured this all along: their
// "weights not marked overlap" trace rows run the fused calls (w4a8_linear_bf16, what W4A8Linear
// runs) exactly as this rule does (the flag reaches no kernel, and the fused call's GEMM is a
// programmatic dependent either way: only the quantizer's launch differs), in the same process on
// the same weights as the rows with `overlap`. Per-layer pi0.5 trace on the H100, fused column,
// with / without the early release, ms: session 21 13.55 / 13.25, 20 13.61 / 13.28, 19 13.64 /
// 13.46, 18 14.16 / 13.76, 17 14.24 / 13.86, 15 14.19 / 13.76, 14 14.72 / 14.24, 13 14.85 / 14.38,
// 12 14.86 / 14.25 (bench/results/h100-*-s*.csv): the early release was slower in every one, by
// 0.18-0.61 ms (1.3-4.3%); the trace with q/k/v and gate/up fused was even (+-0.07 ms since session
// 12). Why is not known yet (a quantizer that lets the GEMM launch before its predecessor ends puts
// three kernels' CTAs on the SMs at once). Session 23, H100, two runs: 13.32 / 13.42 ms with
// `overlap` against 13.22 / 13.28 without (the two rows now launch alike: run order only).
constexpr int64_t kTinyQuantizer = 65536;
kernels::Pdl prologue_pdl(const w4a8_weight* w, const heuristics::Device& dev, int64_t quantizer_values = -1,
                          bool spreads = false) {
  if (dev.cc < 90) return kernels::Pdl::kSerial;
  if (w->overlap == 1 && quantizer_values < 0) return kernels::Pdl::kDependentEarly;
  return quantizer_values <= kTinyQuantizer || spreads ? kernels::Pdl::kDependent : kernels::Pdl::kSerial;
}

// pdl (gemm_pdl): for the mma and wgmma kernels; the naive one always waits its turn.
w4a8_status launch_gemm(const char* fn, const kernels::GemmParams& p, int index,
                        const heuristics::Device& dev, cudaStream_t stream, bool pdl = false) {
  const cudaError_t err =
      index < 0 ? kernels::launch_naive(p, stream)
      : heuristics::is_wgmma(index)
          ? kernels::launch_wgmma(heuristics::wgmma_index(index), p, dev.ordinal, dev.sm_count, stream, pdl)
          : kernels::launch_mma(index, p, dev.sm_count, stream, pdl);
  if (err != cudaSuccess) return cuda_fail(fn, "kernel launch", err);
  return detail::ok();
}

// The workspace of an FP8-input GEMM: NULL/0 (then the wgmma kernels convert activations
// themselves, slower), or at least w4a8_gemm_workspace_size() bytes, 16-byte aligned.
w4a8_status check_gemm_workspace(const char* fn, const void* workspace, size_t workspace_size,
                                 size_t need, bool* usable) {
  *usable = false;
  if (workspace == nullptr && workspace_size == 0) return W4A8_STATUS_SUCCESS;
  W4A8_CHECK(check_aligned(fn, "workspace", workspace, 16));
  if (workspace_size < need)
    return fail(W4A8_STATUS_WORKSPACE_TOO_SMALL, fn,
                "workspace_size=%zu is below the %zu bytes w4a8_gemm_workspace_size() asks for "
                "(or pass NULL and 0)",
                workspace_size, need);
  *usable = need > 0;
  return W4A8_STATUS_SUCCESS;
}

// The TMA map's rows over FP16 activations in a region of `region_bytes` (x16_tile_rows where
// they fit, else M).
int64_t x16_rows_in(int index, int64_t M, int64_t K, size_t region_bytes) {
  const int64_t rows = x16_tile_rows(index, M);
  return f16p_bytes(rows, K) <= region_bytes ? rows : M;
}

// Runs the prologue a wgmma configuration with prepared activations needs (FP8 -> permuted
// FP16 for the exact path, permuted FP8 for the FP8 path, into the workspace) and points the
// launch at it; the FP8 path also takes the weight's shift. pdl: prologue_pdl. region_bytes:
// the workspace bytes for the activations.
w4a8_status prepare_f16_in(const char* fn, kernels::GemmParams* p, int index, const w4a8_weight* w,
                           void* workspace, size_t region_bytes, cudaStream_t stream, kernels::Pdl pdl) {
  cudaError_t err;
  if (heuristics::config_fp8(index)) {
    uint8_t* x8p = static_cast<uint8_t*>(workspace);
    err = kernels::launch_fp8_to_fp8p(p->x, x8p, p->M, p->K, stream, pdl);
    p->x8p = x8p;
    p->fp8 = true;
    p->fp8_shift = w->fp8_shift;
  } else {
    uint16_t* x16 = static_cast<uint16_t*>(workspace);
    err = kernels::launch_fp8_to_f16p(p->x, x16, p->M, p->K, stream, pdl, p->tiled);
    p->x16 = x16;
    p->x16_rows = x16_rows_in(index, p->M, p->K, region_bytes);
  }
  if (err != cudaSuccess) return cuda_fail(fn, "kernel launch", err);
  return W4A8_STATUS_SUCCESS;
}

// Points a split-K configuration at its partials in `room` (bytes of workspace left), or,
// where they do not fit (a device whose plan differs from the H100's the queries assume),
// switches to the same tile unsplit.
void place_partials(int* index, kernels::GemmParams* p, uint8_t* room, size_t room_bytes) {
  if (partial_bytes(*index, p->M, p->N, p->K) > room_bytes) *index = heuristics::unsplit(*index);
  p->partial = partial_bytes(*index, p->M, p->N, p->K) ? reinterpret_cast<float*>(room) : nullptr;
}

size_t linear_act_bytes(int64_t M, int64_t N, int64_t K, int group) {
  const size_t fp8 = align_up(static_cast<size_t>(M) * static_cast<size_t>(K), kWorkspaceAlign);
  const size_t f16 = f16_region_bytes(M, N, K, group);
  return fp8 > f16 ? fp8 : f16;
}
// w4a8_linear_bf16's workspace: the quantized activations (linear_act_bytes), the FP32 row
// scales, then split-K partials where planned, each 256-byte aligned. Offset of the partials.
size_t linear_partials_offset(int64_t M, int64_t N, int64_t K, int group) {
  return linear_act_bytes(M, N, K, group) + align_up(static_cast<size_t>(M) * sizeof(float), kWorkspaceAlign);
}

w4a8_status gemm_impl(const char* fn, const void* x_fp8, const float* row_scale,
                      const w4a8_weight* weight, void* y_bf16, int64_t M, float alpha,
                      w4a8_kernel kernel, void* workspace, size_t workspace_size,
                      cudaStream_t stream) {
  if (!valid_kernel(kernel))
    return fail(W4A8_STATUS_INVALID_VALUE, fn, "kernel=%d is not a w4a8_kernel value",
                static_cast<int>(kernel));
  W4A8_CHECK(check_fp8_gemm(fn, x_fp8, row_scale, weight, y_bf16, M, alpha));
  bool f16 = false;
  W4A8_CHECK(check_gemm_workspace(fn, workspace, workspace_size,
                                  gemm_workspace_bytes(M, weight->N, weight->K, weight->group_size), &f16));
  heuristics::Device dev;
  W4A8_CHECK(current_device(fn, &dev));
  kernels::GemmParams p = make_params(x_fp8, row_scale, weight, y_bf16, M, alpha);
  int index = -1;
  W4A8_CHECK(select_kernel(fn, p, kernel, dev, f16, &index, weight));
  bool prologue = false;
  if (index >= 0 && heuristics::config_f16_in(index)) {
    const size_t f16_bytes = f16_region_bytes(M, weight->N, weight->K, weight->group_size);
    place_partials(&index, &p, static_cast<uint8_t*>(workspace) + f16_bytes, workspace_size - f16_bytes);
    W4A8_CHECK(prepare_f16_in(fn, &p, index, weight, workspace, f16_bytes, stream, prologue_pdl(weight, dev)));
    prologue = true;
  }
  return launch_gemm(fn, p, index, dev, stream, gemm_pdl(weight, dev, prologue));
}

// w4a8_prepack_weight (from = CANONICAL) and w4a8_unprepack_weight (from = TILED).
w4a8_status convert_layout(const char* fn, const w4a8_weight* in, int from, void* out_packed,
                           void* out_scales, cudaStream_t stream) {
  W4A8_CHECK(check_weight(fn, in));
  W4A8_CHECK(check_aligned(fn, "packed output", out_packed, 16));
  W4A8_CHECK(check_aligned(fn, "block_scale output", out_scales, 2));
  W4A8_CHECK(detail::check_conversion(fn, in, from, out_packed, out_scales));
  const int64_t N = in->N, K = in->K;
  const int G = in->group_size;
  const bool to_tiled = from == W4A8_LAYOUT_CANONICAL;
  heuristics::Device dev;
  W4A8_CHECK(current_device(fn, &dev));
  const cudaError_t err = kernels::launch_convert_layout(
      static_cast<const uint8_t*>(in->packed), static_cast<const uint8_t*>(in->block_scale),
      static_cast<uint8_t*>(out_packed), static_cast<uint8_t*>(out_scales), N, K, G, to_tiled, dev.sm_count, stream);
  if (err != cudaSuccess) return cuda_fail(fn, "kernel launch", err);
  return detail::ok();
}

// w4a8_gemm_kernel_name / w4a8_weight_kernel_name after their argument checks: what select_kernel
// picks with the queried workspace, on the current device if there is one, else on the H100
// defaults (no device is needed to ask).
w4a8_status kernel_name(const char* fn, int64_t M, int64_t N, int64_t K, int group, w4a8_kernel kernel,
                        const w4a8_weight* w, const char** name) {
  if (kernel == W4A8_KERNEL_NAIVE) {
    *name = "naive_reference";
    return detail::ok();
  }
  heuristics::Device dev;
  if (current_device(fn, &dev) != W4A8_STATUS_SUCCESS) {
    dev = heuristics::Device();
    dev.wgmma = kHasSm90a;
  }
  kernels::GemmParams p;
  p.M = M;
  p.N = N;
  p.K = K;
  p.group = group;
  int index = -1;
  W4A8_CHECK(select_kernel(fn, p, kernel, dev, true, &index, w));
  *name = heuristics::config_name(index);
  return detail::ok();
}

// w4a8_linear_bf16 and, with glu = its act (w4a8_glu_act), w4a8_linear_bf16_glu.
w4a8_status linear_bf16(const char* fn, const void* x_bf16, const w4a8_weight* weight, int glu, void* y_bf16,
                        int64_t M, float alpha, void* workspace, size_t workspace_size, w4a8_stream_t stream) {
  W4A8_CHECK(check_gemm_common(fn, weight, y_bf16, M, alpha));
  W4A8_CHECK(check_aligned(fn, "x_bf16", x_bf16, 16));
  size_t need = 0;
  W4A8_CHECK(w4a8_linear_workspace_size(M, weight->N, weight->K, weight->group_size, &need));
  W4A8_CHECK(check_aligned(fn, "workspace", workspace, 16));
  if (workspace_size < need)
    return fail(W4A8_STATUS_WORKSPACE_TOO_SMALL, fn,
                "workspace_size=%zu is below the %zu bytes w4a8_linear_workspace_size() asks for",
                workspace_size, need);
  heuristics::Device dev;
  W4A8_CHECK(current_device(fn, &dev));
  uint8_t* xq = static_cast<uint8_t*>(workspace);
  const size_t act_bytes = linear_act_bytes(M, weight->N, weight->K, weight->group_size);
  float* row_scale = reinterpret_cast<float*>(xq + act_bytes);
  kernels::GemmParams p = make_params(xq, row_scale, weight, y_bf16, M, alpha);
  p.glu = glu;
  int index = -1;
  W4A8_CHECK(select_kernel(fn, p, W4A8_KERNEL_AUTO, dev, true, &index, weight));
  const cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
  const uint16_t* xb = static_cast<const uint16_t*>(x_bf16);
  const bool f16_in = heuristics::config_f16_in(index);
  const kernels::Pdl quantizer_pdl =
      prologue_pdl(weight, dev, M * weight->K, !f16_in && kernels::quantize_activation_spreads(M, weight->K));
  cudaError_t err;
  if (f16_in) {  // quantize straight into the wgmma kernel's layout
    const size_t head = linear_partials_offset(M, weight->N, weight->K, weight->group_size);
    place_partials(&index, &p, xq + head, workspace_size - head);
    p.x = nullptr;
    if (heuristics::config_fp8(index)) {
      p.x8p = xq;
      p.fp8 = true;
      p.fp8_shift = weight->fp8_shift;
      err = kernels::launch_quantize_activation_fp8p(xb, xq, row_scale, M, weight->K, s, quantizer_pdl);
    } else {
      p.x16 = reinterpret_cast<uint16_t*>(xq);
      p.x16_rows = x16_rows_in(index, M, weight->K, act_bytes);
      err = kernels::launch_quantize_activation_f16p(xb, reinterpret_cast<uint16_t*>(xq), row_scale, M, weight->K, s,
                                                     quantizer_pdl, p.tiled);
    }
  } else {
    err = kernels::launch_quantize_activation(xb, xq, row_scale, M, weight->K, s, quantizer_pdl);
  }
  if (err != cudaSuccess) return cuda_fail(fn, "kernel launch", err);
  // The GEMM as a programmatic dependent of the quantizer at every M: its CTAs launch, and the
  // mma kernel streams its first weights, while the quantizer runs; both read activations only
  // after their waits. (Until session 12 only up to 64 rows; H100, same process, fused calls:
  // 4096x1024 M = 128 9.61 vs 10.26 us, 2048x16384 M = 128 27.45 vs 28.97, 4096x1024 M = 968
  // 18.51 vs 19.32; every row at M = 100..968 faster, bench/results/ab-gemm-after-quantizer-*.)
  return launch_gemm(fn, p, index, dev, s, gemm_pdl(weight, dev, true));
}
}  // namespace
}  // namespace w4a8

using namespace w4a8;

extern "C" {

w4a8_status w4a8_quantize_activation_fp8(const void* x_bf16, void* x_fp8, float* row_scale,
                                         int64_t M, int64_t K, w4a8_stream_t stream) {
  const char* fn = "w4a8_quantize_activation_fp8";
  W4A8_CHECK(check_dim(fn, "M", M));
  W4A8_CHECK(check_k(fn, K, 16));
  W4A8_CHECK(check_aligned(fn, "x_bf16", x_bf16, 16));
  W4A8_CHECK(check_aligned(fn, "x_fp8", x_fp8, 16));
  W4A8_CHECK(check_aligned(fn, "row_scale", row_scale, 4));
  heuristics::Device dev;
  W4A8_CHECK(current_device(fn, &dev));
  const cudaError_t err = kernels::launch_quantize_activation(
      static_cast<const uint16_t*>(x_bf16), static_cast<uint8_t*>(x_fp8), row_scale, M, K,
      reinterpret_cast<cudaStream_t>(stream));
  if (err != cudaSuccess) return cuda_fail(fn, "kernel launch", err);
  return detail::ok();
}

w4a8_status w4a8_quantize_weight_nvfp4(const void* w_bf16, void* w_packed, void* w_block_scale,
                                       float* w_tensor_scale, int64_t N, int64_t K,
                                       int group_size, w4a8_stream_t stream) {
  const char* fn = "w4a8_quantize_weight_nvfp4";
  W4A8_CHECK(check_dim(fn, "N", N));
  W4A8_CHECK(check_group_size(fn, group_size));
  W4A8_CHECK(check_k(fn, K, group_size));
  W4A8_CHECK(check_aligned(fn, "w_bf16", w_bf16, 16));
  W4A8_CHECK(check_aligned(fn, "w_packed", w_packed, 16));
  W4A8_CHECK(check_not_null(fn, "w_block_scale", w_block_scale));
  W4A8_CHECK(check_aligned(fn, "w_tensor_scale", w_tensor_scale, 4));
  heuristics::Device dev;
  W4A8_CHECK(current_device(fn, &dev));
  const cudaError_t err = kernels::launch_quantize_weight(
      static_cast<const uint16_t*>(w_bf16), static_cast<uint8_t*>(w_packed),
      static_cast<uint8_t*>(w_block_scale), w_tensor_scale, N, K, group_size,
      reinterpret_cast<cudaStream_t>(stream));
  if (err != cudaSuccess) return cuda_fail(fn, "kernel launch", err);
  return detail::ok();
}

w4a8_status w4a8_tiled_weight_size(int64_t N, int64_t K, int group_size, size_t* packed_bytes,
                                   size_t* block_scale_bytes) {
  const char* fn = "w4a8_tiled_weight_size";
  W4A8_CHECK(check_dim(fn, "N", N));
  W4A8_CHECK(check_group_size(fn, group_size));
  W4A8_CHECK(check_k(fn, K, group_size));
  W4A8_CHECK(detail::check_layout(fn, W4A8_LAYOUT_TILED, K));
  W4A8_CHECK(check_not_null(fn, "packed_bytes", packed_bytes));
  W4A8_CHECK(check_not_null(fn, "block_scale_bytes", block_scale_bytes));
  *packed_bytes = static_cast<size_t>(tiled_packed_bytes(N, K));
  *block_scale_bytes = static_cast<size_t>(tiled_scale_bytes(N, K, group_size));
  return detail::ok();
}

w4a8_status w4a8_prepack_weight(const w4a8_weight* canonical, void* tiled_packed, void* tiled_block_scale,
                                w4a8_stream_t stream) {
  return convert_layout("w4a8_prepack_weight", canonical, W4A8_LAYOUT_CANONICAL, tiled_packed,
                        tiled_block_scale, reinterpret_cast<cudaStream_t>(stream));
}

w4a8_status w4a8_unprepack_weight(const w4a8_weight* tiled, void* packed, void* block_scale,
                                  w4a8_stream_t stream) {
  return convert_layout("w4a8_unprepack_weight", tiled, W4A8_LAYOUT_TILED, packed, block_scale,
                        reinterpret_cast<cudaStream_t>(stream));
}

w4a8_status w4a8_gemm_workspace_size(int64_t M, int64_t N, int64_t K, int group_size,
                                     size_t* bytes) {
  const char* fn = "w4a8_gemm_workspace_size";
  W4A8_CHECK(check_problem(fn, M, N, K, group_size));
  W4A8_CHECK(check_not_null(fn, "bytes", bytes));
  // The kernels reduce inside a CTA; only the wgmma kernels want room for FP16 activations.
  *bytes = gemm_workspace_bytes(M, N, K, group_size);
  return detail::ok();
}

w4a8_status w4a8_linear_workspace_size(int64_t M, int64_t N, int64_t K, int group_size,
                                       size_t* bytes) {
  const char* fn = "w4a8_linear_workspace_size";
  W4A8_CHECK(check_problem(fn, M, N, K, group_size));
  W4A8_CHECK(check_not_null(fn, "bytes", bytes));
  // The quantized activations (FP8 [M, K], or for the wgmma kernels FP16 [M, K rounded up
  // to 64]), the FP32 row scales, then split-K partials where planned, each 256-byte aligned.
  *bytes = linear_partials_offset(M, N, K, group_size) + planned_partial_bytes(M, N, K, group_size);
  return detail::ok();
}

w4a8_status w4a8_gemm(const void* x_fp8, const float* row_scale, const w4a8_weight* weight,
                      void* y_bf16, int64_t M, float alpha, void* workspace,
                      size_t workspace_size, w4a8_stream_t stream) {
  return gemm_impl("w4a8_gemm", x_fp8, row_scale, weight, y_bf16, M, alpha, W4A8_KERNEL_AUTO,
                   workspace, workspace_size, reinterpret_cast<cudaStream_t>(stream));
}

w4a8_status w4a8_gemm_with_kernel(const void* x_fp8, const float* row_scale,
                                  const w4a8_weight* weight, void* y_bf16, int64_t M,
                                  float alpha, w4a8_kernel kernel, void* workspace,
                                  size_t workspace_size, w4a8_stream_t stream) {
  return gemm_impl("w4a8_gemm_with_kernel", x_fp8, row_scale, weight, y_bf16, M, alpha, kernel,
                   workspace, workspace_size, reinterpret_cast<cudaStream_t>(stream));
}

w4a8_status w4a8_linear_bf16(const void* x_bf16, const w4a8_weight* weight, void* y_bf16,
                             int64_t M, float alpha, void* workspace, size_t workspace_size,
                             w4a8_stream_t stream) {
  return linear_bf16("w4a8_linear_bf16", x_bf16, weight, 0, y_bf16, M, alpha, workspace, workspace_size, stream);
}

w4a8_status w4a8_linear_bf16_glu(const void* x_bf16, const w4a8_weight* weight, w4a8_glu_act act,
                                 void* y_bf16, int64_t M, float alpha, void* workspace,
                                 size_t workspace_size, w4a8_stream_t stream) {
  const char* fn = "w4a8_linear_bf16_glu";
  if (act != W4A8_GLU_GELU_TANH && act != W4A8_GLU_SILU)
    return fail(W4A8_STATUS_INVALID_VALUE, fn, "act=%d is not a w4a8_glu_act value (1 GELU tanh, 2 SiLU)",
                static_cast<int>(act));
  W4A8_CHECK(check_not_null(fn, "weight", weight));
  if (weight->N % 16 != 0)
    return fail(W4A8_STATUS_INVALID_VALUE, fn,
                "weight->N=%lld: a gated weight holds gate and up rows interleaved in blocks of 8, so N must be a "
                "multiple of 16",
                static_cast<long long>(weight->N));
  return linear_bf16(fn, x_bf16, weight, static_cast<int>(act), y_bf16, M, alpha, workspace, workspace_size, stream);
}

w4a8_status w4a8_gemm_kernel_name(int64_t M, int64_t N, int64_t K, int group_size,
                                  w4a8_kernel kernel, const char** name) {
  const char* fn = "w4a8_gemm_kernel_name";
  W4A8_CHECK(check_problem(fn, M, N, K, group_size));
  W4A8_CHECK(check_not_null(fn, "name", name));
  return kernel_name(fn, M, N, K, group_size, kernel, nullptr, name);
}

w4a8_status w4a8_weight_kernel_name(const w4a8_weight* weight, int64_t M, w4a8_kernel kernel, const char** name) {
  const char* fn = "w4a8_weight_kernel_name";
  W4A8_CHECK(check_not_null(fn, "weight", weight));
  W4A8_CHECK(check_problem(fn, M, weight->N, weight->K, weight->group_size));
  W4A8_CHECK(check_not_null(fn, "name", name));
  return kernel_name(fn, M, weight->N, weight->K, weight->group_size, kernel, weight, name);
}

w4a8_status w4a8_prepare_fp8(w4a8_weight* weight, w4a8_fp8_report* report, w4a8_stream_t stream) {
  const char* fn = "w4a8_prepare_fp8";
  W4A8_CHECK(detail::check_fp8_prepare(fn, weight));
  W4A8_CHECK(check_weight(fn, weight));
  heuristics::Device dev;
  W4A8_CHECK(current_device(fn, &dev));
  const cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
  // 1 KB of stream-ordered scratch (cudaMallocAsync: no device-wide synchronization), freed on
  // the stream after the copy; then one wait for this stream.
  uint32_t* mask = nullptr;
  cudaError_t err = cudaMallocAsync(reinterpret_cast<void**>(&mask), 256 * sizeof(uint32_t), s);
  if (err != cudaSuccess) return cuda_fail(fn, "cudaMallocAsync (1 KB)", err);
  uint32_t host[256];
  err = cudaMemsetAsync(mask, 0, 256 * sizeof(uint32_t), s);
  if (err == cudaSuccess)
    err = kernels::launch_fp8_scale_usage(static_cast<const uint8_t*>(weight->packed),
                                          static_cast<const uint8_t*>(weight->block_scale), weight->N, weight->K,
                                          weight->group_size, mask, s);
  if (err == cudaSuccess) err = cudaMemcpyAsync(host, mask, sizeof(host), cudaMemcpyDeviceToHost, s);
  const cudaError_t free_err = cudaFreeAsync(mask, s);
  if (err == cudaSuccess) err = free_err;
  if (err == cudaSuccess) err = cudaStreamSynchronize(s);
  if (err != cudaSuccess) return cuda_fail(fn, "usage pass", err);
  const w4a8_fp8_report r = ref::fp8_analyze(host);
  weight->fp8 = r.exact ? W4A8_FP8_EXACT : W4A8_FP8_LOSSY;
  weight->fp8_shift = r.shift;
  if (report) *report = r;
  return detail::ok();
}

int w4a8_gemm_config_count(void) { return heuristics::config_count(); }

const char* w4a8_gemm_config_name(int index) {
  if (index < 0 || index >= heuristics::config_count()) return nullptr;
  return heuristics::config_name(index);
}

w4a8_status w4a8_gemm_with_config(const void* x_fp8, const float* row_scale,
                                  const w4a8_weight* weight, void* y_bf16, int64_t M, float alpha,
                                  int index, void* workspace, size_t workspace_size,
                                  w4a8_stream_t stream) {
  const char* fn = "w4a8_gemm_with_config";
  W4A8_CHECK(check_fp8_gemm(fn, x_fp8, row_scale, weight, y_bf16, M, alpha));
  if (index < 0 || index >= heuristics::config_count())
    return fail(W4A8_STATUS_INVALID_VALUE, fn, "index=%d must be in [0, %d)", index,
                heuristics::config_count());
  const char* name = heuristics::config_name(index);
  const bool wgmma = heuristics::is_wgmma(index);
  const bool k32 = wgmma || kernels::mma_config(index).vec == 16;
  if (heuristics::config_group(index) != weight->group_size || (k32 && weight->K % 32 != 0))
    return fail(W4A8_STATUS_NOT_SUPPORTED, fn,
                "configuration %s needs group_size=%d%s; got group_size=%d, K=%lld", name,
                heuristics::config_group(index), k32 ? " and K % 32 == 0" : "",
                weight->group_size, static_cast<long long>(weight->K));
  if (!k32 && weight->layout == W4A8_LAYOUT_TILED)  // the 8-byte-piece kernels serve K % 32 != 0 only
    return fail(W4A8_STATUS_NOT_SUPPORTED, fn,
                "configuration %s reads the canonical weight layout only; got W4A8_LAYOUT_TILED", name);
  const bool f16 = heuristics::config_f16_in(index), fp8 = heuristics::config_fp8(index);
  if (fp8) W4A8_CHECK(check_fp8_ready(fn, name, weight));
  const size_t act_bytes = fp8 ? static_cast<size_t>(M) * static_cast<size_t>(kernels::fp8p_row_bytes(weight->K))
                               : f16p_bytes(M, weight->K);
  size_t f16_bytes = f16 ? align_up(act_bytes, kWorkspaceAlign) : 0;
  const size_t partials = partial_bytes(index, M, weight->N, weight->K);
  if (f16 && !fp8) {  // the activations in whole token tiles where the workspace holds them (GemmParams::x16_rows)
    const size_t tiles = align_up(f16p_bytes(x16_tile_rows(index, M), weight->K), kWorkspaceAlign);
    if (workspace_size >= tiles + partials) f16_bytes = tiles;
  }
  if (f16) {
    const size_t need = f16_bytes + partials;
    W4A8_CHECK(check_aligned(fn, "workspace", workspace, 16));
    if (workspace_size < need)
      return fail(W4A8_STATUS_WORKSPACE_TOO_SMALL, fn,
                  "configuration %s needs a workspace of %zu bytes for %s activations and split-K "
                  "partials; got %zu",
                  name, need, fp8 ? "permuted FP8" : "FP16", workspace_size);
  }
  heuristics::Device dev;
  W4A8_CHECK(current_device(fn, &dev));
  if (wgmma && !dev.wgmma)
    return fail(W4A8_STATUS_NOT_SUPPORTED, fn,
                "configuration %s needs an sm_90 GPU and a build with sm_90a; this is sm_%d "
                "with CUDA architectures [%s]",
                name, dev.cc, W4A8_CUDA_ARCHS_STRING);
  if (!wgmma && kernels::mma_config(index).cs > 1 && (dev.cc < 90 || kernels::mma_config_runnable(index) != cudaSuccess)) {
    cudaGetLastError();
    return fail(W4A8_STATUS_NOT_SUPPORTED, fn,
                "configuration %s splits K over a thread-block cluster: needs an sm_90+ GPU and code built for "
                "it; this is sm_%d with CUDA architectures [%s]",
                name, dev.cc, W4A8_CUDA_ARCHS_STRING);
  }
  kernels::GemmParams p = make_params(x_fp8, row_scale, weight, y_bf16, M, alpha);
  const cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
  if (f16) {  // the partials fit (checked above): place_partials keeps the configuration
    place_partials(&index, &p, static_cast<uint8_t*>(workspace) + f16_bytes, workspace_size - f16_bytes);
    W4A8_CHECK(prepare_f16_in(fn, &p, index, weight, workspace, f16_bytes, s, prologue_pdl(weight, dev)));
  }
  return launch_gemm(fn, p, index, dev, s, gemm_pdl(weight, dev, f16));
}

}  // extern "C"
