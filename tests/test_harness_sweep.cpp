// The sweep: expansion of the axes (non-applicable axes ignored, parameter defaults from the
// kernel, vanilla first, deduplication), bad sweep files, skip on the memory limit and on the
// extrapolated time, rows for points that cannot run, and the results file after each row.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <stdexcept>

#include "backend.hpp"
#include "sweep.hpp"

using namespace attnbench;

namespace {

std::string temp_path(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / "attnbench_test_sweep";
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

SweepSpec spec_from(const std::string& text) { return parse_sweep(ojson::parse(text), "test.json"); }

std::string error_of(const std::string& text) {
  try {
    spec_from(text);
  } catch (const InvalidProblem& e) {
    return e.what();
  }
  return "";
}

RunOptions quick_options() {
  RunOptions o;
  for (auto& [b, t] : o.timing) t = Timing{0, 1, 0.0, 2};
  o.max_point_seconds = 0;
  return o;
}

// Kernels that are not registered: one without a causal form, one that throws in run.
class ToyKernel : public Kernel {
 public:
  ToyKernel(const char* name, bool causal, bool throws) : throws_(throws) {
    info_.name = name;
    info_.family = "test";
    info_.has_causal = causal;
  }
  const KernelInfo& info() const override { return info_; }
  WorkspaceSize workspace(const Problem&) const override { return {0, 256}; }
  void run(const Problem& p, const Inputs& in, const void*, void*, float* out,
           const ExecContext&) const override {
    if (throws_) throw std::runtime_error("toy kernel failed on purpose");
    for (size_t i = 0; i < output_elems(p); ++i) out[i] = in.v[i];
  }
  double flops(const Problem&) const override { return 1; }

 private:
  bool throws_;
  KernelInfo info_;
};

Point point_of(const Kernel& k, int64_t n, bool causal = true) {
  Point pt;
  pt.kernel = &k;
  pt.problem = with_defaults(k, default_shape());
  pt.problem.seq_len = n;
  pt.problem.head_dim = 16;
  pt.problem.causal = causal;
  return pt;
}

}  // namespace

TEST_CASE("axes a kernel does not read are ignored for it, not multiplied", "[harness][sweep]") {
  const SweepSpec s = spec_from(R"({
    "kernels": ["lisa_base", "vanilla_materialized", "lisa_mini"],
    "axes": {"seq_len": [128, 64], "head_dim": [16], "codewords": [32, 64], "window": [8, 16]}
  })");
  const auto pts = expand(s, {Backend::cpu});
  std::map<std::string, int> per_kernel;
  for (const auto& p : pts) per_kernel[p.kernel->info().name]++;
  CHECK(per_kernel["vanilla_materialized"] == 2);  // seq_len only
  CHECK(per_kernel["lisa_base"] == 4);             // seq_len x codewords; window ignored
  CHECK(per_kernel["lisa_mini"] == 4);
  // seq_len ascending, vanilla first at each point
  REQUIRE(pts.size() == 10);
  CHECK(pts[0].kernel->info().name == "vanilla_materialized");
  CHECK(pts[0].problem.seq_len == 64);
  CHECK(pts[5].kernel->info().name == "vanilla_materialized");
  CHECK(pts[5].problem.seq_len == 128);
  for (const auto& p : pts) {
    if (p.kernel->info().name == "vanilla_materialized") {
      CHECK(p.problem.params.empty());
    } else {
      CHECK(p.problem.int_param("codebooks") == 8);  // the kernel's default: no codebooks axis
      CHECK((p.problem.int_param("codewords") == 32 || p.problem.int_param("codewords") == 64));
    }
  }
}

TEST_CASE("parameter defaults come from the kernel, groups are deduplicated", "[harness][sweep]") {
  const SweepSpec s = spec_from(R"({
    "axes": {"seq_len": [64], "head_dim": [16]},
    "groups": [
      {"kernels": ["lisa_base", "lisa_mini", "vanilla_materialized"]},
      {"kernels": ["vanilla_materialized", "lisa_base"], "axes": {"causal": [true, false]}}
    ]
  })");
  const auto pts = expand(s, {Backend::cpu});
  std::set<std::string> keys;
  for (const auto& p : pts) CHECK(keys.insert(p.key()).second);
  CHECK(pts.size() == 3 + 2);  // the causal points of group 2 repeat group 1
  for (const auto& p : pts) {
    if (p.kernel->info().name == "lisa_base") CHECK(p.problem.int_param("codewords") == 128);
    if (p.kernel->info().name == "lisa_mini") CHECK(p.problem.int_param("codewords") == 16);
  }
}

