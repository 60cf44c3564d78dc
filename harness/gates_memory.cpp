// The memory and accuracy gate as a command (gates_run.hpp): measure every point once on two
// threads, compare with this machine's baseline, or with another machine's workspace query.
#include <algorithm>
#include <chrono>
#include <filesystem>

#include <fmt/format.h>

#include "gates_run.hpp"
#include "point_runner.hpp"
#include "sysinfo.hpp"

namespace attnbench::gates {

namespace fs = std::filesystem;

namespace {

// The baseline a memory run is compared with, and how much of it applies.
struct MemoryBaseline {
  std::optional<MemoryRun> run;
  std::string path;
  MemoryScope scope = MemoryScope::full;
};

// This machine's baseline; else another machine's with the same threads, whose workspace
// query still applies.
MemoryBaseline find_memory_baseline(const GateOptions& c, const Fingerprint& fp) {
  const std::string path = memory_baseline_path(c.baselines, fp);
  if (fs::exists(path)) return {load_baseline(path, c.update, memory_run_from_json), path, MemoryScope::full};
  if (!fs::is_directory(c.baselines + "/memory")) return {};
  std::vector<std::string> others;
  for (const auto& e : fs::directory_iterator(c.baselines + "/memory"))
    if (e.path().extension() == ".json") others.push_back(e.path().string());
  std::sort(others.begin(), others.end());
  for (const auto& p : others) {
    MemoryRun r = memory_run_from_json(read_json_file(p), p);
    if (r.fingerprint.threads == fp.threads) return {std::move(r), p, MemoryScope::query_only};
  }
  return {};
}

}  // namespace

MemoryRun measure_memory(const std::vector<Point>& points, int threads, const std::string& cmdline) {
  set_threads(threads);
  RunOptions o;
  o.timing[Backend::cpu] = Timing{1, 1, 0.0, 1};  // one warm-up and one run: memory, not time
  o.max_point_seconds = 0;
  o.threads = threads;
  o.retries = 0;  // one timed run: nothing to re-measure
  auto runner = make_cpu_runner();
  // first OpenMP region and OpenBLAS call of the process, outside every measured point
  if (!points.empty()) run_point(points.front(), o, {}, *runner);
  MemoryRun now;
  now.fingerprint = this_machine(threads);
  now.results.preset = "gate-memory";
  now.results.environment = collect_environment(threads, cmdline);
  for (const Point& pt : points) {
    Row r = run_point(pt, o, {}, *runner);
    // keep what the gate compares; times would only churn the stored file
    r.time.reset();
    r.gflops_per_s.reset();
    r.point_seconds = r.check_seconds = 0;
    r.warmup_runs = 0;
    r.noise.reset();
    r.noisy = false;
    std::erase_if(r.warnings, [](const std::string& w) { return w.rfind("noisy", 0) == 0; });
    now.results.rows.push_back(std::move(r));
  }
  return now;
}

int run_memory_gate(const GateOptions& c, int threads) {
  const std::vector<Point> points = memory_points();
  const auto t0 = std::chrono::steady_clock::now();
  const MemoryRun now = measure_memory(points, threads, c.cmdline);
  fmt::print(stderr, "attnbench_gate memory: {} points in {:.1f} s on {}\n", points.size(),
             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
             now.fingerprint.words());
  if (!c.out.empty()) write_json(c.out, to_json(now));
  const MemoryBaseline base = find_memory_baseline(c, now.fingerprint);
  if (c.update) {
    std::optional<GateReport> replaced;
    if (base.run && base.scope == MemoryScope::full) replaced = compare_memory(*base.run, now, base.scope);
    return store_baseline(c, "memory", to_json(now), points.size(),
                          memory_baseline_path(c.baselines, now.fingerprint), replaced, false);
  }
  if (!base.run)
    throw InvalidProblem(fmt::format("no memory baseline under {}/memory with {} threads; create "
                                     "one with `attnbench_gate memory --update`",
                                     c.baselines, threads));
  GateReport rep = compare_memory(*base.run, now, base.scope);
  rep.baseline_path = base.path;
  return finish(c, rep, false);
}

}  // namespace attnbench::gates
