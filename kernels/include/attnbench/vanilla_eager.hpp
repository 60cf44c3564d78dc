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

// One [b, h, N, N] float32 tensor, rounded up to the workspace's 64-byte sub-buffer alignment.
inline size_t eager_scores_bytes(const Problem& p) {
  return align_bytes(static_cast<size_t>(p.sequences()) * static_cast<size_t>(p.seq_len) *
                     static_cast<size_t>(p.seq_len) * sizeof(float));
}
// The N x N boolean mask, one byte per element (causal only).
inline size_t eager_mask_bytes(const Problem& p) {
  return p.causal ? align_bytes(static_cast<size_t>(p.seq_len) * static_cast<size_t>(p.seq_len))
                  : 0;
}

// The peak: two score tensors (an op's input and its output) and the mask.
inline WorkspaceSize vanilla_eager_workspace(const Problem& p) {
  return {0, 2 * eager_scores_bytes(p) + eager_mask_bytes(p)};
}

inline EagerTensors eager_tensors(const Problem& p, void* workspace) {
  char* base = static_cast<char*>(workspace);
  float* slot0 = reinterpret_cast<float*>(base);
  float* slot1 = reinterpret_cast<float*>(base + eager_scores_bytes(p));
  if (p.causal)
    return {slot0, slot1, slot0, slot1,
            reinterpret_cast<uint8_t*>(base + 2 * eager_scores_bytes(p))};
  return {slot0, slot1, slot1, slot0, nullptr};  // no masked_fill: softmax reads `scaled`
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