TEST_CASE("bad sweeps and overrides give one-line errors naming the problem", "[harness][sweep]") {
  CHECK_THAT(error_of(R"({"axes": {"seq_lenn": [64]}})"),
             Catch::Contains("test.json") && Catch::Contains("unknown axis 'seq_lenn'"));
  CHECK_THAT(error_of(R"({"axes": {"seq_len": [-64]}})"), Catch::Contains("must not be negative"));
  CHECK_THAT(error_of(R"({"axes": {"seq_len": [0]}})"), Catch::Contains("must be positive"));
  CHECK_THAT(error_of(R"({"axes": {"seq_len": [64.5]}})"), Catch::Contains("integer"));
  CHECK_THAT(error_of(R"({"axes": {"causal": ["sometimes"]}})"), Catch::Contains("causal"));
  CHECK_THAT(error_of(R"({"axis": {}})"), Catch::Contains("unknown key 'axis'"));
  CHECK_THAT(error_of(R"({"backends": ["tpu"]})"), Catch::Contains("unknown backend 'tpu'"));
  CHECK_THAT(error_of(R"({"timing": {"min_reps": "many"}})"), Catch::Contains("timing.min_reps"));
  CHECK_THAT(error_of(R"([1, 2])"), Catch::Contains("JSON object"));

  const std::string path = temp_path("malformed.json");
  std::ofstream(path) << "{\"axes\": {\"seq_len\": [64,]}";
  CHECK_THROWS_WITH(load_sweep_file(path), Catch::Contains(path) && Catch::Contains("not valid JSON"));
  CHECK_THROWS_WITH(load_sweep_file(temp_path("absent.json")), Catch::Contains("cannot open"));

  SweepSpec s = spec_from(R"({"kernels": ["no_such_kernel"]})");
  CHECK_THROWS_WITH(expand(s, {Backend::cpu}), Catch::Contains("unknown kernel 'no_such_kernel'"));

  const auto [name, vals] = parse_axis_override("seq_len=512,1024");
  CHECK(name == "seq_len");
  CHECK(vals == AxisValues{512, 1024});
  CHECK(parse_axis_override("causal=true,bidirectional").second == AxisValues{1, 0});
  CHECK_THROWS_WITH(parse_axis_override("seq_len=-5"), Catch::Contains("must not be negative"));
  CHECK_THROWS_WITH(parse_axis_override("seq_len=abc"), Catch::Contains("not a number"));
  CHECK_THROWS_WITH(parse_axis_override("colour=red"), Catch::Contains("unknown axis 'colour'"));
  CHECK_THROWS_WITH(parse_axis_override("seq_len"), Catch::Contains("name=value"));

  CHECK(parse_bytes("20G") == size_t(20) << 30);
  CHECK(parse_bytes("20GB") == size_t(20000000000));
  CHECK(parse_bytes("512M") == size_t(512) << 20);
  CHECK(parse_bytes("1.5GiB") == size_t(1.5 * (1 << 30)));
  CHECK(parse_bytes("123456") == 123456);
  CHECK_THROWS_WITH(parse_bytes("20Q"), Catch::Contains("unknown unit"));
  CHECK_THROWS_WITH(parse_bytes("-1G"), Catch::Contains("positive"));
}

TEST_CASE("points over the memory limit are skipped before allocating", "[harness][sweep]") {
  const SweepSpec s = spec_from(R"({
    "kernels": ["vanilla_materialized", "lisa_mini"],
    "axes": {"seq_len": [64, 2048], "head_dim": [16]}
  })");
  const auto pts = expand(s, {Backend::cpu});
  RunOptions o = quick_options();
  o.host_memory_limit = 4000000;  // vanilla at N = 2048 needs 16.8 MB of scores alone
  ResultsFile f;
  const std::string out = temp_path("memory_limit.json");
  std::filesystem::remove(out);
  run_sweep(pts, o, f, out);
  REQUIRE(f.rows.size() == 4);
  std::map<std::string, const Row*> by;
  for (const auto& r : f.rows) by[r.kernel + std::to_string(r.problem.seq_len)] = &r;
  const Row& big = *by["vanilla_materialized2048"];
  CHECK(big.status == "skipped");
  CHECK_THAT(big.reason, Catch::StartsWith("needs ") && Catch::Contains("limit 4.0 MB"));
  CHECK(big.memory.scratch_bytes == size_t(2048) * 2048 * 4);  // the query is still reported
  CHECK_FALSE(big.time);
  CHECK(by["vanilla_materialized64"]->status == "ok");
  CHECK(by["lisa_mini2048"]->status == "ok");  // linear memory fits
  CHECK(by["lisa_mini64"]->vs_vanilla);
  CHECK_FALSE(by["lisa_mini2048"]->vs_vanilla);  // vanilla did not run there

  // the file on disk holds every row and resuming runs nothing again
  ResultsFile back = read_results(out);
  CHECK(back.rows.size() == 4);
  CHECK(run_sweep(pts, o, back, out) == 0);
  // a larger limit does not re-run the skipped row either (documented: skipped rows are kept)
  CHECK(read_results(out).rows.size() == 4);
}

