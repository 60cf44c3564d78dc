// Whether and how a point runs: its timing plan, the memory limit, the time limit (the
// estimate from smaller finished points and the a-priori lower bound), and the reason a point
// is skipped (docs/measurement.md sections 3.2 and 4.5).
#pragma once

#include <atomic>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "noise.hpp"
#include "sweep_spec.hpp"

namespace attnbench {

struct RunOptions {
  std::map<Backend, Timing> timing = {{Backend::cpu, default_timing(Backend::cpu)},
                                      {Backend::cuda, default_timing(Backend::cuda)}};
  double max_point_seconds = 60;     // 0 = no limit
  size_t host_memory_limit = 0;      // bytes; 0 = 80 % of physical memory
  size_t device_memory_limit = 0;    // bytes; 0 = 80 % of the device's memory
  int threads = 0;                   // cpu threads; 0 = every OpenMP thread
  bool cuda_warm = false;            // cuda: no L2 flush before the samples (--warm)
  // cpu: this machine's sgemm rate (GFLOP/s) behind the a-priori lower bound of a point's time
  // (flops / (2 x rate) per run); 0 = run_sweep measures it (when max_point_seconds > 0)
  double cpu_sgemm_gflops = 0;
  std::string repro_extra;           // appended to each row's repro after the timing flags
  int retries = noise::kDefaultRetries;  // re-measurements of a noisy point (noise.hpp)
  double max_noise = 0;              // stop sampling once the samples' rsd is at most this; 0 = off
  const std::atomic<bool>* interrupted = nullptr;  // set from a signal handler: stop soon
};

// The timing plan of a point on `b`: the options' timing for that backend, else its default.
Timing timing_of(const RunOptions& o, Backend b);
// The flags that reproduce that plan and the options (threads, timing, time limit, extra).
std::string repro_flags(const Timing& t, const RunOptions& o);

// Host memory the harness itself needs for a point besides the backend's buffers: the
// host inputs, the copy of the output and the accuracy checks' float64 / equivalent inputs.
size_t harness_host_bytes(const Kernel& k, const Problem& p);
// Why a point must be skipped for memory ("needs 17.2 GB, limit 19.2 GB"), or nullopt.
std::optional<std::string> memory_skip_reason(const Kernel& k, const Problem& p, Backend b,
                                              const RunOptions& o);
// The finished ok rows of a sweep, indexed by kernel, backend and every axis but seq_len, so
// a point finds its smaller neighbours without scanning every row.
class DoneIndex {
 public:
  explicit DoneIndex(const std::vector<Row>& done);
  // The rows of the same kernel, backend and axes as `pt` at a smaller seq_len, ascending.
  std::vector<const Row*> smaller(const Point& pt) const;

 private:
  std::map<std::string, std::vector<const Row*>> by_shape_;
};

// A point's time extrapolated from the largest smaller done point of the same kernel, backend
// and axes (vanilla: run time ~ N^2; others: log-log slope of the two largest such points,
// at least 1, at most 3), plus the untimed part (setup linear in N, the accuracy checks O(N)
// per checked row). `basis` says where it comes from.
struct PointEstimate {
  double run_ms = 0;     // one run
  double untimed_s = 0;  // inputs, setup and checks
  std::string basis;
  double seconds(const Timing& t) const;  // the whole point under timing plan t
};
std::optional<PointEstimate> estimate_point(const Point& pt, const DoneIndex& done);
// estimate_point(...).seconds(t), or nullopt without a smaller done point.
std::optional<double> extrapolate_point_seconds(const Point& pt, const std::vector<Row>& done,
                                                const Timing& t, std::string* basis = nullptr);
// The least time a cpu point can take at 2 x that rate, for the skip before the first run:
// (warmup + min_reps) x flops / (2 x rate). nullopt without a rate or a flop count.
std::optional<double> lower_bound_point_seconds(const Kernel& k, const Problem& p, const Timing& t,
                                                double sgemm_gflops);

// A point whose single run fits --max-point-seconds but whose plan does not is timed with
// this many samples (warm-up: one when it still fits, else none) rather than skipped.
constexpr int kReducedSamples = 3;
Timing reduced_timing(const Timing& plan, double run_s, double max_point_seconds);

// How a point runs: skipped with the reason (memory limit; one run over the time limit), or
// timed by `timing`, which is the sweep's plan or, with `reduced` saying why, fewer samples.
struct PointPlan {
  std::optional<std::string> skip;
  Timing timing;
  std::string reduced;
};
PointPlan plan_point(const Point& pt, const RunOptions& o, const DoneIndex& done);
// Seconds the point will take under its plan (0 when it will be skipped; `fallback_s` when
// nothing smaller has run), for the sweep's ETA.
double expected_point_seconds(const Point& pt, const RunOptions& o, const DoneIndex& done,
                              double fallback_s);

// "20G" / "20GiB" (binary), "20GB" / "1.5e9" (decimal), "123456" bytes. Throws InvalidProblem.
size_t parse_bytes(const std::string& text);

}  // namespace attnbench
