// Per-element formulas of the sparse and hashed attentions (docs/methods.md section 4), shared by
// the CPU kernels (kernels/cpu/sparse.cpp), their float64 references and the CUDA kernels
// (kernels/cuda/sparse.cu, attnbench/cuda/sparse_pipeline.hpp): raw pointers, no containers,
// no exceptions. Where a GPU thread computes one entry of what a CPU loop computes for a whole
// row (block_mean_scaled_column, dot_transposed_at, lsan_local_add_channel), the entry form
// runs the same operations in the same order, and tests/test_cuda_tiling.cpp proves the two
// agree bit for bit.
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
// The sizes a Reformer kernel derives from N and bucket_size (suite choices above).
struct ReformerDims {
  int64_t chunk;     // min(bucket_size, N): sorted slots per chunk, the last chunk partial
  int64_t buckets;   // reformer_num_buckets
  int64_t half;      // buckets / 2: columns of a round's rotation
  int64_t chunks;    // reformer_num_chunks
  int64_t max_keys;  // keys of a chunk: itself and the previous chunk, or itself alone
};
AB_HD ReformerDims reformer_dims(int64_t n, int64_t bucket_size) {
  ReformerDims d{};
  d.chunk = bucket_size < n ? bucket_size : n;
  d.buckets = reformer_num_buckets(n, d.chunk);
  d.half = d.buckets / 2;
  d.chunks = reformer_num_chunks(n, d.chunk);
  d.max_keys = d.chunks > 1 ? 2 * d.chunk : d.chunk;
  return d;
}

// The keys of a unit of queries (a Reformer chunk, a Sinkhorn block): n_first indices from
// `first`, then n_second from `second` (sorted slots for Reformer, positions for Sinkhorn).
struct KeyRanges {
  int64_t first, n_first, second, n_second;
  AB_HD int64_t count() const { return n_first + n_second; }
  AB_HD int64_t at(int64_t u) const { return u < n_first ? first + u : second + (u - n_first); }
};
// Unit b of size `unit` over n indices (the last unit partial).
AB_HD int64_t unit_size(int64_t b, int64_t unit, int64_t n) {
  return unit < n - b * unit ? unit : n - b * unit;
}
// Chunk c sees its own slots, then the previous chunk's (none when that is c itself).
AB_HD KeyRanges reformer_chunk_keys(int64_t c, const ReformerDims& d, int64_t n) {
  const int64_t prev = reformer_prev_chunk(c, d.chunks);
  return {c * d.chunk, unit_size(c, d.chunk, n), prev * d.chunk,
          prev == c ? 0 : unit_size(prev, d.chunk, n)};
}

// A token's logit to itself (Reformer's self-attention mask value). It is a finite value,
// not -inf: a token with no other visible key then attends to itself alone; with any other
// key (logits of order 10) its weight exp(-5e4 - m) is exactly 0 in float32 and float64.
constexpr float kReformerSelfLogit = -5.0e4f;

// -inf for a key after the query in the causal form, else the logit.
AB_HD float causal_logit(int64_t i, int64_t j, float logit, bool causal) {
  return causal && j > i ? neg_inf_f() : logit;
}
// Reformer's logit of query i and key j (original positions) from their scaled dot product.
AB_HD float reformer_logit(int64_t i, int64_t j, float scaled_dot, bool causal) {
  return j == i ? kReformerSelfLogit : causal_logit(i, j, scaled_dot, causal);
}

// 1 / max(||x||, 1e-12) of a dh-vector, the norm in double: Reformer's keys are x times this
// (torch's F.normalize).
constexpr double kReformerNormEps = 1e-12;
AB_HD float reformer_inv_norm(const float* x, int64_t dh) {
  double ss = 0;
  for (int64_t c = 0; c < dh; ++c) ss += double(x[c]) * double(x[c]);
  const double norm = sqrt(ss);
  return float(1.0 / (norm < kReformerNormEps ? kReformerNormEps : norm));
}

// The rounds' log-sum-exp combination, one round at a time. The running output and weight
// sum are kept in units of exp(run_max); a round with output o_r and log-normalizer lse
// enters as value <- value * keep + o_r * add (the weight sum: o_r = 1). Before the first
// round run_max = -inf and keep = 0.
struct ReformerFold {
  float run_max, keep, add;
};
AB_HD ReformerFold reformer_fold(float run_max, float lse) {
  const float m_new = max_f(run_max, lse);
  return {m_new, expf(run_max - m_new), expf(lse - m_new)};
}
AB_HD float reformer_fold_value(float value, float round_value, const ReformerFold& f) {
  return value * f.keep + round_value * f.add;
}
// The combined output after the last round: the running value over the running weight sum.
AB_HD float reformer_finish(float value, float run_sum) { return value * (1.f / run_sum); }

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

