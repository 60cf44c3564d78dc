// LISA's defining properties (docs/methods.md section 2), beyond the generic float64 check:
// the per-codebook vanilla identity, the shared weight formula's stable fallback, decay as a
// recurrence, LISA-Soft with one-hot assignments, LISA-Mini as Base under another name.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "attnbench/math/lisa.hpp"
#include "kernel_testing.hpp"

namespace attnbench::testing {
namespace {

const Kernel& cpu_kernel(const char* name) {
  return Registry::instance().get(name, Backend::cpu);
}

Problem lisa_problem(int64_t batch, int64_t heads, int64_t n, int64_t dh, bool causal,
                     int64_t B, int64_t W, bool projections) {
  Problem p;
  p.batch = batch;
  p.heads = heads;
  p.seq_len = n;
  p.head_dim = dh;
  p.causal = causal;
  p.set_param("codebooks", B);
  p.set_param("codewords", W);
  p.set_param("projections", projections);
  p.set_param("decay", 0);
  return p;
}

// Sum over codebooks of float64 vanilla attention with q_i = Cq[b][c_ib], k_j = Ck[b][c_jb],
// v_j = Cv[b][c_jb], scale 1/sqrt(dh): what LISA must equal exactly.
std::vector<double> per_codebook_vanilla(const Problem& p, const HostInputs& in) {
  const int64_t H = p.heads, B = p.int_param("codebooks"), W = p.int_param("codewords"), dh = p.head_dim, N = p.seq_len;
  const LisaTablesF64 t = lisa_tables_f64(p, in.view());
  const auto rows = sample_rows(p, p.sequences() * N);
  std::vector<double> total(rows.size() * size_t(dh), 0.0), part(total.size());
  const size_t n = size_t(p.sequences() * N * dh);
  std::vector<double> q(n), k(n), v(n);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t s = 0; s < p.sequences(); ++s)
      for (int64_t i = 0; i < N; ++i) {
        const int64_t code = in.codes[size_t((s * N + i) * B + b)];
        const int64_t off = (((s % H) * B + b) * W + code) * dh;
        for (int64_t c = 0; c < dh; ++c) {
          const size_t o = size_t((s * N + i) * dh + c);
          q[o] = t.cq[size_t(off + c)];
          k[o] = t.ck[size_t(off + c)];
          v[o] = t.cv[size_t(off + c)];
        }
      }
    vanilla_reference_rows_f64(p, q.data(), k.data(), v.data(), 1.0 / std::sqrt(double(dh)),
                               rows, part.data());
    for (size_t x = 0; x < total.size(); ++x) total[x] += part[x];
  }
  return total;
}

}  // namespace

TEST_CASE("LISA equals the sum over codebooks of vanilla attention", "[lisa]") {
  const bool causal = GENERATE(true, false);
  const bool projections = GENERATE(false, true);
  const int64_t n = GENERATE(1, 7, 77, 300);
  Problem p = lisa_problem(2, 2, n, 16, causal, 3, 8, projections);
  p.seed = uint64_t(40 + n);
  const Kernel& k = cpu_kernel("lisa_base");
  const HostInputs in = make_inputs(p, k.info().inputs, p.seed);
  const RunResult r = run_guarded(k, p, in);
  REQUIRE(r.poisoned_left == 0);
  const auto want = per_codebook_vanilla(p, in);
  const auto rows = sample_rows(p, p.sequences() * n);
  const double err = rel_l2_rows(p, r.out.data(), rows, want.data());
  INFO(describe(p, {"projections"}) << " identity error " << err);
  CHECK(err < 1e-5);
}

TEST_CASE("LISA differs from vanilla on the summed embeddings (its approximation)", "[lisa]") {
  // Not a bug: cross-codebook terms are dropped and each codebook is normalised alone.
  Problem p = lisa_problem(1, 1, 200, 32, true, 4, 16, false);
  const Kernel& k = cpu_kernel("lisa_base");
  const HostInputs in = make_inputs(p, k.info().inputs, 5);
  const RunResult r = run_guarded(k, p, in);
  const QKV e = lisa_equivalent_qkv(p, in.view(), false);
  const auto rows = sample_rows(p, 200);
  std::vector<double> want(rows.size() * 32);
  vanilla_reference_rows(p, e.q.data(), e.k.data(), e.v.data(), 1.0 / std::sqrt(32.0), rows,
                         want.data());
  const double approx = rel_l2_rows(p, r.out.data(), rows, want.data());
  CHECK(std::isfinite(approx));
  CHECK(approx > 1e-3);
}

