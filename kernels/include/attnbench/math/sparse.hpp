// Per-element formulas of the sparse and hashed attentions (kernels.md section 4), shared by
// the CPU kernels, their float64 references and a future CUDA version: raw pointers, no
// containers, no exceptions.
//
// Determinism. Reformer's buckets and Sinkhorn's sorted blocks are discrete choices; the
// float32 kernel and the float64 reference must make the same ones, or a near tie would
// send a row to different keys. Both therefore evaluate these choices with the functions
// below (lsh_buckets, block_mean_scaled, sinkhorn_sorted_blocks), in float32, from the
// same float32 inputs. Every multiply-add in them is an explicit
// fmaf (one IEEE rounding on every compiler and on the GPU), each sum runs in a fixed order
// and no product feeds an addition outside an fmaf, so floating-point contraction
// (-ffp-contract=fast is GCC's C++ default) and vectorization cannot change a bit. Loops
// vectorize across independent outputs only, never across one sum.
#pragma once

#include <cstdint>

#include "attnbench/math/hd.hpp"

namespace attnbench::math {

// ---------------------------------------------------------------------------------------
// local_window: query i sees keys [local_window_first_key, local_window_end_key).
//   causal         i - w < j <= i
//   bidirectional  |i - j| < w
AB_HD int64_t local_window_first_key(int64_t i, int64_t w) { return i - w + 1 > 0 ? i - w + 1 : 0; }
AB_HD int64_t local_window_end_key(int64_t i, int64_t w, int64_t n, bool causal) {
  if (causal) return i + 1;
  return i + w < n ? i + w : n;
}
// Number of (query, key) pairs in the band over a whole sequence of n positions.
AB_HD double local_window_pairs(int64_t n, int64_t w, bool causal) {
  // pairs at distance d (0 <= d < min(w, n)) number n - d on each side of the diagonal
  const double m = double((w < n ? w : n) - 1);  // largest distance in the band
  const double one_side = (m + 1) * double(n) - m * (m + 1) / 2;  // d = 0 .. m
  return causal ? one_side : 2 * one_side - double(n);
}

// ---------------------------------------------------------------------------------------
// reformer_lsh

// Number of hash buckets for n positions and chunks of bucket_size (suite choice): the
// smallest even count >= n / bucket_size, and at least 2, so that an average bucket fills
// about one chunk, as Reformer's n_buckets = seq_len / bucket_size does.
AB_HD int64_t reformer_num_buckets(int64_t n, int64_t bucket_size) {
  const int64_t half = (n + 2 * bucket_size - 1) / (2 * bucket_size);  // ceil(n / (2 bs))
  return half < 1 ? 2 : 2 * half;
}
AB_HD int64_t reformer_num_chunks(int64_t n, int64_t bucket_size) {
  return (n + bucket_size - 1) / bucket_size;
}
// The chunk whose keys chunk c also sees: the previous one, the first chunk wrapping to the
// last as Reformer's look-one-back does (with one chunk: itself, i.e. nothing extra).
AB_HD int64_t reformer_prev_chunk(int64_t c, int64_t chunks) { return c == 0 ? chunks - 1 : c - 1; }
// A token's logit to itself (Reformer's self-attention mask value). It is a finite value,
// not -inf: a token with no other visible key then attends to itself alone; with any other
// key (logits of order 10) its weight exp(-5e4 - m) is exactly 0 in float32 and float64.
constexpr float kReformerSelfLogit = -5.0e4f;

// bucket(x) = argmax([xR; -xR]) for R (dh x nb/2, row-major) and x one dh-vector: u in
// [0, nb/2) when xR[u] is the largest entry, nb/2 + u when -xR[u] is; the first maximum in
// that order wins ties. Each xR[u] is one fmaf chain in d order, whatever the batching.
// lsh_buckets hashes `count` vectors (x[p * ldx + d]) into out[p]. For speed it works on
// kLshRows vectors and kLshLanes columns of R at a time, accumulators in registers (the
// straightforward loop over u was bound by store-to-load latency).
constexpr int kLshLanes = 16;
constexpr int kLshRows = 4;
AB_HD void lsh_buckets(const float* x, int64_t count, int64_t ldx, const float* rot, int dh,
                       int half_buckets, int32_t* out) {
  for (int64_t p0 = 0; p0 < count; p0 += kLshRows) {
    const int rows = count - p0 < kLshRows ? int(count - p0) : kLshRows;
    const float* xp = x + p0 * ldx;
    float max_val[kLshRows] = {}, min_val[kLshRows] = {};
    int max_at[kLshRows] = {}, min_at[kLshRows] = {};
    for (int u0 = 0; u0 < half_buckets; u0 += kLshLanes) {
      const int lanes = half_buckets - u0 < kLshLanes ? half_buckets - u0 : kLshLanes;
      float acc[kLshRows][kLshLanes];
      for (int p = 0; p < kLshRows; ++p)
        for (int k = 0; k < kLshLanes; ++k) acc[p][k] = 0.0f;
      const float* r = rot + u0;
      if (lanes == kLshLanes && rows == kLshRows) {
        for (int d = 0; d < dh; ++d, r += half_buckets)
          for (int p = 0; p < kLshRows; ++p) {
            const float xd = xp[p * ldx + d];
#if defined(_OPENMP) && !defined(__CUDA_ARCH__)
#pragma omp simd
#endif
            for (int k = 0; k < kLshLanes; ++k) acc[p][k] = fmaf(xd, r[k], acc[p][k]);
          }
      } else {
        for (int d = 0; d < dh; ++d, r += half_buckets)
          for (int p = 0; p < rows; ++p) {
            const float xd = xp[p * ldx + d];
            for (int k = 0; k < lanes; ++k) acc[p][k] = fmaf(xd, r[k], acc[p][k]);
          }
      }
      for (int p = 0; p < rows; ++p)
        for (int k = 0; k < lanes; ++k) {
          const int u = u0 + k;
          const float a = acc[p][k];
          if (u == 0 || a > max_val[p]) max_val[p] = a, max_at[p] = u;
          if (u == 0 || a < min_val[p]) min_val[p] = a, min_at[p] = u;
        }
    }
    // in the order [xR; -xR] the positive half comes first, so it wins a tie
    for (int p = 0; p < rows; ++p)
      out[p0 + p] = -min_val[p] > max_val[p] ? half_buckets + min_at[p] : max_at[p];
  }
}

// ---------------------------------------------------------------------------------------
// sinkhorn

constexpr int kSinkhornIterations = 5;       // (suite choice) row + column steps each
constexpr float kSinkhornTemperature = 0.75f;

// Factor of the mean block queries: the block logits are qbar_a . kbar_b / (sqrt(dh) tau).
AB_HD float sinkhorn_query_factor(int64_t dh) {
  return 1.0f / (sqrtf(float(dh)) * kSinkhornTemperature);
}
AB_HD int64_t sinkhorn_num_blocks(int64_t n, int64_t block) { return (n + block - 1) / block; }
// May query block a be paired with key block b? Causal: past blocks only.
AB_HD bool sinkhorn_allowed(int64_t a, int64_t b, bool causal) { return !causal || b < a; }

// out = mean of `rows` dh-vectors x (row-major) times `factor`, summed in row order.
AB_HD void block_mean_scaled(const float* x, int64_t rows, int64_t dh, float factor, float* out) {
  for (int64_t c = 0; c < dh; ++c) out[c] = 0.0f;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < dh; ++c) out[c] += x[r * dh + c];
  const float inv_rows = 1.0f / float(rows);
  for (int64_t c = 0; c < dh; ++c) out[c] = (out[c] * inv_rows) * factor;
}

