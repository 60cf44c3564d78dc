// The time gate as a command (gates_run.hpp): one-thread CPU time of every point, each sample
// next to an sgemm reference sample, round-robin over the points.
#include <time.h>

#include <chrono>
#include <memory>

#include <fmt/format.h>

#include "accuracy.hpp"
#include "calibrate.hpp"
#include "gates_run.hpp"
#include "inputs.hpp"
#include "sysinfo.hpp"

namespace attnbench::gates {

namespace {

// CPU time of the calling thread, ms. The time gate runs everything on this one thread.
double thread_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) * 1e-6;
}

// One point of the gate: its inputs, its runner (set up once) and its samples.
struct Slot {
  const Point* pt;
  HostInputs in;
  std::unique_ptr<BackendRunner> runner;
  std::vector<double> wall_ms, cpu_ms, ref_ms;
  std::string error;
};

Slot set_up(const Point& pt) {
  Slot s{&pt, {}, make_cpu_runner(), {}, {}, {}, ""};
  try {
    s.in = make_inputs(pt.problem, pt.kernel->info().inputs, pt.problem.seed);
    s.runner->setup(*pt.kernel, pt.problem, s.in);
  } catch (const std::exception& e) {
    s.error = e.what();
  }
  return s;
}

// Two warm-up rounds, then `rounds` rounds: every point gets a reference run and a kernel run
// per round, so each point's samples spread over the whole gate and a load change touches all
// alike. The reference slows with the core (frequency, a neighbour's pressure on the caches).
void take_rounds(std::vector<Slot>& slots, SgemmProduct& reference, int rounds) {
  for (int r = -2; r < rounds; ++r)
    for (Slot& s : slots) {
      if (!s.error.empty()) continue;
      try {
        const double r0 = thread_cpu_ms();
        reference.run();
        const double ref_ms = thread_cpu_ms() - r0;
        const double c0 = thread_cpu_ms();
        const double wall_ms = s.runner->run_once_ms();
        const double cpu_ms = thread_cpu_ms() - c0;
        if (r < 0) continue;
        s.ref_ms.push_back(ref_ms);
        s.cpu_ms.push_back(cpu_ms);
        s.wall_ms.push_back(wall_ms);
      } catch (const std::exception& e) {
        s.error = e.what();
      }
    }
}

// The row of a slot: the runner's wall-clock samples (shown, not gated), the memory figures
// and, since no number goes without its verification, the output of the last sample against
// float64. Its CPU times go to `run`.
Row time_row(Slot& s, TimeRun& run) {
  const Point& pt = *s.pt;
  Row r = gate_row(pt, "--threads 1");
  if (!s.error.empty()) {
    r.status = "error";
    r.reason = s.error;
    return r;
  }
  r.memory = s.runner->memory();
  r.warmup_runs = 2;
  TimeStats ts;
  static_cast<stats::Summary&>(ts) = stats::summarize(s.wall_ms);
  ts.samples = s.wall_ms;
  r.time = ts;
  if (ts.median > 0) r.gflops_per_s = r.flops / (ts.median * 1e-3) / 1e9;
  try {
    const Accuracy acc = check_accuracy(*pt.kernel, pt.problem, s.in, s.runner->output());
    r.correctness_rel_l2 = acc.correctness_rel_l2;
    r.correctness_rows = acc.correctness_rows;
  } catch (const std::exception& e) {
    r.memory_note = std::string("accuracy check failed: ") + e.what();
  }
  run.kernel_ms[row_key(r)] = s.cpu_ms;
  run.reference_ms[row_key(r)] = s.ref_ms;
  return r;
}

}  // namespace

TimeRun measure_time(const std::vector<Point>& points, const TimeArgs& a, const std::string& cmdline) {
  // one thread: its CPU time is the kernel's whole cost, and it excludes the time the thread
  // waited for a core on a busy machine
  constexpr int threads = 1;
  set_threads(threads);
  SgemmProduct reference(a.sgemm_n);
  std::vector<Slot> slots;
  for (const Point& pt : points) slots.push_back(set_up(pt));
  take_rounds(slots, reference, a.rounds);
  TimeRun now;
  now.fingerprint = this_machine(threads);
  now.reference = fmt::format("sgemm {}^3", a.sgemm_n);
  now.results.preset = "gate-time";
  now.results.environment = collect_environment(threads, cmdline);
  for (Slot& s : slots) {
    now.results.rows.push_back(time_row(s, now));
    s.runner->teardown();
  }
  return now;
}

int run_time_gate(const GateOptions& c, const TimeArgs& a) {
  const std::vector<Point> points = time_points();
  const auto t0 = std::chrono::steady_clock::now();
  const TimeRun now = measure_time(points, a, c.cmdline);
  fmt::print(stderr, "attnbench_gate time: {} points x {} rounds in {:.1f} s on {}\n", points.size(),
             a.rounds, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
             now.fingerprint.words());
  TimeOptions to;
  to.min_effect = a.min_effect;
  to.alpha = a.alpha;
  // no baseline for this hardware: compare_time warns and gates nothing
  return gate_against_baseline(
      c, "time", now, points.size(), time_baseline_path(c.baselines, now.fingerprint),
      time_run_from_json, [&](const TimeRun* base) { return compare_time(base, now, to); },
      /*required=*/false);
}

}  // namespace attnbench::gates
