/*
 * w4a8: FP8 (E4M3, per-row dynamic scale) activations x NVFP4 (E2M1, E4M3 block scale per
 * 16 or 32 values, FP32 tensor scale) weights -> BF16 output, FP32 accumulation.
 *
 * This is the library's one narrow door: plain C, raw device pointers, shapes, a workspace
 * and a stream in; a status out. Every front end (the seed's C++ header, the CLI, the
 * TensorRT plugin, the PyTorch ops) goes through these functions.
 *
 * Layouts (all row-major, the same bytes as ModelOpt / compressed-tensors checkpoints):
 *   activation x        BF16  [M, K]
 *   quantized x         E4M3  [M, K]           (1 byte each)
 *   row scale s_a       FP32  [M]              x[m,k] ~= e4m3(xq[m,k]) * s_a[m]
 *   packed weight       uint8 [N, K/2]         low nibble = even k (E2M1 codes)
 *   block scales        E4M3  [N, K/group]     unsigned use, group = 16 or 32
 *   tensor scale s2     FP32  scalar (device)  w[n,k] = e2m1 * e4m3(sb) * s2
 *   bias                BF16  [N]              optional
 *   output y            BF16  [M, N]
 *   y[m,n] = bf16( alpha * s_a[m] * s2 * sum_k e4m3(xq[m,k]) * e2m1(w[n,k]) * sb[n,k/g] + bias[n] )
 *
 * Contracts common to every function:
 *   - Arguments are validated before anything is launched or written; on error nothing the
 *     caller owns is touched, the status says what kind of error, and w4a8_last_error()
 *     says which argument, what was expected and what came.
 *   - No allocation, no synchronization and no host round trip inside a call: every device
 *     entry point can be captured in a CUDA graph. Work is enqueued on `stream`.
 *   - Results are deterministic: the same call on the same data gives the same bits.
 *   - Non-finite inputs (NaN, +-Inf) are not an error (checking would need a host round
 *     trip); they propagate as NaN: a weight tensor with any non-finite element gets
 *     s2 = NaN and every block scale 0x7F (E4M3 NaN), codes 0; an activation row with any
 *     non-finite element gets s_a[m] = NaN and every code 0x7F. The GEMM then writes NaN
 *     for the affected outputs, never silent garbage.
 */
#ifndef W4A8_W4A8_H_
#define W4A8_W4A8_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* cudaStream_t without pulling the CUDA runtime header into every user of the C API. */
typedef struct CUstream_st* w4a8_stream_t;

#if defined(_WIN32)
#define W4A8_API __declspec(dllexport)
#else
#define W4A8_API __attribute__((visibility("default")))
#endif

typedef enum w4a8_status {
  W4A8_STATUS_SUCCESS = 0,
  W4A8_STATUS_INVALID_SHAPE = 1,         /* M, N or K <= 0, or too large */
  W4A8_STATUS_INVALID_GROUP_SIZE = 2,    /* group size not 16 or 32 */
  W4A8_STATUS_K_NOT_MULTIPLE = 3,        /* K not a multiple of the group size (or of 16) */
  W4A8_STATUS_NULL_POINTER = 4,          /* a required pointer is NULL */
  W4A8_STATUS_MISALIGNED_POINTER = 5,    /* a pointer lacks the alignment its argument needs */
  W4A8_STATUS_WORKSPACE_TOO_SMALL = 6,   /* workspace_size below w4a8_*_workspace_size() */
  W4A8_STATUS_UNSUPPORTED_DEVICE = 7,    /* no device, or no kernel image for this GPU */
  W4A8_STATUS_CUDA_ERROR = 8,            /* a CUDA call or kernel launch failed */
  W4A8_STATUS_INVALID_VALUE = 9,         /* any other bad scalar argument (e.g. non-finite alpha) */
  W4A8_STATUS_NOT_SUPPORTED = 10         /* valid request this build cannot serve (e.g. forced kernel) */
} w4a8_status;

/* Short, static description of a status ("invalid shape"). Never NULL. */
W4A8_API const char* w4a8_status_string(w4a8_status status);

/* Detail of the last failed call on this thread: function, argument, expected and actual
 * value, e.g. "w4a8_gemm: K=1000 must be a multiple of group_size=16". "" after success. */