// out[b] = x . yT[:, b] for b < n, where yT is dh x n (row-major): the dots of x with n
// vectors stored transposed. fmaf in d order; vectorizes across b.
AB_HD void dots_transposed(const float* x, const float* yT, int64_t n, int64_t dh, float* out) {
  for (int64_t b = 0; b < n; ++b) out[b] = 0.0f;
  for (int64_t d = 0; d < dh; ++d) {
    const float xd = x[d];
    const float* y = yT + d * n;
    for (int64_t b = 0; b < n; ++b) out[b] = fmaf(xd, y[b], out[b]);
  }
}

// log(sum_b exp(z[b] - sub[b])) over the allowed b < n (allowed[b] != 0); -inf if none.
AB_HD float masked_logsumexp_minus(const float* z, const float* sub, const unsigned char* allowed,
                                   int64_t n) {
  float m = neg_inf_f();
  for (int64_t b = 0; b < n; ++b)
    if (allowed[b]) m = max_f(m, z[b] - sub[b]);
  if (m == neg_inf_f()) return m;
  float s = 0.0f;
  for (int64_t b = 0; b < n; ++b)
    if (allowed[b]) s += exp_f((z[b] - sub[b]) - m);
  return m + logf(s);
}

// The sorted block of every query block of one sequence (kernels.md section 4, Sinkhorn).
//   qbar  nb x dh   mean block queries, pre-scaled by 1 / (sqrt(dh) * temperature)
//   kbar  nb x dh   mean block keys
//   qbarT, kbarT    the same, transposed (dh x nb)
// Logits X[a][b] = qbar_a . kbar_b (already divided by the temperature); masked entries
// (sinkhorn_allowed false) are -inf. Log-domain Sinkhorn with potentials u (rows) and v
// (columns), X - u - v the log of the soft permutation, kSinkhornIterations times: a row
// step u_a = logsumexp_b(X[a][b] - v_b), then a column step v_b = logsumexp_a(X[a][b] - u_a);
// a row or column with no allowed entry keeps potential 0. The sorted block of a is the
// argmax over b of its soft permutation row (lowest b on ties), or -1 when the row is empty
// (block 0 in the causal form). The logits are recomputed from the means in each step
// (O(nb^2 dh), vectorized) so that only O(nb) memory is needed.
// Scratch: u, v, row (nb floats each), allowed (nb bytes). Output: sorted (nb ints).
AB_HD void sinkhorn_sorted_blocks(const float* qbar, const float* kbar, const float* qbarT,
                                  const float* kbarT, int64_t nb, int64_t dh, bool causal,
                                  float* u, float* v, float* row, unsigned char* allowed,
                                  int32_t* sorted) {
  for (int64_t a = 0; a < nb; ++a) u[a] = v[a] = 0.0f;
  for (int it = 0; it < kSinkhornIterations; ++it) {
    for (int64_t a = 0; a < nb; ++a) {  // row step
      dots_transposed(qbar + a * dh, kbarT, nb, dh, row);  // X[a][:]
      for (int64_t b = 0; b < nb; ++b) allowed[b] = sinkhorn_allowed(a, b, causal);
      const float lse = masked_logsumexp_minus(row, v, allowed, nb);
      u[a] = lse == neg_inf_f() ? 0.0f : lse;
    }
    for (int64_t b = 0; b < nb; ++b) {  // column step
      dots_transposed(kbar + b * dh, qbarT, nb, dh, row);  // X[:][b]; fmaf is commutative
      for (int64_t a = 0; a < nb; ++a) allowed[a] = sinkhorn_allowed(a, b, causal);
      const float lse = masked_logsumexp_minus(row, u, allowed, nb);
      v[b] = lse == neg_inf_f() ? 0.0f : lse;
    }
  }
  for (int64_t a = 0; a < nb; ++a) {
    dots_transposed(qbar + a * dh, kbarT, nb, dh, row);
    int32_t best = -1;
    float best_val = neg_inf_f();
    for (int64_t b = 0; b < nb; ++b) {
      if (!sinkhorn_allowed(a, b, causal)) continue;
      const float val = row[b] - v[b];  // u_a is common to the row
      if (best < 0 || val > best_val) best_val = val, best = int32_t(b);
    }
    sorted[a] = best;
  }
}

// ---------------------------------------------------------------------------------------
// lsan_twin: the local branch of position i, channel c, is
//   sum_{t < L, t <= i} conv[t][c] * v[i - t][c]   (causal zero padding before position 0)
// conv: L x dh of one head (tap 0 multiplies position i); v: the sequence's values (N x dh).
// Adds the local branch of row i to out[0..dh) (the global branch already there), tap by
// tap; vectorizes across channels.
AB_HD void lsan_local_add_row(const float* conv, const float* v, int64_t i, int64_t L,
                              int64_t dh, float* out) {
  for (int64_t t = 0; t < L && t <= i; ++t) {
    const float* w = conv + t * dh;
    const float* x = v + (i - t) * dh;
    for (int64_t c = 0; c < dh; ++c) out[c] = fmaf(w[c], x[c], out[c]);
  }
}

}  // namespace attnbench::math
