// Row helpers of the CPU linear family (kernels/cpu/linear.cpp): the feature maps of
// math/linear.hpp applied to whole rows and blocks of rows, lane-parallel max / sum / dot,
// column reductions, and Hydra's row loop.
//
// With AVX-512 the rows go 16 floats at a time through exp16: math::exp_host's range
// reduction, a shorter polynomial, and 2^n built with vscalefps instead of exponent bits and
// clamps (about half the instructions; within about 3 ulp of exp, math::exp_f within 2), and
// LinRec's elu through elu16 (one range reduction instead of a Taylor series and exp - 1 on
// every lane). tests/test_linear_simd.cpp pins them to the shared formulas.
// Without AVX-512 (the kernels are also built for -march=x86-64-v2) the row loops call the
// shared formulas directly; `flatten` inlines math::exp_f into them, so they vectorise too.
#pragma once

#include <algorithm>
#include <cstdint>

#include "attnbench/cpu/avx512.hpp"

#include "attnbench/math/linear.hpp"

#if defined(__GNUC__)
#define AB_LIN_FLATTEN __attribute__((flatten))
#else
#define AB_LIN_FLATTEN
#endif

namespace attnbench::cpu::lin {

#if defined(__AVX512F__)
inline __mmask16 tail_mask(int64_t left) {
  return left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1u);
}

// exp of 16 floats: x = n ln2 + r (|r| <= ln2/2) as math::exp_host, exp(r) by a degree-5
// minimax polynomial (relative error 7.5e-8, about 3 ulp after float rounding, where
// exp_host's degree-7 Taylor series gives about 2: two FMAs fewer on the inner loops of the
// feature maps), times 2^n by vscalefps (which saturates to 0 and inf by itself); 0 below
// -87.33654 as exp_host, and for -inf and NaN.
inline __m512 exp16(__m512 x) {
  const __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.33654f), _CMP_GE_OQ);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(8.297654800e-03f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.191538319e-02f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.666757464e-01f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.999889433e-01f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(9.999997020e-01f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.000000119e+00f));
  return _mm512_maskz_scalef_ps(keep, p, n);
}

// Applies f (16 floats -> 16 floats) to x[0, n) into out, the tail masked.
template <class F>
inline void map16(const float* x, int64_t n, float* out, F f) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, f(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 k = tail_mask(n - i);
    _mm512_mask_storeu_ps(out + i, k, f(_mm512_maskz_loadu_ps(k, x + i)));
  }
}
#endif

// Prefetches n floats from p into L2 (not L1, which holds the block being worked on): the
// rows of a block or two ahead, so that the inputs, read from memory once, are not waited for.
inline void prefetch_l2(const float* p, int64_t n) {
  const char* b = reinterpret_cast<const char*>(p);
  for (int64_t x = 0; x < n * int64_t(sizeof(float)); x += 64) __builtin_prefetch(b + x, 0, 2);
}

// ---- reductions (16 lanes; the max is exact in any order, the sums are reassociated) ------

inline float row_max(const float* x, int64_t n) {
#if defined(__AVX512F__)
  __m512 acc = _mm512_set1_ps(math::neg_inf_f());
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) acc = _mm512_max_ps(acc, _mm512_loadu_ps(x + i));
  if (i < n) acc = _mm512_mask_max_ps(acc, tail_mask(n - i), acc, _mm512_maskz_loadu_ps(tail_mask(n - i), x + i));
  return _mm512_reduce_max_ps(acc);
#else
  float acc[16];
  for (int t = 0; t < 16; ++t) acc[t] = math::neg_inf_f();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int t = 0; t < 16; ++t) acc[t] = math::max_f(acc[t], x[i + t]);
  for (int t = 0; i + t < n; ++t) acc[t] = math::max_f(acc[t], x[i + t]);
  float mx = acc[0];
  for (int t = 1; t < 16; ++t) mx = math::max_f(mx, acc[t]);
  return mx;
