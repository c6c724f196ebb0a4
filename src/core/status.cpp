// Status strings, the thread-local error message, and the argument checks.
#include "core/status.hpp"

#include <cstdarg>
#include <cstdio>

#include "w4a8/formats.hpp"

namespace w4a8 {
namespace detail {
namespace {
thread_local char g_last_error[512] = "";
}  // namespace

w4a8_status fail(w4a8_status status, const char* fn, const char* fmt, ...) {
  int n = std::snprintf(g_last_error, sizeof g_last_error, "%s: ", fn);
  if (n < 0 || n >= static_cast<int>(sizeof g_last_error)) n = 0;
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(g_last_error + n, sizeof g_last_error - static_cast<size_t>(n), fmt, args);
  va_end(args);
  return status;
}

w4a8_status ok() {
  g_last_error[0] = '\0';
  return W4A8_STATUS_SUCCESS;
}

w4a8_status check_dim(const char* fn, const char* name, int64_t value) {
  if (value <= 0 || value > kMaxDim)
    return fail(W4A8_STATUS_INVALID_SHAPE, fn, "%s=%lld must be in [1, %lld]", name,
                static_cast<long long>(value), static_cast<long long>(kMaxDim));
  return W4A8_STATUS_SUCCESS;
}

w4a8_status check_group_size(const char* fn, int group_size) {
  if (group_size != 16 && group_size != 32)
    return fail(W4A8_STATUS_INVALID_GROUP_SIZE, fn, "group_size=%d must be 16 or 32",
                group_size);
  return W4A8_STATUS_SUCCESS;
}

w4a8_status check_k(const char* fn, int64_t K, int group_size) {
  W4A8_CHECK(check_dim(fn, "K", K));
  if (K % group_size != 0)
    return fail(W4A8_STATUS_K_NOT_MULTIPLE, fn, "K=%lld must be a multiple of group_size=%d",
                static_cast<long long>(K), group_size);
  return W4A8_STATUS_SUCCESS;
}

w4a8_status check_not_null(const char* fn, const char* name, const void* p) {
  if (p == nullptr)
    return fail(W4A8_STATUS_NULL_POINTER, fn, "%s must not be NULL", name);
  return W4A8_STATUS_SUCCESS;
}

w4a8_status check_aligned(const char* fn, const char* name, const void* p, size_t alignment) {
  W4A8_CHECK(check_not_null(fn, name, p));
  const uintptr_t addr = reinterpret_cast<uintptr_t>(p);
  if (addr % alignment != 0)
    return fail(W4A8_STATUS_MISALIGNED_POINTER, fn,
                "%s=%p must be %zu-byte aligned (address %% %zu = %zu)", name, p, alignment,
                alignment, static_cast<size_t>(addr % alignment));
  return W4A8_STATUS_SUCCESS;
}

w4a8_status check_overlap(const char* fn, const w4a8_weight* w) {
  if (w->overlap != 0 && w->overlap != 1)
    return fail(W4A8_STATUS_INVALID_VALUE, fn, "weight->overlap=%d must be 0 or 1", w->overlap);
  return W4A8_STATUS_SUCCESS;
}

w4a8_status check_layout(const char* fn, int layout, int64_t K) {
  if (layout != W4A8_LAYOUT_CANONICAL && layout != W4A8_LAYOUT_TILED)
    return fail(W4A8_STATUS_INVALID_VALUE, fn,
                "weight->layout=%d must be W4A8_LAYOUT_CANONICAL (0) or W4A8_LAYOUT_TILED (1)", layout);
  if (layout == W4A8_LAYOUT_TILED && K % 32 != 0)
    return fail(W4A8_STATUS_K_NOT_MULTIPLE, fn, "the tiled weight layout needs K %% 32 == 0; got K=%lld",
                static_cast<long long>(K));
  return W4A8_STATUS_SUCCESS;
}

w4a8_status check_disjoint(const char* fn, const char* a_name, const void* a, size_t a_bytes,
                           const char* b_name, const void* b, size_t b_bytes) {
  const uintptr_t pa = reinterpret_cast<uintptr_t>(a), pb = reinterpret_cast<uintptr_t>(b);
  if (pa < pb + b_bytes && pb < pa + a_bytes)
    return fail(W4A8_STATUS_INVALID_VALUE, fn, "%s=%p (%zu bytes) overlaps %s=%p (%zu bytes)", a_name, a,
                a_bytes, b_name, b, b_bytes);
  return W4A8_STATUS_SUCCESS;
}

w4a8_status check_conversion(const char* fn, const w4a8_weight* in, int from, const void* out_packed,
                             const void* out_scales) {
  W4A8_CHECK(check_layout(fn, W4A8_LAYOUT_TILED, in->K));  // both directions need K % 32 == 0
  if (in->layout != from)
    return fail(W4A8_STATUS_INVALID_VALUE, fn, "weight->layout=%d must be %s (%d)", in->layout,
                from == W4A8_LAYOUT_TILED ? "W4A8_LAYOUT_TILED" : "W4A8_LAYOUT_CANONICAL", from);
  const int64_t N = in->N, K = in->K;
  const int G = in->group_size;
  const bool to_tiled = from == W4A8_LAYOUT_CANONICAL;
  const size_t tp = static_cast<size_t>(tiled_packed_bytes(N, K)), ts = static_cast<size_t>(tiled_scale_bytes(N, K, G));
  const size_t cp = static_cast<size_t>(N * (K / 2)), cs = static_cast<size_t>(N * (K / G));
  W4A8_CHECK(check_disjoint(fn, "packed output", out_packed, to_tiled ? tp : cp, "weight->packed", in->packed,
                            to_tiled ? cp : tp));
  return check_disjoint(fn, "block_scale output", out_scales, to_tiled ? ts : cs, "weight->block_scale",
                        in->block_scale, to_tiled ? cs : ts);
}

w4a8_status check_weight_codes(const char* fn, const w4a8_weight* w) {
  W4A8_CHECK(check_not_null(fn, "weight", w));
  W4A8_CHECK(check_dim(fn, "weight->N", w->N));
  W4A8_CHECK(check_group_size(fn, w->group_size));
  W4A8_CHECK(check_k(fn, w->K, w->group_size));
  W4A8_CHECK(check_not_null(fn, "weight->packed", w->packed));
  return check_not_null(fn, "weight->block_scale", w->block_scale);
}

w4a8_status check_fp8_prepare(const char* fn, const w4a8_weight* w) {
  W4A8_CHECK(check_weight_codes(fn, w));
  if (w->layout != W4A8_LAYOUT_CANONICAL)
    return fail(W4A8_STATUS_NOT_SUPPORTED, fn,
                "weight->layout=%d: the FP8 path reads the canonical layout (W4A8_LAYOUT_CANONICAL, 0) "
                "only; prepare and run the canonical copy",
                w->layout);
  return W4A8_STATUS_SUCCESS;
}

}  // namespace detail
}  // namespace w4a8

extern "C" {

const char* w4a8_status_string(w4a8_status status) {
  switch (status) {
    case W4A8_STATUS_SUCCESS: return "success";
    case W4A8_STATUS_INVALID_SHAPE: return "invalid shape";
    case W4A8_STATUS_INVALID_GROUP_SIZE: return "invalid group size";
    case W4A8_STATUS_K_NOT_MULTIPLE: return "K not a multiple of the group size";
    case W4A8_STATUS_NULL_POINTER: return "null pointer";
    case W4A8_STATUS_MISALIGNED_POINTER: return "misaligned pointer";
    case W4A8_STATUS_WORKSPACE_TOO_SMALL: return "workspace too small";
    case W4A8_STATUS_UNSUPPORTED_DEVICE: return "unsupported device";
    case W4A8_STATUS_CUDA_ERROR: return "CUDA error";
    case W4A8_STATUS_INVALID_VALUE: return "invalid value";
    case W4A8_STATUS_NOT_SUPPORTED: return "not supported";
  }
  return "unknown status";
}

const char* w4a8_last_error(void) { return w4a8::detail::g_last_error; }

const char* w4a8_version(void) { return W4A8_VERSION_STRING; }

}  // extern "C"