W4A8_API const char* w4a8_last_error(void);

/* Library version "MAJOR.MINOR.PATCH". */
W4A8_API const char* w4a8_version(void);

/* ---------------------------------------------------------------------------------------
 * Quantization (device)
 * ------------------------------------------------------------------------------------- */

/* BF16 [M, K] -> E4M3 [M, K] + FP32 row scales [M], per row:
 *   s = max(amax_row / 448, 1 / (448 * 512));  q = e4m3_rne_satfinite(x * (1 / s))
 * Requirements: M >= 1, 16 <= K, K % 16 == 0; x and q 16-byte aligned; row_scale 4-byte. */
W4A8_API w4a8_status w4a8_quantize_activation_fp8(const void* x_bf16, void* x_fp8,
                                                  float* row_scale, int64_t M, int64_t K,
                                                  w4a8_stream_t stream);

/* BF16 [N, K] -> packed E2M1 [N, K/2] + E4M3 block scales [N, K/group] + FP32 tensor scale,
 * with NVIDIA ModelOpt's NVFP4 recipe (all in FP32, IEEE division):
 *   s2 = amax(|W|) / 2688                      (2688 = 6 * 448; an all-zero W gets s2 = 1)
 *   sb = amax_block / (6 * s2); 0 -> 1; clamp to [2^-9, 448]; e4m3 round-to-nearest-even
 *   code = e2m1_rne_saturate(w / (float(sb) * s2))
 * The tensor-scale slot doubles as the amax accumulator while the call runs (3 kernels and a
 * 4-byte memset on `stream`); it holds s2 when the stream reaches the end of the call.
 * Requirements: N >= 1, K % group_size == 0, group_size in {16, 32}; pointers non-null;
 * w_bf16 16-byte aligned, tensor_scale 4-byte aligned. */
W4A8_API w4a8_status w4a8_quantize_weight_nvfp4(const void* w_bf16, void* w_packed,
                                                void* w_block_scale, float* w_tensor_scale,
                                                int64_t N, int64_t K, int group_size,
                                                w4a8_stream_t stream);

/* ---------------------------------------------------------------------------------------
 * GEMM (device)
 * ------------------------------------------------------------------------------------- */

/* How packed codes and block scales are laid out in memory.
 *   CANONICAL  the layout above: row-major [N, K/2] and [N, K/group]. The on-disk and API
 *              format; every kernel reads it.
 *   TILED      made once at load time by w4a8_prepack_weight (and undone by
 *              w4a8_unprepack_weight): tiles of 16 rows x 64 k stored one after another,
 *              the k-tiles of a 16-row block consecutive, each tile's rows row-major (32
 *              bytes of codes, 64/group bytes of scales per row); N padded to a multiple of
 *              16 and K to one of 64 with zeros; the bits of each 32-bit word of codes
 *              permuted (w4a8/formats.hpp, tiled_word_from_canonical). The small-M kernels stream it at closer
 *              to HBM speed (each warp reads two whole tiles, 1 KB, per step); the Hopper large-M kernel
 *              reads it faster too (its copies are 256-byte lines), so prepack every weight that
 *              runs on the exact path: one tiled copy serves every M. The exact path's kernels
 *              pair the k of their MMAs by the layout's word order, so a tiled weight's results
 *              may differ from the canonical one's in the FP32 summation's last bits (both within
 *              the exact path's bound); the FP8 path takes canonical weights only. Needs
 *              K % 32 == 0. Sizes: w4a8_tiled_weight_size(). */
typedef enum w4a8_weight_layout {
  W4A8_LAYOUT_CANONICAL = 0,
  W4A8_LAYOUT_TILED = 1
} w4a8_weight_layout;

