// Noise and contention (harness/noise.hpp): the spread of crafted samples, the noisy decision at
// its thresholds, the re-measurement loop with an injected measurement, the --max-noise stop of
// the timing loop, the table's marker, the option checks and the OpenMP wait policy the tool
// runs with.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "noise.hpp"
#include "sweep.hpp"

using namespace attnbench;
namespace fs = std::filesystem;

namespace {

NoiseFigures figures(double rsd, double iqr, int64_t switches = 0, double load = 0) {
  NoiseFigures n;
  n.rsd = rsd;
  n.iqr_over_median = iqr;
  n.involuntary_switches = switches;
  n.load_before = n.load_after = load;
  return n;
}

const noise::Context kTwoCores{2, 2, true};

// Five samples summing to `total_ms`.
std::vector<double> five(double total_ms) { return std::vector<double>(5, total_ms / 5); }

}  // namespace

TEST_CASE("noise: rsd and iqr/median of crafted samples", "[noise]") {
  const auto s = noise::spread_of({1, 2, 3, 4, 5});
  CHECK(s.rsd == Approx(std::sqrt(2.5) / 3));
  CHECK(s.iqr_over_median == Approx(2.0 / 3));  // p25 2, p75 4, median 3
  const auto flat = noise::spread_of({2, 2, 2, 2, 2});
  CHECK(flat.rsd == 0);
  CHECK(flat.iqr_over_median == 0);
  CHECK(noise::spread_of({7}).rsd == 0);
  CHECK(noise::spread_of({}).iqr_over_median == 0);
  // the running rsd of the timing loop agrees with the batch one
  noise::RunningRsd r;
  const std::vector<double> xs = {0.5, 0.52, 0.61, 0.49, 0.8, 0.55, 0.5};
  for (double x : xs) r.add(x);
  CHECK(r.count() == 7);
  CHECK(r.rsd() == Approx(noise::spread_of(xs).rsd));
}

TEST_CASE("noise: --max-noise lets the loop stop only at or below the limit", "[noise]") {
  noise::RunningRsd r;
  CHECK(noise::quiet_enough(r, 0));  // off
  r.add(1.0);
  CHECK_FALSE(noise::quiet_enough(r, 0.5));  // one sample has no spread yet
  r.add(1.5);                                // rsd 0.283
  CHECK_FALSE(noise::quiet_enough(r, 0.2));
  CHECK(noise::quiet_enough(r, 0.3));
}

TEST_CASE("noise: the spread decides at its thresholds from 5 samples on", "[noise]") {
  const noise::Context cuda{2, 2, false};
  CHECK_FALSE(noise::judge(figures(noise::kMaxRsd, 0), five(50), cuda).noisy);
  CHECK(noise::judge(figures(noise::kMaxRsd * 1.01, 0), five(50), cuda).noisy);
  CHECK_FALSE(noise::judge(figures(0, noise::kMaxIqrOverMedian), five(50), cuda).noisy);
  CHECK(noise::judge(figures(0, noise::kMaxIqrOverMedian * 1.01), five(50), cuda).noisy);
  // a reduced plan's 3 samples are not judged by their spread
  CHECK_FALSE(noise::judge(figures(0.9, 0.9), {1, 2, 3}, cuda).noisy);
  // the score orders attempts: less spread, lower score
  CHECK(noise::judge(figures(0.2, 0.2), five(50), cuda).score <
        noise::judge(figures(0.3, 0.2), five(50), cuda).score);
}

TEST_CASE("noise: load and context switches decide on cpu rows only", "[noise]") {
  const double limit = noise::load_limit(kTwoCores);
  CHECK(limit == Approx(2 + noise::kLoadMargin));
  CHECK(noise::load_limit({2, 4, true}) == Approx(4 + noise::kLoadMargin));  // oversubscribed
  CHECK_FALSE(noise::judge(figures(0, 0, 0, limit), five(50), kTwoCores).noisy);
  CHECK(noise::judge(figures(0, 0, 0, limit + 0.01), five(50), kTwoCores).noisy);
  CHECK_FALSE(noise::judge(figures(0, 0, 0, 10 * limit), five(50), {2, 2, false}).noisy);
  // switches per second of samples, from kMinSwitches on
  const int64_t few = noise::kMinSwitches - 1;
  CHECK_FALSE(noise::judge(figures(0, 0, few, 0), five(1), kTwoCores).noisy);
  CHECK(noise::judge(figures(0, 0, noise::kMinSwitches, 0), five(1), kTwoCores).noisy);
  const double at_limit_ms = 1e3 * double(noise::kMinSwitches) / noise::kMaxSwitchesPerSecond;
  const NoiseFigures some = figures(0, 0, noise::kMinSwitches, 0);
  CHECK_FALSE(noise::judge(some, five(1.1 * at_limit_ms), kTwoCores).noisy);
  CHECK(noise::judge(some, five(0.9 * at_limit_ms), kTwoCores).noisy);
}

