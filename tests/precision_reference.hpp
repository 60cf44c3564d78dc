// The precision axis's independent host computation, shared by the CPU emulation tests
// (tests/test_cuda_tiling.cpp) and the GPU tests (tests/gpu/): vanilla attention at a point's
// precision written as plain loops, with none of the pipeline's code (no launcher, no GemmShape,
// no online softmax), only the rounding functions of problem.hpp (math/precision.hpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "attnbench/problem.hpp"
#include "inputs.hpp"

namespace attnbench::testing {

inline double rel_l2(const std::vector<float>& got, const std::vector<float>& want) {
  double num = 0, den = 0;
  for (size_t x = 0; x < want.size(); ++x) {
    const double d = double(got[x]) - double(want[x]);
    num += d * d;
    den += double(want[x]) * double(want[x]);
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

// Vanilla attention at p's precision in plain loops, independent of the pipeline and its
// launcher: scores = scale (q . k) accumulated in float over d, a two-pass softmax in float
// with std::exp, the probabilities rounded to the precision as the second product reads them
// (unless round_probs is false: the mistake the tests must catch), the output accumulated in
// float over the keys and rounded to the output's storage. TF32 operands are rounded to TF32.
struct PrecisionRef {
  std::vector<float> out;    // [S, N, dh]
  std::vector<float> probs;  // [S, N, N], the second product's operand (0 past the diagonal)
};
// Row i of sequence s into r (w: N floats of scratch).
inline void precision_row(const Problem& p, const HostInputs& in, bool round_probs, int64_t s,
                          int64_t i, float* w, PrecisionRef& r) {
  const Precision pr = p.precision;
  const int64_t N = p.seq_len, dh = p.head_dim;
  const float scale = 1.0f / std::sqrt(float(dh));
  const auto op = [&](float x) { return pr == Precision::tf32 ? round_to(pr, x) : x; };
  const int64_t vis = p.causal ? i + 1 : N;
  float m = -INFINITY, l = 0.0f;
  for (int64_t j = 0; j < vis; ++j) {
    float acc = 0.0f;
    for (int64_t d = 0; d < dh; ++d)
      acc += op(in.q[size_t((s * N + i) * dh + d)]) * op(in.k[size_t((s * N + j) * dh + d)]);
    w[j] = scale * acc;
    m = std::max(m, w[j]);
  }
  for (int64_t j = 0; j < vis; ++j) l += (w[j] = std::exp(w[j] - m));
  float* prow = r.probs.data() + (s * N + i) * N;
  for (int64_t j = 0; j < vis; ++j) {
    const float pj = w[j] * (1.0f / l);
    prow[j] = round_probs ? round_to(pr, pj) : pj;
  }
  for (int64_t c = 0; c < dh; ++c) {
    float acc = 0.0f;
    for (int64_t j = 0; j < vis; ++j) acc += prow[j] * op(in.v[size_t((s * N + j) * dh + c)]);
    r.out[size_t((s * N + i) * dh + c)] = storage_bytes(pr) == 2 ? round_to(pr, acc) : acc;
  }
}

// Every row, in parallel (each row is computed alone, so the result does not depend on the
// thread count).
inline PrecisionRef vanilla_at_precision(const Problem& p, const HostInputs& in, bool round_probs) {
  const int64_t S = p.sequences(), N = p.seq_len, dh = p.head_dim;
  PrecisionRef r{std::vector<float>(size_t(S * N * dh)), std::vector<float>(size_t(S * N * N))};
#pragma omp parallel
  {
    std::vector<float> w(static_cast<size_t>(N));
#pragma omp for schedule(dynamic, 8)
    for (int64_t x = 0; x < S * N; ++x) precision_row(p, in, round_probs, x / N, x % N, w.data(), r);
  }
  return r;
}

}  // namespace attnbench::testing

