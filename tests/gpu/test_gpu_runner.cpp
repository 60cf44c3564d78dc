// The cuda runner itself (harness/backend_cuda.cpp) on a device: GPU information, rejection of
// wrong kernels and bad inputs, recovery from an allocation failure, the memory pool's
// high-water mark reset between points, and the cache flush. Runs only with a CUDA device.
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

#include "../kernel_testing.hpp"
#include "backend.hpp"

namespace attnbench::testing {

TEST_CASE("gpu information describes the device", "[gpu][backend]") {
  std::string why;
  REQUIRE(cuda_available(&why));
  const auto g = gpu_info();
  REQUIRE(g.has_value());
  CHECK_FALSE(g->name.empty());
  CHECK(g->memory_bytes > (size_t(1) << 30));
  CHECK(g->compute_capability.find('.') != std::string::npos);
  CHECK_FALSE(g->driver_version.empty());
  CHECK_FALSE(g->runtime_version.empty());
  std::printf("GPU: %s, %zu bytes, compute capability %s, driver %s, runtime %s\n",
              g->name.c_str(), g->memory_bytes, g->compute_capability.c_str(),
              g->driver_version.c_str(), g->runtime_version.c_str());
}

TEST_CASE("the cuda runner rejects cpu kernels and invalid inputs", "[gpu][backend]") {
  auto runner = make_cuda_runner();
  CHECK(runner->backend() == Backend::cuda);
  const Kernel& cpu = Registry::instance().get("vanilla_flash", Backend::cpu);
  const Problem p = problem_for(cpu, 1, 1, 16, 8, true);
  CHECK_THROWS_AS(runner->setup(cpu, p, make_inputs(p, cpu.info().inputs, 1)), InvalidProblem);
  if (const Kernel* lisa = Registry::instance().find("lisa_base", Backend::cuda)) {
    const Problem q = problem_for(*lisa, 1, 1, 16, 8, true);
    HostInputs in = make_inputs(q, lisa->info().inputs, 2);
    in.codes[3] = int32_t(q.int_param("codewords"));
    CHECK_THROWS_WITH(runner->setup(*lisa, q, in), Catch::Contains("outside [0, W="));
  }
  CHECK_THROWS_AS(runner->run_once_ms(), std::logic_error);  // nothing set up
}

TEST_CASE("the cuda runner survives an allocation failure and resets its peak",
          "[gpu][backend]") {
  auto runner = make_cuda_runner();
  const Kernel& k = Registry::instance().get("vanilla_materialized", Backend::cuda);
  // about 2 TB of scores: more than any device has
  Problem huge = problem_for(k, 8, 8, 40000, 8, true);
  CHECK_THROWS_AS(runner->setup(k, huge, make_inputs(huge, k.info().inputs, 3)),
                  std::runtime_error);

  Problem big = problem_for(k, 1, 2, 2048, 64, true);
  runner->setup(k, big, make_inputs(big, k.info().inputs, 4));
  runner->run_once_ms();
  const size_t big_peak = runner->measured_peak_bytes();
  CHECK(big_peak >= runner->memory().peak_bytes());
  runner->teardown();

  Problem small = problem_for(k, 1, 1, 64, 16, false);
  runner->setup(k, small, make_inputs(small, k.info().inputs, 5));
  for (int rep = 0; rep < 3; ++rep) {
    runner->flush_cache();  // the working set is far below L2: flushes
    CHECK(runner->run_once_ms() >= 0.0);
  }
  const size_t small_peak = runner->measured_peak_bytes();
  CHECK(small_peak >= runner->memory().peak_bytes());
  CHECK(small_peak < big_peak);  // reset at setup: the big point does not linger
  const auto out = runner->output();
  CHECK(out.size() == output_elems(small));
  runner->teardown();
  CHECK_THROWS_AS(runner->output(), std::logic_error);
}

}  // namespace attnbench::testing