#endif
}

inline float row_dot(const float* a, const float* b, int64_t n) {
#if defined(__AVX512F__)
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
  }
  for (; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);
    acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, a + i), _mm512_maskz_loadu_ps(k, b + i), acc0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
#else
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int t = 0; t < 16; ++t) acc[t] += a[i + t] * b[i + t];
  for (int t = 0; i + t < n; ++t) acc[t] += a[i + t] * b[i + t];
  float s = 0.0f;
  for (int t = 0; t < 16; ++t) s += acc[t];
  return s;
#endif
}

inline float row_sum(const float* x, int64_t n) {
#if defined(__AVX512F__)
  __m512 acc = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) acc = _mm512_add_ps(acc, _mm512_loadu_ps(x + i));
  if (i < n) acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(tail_mask(n - i), x + i));
  return _mm512_reduce_add_ps(acc);
#else
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int t = 0; t < 16; ++t) acc[t] += x[i + t];
  for (int t = 0; i + t < n; ++t) acc[t] += x[i + t];
  float s = 0.0f;
  for (int t = 0; t < 16; ++t) s += acc[t];
  return s;
#endif
}

// out[c] = init[c] (+ or max) x[r][c] over rows r < rows, for c < cols (row stride cols); out
// may be init. Four vectors of columns stay in registers down the rows.
template <bool is_max>
inline void column_reduce(const float* x, int64_t rows, int64_t cols, const float* init,
                          float* out) {
#if defined(__AVX512F__)
  for (int64_t c0 = 0; c0 < cols; c0 += 64) {
    __m512 acc[4];
    __mmask16 k[4];
    for (int v = 0; v < 4; ++v) {
      k[v] = c0 + 16 * v < cols ? tail_mask(cols - c0 - 16 * v) : __mmask16(0);
      acc[v] = _mm512_maskz_loadu_ps(k[v], init + c0 + 16 * v);
    }
    for (int64_t r = 0; r < rows; ++r)
      for (int v = 0; v < 4; ++v) {
        const __m512 y = _mm512_maskz_loadu_ps(k[v], x + r * cols + c0 + 16 * v);
        acc[v] = is_max ? _mm512_max_ps(acc[v], y) : _mm512_add_ps(acc[v], y);
      }
    for (int v = 0; v < 4; ++v) _mm512_mask_storeu_ps(out + c0 + 16 * v, k[v], acc[v]);
  }
#else
  if (out != init)
    for (int64_t c = 0; c < cols; ++c) out[c] = init[c];
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      out[c] = is_max ? math::max_f(out[c], x[r * cols + c]) : out[c] + x[r * cols + c];
#endif
}

