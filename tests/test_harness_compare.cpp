// `attnbench compare`: identical files pass; a doubled time, a grown peak memory, a broken
// kernel and a row that no longer runs are regressions; noise is not.
#include <catch2/catch.hpp>

#include <cmath>

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

// New samples with the summary they imply, as a sweep stores them.
void set_samples(Row& r, const std::vector<double>& samples) {
  r.time->samples = samples;
  static_cast<stats::Summary&>(*r.time) = stats::summarize(samples);
}

std::string compare_error(const ResultsFile& a, const ResultsFile& b) {
  CompareOptions o;
  o.base_name = "base.json";
  o.new_name = "new.json";
  try {
    compare_results(a, b, o);
  } catch (const InvalidProblem& e) {
    return e.what();
  }
  return "";
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
  std::vector<double> doubled = b.rows[1].time->samples;
  for (double& s : doubled) s *= 2;
  set_samples(b.rows[1], doubled);
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
  set_samples(b.rows[0], noisy(10.5, 20, 0.05));  // +5 %: under the 10 % threshold
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
}

TEST_CASE("a row missing from NEW is reported, and fails under --require-all", "[harness][compare]") {
  const ResultsFile a = baseline();
  ResultsFile d = a;
  d.rows.pop_back();
  const Comparison m = compare_results(a, d);
  CHECK(m.regressions == 0);
  CHECK(m.missing == 1);
  CHECK(m.rows.back().verdict() == "missing");
  CHECK_THAT(comparison_report(m, false), Catch::Contains("1 row of BASE missing from NEW"));
  CompareOptions all;
  all.require_all = true;
  const Comparison r = compare_results(a, d, all);
  CHECK(r.regressions == 1);
  CHECK(r.rows.back().missing_regressed);
  CHECK(r.rows.back().verdict() == "REGRESSED: missing from NEW");
  CHECK(compare_results(a, a, all).regressions == 0);
}

TEST_CASE("compare takes every time figure from the samples, never the stored summary",
          "[harness][compare]") {
  const ResultsFile a = baseline();
  // doubled samples under the old median: the summary no longer matches, so the file is refused
  ResultsFile b = a;
  for (double& x : b.rows[1].time->samples) x *= 2;
  CHECK_THAT(compare_error(a, b), Catch::Contains("new.json: row 1 (lisa_base cpu") &&
                                      Catch::Contains("stored median"));
  // the same tampering in BASE names BASE
  CHECK_THAT(compare_error(b, a), Catch::StartsWith("base.json: row 1"));
  // each stored figure is checked, and the count
  for (int what = 0; what < 5; ++what) {
    ResultsFile c = a;
    TimeStats& t = *c.rows[2].time;
    double* figure[] = {&t.min, &t.max, &t.p25, &t.p75, &t.mean};
    *figure[what] *= 1.001;
    CHECK_THAT(compare_error(a, c), Catch::Contains("row 2") && Catch::Contains("is not the"));
  }
  ResultsFile n = a;
  n.rows[0].time->count = 19;
  CHECK_THAT(compare_error(a, n), Catch::Contains("count 19 but 20 samples"));
  // the nanosecond rounding of stored samples is within the tolerance
  ResultsFile r = a;
  r.rows[0].time->median += 4e-7;
  CHECK(compare_error(a, r).empty());
  CHECK(*compare_results(a, r).rows[0].time_ratio == 1.0);
}

TEST_CASE("an ok row without a positive time is an error, not a faster row", "[harness][compare]") {
  const ResultsFile a = baseline();
  ResultsFile untimed = a;
  untimed.rows[0].time.reset();
  CHECK_THAT(compare_error(a, untimed), Catch::Contains("new.json: row 0") &&
                                            Catch::Contains("status ok without a time"));
  for (double bad : {0.0, -1.0, std::nan("")}) {
    ResultsFile b = a;
    std::vector<double> s = b.rows[1].time->samples;
    s[3] = bad;
    set_samples(b.rows[1], s);
    CHECK_THAT(compare_error(a, b), Catch::Contains("row 1") && Catch::Contains("sample 3") &&
                                        Catch::Contains("positive and finite"));
  }
  ResultsFile empty = a;
  set_samples(empty.rows[2], {});
  CHECK_THAT(compare_error(a, empty), Catch::Contains("row 2") && Catch::Contains("without samples"));
  // an error row may have no time
  ResultsFile err = a;
  err.rows[2].status = "error";
  err.rows[2].time.reset();
  CHECK(compare_error(a, err).empty());
}

TEST_CASE("a point stored twice in one file is an error", "[harness][compare]") {
  const ResultsFile a = baseline();
  ResultsFile b = a;
  b.rows.push_back(b.rows[0]);
  CHECK_THAT(compare_error(a, b), Catch::Contains("new.json: row 3") &&
                                      Catch::Contains("the same point as row 0"));
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
