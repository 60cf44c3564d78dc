// attnbench_bench: Google Benchmark over the kernel registry (docs/measurement.md section 8).
//
// One registration per kernel and backend (cuda only when a device is there), the product of
// the axes below, and a name that is the reproduction string of the point:
//   BM_attn/lisa_base/cpu/seq_len:1024/batch:1/heads:1/head_dim:64/causal:1/codewords:128
// (codewords only for kernels that read it; causal:0 only for kernels with a bidirectional
// form). Every point runs through the harness's backend runner (harness/backend.hpp), so the
// memory is the harness's and the output is checked once against float64 before it is timed.
//
// Reported per benchmark:
//   time           wall time per kernel run (cpu: real time; cuda: CUDA events, manual time)
//   FLOP/s         kernel.flops(p) per run, as a rate
//   bytes_per_second  kernel.min_bytes(p) per run (inputs + output), as a rate
//   peak_bytes, workspace_bytes  the exact figures of the workspace query
//   rel_l2_vs_f64  correctness against the float64 reference (label: verified / FAILED)
//   max_bytes_used (memory manager)  the runner's measured peak: the whole-heap high-water mark
//                  on cpu (the malloc interposer is linked in), the memory pool's on cuda
//
// Run:
//   build/attnbench_bench                                  # the default, CI-sized set
//   build/attnbench_bench --benchmark_filter='BM_attn/lisa_.*/cpu/.*' --seq-len 4096,16384
//   build/attnbench_bench --kernels lisa_base,vanilla_flash --codewords 16,128
//       --benchmark_out=bench.json --benchmark_out_format=json   (one command line)
// Options of this program (after Google Benchmark's own --benchmark_* flags):
//   --kernels a,b  --backend cpu|cuda|all  --seq-len 256,1024  --batch 1  --heads 1
//   --head-dim 64  --causal both|causal|bidirectional  --codewords W,...  --threads T
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <omp.h>

#include "attnbench/kernel.hpp"
#include "backend.hpp"
#include "compare.hpp"
#include "heap.hpp"
#include "inputs.hpp"
#include "results.hpp"
#include "sweep.hpp"

using namespace attnbench;

namespace {

struct Axes {
  std::vector<std::string> kernels;           // empty = every kernel
  std::string backend = "all";
  std::vector<int64_t> seq_len = {256, 1024};
  std::vector<int64_t> batch = {1};
  std::vector<int64_t> heads = {1};
  std::vector<int64_t> head_dim = {64};
  std::string causal = "both";
  std::vector<int64_t> codewords;             // empty = each kernel's default W
  int threads = 0;
};

// The runner's measured peak of the last benchmark run, for the memory manager's Stop.
int64_t g_last_peak_bytes = -1;

// Google Benchmark 1.7 (Debian) calls the pure virtual Stop(Result*); 1.8 and later replaced
// it with Stop(Result&). The base below overrides whichever the installed version has.
template <class M>
concept PointerStop = requires(M& m, typename M::Result* r) { m.Stop(r); };

template <class M, bool = PointerStop<M>>
class MemoryManagerStop : public M {
 public:
  using M::Stop;
  void Stop(typename M::Result* result) override { fill(*result); }
  virtual void fill(typename M::Result& result) = 0;
};
template <class M>
class MemoryManagerStop<M, false> : public M {
 public:
  void Stop(typename M::Result& result) override { fill(result); }
  virtual void fill(typename M::Result& result) = 0;
};

class RunnerPeakMemoryManager : public MemoryManagerStop<benchmark::MemoryManager> {
 public:
  void Start() override {
    g_last_peak_bytes = -1;
    live_at_start_ = heap::heap_live_bytes();
  }
  void fill(Result& result) override {
    // the runner resets its high-water mark when a point is set up, so its figure covers the
    // point's buffers and whatever the kernel or BLAS allocated while it ran
    result.max_bytes_used = g_last_peak_bytes >= 0 ? g_last_peak_bytes : 0;
    result.net_heap_growth = heap::heap_live_bytes() - live_at_start_;
    // heap.hpp counts bytes, not allocations: num_allocs stays 0 (not measured)
  }