// out[j] (+)= sum_k w[k] x[k * ld + j] for j < n, k < K; w null means all weights 1.
// Independent partial sums per vector of columns (no chain through memory).
inline void weighted_rows_sum(const float* x, int64_t ld, int64_t K, const float* w, int64_t n,
                              float* out, bool accumulate) {
#if defined(__AVX512F__)
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 k = tail_mask(n - j);
    __m512 acc[4] = {accumulate ? _mm512_maskz_loadu_ps(k, out + j) : _mm512_setzero_ps(),
                     _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    int64_t t = 0;
    for (; t + 4 <= K; t += 4)
      for (int u = 0; u < 4; ++u) {
        const __m512 y = _mm512_maskz_loadu_ps(k, x + (t + u) * ld + j);
        acc[u] = w ? _mm512_fmadd_ps(_mm512_set1_ps(w[t + u]), y, acc[u]) : _mm512_add_ps(acc[u], y);
      }
    for (; t < K; ++t) {
      const __m512 y = _mm512_maskz_loadu_ps(k, x + t * ld + j);
      acc[0] = w ? _mm512_fmadd_ps(_mm512_set1_ps(w[t]), y, acc[0]) : _mm512_add_ps(acc[0], y);
    }
    _mm512_mask_storeu_ps(out + j, k,
                          _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
  }
#else
  if (!accumulate)
    for (int64_t j = 0; j < n; ++j) out[j] = 0.0f;
  for (int64_t t = 0; t < K; ++t) {
    const float wt = w ? w[t] : 1.0f;
    for (int64_t j = 0; j < n; ++j) out[j] += wt * x[t * ld + j];
  }
#endif
}

// sum over g < count, c < n of x[g * stride + c]^2 (Hydra: one position's squares over every
// head), one horizontal sum at the end.
inline float sum_squares_strided(const float* x, int64_t count, int64_t stride, int64_t n) {
#if defined(__AVX512F__)
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  for (int64_t g = 0; g < count; ++g) {
    const float* r = x + g * stride;
    for (int64_t c = 0; c < n; c += 16) {
      const __m512 y = _mm512_maskz_loadu_ps(tail_mask(n - c), r + c);
      if (g & 1)
        acc1 = _mm512_fmadd_ps(y, y, acc1);
      else
        acc0 = _mm512_fmadd_ps(y, y, acc0);
    }
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
#else
  float ss = 0.0f;
  for (int64_t g = 0; g < count; ++g) ss += math::sum_squares_f(x + g * stride, int(n));
  return ss;
#endif
}

// Hydra down `rows` consecutive positions of one head (rows of n floats): with k, v,
// acc += rk[i] k_i * v_i (math::hydra_accumulate); then with q, out_i = rq[i] q_i * acc
// (math::hydra_readout). Causal forms pass both (each position reads the sum through itself);
// the bidirectional key pass only k, v; its readout only q.
inline void hydra_rows(const float* q, const float* k, const float* v, const float* rk,
                       const float* rq, int64_t rows, int64_t n, float* acc, float* out) {
#if defined(__AVX512F__)
  for (int64_t c0 = 0; c0 < n; c0 += 64) {  // up to four vectors of the row in registers
    __mmask16 m[4];
    __m512 a[4];
    for (int u = 0; u < 4; ++u) {
      m[u] = c0 + 16 * u < n ? tail_mask(n - c0 - 16 * u) : __mmask16(0);
      a[u] = _mm512_maskz_loadu_ps(m[u], acc + c0 + 16 * u);
    }
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t at = i * n + c0;
      if (k) {
        const __m512 f = _mm512_set1_ps(rk[i]);
        for (int u = 0; u < 4; ++u)
          if (m[u])
            a[u] = _mm512_fmadd_ps(_mm512_mul_ps(f, _mm512_maskz_loadu_ps(m[u], k + at + 16 * u)),
                                   _mm512_maskz_loadu_ps(m[u], v + at + 16 * u), a[u]);
      }
      if (q) {
        const __m512 f = _mm512_set1_ps(rq[i]);
        for (int u = 0; u < 4; ++u)
          if (m[u])
            _mm512_mask_storeu_ps(
                out + at + 16 * u, m[u],
                _mm512_mul_ps(_mm512_mul_ps(f, _mm512_maskz_loadu_ps(m[u], q + at + 16 * u)), a[u]));
      }
    }
    for (int u = 0; u < 4; ++u) _mm512_mask_storeu_ps(acc + c0 + 16 * u, m[u], a[u]);
  }
#else
  for (int64_t i = 0; i < rows; ++i) {
    if (k) math::hydra_accumulate(acc, k + i * n, v + i * n, rk[i], int(n));
    if (q) math::hydra_readout(q + i * n, acc, rq[i], int(n), out + i * n);
  }
#endif
}

// ---- feature maps over rows ----------------------------------------------------------------

// out = elu(x) + 1 (math::elu_plus_one_f) over n floats.
AB_LIN_FLATTEN inline void elu_plus_one(const float* x, int64_t n, float* out) {
#if defined(__AVX512F__)
  map16(x, n, out, [](__m512 v) {
    // exp of the positive lanes too (at most inf), replaced by x + 1
    const __mmask16 pos = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ);
    return _mm512_mask_add_ps(exp16(v), pos, v, _mm512_set1_ps(1.0f));
  });
#else
  math::elu_plus_one_row(x, int(n), out);
#endif
}

