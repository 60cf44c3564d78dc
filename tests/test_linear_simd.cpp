// The CPU linear family's row helpers (cpu/linear_simd.hpp) against the shared formulas of
// math/linear.hpp that the CUDA kernels evaluate. With AVX-512 the helpers use their own
// vector exp (exp16: a degree-5 polynomial and vscalefps) and elu (elu16), so they are pinned
// here within a stated distance of math::exp_f / math::elu_f and the row maps built on them;
// without AVX-512 the helpers call the shared formulas and must agree bit for bit.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "attnbench/cpu/linear_simd.hpp"
#include "attnbench/math/linear.hpp"
#include "inputs.hpp"

namespace attnbench::testing {
namespace {

namespace lin = cpu::lin;

#if defined(__AVX512F__)
// Elementwise maps (exp, elu, elu + 1, FAVOR+'s finish) and row maps with a reduction (LinRec's
// norm, softmax's sum, summed in another order). Measured on these inputs: exp 3 ulp, elu 2,
// elu + 1 3, FAVOR+ 2, LinRec 4, softmax 7; the bounds leave one ulp of margin.
constexpr int64_t kElementUlps = 5;
constexpr int64_t kRowUlps = 8;
#else
constexpr int64_t kElementUlps = 0;
constexpr int64_t kRowUlps = 0;
#endif

// Distance in units in the last place between two finite floats of the same sign (0 for
// equal values, including +0 and -0).
int64_t ulps(float a, float b) {
  if (a == b) return 0;
  int32_t ia, ib;
  std::memcpy(&ia, &a, sizeof ia);
  std::memcpy(&ib, &b, sizeof ib);
  if ((ia < 0) != (ib < 0)) return std::numeric_limits<int64_t>::max();
  return std::abs(int64_t(ia) - int64_t(ib));
}

// Exponents over float32's whole exp range, plus the edges: 0, -0, the smallest normals, the
// underflow threshold and just past it, the largest finite argument, and tiny magnitudes.
std::vector<float> exp_arguments() {
  std::vector<float> x;
  for (uint64_t i = 0; i < 100000; ++i)
    x.push_back(float(-87.3 + 176.0 * counter_uniform(7, 1, i)));
  for (uint64_t i = 0; i < 20000; ++i) x.push_back(float(-1.0 * counter_uniform(7, 2, i)));
  const float edges[] = {0.0f, -0.0f, 1e-30f, -1e-30f, -1e-7f, -0.35f, -0.3500001f, -1.0f,
                         -87.0f, -87.33654f, -87.3365f, 88.0f, 88.72283f, 1.0f, 10.0f};
  x.insert(x.end(), std::begin(edges), std::end(edges));
  return x;
}

template <class F>
std::vector<float> map_scalar(const std::vector<float>& x, F f) {
  std::vector<float> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = f(x[i]);
  return y;
}

int64_t worst_ulps(const std::vector<float>& a, const std::vector<float>& b) {
  int64_t worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, ulps(a[i], b[i]));
  return worst;
}

// Rows of n normals times `spread` (odd n: every tail length of the 16-lane loops).
std::vector<float> rows_of(int64_t rows, int64_t n, double spread, uint64_t stream) {
  std::vector<float> x(size_t(rows * n));
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(spread * counter_normal(11, stream, i));
  return x;
}

}  // namespace

TEST_CASE("the row exp is within kElementUlps of math::exp_f, 0 below -87.33654 and for -inf",
          "[linear][simd]") {
  const std::vector<float> x = exp_arguments();
  const std::vector<float> zero(x.size(), 0.0f);
  std::vector<float> got(x.size());
  lin::exp_shifted(x.data(), zero.data(), int64_t(x.size()), got.data());
  const int64_t worst = worst_ulps(got, map_scalar(x, [](float v) { return math::exp_f(v); }));
  INFO("worst distance " << worst << " ulp");
  CHECK(worst <= kElementUlps);
  const float low[] = {-87.34f, -100.0f, -std::numeric_limits<float>::infinity()};
  const float none[3] = {};
  float out[3];
  lin::exp_shifted(low, none, 3, out);
  for (float y : out) CHECK(y == 0.0f);
}

TEST_CASE("the row feature maps are within kElementUlps / kRowUlps of math/linear.hpp's",
          "[linear][simd]") {
  const std::vector<float> x = exp_arguments();
  std::vector<float> got(x.size());
  lin::elu_plus_one(x.data(), int64_t(x.size()), got.data());
  CHECK(worst_ulps(got, map_scalar(x, [](float v) { return math::elu_plus_one_f(v); })) <=
        kElementUlps);
  for (const int64_t n : {1, 7, 16, 33, 64}) {
    INFO("n = " << n);
    const int64_t rows = 37;
    const std::vector<float> in = rows_of(rows, n, 3.0, 3);
    std::vector<float> simd(in.size()), shared(in.size());
    lin::linrec_features(in.data(), rows, n, simd.data());
    for (int64_t r = 0; r < rows; ++r)
      math::linrec_feature_row(in.data() + r * n, int(n), shared.data() + r * n);
    CHECK(worst_ulps(simd, shared) <= kRowUlps);
    lin::softmax_rows(in.data(), rows, n, simd.data());
    for (int64_t r = 0; r < rows; ++r)
      math::softmax_row_f(in.data() + r * n, int(n), shared.data() + r * n);
    CHECK(worst_ulps(simd, shared) <= kRowUlps);
  }
}

#if defined(__AVX512F__)
TEST_CASE("the vector elu is within kElementUlps of math::elu_f", "[linear][simd]") {
  std::vector<float> x = exp_arguments();
  x.resize((x.size() + 15) / 16 * 16, -0.5f);
  std::vector<float> got(x.size());
  for (size_t i = 0; i < x.size(); i += 16)
    _mm512_storeu_ps(got.data() + i, lin::elu16(_mm512_loadu_ps(x.data() + i)));
  const int64_t worst = worst_ulps(got, map_scalar(x, [](float v) { return math::elu_f(v); }));
  INFO("worst distance " << worst << " ulp");
  CHECK(worst <= kElementUlps);
}
#endif

TEST_CASE("the row FAVOR+ finish is within kElementUlps of math::performer_finish",
          "[linear][simd]") {
  for (const int64_t m : {1, 15, 266}) {
    INFO("m = " << m);
    std::vector<float> dots = rows_of(1, m, 4.0, 5);
    const float half = 2.5f, c = *std::max_element(dots.begin(), dots.end());
    std::vector<float> shared = dots;
    lin::performer_finish(dots.data(), m, half, c);
    math::performer_finish(shared.data(), int(m), half, c);
    CHECK(worst_ulps(dots, shared) <= kElementUlps);
  }
}

TEST_CASE("the running normalisation is within 2 ulp of the quotients", "[linear][simd]") {
  for (const int64_t m : {1, 16, 21, 64}) {
    const int64_t rows = 32;
    std::vector<float> e = rows_of(rows, m, 1.0, 7), q = rows_of(rows, m, 1.0, 8);
    for (float& x : e) x = std::exp(x);  // exp(k - cmax) > 0
    std::vector<float> z(size_t(m), 0.5f), zw = z, want = q;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < m; ++c) {
        zw[size_t(c)] += e[size_t(r * m + c)];
        want[size_t(r * m + c)] /= zw[size_t(c)];
      }
    lin::running_normalise(e.data(), rows, m, z.data(), q.data());
    INFO("m = " << m);
    CHECK(worst_ulps(q, want) <= (kElementUlps ? 2 : 0));
    CHECK(worst_ulps(z, zw) == 0);
  }
}

}  // namespace attnbench::testing
