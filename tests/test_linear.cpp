// Properties of the linear / kernelized attentions (docs/methods.md section 3) beyond "matches its
// own float64 reference" (tests/test_kernels_cpu.cpp does that for every kernel):
// Performer approximates softmax attention better with more features; the workspace of every
// linear kernel grows at most linearly in N; linear_elu is elu+1 with the 1e-6 epsilon;
// Hydra normalises over the full width; Efficient Attention's weights are convex; the
// per-position formulas of math/linear.hpp (what a CUDA kernel evaluates) give the chunked
// kernels' outputs; the chunked (fewer sequences than threads) path equals the one-thread path.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

#include <fmt/format.h>
#include <omp.h>

#include "attnbench/counter_rng.hpp"
#include "attnbench/math/linear.hpp"
#include "attnbench/random_features.hpp"
#include "kernel_testing.hpp"

namespace attnbench::testing {
namespace {

const char* const kLinearKernels[] = {"linear_elu", "linrec", "hydra", "performer",
                                      "efficient_attention"};

const Kernel& cpu_kernel(const char* name) { return Registry::instance().get(name, Backend::cpu); }

// prepare + run with a chosen thread count (0 = all), plain buffers.
std::vector<float> run_with(const Kernel& k, const Problem& p, const HostInputs& in,
                            int threads = 0) {
  const WorkspaceSize ws = k.workspace(p);
  std::vector<unsigned char> prepared(ws.prepared_bytes + 64), scratch(ws.scratch_bytes + 64);
  auto aligned = [](std::vector<unsigned char>& v) {
    auto a = reinterpret_cast<uintptr_t>(v.data());
    return reinterpret_cast<void*>((a + 63) / 64 * 64);
  };
  std::vector<float> out(output_elems(p));
  ExecContext ctx;
  ctx.threads = threads;
  k.validate(p);
  const Inputs view = in.view();
  k.prepare(p, view, aligned(prepared), ctx);
  k.run(p, view, aligned(prepared), aligned(scratch), out.data(), ctx);
  return out;
}

double rel_l2(const std::vector<float>& got, const std::vector<double>& want) {
  double num = 0, den = 0;
  for (size_t x = 0; x < want.size(); ++x) {
    num += (double(got[x]) - want[x]) * (double(got[x]) - want[x]);
    den += want[x] * want[x];
  }
  return std::sqrt(num / den);
}
double rel_l2(const std::vector<float>& got, const std::vector<float>& want) {
  return rel_l2(got, std::vector<double>(want.begin(), want.end()));
}

std::vector<RowId> all_rows(const Problem& p) {
  std::vector<RowId> rows;
  for (int64_t s = 0; s < p.sequences(); ++s)
    for (int64_t i = 0; i < p.seq_len; ++i) rows.push_back({s, i});
  return rows;
}

Problem shape(const Kernel& k, int64_t b, int64_t h, int64_t n, int64_t dh, bool causal) {
  return problem_for(k, b, h, n, dh, causal);
}

// ---------------------------------------------------------------------------------------
TEST_CASE("performer: approximation error against vanilla falls as features grow",
          "[linear][performer]") {
  const Kernel& k = cpu_kernel("performer");
  const int64_t features[] = {16, 64, 256};
  constexpr int kSeeds = 6;
  for (bool causal : {true, false}) {
    Problem p = shape(k, 1, 2, 200, 16, causal);
    double mean_err[3] = {0, 0, 0};
    for (int sd = 0; sd < kSeeds; ++sd) {
      p.seed = 500 + uint64_t(sd);  // seeds both the inputs and the random features
      HostInputs in = make_inputs(p, kInputQKV, p.seed);
      // logits of moderate size (q, k entries of standard deviation 0.5, as attention inputs
      // after a layer norm and a small projection): the estimator's variance grows like
      // exp(|q'|^2 + |k'|^2), and at unit scale the +1e-4 feature epsilon (relative to the
      // global key stabiliser) biases every m towards uniform attention
      for (auto* t : {&in.q, &in.k})
        for (float& x : *t) x *= 0.5f;
      const auto rows = all_rows(p);
      std::vector<double> want(rows.size() * size_t(p.head_dim));
      vanilla_reference_rows(p, in.q.data(), in.k.data(), in.v.data(),
                             1.0 / std::sqrt(double(p.head_dim)), rows, want.data());
      for (int f = 0; f < 3; ++f) {
        p.set_param("features", features[f]);
        mean_err[f] += rel_l2(run_with(k, p, in), want) / kSeeds;
      }
    }
    std::printf(
        "performer approximation error vs vanilla (%s, N=200 dh=16, q,k scale 0.5, %d seeds):"
        " m=16 %.4f  m=64 %.4f  m=256 %.4f\n",
        causal ? "causal" : "bidirectional", kSeeds, mean_err[0], mean_err[1], mean_err[2]);
    CHECK(mean_err[1] < mean_err[0]);
    CHECK(mean_err[2] < mean_err[1]);
    // an unbiased estimate: the error shrinks roughly as 1/sqrt(m); 16x the features must at
    // least halve it
    CHECK(mean_err[2] < 0.5 * mean_err[0]);
  }
}

TEST_CASE("performer: the seed fixes the features, another seed changes them",
          "[linear][performer]") {
  const Kernel& k = cpu_kernel("performer");
  Problem p = shape(k, 2, 2, 100, 16, true);
  const HostInputs in = make_inputs(p, kInputQKV, 77);
  p.seed = 1;
  const auto a = run_with(k, p, in);
  const auto b = run_with(k, p, in);
  CHECK(a == b);
  p.seed = 2;
  CHECK(rel_l2(run_with(k, p, in), a) > 1e-3);
  // default feature count floor(dh ln dh), and at least 1
  CHECK(random_features::performer_default_features(64) == 266);
  CHECK(random_features::performer_default_features(16) == 44);
  CHECK(random_features::performer_default_features(1) == 1);
}

TEST_CASE("performer projection: orthogonal blocks, Gaussian row norms, deterministic",
          "[linear][performer]") {
  const int64_t dim = 16, rows = 40;  // two full blocks and a partial one
  const auto w = random_features::performer_projection(rows, dim, 99);
  CHECK(w == random_features::performer_projection(rows, dim, 99));
  CHECK(w != random_features::performer_projection(rows, dim, 100));
  // a projection with fewer rows is a prefix of one with more
  const auto w8 = random_features::performer_projection(8, dim, 99);
  CHECK(std::equal(w8.begin(), w8.end(), w.begin()));
  auto dot = [&](int64_t a, int64_t b) {
    double s = 0;
    for (int64_t c = 0; c < dim; ++c) s += w[a * dim + c] * w[b * dim + c];
    return s;
  };
  double mean_sq_norm = 0, worst_cos = 0, cross_block_cos = 0;
  for (int64_t a = 0; a < rows; ++a) {
    mean_sq_norm += dot(a, a) / rows;
    for (int64_t b = 0; b < a; ++b) {
      const double cos = std::fabs(dot(a, b)) / std::sqrt(dot(a, a) * dot(b, b));
      if (a / dim == b / dim)
        worst_cos = std::max(worst_cos, cos);
      else
        cross_block_cos = std::max(cross_block_cos, cos);
    }
  }
  CHECK(worst_cos < 1e-12);         // rows of one block are orthogonal
  CHECK(cross_block_cos > 1e-3);    // blocks are independent draws
  CHECK(mean_sq_norm > 0.6 * dim);  // E||g||^2 = dim for a Gaussian row
  CHECK(mean_sq_norm < 1.4 * dim);
  // the normals themselves
  double m1 = 0, m2 = 0;
  const int n = 20000;
  for (int x = 0; x < n; ++x) {
    const double g = rng::performer_normal(5, 6, uint64_t(x));
    m1 += g / n;
    m2 += g * g / n;
  }
  CHECK(std::fabs(m1) < 0.03);
  CHECK(std::fabs(m2 - 1) < 0.05);
}

// ---------------------------------------------------------------------------------------
// ws(4N) <= 4 ws(N) + a constant, and the growth from 4096 to 16384 is at most 4x the growth
// from 1024 to 4096 (a quadratic term would make it 16x).
bool workspace_at_most_linear(const Kernel& k, Problem p, std::string& why) {
  auto ws = [&](int64_t n) {
    p.seq_len = n;
    return double(k.workspace(p).total());
  };
  constexpr double kSlack = 64 * 1024;  // alignment and per-thread constants
  const double w1 = ws(1024), w4 = ws(4096), w16 = ws(16384);
  const double a = ws(333), a4 = ws(4 * 333);
  why = fmt::format("ws(333)={} ws(1332)={} ws(1024)={} ws(4096)={} ws(16384)={}", a, a4, w1, w4,
                    w16);
  return a4 <= 4 * a + kSlack && w4 <= 4 * w1 + kSlack && (w16 - w4) <= 4 * (w4 - w1) + kSlack;
}

TEST_CASE("linear kernels: workspace grows at most linearly in N", "[linear][memory]") {
  for (const char* name : kLinearKernels) {
    const Kernel& k = cpu_kernel(name);
    for (bool causal : {true, false})
      for (auto [b, h] : {std::pair{1, 1}, std::pair{2, 4}, std::pair{1, 8}})
        for (int64_t dh : {16, 64}) {
          std::string why;
          const Problem p = shape(k, b, h, 1024, dh, causal);
          INFO(name << " " << describe(p));
          const bool ok = workspace_at_most_linear(k, p, why);
          INFO(why);
          CHECK(ok);
        }
  }
  // the check itself catches an N^2 workspace
  std::string why;
  CHECK_FALSE(workspace_at_most_linear(
      cpu_kernel("vanilla_materialized"),
      shape(cpu_kernel("vanilla_materialized"), 1, 1, 1024, 64, true), why));
}

// ---------------------------------------------------------------------------------------
// linear_elu evaluated here directly in float64 (not through the kernel's reference_rows).
std::vector<double> linear_elu_direct(const Problem& p, const HostInputs& in, double eps) {
  const int64_t N = p.seq_len, dh = p.head_dim;
  auto phi = [](float x) { return x > 0 ? double(x) + 1.0 : std::exp(double(x)); };
  std::vector<double> out(output_elems(p));
  for (int64_t s = 0; s < p.sequences(); ++s)
    for (int64_t i = 0; i < N; ++i) {
      const float* q = &in.q[size_t((s * N + i) * dh)];
      double den = 0;
      std::vector<double> num(size_t(dh), 0.0);
      for (int64_t j = 0; j < (p.causal ? i + 1 : N); ++j) {
        const float* kj = &in.k[size_t((s * N + j) * dh)];
        const float* vj = &in.v[size_t((s * N + j) * dh)];
        double a = 0;
        for (int64_t c = 0; c < dh; ++c) a += phi(q[c]) * phi(kj[c]);
        den += a;
        for (int64_t e = 0; e < dh; ++e) num[size_t(e)] += a * vj[e];
      }
      for (int64_t e = 0; e < dh; ++e)
        out[size_t((s * N + i) * dh + e)] = num[size_t(e)] / (den + eps);
    }
  return out;
}

TEST_CASE("linear_elu: phi = elu + 1 and the 1e-6 epsilon", "[linear]") {
  const Kernel& k = cpu_kernel("linear_elu");
  for (bool causal : {true, false}) {
    Problem p = shape(k, 1, 2, 150, 8, causal);
    HostInputs in = make_inputs(p, kInputQKV, 321);
    CHECK(rel_l2(run_with(k, p, in), linear_elu_direct(p, in, 1e-6)) < 1e-5);
    // queries far below zero: phi(q) = e^q ~ 2e-9, so phi(q) . z is comparable to the epsilon
    for (int64_t x = 0; x < 8 * 40; ++x) in.q[size_t(x)] = -20.0f - 0.05f * float(x % 8);
    const auto got = run_with(k, p, in);
    const auto with_eps = linear_elu_direct(p, in, 1e-6);
    const auto without_eps = linear_elu_direct(p, in, 0.0);
    CHECK(rel_l2(got, with_eps) < 1e-5);
    CHECK(rel_l2(got, without_eps) > 1e-2);  // the epsilon matters here: the test can tell
  }
}

// ---------------------------------------------------------------------------------------
TEST_CASE("hydra: q = k, normalised over the full width of all heads", "[linear][hydra]") {
  const Kernel& k = cpu_kernel("hydra");
  for (bool causal : {true, false}) {
    Problem p = shape(k, 2, 3, 90, 16, causal);
    HostInputs in = make_inputs(p, kInputQKV, 42);
    in.q = in.k;  // self-attention with shared projections
    const int64_t B = p.batch, H = p.heads, N = p.seq_len, dh = p.head_dim;
    auto idx = [&](int64_t b, int64_t h, int64_t n, int64_t c) {
      return size_t(((b * H + h) * N + n) * dh + c);
    };
    // k^ with full-width norms, and with per-head norms (what the kernel must not do)
    std::vector<double> full(in.k.size()), per_head(in.k.size());
    for (int64_t b = 0; b < B; ++b)
      for (int64_t n = 0; n < N; ++n) {
        double ss = 0;
        for (int64_t h = 0; h < H; ++h)
          for (int64_t c = 0; c < dh; ++c)
            ss += double(in.k[idx(b, h, n, c)]) * in.k[idx(b, h, n, c)];
        for (int64_t h = 0; h < H; ++h) {
          double hs = 0;
          for (int64_t c = 0; c < dh; ++c)
            hs += double(in.k[idx(b, h, n, c)]) * in.k[idx(b, h, n, c)];
          for (int64_t c = 0; c < dh; ++c) {
            full[idx(b, h, n, c)] = in.k[idx(b, h, n, c)] / std::sqrt(ss);
            per_head[idx(b, h, n, c)] = in.k[idx(b, h, n, c)] / std::sqrt(hs);
          }
        }
      }
    auto direct = [&](const std::vector<double>& kh) {
      std::vector<double> out(kh.size());
      for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t c = 0; c < dh; ++c) {
            double total = 0;
            for (int64_t n = 0; n < N; ++n) total += kh[idx(b, h, n, c)] * in.v[idx(b, h, n, c)];
            double acc = 0;
            for (int64_t n = 0; n < N; ++n) {
              acc += kh[idx(b, h, n, c)] * in.v[idx(b, h, n, c)];
              out[idx(b, h, n, c)] = kh[idx(b, h, n, c)] * (causal ? acc : total);
            }
          }
      return out;
    };
    const auto got = run_with(k, p, in);
    CHECK(rel_l2(got, direct(full)) < 1e-5);
    CHECK(rel_l2(got, direct(per_head)) > 1e-2);
  }
}

TEST_CASE("hydra: h heads of dh equal one head of width h * dh", "[linear][hydra]") {
  const Kernel& k = cpu_kernel("hydra");
  for (bool causal : {true, false}) {
    Problem p = shape(k, 2, 4, 70, 8, causal);
    const HostInputs in = make_inputs(p, kInputQKV, 9);
    Problem one = p;
    one.heads = 1;
    one.head_dim = p.heads * p.head_dim;
    // [b, h, n, c] -> [b, 1, n, h * dh + c]
    auto to_wide = [&](const std::vector<float>& x) {
      std::vector<float> y(x.size());
      for (int64_t b = 0; b < p.batch; ++b)
        for (int64_t h = 0; h < p.heads; ++h)
          for (int64_t n = 0; n < p.seq_len; ++n)
            for (int64_t c = 0; c < p.head_dim; ++c)
              y[size_t((b * p.seq_len + n) * one.head_dim + h * p.head_dim + c)] =
                  x[size_t(((b * p.heads + h) * p.seq_len + n) * p.head_dim + c)];
      return y;
    };
    HostInputs wide;
    wide.q = to_wide(in.q);
    wide.k = to_wide(in.k);
    wide.v = to_wide(in.v);
    CHECK(rel_l2(to_wide(run_with(k, p, in)), run_with(k, one, wide)) < 1e-6);
  }
}

// ---------------------------------------------------------------------------------------
TEST_CASE("efficient_attention: constant values give that constant (convex weights)",
          "[linear][efficient]") {
  const Kernel& k = cpu_kernel("efficient_attention");
  for (bool causal : {true, false})
    for (float key_scale : {1.0f, 30.0f}) {  // 30: columns spanning far more than exp's range
      Problem p = shape(k, 2, 2, 200, 16, causal);
      HostInputs in = make_inputs(p, kInputQKV, 11);
      for (auto& x : in.k) x *= key_scale;
      std::vector<double> want(in.v.size());
      for (int64_t s = 0; s < p.sequences(); ++s)
        for (int64_t i = 0; i < p.seq_len; ++i)
          for (int64_t e = 0; e < p.head_dim; ++e) {
            const float c = in.v[size_t(s * p.seq_len * p.head_dim + e)];  // row 0's values
            in.v[size_t((s * p.seq_len + i) * p.head_dim + e)] = c;
            want[size_t((s * p.seq_len + i) * p.head_dim + e)] = c;
          }
      INFO((causal ? "causal" : "bidirectional") << " key scale " << key_scale);
      const auto got = run_with(k, p, in);
      CHECK(rel_l2(got, want) < 1e-5);
    }
}

TEST_CASE("efficient_attention: key columns jumping far inside a block stay exact",
          "[linear][efficient]") {
  const Kernel& k = cpu_kernel("efficient_attention");
  for (bool causal : {true, false})
    for (auto [b, h] : {std::pair{1, 1}, std::pair{2, 3}}) {
      Problem p = shape(k, b, h, 300, 16, causal);
      HostInputs in = make_inputs(p, kInputQKV, 12);
      // positions 10, 75 and 140 carry keys ~100 above the rest in some columns: exp of the
      // others at that max underflows float
      for (int64_t s = 0; s < p.sequences(); ++s)
        for (int64_t pos : {10, 75, 140})
          for (int64_t c = 0; c < p.head_dim; c += 3)
            in.k[size_t((s * p.seq_len + pos) * p.head_dim + c)] += 100.0f + float(c);
      const RunResult r = run_guarded(k, p, in);
      INFO(describe(p));
      CHECK(r.non_finite == 0);
      CHECK(r.poisoned_left == 0);
      CHECK(reference_error(k, p, in, r.out, all_rows(p)) < 1e-5);
    }
}

// ---------------------------------------------------------------------------------------
// The per-position formulas of math/linear.hpp, run as a plain float recurrence, give the
// chunked kernels' outputs: what a CUDA kernel built on the header computes.
std::vector<float> recurrent(const char* name, const Problem& p, const HostInputs& in) {
  const int64_t N = p.seq_len, dh = p.head_dim;
  const bool performer = std::string(name) == "performer";
  const bool efficient = std::string(name) == "efficient_attention";
  const int64_t m = performer ? random_features::performer_features(p.int_param("features"), dh) : dh;
  std::vector<float> w(static_cast<size_t>(m * dh));
  if (performer) {
    std::vector<double> work(random_features::performer_projection_work_elems(dh));
    random_features::performer_projection(m, dh, p.seed, work.data(), w.data());
  }
  std::vector<float> out(output_elems(p)), S(static_cast<size_t>(m * dh)),
      z(static_cast<size_t>(m)), cmax(static_cast<size_t>(m)), fq(static_cast<size_t>(m)),
      fk(static_cast<size_t>(m));
  const bool denominator = std::string(name) != "linrec" && !efficient;
  const float scale = std::string(name) == "linrec" ? 1.0f / std::sqrt(float(dh)) : 1.0f;
  for (int64_t s = 0; s < p.sequences(); ++s) {
    const float* q = &in.q[size_t(s * N * dh)];
    const float* k = &in.k[size_t(s * N * dh)];
    const float* v = &in.v[size_t(s * N * dh)];
    float* o = &out[size_t(s * N * dh)];
    float key_c = -INFINITY;
    if (performer)
      for (int64_t j = 0; j < N; ++j) {
        math::performer_dots(k + j * dh, int(dh), w.data(), int(m), fk.data());
        key_c = std::max(key_c, math::row_max_f(fk.data(), int(m)));
      }
    auto feature = [&](const float* x, bool is_query, float* f) {
      if (performer)
        math::performer_feature(x, int(dh), w.data(), int(m), is_query, key_c, f);
      else if (std::string(name) == "linear_elu")
        math::elu_plus_one_row(x, int(dh), f);
      else if (efficient)
        math::softmax_row_f(x, int(dh), f);
      else
        math::linrec_feature_row(x, int(dh), f);
    };
    std::fill(S.begin(), S.end(), 0.0f);
    std::fill(z.begin(), z.end(), 0.0f);
    std::fill(cmax.begin(), cmax.end(), -INFINITY);
    auto update = [&](int64_t j) {
      if (efficient) {
        math::column_softmax_update(S.data(), z.data(), cmax.data(), k + j * dh, v + j * dh,
                                    int(dh));
      } else {
        feature(k + j * dh, false, fk.data());
        math::linear_state_update(S.data(), denominator ? z.data() : nullptr, fk.data(), v + j * dh,
                                  int(m), int(dh));
      }
    };
    auto readout = [&](int64_t i) {
      feature(q + i * dh, true, fq.data());
      if (efficient)
        math::column_softmax_readout(fq.data(), S.data(), z.data(), int(dh), o + i * dh);
      else
        math::linear_readout(fq.data(), S.data(), denominator ? z.data() : nullptr, int(m), int(dh),
                             math::kLinearDenominatorEps, scale, o + i * dh);
    };
    if (p.causal) {
      for (int64_t i = 0; i < N; ++i) {
        update(i);
        readout(i);
      }
    } else {
      for (int64_t j = 0; j < N; ++j) update(j);
      for (int64_t i = 0; i < N; ++i) readout(i);
    }
  }
  return out;
}

TEST_CASE("the per-position formulas of math/linear.hpp give the chunked kernels' outputs",
          "[linear]") {
  for (const char* name : {"linear_elu", "linrec", "performer", "efficient_attention"}) {
    const Kernel& k = cpu_kernel(name);
    for (bool causal : {true, false})
      for (int64_t n : {5, 64, 200}) {
        Problem p = shape(k, 1, 3, n, 16, causal);
        p.seed = 2024;
        const HostInputs in = make_inputs(p, kInputQKV, 31 + uint64_t(n));
        INFO(name << " " << describe(p));
        CHECK(rel_l2(run_with(k, p, in), recurrent(name, p, in)) < 1e-5);
      }
  }
}

// ---------------------------------------------------------------------------------------
TEST_CASE("linear kernels: chunked sequences (fewer than threads) equal the one-thread run",
          "[linear]") {
  for (const char* name : kLinearKernels) {
    const Kernel& k = cpu_kernel(name);
    // (1, 1, 80): one sequence, chunked positions; hydra: column groups split inside a head.
    // (1, 3, 24): hydra's column groups span heads. (1, 1, 16): the chunks of a small head go
    // through the register path from their starting state.
    for (bool causal : {true, false})
      for (auto [h, dh] : {std::pair{1, 80}, std::pair{3, 24}, std::pair{1, 16}}) {
        Problem p = shape(k, 1, h, 777, dh, causal);
        const HostInputs in = make_inputs(p, kInputQKV, 8);
        INFO(name << " " << describe(p));
        const auto all = run_with(k, p, in, 0);
        CHECK(rel_l2(all, run_with(k, p, in, 1)) < 1e-5);
        const auto rows = sample_rows(p, 300, 1);
        CHECK(reference_error(k, p, in, all, rows) < 1e-5);
      }
  }
}

// Whatever the machine's core count: the paths for fewer sequences (or batch elements) than
// threads, at 2 to 4 threads against one, over ranges that split unevenly or come out empty.
TEST_CASE("linear kernels: 2 to 4 threads equal one thread at split edges", "[linear]") {
  const int before = omp_get_max_threads();
  omp_set_num_threads(4);  // the workspace is sized for the maximum
  for (const char* name : kLinearKernels) {
    const Kernel& k = cpu_kernel(name);
    for (bool causal : {true, false})
      for (int64_t batch : {1, 3})
        for (int64_t n : {1, 2, 65, 333}) {
          Problem p = shape(k, batch, 2, n, 16, causal);
          const HostInputs in = make_inputs(p, kInputQKV, 9);
          const auto one = run_with(k, p, in, 1);
          for (int threads : {2, 3, 4}) {
            INFO(name << " " << describe(p) << ", " << threads << " threads");
            CHECK(rel_l2(run_with(k, p, in, threads), one) < 1e-6);
          }
        }
  }
  omp_set_num_threads(before);
}

TEST_CASE("linear kernels: the last causal row sees every key, as the bidirectional rows do",
          "[linear]") {
  for (const char* name : kLinearKernels) {
    const Kernel& k = cpu_kernel(name);
    Problem p = shape(k, 2, 2, 130, 16, true);
    const HostInputs in = make_inputs(p, kInputQKV, 5);
    const auto causal = run_with(k, p, in);
    p.causal = false;
    const auto bidir = run_with(k, p, in);
    const int64_t dh = p.head_dim, N = p.seq_len;
    for (int64_t s = 0; s < p.sequences(); ++s) {
      std::vector<float> a(causal.begin() + (s * N + N - 1) * dh,
                           causal.begin() + (s * N + N) * dh);
      std::vector<float> b(bidir.begin() + (s * N + N - 1) * dh, bidir.begin() + (s * N + N) * dh);
      INFO(name << " sequence " << s);
      CHECK(rel_l2(a, b) < 1e-5);
      // and an earlier row differs (the causal mask is really applied)
      std::vector<float> c(causal.begin() + (s * N + 3) * dh, causal.begin() + (s * N + 4) * dh);
      std::vector<float> d(bidir.begin() + (s * N + 3) * dh, bidir.begin() + (s * N + 4) * dh);
      CHECK(rel_l2(c, d) > 1e-3);
    }
  }
}

TEST_CASE("linear kernels: family, parameters and rejected performer features", "[linear]") {
  for (const char* name : kLinearKernels) {
    const KernelInfo& i = cpu_kernel(name).info();
    CHECK(i.family == "linear");
    CHECK_FALSE(i.is_vanilla);
  }
  const Kernel& perf = cpu_kernel("performer");
  const auto& params = perf.info().params;
  CHECK(std::any_of(params.begin(), params.end(), [](auto& s) { return s.name == "features"; }));
  Problem p = shape(perf, 1, 1, 16, 8, true);
  p.set_param("features", -1);
  CHECK_THROWS_WITH(perf.validate(p), Catch::Contains("features"));
}

}  // namespace
}  // namespace attnbench::testing

