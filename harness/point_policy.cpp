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
  // the vanilla equivalent of a codebook method (kernels.md section 5): q, k, v float32
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

// The done ok rows of the same kernel, backend and axes as `pt` at a smaller seq_len, by
// seq_len ascending.
std::vector<const Row*> smaller_done_points(const Point& pt, const std::vector<Row>& done) {
  Problem probe = pt.problem;
  std::vector<const Row*> same;
  for (const Row& r : done) {
    if (r.status != "ok" || !r.time || !(r.time->median > 0)) continue;
    if (r.kernel != pt.kernel->info().name || r.backend != pt.backend) continue;
    if (r.problem.seq_len >= pt.problem.seq_len) continue;
    probe.seq_len = r.problem.seq_len;
    if (point_key(r.kernel, r.backend, probe) != row_key(r)) continue;
    same.push_back(&r);
  }
  std::sort(same.begin(), same.end(),
            [](const Row* a, const Row* b) { return a->problem.seq_len < b->problem.seq_len; });
  return same;
}

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

}  // namespace

std::optional<double> extrapolate_point_seconds(const Point& pt, const std::vector<Row>& done,
                                                const Timing& t, std::string* basis) {
  const std::vector<const Row*> same = smaller_done_points(pt, done);
  if (same.empty()) return std::nullopt;
  const Row& last = *same.back();
  const double slope = growth_exponent(pt, same);
  const double ratio = double(pt.problem.seq_len) / double(last.problem.seq_len);
  const double run_ms = last.time->median * std::pow(ratio, slope);
  double reps = std::max<double>(t.min_reps, std::ceil(t.min_time_s * 1000.0 / run_ms));
  reps = std::min<double>(reps, t.max_reps);
  const double est = run_ms * (reps + t.warmup) / 1000.0 + untimed_seconds(last, pt.problem, ratio);
  if (basis)
    *basis = fmt::format("from N={} at {:.3g} ms/run, time ~ N^{:.2f}", last.problem.seq_len,
                         last.time->median, slope);
  return est;
}

std::optional<double> lower_bound_point_seconds(const Kernel& k, const Problem& p, const Timing& t,
                                                double sgemm_gflops) {
  const double flops = k.flops(p);
  if (!(sgemm_gflops > 0) || !(flops > 0)) return std::nullopt;
  return double(t.warmup + t.min_reps) * flops / (2.0 * sgemm_gflops * 1e9);
}

namespace {

std::optional<std::string> time_skip_reason(const Point& pt, const RunOptions& o,
                                            const std::vector<Row>& done) {
  const Timing timing = timing_of(o, pt.backend);
  std::string basis;
  if (auto est = extrapolate_point_seconds(pt, done, timing, &basis); est && *est > o.max_point_seconds)
    return fmt::format("extrapolated {} for this point ({}) exceeds --max-point-seconds {}",
                       format_seconds(*est), basis, number_text(o.max_point_seconds));
  if (pt.backend != Backend::cpu) return std::nullopt;
  const auto low = lower_bound_point_seconds(*pt.kernel, pt.problem, timing, o.cpu_sgemm_gflops);
  if (!low || *low <= o.max_point_seconds) return std::nullopt;
  return fmt::format("needs at least {} ({} runs of {:.3g} GFLOP at no more than twice this "
                     "machine's sgemm rate of {:.0f} GFLOP/s), over --max-point-seconds {}",
                     format_seconds(*low), timing.warmup + timing.min_reps,
                     pt.kernel->flops(pt.problem) / 1e9, o.cpu_sgemm_gflops,
                     number_text(o.max_point_seconds));
}

}  // namespace

std::optional<std::string> skip_reason(const Point& pt, const RunOptions& o,
                                       const std::vector<Row>& done) {
  if (auto why = memory_skip_reason(*pt.kernel, pt.problem, pt.backend, o)) return why;
  if (o.max_point_seconds > 0) return time_skip_reason(pt, o, done);
  return std::nullopt;
}

// ---- --memory-limit --------------------------------------------------------------------------

size_t parse_bytes(const std::string& text) {
  const std::string where = "--memory-limit " + text;
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    fail_at(where, "expected a size such as 20G, 512M or 1500000000");
  }
  std::string unit = text.substr(used);
  unit.erase(0, unit.find_first_not_of(' '));
  double mult = 0;
  const std::pair<const char*, double> units[] = {
      {"", 1},        {"B", 1},          {"K", 1024.0},      {"KiB", 1024.0},
      {"kB", 1e3},    {"KB", 1e3},       {"M", 1048576.0},   {"MiB", 1048576.0},
      {"MB", 1e6},    {"G", 1073741824.0}, {"GiB", 1073741824.0}, {"GB", 1e9},
      {"T", 1099511627776.0}, {"TiB", 1099511627776.0}, {"TB", 1e12}};
  for (const auto& [u, m] : units)
    if (unit == u) mult = m;
  if (mult == 0)
    fail_at(where, fmt::format("unknown unit '{}' (use K, M, G, T, KiB.. or kB, MB, GB, TB)", unit));
  if (!std::isfinite(v) || v <= 0) fail_at(where, "the limit must be positive");
  return size_t(v * mult);
}

}  // namespace attnbench
