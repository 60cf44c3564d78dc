// Noise and contention of a point's samples (docs/measurement.md, "Noise and contention"):
// the spread of the samples, the involuntary context switches and the load average around
// them, the decision whether a row is noisy, the re-measurement of noisy points, and the
// OpenMP wait policy the process runs with. Every threshold is a constant here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "results.hpp"

namespace attnbench::noise {

// ---- thresholds ------------------------------------------------------------------------------
// The spread decides only from this many samples on (a reduced plan's 3 say little).
constexpr int kMinSpreadSamples = 5;
// Sample standard deviation over the mean, and interquartile range over the median. On the
// 2-core development machine, idle, one attempt of the smoke preset's microsecond points is
// over these in about 3 rows of 10 (over 0.10 and 0.10: 6 of 10), and the reference runs'
// millisecond points in 1 to 10 of 100; the rsd, which one outlier among many samples lifts,
// gets the wider limit.
constexpr double kMaxRsd = 0.25;
constexpr double kMaxIqrOverMedian = 0.15;
// The 1-minute load average counts this process's runnable threads too: contended when it
// exceeds max(online cores, the sweep's threads) by more than this margin, that is when the
// other processes want more than the cores the sweep's threads leave free.
constexpr double kLoadMargin = 0.5;
// At the start the load average is the last minute's, of work that may be ending, and holds
// none of the sweep's threads yet: the warning needs a whole core's worth more than the limit.
constexpr double kStartLoadMargin = 1.0;
// Involuntary context switches of the whole process (every thread) per second of samples; a
// switch costs the point about a scheduler time slice, so 100 a second is ~10 % lost. Fewer
// than kMinSwitches are never judged (a short point sees one or two by chance).
constexpr double kMaxSwitchesPerSecond = 100;
constexpr int64_t kMinSwitches = 5;
// Re-measurements of a noisy point: the default, and the most --retries accepts.
constexpr int kDefaultRetries = 2;
constexpr int kMaxRetries = 10;

// ---- measuring -------------------------------------------------------------------------------
struct Spread {
  double rsd = 0;              // sample standard deviation (n - 1) / mean; 0 below 2 samples
  double iqr_over_median = 0;  // (p75 - p25) / median (stats.hpp quantiles); 0 below 2 samples
};
Spread spread_of(const std::vector<double>& samples);
// The same, sorting in `scratch` (its capacity kept: nothing is allocated when it suffices).
Spread spread_of(const std::vector<double>& samples, std::vector<double>& scratch);

// The relative standard deviation of samples as they arrive (Welford's update), for the
// --max-noise stop of the timing loop.
class RunningRsd {
 public:
  void add(double x);
  int64_t count() const { return n_; }
  double rsd() const;  // 0 below 2 samples