TEST_CASE("a measured ok row has every figure", "[harness][sweep]") {
  const Kernel& k = Registry::instance().get("lisa_base", Backend::cpu);
  Point pt = point_of(k, 256);
  auto runner = make_runner(Backend::cpu);
  const Row r = run_point(pt, quick_options(), {}, *runner);
  REQUIRE(r.status == "ok");
  REQUIRE(r.time);
  CHECK(r.time->count >= 1);
  CHECK(r.time->samples.size() == size_t(r.time->count));
  CHECK(r.memory.peak_bytes() > 0);
  REQUIRE(r.measured_peak_bytes);
  // without the malloc interposer (the attnbench tool has it) the counting allocator measures
  CHECK(r.measured_peak_source == "counting_allocator");
  CHECK(*r.measured_peak_bytes == r.memory.peak_bytes());
  CHECK(r.memory_agrees == true);
  REQUIRE(r.correctness_rel_l2);
  CHECK(*r.correctness_rel_l2 < 1e-4);
  CHECK(r.correctness_rows == 256);  // every row at N <= 2048 (one sequence here)
  REQUIRE(r.approx_rel_l2);
  CHECK(*r.approx_rel_l2 > 0);
  CHECK(*r.approx_cosine > 0.5);
  CHECK(r.flops > 0);
  CHECK(r.gflops_per_s);
  CHECK_THAT(r.repro, Catch::StartsWith("attnbench sweep --kernels lisa_base --backend cpu") &&
                          Catch::Contains("--axis seq_len=256") && Catch::Contains("--axis codewords=128"));
  // the repro's axes expand to exactly this point again
  SweepSpec s = builtin_sweep();
  override_kernels(s, {"lisa_base"});
  for (const char* a : {"batch=1", "heads=1", "seq_len=256", "head_dim=16", "causal=true",
                        "codebooks=8", "codewords=128", "projections=0", "decay=0"}) {
    const auto [n, v] = parse_axis_override(a);
    override_axis(s, n, v);
  }
  const auto again = expand(s, {Backend::cpu});
  REQUIRE(again.size() == 1);
  CHECK(again[0].key() == pt.key());
}

TEST_CASE("points that cannot run are rows with a reason and the sweep goes on", "[harness][sweep]") {
  const ToyKernel no_causal("toy_no_causal", false, false), failing("toy_failing", true, true),
      fine("toy_fine", true, false);
  std::vector<Point> pts = {point_of(no_causal, 32), point_of(failing, 32), point_of(fine, 32)};
  ResultsFile f;
  run_sweep(pts, quick_options(), f, "");
  REQUIRE(f.rows.size() == 3);
  CHECK(f.rows[0].status == "skipped");
  CHECK_THAT(f.rows[0].reason, Catch::Contains("no causal form"));
  CHECK(f.rows[1].status == "error");
  CHECK_THAT(f.rows[1].reason, Catch::Contains("failed on purpose"));
  CHECK(f.rows[2].status == "ok");
  // an error row is run again on resume, and replaced
  CHECK(run_sweep(pts, quick_options(), f, "") == 1);
  CHECK(f.rows.size() == 3);
}

