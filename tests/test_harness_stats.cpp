// harness/stats: summaries and the Mann-Whitney U test against known values (SciPy 1.10
// mannwhitneyu(x, y, method="asymptotic"), which uses the same tie and continuity corrections).
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "stats.hpp"

using namespace attnbench;
using Catch::Matchers::WithinRel;

TEST_CASE("summaries use linear interpolation between order statistics", "[harness][stats]") {
  const auto s = stats::summarize({4, 1, 3, 2});
  CHECK(s.count == 4);
  CHECK(s.min == 1);
  CHECK(s.max == 4);
  CHECK(s.median == 2.5);
  CHECK(s.p25 == 1.75);
  CHECK(s.p75 == 3.25);
  CHECK(s.mean == 2.5);
  const auto one = stats::summarize({7});
  CHECK(one.median == 7);
  CHECK(one.p25 == 7);
  CHECK(one.p75 == 7);
  const auto none = stats::summarize({});
  CHECK(none.count == 0);
  CHECK(std::isnan(none.median));
}

TEST_CASE("Mann-Whitney U matches known values", "[harness][stats]") {
  SECTION("complete separation") {
    const auto r = stats::mann_whitney_u({1, 2, 3, 4, 5}, {6, 7, 8, 9, 10});
    CHECK(r.u_x == 0);
    CHECK(r.u_y == 25);
    CHECK_THAT(r.p_value, WithinRel(0.012185780355344813, 1e-9));
  }
  SECTION("R's wilcox.test example (no ties)") {
    const std::vector<double> x = {0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46};
    const std::vector<double> y = {1.15, 0.88, 0.90, 0.74, 1.21};
    const auto r = stats::mann_whitney_u(x, y);
    CHECK(r.u_x == 35);
    CHECK(r.u_y == 15);
    CHECK_THAT(r.p_value, WithinRel(0.24462360512698333, 1e-9));
    // symmetric in its arguments
    CHECK_THAT(stats::mann_whitney_u(y, x).p_value, WithinRel(r.p_value, 1e-12));
  }
  SECTION("ties get mean ranks and the variance correction") {
    const auto r = stats::mann_whitney_u({1, 2, 2, 3, 3, 3, 4}, {2, 3, 3, 4, 4, 5, 5, 5});
    CHECK(r.u_x == 11);
    CHECK_THAT(r.p_value, WithinRel(0.049238967838553395, 1e-9));
  }
  SECTION("identical samples give no evidence") {
    CHECK(stats::mann_whitney_u({1, 1, 1}, {1, 1, 1}).p_value == 1.0);
    const std::vector<double> s = {3.1, 2.9, 3.0, 3.3, 2.8};
    CHECK(stats::mann_whitney_u(s, s).p_value == 1.0);
    CHECK(stats::mann_whitney_u({}, {1, 2}).p_value == 1.0);
  }
  SECTION("the smallest reachable p-value depends on the sample sizes") {
    CHECK(stats::mann_whitney_min_p(3, 3) > 0.05);
    CHECK(stats::mann_whitney_min_p(5, 5) < 0.05);
    CHECK_THAT(stats::mann_whitney_min_p(5, 5), WithinRel(0.012185780355344813, 1e-9));
  }
}

TEST_CASE("normal tail", "[harness][stats]") {
  CHECK_THAT(stats::normal_sf(0), WithinRel(0.5, 1e-12));
  CHECK_THAT(stats::normal_sf(1.959963984540054), WithinRel(0.025, 1e-9));
}