TEST_CASE("lisa_weights matches float64 and falls back when the table sum underflows",
          "[lisa][math]") {
  constexpr int W = 5;
  const float hist[W] = {0.f, 3.f, 1.f, 0.f, 2.f};
  SECTION("ordinary logits through the precomputed table") {
    const float t[W] = {0.5f, -0.25f, 1.5f, 2.0f, 0.f};
    float e[W], a[W];
    for (int w = 0; w < W; ++w) e[w] = std::exp(t[w] - 2.0f);
    math::lisa_weights(e, t, hist, W, a);
    double z = 0;
    for (int w = 0; w < W; ++w) z += hist[w] * std::exp(double(t[w]));
    for (int w = 0; w < W; ++w)
      CHECK(a[w] == Approx(hist[w] * std::exp(double(t[w])) / z).epsilon(1e-6).margin(1e-12));
  }
  SECTION("logits far below the row max: the exact stable form") {
    // the row max (w = 0) has no mass; the others sit ~300 below it, so E underflows to 0
    const float t[W] = {300.f, 0.5f, -1.0f, 299.f, 0.f};
    float e[W], a[W];
    for (int w = 0; w < W; ++w) e[w] = std::exp(t[w] - 300.f);
    math::lisa_weights(e, t, hist, W, a);
    double z = 0;
    for (int w = 0; w < W; ++w) z += hist[w] > 0 ? hist[w] * std::exp(double(t[w]) - 0.5) : 0;
    for (int w = 0; w < W; ++w) {
      const double want = hist[w] > 0 ? hist[w] * std::exp(double(t[w]) - 0.5) / z : 0.0;
      CHECK(a[w] == Approx(want).epsilon(1e-6).margin(1e-12));
    }
  }
}

TEST_CASE("LISA stays finite and exact with logits beyond float32 exp's range", "[lisa]") {
  // Codebooks scaled by 12 put logits in the hundreds: a bare exp (the authors' code)
  // overflows past ~88.
  Problem p = lisa_problem(1, 2, 513, 32, GENERATE(true, false), 4, 16, false);
  const Kernel& k = cpu_kernel("lisa_base");
  HostInputs in = make_inputs(p, k.info().inputs, 11);
  for (float& x : in.codebooks) x *= 12.f;
  const RunResult r = run_guarded(k, p, in);
  CHECK(r.non_finite == 0);
  CHECK(r.poisoned_left == 0);
  const auto rows = sample_rows(p, 256);
  // logits of magnitude ~500 carry float32 rounding of ~1e-4 into the exponent
  CHECK(reference_error(k, p, in, r.out, rows) < 1e-3);
}

TEST_CASE("LISA decay is the recurrence of the closed form, with no overflow at long N",
          "[lisa]") {
  const int64_t n = GENERATE(1, 333, 5000);
  const int64_t heads = GENERATE(1, 3);  // one sequence exercises the chunked prefix
  Problem p = lisa_problem(1, heads, n, 16, true, 2, 8, false);
  p.set_param("decay", 0.1);
  for (const char* name : {"lisa_base", "lisa_soft"}) {
    const Kernel& k = cpu_kernel(name);
    const HostInputs in = make_inputs(p, k.info().inputs, uint64_t(n));
    const RunResult r = run_guarded(k, p, in);
    CHECK(r.non_finite == 0);
    CHECK(r.poisoned_left == 0);
    const double err = reference_error(k, p, in, r.out, sample_rows(p, 200, 3));
    INFO(name << " " << describe(p, {"decay"}) << " error " << err);
    CHECK(err < 1e-5);
  }
  Problem bi = p;
  bi.causal = false;
  CHECK_THROWS_WITH(cpu_kernel("lisa_base").validate(bi), Catch::Contains("decay"));
  Problem neg = p;
  neg.set_param("decay", -0.5);
  CHECK_THROWS_WITH(cpu_kernel("lisa_base").validate(neg), Catch::Contains("decay"));
}

