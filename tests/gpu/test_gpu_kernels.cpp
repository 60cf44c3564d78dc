// Every CUDA kernel of the registry, causal and bidirectional where it has the form, run through
// the cuda runner (harness/backend_cuda.cpp) and compared with (1) its float64 reference and
// (2) its CPU twin on the same seeded inputs, on odd sizes (N in {1, 7, 64, 333, 1000}, dh in
// {8, 33, 64}, b = 2, h = 3) plus per-family cases that reach the kernels' other paths (flash
// tiles for large dh, local_window bands, LISA projections, decay, several slabs and groups,
// Performer's feature count, many heads; efficient_attention on keys of a wide spread;
// Reformer's bucket sizes and rounds, Sinkhorn's block sizes, LSAN's widths, and their slabs
// of sorted slots or blocks). Also:
// every output element written (the runner poisons the output), two runs bitwise equal (no
// dependence on leftover scratch), and the pool's measured peak covering the declared memory.
// Every precision a CUDA kernel declares beyond fp32 (tf32, bf16, fp16: the vanilla GEMM
// pipelines) is checked against float64 within correctness_tolerance(precision, N) and against
// the independent host computation of tests/precision_reference.hpp.
// Runs only where a CUDA device is present (tests/gpu/gpu_main.cpp exits 77 otherwise).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "../kernel_testing.hpp"
#include "../precision_reference.hpp"
#include "backend.hpp"