 private:
  int64_t n_ = 0;
  double mean_ = 0, m2_ = 0;
};
// Whether the timing loop may stop for noise: no --max-noise (0), or at least 2 samples whose
// rsd is at most max_noise.
bool quiet_enough(const RunningRsd& r, double max_noise);

// Involuntary context switches of the process so far (getrusage RUSAGE_SELF: every thread,
// the OpenMP workers included).
int64_t involuntary_switches();
// The 1-minute load average of /proc/loadavg (read without touching the heap, as it is read
// while a point's memory is measured); nullopt when it cannot be read.
std::optional<double> load_average();
// The first field of a /proc/loadavg line; nullopt when it is not a number.
std::optional<double> parse_loadavg(const char* line);

// The counters at one moment.
struct Snapshot {
  int64_t switches = 0;
  double load = 0;
};
Snapshot snapshot();

// ---- judging ---------------------------------------------------------------------------------
// What the contention criteria compare with: the machine and the sweep's threads. A cuda row's
// samples are device time, which host contention hardly touches: there only the spread counts.
struct Context {
  int cores = 1;                 // online logical CPUs
  int threads = 1;               // the sweep's OpenMP threads
  bool judge_contention = true;  // the switches and load criteria apply (cpu rows)
};
Context context_for(Backend b, int threads);
double load_limit(const Context& c);

struct Verdict {
  bool noisy = false;
  double score = 0;  // sum of each criterion's figure over its limit: lower is quieter
};
// The decision on samples whose figures are `n` (the samples' sum is their timed time). It
// allocates nothing: it runs between the attempts of a point.
Verdict judge(const NoiseFigures& n, const std::vector<double>& samples, const Context& c);
// Whether `a` is quieter than `b`: a quiet verdict first, then the lower score.
bool quieter(const Verdict& a, const Verdict& b);
// Each criterion over its limit, in words ("rsd 23% over 5 samples", "load 3.1 on 2 cores").
std::vector<std::string> reasons(const NoiseFigures& n, const std::vector<double>& samples,
                                 const Context& c);

// ---- re-measuring ----------------------------------------------------------------------------
// One measurement of a point's samples, with its figures.
struct Attempt {
  std::vector<double> samples;
  std::vector<double> sorted;  // scratch of the quartiles
  NoiseFigures figures;
};
// The attempts of one point, their buffers reserved up front, before the point's memory is
// measured: nothing is allocated while attempts are taken and compared.
struct Attempts {
  Attempts(int max_reps, bool with_retries);
  Attempt best;   // the quietest attempt (the earlier one on a tie); figures.retries set
  Attempt spare;  // the next attempt
  Verdict verdict;
};
// `a`'s figures from its samples and the counters before and after them.
void fill_figures(Attempt& a, const Snapshot& before, const Snapshot& after);

// measure(Attempt&) fills an attempt (samples and figures); may_retry() says whether another
// fits. Measures once, then again while the quietest attempt so far is noisy, at most
// `retries` more times.
template <class Measure, class MayRetry>
void measure_with_retries(Attempts& at, Measure&& measure, int retries, const Context& c,
                          MayRetry&& may_retry) {
  measure(at.best);
  at.verdict = judge(at.best.figures, at.best.samples, c);
  int done = 0;
  while (at.verdict.noisy && done < retries && may_retry()) {
    measure(at.spare);
    ++done;
    const Verdict v = judge(at.spare.figures, at.spare.samples, c);
    if (quieter(v, at.verdict)) {
      std::swap(at.best, at.spare);
      at.verdict = v;
    }
  }
  at.best.figures.retries = done;
}

// The figures, the flag and, when still noisy, the warning of a measured row.
void record(Row& row, const Attempts& at, const Context& c);
// "noisy: rsd 23% over 5 samples, load 3.1 on 2 cores; re-measured 2 times, the quietest kept".
std::string warning_text(const std::vector<std::string>& reasons, int retries);

// --retries and --max-noise, checked: throws InvalidProblem with one line.
void check_retries(int retries);
void check_max_noise(double max_noise);

// ---- the sweep's start and the OpenMP wait policy --------------------------------------------
// One line when the load average at the start plus the sweep's threads exceeds
// max(cores, threads) + kStartLoadMargin; nullopt on a quiet machine.
std::optional<std::string> busy_machine_warning(double load, int cores, int threads);
// That line on stderr ("attnbench: warning: ..."), for the load average now.
void warn_if_busy(int threads);

// How long an idle OpenMP thread spins before it sleeps. libgomp's default, 300000 spins
// (about 3 ms), lets a waiting thread hold the core the thread it waits for needs: under
// contention the smoke preset's microsecond points took milliseconds. Sleeping at once
// (OMP_WAIT_POLICY=passive) made them 6 times slower on the idle 2-core machine (a futex wake
// per parallel region); 3000 spins (about 30 us) kept the idle times and, under contention,
// came within 10 % of passive in total (docs/measurement.md section 3.6).
constexpr const char* kSpinCount = "3000";
// libgomp reads OMP_WAIT_POLICY and GOMP_SPINCOUNT once, when it is loaded before main, so a
// process that sets them must start again: when neither is set, set GOMP_SPINCOUNT=kSpinCount
// and re-execute /proc/self/exe with the same arguments (returns only when that fails, with the
// environment as it was).
void reexec_with_short_spin(char** argv);
// The policy this process runs with, as the environment records it: "passive", "active" or
// "default" (OMP_WAIT_POLICY unset), with ", GOMP_SPINCOUNT=<n>" when that is set.
std::string omp_wait_policy();

}  // namespace attnbench::noise
