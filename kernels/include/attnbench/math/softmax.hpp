// Online softmax (docs/methods.md section 1, "fused (flash)"): the per-row running state and its
// update for one tile of scores. Shared by the CPU and CUDA flash kernels. Also the two-pass
// in-place row softmax of the sparse kernels (CPU and CUDA).
#pragma once

#include <cstdint>

#include "attnbench/math/hd.hpp"

namespace attnbench::math {

struct OnlineSoftmaxRow {
  float m;  // running max of the scaled scores seen so far (-inf before any)
  float l;  // running sum of exp(s - m)
};

AB_HD OnlineSoftmaxRow online_softmax_init() { return {neg_inf_f(), 0.0f}; }

// Advances the row state past a tile whose (already scaled and masked) max is `tile_max`.
// Returns the factor exp(m_old - m_new) by which the caller rescales its accumulator and
// the running sum; the new max is stored in state.m. A row that has seen only masked scores
// (-inf) keeps factor 1 so that nothing becomes NaN.
AB_HD float online_softmax_rescale(OnlineSoftmaxRow& st, float tile_max) {
  const float m_new = max_f(st.m, tile_max);
  const float factor = (m_new == neg_inf_f()) ? 1.0f : exp_f(st.m - m_new);
  st.m = m_new;
  st.l *= factor;
  return factor;
}

// Probability weight of one score under the current max (0 for masked -inf scores).
AB_HD float online_softmax_weight(const OnlineSoftmaxRow& st, float s) {
  return (s == neg_inf_f()) ? 0.0f : exp_f(s - st.m);
}

// Final normalization factor 1 / l (l >= 1 whenever the row saw an unmasked key).
AB_HD float online_softmax_inv_sum(const OnlineSoftmaxRow& st) { return 1.0f / st.l; }

// Two-pass softmax of row[lo, hi) in place (entries may be -inf: weight 0; at least one is
// finite); the rest of the row is not touched. Returns the log of the normalizer,
// max + log(sum). The sparse kernels' row softmax on the CPU (kernels/cpu/sparse.cpp) and on
// the GPU (cuda/sparse_pipeline.hpp). On the host the two loops vectorize (omp simd,
// math::exp_f): they are most of a CPU tile's non-sgemm time.
AB_HD float softmax_in_place(float* row, int64_t lo, int64_t hi) {
  float m = neg_inf_f();
#if defined(_OPENMP) && !defined(__CUDA_ARCH__)
#pragma omp simd reduction(max : m)
#endif
  for (int64_t j = lo; j < hi; ++j) m = row[j] > m ? row[j] : m;
  float sum = 0.f;
#if defined(_OPENMP) && !defined(__CUDA_ARCH__)
#pragma omp simd reduction(+ : sum)
#endif
  for (int64_t j = lo; j < hi; ++j) {
    const float e = exp_f(row[j] - m);
    row[j] = e;
    sum += e;
  }
  const float inv = 1.f / sum;
  for (int64_t j = lo; j < hi; ++j) row[j] *= inv;
  return m + logf(sum);
}

}  // namespace attnbench::math
