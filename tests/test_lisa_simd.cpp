// The CPU LISA kernels' vector helpers (cpu/lisa_simd.hpp) against the shared formulas of
// math/lisa.hpp that the CUDA kernels evaluate: weights, query codes and the bidirectional
// gather must agree bit for bit, for every width (one vector, ragged tails, many vectors),
// every group size of the eight-codebook tree, ties, zero histograms and the exact-path
// fallback.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "attnbench/cpu/lisa_simd.hpp"
#include "inputs.hpp"

namespace attnbench::testing {
namespace {

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Tables of B codebooks (T: logits spread over `spread`, E = exp(T - rowmax)) and a histogram
// with some empty codewords; `far` puts the whole histogram on logits ~100 below the row max
// (the table sum underflows: the exact path).
struct Case {
  int64_t B, W;
  std::vector<float> t, e, hist;
  std::vector<int64_t> codes;
};
Case make_case(int64_t B, int64_t W, uint64_t seed, bool far) {
  Case c{B, W, std::vector<float>(size_t(B * W * W)), std::vector<float>(size_t(B * W * W)),
         std::vector<float>(size_t(B * W)), std::vector<int64_t>(size_t(B))};
  for (size_t x = 0; x < c.t.size(); ++x) c.t[x] = float(3.0 * counter_normal(seed, 1, x));
  if (far)
    for (int64_t r = 0; r < B * W; ++r)
      for (int64_t w = 1; w < W; ++w) c.t[size_t(r * W + w)] -= 100.0f;
  for (int64_t r = 0; r < B * W; ++r)
    math::lisa_exp_table_row(c.t.data() + r * W, W, c.e.data() + r * W);
  for (size_t x = 0; x < c.hist.size(); ++x) {
    const double u = counter_uniform(seed, 2, x);
    c.hist[x] = u < 0.3 ? 0.0f : float(int(10 * u));
  }
  if (far)
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t w = 0; w < W; ++w) c.hist[size_t(b * W + w)] = w == 0 ? 0.0f : 1.0f;
      if (W == 1) c.hist[size_t(b * W)] = 1.0f;
    }
  for (int64_t b = 0; b < B; ++b)
    c.codes[size_t(b)] = int64_t(counter_uniform(seed, 3, uint64_t(b)) * double(W));
  return c;
}

}  // namespace

TEST_CASE("the vector LISA weights equal math::lisa_weights bit for bit", "[lisa][simd]") {
  for (const int64_t W : {1, 5, 15, 16, 17, 32, 33, 128})
    for (const int64_t B : {1, 3, 8, 9, 16})
      for (const bool far : {false, true}) {
        INFO("W = " << W << ", B = " << B << (far ? ", exact path" : ""));
        const Case c = make_case(B, W, uint64_t(W * 100 + B), far);
        std::vector<float> want(size_t(B * W)), got(size_t(B * W)), one(size_t(B * W));
        for (int64_t b = 0; b < B; ++b) {
          const int64_t row = (b * W + c.codes[size_t(b)]) * W;
          math::lisa_weights(c.e.data() + row, c.t.data() + row, c.hist.data() + b * W, int(W),
                             want.data() + b * W);
          cpu::lisa::weights(c.e.data() + row, c.t.data() + row, c.hist.data() + b * W, int(W),
                             one.data() + b * W);
        }
        cpu::lisa::row_weights(
            c.e.data(), c.t.data(), [&](int64_t b) { return c.codes[size_t(b)]; },
            c.hist.data(), B, W, got.data());
        CHECK(same_bits(one, want));
        CHECK(same_bits(got, want));
      }
}

TEST_CASE("the vector argmax is math::argmax_row: lowest index on ties", "[lisa][simd]") {
  for (const int W : {1, 2, 15, 16, 17, 40}) {
    std::vector<float> p(static_cast<size_t>(W));
    for (uint64_t trial = 0; trial < 200; ++trial) {
      for (int w = 0; w < W; ++w)  // few distinct values: many ties
        p[size_t(w)] = float(int(4 * counter_uniform(9, trial, uint64_t(w)))) / 4.0f;
      if (trial % 7 == 0) p[size_t(W - 1)] = 5.0f;  // the maximum in the tail
      if (trial % 11 == 0) std::fill(p.begin(), p.end(), 0.0f);
      CHECK(cpu::lisa::argmax(p.data(), W) == math::argmax_row(p.data(), W));
    }
  }
}

TEST_CASE("the vector gather adds Y's rows in codebook order", "[lisa][simd]") {
  for (const int64_t dh : {1, 8, 16, 33, 64, 100, 130}) {
    const int64_t B = 9, W = 5;
    std::vector<float> y(size_t(B * W * dh));
    for (size_t x = 0; x < y.size(); ++x) y[x] = float(counter_normal(13, 1, x));
    auto code = [](int64_t b) { return (3 * b + 1) % 5; };
    std::vector<float> want(size_t(dh), 0.0f), got(size_t(dh), -1.0f);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t e = 0; e < dh; ++e) want[size_t(e)] += y[size_t((b * W + code(b)) * dh + e)];
    cpu::lisa::gather_rows(y.data(), code, B, W, dh, got.data());
    INFO("dh = " << dh);
    CHECK(same_bits(got, want));
  }
}

}  // namespace attnbench::testing