// The bucket of one vector: lsh_buckets for count = 1 without its register blocks (a GPU
// thread per position): the same fmaf chain per u, the same order of comparisons.
AB_HD int32_t lsh_bucket(const float* x, const float* rot, int dh, int half_buckets) {
  float max_val = 0.0f, min_val = 0.0f;
  int max_at = 0, min_at = 0;
  for (int u = 0; u < half_buckets; ++u) {
    float acc = 0.0f;
    for (int d = 0; d < dh; ++d) acc = fmaf(x[d], rot[d * half_buckets + u], acc);
    if (u == 0 || acc > max_val) max_val = acc, max_at = u;
    if (u == 0 || acc < min_val) min_val = acc, min_at = u;
  }
  return -min_val > max_val ? half_buckets + min_at : max_at;
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
// sinkhorn_allowed as the `allowed` array of a row step (query block a, over key blocks) and
// of a column step (key block b, over query blocks), computed instead of stored.
struct SinkhornRowMask {
  int64_t a;
  bool causal;
  AB_HD bool operator[](int64_t b) const { return sinkhorn_allowed(a, b, causal); }
};
struct SinkhornColumnMask {
  int64_t b;
  bool causal;
  AB_HD bool operator[](int64_t a) const { return sinkhorn_allowed(a, b, causal); }
};

// The sizes a Sinkhorn kernel derives from N and the block parameter (suite choices in
// kernels/cpu/sparse.cpp).
struct SinkhornDims {
  int64_t block;     // min(block, N), the last block partial
  int64_t blocks;    // sinkhorn_num_blocks
  int64_t max_keys;  // keys of a block: itself and its sorted block, or itself alone
};
AB_HD SinkhornDims sinkhorn_dims(int64_t n, int64_t block) {
  SinkhornDims d{};
  d.block = block < n ? block : n;
  d.blocks = sinkhorn_num_blocks(n, d.block);
  d.max_keys = d.blocks > 1 ? 2 * d.block : d.block;
  return d;
}
// Block a sees its own positions, then those of its sorted block sb (none when sb < 0, no
// block allowed, or sb == a, possible bidirectionally: the block is then seen once).
AB_HD KeyRanges sinkhorn_block_keys(int64_t a, int64_t sb, const SinkhornDims& d, int64_t n) {
  const bool other = sb >= 0 && sb != a;
  return {a * d.block, unit_size(a, d.block, n), other ? sb * d.block : 0,
          other ? unit_size(sb, d.block, n) : 0};
}

// out = mean of `rows` dh-vectors x (row-major) times `factor`, summed in row order.
AB_HD void block_mean_scaled(const float* x, int64_t rows, int64_t dh, float factor, float* out) {
  for (int64_t c = 0; c < dh; ++c) out[c] = 0.0f;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < dh; ++c) out[c] += x[r * dh + c];
  const float inv_rows = 1.0f / float(rows);
  for (int64_t c = 0; c < dh; ++c) out[c] = (out[c] * inv_rows) * factor;
}
// Column c of block_mean_scaled: the same sum in row order, the same scaling.
AB_HD float block_mean_scaled_column(const float* x, int64_t rows, int64_t dh, float factor,
                                     int64_t c) {
  float sum = 0.0f;
  for (int64_t r = 0; r < rows; ++r) sum += x[r * dh + c];
  const float inv_rows = 1.0f / float(rows);
  return (sum * inv_rows) * factor;
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
// Entry b of dots_transposed: the same fmaf chain in d order.
AB_HD float dot_transposed_at(const float* x, const float* yT, int64_t n, int64_t dh, int64_t b) {
  float acc = 0.0f;
  for (int64_t d = 0; d < dh; ++d) acc = fmaf(x[d], yT[d * n + b], acc);
  return acc;
}

// log(sum_b exp(z[b] - sub[b])) over the allowed b < n (allowed[b] true); -inf if none.
// Allowed: a byte array, or a SinkhornRowMask / SinkhornColumnMask.
template <class Allowed>
AB_HD float masked_logsumexp_minus(const float* z, const float* sub, const Allowed& allowed,
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

// A Sinkhorn potential: the log-sum-exp of one step (row: z = X[a][:], other = v; column:
// z = X[:][b], other = u), or 0 for a row or column with no allowed entry.
template <class Allowed>
AB_HD float sinkhorn_potential(const float* z, const float* other, const Allowed& allowed,
                               int64_t n) {
  const float lse = masked_logsumexp_minus(z, other, allowed, n);
  return lse == neg_inf_f() ? 0.0f : lse;
}

// The sorted block of query block a from its logit row X[a][:] and the column potentials v:
// argmax over the allowed b of X[a][b] - v[b] (u_a is common to the row), lowest b on ties;
// -1 when no block is allowed.
AB_HD int32_t sinkhorn_argmax_block(const float* row, const float* v, int64_t a, int64_t nb,
                                    bool causal) {
  int32_t best = -1;
  float best_val = neg_inf_f();
  for (int64_t b = 0; b < nb; ++b) {
    if (!sinkhorn_allowed(a, b, causal)) continue;
    const float val = row[b] - v[b];
    if (best < 0 || val > best_val) best_val = val, best = int32_t(b);
  }
  return best;
}

// The sorted block of every query block of one sequence (docs/methods.md section 4, Sinkhorn).
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
      u[a] = sinkhorn_potential(row, v, allowed, nb);
    }
    for (int64_t b = 0; b < nb; ++b) {  // column step
      dots_transposed(kbar + b * dh, qbarT, nb, dh, row);  // X[:][b]; fmaf is commutative
      for (int64_t a = 0; a < nb; ++a) allowed[a] = sinkhorn_allowed(a, b, causal);
      v[b] = sinkhorn_potential(row, u, allowed, nb);
    }
  }
  for (int64_t a = 0; a < nb; ++a) {
    dots_transposed(qbar + a * dh, kbarT, nb, dh, row);
    sorted[a] = sinkhorn_argmax_block(row, v, a, nb, causal);
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
// Channel c of lsan_local_add_row: returns out + the local branch, the same fmaf chain.
AB_HD float lsan_local_add_channel(const float* conv, const float* v, int64_t i, int64_t L,
                                   int64_t dh, int64_t c, float out) {
  for (int64_t t = 0; t < L && t <= i; ++t) out = fmaf(conv[t * dh + c], v[(i - t) * dh + c], out);
  return out;
}

}  // namespace attnbench::math
