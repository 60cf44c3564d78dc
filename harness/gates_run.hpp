// Measuring for the CI gates (gates.hpp holds their decisions): the points of each gate, the
// runs that measure them, and each gate as a command against its stored baseline. The tool
// harness/cli/attnbench_gate.cpp only parses options and calls these.
//   gates_points.cpp   the points of each gate, from the registry (KernelInfo::gate_opt_outs)
//   gates_memory.cpp   workspace query, measured heap peak and error, 2 threads
//   gates_work.cpp     instructions of one run under callgrind (the portable work driver)
//   gates_time.cpp     one-thread CPU time against an interleaved sgemm reference
//   gates_command.cpp  what the three share: baselines, reports, the points listing
#pragma once

#include <cstdio>
#include <exception>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "gates.hpp"
#include "sweep_spec.hpp"

namespace attnbench::gates {

// ---- the points ------------------------------------------------------------------------------

// Every cpu kernel of the registry is in every gate unless its description opts out of that
// gate (KernelInfo::gate_opt_outs, with the reason).
//   memory  both forms where the kernel has them, at b=1 h=1 N=512 and b=2 h=2 N=1024
//   work    one point per kernel: its first form at the largest N of 1024, 512, 256 whose
//           FLOP count stays within a budget (callgrind runs ~50x slower than native), plus
//           the other form of the first kernel of each family in registry order
//   time    one point per kernel, causal: the largest N of 4096, 2048, 1024 within a FLOP
//           budget (a few milliseconds on one thread)
std::vector<Point> memory_points();
std::vector<Point> work_points();
std::vector<Point> time_points();
// The kernels a gate leaves out, as "name: reason" lines for its report.
std::vector<std::string> opted_out(const std::string& gate);

// ---- the runs --------------------------------------------------------------------------------

struct GateOptions {
  bool update = false;   // measure and rewrite the stored baseline instead of gating
  bool all = false;      // list every compared metric, not only the changes
  std::string baselines = std::string(ATTNBENCH_SOURCE_DIR) + "/results/baselines";
  std::string out;       // also write this run (baseline format), for CI artifacts
  std::string report;    // append the Markdown report to this file
  std::string cmdline;
};

struct WorkArgs {
  std::string driver;    // default: attnbench_work_driver beside the running tool
  std::string valgrind = "valgrind";
  double tolerance = 0.02;
  std::string keep;      // keep callgrind's files in this folder
};

struct TimeArgs {
  int rounds = 25;
  int sgemm_n = 384;
  double min_effect = 0.15;
  double alpha = 0.01;
};

// One warm-up and one run per point on `threads` threads; rows keep memory and accuracy.
MemoryRun measure_memory(const std::vector<Point>& points, int threads, const std::string& cmdline);
// Every point once under callgrind in the portable work driver, one thread.
WorkRun measure_work(const std::vector<Point>& points, const WorkArgs& a, const std::string& cmdline);
// Round-robin samples of every point's kernel next to an sgemm reference, one thread.
TimeRun measure_time(const std::vector<Point>& points, const TimeArgs& a, const std::string& cmdline);

// ---- the gates as commands -------------------------------------------------------------------
// Each measures, writes --out, compares against its baseline (or, with --update, rewrites it),
// prints the Markdown report (and appends it to --report) and returns the exit status: 0 pass,
// 1 a regression. Throws InvalidProblem when it cannot run (no baseline, no driver).

int run_memory_gate(const GateOptions& c, int threads);
int run_work_gate(const GateOptions& c, const WorkArgs& a);
int run_time_gate(const GateOptions& c, const TimeArgs& a);
// `attnbench_gate points`: the points of every gate, the kernels left out and this machine.
int print_gate_points();

// ---- shared by the gates (gates_command.cpp) -------------------------------------------------

// OpenMP's and OpenBLAS's thread counts.
void set_threads(int threads);
// A gate point's row before it is measured: kernel, backend, family, axes, FLOPs, least bytes
// and the command that reruns it with `repro_flags`.
Row gate_row(const Point& pt, const std::string& repro_flags);
// Prints the report (and appends it to --report); 1 when it holds a regression, else 0.
int finish(const GateOptions& c, GateReport rep, bool all);
void write_json(const std::string& path, const ojson& j);
// With --update: writes `now` to `path`, then prints what changed against the replaced
// baseline when there is one to compare. Returns 0.
int store_baseline(const GateOptions& c, const char* gate, const ojson& now, size_t points,
                   const std::string& path, const std::optional<GateReport>& against_replaced,
                   bool all);

// A stored baseline, nullopt when there is none; with --update an unreadable one (an older
// format) is only replaced.
template <class Run>
std::optional<Run> load_baseline(const std::string& path, bool update,
                                 Run (*read)(const ojson&, const std::string&)) {
  if (!std::filesystem::exists(path)) return std::nullopt;
  try {
    return read(read_json_file(path), path);
  } catch (const std::exception& e) {
    if (!update) throw;
    fmt::print(stderr, "attnbench_gate: replacing an unreadable baseline: {}\n", e.what());
    return std::nullopt;
  }
}

// What the work and time gates do once measured: write --out, then compare with the baseline
// at `path` (compare(nullptr) when there is none: `required` makes that an error) or, with
// --update, replace it. `compare` is GateReport(const Run* base).
template <class Run, class Compare>
int gate_against_baseline(const GateOptions& c, const char* gate, const Run& now, size_t points,
                          const std::string& path, Run (*read)(const ojson&, const std::string&),
                          Compare compare, bool required) {
  if (!c.out.empty()) write_json(c.out, to_json(now));
  const std::optional<Run> base = load_baseline(path, c.update, read);
  if (c.update) {
    std::optional<GateReport> replaced;
    if (base) replaced = compare(&*base);
    return store_baseline(c, gate, to_json(now), points, path, replaced, true);
  }
  if (!base && required)
    throw InvalidProblem(fmt::format("no {0} baseline {1}; create it with `attnbench_gate {0} --update`",
                                     gate, path));
  GateReport rep = compare(base ? &*base : nullptr);
  rep.baseline_path = path;
  return finish(c, rep, true);
}

}  // namespace attnbench::gates
