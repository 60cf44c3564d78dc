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
// Prints a Markdown report; exit 0 = pass (warnings included), 1 = a regression, 2 = an error
// (one line on stderr; options are checked as they are parsed, paths before measuring).
// bench/ci_perf.sh runs the gates for `./run_all.sh ci-perf`. This file only declares the
// options; the gates are harness/gates*.cpp (gates_run.hpp).
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <functional>
#include <utility>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli_options.hpp"
#include "file_io.hpp"
#include "gates_run.hpp"
#include "heap.hpp"
#include "text.hpp"

using namespace attnbench;
using namespace attnbench::gates;

namespace {

using Command = std::pair<CLI::App*, std::function<int()>>;
namespace fs = std::filesystem;

constexpr const char* kExitStatuses =
    "Exit status: 0 pass (warnings included); 1 a regression against the baseline; 2 a bad input "
    "(option, baseline file) or a gate that could not run (no baseline, no driver, valgrind "
    "failed), with one line on stderr.";

void add_common(CLI::App* sub, GateOptions& c) {
  sub->add_flag("--update", c.update, "measure and rewrite the stored baseline instead of gating");
  cli::nonempty(sub->add_option("--baselines", c.baselines,
                                "baselines folder (default: results/baselines of the source "
                                "tree)"));
  cli::nonempty(sub->add_option("--out", c.out,
                                "also write this run (baseline format) to FILE, e.g. for CI "
                                "artifacts"));
  cli::nonempty(sub->add_option("--report", c.report,
                                "append the Markdown report to FILE (e.g. $GITHUB_STEP_SUMMARY)"));
  sub->add_flag("--all", c.all, "list every compared metric, not only the changes");
}

// A path option naming a folder: an existing folder, or (when `may_create`) nothing yet.
void check_folder(const std::string& path, const char* option, bool may_create) {
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (fs::is_directory(st)) return;
  if (!fs::exists(st)) {
    if (!may_create) fail_at(fmt::format("{} {}", option, path), "no such folder");
    return;
  }
  fail_at(fmt::format("{} {}", option, path), "is not a folder");
}

// A file a gate writes: a regular file or a new one (in a new folder too: the writer creates
// it), never a folder or FIFO.
void check_output(const std::string& path, const char* option) {
  if (path.empty()) return;
  std::error_code ec;
  const fs::path parent = fs::path(path).parent_path();
  if (parent.empty() || fs::exists(parent, ec)) file_io::check_output_target(path, option);
}

// What every gate is given, checked before it measures anything: the baselines folder (which
// --update may create), and the files --out and --report write.
void check_common(const GateOptions& c) {
  check_folder(c.baselines, "--baselines", c.update);
  check_output(c.out, "--out");
  check_output(c.report, "--report");
}

// The work gate's driver (when given) is a regular file; --keep is a folder or a new one.
void check_work(const WorkArgs& a) {
  if (!a.driver.empty()) {
    size_t size = 0;
    ::close(file_io::open_regular(a.driver, size, "the work driver (an executable)"));
  }
  if (!a.keep.empty()) check_folder(a.keep, "--keep", true);
}

Command add_memory(CLI::App& app, GateOptions& c, int& threads) {
  auto* s = app.add_subcommand("memory", "workspace query and correctness error (exact), measured heap peak (16 kB allowance)");
  add_common(s, c);
  cli::whole(s->add_option("--threads", threads,
                           "threads (the workspace holds per-thread scratch; default 2 on every "
                           "machine)"),
             IntRange{1, 1024});
  return {s, [&c, &threads] {
            check_common(c);
            return run_memory_gate(c, threads);
          }};
}

Command add_work(CLI::App& app, GateOptions& c, WorkArgs& a) {
  auto* s = app.add_subcommand("work", "instructions of one run under callgrind (tolerance 2 %)");
  add_common(s, c);
  cli::nonempty(s->add_option("--driver", a.driver,
                              "the portable work driver (default: beside this tool)"));
  cli::nonempty(s->add_option("--valgrind", a.valgrind,
                              "valgrind executable (default: valgrind on PATH)"));
  cli::real(s->add_option("--tolerance", a.tolerance,
                          "relative growth still accepted (default 0.02)"),
            RealRange{0.0, 1.0});
  cli::nonempty(s->add_option("--keep", a.keep, "keep callgrind's output files in this folder"));
  return {s, [&c, &a] {
            check_common(c);
            check_work(a);
            return run_work_gate(c, a);
          }};
}

Command add_time(CLI::App& app, GateOptions& c, TimeArgs& a) {
  auto* s = app.add_subcommand("time", "one-thread CPU time / an interleaved sgemm; U test + minimum effect");
  add_common(s, c);
  cli::whole(s->add_option("--rounds", a.rounds, "samples per point (default 25)"),
             IntRange{5, 100000});
  cli::real(s->add_option("--min-effect", a.min_effect,
                          "least relative growth of the median that fails (default 0.15)"),
            RealRange{0.0, 10.0});
  cli::real(s->add_option("--alpha", a.alpha,
                          "significance of the Mann-Whitney U test (default 0.01)"),
            RealRange{1e-9, 0.5});
  return {s, [&c, &a] {
            check_common(c);
            return run_time_gate(c, a);
          }};
}

}  // namespace

int main(int argc, char** argv) {
  heap::install_interposer();  // the measured peak counts every heap byte of the process
  std::signal(SIGXFSZ, SIG_IGN);  // a file size limit fails a write (one line), not the process
  GateOptions c;
  c.cmdline = command_line(argc, argv);
  CLI::App app{"attnbench_gate: CI performance gates against the baselines in results/baselines"};
  app.require_subcommand(1);
  app.footer(kExitStatuses);
  int memory_threads = 2;
  WorkArgs work;
  TimeArgs time;
  const std::vector<Command> commands = {
      add_memory(app, c, memory_threads), add_work(app, c, work), add_time(app, c, time),
      {app.add_subcommand("points", "list the points each gate measures"), print_gate_points}};
  if (const auto status = cli::parse(app, argc, argv, "attnbench_gate")) return *status;
  try {
    for (const auto& [sub, run] : commands)
      if (*sub) return run();
  } catch (const std::exception& e) {
    fmt::print(stderr, "attnbench_gate: error: {}\n", one_line(e.what()));
  }
  return 2;
}
