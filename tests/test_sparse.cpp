// Method properties of the sparse and hashed attentions (docs/methods.md section 4; kernels in
// kernels/cpu/sparse.cpp). tests/test_kernels_cpu.cpp already checks every kernel against
// its float64 reference at the default parameters; here: other parameter values against the
// reference, the limits in which each method is exactly vanilla attention, and workspace
// growth. Run: ./build/attnbench_tests "[sparse]"
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "kernel_testing.hpp"

namespace attnbench::testing {
namespace {

constexpr double kTol = 1e-5;

const Kernel& cpu_kernel(const char* name) { return Registry::instance().get(name, Backend::cpu); }

// Relative L2 error of a float output against a float64 expectation on every row.
double rel_l2_all(const Problem& p, const std::vector<float>& got, const std::vector<double>& want) {
  const auto rows = sample_rows(p, p.sequences() * p.seq_len, p.sequences());
  return rel_l2_rows(p, got.data(), rows, want.data());
}

// Vanilla softmax attention in float64 on every row of p.
std::vector<double> vanilla_f64(const Problem& p, const HostInputs& in) {
  const auto rows = sample_rows(p, p.sequences() * p.seq_len, p.sequences());
  std::vector<double> want(rows.size() * size_t(p.head_dim));
  vanilla_reference_rows(p, in.q.data(), in.k.data(), in.v.data(),
                         1.0 / std::sqrt(double(p.head_dim)), rows, want.data());
  return want;
}

void check_run(const RunResult& r) {
  CHECK(r.guards_intact);
  CHECK(r.poisoned_left == 0);
  CHECK(r.non_finite == 0);
}

// Runs kernel `name` at p on fresh inputs and checks it against its float64 reference on
// every row.
void check_against_reference(const char* name, const Problem& p) {
  const Kernel& k = cpu_kernel(name);
  const HostInputs in = make_inputs(p, k.info().inputs, p.seed + 17);
  INFO(name << " " << describe(p, {"window", "bucket_size", "n_hashes", "block", "conv_width"}));
  const RunResult r = run_guarded(k, p, in);
  check_run(r);
  const auto rows = sample_rows(p, p.sequences() * p.seq_len, p.sequences());
  CHECK(reference_error(k, p, in, r.out, rows) < kTol);
}

Problem shape(const char* name, int64_t n, int64_t dh, bool causal, uint64_t seed) {
  Problem p = problem_for(cpu_kernel(name), 2, 3, n, dh, causal);
  p.seed = seed;
  return p;
}

}  // namespace

TEST_CASE("sparse kernels are registered with their family and parameters", "[sparse]") {
  for (const char* name : {"local_window", "reformer_lsh", "sinkhorn", "lsan_twin"}) {
    const Kernel* k = Registry::instance().find(name, Backend::cpu);
    REQUIRE(k != nullptr);
    CHECK(k->info().family == "sparse");
    CHECK(k->info().has_causal);
    CHECK(k->info().has_bidirectional);
  }
  CHECK(cpu_kernel("lsan_twin").info().inputs & kInputConv);
}

TEST_CASE("sparse kernels match float64 at non-default parameters", "[sparse]") {
  uint64_t seed = 500;
  for (bool causal : {true, false}) {
    for (int64_t w : {1, 2, 5, 70}) {
      Problem p = shape("local_window", 137, 16, causal, ++seed);
      p.set_param("window", w);
      check_against_reference("local_window", p);
    }
    for (int64_t bs : {1, 4, 13, 64})
      for (int64_t nh : {1, 3}) {
        Problem p = shape("reformer_lsh", 203, 8, causal, ++seed);
        p.set_param("bucket_size", bs);
        p.set_param("n_hashes", nh);
        check_against_reference("reformer_lsh", p);
      }
    for (int64_t b : {1, 5, 16, 100}) {
      Problem p = shape("sinkhorn", 211, 16, causal, ++seed);
      p.set_param("block", b);
      check_against_reference("sinkhorn", p);
    }
    for (int64_t L : {1, 4, 300}) {
      Problem p = shape("lsan_twin", 150, 8, causal, ++seed);
      p.set_param("conv_width", L);
      check_against_reference("lsan_twin", p);
    }
  }
}

TEST_CASE("local_window with a window of at least N is vanilla attention", "[sparse]") {
  const Kernel& lw = cpu_kernel("local_window");
  const Kernel& vm = cpu_kernel("vanilla_materialized");
  uint64_t seed = 40;
  for (bool causal : {true, false})
    for (int64_t n : {1, 7, 130, 333}) {
      Problem p = shape("local_window", n, 16, causal, ++seed);
      const HostInputs in = make_inputs(p, kInputQKV, p.seed);
      const std::vector<double> want = vanilla_f64(p, in);
      const RunResult ref = run_guarded(vm, p, in);
      for (int64_t w : {n, n + 1, 10 * n}) {
        p.set_param("window", w);
        INFO(describe(p, {"window"}));
        const RunResult r = run_guarded(lw, p, in);
        check_run(r);
        CHECK(rel_l2_all(p, r.out, want) < kTol);
        std::vector<double> vm_out(ref.out.begin(), ref.out.end());
        CHECK(rel_l2_all(p, r.out, vm_out) < kTol);
      }
      if (n > 8) {  // and a narrower window is not
        p.set_param("window", n / 4);
        CHECK(rel_l2_all(p, run_guarded(lw, p, in).out, want) > 1e-2);
      }
    }
}

TEST_CASE("reformer_lsh with one chunk is shared-QK attention with the self-logit rule",
          "[sparse]") {
  const Kernel& k = cpu_kernel("reformer_lsh");
  uint64_t seed = 70;
  for (bool causal : {true, false})
    for (int64_t n : {1, 2, 9, 120}) {
      Problem p = shape("reformer_lsh", n, 16, causal, ++seed);
      const HostInputs in = make_inputs(p, kInputQKV, p.seed);
      // float64 expectation: keys q_j / ||q_j||, logit q_i . k_j / sqrt(dh), logit to itself
      // -5e4 (so a token sees itself only when it has no other key), causal j <= i
      const int64_t S = p.sequences(), dh = p.head_dim;
      std::vector<double> q(in.q.begin(), in.q.end()), kn(q.size()), want(q.size());
      for (int64_t x = 0; x < S * n; ++x) {
        double ss = 0;
        for (int64_t c = 0; c < dh; ++c) ss += q[x * dh + c] * q[x * dh + c];
        for (int64_t c = 0; c < dh; ++c) kn[x * dh + c] = q[x * dh + c] / std::sqrt(ss);
      }
      for (int64_t s = 0; s < S; ++s)
        for (int64_t i = 0; i < n; ++i) {
          const int64_t last = causal ? i : n - 1;
          std::vector<double> logit(size_t(last + 1));
          double m = -INFINITY;
          for (int64_t j = 0; j <= last; ++j) {
            double a = 0;
            for (int64_t c = 0; c < dh; ++c) a += q[(s * n + i) * dh + c] * kn[(s * n + j) * dh + c];
            logit[j] = j == i ? -5e4 : a / std::sqrt(double(dh));
            m = std::max(m, logit[j]);
          }
          double z = 0;
          for (auto& l : logit) z += (l = std::exp(l - m));
          for (int64_t j = 0; j <= last; ++j)
            for (int64_t c = 0; c < dh; ++c)
              want[(s * n + i) * dh + c] += logit[j] / z * double(in.v[(s * n + j) * dh + c]);
        }
      for (int64_t bs : {n, n + 5, 4 * n + 64})
        for (int64_t nh : {1, 4}) {
          p.set_param("bucket_size", bs);
          p.set_param("n_hashes", nh);
          INFO(describe(p, {"bucket_size", "n_hashes"}));
          const RunResult r = run_guarded(k, p, in);
          check_run(r);
          CHECK(rel_l2_all(p, r.out, want) < kTol);
        }
      if (n >= 9) {  // the self rule matters: plain shared-QK attention differs
        std::vector<float> k_shared(kn.begin(), kn.end());
        const auto rows = sample_rows(p, S * n, S);
        std::vector<double> plain(rows.size() * size_t(dh));
        vanilla_reference_rows(p, in.q.data(), k_shared.data(), in.v.data(),
                               1.0 / std::sqrt(double(dh)), rows, plain.data());
        CHECK(rel_l2_all(p, run_guarded(k, p, in).out, plain) > 1e-3);
      }
    }
}

TEST_CASE("reformer_lsh reads q and v only, and its hashing follows the seed", "[sparse]") {
  const Kernel& k = cpu_kernel("reformer_lsh");
  for (bool causal : {true, false}) {
    Problem p = shape("reformer_lsh", 300, 16, causal, 91);
    p.set_param("bucket_size", 16);
    p.set_param("n_hashes", 2);
    HostInputs in = make_inputs(p, kInputQKV, 5);
    const std::vector<float> base = run_guarded(k, p, in).out;
    CHECK(run_guarded(k, p, in).out == base);  // deterministic
    for (auto& x : in.k) x = -2 * x + 1;       // k is ignored (keys are normalized queries)
    CHECK(run_guarded(k, p, in).out == base);
    p.seed = 92;  // another rotation: other buckets, another result
    const std::vector<float> other = run_guarded(k, p, in).out;
    const std::vector<double> base64(base.begin(), base.end());
    CHECK(rel_l2_all(p, other, base64) > 1e-3);
  }
}

TEST_CASE("sinkhorn with one block (block >= N) is vanilla attention", "[sparse]") {
  const Kernel& k = cpu_kernel("sinkhorn");
  uint64_t seed = 120;
  for (bool causal : {true, false})
    for (int64_t n : {1, 5, 64, 190}) {
      Problem p = shape("sinkhorn", n, 16, causal, ++seed);
      const HostInputs in = make_inputs(p, kInputQKV, p.seed);
      const std::vector<double> want = vanilla_f64(p, in);
      for (int64_t b : {n, n + 3, 8 * n}) {
        p.set_param("block", b);
        INFO(describe(p, {"block"}));
        const RunResult r = run_guarded(k, p, in);
        check_run(r);
        CHECK(rel_l2_all(p, r.out, want) < kTol);
      }
      if (n >= 64) {  // with several blocks it is not
        p.set_param("block", n / 8);
        CHECK(rel_l2_all(p, run_guarded(k, p, in).out, want) > 1e-2);
      }
    }
}

TEST_CASE("lsan_twin with a zero convolution is vanilla attention", "[sparse]") {
  const Kernel& k = cpu_kernel("lsan_twin");
  uint64_t seed = 150;
  for (bool causal : {true, false})
    for (int64_t n : {1, 6, 100, 257})
      for (int64_t L : {1, 3, 9}) {
        Problem p = shape("lsan_twin", n, 16, causal, ++seed);
        p.set_param("conv_width", L);
        HostInputs in = make_inputs(p, k.info().inputs, p.seed);
        const std::vector<double> want = vanilla_f64(p, in);
        INFO(describe(p, {"conv_width"}));
        // with the random filter the local branch is there ...
        CHECK(rel_l2_all(p, run_guarded(k, p, in).out, want) > 1e-2);
        // ... and with a zero filter only the global branch is left
        std::fill(in.conv.begin(), in.conv.end(), 0.0f);
        const RunResult r = run_guarded(k, p, in);
        check_run(r);
        CHECK(rel_l2_all(p, r.out, want) < kTol);
      }
}

TEST_CASE("sparse kernels' workspace grows at most linearly in N", "[sparse]") {
  auto total = [](const Kernel& k, bool causal, int64_t n) {
    Problem p = problem_for(k, 2, 4, n, 64, causal);
    return double(k.workspace(p).total());
  };
  for (const char* name : {"local_window", "reformer_lsh", "sinkhorn", "lsan_twin"})
    for (bool causal : {true, false}) {
      const Kernel& k = cpu_kernel(name);
      const int64_t n = 1000;
      INFO(name << (causal ? " causal" : " bidirectional"));
      const double w1 = total(k, causal, n), w4 = total(k, causal, 4 * n),
                   w16 = total(k, causal, 16 * n);
      CHECK(w1 > 0);
      CHECK(w4 <= 4 * w1);
      CHECK(w16 <= 16 * w1);
    }
  // the check can fail: the materialized baseline grows quadratically
  const Kernel& vm = cpu_kernel("vanilla_materialized");
  CHECK(total(vm, true, 16000) > 16 * total(vm, true, 1000));
}

}  // namespace attnbench::testing
