// vanilla_eager (kernels/cpu/vanilla_eager.cpp) beyond the registry sweep of
// test_kernels_cpu.cpp: its workspace is exactly the buffer list of its header comment (the
// tensors eager PyTorch holds at the peak), the tensors that live together never share
// memory, the workspace holds those tensors after a run, and the output is
// vanilla_materialized's to float rounding.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

#include "attnbench/vanilla_eager.hpp"
#include "kernel_testing.hpp"

namespace attnbench::testing {
namespace {

const Kernel& eager(Backend b = Backend::cpu) {
  return Registry::instance().get("vanilla_eager", b);
}

// The documented list, written out independently of vanilla_eager.hpp: two [b, h, N, N]
// float32 tensors (an op's input and output) and, when causal, the N x N bool mask; each
// 64-byte aligned.
size_t documented_bytes(int64_t b, int64_t h, int64_t n, bool causal) {
  auto align64 = [](size_t x) { return (x + 63) / 64 * 64; };
  const size_t scores = size_t(b * h) * size_t(n * n) * 4;
  return 2 * align64(scores) + (causal ? align64(size_t(n * n)) : 0);
}

struct Span {
  const char* begin;
  size_t bytes;
  bool overlaps(const Span& o) const {
    return begin < o.begin + o.bytes && o.begin < begin + bytes;
  }
};

}  // namespace

TEST_CASE("vanilla_eager's workspace is the documented buffer list", "[kernels][vanilla_eager]") {
  // literal figures for the points a PyTorch run will be compared with
  CHECK(documented_bytes(1, 1, 1024, true) == 2 * 4194304 + 1048576);
  CHECK(documented_bytes(2, 2, 1024, false) == 2 * 16777216);
  CHECK(documented_bytes(1, 4, 8192, true) == 2 * size_t(1073741824) + 67108864);
  CHECK(documented_bytes(1, 1, 7, true) == 2 * 256 + 64);  // 196 and 49 bytes, aligned
  const int64_t shapes[][3] = {{1, 1, 1}, {1, 1, 7}, {2, 3, 64}, {1, 1, 333}, {2, 2, 1024},
                               {1, 4, 4096}, {64, 8, 50}};
  for (const auto& s : shapes)
    for (bool causal : {true, false}) {
      Problem p = problem_for(eager(), s[0], s[1], s[2], 64, causal);
      INFO(describe(p));
      const size_t want = documented_bytes(s[0], s[1], s[2], causal);
      CHECK(eager().workspace(p).prepared_bytes == 0);
      CHECK(eager().workspace(p).scratch_bytes == want);
      if (const Kernel* gpu = Registry::instance().find("vanilla_eager", Backend::cuda))
        CHECK(gpu->workspace(p).scratch_bytes == want);
      // twice vanilla_materialized's one score buffer, plus the mask (N a multiple of 4)
      if (s[2] % 4 == 0) {
        const size_t mat = Registry::instance()
                               .get("vanilla_materialized", Backend::cpu)
                               .workspace(p)
                               .scratch_bytes;
        CHECK(want == 2 * mat + (causal ? size_t(s[2] * s[2]) : 0));
      }
    }
}

TEST_CASE("vanilla_eager: tensors alive together never share memory", "[kernels][vanilla_eager]") {
  for (bool causal : {true, false})
    for (int64_t n : {1, 7, 64, 333}) {
      Problem p = problem_for(eager(), 2, 3, n, 16, causal);
      INFO(describe(p));
      const size_t total = vanilla_eager_workspace(p).scratch_bytes;
      std::vector<char> ws(total);
      const EagerTensors t = eager_tensors(p, ws.data());
      const size_t f = size_t(p.sequences() * n * n) * sizeof(float);
      auto span = [&](const void* x, size_t bytes) {
        const Span sp{static_cast<const char*>(x), bytes};
        CHECK(sp.begin >= ws.data());
        CHECK(sp.begin + sp.bytes <= ws.data() + total);
        CHECK(reinterpret_cast<uintptr_t>(sp.begin) % 64 ==
              reinterpret_cast<uintptr_t>(ws.data()) % 64);
        return sp;
      };
      const Span raw = span(t.raw, f), scaled = span(t.scaled, f), probs = span(t.probs, f);
      CHECK_FALSE(raw.overlaps(scaled));  // raw * scale
      if (causal) {
        const Span masked = span(t.masked, f), mask = span(t.mask, size_t(n * n));
        CHECK_FALSE(scaled.overlaps(masked));  // masked_fill
        CHECK_FALSE(masked.overlaps(probs));   // softmax
        for (const Span& x : {raw, scaled, masked, probs}) CHECK_FALSE(mask.overlaps(x));
      } else {
        CHECK(t.mask == nullptr);
        CHECK(t.masked == t.scaled);          // no masked_fill
        CHECK_FALSE(scaled.overlaps(probs));  // softmax
      }
    }
}

TEST_CASE("vanilla_eager leaves eager PyTorch's tensors in its workspace",
          "[kernels][vanilla_eager]") {
  for (bool causal : {true, false}) {
    Problem p = problem_for(eager(), 2, 2, 37, 16, causal);
    p.seed = 4242;
    INFO(describe(p));
    const HostInputs in = make_inputs(p, kInputQKV, p.seed);
    std::vector<char> ws(vanilla_eager_workspace(p).scratch_bytes + 64);
    void* base = ws.data() + (64 - reinterpret_cast<uintptr_t>(ws.data()) % 64) % 64;
    std::vector<float> out(output_elems(p));
    eager().run(p, in.view(), nullptr, base, out.data(), ExecContext{});
    const EagerTensors t = eager_tensors(p, base);
    const int64_t N = p.seq_len, dh = p.head_dim;
    const float scale = eager_scale(dh);
    // the scores the softmax read: masked when causal, scaled otherwise (its slot survives)
    const float* scores = causal ? t.masked : t.scaled;
    int64_t wrong_mask = 0, wrong_scores = 0, wrong_probs = 0;
    for (int64_t s = 0; s < p.sequences(); ++s)
      for (int64_t i = 0; i < N; ++i) {
        double row_sum = 0;
        for (int64_t j = 0; j < N; ++j) {
          const bool hidden = causal && j > i;
          if (causal) wrong_mask += t.mask[i * N + j] != (hidden ? 1 : 0);
          double dot = 0;
          for (int64_t d = 0; d < dh; ++d)
            dot += double(in.q[size_t((s * N + i) * dh + d)]) * in.k[size_t((s * N + j) * dh + d)];
          const float sc = scores[(s * N + i) * N + j];
          wrong_scores += hidden ? !(std::isinf(sc) && sc < 0)
                                 : !(std::abs(sc - scale * dot) <= 1e-5 * (1 + std::abs(dot)));
          const float pr = t.probs[(s * N + i) * N + j];
          wrong_probs += hidden ? pr != 0.0f : !(pr > 0.0f);
          row_sum += pr;
        }
        wrong_probs += std::abs(row_sum - 1.0) > 1e-5;
      }
    CHECK(wrong_mask == 0);
    CHECK(wrong_scores == 0);
    CHECK(wrong_probs == 0);
  }
}

TEST_CASE("vanilla_eager equals vanilla_materialized to float rounding",
          "[kernels][vanilla_eager]") {
  const Kernel& mat = Registry::instance().get("vanilla_materialized", Backend::cpu);
  const int64_t shapes[][4] = {{2, 3, 1, 8},   {2, 3, 7, 16},  {1, 2, 333, 64},
                               {2, 2, 257, 13}, {1, 1, 1024, 64}, {3, 4, 100, 1}};
  double worst = 0;
  uint64_t seed = 7700;
  for (bool causal : {true, false})
    for (const auto& s : shapes) {
      Problem p = problem_for(eager(), s[0], s[1], s[2], s[3], causal);
      p.seed = ++seed;
      INFO(describe(p));
      const HostInputs in = make_inputs(p, kInputQKV, p.seed);
      const RunResult a = run_guarded(eager(), p, in), b = run_guarded(mat, p, in);
      CHECK(a.guards_intact);
      REQUIRE(a.poisoned_left == 0);
      REQUIRE(b.poisoned_left == 0);
      double num = 0, den = 0, max_abs = 0;
      for (size_t x = 0; x < a.out.size(); ++x) {
        const double d = double(a.out[x]) - double(b.out[x]);
        num += d * d;
        den += double(b.out[x]) * b.out[x];
        max_abs = std::max(max_abs, std::abs(d));
      }
      const double rel = std::sqrt(num / std::max(den, 1e-300));
      INFO("rel-L2 " << rel << ", max |diff| " << max_abs);
      CHECK(rel < 1e-6);
      CHECK(max_abs < 1e-5);
      worst = std::max(worst, rel);
    }
  std::printf("vanilla_eager vs vanilla_materialized: worst rel-L2 %.3e\n", worst);
}

}  // namespace attnbench::testing