namespace attnbench::testing {
namespace {
TEST_CASE("math/linear.hpp: expm1 for x <= 0 is within a few ulp", "[linear]") {
  // exp_f itself is tested in test_math.cpp
  double worst_expm1 = 0;
  for (int t = 0; t < 400000; ++t) {
    const float x = -87.3f * float(t + 1) / 400000.0f;  // (-87.3, 0)
    const double w1 = std::expm1(double(x));
    worst_expm1 = std::max(worst_expm1, std::fabs(double(math::expm1_neg_f(x)) - w1) / -w1);
  }
  for (float x : {-1e-3f, -1e-5f, -1e-8f, -0.3499f, -0.3501f}) {
    const double w1 = std::expm1(double(x));
    worst_expm1 = std::max(worst_expm1, std::fabs(double(math::expm1_neg_f(x)) - w1) / -w1);
  }
  std::printf("expm1_neg_f worst relative error %.2e\n", worst_expm1);
  CHECK(worst_expm1 < 6e-7);
  CHECK(math::elu_plus_one_f(2.5f) == 3.5f);
  CHECK(math::elu_f(-1e-6f) == Approx(std::expm1(-1e-6)).epsilon(1e-6));
}
}  // namespace
}  // namespace attnbench::testing

namespace attnbench::testing {
namespace {
TEST_CASE("linear kernels stay at float32 rounding on long sequences (compensated state)",
          "[linear]") {
  // Without compensated accumulation of the running state, performer's error grew with N
  // (1.6e-5 at N = 20000): FAVOR+'s near-uniform features make the state a cancelling sum.
  // dh = 16: small heads keep the running state in registers within a block (linear_elu,
  // linrec) and performer's causal blocks are half as long; the block still joins the state
  // through the compensated product.
  const bool causal = GENERATE(true, false);
  const int64_t dh = GENERATE(64, 16);
  for (const char* name : {"performer", "linear_elu", "linrec"}) {
    const Kernel& k = Registry::instance().get(name, Backend::cpu);
    Problem p = problem_for(k, 1, 1, 20000, dh, causal);
    const HostInputs in = make_inputs(p, k.info().inputs, 77);
    const RunResult r = run_guarded(k, p, in);
    REQUIRE(r.poisoned_left == 0);
    const double err = reference_error(k, p, in, r.out, sample_rows(p, 24));
    INFO(name << " " << describe(p) << " error " << err);
    CHECK(err < 2e-6);
  }
}
}  // namespace
}  // namespace attnbench::testing
