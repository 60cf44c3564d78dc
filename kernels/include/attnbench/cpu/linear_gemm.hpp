// The small matrix products of the CPU linear family (kernels/cpu/linear.cpp): one chunk of
// positions at a time, so every product is small (tens of rows, K of tens to hundreds), where
// a BLAS call's packing and dispatch cost as much as the arithmetic.
//
// A product is C = A1 B1 (+ A2 B2) with B row-major (rows of B are vector loads) and A read by
// broadcasts through a row stride and a K stride, so A may be stored either way round (Fk^T
// is Fk with the strides swapped: no transpose). The second term's K may grow with the row
// (causal: row i of the chunk reads the values of chunk rows <= i, so a tile of rows stops at
// its last row and skips the masked upper triangle). The result is written, added, or added
// with Kahan compensation (the running state of the causal forms), optionally scaled per row.
//
// With AVX-512: register tiles of MR rows x NV vectors of 16 floats, no packing (the operands
// of one chunk sit in L1/L2). Without it (the portable -march=x86-64-v2 build): cblas_sgemm
// calls on the same operands, with the full K of the second term (the caller keeps the masked
// part of A2 zero, so both give the same sums).
#pragma once

#include <algorithm>
#include <cstdint>

#include <cblas.h>

#include "attnbench/cpu/avx512.hpp"

namespace attnbench::cpu::lin {

enum class Store { overwrite, add, kahan };

// A(i, k) = p[i * rs + k * ks]; one of rs, ks is 1 for the BLAS fallback.
struct Operand {
  const float* p = nullptr;
  int64_t rs = 0, ks = 0;
};

struct Product {
  int64_t M = 0, N = 0;
  int64_t K1 = 0;
  Operand A1;
  const float* B1 = nullptr;
  int64_t ldb1 = 0;
  // optional second term; causal_k2: rows [i, i + mr) use K2 = min(K2, i + mr)
  int64_t K2 = 0;
  Operand A2;
  const float* B2 = nullptr;
  int64_t ldb2 = 0;
  bool causal_k2 = false;
  float* C = nullptr;
  int64_t ldc = 0;
  Store mode = Store::overwrite;
  float* comp = nullptr;             // Kahan: the compensation, same layout as C
  const float* row_scale = nullptr;  // optional factor per row of the product
  float* tmp = nullptr;              // BLAS fallback of Kahan mode: M x N (ld N) scratch
};

#if defined(__AVX512F__)
namespace detail {

template <int MR, int NV, Store mode>
__attribute__((always_inline)) inline void tile(const Product& p, int64_t i, int64_t n, int64_t k2,
                                                __mmask16 last) {
  __m512 c[MR][NV];
  #pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) {
      const __mmask16 k = v == NV - 1 ? last : __mmask16(0xFFFF);
      if constexpr (mode == Store::add)
        c[r][v] = _mm512_maskz_loadu_ps(k, p.C + (i + r) * p.ldc + n + 16 * v);
      else if constexpr (mode == Store::kahan)  // y = block - comp, accumulated from -comp
        c[r][v] = _mm512_sub_ps(_mm512_setzero_ps(),
                                _mm512_maskz_loadu_ps(k, p.comp + (i + r) * p.ldc + n + 16 * v));
      else
        c[r][v] = _mm512_setzero_ps();
    }
  // both terms in one loop nest (written as two, or through a shared lambda, the compiler
  // keeps the accumulators in memory)
  for (int term = 0; term < 2; ++term) {
    const int64_t K = term == 0 ? p.K1 : k2;
    const Operand& A = term == 0 ? p.A1 : p.A2;
    const float* b0 = (term == 0 ? p.B1 : p.B2) + n;
    const int64_t ldb = term == 0 ? p.ldb1 : p.ldb2;
    const float* a0 = A.p + i * A.rs;
    const int64_t ars = A.rs, aks = A.ks;
    for (int64_t k = 0; k < K; ++k) {
      __m512 b[NV];
      #pragma GCC unroll 16
      for (int v = 0; v < NV; ++v)
        b[v] = v == NV - 1 ? _mm512_maskz_loadu_ps(last, b0 + k * ldb + 16 * v)
                           : _mm512_loadu_ps(b0 + k * ldb + 16 * v);
      const float* a = a0 + k * aks;
      #pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        const __m512 ar = _mm512_set1_ps(a[r * ars]);
        #pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) c[r][v] = _mm512_fmadd_ps(ar, b[v], c[r][v]);
      }
    }
  }
  if constexpr (mode == Store::kahan) {
    #pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      float* out = p.C + (i + r) * p.ldc + n;
      float* cp = p.comp + (i + r) * p.ldc + n;
      #pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) {
        const __mmask16 k = v == NV - 1 ? last : __mmask16(0xFFFF);
        const __m512 y = c[r][v];
        const __m512 s = _mm512_maskz_loadu_ps(k, out + 16 * v);
        const __m512 x = _mm512_add_ps(s, y);
        _mm512_mask_storeu_ps(cp + 16 * v, k, _mm512_sub_ps(_mm512_sub_ps(x, s), y));
        _mm512_mask_storeu_ps(out + 16 * v, k, x);
      }
    }
  } else {
    #pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      float* out = p.C + (i + r) * p.ldc + n;
      const __m512 f = p.row_scale ? _mm512_set1_ps(p.row_scale[i + r]) : _mm512_set1_ps(1.0f);
      #pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) {
        const __mmask16 k = v == NV - 1 ? last : __mmask16(0xFFFF);
        _mm512_mask_storeu_ps(out + 16 * v, k, p.row_scale ? _mm512_mul_ps(c[r][v], f) : c[r][v]);
      }
    }
  }
}
template <int MR, int NV, Store mode>
inline void row_tiles(const Product& p, int64_t i0, int64_t i1, int64_t n, __mmask16 last) {
  int64_t i = i0;
  for (; i + MR <= i1; i += MR) {
    const int64_t k2 = p.causal_k2 ? std::min(p.K2, i + MR) : p.K2;
    tile<MR, NV, mode>(p, i, n, k2, last);
  }
  if constexpr (MR > 1) {
    if (i < i1) row_tiles<(MR > 4 ? 4 : MR / 2 > 0 ? MR / 2 : 1), NV, mode>(p, i, i1, n, last);
  }
}