/* Whether a weight may run the FP8 tensor-core path (sm_90a wgmma on E4M3 operands, twice the
 * 16-bit rate), as found by w4a8_prepare_fp8. That path turns each weight into
 * e4m3(e2m1 * sb * 2^fp8_shift) (fp8_shift chosen so that nothing overflows, undone in the
 * FP32 epilogue):
 *   NONE   not prepared (zero-initialized): the FP8 path refuses the weight.
 *   EXACT  every product e2m1 * sb of this weight is an E4M3 value times 2^-fp8_shift (e.g.
 *          power-of-two block scales): the FP8 path gives the exact path's products, and
 *          W4A8_KERNEL_AUTO uses it where the prefill kernel runs and M >= 512 (where it is
 *          the faster, src/host/heuristics.cpp). The tensor cores keep ~14 bits while they sum
 *          FP8 products, so the kernel promotes its sums to FP32 every 256 k: results differ
 *          from the exact path by summation order and that (bounded: 2^-11 of sum |products|).
 *   LOSSY  some products round: the FP8 path runs only when asked for
 *          (W4A8_KERNEL_WGMMA_FP8); w4a8_fp8_report says by how much at most.
 *   ACCEPTED  set by the caller on a LOSSY weight (never by w4a8_prepare_fp8): the caller
 *          accepts that error, and W4A8_KERNEL_AUTO and w4a8_linear_bf16 use the FP8 path as
 *          for EXACT. The per-weight opt-in of the entry points that take no kernel argument.
 *   FAST   set by the caller on a prepared weight (EXACT, LOSSY or ACCEPTED; never by
 *          w4a8_prepare_fp8): as ACCEPTED, and the caller also accepts the tensor cores' own
 *          summation ("fast accumulation", no promotion to FP32), which frees the registers for
 *          256-token tiles: the FP8 path (AUTO from M = 128 where the prefill kernel runs, and
 *          W4A8_KERNEL_WGMMA_FP8) then runs "wgmma_fp8_fast_*" (256-token tiles wherever they
 *          fill the GPU, else 128-token ones; src/host/heuristics.cpp), 1.17-1.43x faster than
 *          the promoted kernels on the H100's large layers at M = 968 / 4096. Its extra error on exact products: within the exact path's
 *          bound plus 2^-9 of the sum of |products| (tests; measured up to 2^-11.4), relative
 *          output error 1.8e-3 / 2.1e-3 / 3.3e-3 at K = 2048 / 4096 / 16384 against 1.7e-3 for the
 *          exact path (BENCHMARKS.md, "Session 25"). */
typedef enum w4a8_fp8_mode {
  W4A8_FP8_NONE = 0,
  W4A8_FP8_EXACT = 1,
  W4A8_FP8_LOSSY = 2,
  W4A8_FP8_ACCEPTED = 3,
  W4A8_FP8_FAST = 4
} w4a8_fp8_mode;

/* The operands of one W4A8 linear layer. w_tensor_scale and bias may be NULL (s2 = 1, no
 * bias). Zero-initialize it (`w4a8_weight w = {0};`) so that `layout` is CANONICAL, `fp8`
 * NONE and `overlap` 0 unless set.
 *
 * overlap (0 or 1): 1 is the caller's promise that the kernel right before each GEMM call on
 * the stream never writes this weight's arrays (packed, block_scale, tensor_scale, bias): true
 * for weights written at load time, as in a model's forward pass. The small-M kernels
 * (mma_exact_*) then start as programmatic dependents of that kernel (sm_90+; CUDA graphs
 * keep it): they read their first weights while it finishes and wait for it before they
 * touch anything it may write (activations, row scales, the output); so do the activation
 * quantizers of w4a8_linear_bf16, the activation prologues of the prefill kernels and the
 * prefill kernel itself (which read nothing before that wait: their launch is what
 * overlaps). Kernels further back have finished by then as long as the kernel right before
 * released its dependents only after its own wait for its predecessor, as our GEMMs and
 * CUTLASS's do. (For such a weight the prologues of w4a8_gemm release the GEMM of the same
 * call at once, before their own wait: it reads only this weight before its wait, and the
 * kernel before the prologue is the one the promise covers. The quantizers of
 * w4a8_linear_bf16 release it only after their wait, as for weights without the promise: on
 * pi0.5's trace that was 1.3-4.3% faster, BENCHMARKS.md.) pi0.5's 1386 GEMMs on an H100: 1.2 ms
 * less per inference (BENCHMARKS.md).
 * 0: nothing of the call reads this weight before the kernels before the call have finished.
 * On sm_90+ a call's own first kernel may still be launched as a programmatic dependent when
 * it touches nothing before that point: the FP8 -> FP16 prologue of w4a8_gemm (then the prefill
 * kernel after it) and the quantizer of a w4a8_linear_bf16 of few values or rows (M * K <=
 * 65536, or, before an mma_exact_* kernel, M <= 64 with K <= 32768); those release the GEMM
 * only after their own wait, so only their launch overlaps. */
