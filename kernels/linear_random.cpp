// Seeded generator and Performer projection (see attnbench/random_features.hpp).
#include <algorithm>
#include <cmath>

#include "attnbench/counter_rng.hpp"
#include "attnbench/random_features.hpp"

namespace attnbench::random_features {

namespace {
// Streams keep the Gaussian blocks and the row-norm vectors independent of each other.
constexpr uint64_t kStreamBlock = 0x50524f4a424c4b00ULL;  // + block index, + retry << 32
constexpr uint64_t kStreamRowNorm = 0x50524f4a4e524d00ULL;

double dot(const double* a, const double* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

// Block `t` (dim x dim, row-major, in `blk`): orthonormal rows, each scaled by the norm of an
// independent Gaussian vector.
void projection_block(int64_t t, int64_t dim, uint64_t seed, double* blk) {
  for (int64_t r = 0; r < dim; ++r) {
    double* row = blk + r * dim;
    // A Gaussian row is linearly dependent on the previous ones with probability 0; the retry
    // (a new, still deterministic, draw) only guards against a degenerate result.
    for (uint64_t attempt = 0;; ++attempt) {
      const uint64_t stream = kStreamBlock + uint64_t(t) + (attempt << 32);
      for (int64_t c = 0; c < dim; ++c)
        row[c] = rng::performer_normal(seed, stream, uint64_t(r * dim + c));
      const double before = std::sqrt(dot(row, row, dim));
      for (int pass = 0; pass < 2; ++pass)  // Gram-Schmidt twice: orthogonal to rounding
        for (int64_t p = 0; p < r; ++p) {
          const double* prev = blk + p * dim;
          const double proj = dot(row, prev, dim);
          for (int64_t c = 0; c < dim; ++c) row[c] -= proj * prev[c];
        }
      const double after = std::sqrt(dot(row, row, dim));
      if (after > 1e-6 * before && after > 0) {
        for (int64_t c = 0; c < dim; ++c) row[c] /= after;
        break;
      }
    }
  }
  // Row norms are applied after the whole block is orthonormal (Gram-Schmidt needs unit rows).
  for (int64_t r = 0; r < dim; ++r) {
    const uint64_t global_row = uint64_t(t * dim + r);
    double ss = 0;
    for (int64_t c = 0; c < dim; ++c) {
      const double g =
          rng::performer_normal(seed, kStreamRowNorm, global_row * uint64_t(dim) + uint64_t(c));
      ss += g * g;
    }
    const double norm = std::sqrt(ss);
    for (int64_t c = 0; c < dim; ++c) blk[r * dim + c] *= norm;
  }
}

template <class T>
void projection(int64_t rows, int64_t dim, uint64_t seed, double* work, T* out) {
  for (int64_t t = 0; t * dim < rows; ++t) {
    projection_block(t, dim, seed, work);
    const int64_t take = std::min(dim, rows - t * dim);
    for (int64_t x = 0; x < take * dim; ++x) out[t * dim * dim + x] = T(work[x]);
  }
}
}  // namespace

int64_t performer_default_features(int64_t head_dim) {
  if (head_dim <= 1) return 1;
  return std::max<int64_t>(1, int64_t(std::floor(double(head_dim) * std::log(double(head_dim)))));
}

void performer_projection(int64_t rows, int64_t dim, uint64_t seed, double* work, double* out) {
  projection(rows, dim, seed, work, out);
}

void performer_projection(int64_t rows, int64_t dim, uint64_t seed, double* work, float* out) {
  projection(rows, dim, seed, work, out);
}

std::vector<double> performer_projection(int64_t rows, int64_t dim, uint64_t seed) {
  std::vector<double> out(size_t(rows * dim)), work(performer_projection_work_elems(dim));
  projection(rows, dim, seed, work.data(), out.data());
  return out;
}

}  // namespace attnbench::random_features
