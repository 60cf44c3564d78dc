// Every CPU kernel of the registry, causal and bidirectional where it has the form, against a
// float64 evaluation of the same function (docs/methods.md section 5, "correctness"), on fresh
// seeded random inputs with odd sizes, guarded workspace and poisoned outputs. The test
// cases are registered from the registry at start-up, so a new kernel is tested with no
// change here.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <map>

#include "kernel_testing.hpp"

namespace attnbench::testing {
namespace {

constexpr double kMaxRelL2 = 1e-5;
const int64_t kSeqLens[] = {1, 2, 7, 64, 333, 1024};
const int64_t kHeadDims[] = {8, 16, 64};
// Beyond this many output rows the reference checks an evenly spread sample.
constexpr int64_t kFullCheckRows = 2048;
constexpr int64_t kSampleRows = 192;

void check_kernel_form(const std::string& name, bool causal) {
  const Kernel& k = Registry::instance().get(name, Backend::cpu);
  double worst = 0;
  std::string worst_at;
  uint64_t seed = 1000;
  // (batch, heads): several sequences per thread, and one sequence (row-parallel paths)
  const int64_t shapes[][2] = {{2, 3}, {1, 1}};
  for (const auto& bh : shapes)
  for (int64_t n : kSeqLens)
    for (int64_t dh : kHeadDims) {
      Problem p = problem_for(k, bh[0], bh[1], n, dh, causal);
      p.seed = ++seed;
      const HostInputs in = make_inputs(p, k.info().inputs, p.seed);
      INFO(name << " " << describe(p));
      const RunResult r = run_guarded(k, p, in);
      CHECK(r.guards_intact);
      CHECK(r.poisoned_left == 0);
      CHECK(r.non_finite == 0);
      const auto rows = sample_rows(p, kFullCheckRows >= p.sequences() * n ? kFullCheckRows
                                                                             : kSampleRows,
                                    p.sequences());
      const double err = reference_error(k, p, in, r.out, rows);
      CHECK(err < kMaxRelL2);
      if (err > worst || worst_at.empty()) {
        worst = err;
        worst_at = describe(p);
      }
    }
  std::printf("worst correctness error: %-22s %-13s %.3e at %s\n", name.c_str(),
              causal ? "causal" : "bidirectional", worst, worst_at.c_str());
}

// A kernel must refuse sizes and forms it cannot run with a one-line InvalidProblem.
void check_kernel_rejects(const std::string& name) {
  const Kernel& k = Registry::instance().get(name, Backend::cpu);
  const bool causal = k.info().has_causal;
  for (const char* field : {"batch", "heads", "seq_len", "head_dim"})
    for (double bad : {0.0, -3.0}) {
      Problem p = problem_for(k, 1, 1, 16, 8, causal);
      set_axis(p, field, bad);
      INFO(name << " " << field << "=" << bad);
      CHECK_THROWS_AS(k.validate(p), InvalidProblem);
      try {
        k.validate(p);
      } catch (const InvalidProblem& e) {
        const std::string msg = e.what();
        CHECK(msg.find(field) != std::string::npos);
        CHECK(msg.find('\n') == std::string::npos);
      }
    }
  if (!k.info().has_causal)
    CHECK_THROWS_WITH(k.validate(problem_for(k, 1, 1, 16, 8, true)),
                      Catch::Contains("no causal form"));
  if (!k.info().has_bidirectional)
    CHECK_THROWS_WITH(k.validate(problem_for(k, 1, 1, 16, 8, false)),
                      Catch::Contains("no bidirectional form"));
  // every declared parameter: below its range, above it, missing, and (integers) fractional
  for (const ParamSpec& ps : k.info().params) {
    INFO(name << " parameter " << ps.name);
    const Problem good = problem_for(k, 1, 1, 16, 8, causal);
    std::vector<Problem> bad(3, good);
    bad[0].set_param(ps.name, ps.min_value - 1);
    bad[1].set_param(ps.name, ps.max_value + 1);
    bad[2].params.erase(ps.name);
    if (ps.kind != ParamKind::real) bad.push_back(Problem(good).set_param(ps.name, ps.min_value + 0.5));
    for (const Problem& p : bad)
      CHECK_THROWS_WITH(k.validate(p), Catch::Contains(ps.name) && Catch::Contains(name));
  }
  // precisions it does not declare are refused with their name (the harness skips them)
  for (Precision pr : kAllPrecisions) {
    Problem p = problem_for(k, 1, 1, 16, 8, causal);
    p.precision = pr;
    if (k.info().supports(pr))
      CHECK_NOTHROW(k.validate(p));
    else
      CHECK_THROWS_WITH(k.validate(p), Catch::Contains(std::string("no ") + precision_name(pr)));
  }
  if (k.info().inputs & kInputCodes) {
    Problem p = problem_for(k, 1, 2, 16, 8, causal);
    for (int32_t bad : {-1, int32_t(p.int_param("codewords"))}) {
      HostInputs in = make_inputs(p, k.info().inputs, 7);
      in.codes[in.codes.size() / 2] = bad;
      CHECK_THROWS_WITH(k.validate_inputs(p, in.view()), Catch::Contains("outside [0, W="));
    }
  }
}

// Registers one Catch2 test case per (kernel, form) from the registry at start-up.
struct Invoker : Catch::ITestInvoker {
  std::string kernel;
  int what;  // 0 causal, 1 bidirectional, 2 rejects
  Invoker(std::string k, int w) : kernel(std::move(k)), what(w) {}
  void invoke() const override {
    if (what == 2)
      check_kernel_rejects(kernel);
    else
      check_kernel_form(kernel, what == 0);
  }
};

struct RegisterAll {
  std::deque<std::string> names;  // Catch keeps StringRefs: the strings must outlive it
  RegisterAll() {
    for (const Kernel* k : Registry::instance().kernels()) {
      if (k->info().backend != Backend::cpu) continue;
      const std::string& n = k->info().name;
      auto add = [&](int what, const std::string& title) {
        names.push_back(title);
        Catch::AutoReg(new Invoker(n, what), CATCH_INTERNAL_LINEINFO, "",
                       Catch::NameAndTags{names.back(), "[kernels][cpu]"});
      };
      if (k->info().has_causal) add(0, "kernel " + n + " cpu matches float64 (causal)");
      if (k->info().has_bidirectional)
        add(1, "kernel " + n + " cpu matches float64 (bidirectional)");
      add(2, "kernel " + n + " cpu rejects invalid problems");
    }
  }
};
const RegisterAll register_all;

}  // namespace

TEST_CASE("the registry lists the foundation kernels on the cpu backend", "[registry]") {
  for (const char* n :
       {"vanilla_materialized", "vanilla_flash", "lisa_base", "lisa_soft", "lisa_mini"})
    CHECK(Registry::instance().find(n, Backend::cpu) != nullptr);
  CHECK_THROWS_WITH(Registry::instance().get("no_such_kernel", Backend::cpu),
                    Catch::Contains("unknown kernel 'no_such_kernel'"));
}

TEST_CASE("axes are set and read by name, other names are method parameters", "[problem]") {
  Problem p;
  set_axis(p, "codewords", 32);
  CHECK(p.int_param("codewords") == 32);
  CHECK(get_axis(p, "codewords") == 32);
  set_axis(p, "causal", 0);
  CHECK_FALSE(p.causal);
  set_axis(p, "precision", 2);
  CHECK(p.precision == Precision::bf16);
  CHECK_THROWS_WITH(get_axis(p, "colour"), Catch::Contains("does not set the parameter 'colour'"));
  CHECK_THROWS_AS(set_axis(p, "seq_len", 1.5), InvalidProblem);
  CHECK_THROWS_AS(set_axis(p, "causal", 2), InvalidProblem);
  CHECK_THROWS_AS(set_axis(p, "precision", 4), InvalidProblem);
  CHECK_THROWS_AS(set_axis(p, "seed", -1), InvalidProblem);
}

TEST_CASE("every kernel's workspace query is deterministic and its flops positive",
          "[registry]") {
  for (const Kernel* k : Registry::instance().kernels()) {
    Problem p = problem_for(*k, 2, 2, 100, 16, k->info().has_causal);
    INFO(k->info().name);
    CHECK(k->workspace(p).total() == k->workspace(p).total());
    CHECK(k->flops(p) > 0);
    CHECK(k->min_bytes(p) > 0);
  }
}

}  // namespace attnbench::testing