#if defined(__AVX512F__)
// math::elu_f: x for x > 0, e^x - 1 below. One range reduction for every lane, where the shared
// formula takes a Taylor series near 0 and exp - 1 further down (both on every lane in vector
// code): x = n ln2 + r as in exp16 (|r| <= ln2 / 2), e^r - 1 = p(r) by its Taylor series to
// degree 7 (truncation below 2e-8 relative), then e^x - 1 = 2^n p + (2^n - 1) in one FMA, with
// no cancellation near 0 (n = 0: p itself). Arguments below -88 give -1 (e^x under 2^-127).
inline __m512 elu16(__m512 v) {
  const __m512 zero = _mm512_setzero_ps();
  const __m512 x = _mm512_max_ps(_mm512_min_ps(v, zero), _mm512_set1_ps(-88.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_mul_ps(p, r);
  const __m512 two_n = _mm512_scalef_ps(_mm512_set1_ps(1.0f), n);
  const __m512 neg = _mm512_fmadd_ps(two_n, p, _mm512_sub_ps(two_n, _mm512_set1_ps(1.0f)));
  return _mm512_mask_mov_ps(neg, _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ), v);
}
#endif

// LinRec features of `rows` rows of n floats (row stride n): out = elu(x) / ||elu(x)||
// (math::linrec_feature_row), the norms over the features of each row.
AB_LIN_FLATTEN inline void linrec_features(const float* x, int64_t rows, int64_t n, float* out) {
#if defined(__AVX512F__)
  map16(x, rows * n, out, [](__m512 v) { return elu16(v); });
  for (int64_t r0 = 0; r0 < rows; r0 += 16) {  // 16 rows' norms at a time
    alignas(64) float inv[16];
    const int64_t nr = std::min<int64_t>(16, rows - r0);
    for (int64_t r = 0; r < nr; ++r) inv[r] = row_dot(out + (r0 + r) * n, out + (r0 + r) * n, n);
    for (int64_t r = nr; r < 16; ++r) inv[r] = 1.0f;
    const __m512 norm = _mm512_max_ps(_mm512_sqrt_ps(_mm512_load_ps(inv)),
                                      _mm512_set1_ps(math::kNormFloor));
    _mm512_store_ps(inv, _mm512_div_ps(_mm512_set1_ps(1.0f), norm));
    for (int64_t r = 0; r < nr; ++r) {
      const __m512 f = _mm512_set1_ps(inv[r]);
      float* row = out + (r0 + r) * n;
      map16(row, n, row, [f](__m512 v) { return _mm512_mul_ps(v, f); });
    }
  }
#else
  for (int64_t r = 0; r < rows; ++r) math::linrec_feature_row(x + r * n, int(n), out + r * n);
#endif
}

// FAVOR+: dots -> m^-1/2 (exp(dots - half_sq_norm - c) + 1e-4) in place (math::performer_finish).
AB_LIN_FLATTEN inline void performer_finish(float* dots, int64_t m, float half_sq_norm, float c) {
#if defined(__AVX512F__)
  const __m512 shift = _mm512_set1_ps(half_sq_norm + c);
  const __m512 ratio = _mm512_set1_ps(math::performer_ratio(int(m)));
  const __m512 eps = _mm512_set1_ps(math::kPerformerFeatureEps);
  // math::performer_finish subtracts half_sq_norm then c; (d - h) - c differs from d - (h + c)
  // by one rounding of the exponent, well inside exp's own error
  map16(dots, m, dots, [&](__m512 d) {
    return _mm512_mul_ps(ratio, _mm512_add_ps(exp16(_mm512_sub_ps(d, shift)), eps));
  });
#else
  math::performer_finish(dots, int(m), half_sq_norm, c);
#endif
}

// softmax over the n features of each of `rows` positions (math::softmax_row_f; row stride
// n, lane-parallel sums).
AB_LIN_FLATTEN inline void softmax_rows(const float* x, int64_t rows, int64_t n, float* out) {
#if defined(__AVX512F__)
  for (int64_t r0 = 0; r0 < rows; r0 += 16) {  // 16 rows at a time: maxima, exps, sums, scale
    alignas(64) float t[16];
    const int64_t nr = std::min<int64_t>(16, rows - r0);
    for (int64_t r = 0; r < nr; ++r) t[r] = row_max(x + (r0 + r) * n, n);
    for (int64_t r = 0; r < nr; ++r) {
      const __m512 m = _mm512_set1_ps(t[r]);
      map16(x + (r0 + r) * n, n, out + (r0 + r) * n,
            [m](__m512 v) { return exp16(_mm512_sub_ps(v, m)); });
    }
    for (int64_t r = 0; r < nr; ++r) t[r] = row_sum(out + (r0 + r) * n, n);
    for (int64_t r = nr; r < 16; ++r) t[r] = 1.0f;
    _mm512_store_ps(t, _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_load_ps(t)));
    for (int64_t r = 0; r < nr; ++r) {
      const __m512 f = _mm512_set1_ps(t[r]);
      float* row = out + (r0 + r) * n;
      map16(row, n, row, [f](__m512 v) { return _mm512_mul_ps(v, f); });
    }
  }
#else
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* o = out + r * n;
    const float mx = row_max(xr, n);
    for (int64_t i = 0; i < n; ++i) o[i] = math::exp_f(xr[i] - mx);
    const float inv = 1.0f / row_sum(o, n);
    for (int64_t i = 0; i < n; ++i) o[i] *= inv;
  }