namespace attnbench::testing {
namespace {

constexpr double kMaxRelL2 = 1e-5;
const int64_t kSeqLens[] = {1, 7, 64, 333, 1000};
const int64_t kHeadDims[] = {8, 33, 64};
constexpr int64_t kFullCheckRows = 2048;
constexpr int64_t kSampleRows = 160;

// The outputs of two runs of the point set up in `runner`, the second after a cache flush
// (a kernel must give the same bits again, whatever its first run left behind).
struct TwoRuns {
  std::vector<float> first, again;
};
TwoRuns run_twice(BackendRunner& runner) {
  TwoRuns r;
  runner.run_once_ms();
  r.first = runner.output();
  runner.flush_cache();
  runner.run_once_ms();
  r.again = runner.output();
  return r;
}

std::string param_string(const Kernel& k, const Problem& p) {
  std::vector<std::string> names;
  for (const auto& ps : k.info().params) names.push_back(ps.name);
  return describe(p, names);
}

struct Worst {
  double ref = 0, cpu = 0;
  std::string ref_at, cpu_at;
};

// `tweak` (optional) edits the seeded inputs first; `label` names it in the report.
void check_point(BackendRunner& runner, const Kernel& k, const Problem& p, Worst& worst,
                 const std::function<void(HostInputs&)>& tweak = {}, const char* label = "") {
  const std::string where = param_string(k, p) + label;
  INFO(k.info().name << " (cuda) " << where);
  HostInputs in = make_inputs(p, k.info().inputs, p.seed);
  if (tweak) tweak(in);
  runner.setup(k, p, in);
  const TwoRuns runs = run_twice(runner);
  const std::vector<float>& out = runs.first;
  const std::vector<float>& again = runs.again;
  const MemoryFigures mem = runner.memory();
  const size_t measured = runner.measured_peak_bytes();
  runner.teardown();

  size_t poisoned = 0, non_finite = 0, differ = 0;
  for (size_t x = 0; x < out.size(); ++x) {
    if (is_poison(out[x]))
      ++poisoned;
    else if (!std::isfinite(out[x]))
      ++non_finite;
    if (std::memcmp(&out[x], &again[x], sizeof(float)) != 0) ++differ;
  }
  CHECK(poisoned == 0);
  CHECK(non_finite == 0);
  CHECK(differ == 0);  // a second run is bitwise the same

  // The pool counts at least what the runner declares; pool allocations may be rounded up.
  INFO("declared peak " << mem.peak_bytes() << " B, pool high-water " << measured << " B");
  CHECK(measured >= mem.peak_bytes());
  CHECK(double(measured) <= double(mem.peak_bytes()) * 1.01 + double(16 << 20));

  const Kernel& twin = Registry::instance().get(k.info().name, Backend::cpu);
  const RunResult cpu = run_guarded(twin, p, in);
  REQUIRE(cpu.poisoned_left == 0);
  const double err_cpu = rel_l2(out, cpu.out);
  const int64_t n_rows = p.sequences() * p.seq_len;
  const auto rows = sample_rows(p, n_rows <= kFullCheckRows ? kFullCheckRows : kSampleRows,
                                n_rows <= kFullCheckRows ? p.sequences() : 4);
  const double err_ref = reference_error(k, p, in, out, rows);
  INFO("rel-L2 vs float64 " << err_ref << ", vs cpu twin " << err_cpu);
  CHECK(err_ref < kMaxRelL2);
  CHECK(err_cpu < kMaxRelL2);
  if (err_ref >= worst.ref) {
    worst.ref = err_ref;
    worst.ref_at = where;
  }
  if (err_cpu >= worst.cpu) {
    worst.cpu = err_cpu;
    worst.cpu_at = where;
  }
}

// Cases beyond the common grid that reach each family's other code paths.
std::vector<Problem> extra_problems(const Kernel& k, bool causal) {
  std::vector<Problem> v;
  const std::string& name = k.info().name;
  // many heads and sequences, tiny N: grid-stride loops, group boundaries
  v.push_back(problem_for(k, 64, 4, 7, 8, causal));
  v.push_back(problem_for(k, 1, 1, 1000, 64, causal));
  if (name == "vanilla_flash" || name == "vanilla_materialized" || name == "vanilla_eager" ||
      name == "local_window")
    for (int64_t dh : {1, 7, 128, 200, 1000})  // flash: bm < 64, several dh chunks
      for (int64_t n : {65, 130}) v.push_back(problem_for(k, 1, 2, n, dh, causal));
  if (name == "local_window")
    for (int64_t window : {1, 3, 100, 5000}) {  // band narrower than a tile, wider than N
      Problem p = problem_for(k, 2, 2, 333, 33, causal);
      p.set_param("window", window);
      v.push_back(p);
    }
  if (name == "performer") {
    Problem p = problem_for(k, 2, 2, 300, 16, causal);
    p.set_param("features", 100);
    v.push_back(p);
  }
  if (k.info().family == "linear") {
    v.push_back(problem_for(k, 1, 2, 20000, 64, causal));  // several slabs per sequence
    v.push_back(problem_for(k, 3, 16, 100, 8, causal));    // hydra: a wide width, many heads
  }
  if (name == "lsan_twin")  // the flash block's other tiles, wide convolutions
    for (int64_t dh : {1, 128, 200})
      for (int64_t width : {1, 7, 50}) {
        Problem p = problem_for(k, 1, 2, 130, dh, causal);
        set_axis(p, "conv_width", double(width));
        v.push_back(p);
      }
  if (name == "reformer_lsh") {
    const std::pair<int64_t, int64_t> forms[] = {{1, 2}, {13, 3}, {1000, 2}};  // bucket, rounds
    for (const auto& [bucket, rounds] : forms) {
      Problem p = problem_for(k, 2, 2, 333, 33, causal);
      set_axis(p, "bucket_size", double(bucket));
      set_axis(p, "n_hashes", double(rounds));
      v.push_back(p);
    }
  }
  if (name == "sinkhorn")
    for (int64_t block : {1, 7, 100, 5000}) {  // 5000: one block, vanilla attention
      Problem p = problem_for(k, 2, 2, 333, 33, causal);
      set_axis(p, "block", double(block));
      v.push_back(p);
    }
  if (name == "reformer_lsh" || name == "sinkhorn")  // several slabs of the 16 MiB budget
    v.push_back(problem_for(k, 1, 2, 20000, 64, causal));
  if (k.info().family == "lisa") {
    Problem proj = problem_for(k, 2, 2, 333, 64, causal);
    proj.set_param("projections", true);
    v.push_back(proj);
    if (causal) {
      Problem decay = problem_for(k, 2, 2, 1000, 16, causal);
      decay.set_param("decay", 0.1);
      v.push_back(decay);
    }
    // several causal slabs per sequence (the histogram carried between them): B*W = 2048
    Problem slabs = problem_for(k, 1, 3, 3000, 16, causal);
    slabs.set_param("codewords", 256);
    if (causal) slabs.set_param("decay", 0.01);
    v.push_back(slabs);
    // several bidirectional groups (crossing batch elements): W = 128, many sequences
    Problem groups = problem_for(k, 4, 8, 64, 64, causal);
    groups.set_param("codewords", 128);
    v.push_back(groups);
  }
  return v;
}

// efficient_attention's running column max on keys of a wide spread: column 0 ramps with
// position to ~200, the last column falls to ~-150, and some positions jump ~100 above the
// rest in every third column (tests/test_cuda_tiling.cpp runs the same on the CPU emulation).
void efficient_spread_keys(const Problem& p, HostInputs& in) {
  const int64_t N = p.seq_len, dh = p.head_dim;
  for (int64_t s = 0; s < p.sequences(); ++s)
    for (int64_t i = 0; i < N; ++i) {
      float* k = in.k.data() + (s * N + i) * dh;
      const float t = N > 1 ? float(i) / float(N - 1) : 0.0f;
      k[0] += 200.0f * t;
      if (dh > 1) k[dh - 1] -= 150.0f * t;
      if (i % 97 == 10 || i % 64 == 40)
        for (int64_t c = 1; c + 1 < dh; c += 3) k[c] += 100.0f + float(c);
    }
}

void check_kernel_form(const std::string& name, bool causal) {
  const Kernel& k = Registry::instance().get(name, Backend::cuda);
  auto runner = make_cuda_runner();
  Worst worst;
  uint64_t seed = 5000;
  std::vector<Problem> problems;
  for (int64_t n : kSeqLens)
    for (int64_t dh : kHeadDims) problems.push_back(problem_for(k, 2, 3, n, dh, causal));
  for (const Problem& p : extra_problems(k, causal)) problems.push_back(p);
  for (Problem& p : problems) {
    p.seed = ++seed;
    check_point(*runner, k, p, worst);
  }
  if (name == "efficient_attention") {
    std::vector<Problem> spread = {problem_for(k, 2, 3, 333, 8, causal),
                                   problem_for(k, 1, 2, 1000, 33, causal),
                                   problem_for(k, 1, 1, 20000, 64, causal)};  // several slabs
    for (Problem& p : spread) {
      p.seed = ++seed;
      check_point(*runner, k, p, worst, [&](HostInputs& in) { efficient_spread_keys(p, in); },
                  " spread keys");
      check_point(*runner, k, p, worst, [](HostInputs& in) {
        for (float& x : in.k) x *= 30.0f;
      }, " keys x30");
    }
  }
  std::printf("cuda %-22s %-13s worst rel-L2 vs float64 %.3e (%s), vs cpu %.3e (%s)\n",
              name.c_str(), causal ? "causal" : "bidirectional", worst.ref, worst.ref_at.c_str(),
              worst.cpu, worst.cpu_at.c_str());
}

// ---- precisions beyond fp32 --------------------------------------------------------------

struct PrecisionWorst {
  double ref = 0, agree = 0;
  std::string ref_at, agree_at;
};

// One point at a low precision: written, finite, repeatable; within the precision's tolerance
// of float64, and within one unit roundoff of the independent host computation (looser than the
// CPU emulation's fifth: tensor cores accumulate in their own order, and the hardware's TF32
// conversion of the probabilities may round differently from round-to-nearest-even).
void check_precision_point(BackendRunner& runner, const Kernel& k, const Problem& p,
                           PrecisionWorst& worst) {
  const std::string where = param_string(k, p);
  INFO(k.info().name << " (cuda) " << where);
  const HostInputs in = make_inputs(p, k.info().inputs, p.seed);
  runner.setup(k, p, in);
  const TwoRuns runs = run_twice(runner);
  const std::vector<float>& out = runs.first;
  const std::vector<float>& again = runs.again;
  CHECK(runner.measured_peak_bytes() >= runner.memory().peak_bytes());
  runner.teardown();
  size_t bad = 0;
  for (float x : out) bad += is_poison(x) || !std::isfinite(x);
  CHECK(bad == 0);
  CHECK(std::memcmp(out.data(), again.data(), out.size() * sizeof(float)) == 0);
  const int64_t n_rows = p.sequences() * p.seq_len;
  const auto rows = sample_rows(p, n_rows <= kFullCheckRows ? kFullCheckRows : kSampleRows,
                                n_rows <= kFullCheckRows ? p.sequences() : 4);
  const double err_ref = reference_error(k, p, in, out, rows);
  const double err_agree = rel_l2(out, vanilla_at_precision(p, in, true).out);
  INFO("rel-L2 vs float64 " << err_ref << " (tolerance "
                            << correctness_tolerance(p.precision, p.seq_len)
                            << "), vs the independent host computation " << err_agree);
  CHECK(err_ref < correctness_tolerance(p.precision, p.seq_len));
  CHECK(err_agree < unit_roundoff(p.precision));
  if (err_ref >= worst.ref) worst = {err_ref, worst.agree, where, worst.agree_at};
  if (err_agree >= worst.agree) worst = {worst.ref, err_agree, worst.ref_at, where};
}

void check_kernel_precision(const std::string& name, Precision pr) {
  const Kernel& k = Registry::instance().get(name, Backend::cuda);
  REQUIRE(k.info().is_vanilla);  // the independent computation is vanilla attention
  auto runner = make_cuda_runner();
  PrecisionWorst worst;
  uint64_t seed = 7000;
  for (bool causal : {true, false}) {
    if (causal ? !k.info().has_causal : !k.info().has_bidirectional) continue;
    // the common grid up to N = 333 (the host computation is O(N^2 dh) per sequence), then
    // longer rows on fewer sequences, and wide heads
    std::vector<Problem> problems;
    for (int64_t n : {1, 7, 64, 333})
      for (int64_t dh : kHeadDims) problems.push_back(problem_for(k, 2, 3, n, dh, causal));
    problems.push_back(problem_for(k, 1, 2, 1000, 64, causal));
    problems.push_back(problem_for(k, 1, 1, 2048, 64, causal));
    problems.push_back(problem_for(k, 1, 2, 130, 128, causal));
    for (Problem& p : problems) {
      p.precision = pr;
      p.seed = ++seed;
      check_precision_point(*runner, k, p, worst);
    }
  }
  std::printf("cuda %-22s %-13s worst rel-L2 vs float64 %.3e (%s), vs independent %.3e (%s)\n",
              name.c_str(), precision_name(pr), worst.ref, worst.ref_at.c_str(), worst.agree,
              worst.agree_at.c_str());
}

struct PrecisionInvoker : Catch::ITestInvoker {
  std::string kernel;
  Precision precision;
  PrecisionInvoker(std::string k, Precision p) : kernel(std::move(k)), precision(p) {}
  void invoke() const override { check_kernel_precision(kernel, precision); }
};

struct Invoker : Catch::ITestInvoker {
  std::string kernel;
  bool causal;
  Invoker(std::string k, bool c) : kernel(std::move(k)), causal(c) {}
  void invoke() const override { check_kernel_form(kernel, causal); }
};

// One test case per (cuda kernel, form), registered from the registry at start-up.
struct RegisterAll {
  std::deque<std::string> names;  // Catch keeps StringRefs: the strings must outlive it
  RegisterAll() {
    for (const Kernel* k : Registry::instance().kernels()) {
      if (k->info().backend != Backend::cuda) continue;
      const std::string& n = k->info().name;
      for (bool causal : {true, false}) {
        if (causal ? !k->info().has_causal : !k->info().has_bidirectional) continue;
        names.push_back("kernel " + n + " cuda matches float64 and its cpu twin (" +
                        (causal ? "causal" : "bidirectional") + ")");
        Catch::AutoReg(new Invoker(n, causal), CATCH_INTERNAL_LINEINFO, "",
                       Catch::NameAndTags{names.back(), "[gpu][kernels]"});
      }
      for (Precision pr : kAllPrecisions) {
        if (pr == Precision::fp32 || !k->info().supports(pr)) continue;
        names.push_back("kernel " + n + " cuda at " + precision_name(pr) +
                        " matches float64 within its tolerance and the host computation");
        Catch::AutoReg(new PrecisionInvoker(n, pr), CATCH_INTERNAL_LINEINFO, "",
                       Catch::NameAndTags{names.back(), "[gpu][kernels][precision]"});
      }
    }
  }
};
const RegisterAll register_all;

}  // namespace
}  // namespace attnbench::testing
