#include "commands.hpp"

#include <cstdio>
#include <filesystem>

#include <fmt/format.h>

#include "calibrate.hpp"
#include "compare.hpp"
#include "npy.hpp"
#include "sweep_spec.hpp"
#include "sysinfo.hpp"
#include "text.hpp"

namespace attnbench {

namespace {

// ---- list ------------------------------------------------------------------------------------

ojson params_json(const KernelInfo& info) {
  ojson ps = ojson::array();
  for (const auto& p : info.params) ps.push_back({{"name", p.name}, {"default", p.default_value}, {"doc", p.doc}});
  return ps;
}

ojson kernel_json(const std::string& name) {
  const Registry& reg = Registry::instance();
  const Kernel* any = reg.find(name, Backend::cpu);
  if (!any) any = reg.find(name, Backend::cuda);
  const KernelInfo& info = any->info();
  ojson backends = ojson::array(), sources = ojson::object(), files = ojson::array();
  for (Backend b : {Backend::cpu, Backend::cuda})
    if (const Kernel* k = reg.find(name, b)) {
      backends.push_back(backend_name(b));
      sources[backend_name(b)] = source_relative(k->source_file());
    }
  for (const auto& [f, layout] : eval_input_files(*any)) files.push_back({{"file", f}, {"layout", layout}});
  return {{"name", name},          {"family", info.family},
          {"summary", info.summary}, {"backends", backends},
          {"causal", info.has_causal}, {"bidirectional", info.has_bidirectional},
          {"is_vanilla", info.is_vanilla}, {"inputs", files},
          {"params", params_json(info)}, {"source_files", sources}};
}

ojson backends_json() {
  ojson be = ojson::object();
  for (Backend b : {Backend::cpu, Backend::cuda}) {
    std::string why;
    const bool ok = backend_available(b, &why);
    be[backend_name(b)] = {{"available", ok}, {"why", ok ? "" : why}};
  }
  return be;
}

std::vector<std::string> string_list(const ojson& j) {
  std::vector<std::string> v;
  for (const auto& x : j) v.push_back(x.get<std::string>());
  return v;
}

// Two lines per kernel (three with --verbose): name, family, backends and summary; forms and
// parameters; the source files.
void print_kernel(const ojson& k, bool verbose) {
  std::string forms;
  if (k["causal"].get<bool>()) forms = "causal";
  if (k["bidirectional"].get<bool>()) forms += forms.empty() ? "bidirectional" : " + bidirectional";
  std::vector<std::string> params, sources;
  for (const auto& p : k["params"])
    params.push_back(fmt::format("{}={}", p["name"].get<std::string>(), p["default"].get<double>()));
  for (auto it = k["source_files"].begin(); it != k["source_files"].end(); ++it)
    sources.push_back(fmt::format("{} ({})", it->get<std::string>(), it.key()));
  fmt::print("{:<22} {:<8} [{}] {}\n", k["name"].get<std::string>(), k["family"].get<std::string>(),
             join(string_list(k["backends"])), k["summary"].get<std::string>());
  fmt::print("{:<22} forms: {}; parameters: {}\n", "", forms, params.empty() ? "none" : join(params, " "));
  if (verbose) fmt::print("{:<22} source: {}\n", "", join(sources));
}

void print_presets_and_backends() {
  fmt::print("\npresets: {}\n", join(preset_names()));
  for (Backend b : {Backend::cpu, Backend::cuda}) {
    std::string why;
    fmt::print("backend {}: {}\n", backend_name(b),
               backend_available(b, &why) ? backend_device_name(b) : "not available (" + why + ")");
  }
}

}  // namespace

std::string source_relative(const std::string& path) {
  const std::filesystem::path p(path), root(ATTNBENCH_SOURCE_DIR);
  const std::filesystem::path rel = p.lexically_normal().lexically_relative(root.lexically_normal());
  if (rel.empty() || *rel.begin() == "..") return path;
  return rel.string();
}

ojson kernel_list_json() {
  ojson all = ojson::array();
  for (const auto& name : Registry::instance().names()) all.push_back(kernel_json(name));
  return all;
}

int run_list_command(const ListArgs& a) {
  const ojson kernels = kernel_list_json();
  if (a.json) {
    const ojson j = {{"kernels", kernels}, {"presets", preset_names()}, {"backends", backends_json()}};
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  for (const auto& k : kernels) print_kernel(k, a.verbose);
  print_presets_and_backends();
  return 0;
}

// ---- eval, calibrate, compare ----------------------------------------------------------------

int run_eval_command(EvalArgs a) {
  EvalOptions& eo = a.options;
  eo.backend = *parse_backend(a.backend);
  if (a.causal) eo.causal = true;
  if (a.bidirectional) eo.causal = false;
  for (const auto& p : a.params) eo.params.push_back(parse_param(p));
  const EvalResult r = run_eval(eo);
  std::vector<std::string> shown;
  for (const auto& ps : r.kernel->info().params) shown.push_back(ps.name);
  fmt::print("{} ({}) on {}: {:.3f} ms; rel-L2 against the float64 reference on {} rows: {:.2e}\n"
             "wrote {}: float32 {}\n",
             r.kernel->info().name, a.backend, describe(r.problem, shown), r.run_ms,
             r.reference_rows, r.reference_rel_l2, eo.output_path, npy::shape_str(r.output_shape));
  return 0;
}

int run_calibrate_command(const CalibrateArgs& a) {
  const Calibration c = calibrate(a.quick);
  const auto g = calibrate_gpu(a.quick);  // nullopt without a device
  if (a.json) {
    nlohmann::json j = to_json(c);
    if (g) j["gpu"] = to_json(*g);
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  fmt::print("{}, {} threads\n", sysinfo::cpu_model(), c.threads);
  fmt::print("sgemm ({0} x {0} x {0}):  {1:.1f} GFLOP/s all threads, {2:.1f} GFLOP/s one thread\n",
             c.sgemm_n, c.sgemm_gflops, c.sgemm_gflops_one_thread);
  fmt::print("copy bandwidth:          {:.1f} GB/s (read + write, {} per buffer)\n",
             c.bandwidth_gbs, format_bytes(double(c.copy_bytes)));
  fmt::print("machine balance:         {:.1f} FLOP per byte ({:.1f} s to calibrate)\n",
             c.bandwidth_gbs > 0 ? c.sgemm_gflops / c.bandwidth_gbs : 0.0, c.seconds);
  if (g) fmt::print("\n{}", describe(*g));
  return 0;
}

int run_compare_command(const CompareArgs& a) {
  if (!(a.alpha > 0 && a.alpha < 1)) throw InvalidProblem("--alpha must lie in (0, 1)");
  CompareOptions co;
  co.threshold = parse_fraction(a.threshold, "--threshold");
  co.alpha = a.alpha;
  const ResultsFile base = read_results(a.base_path);
  const ResultsFile next = read_results(a.new_path);
  const Comparison c = compare_results(base, next, co);
  for (const auto& w : c.environment_warnings) fmt::print(stderr, "attnbench compare: warning: {}\n", w);
  if (c.matched == 0)
    fmt::print(stderr, "attnbench compare: warning: no row of {} matches a row of {} (different "
                       "sweeps?); nothing was compared\n",
               a.new_path, a.base_path);
  fmt::print("{}", comparison_report(c, a.markdown));
  return c.regressions ? 1 : 0;
}

}  // namespace attnbench
