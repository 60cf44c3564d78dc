// What the CPU vanilla kernels (kernels/cpu/vanilla.cpp, kernels/cpu/vanilla_eager.cpp)
// share: the FLOP count (FlashAttention's convention), the float64 reference and the softmax
// of one materialized score row.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "attnbench/kernel.hpp"
#include "attnbench/math/softmax.hpp"
#include "attnbench/reference.hpp"

namespace attnbench::cpu {

// 4 b h N^2 dh (two products of 2 dh per query-key pair), halved when causal: the work the
// method must do, whatever a kernel skips or not.
inline double vanilla_flops(const Problem& p) {
  const double f = 4.0 * double(p.batch) * double(p.heads) * double(p.seq_len) *
                   double(p.seq_len) * double(p.head_dim);
  return p.causal ? f / 2 : f;
}

// The vanilla kernels share their FLOP count and reference.
class VanillaCpuBase : public Kernel {
 public:
  double flops(const Problem& p) const override { return vanilla_flops(p); }
  void reference_rows(const Problem& p, const Inputs& in, std::span<const RowId> rows,
                      double* out) const override {
    vanilla_reference_rows(p, in.q, in.k, in.v, 1.0 / std::sqrt(double(p.head_dim)), rows,
                           out);
  }
};

// Softmax of one score row over its first `len` entries (the keys it may see), read from
// `src` and written to `dst` (the same row for the in-place form); dst entries
// [len, fill_end) are masked keys and get probability 0. Scores of -inf get 0 too. The row is
// read from memory once and written once: it stays in L1/L2 between the passes. With AVX-512
// the max and the sum are kept per lane of 16 (fixed-size inner loops the compiler
// vectorizes, exp_f included; a plain float reduction stays scalar without -ffast-math).
// Without it GCC cannot if-convert exp_f (no masked blends), the loops stay scalar, and the
// plain form is cheaper. `next` (the source row processed next, or null) is prefetched during
// the exp pass, so that reading it from memory overlaps this row's arithmetic (the pass is
// otherwise memory- then compute-bound in turn, e.g. at dh = 1024 where K evicts the block
// from the cache).
inline void softmax_row(const float* src, float* dst, int64_t len, int64_t fill_end,
                        const float* next) {
#if defined(__AVX512F__)
  constexpr int64_t kLanes = 16;
  const int64_t body = len - len % kLanes;
  float lane_max[kLanes], lane_sum[kLanes];
  for (int64_t l = 0; l < kLanes; ++l) lane_max[l] = math::neg_inf_f();
  for (int64_t j = 0; j < body; j += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) lane_max[l] = math::max_f(lane_max[l], src[j + l]);
  float mx = math::neg_inf_f();
  for (int64_t l = 0; l < kLanes; ++l) mx = math::max_f(mx, lane_max[l]);
  for (int64_t j = body; j < len; ++j) mx = math::max_f(mx, src[j]);
  for (int64_t l = 0; l < kLanes; ++l) lane_sum[l] = 0.f;
  const float* ahead = next ? next : src;  // one 64-byte line per 16 floats
  for (int64_t j = 0; j < body; j += kLanes) {
    __builtin_prefetch(ahead + j, 1);
    for (int64_t l = 0; l < kLanes; ++l) {
      const float e = math::exp_f(src[j + l] - mx);
      dst[j + l] = e;
      lane_sum[l] += e;
    }
  }
  float sum = 0.f;
  for (int64_t j = body; j < len; ++j) {
    dst[j] = math::exp_f(src[j] - mx);
    sum += dst[j];
  }
  for (int64_t l = 0; l < kLanes; ++l) sum += lane_sum[l];
#else
  float mx = math::neg_inf_f();
  for (int64_t j = 0; j < len; ++j) mx = std::max(mx, src[j]);
  float sum = 0.f;
  for (int64_t j = 0; j < len; ++j) {
    dst[j] = math::exp_f(src[j] - mx);
    sum += dst[j];
  }
#endif
  const float inv = 1.f / sum;
  for (int64_t j = 0; j < len; ++j) dst[j] *= inv;
  std::fill(dst + len, dst + fill_end, 0.f);
}

}  // namespace attnbench::cpu