typedef struct w4a8_weight {
  const void* packed;        /* uint8 [N, K/2] (or tiled), 16-byte aligned */
  const void* block_scale;   /* E4M3 [N, K/group_size] (or tiled), 2-byte aligned */
  const float* tensor_scale; /* device FP32 scalar s2, or NULL for 1.0 */
  const void* bias;          /* BF16 [N], 2-byte aligned, or NULL */
  int64_t N;
  int64_t K;
  int group_size;            /* 16 or 32 */
  int layout;                /* w4a8_weight_layout */
  int fp8;                   /* w4a8_fp8_mode, set by w4a8_prepare_fp8 */
  int fp8_shift;             /* set by w4a8_prepare_fp8 */
  int overlap;               /* 0 or 1: see above */
} w4a8_weight;

/* What w4a8_prepare_fp8 found: the shift it chose, whether every product is exact, and the
 * largest relative error of any product e2m1 * sb that occurs in the weight once rounded
 * to E4M3 (0 when exact; NaN block scales are skipped). */
typedef struct w4a8_fp8_report {
  int shift;
  int exact;
  double max_rel_error;
} w4a8_fp8_report;

/* Load time, once per weight: finds the E4M3 magnitudes each block-scale value is used with
 * (one pass over the codes and scales on `stream`), chooses fp8_shift (the largest with
 * max |e2m1 * sb| * 2^shift <= 448) and sets weight->fp8 and weight->fp8_shift; `report`
 * (may be NULL) gets the details. Unlike the GEMM functions it allocates 1 KB of device
 * memory (stream-ordered, cudaMallocAsync) and synchronizes `stream` (not graph-capturable). Canonical layout only (the FP8
 * kernel reads canonical weights). Nothing is written on error. */
W4A8_API w4a8_status w4a8_prepare_fp8(w4a8_weight* weight, w4a8_fp8_report* report, w4a8_stream_t stream);

/* Bytes of the tiled arrays for an N x K weight (host query; K % 32 == 0). */
W4A8_API w4a8_status w4a8_tiled_weight_size(int64_t N, int64_t K, int group_size,
                                            size_t* packed_bytes, size_t* block_scale_bytes);

/* Canonical -> tiled (device). `canonical` must have layout CANONICAL; the outputs must hold
 * w4a8_tiled_weight_size() bytes (packed 16-byte aligned, scales 2-byte aligned) and must
 * not overlap the inputs. The tensor scale and bias are not copied: a tiled w4a8_weight
 * points at the same ones. Byte-exact, and w4a8_unprepack_weight gives the input back. */
W4A8_API w4a8_status w4a8_prepack_weight(const w4a8_weight* canonical, void* tiled_packed,
                                         void* tiled_block_scale, w4a8_stream_t stream);
/* Tiled -> canonical (device): [N, K/2] and [N, K/group] bytes, same rules. */
W4A8_API w4a8_status w4a8_unprepack_weight(const w4a8_weight* tiled, void* packed,
                                           void* block_scale, w4a8_stream_t stream);

/* Which kernel family runs. AUTO follows the heuristics (src/host/heuristics.cpp). The
 * exact kernels give results equal to the CPU reference up to FP32 summation order. */
typedef enum w4a8_kernel {
  W4A8_KERNEL_AUTO = 0,
  W4A8_KERNEL_MMA_EXACT = 1, /* portable mma.sync FP16 kernel, exact dequantization */
  W4A8_KERNEL_NAIVE = 2,     /* one thread per output; device reference for tests */
  W4A8_KERNEL_WGMMA_EXACT = 3, /* sm_90a wgmma (Hopper) prefill kernel, exact dequantization;
                                  NOT_SUPPORTED elsewhere or when K % 32 != 0 */
  W4A8_KERNEL_WGMMA_FP8 = 4     /* sm_90a wgmma on E4M3 weights (see w4a8_fp8_mode): needs a
                                  prepared canonical weight, K % 32 == 0 and the workspace;
                                  lossy unless the weight's fp8 is EXACT */
} w4a8_kernel;