 private:
  int64_t live_at_start_ = 0;
};

BackendRunner& runner_for(Backend b) {
  static std::map<Backend, std::unique_ptr<BackendRunner>> runners;
  auto& r = runners[b];
  if (!r) r = make_runner(b);
  return *r;
}

// Inputs of the last point (Google Benchmark calls a benchmark several times per point).
const HostInputs& inputs_for(const Kernel& k, const Problem& p, const std::string& key) {
  static std::string cached_key;
  static HostInputs cached;
  if (key != cached_key) {
    cached = HostInputs{};
    cached = make_inputs(p, k.info().inputs, p.seed);
    cached_key = key;
  }
  return cached;
}

Problem problem_of(const Kernel& k, const benchmark::State& st, bool reads_codewords) {
  Problem p = with_defaults(k, default_shape());
  p.seq_len = st.range(0);
  p.batch = st.range(1);
  p.heads = st.range(2);
  p.head_dim = st.range(3);
  p.causal = st.range(4) != 0;
  if (reads_codewords) p.set_param("codewords", double(st.range(5)));
  return p;
}

void bm_attention(benchmark::State& st, const Kernel* k, bool reads_codewords) {
  const Problem p = problem_of(*k, st, reads_codewords);
  const std::string key = point_key(k->info().name, k->info().backend, p);
  BackendRunner& runner = runner_for(k->info().backend);
  try {
    k->validate(p);
    runner.setup(*k, p, inputs_for(*k, p, key));
  } catch (const std::exception& e) {
    st.SkipWithError(e.what());
    return;
  }

  // no number without a verification: one run checked against float64, once per point
  static std::map<std::string, double> verified;
  auto v = verified.find(key);
  if (v == verified.end()) {
    try {
      runner.run_once_ms();
      const Accuracy acc = check_accuracy(*k, p, inputs_for(*k, p, key), runner.output());
      v = verified.emplace(key, acc.correctness_rel_l2.value_or(std::nan(""))).first;
    } catch (const std::exception& e) {
      runner.teardown();
      st.SkipWithError(e.what());
      return;
    }
  }
  const bool cuda = k->info().backend == Backend::cuda;
  for (auto _ : st) {
    if (cuda) {
      runner.flush_cache();
      st.SetIterationTime(runner.run_once_ms() * 1e-3);
    } else {
      runner.run_once_ms();
    }
  }
  const MemoryFigures m = runner.memory();
  st.counters["FLOP/s"] = benchmark::Counter(k->flops(p), benchmark::Counter::kIsIterationInvariantRate);
  st.SetBytesProcessed(int64_t(double(st.iterations()) * k->min_bytes(p)));
  st.counters["peak_bytes"] = benchmark::Counter(double(m.peak_bytes()));
  st.counters["workspace_bytes"] = benchmark::Counter(double(m.workspace_bytes()));
  st.counters["rel_l2_vs_f64"] = benchmark::Counter(v->second);
  st.SetLabel(v->second <= kCorrectnessTolerance ? "verified" : "FAILED verification against float64");
  g_last_peak_bytes = int64_t(runner.measured_peak_bytes());
  runner.teardown();
}

void register_all(const Axes& a) {
  std::vector<Backend> backends = resolve_backends({a.backend});
  for (const Kernel* k : Registry::instance().kernels()) {
    const KernelInfo& info = k->info();
    if (std::find(backends.begin(), backends.end(), info.backend) == backends.end()) continue;
    if (!a.kernels.empty() && std::find(a.kernels.begin(), a.kernels.end(), info.name) == a.kernels.end())
      continue;
    std::vector<int64_t> causal;
    if (a.causal != "bidirectional" && info.has_causal) causal.push_back(1);
    if (a.causal != "causal" && info.has_bidirectional) causal.push_back(0);
    if (causal.empty()) continue;
    bool reads_codewords = false;
    double default_w = 0;
    for (const auto& ps : info.params)
      if (ps.name == "codewords") {
        reads_codewords = true;
        default_w = ps.default_value;
      }
    std::vector<std::vector<int64_t>> product = {a.seq_len, a.batch, a.heads, a.head_dim, causal};
    std::vector<std::string> names = {"seq_len", "batch", "heads", "head_dim", "causal"};
    if (reads_codewords) {
      product.push_back(a.codewords.empty() ? std::vector<int64_t>{int64_t(default_w)} : a.codewords);
      names.push_back("codewords");
    }
    const std::string name = fmt::format("BM_attn/{}/{}", info.name, backend_name(info.backend));
    auto* b = benchmark::RegisterBenchmark(name.c_str(), bm_attention, k, reads_codewords);
    b->ArgsProduct(product)->ArgNames(names)->Unit(benchmark::kMillisecond);
    if (info.backend == Backend::cuda)
      b->UseManualTime();
    else
      b->UseRealTime();  // the kernels run on every OpenMP thread: wall time, not CPU time
  }
}

CLI::App* g_app = nullptr;
void print_help() {
  benchmark::PrintDefaultHelp();
  if (g_app) fmt::print("\n{}", g_app->help());
}

}  // namespace

int main(int argc, char** argv) {
  heap::install_interposer();
  Axes a;
  CLI::App app{"attnbench_bench options (the axes of the registered benchmarks)", "attnbench_bench"};
  g_app = &app;
  app.add_option("--kernels", a.kernels, "kernels, comma-separated (default: every kernel)")->delimiter(',');
  app.add_option("--backend", a.backend, "cpu, cuda or all available (default all)")
      ->check(CLI::IsMember({"cpu", "cuda", "all"}));
  app.add_option("--seq-len", a.seq_len, "sequence lengths (default 256,1024)")->delimiter(',');
  app.add_option("--batch", a.batch, "batch sizes (default 1)")->delimiter(',');
  app.add_option("--heads", a.heads, "head counts (default 1)")->delimiter(',');
  app.add_option("--head-dim", a.head_dim, "head dimensions (default 64)")->delimiter(',');
  app.add_option("--causal", a.causal, "both, causal or bidirectional (default both)")
      ->check(CLI::IsMember({"both", "causal", "bidirectional"}));
  app.add_option("--codewords", a.codewords, "W for kernels that read it (default: the kernel's)")
      ->delimiter(',');
  app.add_option("--threads", a.threads, "cpu threads (default: OMP_NUM_THREADS or every core)");

  benchmark::Initialize(&argc, argv, print_help);  // takes the --benchmark_* flags out of argv
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (a.threads > 0) omp_set_num_threads(a.threads);
    for (const auto& n : a.kernels) Registry::instance().get(n, Backend::cpu);  // unknown -> error
    register_all(a);
  } catch (const std::exception& e) {
    fmt::print(stderr, "attnbench_bench: error: {}\n", e.what());
    return 2;
  }
  RunnerPeakMemoryManager mm;
  benchmark::RegisterMemoryManager(&mm);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::RegisterMemoryManager(nullptr);
  benchmark::Shutdown();
  return 0;
}