TEST_CASE("noise: two-thread microsecond points 10000x slower under load are flagged", "[noise]") {
  // 2 us points taking 20 ms: every sample waited for a time slice; the spread may stay small
  const std::vector<double> slow = {20, 21, 19, 20, 22};
  const NoiseFigures n = figures(noise::spread_of(slow).rsd, noise::spread_of(slow).iqr_over_median,
                                 /*switches=*/30, /*load=*/4.1);
  CHECK(noise::judge(n, slow, kTwoCores).noisy);
  const auto why = noise::reasons(n, slow, kTwoCores);
  REQUIRE(why.size() == 2);
  CHECK(why[0].find("30 involuntary context switches") == 0);
  CHECK(why[1] == "load 4.1 on 2 cores with 2 threads");
  // some samples fast, some a time slice: the spread alone says so
  const std::vector<double> mixed = {0.002, 20, 0.002, 0.002, 18};
  const auto s = noise::spread_of(mixed);
  CHECK(noise::judge(figures(s.rsd, s.iqr_over_median), mixed, {2, 2, false}).noisy);
}

namespace {

// Attempts whose figures come from a script, one per call.
struct ScriptedMeasure {
  std::deque<NoiseFigures> script;
  int calls = 0;
  void operator()(noise::Attempt& a) {
    a.samples = five(50);
    a.samples[0] += calls;  // tells the attempts apart
    a.figures = script.front();
    script.pop_front();
    ++calls;
  }
};

}  // namespace

TEST_CASE("noise: a noisy point is re-measured and the quietest attempt kept", "[noise]") {
  const noise::Context c{2, 2, false};
  const NoiseFigures loud = figures(0.5, 0.5), less = figures(0.3, 0.3);
  const NoiseFigures quiet = figures(0.01, 0.01);
  const auto always = [] { return true; };
  SECTION("quiet at once: one measurement") {
    ScriptedMeasure m{{quiet, loud}};
    noise::Attempts at(5, true);
    noise::measure_with_retries(at, m, 2, c, always);
    CHECK(m.calls == 1);
    CHECK(at.best.figures.retries == 0);
    CHECK_FALSE(at.verdict.noisy);
  }
  SECTION("quiet on the second retry: that attempt is kept") {
    ScriptedMeasure m{{loud, less, quiet}};
    noise::Attempts at(5, true);
    noise::measure_with_retries(at, m, 2, c, always);
    CHECK(m.calls == 3);
    CHECK(at.best.figures.retries == 2);
    CHECK(at.best.figures.rsd == 0.01);
    CHECK(at.best.samples[0] == 12);  // the third attempt's samples
    CHECK_FALSE(at.verdict.noisy);
  }
  SECTION("still noisy after the retries: the least noisy attempt, flagged") {
    ScriptedMeasure m{{less, loud, loud}};
    noise::Attempts at(5, true);
    noise::measure_with_retries(at, m, 2, c, always);
    CHECK(m.calls == 3);
    CHECK(at.best.figures.rsd == 0.3);
    CHECK(at.best.samples[0] == 10);
    CHECK(at.verdict.noisy);
    Row row;
    noise::record(row, at, c);
    CHECK(row.noisy);
    REQUIRE(row.noise);
    CHECK(row.noise->retries == 2);
    REQUIRE(row.warnings.size() == 1);
    CHECK(row.warnings[0] ==
          "noisy: rsd 30% over 5 samples, iqr/median 30%; re-measured 2 times, the quietest kept");
  }
  SECTION("--retries 0 and a time limit that leaves no room stop at once") {
    ScriptedMeasure m{{loud, quiet}};
    noise::Attempts at(5, false);
    noise::measure_with_retries(at, m, 0, c, always);
    CHECK(m.calls == 1);
    ScriptedMeasure m2{{loud, quiet}};
    noise::Attempts at2(5, true);
    noise::measure_with_retries(at2, m2, 2, c, [] { return false; });
    CHECK(m2.calls == 1);
    CHECK(at2.verdict.noisy);
    Row row;
    noise::record(row, at2, c);
    CHECK(row.warnings.at(0) == "noisy: rsd 50% over 5 samples, iqr/median 50%");
  }
}