/* y[M, N] = W4A8 GEMM of pre-quantized activations. Workspace: pass the
 * w4a8_gemm_workspace_size() bytes it asks for (zero at small M; at large M on sm_90a the
 * prefill kernel uses it for FP16 copies of the activations, made once per call, and on
 * layers with few output tiles for FP32 split-K partial sums), or NULL/0, which is always
 * accepted (the prefill kernel then converts activations in every CTA and never splits K:
 * slower). A workspace that is not NULL must be 16-byte aligned and at least the queried size.
 * The queries plan for an H100; on another sm_90 GPU whose plan would need more partials than
 * the workspace holds, the same tile runs unsplit. Results are deterministic either way. 
 * Requirements: x_fp8 16-byte aligned, row_scale 4-byte aligned, y 2-byte aligned,
 * alpha finite. */
W4A8_API w4a8_status w4a8_gemm(const void* x_fp8, const float* row_scale,
                               const w4a8_weight* weight, void* y_bf16, int64_t M, float alpha,
                               void* workspace, size_t workspace_size, w4a8_stream_t stream);

/* y = linear(x) from BF16 activations: quantizes x per row to FP8 into the workspace, then
 * runs the GEMM: one call per linear layer. Needs w4a8_linear_workspace_size() bytes. */
W4A8_API w4a8_status w4a8_linear_bf16(const void* x_bf16, const w4a8_weight* weight,
                                      void* y_bf16, int64_t M, float alpha, void* workspace,
                                      size_t workspace_size, w4a8_stream_t stream);

/* Gated MLP projections (a "GLU": act(x W_gate^T + b_gate) * (x W_up^T + b_up), as in Gemma,
 * Llama, pi0.5) as one call: the gate and up weights as ONE NVFP4 weight of N = 2I rows whose
 * rows are interleaved in blocks of 8 (rows 16b .. 16b+7 are gate channels 8b .. 8b+7, rows
 * 16b+8 .. 16b+15 the up channels 8b .. 8b+7; bias likewise), N % 16 == 0. y is BF16 [M, I]
 * (y_bf16 2-byte aligned). Each output is what the unfused layer computes: the two GEMM
 * outputs rounded to BF16, act in FP32 rounded to BF16 (the FP32 expressions of PyTorch's
 * CUDA gelu(approximate="tanh") and silu kernels), the product in FP32 rounded to BF16; the
 * GEMM part is w4a8_linear_bf16's (same kernels, same sums). Saves the [M, 2I] intermediate
 * and the elementwise kernel. Workspace: w4a8_linear_workspace_size(M, N, K, group). */
typedef enum w4a8_glu_act {
  W4A8_GLU_GELU_TANH = 1, /* gelu(approximate="tanh"): Gemma's gelu_pytorch_tanh */
  W4A8_GLU_SILU = 2       /* silu: Llama's */
} w4a8_glu_act;
W4A8_API w4a8_status w4a8_linear_bf16_glu(const void* x_bf16, const w4a8_weight* weight,
                                          w4a8_glu_act act, void* y_bf16, int64_t M, float alpha,
                                          void* workspace, size_t workspace_size,
                                          w4a8_stream_t stream);

/* Workspace queries. Pure host functions: no device is touched (the split-K part is sized
 * for the H100's 132 SMs, see w4a8_gemm). */
W4A8_API w4a8_status w4a8_gemm_workspace_size(int64_t M, int64_t N, int64_t K, int group_size,
                                              size_t* bytes);
W4A8_API w4a8_status w4a8_linear_workspace_size(int64_t M, int64_t N, int64_t K, int group_size,
                                                size_t* bytes);

/* Same as w4a8_gemm, but with the kernel family chosen by the caller (tests, benchmarks, and
 * the opt-in lossy FP8 path). */
W4A8_API w4a8_status w4a8_gemm_with_kernel(const void* x_fp8, const float* row_scale,
                                           const w4a8_weight* weight, void* y_bf16, int64_t M,
                                           float alpha, w4a8_kernel kernel, void* workspace,
                                           size_t workspace_size, w4a8_stream_t stream);

/* The name of the kernel configuration w4a8_gemm would launch for this problem on the
 * current device, e.g. "mma_exact_mt1_wn1_wk8_v16_g16". Never launches anything. The string
 * is static. */
W4A8_API w4a8_status w4a8_gemm_kernel_name(int64_t M, int64_t N, int64_t K, int group_size,
                                           w4a8_kernel kernel, const char** name);
