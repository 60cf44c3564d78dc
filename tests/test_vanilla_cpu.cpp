// The CPU vanilla kernels at the sizes their blocking makes special, beyond the registry
// sweep of test_kernels_cpu.cpp: vanilla_flash's micro-kernels (kernels/include/attnbench/cpu/
// flash_tiles.hpp) have remainders in the query block (48 queries with AVX-512, 24 AVX2, 12 SSE),
// the key rows and feature rows of a micro-tile (8 / 4) and the key tile (64); the causal mask
// cuts through tiles whose first key is before, at or after the block's first query.
// vanilla_materialized has row blocks of 256 (causal) and 512 (bidirectional) and lane
// remainders of 16 in its softmax; vanilla_eager the same softmax over whole rows, and
// -inf scores from its masked_fill (tests/test_vanilla_eager.cpp has its own checks).
// Scores of large magnitude make the online-softmax max move from tile to tile and make most
// weights underflow to 0.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>

#include "kernel_testing.hpp"

namespace attnbench::testing {
namespace {

constexpr double kMaxRelL2 = 1e-5;

double check(const std::string& name, int64_t b, int64_t h, int64_t n, int64_t dh, bool causal,
             float input_scale, uint64_t seed) {
  const Kernel& k = Registry::instance().get(name, Backend::cpu);
  Problem p = problem_for(k, b, h, n, dh, causal);
  p.seed = seed;
  HostInputs in = make_inputs(p, k.info().inputs, seed);
  for (float& x : in.q) x *= input_scale;
  for (float& x : in.k) x *= input_scale;
  INFO(name << " b=" << b << " h=" << h << " N=" << n << " dh=" << dh
            << (causal ? " causal" : " bidirectional") << " input scale " << input_scale);
  const RunResult r = run_guarded(k, p, in);
  CHECK(r.guards_intact);
  CHECK(r.poisoned_left == 0);
  CHECK(r.non_finite == 0);
  const auto rows = sample_rows(p, 160, p.sequences());
  const double err = reference_error(k, p, in, r.out, rows);
  CHECK(err < kMaxRelL2);
  return err;
}

TEST_CASE("vanilla cpu kernels at their block and micro-tile edges", "[kernels][vanilla]") {
  // dh: 1 and 3 (below one micro-tile of features), 13 and 100 (remainders of 8 and of 4),
  // 128 (the tested width of the targets). N: one query block +- 1, one key tile + 1, one
  // causal row block + 1, one bidirectional row block + 1.
  const int64_t head_dims[] = {1, 3, 13, 100, 128};
  const int64_t seq_lens[] = {47, 49, 65, 97, 257, 513};
  for (const char* name : {"vanilla_flash", "vanilla_materialized", "vanilla_eager"})
    for (bool causal : {true, false}) {
      double worst = 0;
      uint64_t seed = 7000;
      for (int64_t n : seq_lens)
        for (int64_t dh : head_dims) worst = std::max(worst, check(name, 1, 2, n, dh, causal, 1.0f, ++seed));
      std::printf("vanilla edges: %-22s %-13s worst %.3e\n", name,
                  causal ? "causal" : "bidirectional", worst);
    }
}

TEST_CASE("vanilla cpu kernels with scores of large magnitude", "[kernels][vanilla]") {
  // inputs x 4 at dh = 16: scores of tens, the running max changes between key tiles and
  // most exp() underflow; several sequences so both threads run.
  for (const char* name : {"vanilla_flash", "vanilla_materialized", "vanilla_eager"})
    for (bool causal : {true, false}) {
      check(name, 2, 3, 300, 16, causal, 4.0f, 8100);
      check(name, 1, 1, 1030, 64, causal, 3.0f, 8200);
    }
}

}  // namespace
}  // namespace attnbench::testing
