// attnbench_work_driver: runs kernels under callgrind for the work gate
// (docs/measurement.md section 8).
//
// Built by the perf-gates section of CMakeLists.txt from the same kernel sources as the main
// build but without -march=native (valgrind 3.19 cannot execute AVX-512 code), with the cpu
// runner of the harness compiled in the same portable way. `attnbench_gate work` runs it as
//   OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=Haswell
//   valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=DIR/callgrind.out
//     attnbench_work_driver DIR/points.json --out DIR/driver.json      (one command line)
// For each point of points.json ([{"label", "kernel", "axes"}]): inputs, the runner's setup
// and one warm-up run go uninstrumented; then instrumentation starts, the counters are zeroed,
// exactly one run of the kernel executes, and the counters are dumped as
// "attnbench:<label>" before instrumentation stops. Outside valgrind the client requests do
// nothing, so the driver also runs natively (a smoke test of the points).
#include <valgrind/callgrind.h>

#include <cstdio>
#include <fstream>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "attnbench/kernel.hpp"
#include "backend.hpp"
#include "inputs.hpp"

#ifndef ATTNBENCH_WORK_FLAGS
#define ATTNBENCH_WORK_FLAGS ""
#endif

using namespace attnbench;
using json = nlohmann::ordered_json;

namespace {

Problem problem_of(const json& axes) {
  Problem p;
  // the axes the gate wrote (axes_json): numbers, booleans, and the precision's name
  for (auto it = axes.begin(); it != axes.end(); ++it) {
    if (it->is_string()) {
      p.precision = parse_precision(it->get<std::string>()).value_or(Precision::fp32);
      continue;
    }
    const double v = it->is_boolean() ? (it->get<bool>() ? 1.0 : 0.0) : it->get<double>();
    set_axis(p, it.key(), v);
  }
  return p;
}

json run_point(const json& spec, BackendRunner& runner) {
  const std::string label = spec.at("label").get<std::string>();
  json r = {{"label", label}, {"status", "ok"}, {"reason", ""}};
  try {
    const Kernel& k = Registry::instance().get(spec.at("kernel").get<std::string>(), Backend::cpu);
    const Problem p = problem_of(spec.at("axes"));
    const HostInputs in = make_inputs(p, k.info().inputs, p.seed);
    runner.setup(k, p, in);
    runner.run_once_ms();  // warm-up: lazy binding, first-touch of the buffers
    const std::string trigger = "attnbench:" + label;
    CALLGRIND_START_INSTRUMENTATION;
    CALLGRIND_ZERO_STATS;
    runner.run_once_ms();
    CALLGRIND_DUMP_STATS_AT(trigger.c_str());
    CALLGRIND_STOP_INSTRUMENTATION;
    const MemoryFigures m = runner.memory();
    r["inputs_bytes"] = m.inputs_bytes;
    r["outputs_bytes"] = m.outputs_bytes;
    r["prepared_bytes"] = m.prepared_bytes;
    r["scratch_bytes"] = m.scratch_bytes;
    runner.teardown();
  } catch (const std::exception& e) {
    r["status"] = "error";
    r["reason"] = e.what();
    runner.teardown();
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string points_path, out_path;
  CLI::App app{"attnbench_work_driver: one instrumented run per point for the callgrind work gate"};
  app.add_option("POINTS", points_path, "points file: [{\"label\", \"kernel\", \"axes\"}]")->required();
  app.add_option("--out", out_path, "write each point's status and memory figures here (JSON)")->required();
  CLI11_PARSE(app, argc, argv);
  try {
    std::ifstream in(points_path);
    if (!in) throw std::runtime_error("cannot open " + points_path);
    const json points = json::parse(in);
    auto runner = make_cpu_runner();
    json out = {{"cxx_flags", ATTNBENCH_WORK_FLAGS},
                {"running_on_valgrind", RUNNING_ON_VALGRIND != 0},
                {"points", json::array()}};
    for (const auto& spec : points) out["points"].push_back(run_point(spec, *runner));
    std::ofstream o(out_path);
    o << out.dump(2) << "\n";
    if (!o) throw std::runtime_error("cannot write " + out_path);
  } catch (const std::exception& e) {
    fmt::print(stderr, "attnbench_work_driver: error: {}\n", e.what());
    return 2;
  }
  return 0;
}
