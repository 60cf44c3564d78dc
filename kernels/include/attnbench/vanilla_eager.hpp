// vanilla_eager's workspace and elementwise steps, shared by its CPU kernel
// (kernels/cpu/vanilla_eager.cpp, whose header comment lists the tensors eager PyTorch holds at
// the peak and why), its CUDA pipeline (cuda/vanilla_pipeline.hpp) and the tests. Written with
// AB_HD functions only, so the GPU evaluates exactly what the CPU tests check.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "attnbench/kernel.hpp"
#include "attnbench/math/hd.hpp"
#include "attnbench/workspace.hpp"

namespace attnbench {

// The tensors of softmax(masked_fill(matmul(q, k^T) * scale, mask, -inf)) @ v, in the order
// eager PyTorch creates them. Each [b, h, N, N] float32 tensor is written into the slot its
// input does not occupy, so two slots hold all four: a tensor's slot is reused only once the
// tensor is dead (its consumer has returned), as the framework's allocator reuses the block.
struct EagerTensors {
  float* raw;      // matmul(q, k^T)                        slot 0
  float* scaled;   // raw * scale                           slot 1
  float* masked;   // masked_fill(scaled, mask, -inf)       slot 0 (causal); = scaled otherwise
  float* probs;    // softmax(masked, dim = -1)             slot 1 (causal); slot 0 otherwise
  uint8_t* mask;   // triu(ones(N, N, bool), 1), shared by every sequence; null if bidirectional
};

// The layout: two [b, h, N, N] float32 slots, then (causal) the N x N boolean mask, one
// byte per element, shared by every sequence. The peak: two score tensors (an op's input and
// its output) and the mask.
inline EagerTensors eager_tensors(Carver& c, const Problem& p) {
  const int64_t scores = p.sequences() * p.seq_len * p.seq_len;
  float* slot0 = c.take<float>(scores);
  float* slot1 = c.take<float>(scores);
  if (p.causal) return {slot0, slot1, slot0, slot1, c.take<uint8_t>(p.seq_len * p.seq_len)};
  return {slot0, slot1, slot1, slot0, nullptr};  // no masked_fill: softmax reads `scaled`
}
inline EagerTensors eager_tensors(const Problem& p, void* workspace) {
  Carver c(workspace);
  return eager_tensors(c, p);
}
inline WorkspaceSize vanilla_eager_workspace(const Problem& p) {
  return {0, layout_bytes([&](Carver& c) { eager_tensors(c, p); })};
}

// The scale as the framework applies it: a Python float 1/sqrt(dh), cast to float32 by mul.
inline float eager_scale(int64_t head_dim) {
  return static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim)));
}

// triu(ones, 1): key j is masked for query i when it comes after it.
AB_HD uint8_t eager_mask_value(int64_t i, int64_t j) { return j > i ? 1 : 0; }

// masked_fill(x, m, -inf) of one element.
AB_HD float eager_masked_fill(float x, uint8_t m) { return m ? math::neg_inf_f() : x; }

}  // namespace attnbench