template <Store mode>
inline void run(const Product& p) {
  for (int64_t n = 0; n < p.N; n += 64) {
    const int64_t w = std::min<int64_t>(64, p.N - n);
    const int nv = int((w + 15) / 16);
    const int64_t left = w - 16 * (nv - 1);
    const __mmask16 last = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1u);
    switch (nv) {
      case 4: row_tiles<6, 4, mode>(p, 0, p.M, n, last); break;
      case 3: row_tiles<8, 3, mode>(p, 0, p.M, n, last); break;
      case 2: row_tiles<12, 2, mode>(p, 0, p.M, n, last); break;
      default: row_tiles<16, 1, mode>(p, 0, p.M, n, last); break;
    }
  }
}

}  // namespace detail
#endif

inline void run_product(const Product& p) {
  if (p.M <= 0 || p.N <= 0) return;
#if defined(__AVX512F__)
  switch (p.mode) {
    case Store::overwrite: detail::run<Store::overwrite>(p); break;
    case Store::add: detail::run<Store::add>(p); break;
    case Store::kahan: detail::run<Store::kahan>(p); break;
  }
#else
  auto gemm = [&](int64_t K, const Operand& A, const float* B, int64_t ldb, float beta, float* C,
                  int64_t ldc) {
    if (K <= 0) {
      if (beta == 0.0f)
        for (int64_t i = 0; i < p.M; ++i) std::fill(C + i * ldc, C + i * ldc + p.N, 0.0f);
      return;
    }
    const bool trans = A.ks != 1;
    cblas_sgemm(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, CblasNoTrans, int(p.M),
                int(p.N), int(K), 1.0f, A.p, int(trans ? A.ks : A.rs), B, int(ldb), beta, C,
                int(ldc));
  };
  // the product first (into tmp for Kahan, into C otherwise), then scale, then store
  const bool direct = p.mode != Store::kahan && (p.mode == Store::overwrite || !p.row_scale);
  float* dst = direct ? p.C : p.tmp;
  const int64_t ldd = direct ? p.ldc : p.N;
  const float beta = direct && p.mode == Store::add ? 1.0f : 0.0f;
  gemm(p.K1, p.A1, p.B1, p.ldb1, beta, dst, ldd);
  if (p.K2 > 0) gemm(p.K2, p.A2, p.B2, p.ldb2, 1.0f, dst, ldd);
  if (p.row_scale && direct)
    for (int64_t i = 0; i < p.M; ++i)
      for (int64_t j = 0; j < p.N; ++j) dst[i * ldd + j] *= p.row_scale[i];
  if (direct) return;
  for (int64_t i = 0; i < p.M; ++i) {
    const float f = p.row_scale ? p.row_scale[i] : 1.0f;
    float* out = p.C + i * p.ldc;
    const float* x = p.tmp + i * p.N;
    if (p.mode == Store::add) {
      for (int64_t j = 0; j < p.N; ++j) out[j] += f * x[j];
      continue;
    }
    float* cp = p.comp + i * p.ldc;
    for (int64_t j = 0; j < p.N; ++j) {
      const float y = f * x[j] - cp[j];
      const float t = out[j] + y;
      cp[j] = (t - out[j]) - y;
      out[j] = t;
    }
  }
#endif
}

}  // namespace attnbench::cpu::lin

