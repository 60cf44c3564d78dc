#include "point_policy.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <exception>

#include <fmt/format.h>

#include "accuracy.hpp"
#include "errors.hpp"
#include "text.hpp"

namespace attnbench {

Timing timing_of(const RunOptions& o, Backend b) {
  const auto it = o.timing.find(b);
  return it != o.timing.end() ? it->second : default_timing(b);
}

std::string repro_flags(const Timing& t, const RunOptions& o) {
  std::string s = fmt::format("--threads {} --warmup {} --min-reps {} --max-reps {} --min-time {}",
                              o.threads > 0 ? o.threads : omp_get_max_threads(), t.warmup,
                              t.min_reps, t.max_reps, number_text(t.min_time_s));
  if (o.max_point_seconds != 60)
    s += fmt::format(" --max-point-seconds {}", number_text(o.max_point_seconds));
  if (!o.repro_extra.empty()) s += " " + o.repro_extra;
  return s;
}

// ---- memory ----------------------------------------------------------------------------------

size_t harness_host_bytes(const Kernel& k, const Problem& p) {
  const KernelInfo& info = k.info();
  size_t bytes = input_sizes(p, info.inputs).bytes() + output_elems(p) * sizeof(float);
  // the vanilla equivalent of a codebook method (docs/methods.md section 5): q, k, v float32
  if (!info.is_vanilla && (info.inputs & kInputCodebooks)) bytes += 3 * output_elems(p) * sizeof(float);
  // float64 references and the per-thread score rows of the reference
  const size_t rows = std::max(correctness_rows(p).size(), approximation_rows(p).size());
  bytes += 2 * rows * size_t(p.head_dim) * sizeof(double) +
           size_t(omp_get_max_threads()) * size_t(p.seq_len) * sizeof(double) * 2;
  return bytes;
}

std::optional<std::string> memory_skip_reason(const Kernel& k, const Problem& p, Backend b,
                                              const RunOptions& o) {
  const WorkspaceSize ws = k.workspace(p);
  const double backend_bytes = double(input_sizes(p, k.info().inputs).bytes()) +
                               double(output_bytes(p)) + double(ws.total());
  const double host_bytes = double(harness_host_bytes(k, p));
  const double host_limit = o.host_memory_limit
                                ? double(o.host_memory_limit)
                                : 0.8 * double(backend_memory_bytes(Backend::cpu));
  if (b == Backend::cpu) {
    const double need = backend_bytes + host_bytes;
    if (need > host_limit)
      return fmt::format("needs {}, limit {}", format_bytes(need), format_bytes(host_limit));
    return std::nullopt;
  }
  const double dev_limit = o.device_memory_limit ? double(o.device_memory_limit)
                                                 : 0.8 * double(backend_memory_bytes(b));
  if (backend_bytes > dev_limit)
    return fmt::format("needs {} of device memory, limit {}", format_bytes(backend_bytes),
                       format_bytes(dev_limit));
  if (host_bytes > host_limit)
    return fmt::format("needs {} of host memory, limit {}", format_bytes(host_bytes),
                       format_bytes(host_limit));
  return std::nullopt;
}

// ---- time ------------------------------------------------------------------------------------

namespace {

// Where a point's finished smaller neighbours are found: the key of a row without its seq_len.
std::string key_without_seq_len(const std::string& kernel, Backend b, Problem p) {
  p.seq_len = 0;
  return point_key(kernel, b, p);
}

}  // namespace

DoneIndex::DoneIndex(const std::vector<Row>& done) {
  for (const Row& r : done)
    if (r.status == "ok" && r.time && r.time->median > 0)
      by_shape_[key_without_seq_len(r.kernel, r.backend, r.problem)].push_back(&r);
  for (auto& [key, rows] : by_shape_)
    std::sort(rows.begin(), rows.end(),
              [](const Row* a, const Row* b) { return a->problem.seq_len < b->problem.seq_len; });
}

std::vector<const Row*> DoneIndex::smaller(const Point& pt) const {
  const auto it = by_shape_.find(key_without_seq_len(pt.kernel->info().name, pt.backend, pt.problem));
  if (it == by_shape_.end()) return {};
  std::vector<const Row*> same;
  for (const Row* r : it->second)
    if (r->problem.seq_len < pt.problem.seq_len) same.push_back(r);
  return same;
}

namespace {

// How a run's time grows with N: N^2 for vanilla; else the log-log slope of the two largest
// done points, clamped to [1, 3] (1 with a single point).
double growth_exponent(const Point& pt, const std::vector<const Row*>& same) {
  if (pt.kernel->info().is_vanilla) return 2;
  if (same.size() < 2) return 1;
  const Row& last = *same.back();
  const Row& prev = *same[same.size() - 2];
  const double n1 = double(last.problem.seq_len), n0 = double(prev.problem.seq_len);
  double slope = std::log(last.time->median / prev.time->median) / std::log(n1 / n0);
  if (!std::isfinite(slope)) slope = 1;
  return std::clamp(slope, 1.0, 3.0);
}

// The untimed part of the point at `ratio` times the last done point's N: inputs and setup
// grow linearly with N; the accuracy checks cost O(N) per checked row, and the number of
// checked rows changes with N (correctness_rows).
double untimed_seconds(const Row& last, const Problem& now, double ratio) {
  double timed_s = 0;
  for (double x : last.time->samples) timed_s += x / 1000.0;
  const double setup_s = std::max(0.0, last.point_seconds - timed_s - last.check_seconds -
                                           last.warmup_runs * last.time->median / 1000.0);
  const double rows_then = double(last.correctness_rows + last.approx_rows);
  const double rows_now = double(correctness_rows(now).size() + approximation_rows(now).size());
  const double check_s = rows_then > 0 ? last.check_seconds * ratio * rows_now / rows_then : 0.0;
  return setup_s * ratio + check_s;
}

// Runs (warm-up included) a timing plan makes of runs of `run_ms`.
double planned_runs(const Timing& t, double run_ms) {
  double reps = std::max<double>(t.min_reps, std::ceil(t.min_time_s * 1000.0 / run_ms));
  return std::min<double>(reps, t.max_reps) + t.warmup;
}

}  // namespace

std::optional<PointEstimate> estimate_point(const Point& pt, const DoneIndex& done) {
  const std::vector<const Row*> same = done.smaller(pt);
  if (same.empty()) return std::nullopt;
  const Row& last = *same.back();
  const double slope = growth_exponent(pt, same);
  const double ratio = double(pt.problem.seq_len) / double(last.problem.seq_len);
  PointEstimate e;
  e.run_ms = last.time->median * std::pow(ratio, slope);
  e.untimed_s = untimed_seconds(last, pt.problem, ratio);
  e.basis = fmt::format("from N={} at {:.3g} ms/run, time ~ N^{:.2f}", last.problem.seq_len,
                        last.time->median, slope);
  return e;
}

double PointEstimate::seconds(const Timing& t) const {
  return run_ms * planned_runs(t, run_ms) / 1000.0 + untimed_s;
}

std::optional<double> extrapolate_point_seconds(const Point& pt, const std::vector<Row>& done,
                                                const Timing& t, std::string* basis) {
  const auto e = estimate_point(pt, DoneIndex(done));
  if (!e) return std::nullopt;
  if (basis) *basis = e->basis;
  return e->seconds(t);
}

std::optional<double> lower_bound_point_seconds(const Kernel& k, const Problem& p, const Timing& t,
                                                double sgemm_gflops) {
  const double flops = k.flops(p);
  if (!(sgemm_gflops > 0) || !(flops > 0)) return std::nullopt;
  return double(t.warmup + t.min_reps) * flops / (2.0 * sgemm_gflops * 1e9);
}

Timing reduced_timing(const Timing& plan, double run_s, double max_point_seconds) {
  Timing t;
  t.min_reps = t.max_reps = std::min(kReducedSamples, std::max(1, plan.max_reps));
  t.min_time_s = 0;
  // one warm-up run when it still fits the limit with the samples, else none
  t.warmup = plan.warmup > 0 && run_s * (t.min_reps + 1) <= max_point_seconds ? 1 : 0;
  return t;
}

namespace {

// A point's single run and full plan, in seconds, by the best estimate there is: the
// extrapolation from smaller done points, else (cpu) the lower bound from the sgemm rate.
struct TimeEstimate {
  double run_s = 0, plan_s = 0;
  std::string basis;
};

std::optional<TimeEstimate> time_estimate(const Point& pt, const RunOptions& o, const DoneIndex& done,
                                          const Timing& t) {
  if (auto e = estimate_point(pt, done))
    return TimeEstimate{e->run_ms / 1000.0 + e->untimed_s, e->seconds(t), e->basis};
  if (pt.backend != Backend::cpu) return std::nullopt;
  const auto one = lower_bound_point_seconds(*pt.kernel, pt.problem, Timing{0, 1, 0, 1}, o.cpu_sgemm_gflops);
  if (!one) return std::nullopt;
  return TimeEstimate{*one, *one * (t.warmup + t.min_reps),
                      fmt::format("at least {:.3g} GFLOP at no more than twice this machine's sgemm "
                                  "rate of {:.3g} GFLOP/s", pt.kernel->flops(pt.problem) / 1e9,
                                  o.cpu_sgemm_gflops)};
}

// The plan of a point under the time limit: skipped when one run cannot fit, reduced when the
// sweep's plan cannot, the sweep's plan otherwise.
PointPlan time_plan(const Point& pt, const RunOptions& o, const DoneIndex& done) {
  const Timing t = timing_of(o, pt.backend);
  PointPlan plan{std::nullopt, t, ""};
  const auto est = time_estimate(pt, o, done, t);
  if (!est || est->plan_s <= o.max_point_seconds) return plan;
  if (est->run_s > o.max_point_seconds) {
    plan.skip = fmt::format("one run estimated at {} ({}) exceeds --max-point-seconds {}",
                            format_seconds(est->run_s), est->basis, number_text(o.max_point_seconds));
    return plan;
  }
  plan.timing = reduced_timing(t, est->run_s, o.max_point_seconds);
  plan.reduced = fmt::format(
      "{} samples after {} warm-up instead of the plan ({} warm-up, {} to {} samples, at least {} s): "
      "one run is about {} ({}), the plan about {}, over --max-point-seconds {}",
      plan.timing.min_reps, plan.timing.warmup, t.warmup, t.min_reps, t.max_reps,
      number_text(t.min_time_s), format_seconds(est->run_s), est->basis,
      format_seconds(est->plan_s), number_text(o.max_point_seconds));
  return plan;
}

}  // namespace

PointPlan plan_point(const Point& pt, const RunOptions& o, const DoneIndex& done) {
  if (auto why = memory_skip_reason(*pt.kernel, pt.problem, pt.backend, o))
    return PointPlan{why, timing_of(o, pt.backend), ""};
  if (o.max_point_seconds > 0) return time_plan(pt, o, done);
  return PointPlan{std::nullopt, timing_of(o, pt.backend), ""};
}

double expected_point_seconds(const Point& pt, const RunOptions& o, const DoneIndex& done,
                              double fallback_s) {
  const PointPlan plan = plan_point(pt, o, done);
  if (plan.skip) return 0;
  const auto e = estimate_point(pt, done);
  return e ? e->seconds(plan.timing) : fallback_s;
}

// ---- --memory-limit --------------------------------------------------------------------------

size_t parse_bytes(const std::string& text) { return parse_size(text, "--memory-limit"); }

}  // namespace attnbench
