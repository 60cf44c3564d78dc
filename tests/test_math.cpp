// The shared host/device arithmetic (kernels/include/attnbench/math/): the CUDA kernels
// evaluate the same functions, so these tests cover the GPU's formulas too.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "attnbench/math/softmax.hpp"
#include "inputs.hpp"

namespace attnbench::testing {

TEST_CASE("exp_f is within 2 ulp of exp over float32's range and 0 below it", "[math]") {
  double worst = 0;
  for (uint64_t i = 0; i < 200000; ++i) {
    const float x = float(-87.0 + 175.7 * counter_uniform(99, 1, i));
    const double want = std::exp(double(x));
    worst = std::max(worst, std::fabs(double(math::exp_f(x)) - want) / want);
  }
  INFO("worst relative error " << worst);
  CHECK(worst < 2.5e-7);
  CHECK(math::exp_f(0.f) == 1.f);
  CHECK(math::exp_f(-std::numeric_limits<float>::infinity()) == 0.f);
  CHECK(math::exp_f(-200.f) == 0.f);
  CHECK(std::isfinite(math::exp_f(88.7f)));
}

TEST_CASE("the online softmax over tiles equals the softmax of the whole row", "[math]") {
  const int n = 1000;
  std::vector<float> s(n), v(n);
  for (int j = 0; j < n; ++j) {
    s[j] = float(6.0 * counter_normal(5, 2, uint64_t(j)));
    v[j] = float(counter_normal(5, 3, uint64_t(j)));
  }
  s[17] = -std::numeric_limits<float>::infinity();  // a masked key
  double mx = -1e300, z = 0, want = 0;
  for (int j = 0; j < n; ++j) mx = std::max(mx, double(s[j]));
  for (int j = 0; j < n; ++j) {
    z += std::exp(double(s[j]) - mx);
    want += std::exp(double(s[j]) - mx) * v[j];
  }
  want /= z;
  const int tile = GENERATE(1, 7, 64, 1000);
  math::OnlineSoftmaxRow st = math::online_softmax_init();
  float acc = 0;
  for (int j0 = 0; j0 < n; j0 += tile) {
    const int j1 = std::min(n, j0 + tile);
    float tmax = math::neg_inf_f();
    for (int j = j0; j < j1; ++j) tmax = std::max(tmax, s[j]);
    acc *= math::online_softmax_rescale(st, tmax);
    for (int j = j0; j < j1; ++j) {
      const float w = math::online_softmax_weight(st, s[j]);
      st.l += w;
      acc += w * v[j];
    }
  }
  CHECK(acc * math::online_softmax_inv_sum(st) == Approx(want).epsilon(1e-5));
}

TEST_CASE("a row that has seen only masked keys stays finite", "[math]") {
  math::OnlineSoftmaxRow st = math::online_softmax_init();
  const float f = math::online_softmax_rescale(st, math::neg_inf_f());
  CHECK(f == 1.0f);
  CHECK(math::online_softmax_weight(st, math::neg_inf_f()) == 0.0f);
  CHECK(st.l == 0.0f);
}

}  // namespace attnbench::testing
