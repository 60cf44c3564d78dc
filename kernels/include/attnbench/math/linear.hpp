// Linear and kernelized attentions (docs/methods.md section 3): the per-element and per-position
// formulas, shared by the CPU kernels (kernels/cpu/linear.cpp) and any CUDA version. Raw
// pointers and sizes only: no containers, no exceptions, no OpenMP.
//
// A feature-map attention is, per head, with feature maps fq, fk of width m:
//   S_i = sum_{j<=i} fk(k_j) v_j^T  (m x dh),   z_i = sum_{j<=i} fk(k_j)   (causal; all j when
//   bidirectional),   o_i = scale * fq(q_i)^T S_i / (fq(q_i) . z_i + eps)   (or no denominator).
//   linear_elu   fq = fk = elu + 1, denominator with eps 1e-6, scale 1
//   linrec       fq = fk = elu / ||elu||, no denominator, scale 1/sqrt(dh)
//   performer    fq, fk = the FAVOR+ random features below, denominator with eps 1e-6
// Efficient attention and Hydra have their own small helpers at the end.
#pragma once

#include "attnbench/math/hd.hpp"

// The element functions below sit in the innermost loops; they must inline for those loops
// to vectorise, which `inline` alone does not guarantee.
#if defined(__CUDACC__)
#define AB_HD_ELEM __host__ __device__ __forceinline__
#elif defined(__GNUC__)
#define AB_HD_ELEM inline __attribute__((always_inline))
#else
#define AB_HD_ELEM inline
#endif

