// The CUDA pipelines of vanilla_materialized and vanilla_eager (docs/methods.md section 1) over a
// launcher (workspace.hpp). kernels/cuda/vanilla.cu runs them on the GPU;
// tests/test_cuda_tiling.cpp runs them on the CPU with an emulated cuBLAS.
//   vanilla_materialized  S = scale Q K^T for all sequences in one strided-batched product, the
//                         row softmax in place (row_softmax.hpp), O = P V. Every precision
//                         (docs/methods.md section 0.3): tf32 runs both products on TF32 tensor
//                         cores; bf16 / fp16 read 16-bit q, k, v, keep the scores and the
//                         softmax in float32, store the probabilities rounded to the 16-bit
//                         type in a second buffer for P V, and write a 16-bit output.
//   vanilla_eager         eager PyTorch's ops, each into a fresh tensor of the workspace
//                         (vanilla_eager.hpp): raw = Q K^T, scaled = raw * scale, when causal
//                         the triu mask and masked = masked_fill(scaled, mask, -inf), probs =
//                         the row softmax over whole rows (masked keys are -inf), O = probs V.
//                         fp32 and tf32 (both products on TF32 tensor cores).
#pragma once

#include <cmath>
#include <cstdint>

#include "attnbench/cuda/element.hpp"
#include "attnbench/cuda/gemm.hpp"
#include "attnbench/cuda/tiling.hpp"
#include "attnbench/kernel.hpp"
#include "attnbench/vanilla_eager.hpp"
#include "attnbench/workspace.hpp"

namespace attnbench::gpu {

// The float32 scores [S, N, N], then for 16-bit precisions the probabilities [S, N, N] in the
// 16-bit type (the second product's operand).
struct MaterializedBuffers {
  float* scores;
  void* probs;  // = scores for fp32 and tf32 (softmax in place)
};
inline size_t materialized_elems(const Problem& p) {
  return static_cast<size_t>(p.sequences()) * static_cast<size_t>(p.seq_len) *
         static_cast<size_t>(p.seq_len);
}
inline MaterializedBuffers materialized_buffers(Carver& c, const Problem& p) {
  const int64_t elems = static_cast<int64_t>(materialized_elems(p));
  float* scores = c.take<float>(elems);
  const Elem e = storage_elem(p.precision);
  if (e == Elem::f32) return {scores, scores};
  return {scores, c.take<char>(elems * static_cast<int64_t>(elem_bytes(e)))};
}
inline MaterializedBuffers materialized_buffers(const Problem& p, void* scratch) {
  Carver c(scratch);
  return materialized_buffers(c, p);
}
inline WorkspaceSize vanilla_materialized_workspace(const Problem& p) {
  return {0, layout_bytes([&](Carver& c) { materialized_buffers(c, p); })};
}

template <class L>
void vanilla_materialized_run(L& l, const Problem& p, const Inputs& in, void* scratch,
                              float* out) {
  const int64_t S = p.sequences(), N = p.seq_len, dh = p.head_dim;
  const float scale = 1.0f / std::sqrt(float(dh));
  const Elem io = storage_elem(p.precision);
  const MaterializedBuffers b = materialized_buffers(p, scratch);
  l.gemm_strided("scores", typed_gemm(vanilla_scores_gemm(S, N, dh, scale), p.precision, Elem::f32),
                 in.k, in.q, b.scores);
  l.row_softmax(b.scores, b.probs, S, N, p.causal, io);
  l.gemm_strided("P V", typed_gemm(vanilla_pv_gemm(S, N, dh), p.precision, io), in.v, b.probs,
                 out);
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
  const Precision pr = p.precision;  // fp32 or tf32: float32 tensors throughout
  l.gemm_strided("Q K^T", typed_gemm(vanilla_scores_gemm(S, N, dh, 1.0f), pr, Elem::f32), in.k,
                 in.q, t.raw);
  l.each("scale", S * N * N, EagerScale{t.raw, t.scaled, eager_scale(dh)});
  if (p.causal) {
    l.each("triu mask", eager_mask_items(N), EagerCausalMask{t.mask, N});
    l.each("masked_fill", eager_fill_items(S, N),
           EagerMaskedFill{t.scaled, t.mask, t.masked, S, N});
  }
  l.row_softmax(t.masked, t.probs, S, N, /*causal=*/false, Elem::f32);  // -inf is the mask
  l.gemm_strided("P V", typed_gemm(vanilla_pv_gemm(S, N, dh), pr, Elem::f32), in.v, t.probs, out);
}

}  // namespace attnbench::gpu
