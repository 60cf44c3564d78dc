// vanilla_materialized's CUDA pipeline (kernels.md section 1) over a launcher
// (workspace.hpp): S = scale Q K^T for all sequences in one strided-batched product, the row
// softmax in place (row_softmax.hpp), O = P V. kernels/cuda/vanilla.cu runs it on the GPU;
// tests/test_cuda_tiling.cpp runs it on the CPU with an emulated cuBLAS.
#pragma once

#include <cmath>

#include "attnbench/cuda/gemm.hpp"
#include "attnbench/kernel.hpp"

namespace attnbench::gpu {

inline WorkspaceSize vanilla_materialized_workspace(const Problem& p) {
  return {0, static_cast<size_t>(p.sequences()) * static_cast<size_t>(p.seq_len) *
                 static_cast<size_t>(p.seq_len) * sizeof(float)};
}

template <class L>
void vanilla_materialized_run(L& l, const Problem& p, const Inputs& in, void* scratch,
                              float* out) {
  const int64_t S = p.sequences(), N = p.seq_len, dh = p.head_dim;
  const float scale = 1.0f / std::sqrt(float(dh));
  float* scores = static_cast<float*>(scratch);  // [S, N, N], softmax in place
  l.gemm_strided("scores", vanilla_scores_gemm(S, N, dh, scale), in.k, in.q, scores);
  l.row_softmax(scores, S, N, p.causal);
  l.gemm_strided("P V", vanilla_pv_gemm(S, N, dh), in.v, scores, out);
}

}  // namespace attnbench::gpu
