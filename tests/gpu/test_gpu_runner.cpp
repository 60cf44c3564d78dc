// The cuda runner itself (harness/backend_cuda.cpp) on a device: GPU information, rejection of
// wrong kernels and bad inputs, recovery from an allocation failure, the memory pool's
// high-water mark reset between points, and the cache flush; graph capture and its fallback,
// the launch overhead, the device memory counter catching an allocation outside the pool, 16-bit
// storage, and the GPU calibration. Runs only with a CUDA device.
// Without the CUDA backend it compiles to nothing (gpu_main.cpp then reports Skipped).
#if defined(ATTNBENCH_HAVE_CUDA)
#include <catch2/catch.hpp>

#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "../kernel_testing.hpp"
#include "backend.hpp"
#include "calibrate.hpp"

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
  CHECK(g->sm_count > 0);
  CHECK(g->l2_bytes >= (size_t(1) << 20));
  CHECK(g->max_sm_clock_mhz > 0);
  std::printf("GPU: %s, %zu bytes, compute capability %s, driver %s, runtime %s, %d SMs, L2 %zu "
              "bytes, SM clock %d MHz (max %d), memory clock %d MHz, throttle '%s' (clocks 0: "
              "NVML absent)\n",
              g->name.c_str(), g->memory_bytes, g->compute_capability.c_str(),
              g->driver_version.c_str(), g->runtime_version.c_str(), g->sm_count, g->l2_bytes,
              g->sm_clock_mhz, g->max_sm_clock_mhz, g->memory_clock_mhz, g->throttle.c_str());
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

namespace attnbench::testing {
namespace {

void cuda_ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

// A minimal CUDA kernel for the runner's own paths: out = v (a device copy), optionally
// waiting for the stream inside run (a call that cannot be captured), optionally holding
// `outside_bytes` of plain cudaMalloc memory from prepare on (behind the pool's back).
class ProbeKernel final : public Kernel {
 public:
  ProbeKernel(bool sync_in_run, size_t outside_bytes)
      : sync_(sync_in_run), outside_bytes_(outside_bytes) {
    info_.name = "probe";
    info_.backend = Backend::cuda;
    info_.family = "test";
    info_.summary = "copies v to the output";
  }
  ~ProbeKernel() override {
    if (outside_) (void)cudaFree(outside_);
  }
  const KernelInfo& info() const override { return info_; }
  WorkspaceSize workspace(const Problem&) const override { return {}; }
  void prepare(const Problem&, const Inputs&, void*, const ExecContext&) const override {
    if (outside_bytes_ && !outside_) cuda_ok(cudaMalloc(&outside_, outside_bytes_), "cudaMalloc");
  }
  void run(const Problem& p, const Inputs& in, const void*, void*, float* out,
           const ExecContext& ctx) const override {
    auto s = static_cast<cudaStream_t>(ctx.cuda_stream);
    cuda_ok(cudaMemcpyAsync(out, in.v, output_bytes(p), cudaMemcpyDeviceToDevice, s), "copy");
    if (sync_) cuda_ok(cudaStreamSynchronize(s), "cudaStreamSynchronize");
  }
  double flops(const Problem&) const override { return 0; }