#endif
}

// Efficient attention's causal block: for r < rows, z += e[r] (the running normalisers, m
// columns), then q[r] /= z. With AVX-512 the division is a reciprocal estimate and one Newton
// step (within about 1 ulp of the quotient: a vector division every row of 16 columns cost
// about an eighth of the kernel); otherwise the quotient itself.
inline void running_normalise(const float* e, int64_t rows, int64_t m, float* z, float* q) {
#if defined(__AVX512F__)
  for (int64_t c = 0; c < m; c += 16) {
    const __mmask16 k = tail_mask(m - c);
    __m512 zc = _mm512_maskz_loadu_ps(k, z + c);
    for (int64_t r = 0; r < rows; ++r) {
      zc = _mm512_add_ps(zc, _mm512_maskz_loadu_ps(k, e + r * m + c));
      const __m512 x0 = _mm512_rcp14_ps(zc);
      const __m512 inv =
          _mm512_fmadd_ps(x0, _mm512_fnmadd_ps(zc, x0, _mm512_set1_ps(1.0f)), x0);
      const __m512 qr = _mm512_maskz_loadu_ps(k, q + r * m + c);
      _mm512_mask_storeu_ps(q + r * m + c, k, _mm512_mul_ps(qr, inv));
    }
    _mm512_mask_storeu_ps(z + c, k, zc);
  }
#else
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < m; ++c) {
      z[c] += e[r * m + c];
      q[r * m + c] /= z[c];
    }
#endif
}

// out[i] = exp(x[i] - shift[i]) over n floats.
AB_LIN_FLATTEN inline void exp_shifted(const float* x, const float* shift, int64_t n, float* out) {
#if defined(__AVX512F__)
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(out + i,
                     exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(shift + i))));
  if (i < n) {
    const __mmask16 k = tail_mask(n - i);
    _mm512_mask_storeu_ps(
        out + i, k,
        exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), _mm512_maskz_loadu_ps(k, shift + i))));
  }
#else
  for (int64_t i = 0; i < n; ++i) out[i] = math::exp_f(x[i] - shift[i]);
#endif
}

}  // namespace attnbench::cpu::lin