namespace {

// The cpu runner with run times from a script (the kernel still runs): the timing loop sees
// exactly these samples.
class ScriptedRunner final : public BackendRunner {
 public:
  explicit ScriptedRunner(std::vector<double> times) : times_(std::move(times)) {}
  Backend backend() const override { return Backend::cpu; }
  void setup(const Kernel& k, const Problem& p, const HostInputs& in) override {
    real_->setup(k, p, in);
  }
  double run_once_ms() override {
    real_->run_once_ms();
    return times_[std::min(next_++, times_.size() - 1)];
  }
  std::vector<float> output() override { return real_->output(); }
  MemoryFigures memory() const override { return real_->memory(); }
  size_t measured_peak_bytes() const override { return real_->measured_peak_bytes(); }
  void teardown() override { real_->teardown(); }

 private:
  std::unique_ptr<BackendRunner> real_ = make_cpu_runner();
  std::vector<double> times_;
  size_t next_ = 0;
};

Point small_point() {
  SweepSpec s = builtin_sweep();
  override_kernels(s, {"linear_elu"});
  override_axis(s, "seq_len", {16});
  override_axis(s, "head_dim", {8});
  for (const Point& pt : expand(s, {Backend::cpu}))
    if (pt.kernel->info().name == "linear_elu") return pt;
  FAIL("no linear_elu point");
  return {};
}

}  // namespace

TEST_CASE("noise: --max-noise samples on until the rsd is at most the limit", "[noise]") {
  // ten samples with an rsd over 0.2, then steady ones
  std::vector<double> times;
  for (int i = 0; i < 10; ++i) times.push_back(i % 2 ? 1.5 : 1.0);
  times.resize(200, 1.0);
  RunOptions o;
  o.max_point_seconds = 0;
  o.retries = 0;  // the machine's load must not add attempts here
  o.timing[Backend::cpu] = Timing{0, 5, 0.0, 150};
  ScriptedRunner plain(times);
  const Row without = run_point(small_point(), o, {}, plain);
  REQUIRE(without.status == "ok");
  CHECK(without.time->count == 5);  // min_reps and min_time reached
  o.max_noise = 0.2;
  ScriptedRunner capped(times);
  const Row with = run_point(small_point(), o, {}, capped);
  REQUIRE(with.status == "ok");
  CHECK(with.time->count > 10);
  CHECK(with.time->count < 150);
  CHECK(noise::spread_of(with.time->samples).rsd <= 0.2);
  CHECK(noise::spread_of(std::vector<double>(with.time->samples.begin(),
                                             with.time->samples.end() - 1)).rsd > 0.2);
  REQUIRE(with.noise);
  CHECK(with.noise->rsd == Approx(noise::spread_of(with.time->samples).rsd));
  // a limit the samples never reach: max_reps ends the loop, and the row says so
  o.max_noise = 0.01;
  o.timing[Backend::cpu] = Timing{0, 5, 0.0, 12};
  ScriptedRunner never(times);
  const Row capped_out = run_point(small_point(), o, {}, never);
  CHECK(capped_out.time->count == 12);
  CHECK(std::any_of(capped_out.warnings.begin(), capped_out.warnings.end(),
                    [](const std::string& w) { return w.find("max-noise 1% not reached") == 0; }));
}

TEST_CASE("noise: the results table marks noisy rows and counts them", "[noise][table]") {
  ResultsFile f;
  Row quiet;
  quiet.kernel = "lisa_base";
  quiet.time = TimeStats{};
  quiet.time->median = 1.5;
  Row loud = quiet;
  loud.kernel = "linrec";
  loud.noisy = true;
  f.rows = {quiet, loud};
  const std::string t = results_table(f);
  CHECK(t.find("~1.500") != std::string::npos);
  CHECK(t.find(" 1.500") != std::string::npos);
  CHECK(t.find("~ 1 noisy row:") != std::string::npos);
  f.rows.pop_back();
  CHECK(results_table(f).find('~') == std::string::npos);
}

