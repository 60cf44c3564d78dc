// `attnbench compare`: identical files pass; a doubled time, a grown peak memory, a broken
// kernel and a row that no longer runs are regressions; noise is not.
#include <catch2/catch.hpp>

#include "compare.hpp"

using namespace attnbench;

namespace {

Row make_row(const std::string& kernel, int64_t n, const std::vector<double>& samples, size_t scratch) {
  Row r;
  r.kernel = kernel;
  r.problem.seq_len = n;
  TimeStats t;
  t.samples = samples;
  static_cast<stats::Summary&>(t) = stats::summarize(samples);
  r.time = t;
  r.memory = {1000, 1000, 0, scratch};
  r.correctness_rel_l2 = 2e-7;
  if (kernel != "vanilla_materialized") r.approx_rel_l2 = 0.3;
  return r;
}

std::vector<double> noisy(double base, int n, double spread) {
  std::vector<double> v;
  for (int i = 0; i < n; ++i) v.push_back(base * (1.0 + spread * double((i * 7) % 11 - 5) / 5.0));
  return v;
}

ResultsFile baseline() {
  ResultsFile f;
  f.environment.cpu_model = "CPU A";
  f.rows.push_back(make_row("vanilla_materialized", 1024, noisy(10.0, 20, 0.03), 4000000));
  f.rows.push_back(make_row("lisa_base", 1024, noisy(2.0, 20, 0.03), 5000));
  f.rows.push_back(make_row("lisa_base", 2048, noisy(4.0, 20, 0.03), 9000));
  return f;
}

}  // namespace

TEST_CASE("compare passes identical files", "[harness][compare]") {
  const ResultsFile a = baseline();
  const Comparison c = compare_results(a, a);
  CHECK(c.regressions == 0);
  CHECK(c.matched == 3);
  CHECK(c.environment_warnings.empty());
  for (const auto& r : c.rows) CHECK(r.verdict() == "ok");
  CHECK_THAT(comparison_report(c, false), Catch::Contains("0 regressions in 3 matched rows"));
}

TEST_CASE("compare flags a doubled time", "[harness][compare]") {
  const ResultsFile a = baseline();
  ResultsFile b = a;
  for (double& s : b.rows[1].time->samples) s *= 2;
  b.rows[1].time->median *= 2;
  const Comparison c = compare_results(a, b);
  CHECK(c.regressions == 1);
  CHECK(c.rows[1].time_regressed);
  CHECK(*c.rows[1].p_value < 0.05);
  CHECK_THAT(c.rows[1].verdict(), Catch::Contains("REGRESSED") && Catch::Contains("time +100.0 %"));
  CHECK_FALSE(c.rows[0].regressed());
  const std::string md = comparison_report(c, true);
  CHECK_THAT(md, Catch::StartsWith("| kernel |") && Catch::Contains("**1 regression in 3 matched rows"));
}

TEST_CASE("compare flags a grown peak memory", "[harness][compare]") {
  const ResultsFile a = baseline();
  ResultsFile b = a;
  b.rows[2].memory.scratch_bytes *= 3;
  const Comparison c = compare_results(a, b);
  CHECK(c.regressions == 1);
  CHECK(c.rows[2].memory_regressed);
  CHECK_FALSE(c.rows[2].time_regressed);
  CHECK_THAT(c.rows[2].verdict(), Catch::Contains("memory"));
}

TEST_CASE("compare ignores noise and changes under the threshold", "[harness][compare]") {
  const ResultsFile a = baseline();
  ResultsFile b = a;
  b.rows[0].time->samples = noisy(10.5, 20, 0.05);  // +5 %: under the 10 % threshold
  b.rows[0].time->median = stats::summarize(b.rows[0].time->samples).median;
  b.rows[1].memory.scratch_bytes += 100;  // +1.4 %
  CHECK(compare_results(a, b).regressions == 0);
  CompareOptions strict;
  strict.threshold = 0.01;
  CHECK(compare_results(a, b, strict).regressions >= 1);
}

TEST_CASE("compare flags broken kernels and rows that no longer run", "[harness][compare]") {
  const ResultsFile a = baseline();
  ResultsFile b = a;
  b.rows[1].correctness_rel_l2 = 0.2;
  b.rows[2].status = "error";
  b.rows[2].reason = "boom";
  b.rows[2].time.reset();
  b.rows.push_back(make_row("lisa_mini", 1024, {1.0, 1.0}, 10));
  b.environment.cpu_model = "CPU B";
  const Comparison c = compare_results(a, b);
  CHECK(c.regressions == 2);
  CHECK(c.rows[1].accuracy_regressed);
  CHECK(c.rows[2].status_regressed);
  CHECK(c.rows[3].verdict() == "new");
  REQUIRE(c.environment_warnings.size() == 1);
  CHECK_THAT(c.environment_warnings[0], Catch::Contains("CPU A") && Catch::Contains("CPU B"));
  // a row missing from NEW is reported, not a regression
  ResultsFile d = a;
  d.rows.pop_back();
  const Comparison m = compare_results(a, d);
  CHECK(m.regressions == 0);
  CHECK(m.rows.back().verdict() == "missing");
}

TEST_CASE("too few samples are judged on the medians", "[harness][compare]") {
  ResultsFile a = baseline(), b = baseline();
  a.rows.resize(1);
  b.rows.resize(1);
  a.rows[0] = make_row("vanilla_materialized", 1024, {10.0, 10.1}, 4000000);
  b.rows[0] = make_row("vanilla_materialized", 1024, {15.0, 15.2}, 4000000);
  const Comparison c = compare_results(a, b);
  CHECK(c.rows[0].time_judged_on_median);
  CHECK(c.rows[0].time_regressed);
}

TEST_CASE("thresholds read as fractions or percentages", "[harness][compare]") {
  CHECK(parse_fraction("10%", "--threshold") == Approx(0.10));
  CHECK(parse_fraction("0.25", "--threshold") == 0.25);
  CHECK_THROWS_WITH(parse_fraction("10", "--threshold"), Catch::Contains("fraction below 1"));
  CHECK_THROWS_WITH(parse_fraction("lots", "--threshold"), Catch::Contains("--threshold lots"));
}
