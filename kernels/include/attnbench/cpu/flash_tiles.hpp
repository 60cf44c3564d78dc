// Register-blocked micro-kernels of the fused CPU attention (vanilla_flash in
// kernels/cpu/vanilla.cpp). Both work on a block of kBlockM queries held "transposed": one
// row of kBlockM floats per feature (Q^T, O^T) or per key (S^T, P^T), so that every vector
// runs across queries and the row max, the online-softmax state and the rescale are plain
// vertical operations. Each micro-tile is MR rows x kBlockM queries of accumulators in
// registers, fed by a broadcast of one scalar per row and kVecs vector loads per step:
//
//   score_rows: S^T[r][:] = sum_d K[r][d] Q^T[d][:]        (MR keys, K row-major: no packing)
//   pv_rows:    O^T[c][:] = f * O^T[c][:] + sum_j V[j][c] P^T[j][:]   (MR features)
//
// AVX-512 intrinsics when the compiler targets AVX-512F (the -march=native build here);
// otherwise a portable version with GCC/Clang generic vectors of 8 floats (AVX2 targets) or 4
// (SSE on the -march=x86-64-v2 build of bench/work; scalar code where there is no SIMD).
// Same arithmetic, same blocking.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace attnbench::cpu::flash {

#if defined(__AVX512F__)
inline constexpr int kLanes = 16;  // floats per vector
inline constexpr int kVecs = 3;    // vectors across the query block
inline constexpr int kRows = 8;    // rows per micro-tile (8 x 3 = 24 zmm accumulators)
#elif defined(__AVX2__)
inline constexpr int kLanes = 8;
inline constexpr int kVecs = 3;
inline constexpr int kRows = 4;  // 4 x 3 = 12 ymm accumulators (16 registers)
#else
inline constexpr int kLanes = 4;
inline constexpr int kVecs = 3;
inline constexpr int kRows = 4;  // 4 x 3 = 12 xmm accumulators
#endif
inline constexpr int kBlockM = kLanes * kVecs;  // queries per block

#define AB_FLASH_INLINE inline __attribute__((always_inline))

// Causal mask of score row r: query lane i sees the row's key iff i >= lo + r, where
// lo = (first key of the micro-tile) - (first query of the block). Callers pass
// kNoMask when nothing is masked.
inline constexpr int64_t kNoMask = std::numeric_limits<int32_t>::min() / 2;

#if defined(__AVX512F__)

// s[r * kBlockM + :] = sum_{d < dh} k[r * dh + d] * qt[d * kBlockM + :] for r < MR, masked as
// above, and mx[:] = max(mx[:], s[r][:]) over the MR rows.
template <int MR>
AB_FLASH_INLINE void score_rows(int64_t dh, const float* k, const float* qt, float* s, float* mx,
                                int64_t lo) {
  __m512 acc[MR][kVecs];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < kVecs; ++v) acc[r][v] = _mm512_setzero_ps();
#pragma GCC unroll 2
  for (int64_t d = 0; d < dh; ++d) {
    __m512 b[kVecs];
    for (int v = 0; v < kVecs; ++v) b[v] = _mm512_load_ps(qt + d * kBlockM + v * kLanes);
    for (int r = 0; r < MR; ++r) {
      const __m512 a = _mm512_set1_ps(k[r * dh + d]);
      for (int v = 0; v < kVecs; ++v) acc[r][v] = _mm512_fmadd_ps(a, b[v], acc[r][v]);
    }
  }
  __m512 m[kVecs];
  for (int v = 0; v < kVecs; ++v) m[v] = _mm512_load_ps(mx + v * kLanes);
  if (lo + MR - 1 > 0) {  // some lane of some row is masked
    const __m512i iota =
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    for (int r = 0; r < MR; ++r) {
      const int32_t first_visible = int32_t(std::min<int64_t>(lo + r, kBlockM));
      for (int v = 0; v < kVecs; ++v) {
        const __m512i lane = _mm512_add_epi32(iota, _mm512_set1_epi32(v * kLanes));
        const __mmask16 hidden = _mm512_cmplt_epi32_mask(lane, _mm512_set1_epi32(first_visible));
        acc[r][v] = _mm512_mask_mov_ps(acc[r][v], hidden, ninf);
      }
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < kVecs; ++v) {
      _mm512_store_ps(s + r * kBlockM + v * kLanes, acc[r][v]);
      m[v] = _mm512_maskz_max_ps(__mmask16(0xFFFF), m[v], acc[r][v]);  // _mm512_max_ps trips GCC 12 -Wmaybe-uninitialized
    }
  for (int v = 0; v < kVecs; ++v) _mm512_store_ps(mx + v * kLanes, m[v]);
}

