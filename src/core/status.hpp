// Error reporting shared by every part of the library: a status plus a thread-local
// message naming the function, the argument, what was expected and what came.
#ifndef W4A8_SRC_CORE_STATUS_HPP_
#define W4A8_SRC_CORE_STATUS_HPP_

#include <cstddef>
#include <cstdint>

#include "w4a8/w4a8.h"

namespace w4a8 {
namespace detail {

// Records "fn: message" as this thread's last error and returns `status`.
w4a8_status fail(w4a8_status status, const char* fn, const char* fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

// Marks the current call successful (w4a8_last_error() then returns "").
w4a8_status ok();

// ---- argument checks: each returns SUCCESS or a status with its message set -------------
// Largest M, N or K accepted: keeps every index and byte count far inside int64 and every
// per-dimension grid count inside int32.
constexpr int64_t kMaxDim = int64_t(1) << 31;

w4a8_status check_dim(const char* fn, const char* name, int64_t value);
w4a8_status check_group_size(const char* fn, int group_size);
// K > 0 multiple of the group size (and so of 16).
w4a8_status check_k(const char* fn, int64_t K, int group_size);
w4a8_status check_not_null(const char* fn, const char* name, const void* p);
w4a8_status check_aligned(const char* fn, const char* name, const void* p, size_t alignment);
// A w4a8_weight_layout value the weight's K allows (the tiled layout needs K % 32 == 0).
w4a8_status check_layout(const char* fn, int layout, int64_t K);
// w4a8_weight::overlap: 0 or 1 (the GPU entry points and the CPU reference GEMM alike).
w4a8_status check_overlap(const char* fn, const w4a8_weight* w);
// Two byte ranges that must not overlap (a conversion's input and output).
w4a8_status check_disjoint(const char* fn, const char* a_name, const void* a, size_t a_bytes,
                           const char* b_name, const void* b, size_t b_bytes);
// A layout conversion (w4a8_prepack_weight / _unprepack_, and the CPU reference's): K % 32 == 0,
// the input in layout `from`, outputs not overlapping the inputs. Shape, group and pointers are
// the caller's checks, made first.
w4a8_status check_conversion(const char* fn, const w4a8_weight* in, int from, const void* out_packed,
                             const void* out_scales);

// A weight given to a host-side weight pass (layout conversions, FP8 analysis): the pointer,
// shape, group size, and non-null code and scale pointers.
w4a8_status check_weight_codes(const char* fn, const w4a8_weight* w);
// w4a8_prepare_fp8 and its reference: check_weight_codes, and the canonical layout (the FP8
// kernel reads no other).
w4a8_status check_fp8_prepare(const char* fn, const w4a8_weight* w);

}  // namespace detail
}  // namespace w4a8

// Early return on a failed check.
#define W4A8_CHECK(expr)                              \
  do {                                                \
    const w4a8_status w4a8_check_status_ = (expr);    \
    if (w4a8_check_status_ != W4A8_STATUS_SUCCESS)    \
      return w4a8_check_status_;                      \
  } while (0)

#endif  // W4A8_SRC_CORE_STATUS_HPP_
