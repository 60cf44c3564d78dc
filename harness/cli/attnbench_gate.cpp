// attnbench_gate: the CI performance gates (docs/measurement.md section 8) against the baselines in
// results/baselines/ (their README says what each holds and how to update them).
//   attnbench_gate memory [--update]  workspace query and correctness error of every cpu kernel
//                                     at a few points: must not grow (exact); measured heap peak:
//                                     must not grow by more than 16 kB (allocator granularity)
//   attnbench_gate work   [--update]  instructions of one run under callgrind (portable build,
//                                     one thread): must not grow by more than 2 %
//   attnbench_gate time   [--update]  one-thread CPU time / an interleaved sgemm reference,
//                                     Mann-Whitney U test and +15 % minimum effect; no baseline
//                                     for this hardware = a warning
//   attnbench_gate points             the points each gate measures
// Prints a Markdown report; exit 0 = pass (warnings included), 1 = a regression, 2 = an error.
// bench/ci_perf.sh runs the gates for `./run_all.sh ci-perf`. This file only declares the
// options; the gates are harness/gates*.cpp (gates_run.hpp).
#include <csignal>
#include <functional>
#include <utility>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "gates_run.hpp"
#include "heap.hpp"
#include "text.hpp"

using namespace attnbench;
using namespace attnbench::gates;

namespace {

using Command = std::pair<CLI::App*, std::function<int()>>;

void add_common(CLI::App* sub, GateOptions& c) {
  sub->add_flag("--update", c.update, "measure and rewrite the stored baseline instead of gating");
  sub->add_option("--baselines", c.baselines, "baselines folder (default: results/baselines of the source tree)");
  sub->add_option("--out", c.out, "also write this run (baseline format) to FILE, e.g. for CI artifacts");
  sub->add_option("--report", c.report, "append the Markdown report to FILE (e.g. $GITHUB_STEP_SUMMARY)");
  sub->add_flag("--all", c.all, "list every compared metric, not only the changes");
}

Command add_memory(CLI::App& app, GateOptions& c, int& threads) {
  auto* s = app.add_subcommand("memory", "workspace query and correctness error (exact), measured heap peak (16 kB allowance)");
  add_common(s, c);
  s->add_option("--threads", threads,
                "threads (the workspace holds per-thread scratch; default 2 on every machine)")
      ->check(CLI::Range(1, 1024));
  return {s, [&c, &threads] { return run_memory_gate(c, threads); }};
}

Command add_work(CLI::App& app, GateOptions& c, WorkArgs& a) {
  auto* s = app.add_subcommand("work", "instructions of one run under callgrind (tolerance 2 %)");
  add_common(s, c);
  s->add_option("--driver", a.driver, "the portable work driver (default: beside this tool)");
  s->add_option("--valgrind", a.valgrind, "valgrind executable (default: valgrind on PATH)");
  s->add_option("--tolerance", a.tolerance, "relative growth still accepted (default 0.02)")
      ->check(CLI::Range(0.0, 1.0));
  s->add_option("--keep", a.keep, "keep callgrind's output files in this folder");
  return {s, [&c, &a] { return run_work_gate(c, a); }};
}

Command add_time(CLI::App& app, GateOptions& c, TimeArgs& a) {
  auto* s = app.add_subcommand("time", "one-thread CPU time / an interleaved sgemm; U test + minimum effect");
  add_common(s, c);
  s->add_option("--rounds", a.rounds, "samples per point (default 25)")->check(CLI::Range(5, 100000));
  s->add_option("--min-effect", a.min_effect, "least relative growth of the median that fails (default 0.15)")
      ->check(CLI::Range(0.0, 10.0));
  s->add_option("--alpha", a.alpha, "significance of the Mann-Whitney U test (default 0.01)")
      ->check(CLI::Range(1e-9, 0.5));
  return {s, [&c, &a] { return run_time_gate(c, a); }};
}

}  // namespace

int main(int argc, char** argv) {
  heap::install_interposer();  // the measured peak counts every heap byte of the process
  std::signal(SIGXFSZ, SIG_IGN);  // a file size limit fails a write (one line), not the process
  GateOptions c;
  c.cmdline = command_line(argc, argv);
  CLI::App app{"attnbench_gate: CI performance gates against the baselines in results/baselines"};
  app.require_subcommand(1);
  int memory_threads = 2;
  WorkArgs work;
  TimeArgs time;
  const std::vector<Command> commands = {
      add_memory(app, c, memory_threads), add_work(app, c, work), add_time(app, c, time),
      {app.add_subcommand("points", "list the points each gate measures"), print_gate_points}};
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (const auto& [sub, run] : commands)
      if (*sub) return run();
  } catch (const std::exception& e) {
    fmt::print(stderr, "attnbench_gate: error: {}\n", e.what());
  }
  return 2;
}