TEST_CASE("a point whose one run is too long is skipped, one whose plan is too long reduced",
          "[harness][sweep]") {
  const Kernel& vanilla = Registry::instance().get("vanilla_materialized", Backend::cpu);
  const Kernel& lisa = Registry::instance().get("lisa_base", Backend::cpu);
  auto done_row = [](const Point& p, double ms) {
    Row r;
    r.kernel = p.kernel->info().name;
    r.problem = p.problem;
    TimeStats t;
    t.samples = {ms, ms, ms};
    static_cast<stats::Summary&>(t) = stats::summarize(t.samples);
    r.time = t;
    r.point_seconds = 3 * ms / 1000;
    return r;
  };
  const Timing timing{0, 3, 0.0, 3};
  // vanilla: time ~ N^2 from the largest done point
  std::vector<Row> done = {done_row(point_of(vanilla, 1024), 100.0)};
  auto est = extrapolate_point_seconds(point_of(vanilla, 4096), done, timing);
  REQUIRE(est);
  CHECK_THAT(*est, Catch::Matchers::WithinRel(3 * 1.6, 1e-6));  // 100 ms x 16, 3 runs
  // others: the log-log slope of the two largest done points (here 1.5)
  done = {done_row(point_of(lisa, 1024), 10.0), done_row(point_of(lisa, 4096), 80.0)};
  est = extrapolate_point_seconds(point_of(lisa, 16384), done, timing);
  REQUIRE(est);
  CHECK_THAT(*est, Catch::Matchers::WithinRel(3 * 0.64, 1e-6));
  // other axes must match: a bidirectional point has no basis
  CHECK_FALSE(extrapolate_point_seconds(point_of(lisa, 16384, false), done, timing));

  RunOptions o = quick_options();
  o.max_point_seconds = 1.0;
  o.timing[Backend::cpu] = timing;
  auto runner = make_runner(Backend::cpu);
  // one run (0.64 s) fits the second allowed, three do not: timed with fewer samples, said so
  const Row r = run_point(point_of(lisa, 16384), o, done, *runner);
  CHECK(r.status == "ok");
  REQUIRE(r.time);
  CHECK(r.time->count == kReducedSamples);
  CHECK(r.warmup_runs == 0);  // a warm-up run would not fit either
  CHECK_THAT(r.reduced_timing, Catch::Contains("one run is about") && Catch::Contains("--max-point-seconds 1"));
  REQUIRE_FALSE(r.warnings.empty());
  CHECK_THAT(r.warnings.front(), Catch::Contains("reduced timing"));
  // one run over the limit: skipped, with the estimate
  done = {done_row(point_of(lisa, 1024), 100.0), done_row(point_of(lisa, 4096), 800.0)};
  const Row s = run_point(point_of(lisa, 16384), o, done, *runner);
  CHECK(s.status == "skipped");
  CHECK_THAT(s.reason, Catch::Contains("one run estimated at") && Catch::Contains("--max-point-seconds 1"));

  // with no smaller point to go by, a lower bound from the FLOP count and the sgemm rate
  const Point big = point_of(vanilla, 8192);
  const double flops = vanilla.flops(big.problem);
  auto low = lower_bound_point_seconds(vanilla, big.problem, timing, 1.0);
  REQUIRE(low);
  CHECK_THAT(*low, Catch::Matchers::WithinRel(3 * flops / 2e9, 1e-12));
  CHECK_FALSE(lower_bound_point_seconds(vanilla, big.problem, timing, 0.0));
  o.cpu_sgemm_gflops = 0.001;
  const Row b = run_point(big, o, {}, *runner);
  CHECK(b.status == "skipped");
  CHECK_THAT(b.reason, Catch::Contains("at least") && Catch::Contains("sgemm rate"));
  // a rate at which one run fits and the plan does not: reduced before anything ran
  o.cpu_sgemm_gflops = flops / 1e9;  // one run at least 0.5 s, the three of the plan 1.5 s
  const PointPlan plan = plan_point(big, o, DoneIndex({}));
  CHECK_FALSE(plan.skip);
  CHECK(plan.timing.min_reps == kReducedSamples);
  CHECK_THAT(plan.reduced, Catch::Contains("sgemm rate"));
  CHECK(measure_sgemm_gflops() > 0);
}

TEST_CASE("the shipped presets parse and cover every kernel in smoke", "[harness][sweep]") {
  const auto names = preset_names();
  for (const char* p : {"smoke", "default", "paper"})
    CHECK(std::find(names.begin(), names.end(), p) != names.end());
  for (const auto& n : names) CHECK_NOTHROW(load_sweep_file(preset_path(n)));
  const auto smoke = expand(load_sweep_file(preset_path("smoke")), {Backend::cpu});
  std::set<std::string> kernels;
  for (const auto& p : smoke) kernels.insert(p.kernel->info().name);
  for (const auto& n : Registry::instance().names())
    if (Registry::instance().find(n, Backend::cpu)) CHECK(kernels.count(n));
  const auto paper = expand(load_sweep_file(preset_path("paper")), {Backend::cpu});
  for (const auto& p : paper) {
    CHECK(p.problem.batch == 1);
    CHECK(p.problem.heads == 1);
    CHECK(p.problem.head_dim == 1024);
    CHECK(p.problem.causal);
  }
}