TEST_CASE("noise: --retries and --max-noise are checked", "[noise]") {
  CHECK_NOTHROW(noise::check_retries(0));
  CHECK_NOTHROW(noise::check_retries(noise::kMaxRetries));
  CHECK_THROWS_WITH(noise::check_retries(noise::kMaxRetries + 1),
                    "--retries must be between 0 and 10, got 11");
  CHECK_THROWS_AS(noise::check_retries(-1), InvalidProblem);
  CHECK_NOTHROW(noise::check_max_noise(1));
  CHECK_NOTHROW(noise::check_max_noise(0.005));
  CHECK_THROWS_WITH(noise::check_max_noise(0), Catch::Contains("--max-noise"));
  CHECK_THROWS_AS(noise::check_max_noise(1.5), InvalidProblem);
  CHECK_THROWS_AS(noise::check_max_noise(std::nan("")), InvalidProblem);
}

TEST_CASE("noise: a busy machine is reported at the start, a quiet one not", "[noise]") {
  // 2 cores, the sweep's 2 threads: other work of more than a whole core
  CHECK_FALSE(noise::busy_machine_warning(0.9, 2, 2));
  CHECK(noise::busy_machine_warning(1.1, 2, 2));
  const auto busy = noise::busy_machine_warning(2.3, 2, 2);
  REQUIRE(busy);
  CHECK(busy->find("load average 2.30 on 2 cores") != std::string::npos);
  CHECK(busy->find('\n') == std::string::npos);
  // one thread leaves a core free
  CHECK_FALSE(noise::busy_machine_warning(1.9, 2, 1));
  CHECK(noise::busy_machine_warning(2.1, 2, 1));
  CHECK(noise::parse_loadavg("0.52 0.58 0.59 3/456 12345\n") == Approx(0.52));
  CHECK_FALSE(noise::parse_loadavg("x 1 2"));
  CHECK(noise::load_average().value_or(-1) >= 0);
}

namespace {

// The tool next to this test binary (skipped without it), its stdout.
std::optional<std::string> tool_stdout(const std::string& env_and_args) {
  std::error_code ec;
  const fs::path tool = fs::read_symlink("/proc/self/exe", ec).parent_path() / "attnbench";
  if (ec || !fs::exists(tool)) return std::nullopt;
  const fs::path out =
      fs::temp_directory_path() / ("attnbench_noise_out." + std::to_string(getpid()));
  const std::string cmd = "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT " + env_and_args + " " +
                          tool.string() + " sweep --preset smoke --dry-run --json > " +
                          out.string();
  if (std::system(cmd.c_str()) != 0) return std::string();
  std::ifstream in(out);
  std::stringstream ss;
  ss << in.rdbuf();
  fs::remove(out);
  return ss.str();
}

std::string recorded_policy(const std::string& env) {
  const auto text = tool_stdout(env);
  if (!text) return "no tool";
  return ojson::parse(*text).at("environment").at("omp_wait_policy").get<std::string>();
}

}  // namespace

TEST_CASE("noise: the tool's OpenMP threads spin briefly unless the user chose", "[noise][cli]") {
  if (!tool_stdout("")) {
    WARN("attnbench is not built next to the tests: skipped");
    return;
  }
  CHECK(recorded_policy("") == std::string("default, GOMP_SPINCOUNT=") + noise::kSpinCount);
  CHECK(recorded_policy("OMP_WAIT_POLICY=ACTIVE") == "active");
  CHECK(recorded_policy("OMP_WAIT_POLICY=passive") == "passive");
  CHECK(recorded_policy("GOMP_SPINCOUNT=1000") == "default, GOMP_SPINCOUNT=1000");
}

TEST_CASE("noise: the recorded OpenMP wait policy reads the environment", "[noise]") {
  const char* had = std::getenv("OMP_WAIT_POLICY");
  const std::string before = had ? had : "";
  setenv("OMP_WAIT_POLICY", " Passive ", 1);
  const std::string passive = noise::omp_wait_policy();
  unsetenv("OMP_WAIT_POLICY");
  const std::string unset = noise::omp_wait_policy();
  if (had) setenv("OMP_WAIT_POLICY", before.c_str(), 1);
  CHECK(passive.rfind("passive", 0) == 0);
  CHECK(unset.rfind("default", 0) == 0);
}
