// The row softmax of vanilla_materialized (in place) and vanilla_eager (scores to a separate
// probability tensor), per thread: each of a block's threads streams its share of a score row
// into an online-softmax state (math/softmax.hpp), the states are merged, and each thread
// writes its columns. Written with the shared AB_HD functions only, so the CPU
// tests (tests/test_cuda_tiling.cpp) evaluate exactly what the GPU kernel
// (kernels/cuda/vanilla.cu, row_softmax_kernel) evaluates.
#pragma once

#include <cstdint>

#include "attnbench/cuda/element.hpp"
#include "attnbench/math/softmax.hpp"

namespace attnbench::gpu {

// One score folded into a running row state (the per-element form of the tile update).
AB_HD void online_softmax_push(math::OnlineSoftmaxRow& st, float s) {
  math::online_softmax_rescale(st, s);
  st.l += math::online_softmax_weight(st, s);
}

// The state of the concatenation of the parts seen by `a` and `b`.
AB_HD math::OnlineSoftmaxRow online_softmax_merge(math::OnlineSoftmaxRow a,
                                                  const math::OnlineSoftmaxRow& b) {
  math::online_softmax_rescale(a, b.m);               // a.l now in units of the merged max
  a.l += b.l * math::online_softmax_weight(a, b.m);   // b.l rescaled to the merged max
  return a;
}

// Thread t of `threads`: the state of columns t, t + threads, ... below `visible`.
AB_HD math::OnlineSoftmaxRow row_softmax_thread_state(const float* row, int64_t visible, int t,
                                                      int threads) {
  math::OnlineSoftmaxRow st = math::online_softmax_init();
  for (int64_t j = t; j < visible; j += threads) online_softmax_push(st, row[j]);
  return st;
}

// Thread t of `threads` writes its columns of `out` (`in` itself for the in-place form): the
// probability of in's score under the row's final state below `visible`, 0 past it (the
// causal mask), so every column of the row is written once, stored as `out_elem` (float32, or
// rounded to the 16-bit type the next product reads). A thread reads only the columns it
// writes, so in and out may be the same float32 row. Scores of -inf get probability 0.
AB_HD void row_softmax_thread_write(const float* in, void* out, Elem out_elem, int64_t n,
                                    int64_t visible, const math::OnlineSoftmaxRow& fin, int t,
                                    int threads) {
  const float inv = math::online_softmax_inv_sum(fin);
  for (int64_t j = t; j < n; j += threads)
    store_elem(out_elem, out, j,
               j < visible ? math::online_softmax_weight(fin, in[j]) * inv : 0.0f);
}

}  // namespace attnbench::gpu