/* The same for one weight (its layout and FP8 preparation decide too): the name of what
 * w4a8_gemm / w4a8_gemm_with_kernel / w4a8_linear_bf16 launch for it at M with a workspace.
 * FP8 path configurations are named "wgmma_fp8_...". */
W4A8_API w4a8_status w4a8_weight_kernel_name(const w4a8_weight* weight, int64_t M, w4a8_kernel kernel,
                                             const char** name);

/* ---------------------------------------------------------------------------------------
 * CPU reference (HOST pointers), for machines without a GPU and for tests: the same
 * numerics as the device functions (quantizers bit-exact; GEMM with FP64 accumulation).
 * In w4a8_ref_gemm, weight->tensor_scale (if not NULL) and all other pointers are host
 * pointers. Single-threaded and slow.
 * ------------------------------------------------------------------------------------- */
W4A8_API w4a8_status w4a8_ref_quantize_activation_fp8(const void* x_bf16, void* x_fp8,
                                                      float* row_scale, int64_t M, int64_t K);
W4A8_API w4a8_status w4a8_ref_quantize_weight_nvfp4(const void* w_bf16, void* w_packed,
                                                    void* w_block_scale, float* w_tensor_scale,
                                                    int64_t N, int64_t K, int group_size);
W4A8_API w4a8_status w4a8_ref_gemm(const void* x_fp8, const float* row_scale,
                                   const w4a8_weight* weight, void* y_bf16, int64_t M,
                                   float alpha);
/* w4a8_prepare_fp8 on host memory (same analysis, same result). */
W4A8_API w4a8_status w4a8_ref_prepare_fp8(w4a8_weight* weight, w4a8_fp8_report* report);
/* The layout conversions of w4a8_prepack_weight / w4a8_unprepack_weight on host memory. */
W4A8_API w4a8_status w4a8_ref_prepack_weight(const w4a8_weight* canonical, void* tiled_packed,
                                             void* tiled_block_scale);
W4A8_API w4a8_status w4a8_ref_unprepack_weight(const w4a8_weight* tiled, void* packed,
                                               void* block_scale);

/* ---------------------------------------------------------------------------------------
 * Tuning and testing: the whitelist of kernel configurations, and a GEMM forced to one of
 * them (for benchmark sweeps and per-configuration tests; applications use w4a8_gemm).
 * ------------------------------------------------------------------------------------- */
W4A8_API int w4a8_gemm_config_count(void);
/* Name of configuration `index` (static string), or NULL when out of range. */
W4A8_API const char* w4a8_gemm_config_name(int index);
/* w4a8_gemm with configuration `index`; W4A8_STATUS_NOT_SUPPORTED if it does not fit the
 * problem (its group size or load width) or the GPU (wgmma configurations need sm_90a).
 * The "wgmma_exact_bm*" configurations take FP16 activations made in the workspace:
 * M * (K rounded up to 64) * 2 bytes rounded up to 256, 16-byte aligned; the split-K ones
 * ("..._kS_...", S K-splits) also S * M * N * 4 bytes of FP32 partials after that (S capped
 * by the 64-k stages of K); their "..._kSc_..." twins add the splits' sums inside a cluster
 * of S CTAs instead (no partials, same results bit for bit; fast only where the GPU holds
 * every tile's cluster at once, so AUTO does not pick them). Where the workspace also holds the
 * FP16 activations' rows rounded up to whole token tiles (bm, the name's number) before the
 * partials, the kernel reads whole tiles (faster; the rows past M are never written and never
 * reach an output). The "wgmma_fp8_*" ones (the FP8 path) need a canonical weight
 * prepared by w4a8_prepare_fp8 and the same workspace (they place their permuted FP8
 * activations, M * (K rounded up to 128) bytes, in it; S capped by the 128-k stages). Every
 * other configuration ignores the workspace (NULL/0 is fine). */
W4A8_API w4a8_status w4a8_gemm_with_config(const void* x_fp8, const float* row_scale,
                                           const w4a8_weight* weight, void* y_bf16, int64_t M,
                                           float alpha, int index, void* workspace,
                                           size_t workspace_size, w4a8_stream_t stream);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* W4A8_W4A8_H_ */