namespace attnbench::math {

constexpr float kLinearDenominatorEps = 1e-6f;  // Linear Transformer / Performer denominator
constexpr float kPerformerFeatureEps = 1e-4f;   // added to every FAVOR+ feature
// l2 normalisation divides by max(||x||, kNormFloor), as torch.nn.functional.normalize does;
// for any nonzero x this is exactly x / ||x|| (suite choice: a zero vector maps to zero).
constexpr float kNormFloor = 1e-12f;

// ---- exp ------------------------------------------------------------------------------------
// Every exponent in this file is <= 0 (shifted by a max). math::exp_f (hd.hpp) is the suite's
// one exp: a vectorizable polynomial on the host, expf on the device.

// e^x - 1 for x <= 0 keeping relative accuracy near 0: a degree-8 Taylor series of expm1 on
// (-0.35, 0], exp_f(x) - 1 below (where the subtraction loses at most 2 bits).
AB_HD_ELEM float expm1_neg_f(float x) {
  float p = 1.0f / 40320.0f;
  p = fmaf(p, x, 1.0f / 5040.0f);
  p = fmaf(p, x, 1.0f / 720.0f);
  p = fmaf(p, x, 1.0f / 120.0f);
  p = fmaf(p, x, 1.0f / 24.0f);
  p = fmaf(p, x, 1.0f / 6.0f);
  p = fmaf(p, x, 0.5f);
  p = fmaf(p, x, 1.0f);
  const float small = p * x;
  const float large = exp_f(x) - 1.0f;
  return x > -0.35f ? small : large;
}

// ---- feature maps -----------------------------------------------------------------------

// elu with alpha 1 (e^x - 1 below 0, accurate near 0).
AB_HD_ELEM float elu_f(float x) {
  const float neg = expm1_neg_f(x < 0.0f ? x : 0.0f);
  return x > 0.0f ? x : neg;
}
// elu(x) + 1, written so that no 1 + (e^x - 1) cancellation happens for x <= 0.
AB_HD_ELEM float elu_plus_one_f(float x) {
  const float neg = exp_f(x < 0.0f ? x : 0.0f);
  return x > 0.0f ? x + 1.0f : neg;
}

// Dot product with eight partial sums: no serial dependency chain, and it vectorises.
AB_HD float dot_f(const float* a, const float* b, int n) {
  float acc[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int t = 0; t < 8; ++t) acc[t] += a[i + t] * b[i + t];
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}
AB_HD float sum_squares_f(const float* x, int n) { return dot_f(x, x, n); }
AB_HD float row_max_f(const float* x, int n) {
  float m = x[0];
  for (int i = 1; i < n; ++i) m = max_f(m, x[i]);
  return m;
}
// 1 / max(||x||, kNormFloor) from the sum of squares.
AB_HD float inv_l2_norm_f(float sum_squares) {
  const float n = sqrtf(sum_squares);
  return 1.0f / (n > kNormFloor ? n : kNormFloor);
}

// Linear Transformer: out = elu(x) + 1, elementwise.
AB_HD void elu_plus_one_row(const float* x, int n, float* out) {
  for (int i = 0; i < n; ++i) out[i] = elu_plus_one_f(x[i]);
}

// LinRec: out = elu(x) / ||elu(x)||, norm over the head features of one position.
AB_HD void linrec_feature_row(const float* x, int n, float* out) {
  for (int i = 0; i < n; ++i) out[i] = elu_f(x[i]);
  const float inv = inv_l2_norm_f(sum_squares_f(out, n));
  for (int i = 0; i < n; ++i) out[i] *= inv;
}

// Efficient Attention's query map: softmax over the features of one position.
AB_HD void softmax_row_f(const float* x, int n, float* out) {
  const float m = row_max_f(x, n);
  float s = 0.0f;
  for (int i = 0; i < n; ++i) s += (out[i] = exp_f(x[i] - m));
  const float inv = 1.0f / s;
  for (int i = 0; i < n; ++i) out[i] *= inv;
}

// ---- Performer FAVOR+ ---------------------------------------------------------------------
// phi(x)_l = m^-1/2 (exp(w_l . x' - ||x'||^2 / 2 - c) + 1e-4), x' = dh^-1/4 x, w_l row l of
// the m x dh projection (random_features.hpp). c: max_l w_l . x' of the row itself for
// queries; for keys the max over every position and feature of the sequence (the caller
// passes it). The kernels compute the dots w_l . x' for a block of rows as one product.

AB_HD float performer_input_scale(int dh) { return 1.0f / sqrtf(sqrtf(float(dh))); }
AB_HD float performer_ratio(int m) { return 1.0f / sqrtf(float(m)); }
// ||x'||^2 / 2 for x' = dh^-1/4 x.
AB_HD float performer_half_sq_norm(const float* x, int dh) {
  return 0.5f * sum_squares_f(x, dh) / sqrtf(float(dh));
}
// dots[l] = w_l . x' for the m rows of w (m x dh, row-major).
AB_HD void performer_dots(const float* x, int dh, const float* w, int m, float* dots) {
  const float s = performer_input_scale(dh);
  for (int l = 0; l < m; ++l) dots[l] = s * dot_f(w + l * dh, x, dh);
}
// Turns the m dots of one row into its features, in place.
AB_HD void performer_finish(float* dots, int m, float half_sq_norm, float c) {
  const float ratio = performer_ratio(m);
  for (int l = 0; l < m; ++l)
    dots[l] = ratio * (exp_f(dots[l] - half_sq_norm - c) + kPerformerFeatureEps);
}
// The features of one vector. is_query: c is the row's own max; else c = key_c.
AB_HD void performer_feature(const float* x, int dh, const float* w, int m, bool is_query,
                             float key_c, float* out) {
  performer_dots(x, dh, w, m, out);
  const float c = is_query ? row_max_f(out, m) : key_c;
  performer_finish(out, m, performer_half_sq_norm(x, dh), c);
}

// ---- the causal state of one position ------------------------------------------------------

// S += fk v^T (m x dh, row-major), z += fk (z may be null when there is no denominator).
AB_HD void linear_state_update(float* S, float* z, const float* fk, const float* v, int m, int dh) {
  for (int c = 0; c < m; ++c) {
    const float f = fk[c];
    float* row = S + c * dh;
    for (int e = 0; e < dh; ++e) row[e] += f * v[e];
    if (z) z[c] += f;
  }
}
// Output factor of one row: scale / (fq . z + eps) with a denominator (z non-null), else scale.
AB_HD float linear_output_factor(const float* fq, const float* z, int m, float eps, float scale) {
  return z ? scale / (dot_f(fq, z, m) + eps) : scale;
}
// out = factor * fq^T S, with factor = linear_output_factor(...).
AB_HD void linear_readout(const float* fq, const float* S, const float* z, int m, int dh, float eps,
                          float scale, float* out) {
  for (int e = 0; e < dh; ++e) out[e] = 0.0f;
  for (int c = 0; c < m; ++c) {
    const float f = fq[c];
    const float* row = S + c * dh;
    for (int e = 0; e < dh; ++e) out[e] += f * row[e];
  }
  const float factor = linear_output_factor(fq, z, m, eps, scale);
  for (int e = 0; e < dh; ++e) out[e] *= factor;
}

// ---- Efficient Attention (Shen et al.) ------------------------------------------------------
// O = softmax_rows(Q) (softmax_cols(K)^T V). Keys are normalised per feature column c over
// positions: the kernels keep a running column max cmax[c] and the state S[c, :] = sum_j
// exp(k_jc - cmax[c]) v_j, z[c] = sum_j exp(k_jc - cmax[c]); a new max rescales both.
// Query row i then reads o_i = sum_c (softmax(q_i)[c] / z_i[c]) S_i[c, :].

// exp(m_old - m_new), and 0 for an empty column (m_old = -inf), so nothing becomes NaN.
AB_HD float column_rescale_f(float m_old, float m_new) {
  return m_old == neg_inf_f() ? 0.0f : exp_f(m_old - m_new);
}
// Causal per-position update of the column state (the row-at-a-time form of the kernels'
// block update): raises cmax, rescales S and z, adds exp(k - cmax) v^T.
AB_HD void column_softmax_update(float* S, float* z, float* cmax, const float* k, const float* v,
                                 int dh) {
  for (int c = 0; c < dh; ++c) {
    const float m_new = max_f(cmax[c], k[c]);
    const float r = column_rescale_f(cmax[c], m_new);
    const float e = exp_f(k[c] - m_new);
    float* row = S + c * dh;
    for (int x = 0; x < dh; ++x) row[x] = row[x] * r + e * v[x];
    z[c] = z[c] * r + e;
    cmax[c] = m_new;
  }
}
// o = sum_c (sq[c] / z[c]) S[c, :] with sq = softmax(q) already applied.
AB_HD void column_softmax_readout(const float* sq, const float* S, const float* z, int dh,
                                  float* out) {
  for (int e = 0; e < dh; ++e) out[e] = 0.0f;
  for (int c = 0; c < dh; ++c) {
    const float a = sq[c] / z[c];
    const float* row = S + c * dh;
    for (int e = 0; e < dh; ++e) out[e] += a * row[e];
  }
}

// The chunked parallel-prefix form (the CUDA kernel, attnbench/cuda/linear_pipeline.hpp). Every
// partial state (a chunk's, a prefix's) is kept at its own column max, so no exponent is ever
// taken against a max it is far below; values combine only through column_rescale_f.
//
// One element of a column's state (an S[c, e] or z[c]): part a at max m_a merged with part b at
// max m_b into the state at m >= both (either part may be empty: max -inf, value 0).
AB_HD float column_merge_f(float a, float m_a, float b, float m_b, float m) {
  return a * column_rescale_f(m_a, m) + b * column_rescale_f(m_b, m);
}
// Column c at one row: from the state before the row's chunk (max m0, normaliser z0) and the
// chunk's keys up to and including the row, k[0], k[stride], ..., k[(count - 1) * stride] (their
// column c), the running max (into *m_out) and the normaliser at that max (returned); the
// row-at-a-time equivalent of `count` column_softmax_update steps. The max is exact, so z >= 1.
AB_HD float column_prefix_normaliser(const float* k, int64_t stride, int64_t count, float m0,
                                     float z0, float* m_out) {
  float m = m0;
  for (int64_t j = 0; j < count; ++j) m = max_f(m, k[j * stride]);
  float z = z0 * column_rescale_f(m0, m);
  for (int64_t j = 0; j < count; ++j) z += exp_f(k[j * stride] - m);
  *m_out = m;
  return z;
}
// Weight of key k (a row of dh) in a row's readout, at the row's running maxima m:
// sum_c coef[c] exp(k[c] - m[c]), with coef = softmax(q)[c] / z[c] (z at m).
AB_HD float column_softmax_key_weight(const float* coef, const float* k, const float* m, int dh) {
  float w = 0.0f;
  for (int c = 0; c < dh; ++c) w += coef[c] * exp_f(k[c] - m[c]);
  return w;
}
// Element e of the readout sum_c coef[c] S[c, :] (S dh x dh, row-major), summed in
// column_softmax_readout's order: with coef[c] = sq[c] / z[c] it is that function's out[e].
AB_HD float column_softmax_readout_at(const float* coef, const float* S, int dh, int e) {
  float o = 0.0f;
  for (int c = 0; c < dh; ++c) o += coef[c] * S[c * dh + e];
  return o;
}

// ---- Hydra attention --------------------------------------------------------------------------
// o_t = q^_t * sum_{s<=t} k^_s * v_s elementwise over the full width; q^ = q / ||q|| with the
// norm over the full width (the caller sums squares over every head and passes the inverse
// norms rq, rk; see kernels/cpu/linear.cpp for the head layout).

// acc += rk * k * v over n features (one head's slice of the width).
AB_HD void hydra_accumulate(float* acc, const float* k, const float* v, float rk, int n) {
  for (int c = 0; c < n; ++c) acc[c] += (rk * k[c]) * v[c];
}
// out = rq * q * acc over n features.
AB_HD void hydra_readout(const float* q, const float* acc, float rq, int n, float* out) {
  for (int c = 0; c < n; ++c) out[c] = (rq * q[c]) * acc[c];
}

}  // namespace attnbench::math
