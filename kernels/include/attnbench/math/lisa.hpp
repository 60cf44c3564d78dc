// LISA (docs/methods.md section 2): what the CPU and CUDA LISA kernels share. The prepared tables'
// layout (lisa_carve_tables), the exp table E (lisa_exp_table_row), the weights
// (lisa_weights), the query code of a soft assignment (argmax_row) and the decay of the
// histogram over one step and over a chunk (lisa_decay_factor, lisa_decay_span).
//
// For position i and codebook b with query code c = codes[i, b]:
//   a[w] = H[w] exp(T[c][w]) / sum_w' H[w'] exp(T[c][w'])
// The kernels precompute E[c][w] = exp(T[c][w] - max_w' T[c][w']) once per codebook (prepare,
// outside the timed region, as the paper's profiling does), so every E <= 1 and nothing can
// overflow. The ratio is the same as with the spec's "subtract the max over w with H > 0";
// only when that shifted sum underflows (all histogram mass sits on logits more than ~80
// below the row max) is the exact stable form recomputed from T.
#pragma once

#include <cstdint>

#include "attnbench/math/hd.hpp"
#include "attnbench/problem.hpp"
#include "attnbench/workspace.hpp"

namespace attnbench::math {

// The prepared tables, per head and codebook: T and E [h, B, W, W], then with projections
// Cq, Ck, Cv [h, B, W, dh] (without them Cv is the input codebooks; Cq and Ck are prepare's
// temporaries). The CPU and CUDA kernels carve their prepared workspace with this one layout.
struct LisaTables {
  float* t;
  float* e;
  float* cq;
  float* ck;
  float* cv;
};
inline LisaTables lisa_carve_tables(Carver& c, const Problem& p) {
  const int64_t HB = p.heads * p.int_param("codebooks"), W = p.int_param("codewords"),
                dh = p.head_dim;
  LisaTables t{};
  t.t = c.take<float>(HB * W * W);
  t.e = c.take<float>(HB * W * W);
  if (p.flag_param("projections")) {
    t.cq = c.take<float>(HB * W * dh);
    t.ck = c.take<float>(HB * W * dh);
    t.cv = c.take<float>(HB * W * dh);
  }
  return t;
}

// Row c of E = exp(T[c] - max_w T[c][w]): every entry <= 1. Untimed (prepare), so it uses the
// C library's expf on the host (as the CPU kernel always has) and the device's expf.
AB_HD void lisa_exp_table_row(const float* t_row, int64_t W, float* e_row) {
  float mx = t_row[0];
  for (int64_t w = 1; w < W; ++w) mx = max_f(mx, t_row[w]);
  for (int64_t w = 0; w < W; ++w) e_row[w] = expf(t_row[w] - mx);
}

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
// The decay over `steps` positions, exp(-lambda steps) (in double, then rounded once): what a
// histogram carried over a chunk of that length is multiplied by.
AB_HD float lisa_decay_span(double lambda, int64_t steps) {
  return lambda > 0.0 ? float(exp(-lambda * double(steps))) : 1.0f;
}

}  // namespace attnbench::math