// ot[r * kBlockM + :] = (first ? 0 : f[:] * ot[r][:]) + sum_{j < cols} v[j * dh + r] * p[j * kBlockM + :]
// for r < MR. The tile's sum starts from zero and is added to the rescaled accumulator at the
// end: a blocked summation (one rounding chain of kBlockN keys, then one per tile), as
// accurate as sgemm's K-blocking, at the cost of the load-and-scale it replaces.
template <int MR>
AB_FLASH_INLINE void pv_rows(int64_t cols, int64_t dh, const float* v, const float* p, float* ot,
                             const float* f, bool first) {
  __m512 acc[MR][kVecs];
  for (int r = 0; r < MR; ++r)
    for (int w = 0; w < kVecs; ++w) acc[r][w] = _mm512_setzero_ps();
#pragma GCC unroll 2
  for (int64_t j = 0; j < cols; ++j) {
    __m512 b[kVecs];
    for (int w = 0; w < kVecs; ++w) b[w] = _mm512_load_ps(p + j * kBlockM + w * kLanes);
    for (int r = 0; r < MR; ++r) {
      const __m512 a = _mm512_set1_ps(v[j * dh + r]);
      for (int w = 0; w < kVecs; ++w) acc[r][w] = _mm512_fmadd_ps(a, b[w], acc[r][w]);
    }
  }
  if (!first) {
    for (int w = 0; w < kVecs; ++w) {
      const __m512 fw = _mm512_load_ps(f + w * kLanes);
      for (int r = 0; r < MR; ++r)
        acc[r][w] = _mm512_fmadd_ps(fw, _mm512_load_ps(ot + r * kBlockM + w * kLanes), acc[r][w]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int w = 0; w < kVecs; ++w) _mm512_store_ps(ot + r * kBlockM + w * kLanes, acc[r][w]);
}

#else  // portable: generic vectors of kLanes floats

typedef float vec_t __attribute__((vector_size(kLanes * sizeof(float))));

AB_FLASH_INLINE vec_t load_vec(const float* p) {
  vec_t x;
  __builtin_memcpy(&x, p, sizeof x);
  return x;
}
AB_FLASH_INLINE void store_vec(float* p, vec_t x) { __builtin_memcpy(p, &x, sizeof x); }
AB_FLASH_INLINE vec_t splat(float a) { return vec_t{} + a; }

template <int MR>
AB_FLASH_INLINE void score_rows(int64_t dh, const float* k, const float* qt, float* s, float* mx,
                                int64_t lo) {
  vec_t acc[MR][kVecs];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < kVecs; ++v) acc[r][v] = vec_t{};
  for (int64_t d = 0; d < dh; ++d) {
    vec_t b[kVecs];
    for (int v = 0; v < kVecs; ++v) b[v] = load_vec(qt + d * kBlockM + v * kLanes);
    for (int r = 0; r < MR; ++r) {
      const vec_t a = splat(k[r * dh + d]);
      for (int v = 0; v < kVecs; ++v) acc[r][v] += a * b[v];
    }
  }
  for (int r = 0; r < MR; ++r) {
    float* row = s + r * kBlockM;
    for (int v = 0; v < kVecs; ++v) store_vec(row + v * kLanes, acc[r][v]);
    if (lo + r > 0) {
      const int64_t first_visible = std::min<int64_t>(lo + r, kBlockM);
      for (int64_t i = 0; i < first_visible; ++i)
        row[i] = -std::numeric_limits<float>::infinity();
    }
    for (int i = 0; i < kBlockM; ++i) mx[i] = mx[i] > row[i] ? mx[i] : row[i];
  }
}

template <int MR>
AB_FLASH_INLINE void pv_rows(int64_t cols, int64_t dh, const float* v, const float* p, float* ot,
                             const float* f, bool first) {
  vec_t acc[MR][kVecs];
  for (int r = 0; r < MR; ++r)
    for (int w = 0; w < kVecs; ++w) acc[r][w] = vec_t{};
  for (int64_t j = 0; j < cols; ++j) {
    vec_t b[kVecs];
    for (int w = 0; w < kVecs; ++w) b[w] = load_vec(p + j * kBlockM + w * kLanes);
    for (int r = 0; r < MR; ++r) {
      const vec_t a = splat(v[j * dh + r]);
      for (int w = 0; w < kVecs; ++w) acc[r][w] += a * b[w];
    }
  }
  if (!first)
    for (int w = 0; w < kVecs; ++w) {
      const vec_t fw = load_vec(f + w * kLanes);
      for (int r = 0; r < MR; ++r) acc[r][w] += fw * load_vec(ot + r * kBlockM + w * kLanes);
    }
  for (int r = 0; r < MR; ++r)
    for (int w = 0; w < kVecs; ++w) store_vec(ot + r * kBlockM + w * kLanes, acc[r][w]);
}

#endif

// Runs Op<n>::run(args...) for a run-time row count n in [1, kRows] (the remainder of a tile).
static_assert(kRows == 4 || kRows == 8, "dispatch_rows covers 1..4 or 1..8 rows");
template <template <int> class Op, class... Args>
AB_FLASH_INLINE void dispatch_rows(int n, Args&&... args) {
  switch (n) {
    case 1: Op<1>::run(args...); break;
    case 2: Op<2>::run(args...); break;
    case 3: Op<3>::run(args...); break;
    case 4: Op<4>::run(args...); break;
#if defined(__AVX512F__)
    case 5: Op<5>::run(args...); break;
    case 6: Op<6>::run(args...); break;
    case 7: Op<7>::run(args...); break;
    case 8: Op<8>::run(args...); break;
#endif
    default: break;
  }
}

template <int MR>
struct ScoreRows {
  template <class... A>
  static void run(A... a) { score_rows<MR>(a...); }
};
template <int MR>
struct PvRows {
  template <class... A>
  static void run(A... a) { pv_rows<MR>(a...); }
};

#undef AB_FLASH_INLINE

}  // namespace attnbench::cpu::flash
