// LISA's per-row arithmetic on the CPU with AVX-512, bit for bit the shared formulas of
// math/lisa.hpp that the CUDA kernels evaluate (tests/test_lisa.cpp compares them over many
// widths, ties and the exact-path fallback). The generic loops of math::lisa_weights and
// math::argmax_row cost about 70 cycles per codebook at W = 16 (the partial-sum tree and the
// tie-breaking compare chain stay scalar); these take a few vector instructions per 16
// codewords. Without AVX-512 they are the shared functions.
#pragma once

#include <cstdint>

#include "attnbench/cpu/avx512.hpp"
#include "attnbench/math/lisa.hpp"

namespace attnbench::cpu::lisa {

#if defined(__AVX512F__)
inline __mmask16 lanes_below(int left) {
  return left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1u);
}
#endif

// math::lisa_weights: a[w] = H[w] E[w] / Z, returns Z. The host form sums in 16 partial sums
// (lane l takes w = l mod 16), then adds lanes l and l + 8, l and l + 4, l and l + 2, l and
// l + 1: exactly the pairs _mm512_reduce_add_ps adds, so the sum is the same to the bit.
inline float weights(const float* e_row, const float* t_row, const float* hist, int W,
                     float* a) {
#if defined(__AVX512F__)
  __m512 acc = _mm512_setzero_ps();
  for (int w0 = 0; w0 < W; w0 += 16) {
    const __mmask16 k = lanes_below(W - w0);
    const __m512 x =
        _mm512_mul_ps(_mm512_maskz_loadu_ps(k, hist + w0), _mm512_maskz_loadu_ps(k, e_row + w0));
    _mm512_mask_storeu_ps(a + w0, k, x);
    acc = _mm512_add_ps(acc, x);
  }
  const float z = _mm512_reduce_add_ps(acc);
  if (!(z >= math::kLisaMinTableSum))  // the exact stable form, as the shared function does
    return math::lisa_weights(e_row, t_row, hist, W, a);
  const __m512 inv = _mm512_set1_ps(1.0f / z);
  for (int w0 = 0; w0 < W; w0 += 16) {
    const __mmask16 k = lanes_below(W - w0);
    _mm512_mask_storeu_ps(a + w0, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, a + w0), inv));
  }
  return z;
#else
  return math::lisa_weights(e_row, t_row, hist, W, a);
#endif
}

#if defined(__AVX512F__)
namespace detail {

// The 16-lane sums of v[0..7], each in the host tree's order (lanes l and l + 8, then l and
// l + 4, l + 2, l + 1), in lanes 0..7: one shuffle tree for eight codebooks instead of eight
// horizontal reductions. Every step adds the same pairs as _mm512_reduce_add_ps.
inline __m512 tree_sums8(const __m512 v[8]) {
  auto halves = [](__m512 x, __m512 y) {  // [x lo256 + x hi256 | y lo256 + y hi256]
    return _mm512_add_ps(_mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(3, 2, 3, 2)));
  };
  auto quarters = [](__m512 x, __m512 y) {  // 128-bit lane q: codebook q's four partials
    return _mm512_add_ps(_mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(3, 1, 3, 1)));
  };
  const __m512 lo = quarters(halves(v[0], v[1]), halves(v[2], v[3]));  // codebooks 0..3
  const __m512 hi = quarters(halves(v[4], v[5]), halves(v[6], v[7]));  // codebooks 4..7
  // per 128-bit lane q: [q: p0 + p2, p1 + p3, q + 4: p0 + p2, p1 + p3], then their sums
  const __m512 pairs = _mm512_add_ps(_mm512_shuffle_ps(lo, hi, _MM_SHUFFLE(1, 0, 1, 0)),
                                     _mm512_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 2, 3, 2)));
  const __m512 sums = _mm512_add_ps(_mm512_shuffle_ps(pairs, pairs, _MM_SHUFFLE(2, 0, 2, 0)),
                                    _mm512_shuffle_ps(pairs, pairs, _MM_SHUFFLE(3, 1, 3, 1)));
  // lane 4q holds codebook q, lane 4q + 1 codebook q + 4
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0);
  return _mm512_permutexvar_ps(order, sums);
}