namespace attnbench::cpu::lin {

// dst[c * ldd + r] = src[r * lds + c] for r < rows, c < cols.
inline void transpose(const float* src, int64_t lds, int64_t rows, int64_t cols, float* dst,
                      int64_t ldd) {
#if defined(__AVX512F__)
  for (int64_t r0 = 0; r0 < rows; r0 += 16)
    for (int64_t c0 = 0; c0 < cols; c0 += 16) {
      const int64_t nr = std::min<int64_t>(16, rows - r0), nc = std::min<int64_t>(16, cols - c0);
      const __mmask16 cm = nc >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << nc) - 1u);
      const __mmask16 rm = nr >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << nr) - 1u);
      __m512 x[16], t[16];
      for (int i = 0; i < 16; ++i)
        x[i] = i < nr ? _mm512_maskz_loadu_ps(cm, src + (r0 + i) * lds + c0) : _mm512_setzero_ps();
      for (int i = 0; i < 8; ++i) {
        t[2 * i] = _mm512_unpacklo_ps(x[2 * i], x[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(x[2 * i], x[2 * i + 1]);
      }
      for (int i = 0; i < 4; ++i) {
        const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 2]);
        const __m512d c = _mm512_castps_pd(t[4 * i + 1]), d = _mm512_castps_pd(t[4 * i + 3]);
        x[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
        x[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        x[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
        x[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
      }
      // x[4 i + j], 128-bit lane L: rows 4i..4i+3 of column 4L + j
      for (int j = 0; j < 4; ++j) {
        t[j] = _mm512_shuffle_f32x4(x[j], x[4 + j], 0x88);
        t[j + 4] = _mm512_shuffle_f32x4(x[j], x[4 + j], 0xDD);
        t[j + 8] = _mm512_shuffle_f32x4(x[8 + j], x[12 + j], 0x88);
        t[j + 12] = _mm512_shuffle_f32x4(x[8 + j], x[12 + j], 0xDD);
      }
      for (int j = 0; j < 4; ++j) {
        x[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
        x[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xDD);
        x[j + 4] = _mm512_shuffle_f32x4(t[j + 4], t[j + 12], 0x88);
        x[j + 12] = _mm512_shuffle_f32x4(t[j + 4], t[j + 12], 0xDD);
      }
      for (int c = 0; c < nc; ++c) _mm512_mask_storeu_ps(dst + (c0 + c) * ldd + r0, rm, x[c]);
    }
#else
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[c * ldd + r] = src[r * lds + c];
#endif
}

}  // namespace attnbench::cpu::lin
