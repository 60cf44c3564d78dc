// harness/gates_points.cpp: the CI gates take their kernels from the registry. Every cpu
// kernel is in every gate unless its description opts out (with the reason the report shows),
// and every point of a stored baseline is still measured, so no baseline row goes missing.
#include <catch2/catch.hpp>

#include <filesystem>
#include <memory>
#include <set>
#include <string>

#include "attnbench/descriptions.hpp"
#include "gates_run.hpp"

using namespace attnbench;
using namespace attnbench::gates;

namespace {

std::set<std::string> kernels_of(const std::vector<Point>& points) {
  std::set<std::string> names;
  for (const Point& p : points) names.insert(p.kernel->info().name);
  return names;
}

std::set<std::string> keys_of(const std::vector<Point>& points) {
  std::set<std::string> keys;
  for (const Point& p : points) keys.insert(p.key());
  return keys;
}

std::set<std::string> cpu_kernels() {
  std::set<std::string> names;
  for (const Kernel* k : Registry::instance().kernels())
    if (k->info().backend == Backend::cpu && k->info().gate_opt_outs.empty()) names.insert(k->info().name);
  return names;
}

// Every row key of the baseline files under results/baselines/<sub> (a file or a folder).
std::vector<std::string> baseline_keys(const std::string& sub) {
  namespace fs = std::filesystem;
  const fs::path path = fs::path(ATTNBENCH_SOURCE_DIR) / "results/baselines" / sub;
  std::vector<fs::path> files;
  if (fs::is_directory(path)) {
    for (const auto& e : fs::directory_iterator(path))
      if (e.path().extension() == ".json") files.push_back(e.path());
  } else {
    files.push_back(path);
  }
  std::vector<std::string> keys;
  for (const auto& f : files)
    for (const Row& r : results_from_json(read_json_file(f.string()), f.string()).rows)
      keys.push_back(row_key(r));
  return keys;
}

// A cpu kernel that stays out of the work gate.
class OptedOutKernel : public Kernel {
 public:
  OptedOutKernel() {
    info_ = method_info("zz_gate_test", Backend::cpu, "test", "a kernel the work gate leaves out");
    info_.gate_opt_outs["work"] = "too slow under callgrind for the test";
  }
  const KernelInfo& info() const override { return info_; }
  WorkspaceSize workspace(const Problem&) const override { return {}; }
  void run(const Problem& p, const Inputs& in, const void*, void*, float* out,
           const ExecContext&) const override {
    for (size_t i = 0; i < output_elems(p); ++i) out[i] = in.v[i];
  }
  double flops(const Problem& p) const override { return double(output_elems(p)); }

 private:
  KernelInfo info_;
};

}  // namespace

TEST_CASE("every cpu kernel of the registry is in every gate", "[gates][points]") {
  const auto all = cpu_kernels();
  REQUIRE(all.size() >= 10);
  CHECK(kernels_of(memory_points()) == all);
  CHECK(kernels_of(work_points()) == all);
  CHECK(kernels_of(time_points()) == all);
  // the memory gate: both forms at two shapes for each kernel with both forms
  for (const Point& p : memory_points()) CHECK(p.backend == Backend::cpu);
  CHECK(memory_points().size() >= 4 * all.size() - 4);
}

TEST_CASE("gate sizes follow the kernels' FLOP counts", "[gates][points]") {
  for (const Point& p : work_points()) {
    INFO(p.describe());
    // kernels whose work grows quadratically (vanilla) at N = 512, linear ones at 1024
    const std::string& family = p.kernel->info().family;
    if (family == "vanilla") CHECK(p.problem.seq_len == 512);
    if (family == "linear" || family == "lisa") CHECK(p.problem.seq_len == 1024);
  }
  for (const Point& p : time_points()) {
    INFO(p.describe());
    CHECK(p.problem.seq_len >= 1024);
    CHECK(p.problem.seq_len <= 4096);
    if (p.problem.seq_len > 1024) CHECK(p.kernel->flops(p.problem) <= 300e6);
  }
}

TEST_CASE("every point of a stored baseline is still measured", "[gates][points]") {
  const auto memory = keys_of(memory_points()), work = keys_of(work_points()),
             time = keys_of(time_points());
  for (const auto& [sub, points] : {std::pair{"memory", &memory}, std::pair{"work.json", &work},
                                    std::pair{"time", &time}}) {
    const auto keys = baseline_keys(sub);
    CHECK_FALSE(keys.empty());
    for (const auto& k : keys) {
      INFO(sub << ": " << k);
      CHECK(points->count(k));
    }
  }
}

TEST_CASE("a kernel that opts out of a gate is left out of it, with its reason", "[gates][points]") {
  Registry::instance().add(std::make_unique<OptedOutKernel>());
  struct Remove {
    ~Remove() { Registry::instance().remove("zz_gate_test", Backend::cpu); }
  } remove;
  CHECK_FALSE(kernels_of(work_points()).count("zz_gate_test"));
  CHECK(kernels_of(memory_points()).count("zz_gate_test"));
  CHECK(kernels_of(time_points()).count("zz_gate_test"));
  const auto lines = opted_out("work");
  REQUIRE(lines.size() == 1);
  CHECK(lines[0] == "zz_gate_test: too slow under callgrind for the test");
  CHECK(opted_out("memory").empty());
}
