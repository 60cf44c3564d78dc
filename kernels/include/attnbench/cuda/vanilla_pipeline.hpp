// The CUDA pipelines of vanilla_materialized and vanilla_eager (kernels.md section 1) over a
// launcher (workspace.hpp). kernels/cuda/vanilla.cu runs them on the GPU;
// tests/test_cuda_tiling.cpp runs them on the CPU with an emulated cuBLAS.
//   vanilla_materialized  S = scale Q K^T for all sequences in one strided-batched product, the
//                         row softmax in place (row_softmax.hpp), O = P V.
//   vanilla_eager         eager PyTorch's ops, each into a fresh tensor of the workspace
//                         (vanilla_eager.hpp): raw = Q K^T, scaled = raw * scale, when causal
//                         the triu mask and masked = masked_fill(scaled, mask, -inf), probs =
//                         the row softmax over whole rows (masked keys are -inf), O = probs V.
#pragma once

#include <cmath>
#include <cstdint>

#include "attnbench/cuda/gemm.hpp"
#include "attnbench/cuda/tiling.hpp"
#include "attnbench/kernel.hpp"
#include "attnbench/vanilla_eager.hpp"

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
  l.row_softmax(scores, scores, S, N, p.causal);
  l.gemm_strided("P V", vanilla_pv_gemm(S, N, dh), in.v, scores, out);
}

// ---- vanilla_eager's functors (one GPU thread per item, index maps in tiling.hpp) ----------

// scaled = raw * scale, item = score.
struct EagerScale {
  const float* raw;
  float* scaled;
  float scale;
  AB_HD void operator()(int64_t x) const { scaled[x] = raw[x] * scale; }
};

// mask = triu(ones(N, N), 1), item = mask element.
struct EagerCausalMask {
  uint8_t* mask;
  int64_t n;
  AB_HD void operator()(int64_t item) const {
    const EagerMaskCell c = eager_mask_cell(item, n);
    mask[item] = eager_mask_value(c.i, c.j);
  }
};

// masked = masked_fill(scaled, mask, -inf), item = (mask element, group of sequences).
struct EagerMaskedFill {
  const float* scaled;
  const uint8_t* mask;
  float* masked;
  int64_t sequences, n;
  AB_HD void operator()(int64_t item) const {
    const EagerFillItem it = eager_fill_item(item, sequences, n);
    const uint8_t m = mask[it.y];
    for (int64_t s = it.s_begin; s < it.s_end; ++s) {
      const int64_t x = eager_fill_score(it, s, n);
      masked[x] = eager_masked_fill(scaled[x], m);
    }
  }
};

template <class L>
void vanilla_eager_run(L& l, const Problem& p, const Inputs& in, void* scratch, float* out) {
  const int64_t S = p.sequences(), N = p.seq_len, dh = p.head_dim;
  const EagerTensors t = eager_tensors(p, scratch);
  l.gemm_strided("Q K^T", vanilla_scores_gemm(S, N, dh, 1.0f), in.k, in.q, t.raw);
  l.each("scale", S * N * N, EagerScale{t.raw, t.scaled, eager_scale(dh)});
  if (p.causal) {
    l.each("triu mask", eager_mask_items(N), EagerCausalMask{t.mask, N});
    l.each("masked_fill", eager_fill_items(S, N),
           EagerMaskedFill{t.scaled, t.mask, t.masked, S, N});
  }
  l.row_softmax(t.masked, t.probs, S, N, /*causal=*/false);  // the -inf scores are the mask
  l.gemm_strided("P V", vanilla_pv_gemm(S, N, dh), in.v, t.probs, out);
}

}  // namespace attnbench::gpu