 private:
  KernelInfo info_;
  bool sync_;
  size_t outside_bytes_;
  mutable void* outside_ = nullptr;
};

Problem probe_problem() {
  Problem p;
  p.batch = 2;
  p.heads = 2;
  p.seq_len = 512;
  p.head_dim = 64;
  return p;
}

}  // namespace

TEST_CASE("the cuda runner replays a captured graph, measures the launch overhead apart and "
          "flushes L2 unless warm", "[gpu][backend][timing]") {
  const Kernel& k = Registry::instance().get("vanilla_flash", Backend::cuda);
  const Problem p = problem_for(k, 1, 4, 1024, 64, true);
  {
    // the runtime's first-use work (module loading, local memory) is not this test's subject
    auto first = make_cuda_runner();
    first->setup(k, p, make_inputs(p, k.info().inputs, 20));
  }
  for (bool warm : {false, true}) {
    auto runner = make_cuda_runner(RunnerOptions{warm});
    runner->setup(k, p, make_inputs(p, k.info().inputs, 21));
    double best = 1e30;
    for (int r = 0; r < 5; ++r) {
      runner->flush_cache();
      best = std::min(best, runner->run_once_ms());
    }
    const RunNotes n = runner->notes();
    INFO("warm " << warm << ", best " << best << " ms, launch overhead "
                 << n.launch_overhead_ms.value_or(-1) << " ms");
    CHECK(n.timing_method == "cuda_graph");
    CHECK(n.cache == (warm ? "warm" : "cold"));
    REQUIRE(n.launch_overhead_ms.has_value());
    CHECK(*n.launch_overhead_ms > 0.0);
    CHECK(*n.launch_overhead_ms < 50.0);
    CHECK(n.warnings.empty());
    CHECK(best > 0.0);
    REQUIRE(n.measured_device_bytes.has_value());
    // the device counter sees at least the pool's memory (2 MiB: its page granularity)
    CHECK(*n.measured_device_bytes + (size_t(2) << 20) >= runner->measured_peak_bytes());
    std::printf("vanilla_flash b=1 h=4 N=1024 %s: best %.4f ms, launch overhead %.4f ms, device "
                "memory %zu B, pool peak %zu B\n", warm ? "warm" : "cold", best,
                *n.launch_overhead_ms, *n.measured_device_bytes, runner->measured_peak_bytes());
  }
}

TEST_CASE("a call that cannot be captured is timed by events and says why", "[gpu][backend][timing]") {
  const ProbeKernel k(/*sync_in_run=*/true, 0);
  const Problem p = probe_problem();
  auto runner = make_cuda_runner();
  const HostInputs in = make_inputs(p, kInputQKV, 22);
  runner->setup(k, p, in);
  CHECK(runner->run_once_ms() >= 0.0);
  const RunNotes n = runner->notes();
  CHECK(n.timing_method == "cuda_events");
  CHECK_FALSE(n.launch_overhead_ms.has_value());
  REQUIRE_FALSE(n.warnings.empty());
  CHECK(n.warnings[0].find("could not be captured") != std::string::npos);
  CHECK(runner->output() == std::vector<float>(in.v.begin(), in.v.begin() + p.qkv_elems()));
}

TEST_CASE("memory allocated outside the pool shows in measured_device_bytes",
          "[gpu][backend][memory]") {
  const size_t outside = size_t(256) << 20;
  const ProbeKernel k(false, outside);
  const Problem p = probe_problem();
  auto runner = make_cuda_runner();
  runner->setup(k, p, make_inputs(p, kInputQKV, 23));
  runner->run_once_ms();
  const RunNotes n = runner->notes();
  CHECK(n.timing_method == "cuda_graph");
  REQUIRE(n.measured_device_bytes.has_value());
  CHECK(*n.measured_device_bytes >= outside + runner->measured_peak_bytes());
  CHECK(runner->measured_peak_bytes() < outside);  // the pool does not see it
  bool warned = false;
  for (const auto& w : n.warnings) warned |= w.find("outside the pool") != std::string::npos;
  CHECK(warned);
  CHECK(runner->memory().library_bytes == 0);  // it never calls cuBLAS
}

TEST_CASE("16-bit problems hold q, k, v and the output in 2 bytes", "[gpu][backend][precision]") {
  const Kernel& k = Registry::instance().get("vanilla_materialized", Backend::cuda);
  auto runner = make_cuda_runner();
  for (Precision pr : {Precision::bf16, Precision::fp16}) {
    INFO(precision_name(pr));
    Problem p = problem_for(k, 1, 2, 256, 64, true);
    p.precision = pr;
    runner->setup(k, p, make_inputs(p, k.info().inputs, 24));
    runner->run_once_ms();
    const MemoryFigures m = runner->memory();
    CHECK(m.inputs_bytes == 3 * size_t(p.qkv_elems()) * 2);
    CHECK(m.outputs_bytes == size_t(p.qkv_elems()) * 2);
    // vanilla_materialized calls cuBLAS: its workspace for this device is library memory
    CHECK(m.library_bytes == cublas_workspace_bytes(std::stoi(gpu_info()->compute_capability)));
    CHECK(runner->measured_peak_bytes() >= m.peak_bytes());
    const auto out = runner->output();
    CHECK(out.size() == size_t(p.qkv_elems()));
    for (float x : out) REQUIRE((std::isfinite(x) && !is_poison(x)));
    runner->teardown();
  }
}

TEST_CASE("the GPU calibration measures every precision's GEMM rate and the copy bandwidth",
          "[gpu][calibrate]") {
  std::string why;
  const auto g = calibrate_gpu(true, &why);
  REQUIRE(g.has_value());
  for (Precision p : kAllPrecisions) CHECK(g->gemm_rate(p) > 0);
  CHECK(g->bandwidth_gbs > 0);
  CHECK(g->valid());
  std::printf("%s", describe(*g).c_str());
}

}  // namespace attnbench::testing
#endif  // ATTNBENCH_HAVE_CUDA
