// Random projections for the kernels library (docs/methods.md section 3, Performer FAVOR+). Host
// code, double precision, deterministic: the normals are counter_rng.hpp's (the `performer`
// derivation), pure functions of (seed, stream, index), so a kernel (rounding to float32 in
// `prepare`) and its float64 reference draw exactly the same projection for the same seed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace attnbench::random_features {

// Performer's default feature count: floor(dh ln dh), at least 1 (dh = 1 would give 0).
int64_t performer_default_features(int64_t head_dim);
// The feature count a problem uses: `features` if positive, else the default.
inline int64_t performer_features(int64_t features, int64_t head_dim) {
  return features > 0 ? features : performer_default_features(head_dim);
}

// Doubles of work memory performer_projection needs (one dim x dim block).
inline size_t performer_projection_work_elems(int64_t dim) { return size_t(dim) * size_t(dim); }

// The block-orthogonal Gaussian projection of FAVOR+: `rows` rows of length `dim`, row-major.
// Rows come in blocks of `dim`: block t holds the rows of a Haar-random orthogonal matrix (a
// Gaussian dim x dim matrix orthonormalised row by row with modified Gram-Schmidt, applied
// twice), and row r is then rescaled by the norm of its own Gaussian dim-vector, so each row
// has the length distribution of a Gaussian row (the paper's "regularized" features).
// Row r depends only on (seed, dim, r): a projection with fewer rows is a prefix of one with
// more. `work` holds performer_projection_work_elems(dim) doubles.
void performer_projection(int64_t rows, int64_t dim, uint64_t seed, double* work, double* out);
void performer_projection(int64_t rows, int64_t dim, uint64_t seed, double* work, float* out);
// Convenience for references and tests (allocates).
std::vector<double> performer_projection(int64_t rows, int64_t dim, uint64_t seed);

}  // namespace attnbench::random_features