TEST_CASE("LISA-Soft with one-hot assignments equals LISA-Base", "[lisa]") {
  Problem p = lisa_problem(2, 2, 129, 16, GENERATE(true, false), 4, 8, GENERATE(false, true));
  const Kernel& base = cpu_kernel("lisa_base");
  const Kernel& soft = cpu_kernel("lisa_soft");
  const HostInputs hard = make_inputs(p, base.info().inputs, 3);
  HostInputs onehot = make_inputs(p, soft.info().inputs, 3);
  REQUIRE(onehot.codebooks == hard.codebooks);
  std::fill(onehot.probs.begin(), onehot.probs.end(), 0.f);
  for (size_t x = 0; x < hard.codes.size(); ++x)
    onehot.probs[x * size_t(p.int_param("codewords")) + size_t(hard.codes[x])] = 1.f;
  const RunResult a = run_guarded(base, p, hard);
  const RunResult b = run_guarded(soft, p, onehot);
  double num = 0, den = 0;
  for (size_t x = 0; x < a.out.size(); ++x) {
    num += (double(a.out[x]) - b.out[x]) * (double(a.out[x]) - b.out[x]);
    den += double(a.out[x]) * a.out[x];
  }
  CHECK(std::sqrt(num / den) < 1e-6);
}

TEST_CASE("LISA-Mini is LISA-Base under its own name and defaults", "[lisa]") {
  const Kernel& mini = cpu_kernel("lisa_mini");
  const Kernel& base = cpu_kernel("lisa_base");
  auto default_w = [](const Kernel& k) {
    for (const auto& ps : k.info().params)
      if (ps.name == "codewords") return ps.default_value;
    return -1.0;
  };
  CHECK(default_w(mini) == 16);
  CHECK(default_w(base) == 128);
  Problem p = lisa_problem(1, 2, 300, 32, true, 8, 16, false);
  const HostInputs in = make_inputs(p, base.info().inputs, 9);
  CHECK(run_guarded(mini, p, in).out == run_guarded(base, p, in).out);
}

TEST_CASE("LISA rejects invalid soft assignments", "[lisa]") {
  Problem p = lisa_problem(1, 1, 16, 8, true, 2, 4, false);
  const Kernel& soft = cpu_kernel("lisa_soft");
  HostInputs in = make_inputs(p, soft.info().inputs, 1);
  in.probs[5] = -0.25f;
  CHECK_THROWS_WITH(soft.validate_inputs(p, in.view()), Catch::Contains("not a finite non-negative"));
  in.probs[5] = NAN;
  CHECK_THROWS_AS(soft.validate_inputs(p, in.view()), InvalidProblem);
}

TEST_CASE("vanilla_flash equals vanilla_materialized", "[vanilla]") {
  const bool causal = GENERATE(true, false);
  const int64_t n = GENERATE(1, 65, 1000);
  const int64_t dh = GENERATE(64, 128);
  Problem p;
  p.batch = 1;
  p.heads = 2;
  p.seq_len = n;
  p.head_dim = dh;
  p.causal = causal;
  const Kernel& mat = cpu_kernel("vanilla_materialized");
  const Kernel& flash = cpu_kernel("vanilla_flash");
  const HostInputs in = make_inputs(p, kInputQKV, uint64_t(n * dh));
  const auto a = run_guarded(mat, p, in).out;
  const auto b = run_guarded(flash, p, in).out;
  double num = 0, den = 0;
  for (size_t x = 0; x < a.size(); ++x) {
    num += (double(a[x]) - b[x]) * (double(a[x]) - b[x]);
    den += double(a[x]) * a[x];
  }
  INFO(describe(p));
  CHECK(std::sqrt(num / den) < 1e-5);
}

TEST_CASE("vanilla_materialized keeps one b*h*N*N buffer, vanilla_flash none of size N^2",
          "[vanilla]") {
  Problem p;
  p.batch = 2;
  p.heads = 3;
  p.seq_len = 4096;
  p.head_dim = 64;
  CHECK(cpu_kernel("vanilla_materialized").workspace(p).total() ==
        size_t(2 * 3) * 4096 * 4096 * sizeof(float));
  const size_t flash_n = cpu_kernel("vanilla_flash").workspace(p).total();
  p.seq_len = 4 * 4096;
  CHECK(cpu_kernel("vanilla_flash").workspace(p).total() == flash_n);  // independent of N
}

}  // namespace attnbench::testing
