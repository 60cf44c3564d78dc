// LISA weights (kernels.md section 2), shared by the CPU and CUDA LISA kernels.
//
// For position i and codebook b with query code c = codes[i, b]:
//   a[w] = H[w] exp(T[c][w]) / sum_w' H[w'] exp(T[c][w'])
// The kernels precompute E[c][w] = exp(T[c][w] - max_w' T[c][w']) once per codebook (prepare,
// outside the timed region, as the paper's profiling does), so every E <= 1 and nothing can
// overflow. The ratio is the same as with the spec's "subtract the max over w with H > 0";
// only when that shifted sum underflows (all histogram mass sits on logits more than ~80
// below the row max) is the exact stable form recomputed from T.
#pragma once

#include "attnbench/math/hd.hpp"

namespace attnbench::math {

// Smallest normalizer trusted from the precomputed table; below it the exact path is used.
constexpr float kLisaMinTableSum = 1e-30f;

// Writes the W weights of one (position, codebook) pair to a[0..W) and returns Z (> 0),
// the sum they were normalized by (in table units). H must have at least one positive entry.
// e_row and t_row are row c of E and of T; stride 1.
// On the host the sum runs in kLisaLanes independent partial sums (one SIMD register's worth,
// which the compiler vectorizes; a single running sum is a chain of dependent adds, W * 4
// cycles per codebook); on the device, where one thread does one (position, codebook), in
// order.
constexpr int kLisaLanes = 16;

// The sizes a LISA histogram step needs, read once from the problem's parameters.
struct LisaDims {
  int64_t seq_len;    // N
  int64_t codebooks;  // B
  int64_t codewords;  // W
};

AB_HD float lisa_weights(const float* e_row, const float* t_row, const float* hist, int W,
                         float* a) {
  float z = 0.0f;
#if defined(__CUDA_ARCH__)
  for (int w = 0; w < W; ++w) {
    a[w] = hist[w] * e_row[w];
    z += a[w];
  }
#else
  float part[kLisaLanes] = {};
  int w0 = 0;
  for (; w0 + kLisaLanes <= W; w0 += kLisaLanes)
    for (int l = 0; l < kLisaLanes; ++l) {
      a[w0 + l] = hist[w0 + l] * e_row[w0 + l];
      part[l] += a[w0 + l];
    }
  for (int w = w0; w < W; ++w) {
    a[w] = hist[w] * e_row[w];
    part[w - w0] += a[w];
  }
  for (int width = kLisaLanes / 2; width >= 1; width /= 2)
    for (int l = 0; l < width; ++l) part[l] += part[l + width];
  z = part[0];
#endif
  if (!(z >= kLisaMinTableSum)) {
    // exact stable form: subtract the max of the logits with H > 0
    float mx = neg_inf_f();
    for (int w = 0; w < W; ++w)
      if (hist[w] > 0.0f) mx = max_f(mx, t_row[w]);
    z = 0.0f;
    for (int w = 0; w < W; ++w) {
      a[w] = hist[w] > 0.0f ? hist[w] * exp_f(t_row[w] - mx) : 0.0f;
      z += a[w];
    }
  }
  const float inv = 1.0f / z;
  for (int w = 0; w < W; ++w) a[w] *= inv;
  return z;
}

// Index of the largest probability (lowest index on ties): LISA-Soft's query code.
AB_HD int argmax_row(const float* p, int W) {
  int best = 0;
  for (int w = 1; w < W; ++w)
    if (p[w] > p[best]) best = w;
  return best;
}

// Decay recurrence H[i] = exp(-lambda) H[i-1] + onehot(codes[i]): the per-step factor.
AB_HD float lisa_decay_factor(double lambda) { return lambda > 0.0 ? expf(-(float)lambda) : 1.0f; }

}  // namespace attnbench::math
