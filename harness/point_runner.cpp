#include "point_runner.hpp"

#include <chrono>
#include <cmath>
#include <exception>
#include <new>
#include <optional>
#include <string>

#include <fmt/format.h>

#include <omp.h>

#include "correctness.hpp"
#include "heap.hpp"
#include "inputs.hpp"
#include "noise.hpp"

namespace attnbench {

namespace {

using Clock = std::chrono::steady_clock;

// A point while it runs: what it is, its options and timing plan, and its clock.
struct PointRun {
  const Point& pt;
  const RunOptions& o;
  Timing timing;
  bool reduced = false;  // timing is the reduced plan: take all its samples whatever the limit
  // what the noise criteria compare with (noise.hpp)
  noise::Context noise_context =
      noise::context_for(pt.backend, o.threads > 0 ? o.threads : omp_get_max_threads());
  Clock::time_point start = Clock::now();

  double elapsed_s() const { return std::chrono::duration<double>(Clock::now() - start).count(); }
  // Whether the point has used more than `fraction` of --max-point-seconds.
  bool past(double fraction) const {
    return o.max_point_seconds > 0 && elapsed_s() > fraction * o.max_point_seconds;
  }
  void stop_if_interrupted() const {
    if (o.interrupted && o.interrupted->load()) throw SweepInterrupted{};
  }
};

// A reduced plan is the point's timing, said in the row and among its warnings.
void apply_plan(Row& row, PointRun& run, const PointPlan& plan) {
  run.timing = plan.timing;
  run.reduced = !plan.reduced.empty();
  row.reduced_timing = plan.reduced;
  if (run.reduced)
    row.warnings.push_back(fmt::format("reduced timing: {} samples (one run is long; see reduced_timing)",
                                       plan.timing.min_reps));
}

Row finish(Row& row, const PointRun& run, const char* status, std::string reason) {
  row.status = status;
  row.reason = std::move(reason);
  row.point_seconds = run.elapsed_s();
  return row;
}

// The workspace query, FLOP count and least bytes of a valid point: recorded before the skip
// decisions, so a skipped row still carries them.
void record_query(Row& row, const Point& pt) {
  const Kernel& k = *pt.kernel;
  const Problem& p = pt.problem;
  row.memory = declared_memory(k, p);
  row.flops = k.flops(p);
  row.min_bytes = k.min_bytes(p);
}

void warm_up(Row& row, BackendRunner& runner, const PointRun& run) {
  for (int w = 0; w < run.timing.warmup; ++w) {
    runner.flush_cache();
    runner.run_once_ms();
    ++row.warmup_runs;
    run.stop_if_interrupted();
    // a run this long needs no more warming up: keep the time for the samples
    if (run.past(0.5)) break;
  }
}

// Samples until max_reps, or min_reps, min_time_s and --max-noise together, or the time limit
// (at least one sample; a reduced plan's samples all, as the plan was chosen knowing the limit).
void take_samples(std::vector<double>& samples, BackendRunner& runner, const PointRun& run) {
  const Timing& t = run.timing;
  double timed_ms = 0;
  noise::RunningRsd spread;
  for (;;) {
    runner.flush_cache();
    const double ms = runner.run_once_ms();
    samples.push_back(ms);
    timed_ms += ms;
    spread.add(ms);
    const auto n = int64_t(samples.size());
    if (n >= t.max_reps) break;
    if (n >= t.min_reps && timed_ms >= t.min_time_s * 1000.0 &&
        noise::quiet_enough(spread, run.o.max_noise))
      break;
    if (run.past(1.0) && (!run.reduced || n >= t.min_reps)) break;
    run.stop_if_interrupted();
  }
}

// One attempt at the point's samples, with the context switches and load around them; its
// wall time in `seconds`.
void sample_attempt(noise::Attempt& a, BackendRunner& runner, const PointRun& run,
                    double& seconds) {
  const auto t0 = Clock::now();
  const noise::Snapshot before = noise::snapshot();
  a.samples.clear();
  take_samples(a.samples, runner, run);
  noise::fill_figures(a, before, noise::snapshot());
  seconds = std::chrono::duration<double>(Clock::now() - t0).count();
}

// The samples, re-measured while noisy (noise.hpp) as often as --retries allows and another
// attempt as long as the last still fits the time limit.
void sample_with_retries(noise::Attempts& at, BackendRunner& runner, const PointRun& run) {
  double last_s = 0;
  const auto fits = [&run, &last_s] {
    return run.o.max_point_seconds <= 0 || run.elapsed_s() + last_s <= run.o.max_point_seconds;
  };
  noise::measure_with_retries(
      at, [&](noise::Attempt& a) { sample_attempt(a, runner, run, last_s); }, run.o.retries,
      run.noise_context, fits);
}

// The measured peak, and how the runner measured the point (timing method, cache, device
// memory, warnings).
void record_measured_peak(Row& row, BackendRunner& runner, Backend b) {
  row.measured_peak_bytes = runner.measured_peak_bytes();
  apply_run_notes(runner.notes(), row);
  row.measured_peak_source = b == Backend::cuda ? "cuda_pool"
                             : heap::interposed() ? "heap"
                                                  : "counting_allocator";
}

// One extra, untimed run with a phase profile, for kernels that report their phases.
void record_phases(Row& row, BackendRunner& runner) {
  double wall_ms = 0;
  const std::vector<PhaseTime> phases = runner.profile_run(&wall_ms);
  double sum_s = 0;
  for (const PhaseTime& ph : phases) sum_s += ph.seconds;
  for (const PhaseTime& ph : phases)
    row.phases.push_back({ph.name, ph.seconds * 1e3, sum_s > 0 ? ph.seconds / sum_s : 0.0,
                          ph.flops, ph.bytes, "", std::nullopt});
  if (!phases.empty()) row.profile_ms = wall_ms;
}

// Setup, warm-up, samples, measured peak and phases on the backend; the kernel's output.
// The runner is torn down however this ends.
std::vector<float> measure_on_backend(Row& row, noise::Attempts& attempts, const HostInputs& in,
                                      BackendRunner& runner, const PointRun& run) {
  struct Teardown {
    BackendRunner& r;
    ~Teardown() {
      try {
        r.teardown();
      } catch (...) {
      }
    }
  } guard{runner};
  runner.setup(*run.pt.kernel, run.pt.problem, in);
  row.memory = runner.memory();
  warm_up(row, runner, run);
  sample_with_retries(attempts, runner, run);
  record_measured_peak(row, runner, run.pt.backend);
  if (run.pt.kernel->profiles_phases()) record_phases(row, runner);
  return runner.output();
}

void record_time(Row& row, std::vector<double> samples) {
  TimeStats ts;
  static_cast<stats::Summary&>(ts) = stats::summarize(samples);
  ts.samples = std::move(samples);
  row.time = std::move(ts);
  if (row.time->median > 0) row.gflops_per_s = row.flops / (row.time->median * 1e-3) / 1e9;
}

// The kept attempt's noise figures and flag, and a warning when --max-noise was not reached.
void record_noise(Row& row, const noise::Attempts& at, const PointRun& run) {
  noise::record(row, at, run.noise_context);
  const double max_noise = run.o.max_noise;
  if (max_noise > 0 && at.best.samples.size() >= 2 && at.best.figures.rsd > max_noise)
    row.warnings.push_back(fmt::format("max-noise {:g}% not reached: rsd {:.1f}% after {} samples",
                                       100 * max_noise, 100 * at.best.figures.rsd,
                                       at.best.samples.size()));
}

// Whether the measured peak agrees with the workspace query (within 5 %, or 64 kB on tiny
// points), and why not.
void record_memory_agreement(Row& row) {
  const double peak = double(row.memory.peak_bytes()), measured = double(*row.measured_peak_bytes);
  const double diff = measured - peak;
  constexpr double kSlackBytes = 64 * 1024;
  row.memory_agrees = std::fabs(diff) <= std::max(0.05 * peak, kSlackBytes);
  if (!*row.memory_agrees) {
    row.memory_note = fmt::format("measured {} but the kernel's query gives {} ({:+.1f} %)",
                                  format_bytes(measured), format_bytes(peak), 100.0 * diff / peak);
    if (diff > 0 && row.measured_peak_source == "heap")
      row.memory_note += fmt::format(
          "; the excess is heap the kernel or a library it calls allocated itself during "
          "prepare or run (e.g. OpenBLAS's threaded sgemm allocates 512 kB of job buffers per call)");
  } else if (std::fabs(diff) > 0.05 * peak) {
    row.memory_note = fmt::format("small point: measured differs by {} B, within the 64 kB "
                                  "allowed for allocator rounding and runtime bookkeeping",
                                  int64_t(diff));
  }
}

struct OutputScan {
  size_t unwritten = 0;   // still holding the poison value the runner filled in
  size_t non_finite = 0;  // NaN or infinite
};

OutputScan scan_output(const std::vector<float>& out) {
  OutputScan s;
  for (float x : out) {
    if (is_poison(x))
      ++s.unwritten;
    else if (!std::isfinite(x))
      ++s.non_finite;
  }
  return s;
}

void record_accuracy(Row& row, const Point& pt, const HostInputs& in, const std::vector<float>& out) {
  const auto t_check = Clock::now();
  const Accuracy acc = check_accuracy(*pt.kernel, pt.problem, in, out);
  row.check_seconds = std::chrono::duration<double>(Clock::now() - t_check).count();
  row.correctness_rel_l2 = acc.correctness_rel_l2;
  row.correctness_rows = acc.correctness_rows;
  judge_correctness(row);
  row.approx_rel_l2 = acc.approx_rel_l2;
  row.approx_cosine = acc.approx_cosine;
  row.approx_rows = acc.approx_rows;
}

// Inputs, the measurement, memory agreement, output checks and accuracy: what makes the point
// an error row, or nullopt when it is ok.
std::optional<std::string> measure_and_check(Row& row, const PointRun& run, BackendRunner& runner) {
  const Problem& p = run.pt.problem;
  const HostInputs in = make_inputs(p, run.pt.kernel->info().inputs, p.seed);
  // before setup: not part of the measured peak
  noise::Attempts attempts(run.timing.max_reps, run.o.retries > 0);
  const std::vector<float> out = measure_on_backend(row, attempts, in, runner, run);
  record_noise(row, attempts, run);
  record_time(row, std::move(attempts.best.samples));
  record_memory_agreement(row);
  const OutputScan scan = scan_output(out);
  if (scan.unwritten)
    return fmt::format("the kernel left {} of {} output elements unwritten", scan.unwritten, out.size());
  record_accuracy(row, run.pt, in, out);
  if (scan.non_finite)
    return fmt::format("{} of {} output elements are NaN or infinite", scan.non_finite, out.size());
  return std::nullopt;
}

}  // namespace

Row point_row(const Point& pt, const RunOptions& o) {
  Row row;
  row.kernel = pt.kernel->info().name;
  row.backend = pt.backend;
  row.problem = pt.problem;
  row.family = pt.kernel->info().family;
  row.repro = repro_command(pt, repro_flags(timing_of(o, pt.backend), o));
  row.timing_method = pt.backend == Backend::cpu ? "steady_clock" : "cuda_events";
  return row;
}

Row run_point(const Point& pt, const RunOptions& o, const std::vector<Row>& done,
              BackendRunner& runner) {
  PointRun run{pt, o, timing_of(o, pt.backend)};
  Row row = point_row(pt, o);
  try {
    pt.kernel->validate(pt.problem);
  } catch (const std::exception& e) {
    return finish(row, run, "skipped", e.what());
  }
  record_query(row, pt);
  const PointPlan plan = plan_point(pt, o, DoneIndex(done));
  if (plan.skip) return finish(row, run, "skipped", *plan.skip);
  apply_plan(row, run, plan);
  try {
    if (auto error = measure_and_check(row, run, runner)) return finish(row, run, "error", *error);
  } catch (const SweepInterrupted&) {
    throw;
  } catch (const std::bad_alloc&) {
    row.time.reset();
    return finish(row, run, "error", "out of memory (std::bad_alloc)");
  } catch (const std::exception& e) {
    row.time.reset();
    return finish(row, run, "error", e.what());
  }
  return finish(row, run, "ok", "");
}

}  // namespace attnbench
