// What the CI gates share as commands (gates_run.hpp): threads, rows, reports, baselines.
#include <cstdio>
#include <fstream>

#include <fmt/format.h>
#include <omp.h>

#include "errors.hpp"
#include "gates_run.hpp"

extern "C" void openblas_set_num_threads(int);

namespace attnbench::gates {

void set_threads(int threads) {
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);  // the OpenMP build of OpenBLAS follows OpenMP's count too
}

Row gate_row(const Point& pt, const std::string& repro_flags) {
  Row r;
  r.kernel = pt.kernel->info().name;
  r.backend = pt.backend;
  r.problem = pt.problem;
  r.family = pt.kernel->info().family;
  r.flops = pt.kernel->flops(pt.problem);
  r.min_bytes = pt.kernel->min_bytes(pt.problem);
  r.repro = repro_command(pt, repro_flags);
  return r;
}

int finish(const GateOptions& c, GateReport rep, bool all) {
  for (const auto& line : opted_out(rep.gate)) rep.notes.push_back("not in this gate: " + line);
  const std::string md = markdown(rep, all || c.all);
  fmt::print("{}", md);
  std::fflush(stdout);
  if (!c.report.empty()) {
    std::ofstream f(c.report, std::ios::app);
    if (!f) fail_at("--report " + c.report, "cannot write");
    f << md;
  }
  return rep.failed() ? 1 : 0;
}

void write_json(const std::string& path, const ojson& j) { write_text_atomic(path, j.dump(2) + "\n"); }

int store_baseline(const GateOptions& c, const char* gate, const ojson& now, size_t points,
                   const std::string& path, const std::optional<GateReport>& against_replaced,
                   bool all) {
  write_json(path, now);
  fmt::print(stderr, "attnbench_gate {}: wrote the baseline {} ({} points)\n", gate, path, points);
  if (against_replaced) {
    GateReport rep = *against_replaced;
    rep.baseline_path = path + " (replaced)";
    finish(c, rep, all);
  }
  return 0;
}

int print_gate_points() {
  auto show = [](const char* gate, const std::vector<Point>& pts) {
    fmt::print("{} gate ({} points):\n", gate, pts.size());
    for (const Point& p : pts)
      fmt::print("  {} {} {}\n", p.kernel->info().name, backend_name(p.backend),
                 describe_point(p.problem));
    for (const auto& line : opted_out(gate)) fmt::print("  not in this gate: {}\n", line);
  };
  show("memory", memory_points());
  show("work", work_points());
  show("time", time_points());
  const Fingerprint fp = this_machine(omp_get_max_threads());
  fmt::print("this machine: {} (key {})\n", fp.words(), fp.key());
  return 0;
}

}  // namespace attnbench::gates
