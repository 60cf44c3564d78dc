// The work gate as a command (gates_run.hpp): every point once under callgrind in the
// portable work driver (bench/work/work_driver.cpp), instructions compared with work.json.
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <map>

#include <fmt/format.h>

#include "gates_run.hpp"
#include "process.hpp"
#include "sysinfo.hpp"

namespace attnbench::gates {

namespace fs = std::filesystem;

namespace {

std::string tool_dir() {
  std::error_code ec;
  const fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : p.parent_path().string();
}

// The folder callgrind writes into: --keep (emptied of old dumps), else a temporary one that
// is removed again.
class WorkDir {
 public:
  explicit WorkDir(const std::string& keep) : keep_(!keep.empty()) {
    if (keep_) {
      dir_ = keep;
      fs::create_directories(dir_);
      for (const auto& e : fs::directory_iterator(dir_))
        if (e.path().filename().string().rfind("callgrind.out", 0) == 0) fs::remove(e.path());
      return;
    }
    std::string tmpl = (fs::temp_directory_path() / "attnbench-work-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw InvalidProblem("cannot create a temporary folder");
    dir_ = tmpl;
  }
  ~WorkDir() {
    std::error_code ec;
    if (!keep_) fs::remove_all(dir_, ec);
  }
  WorkDir(const WorkDir&) = delete;
  WorkDir& operator=(const WorkDir&) = delete;
  std::string file(const std::string& name) const { return (dir_ / name).string(); }
  const fs::path& path() const { return dir_; }

 private:
  fs::path dir_;
  bool keep_;
};

// points.json of the driver: [{"label": "p<i>", "kernel", "axes"}].
ojson driver_points(const std::vector<Point>& points) {
  ojson list = ojson::array();
  for (size_t i = 0; i < points.size(); ++i)
    list.push_back({{"label", fmt::format("p{}", i)},
                    {"kernel", points[i].kernel->info().name},
                    {"axes", axes_json(points[i].problem)}});
  return list;
}

// Runs the driver under callgrind on one thread, with OpenBLAS's Haswell (AVX2) kernels
// whether or not valgrind hides AVX-512 from cpuid: the same code runs under valgrind as
// outside it.
void run_under_callgrind(const WorkArgs& a, const std::string& driver, const WorkDir& dir) {
  setenv("OMP_NUM_THREADS", "1", 1);
  setenv("OPENBLAS_NUM_THREADS", "1", 1);
  setenv("OPENBLAS_CORETYPE", "Haswell", 1);
  const std::string log = dir.file("valgrind.log");
  const int rc = process::run_to_file(
      {a.valgrind, "--tool=callgrind", "--instr-atstart=no",
       "--callgrind-out-file=" + dir.file("callgrind.out"), driver, dir.file("points.json"),
       "--out", dir.file("driver.json")},
      log);
  if (rc != 0)
    throw InvalidProblem(fmt::format("valgrind exited with {} (log {}):\n{}", rc, log,
                                     process::tail_lines(process::read_text(log), 15)));
}

std::string valgrind_version(const WorkArgs& a, const WorkDir& dir) {
  const std::string file = dir.file("version.txt");
  if (process::run_to_file({a.valgrind, "--version"}, file) != 0) return "unknown";
  std::string v = process::read_text(file);
  while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
  return v;
}

// Instructions of each point's run: the dumps triggered as "attnbench:<label>".
std::map<std::string, uint64_t> instructions_by_label(const WorkDir& dir) {
  std::map<std::string, uint64_t> by_label;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    if (e.path().filename().string().rfind("callgrind.out", 0) != 0) continue;
    const CallgrindDump d = parse_callgrind_dump(process::read_text(e.path().string()));
    if (d.trigger.rfind("attnbench:", 0) == 0) by_label[d.trigger.substr(10)] = d.instructions;
  }
  return by_label;
}

// The row of point `label`: the driver's account (status, memory figures) and, when it ran,
// its instruction count.
Row work_row(const Point& pt, const std::string& label, const ojson& driver,
             const std::map<std::string, uint64_t>& by_label, WorkRun& run) {
  Row r = gate_row(pt, "--threads 1");
  r.repro += "  (instructions: attnbench_gate work)";
  r.status = "error";
  r.reason = "the work driver did not report this point";
  for (const auto& d : driver.value("points", ojson::array()))
    if (d.value("label", "") == label) {
      r.status = d.value("status", "error");
      r.reason = d.value("reason", "");
      r.memory.inputs_bytes = d.value("inputs_bytes", size_t(0));
      r.memory.outputs_bytes = d.value("outputs_bytes", size_t(0));
      r.memory.prepared_bytes = d.value("prepared_bytes", size_t(0));
      r.memory.scratch_bytes = d.value("scratch_bytes", size_t(0));
    }
  if (r.status != "ok") return r;
  if (auto it = by_label.find(label); it != by_label.end()) {
    run.instructions[row_key(r)] = double(it->second);
  } else {
    r.status = "error";
    r.reason = "no callgrind dump for this point";
  }
  return r;
}

}  // namespace

WorkRun measure_work(const std::vector<Point>& points, const WorkArgs& a, const std::string& cmdline) {
  const std::string driver = a.driver.empty() ? tool_dir() + "/attnbench_work_driver" : a.driver;
  if (!fs::exists(driver))
    throw InvalidProblem(fmt::format("work driver {} not found (built by the perf-gates section "
                                     "of CMakeLists.txt; give --driver)",
                                     driver));
  const WorkDir dir(a.keep);
  write_json(dir.file("points.json"), driver_points(points));
  run_under_callgrind(a, driver, dir);
  const ojson dj = read_json_file(dir.file("driver.json"));
  const auto by_label = instructions_by_label(dir);
  WorkRun now;
  now.fingerprint = this_machine(1);
  now.results.preset = "gate-work";
  now.results.environment = collect_environment(1, cmdline);
  now.tool = {{"valgrind", valgrind_version(a, dir)},
              {"OPENBLAS_CORETYPE", "Haswell"},
              {"threads", 1},
              {"driver_flags", dj.value("cxx_flags", "")}};
  for (size_t i = 0; i < points.size(); ++i)
    now.results.rows.push_back(work_row(points[i], fmt::format("p{}", i), dj, by_label, now));
  return now;
}

int run_work_gate(const GateOptions& c, const WorkArgs& a) {
  const std::vector<Point> points = work_points();
  const auto t0 = std::chrono::steady_clock::now();
  const WorkRun now = measure_work(points, a, c.cmdline);
  fmt::print(stderr, "attnbench_gate work: {} points under callgrind in {:.1f} s\n", points.size(),
             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  WorkOptions wo;
  wo.tolerance = a.tolerance;
  return gate_against_baseline(
      c, "work", now, points.size(), work_baseline_path(c.baselines), work_run_from_json,
      [&](const WorkRun* base) { return compare_work(*base, now, wo); }, /*required=*/true);
}

}  // namespace attnbench::gates
