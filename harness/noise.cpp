#include "noise.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <numeric>

#include <fmt/format.h>

#include "errors.hpp"
#include "stats.hpp"
#include "sysinfo.hpp"
#include "text.hpp"

namespace attnbench::noise {

// ---- measuring -------------------------------------------------------------------------------

Spread spread_of(const std::vector<double>& samples) {
  std::vector<double> scratch;
  return spread_of(samples, scratch);
}

Spread spread_of(const std::vector<double>& samples, std::vector<double>& scratch) {
  Spread s;
  const size_t n = samples.size();
  if (n < 2) return s;
  const double mean = std::accumulate(samples.begin(), samples.end(), 0.0) / double(n);
  double ss = 0;
  for (double x : samples) ss += (x - mean) * (x - mean);
  s.rsd = mean > 0 ? std::sqrt(ss / double(n - 1)) / mean : 0.0;
  scratch.assign(samples.begin(), samples.end());
  std::sort(scratch.begin(), scratch.end());
  const double median = stats::quantile_sorted(scratch, 0.5);
  const double iqr = stats::quantile_sorted(scratch, 0.75) - stats::quantile_sorted(scratch, 0.25);
  s.iqr_over_median = median > 0 ? iqr / median : 0.0;
  return s;
}

void RunningRsd::add(double x) {
  ++n_;
  const double d = x - mean_;
  mean_ += d / double(n_);
  m2_ += d * (x - mean_);
}

double RunningRsd::rsd() const {
  if (n_ < 2 || !(mean_ > 0)) return 0;
  return std::sqrt(std::max(0.0, m2_) / double(n_ - 1)) / mean_;
}

bool quiet_enough(const RunningRsd& r, double max_noise) {
  return !(max_noise > 0) || (r.count() >= 2 && r.rsd() <= max_noise);
}

int64_t involuntary_switches() {
  rusage u{};
  if (getrusage(RUSAGE_SELF, &u) != 0) return 0;
  return int64_t(u.ru_nivcsw);
}

std::optional<double> parse_loadavg(const char* line) {
  char* end = nullptr;
  const double v = std::strtod(line, &end);
  if (end == line || !std::isfinite(v) || v < 0) return std::nullopt;
  return v;
}

std::optional<double> load_average() {
  const int fd = ::open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buf[128] = {};
  const ssize_t got = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (got <= 0) return std::nullopt;
  return parse_loadavg(buf);
}

Snapshot snapshot() { return {involuntary_switches(), load_average().value_or(0.0)}; }

// ---- judging ---------------------------------------------------------------------------------

Context context_for(Backend b, int threads) {
  return {sysinfo::logical_cpus(), std::max(1, threads), b == Backend::cpu};
}

double load_limit(const Context& c) { return double(std::max(c.cores, c.threads)) + kLoadMargin; }

namespace {

enum class Criterion { rsd, iqr, switches, load };

// Calls on(criterion, figure, limit) for each criterion that applies to these samples.
template <class On>
void each_criterion(const NoiseFigures& n, const std::vector<double>& samples, const Context& c,
                    On&& on) {
  if (samples.size() >= size_t(kMinSpreadSamples)) {
    on(Criterion::rsd, n.rsd, kMaxRsd);
    on(Criterion::iqr, n.iqr_over_median, kMaxIqrOverMedian);
  }
  if (!c.judge_contention) return;
  const double seconds = std::accumulate(samples.begin(), samples.end(), 0.0) / 1e3;
  if (n.involuntary_switches >= kMinSwitches && seconds > 0)
    on(Criterion::switches, double(n.involuntary_switches) / seconds, kMaxSwitchesPerSecond);
  on(Criterion::load, std::max(n.load_before, n.load_after), load_limit(c));
}

std::string reason_text(Criterion k, double figure, const NoiseFigures& n, size_t samples,
                        const Context& c) {
  switch (k) {
    case Criterion::rsd:
      return fmt::format("rsd {:.0f}% over {} samples", 100 * figure, samples);
    case Criterion::iqr:
      return fmt::format("iqr/median {:.0f}%", 100 * figure);
    case Criterion::switches:
      return fmt::format("{} involuntary context switches ({:.0f}/s of samples)",
                         n.involuntary_switches, figure);
    case Criterion::load:
      break;
  }
  return fmt::format("load {:.1f} on {} cores with {} threads", figure, c.cores, c.threads);
}

}  // namespace

Verdict judge(const NoiseFigures& n, const std::vector<double>& samples, const Context& c) {
  Verdict v;
  each_criterion(n, samples, c, [&v](Criterion, double figure, double limit) {
    v.score += figure / limit;
    if (figure > limit) v.noisy = true;
  });
  return v;
}

bool quieter(const Verdict& a, const Verdict& b) {
  if (a.noisy != b.noisy) return !a.noisy;
  return a.score < b.score;
}

std::vector<std::string> reasons(const NoiseFigures& n, const std::vector<double>& samples,
                                 const Context& c) {
  std::vector<std::string> out;
  each_criterion(n, samples, c, [&](Criterion k, double figure, double limit) {
    if (figure > limit) out.push_back(reason_text(k, figure, n, samples.size(), c));
  });
  return out;
}

// ---- re-measuring ----------------------------------------------------------------------------

Attempts::Attempts(int max_reps, bool with_retries) {
  const size_t n = size_t(std::max(1, max_reps));
  best.samples.reserve(n);
  best.sorted.reserve(n);
  if (!with_retries) return;
  spare.samples.reserve(n);
  spare.sorted.reserve(n);
}

void fill_figures(Attempt& a, const Snapshot& before, const Snapshot& after) {
  const Spread s = spread_of(a.samples, a.sorted);
  a.figures.rsd = s.rsd;
  a.figures.iqr_over_median = s.iqr_over_median;
  a.figures.involuntary_switches = std::max<int64_t>(0, after.switches - before.switches);
  a.figures.load_before = before.load;
  a.figures.load_after = after.load;
}

void record(Row& row, const Attempts& at, const Context& c) {
  row.noise = at.best.figures;
  row.noisy = at.verdict.noisy;
  if (row.noisy)
    row.warnings.push_back(
        warning_text(reasons(at.best.figures, at.best.samples, c), at.best.figures.retries));
}

std::string warning_text(const std::vector<std::string>& why, int retries) {
  std::string s = "noisy: " + join(why, ", ");
  if (retries > 0)
    s += fmt::format("; re-measured {} time{}, the quietest kept", retries,
                     retries == 1 ? "" : "s");
  return s;
}

void check_retries(int retries) {
  if (retries < 0 || retries > kMaxRetries)
    throw InvalidProblem(
        fmt::format("--retries must be between 0 and {}, got {}", kMaxRetries, retries));
}

void check_max_noise(double max_noise) {
  if (!(max_noise > 0 && max_noise <= 1))
    throw InvalidProblem(fmt::format(
        "--max-noise is a relative standard deviation in (0, 1] (0.02 = 2 %), got {}", max_noise));
}

// ---- the sweep's start and the OpenMP wait policy --------------------------------------------

std::optional<std::string> busy_machine_warning(double load, int cores, int threads) {
  const Context c{cores, std::max(1, threads), true};
  const double limit = load_limit(c) - kLoadMargin + kStartLoadMargin;
  if (!(load + double(c.threads) > limit)) return std::nullopt;
  return fmt::format("the machine is busy: load average {:.2f} on {} cores before the sweep's {} "
                     "thread{} start; timings may be contended (noisy rows are re-measured and "
                     "flagged)",
                     load, cores, c.threads, c.threads == 1 ? "" : "s");
}

void warn_if_busy(int threads) {
  const auto load = load_average();
  if (!load) return;
  if (const auto w = busy_machine_warning(*load, sysinfo::logical_cpus(), threads))
    fmt::print(stderr, "attnbench: warning: {}\n", *w);
}

void reexec_with_short_spin(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  if (setenv("GOMP_SPINCOUNT", kSpinCount, 1) != 0) return;
  execv("/proc/self/exe", argv);
  // still here: the runtime keeps its default, and the environment must say so
  unsetenv("GOMP_SPINCOUNT");
}

std::string omp_wait_policy() {
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  std::string s = policy ? policy : "";
  s.erase(std::remove_if(s.begin(), s.end(), [](unsigned char ch) { return std::isspace(ch); }),
          s.end());
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char ch) { return std::tolower(ch); });
  if (s.empty()) s = "default";
  if (const char* spin = std::getenv("GOMP_SPINCOUNT"))
    s += fmt::format(", GOMP_SPINCOUNT={}", spin);
  return s;
}

}  // namespace attnbench::noise
