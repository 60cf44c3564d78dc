// Online softmax (kernels.md section 1, "fused (flash)"): the per-row running state and its
// update for one tile of scores. Shared by the CPU and CUDA flash kernels.
#pragma once

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

}  // namespace attnbench::math