// Up to eight codebooks of one position at W = 16: e_rows[b], t_rows[b] are the table rows of
// codebook b. Full groups (the common case) unroll completely, so x stays in registers.
template <bool kFull>
inline void weights16_group(const float* const* e_rows, const float* const* t_rows,
                            const float* hist, int count, float* a) {
  if constexpr (kFull) count = 8;
  __m512 x[8];
#pragma GCC unroll 8
  for (int b = 0; b < 8; ++b)
    x[b] = b < count ? _mm512_mul_ps(_mm512_loadu_ps(hist + 16 * b), _mm512_loadu_ps(e_rows[b]))
                     : _mm512_setzero_ps();
  const __m512 z = tree_sums8(x);
  const __m512 inv = _mm512_div_ps(_mm512_set1_ps(1.0f), z);
  const __mmask16 ok =
      _mm512_cmp_ps_mask(z, _mm512_set1_ps(math::kLisaMinTableSum), _CMP_GE_OQ);
#pragma GCC unroll 8
  for (int b = 0; b < 8; ++b) {
    if (b >= count) break;
    const __m512 f = _mm512_permutexvar_ps(_mm512_set1_epi32(b), inv);
    _mm512_storeu_ps(a + 16 * b, _mm512_mul_ps(x[b], f));
  }
  if ((ok & 0xFF) != (0xFFu >> (8 - count)))  // a sum too small for the table: exact form
    for (int b = 0; b < count; ++b)
      if (!(ok >> b & 1)) math::lisa_weights(e_rows[b], t_rows[b], hist + 16 * b, 16, a + 16 * b);
}

}  // namespace detail
#endif

// The weights of one position for all B codebooks into a[B * W]: codebook b with query code
// code(b) reads that row of its W x W tables at e + b W W, t + b W W, and its histogram at
// hist + b W. The same values as math::lisa_weights per codebook; W = 16 (LISA-Mini's and
// LISA-Soft's default) reduces eight codebooks in one shuffle tree.
template <class Code>
void row_weights(const float* e, const float* t, Code&& code, const float* hist, int64_t B,
                 int64_t W, float* a) {
#if defined(__AVX512F__)
  if (W == 16) {
    for (int64_t b0 = 0; b0 < B; b0 += 8) {
      const float* e_rows[8];
      const float* t_rows[8];
      const int count = int(B - b0 < 8 ? B - b0 : 8);
      for (int g = 0; g < count; ++g) {
        const int64_t row = ((b0 + g) * W + code(b0 + g)) * W;
        e_rows[g] = e + row;
        t_rows[g] = t + row;
      }
      if (count == 8)
        detail::weights16_group<true>(e_rows, t_rows, hist + b0 * W, count, a + b0 * W);
      else
        detail::weights16_group<false>(e_rows, t_rows, hist + b0 * W, count, a + b0 * W);
    }
    return;
  }
#endif
  for (int64_t b = 0; b < B; ++b) {
    const int64_t row = (b * W + code(b)) * W;
    weights(e + row, t + row, hist + b * W, int(W), a + b * W);
  }
}

// Bidirectional readout of one position: o[0, dh) = sum over b of row code(b) of Y_b (rows of
// dh at y + b W dh), added in codebook order from 0 (the shared order). Up to 64 columns stay
// in registers across the codebooks; o is written once.
template <class Code>
void gather_rows(const float* y, Code&& code, int64_t B, int64_t W, int64_t dh, float* o) {
#if defined(__AVX512F__)
  for (int64_t c0 = 0; c0 < dh; c0 += 64) {
    __mmask16 k[4];
    __m512 acc[4];
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) {
      const int64_t left = dh - c0 - 16 * v;
      k[v] = left > 0 ? lanes_below(int(left < 16 ? left : 16)) : __mmask16(0);
      acc[v] = _mm512_setzero_ps();
    }
    for (int64_t b = 0; b < B; ++b) {
      const float* yr = y + (b * W + code(b)) * dh + c0;
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v)
        acc[v] = _mm512_add_ps(acc[v], _mm512_maskz_loadu_ps(k[v], yr + 16 * v));
    }
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) _mm512_mask_storeu_ps(o + c0 + 16 * v, k[v], acc[v]);
  }
#else
  for (int64_t e = 0; e < dh; ++e) o[e] = 0.0f;
  for (int64_t b = 0; b < B; ++b) {
    const float* yr = y + (b * W + code(b)) * dh;
    for (int64_t e = 0; e < dh; ++e) o[e] += yr[e];
  }
#endif
}

// math::argmax_row: the index of the largest entry, the lowest on ties (entries are finite:
// the kernels validate the probabilities).
inline int argmax(const float* p, int W) {
#if defined(__AVX512F__)
  __m512 best = _mm512_set1_ps(p[0]);
  for (int w0 = 0; w0 < W; w0 += 16) {
    const __mmask16 k = lanes_below(W - w0);
    best = _mm512_mask_max_ps(best, k, best, _mm512_maskz_loadu_ps(k, p + w0));
  }
  const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(best));
  for (int w0 = 0;; w0 += 16) {
    const __mmask16 k = lanes_below(W - w0);
    const __m512 x = _mm512_maskz_loadu_ps(k, p + w0);
    const unsigned hit = _mm512_mask_cmp_ps_mask(k, x, mx, _CMP_EQ_OQ);
    if (hit) return w0 + __builtin_ctz(hit);
  }
#else
  return math::argmax_row(p, W);
#endif
}

}  // namespace attnbench::cpu::lisa
