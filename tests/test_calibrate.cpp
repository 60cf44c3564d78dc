// The roofline arithmetic behind pct_of_peak, and a quick calibration's sanity (it measures;
// nothing here asserts a speed).
#include <catch2/catch.hpp>

#include <cmath>

#include "backend.hpp"
#include "calibrate.hpp"
#include "correctness.hpp"
#include "nvml.hpp"

namespace attnbench::testing {

TEST_CASE("roofline picks the binding ceiling and the percentage of it", "[calibrate]") {
  Calibration c;
  c.sgemm_gflops = 100;   // 1e11 FLOP/s
  c.bandwidth_gbs = 10;   // 1e10 B/s: balance 10 FLOP per byte
  // 1e9 FLOPs over 1e7 bytes (100 FLOP/B): compute-bound, floor 10 ms
  Roofline r = roofline(1e9, 1e7, 20.0, c);
  CHECK(r.bound == "compute");
  CHECK(r.floor_ms == Approx(10.0));
  CHECK(r.pct_of_peak == Approx(50.0));
  // 1e8 FLOPs over 1e9 bytes (0.1 FLOP/B): memory-bound, floor 100 ms
  r = roofline(1e8, 1e9, 125.0, c);
  CHECK(r.bound == "memory");
  CHECK(r.floor_ms == Approx(100.0));
  CHECK(r.pct_of_peak == Approx(80.0));
  // without a calibration there is no roofline
  CHECK(roofline(1e9, 1e7, 20.0, Calibration{}).bound.empty());
}

TEST_CASE("a quick calibration measures positive, finite ceilings and round-trips JSON",
          "[calibrate]") {
  const Calibration c = calibrate(true);
  CHECK(c.valid());
  CHECK(std::isfinite(c.sgemm_gflops));
  CHECK(c.sgemm_gflops_one_thread > 0);
  CHECK(std::isfinite(c.bandwidth_gbs));
  const Calibration back = calibration_from_json(to_json(c));
  CHECK(back.sgemm_gflops == c.sgemm_gflops);
  CHECK(back.bandwidth_gbs == c.bandwidth_gbs);
  CHECK(back.threads == c.threads);
}

}  // namespace attnbench::testing

// ---- GPU ceilings and the roofline of cuda rows ----------------------------------------------

namespace attnbench::testing {
namespace {

GpuCalibration fake_gpu() {
  GpuCalibration g;
  g.name = "Fake GPU";
  g.gemm_n = 8192;
  g.gemm_gflops = {50e3, 400e3, 700e3, 720e3};  // fp32, tf32, bf16, fp16
  g.bandwidth_gbs = 3000;
  g.copy_bytes = size_t(1) << 30;
  g.reps = 5;
  return g;
}

Row ok_row(Backend b, Precision p, double flops, double bytes, double median_ms) {
  Row r;
  r.backend = b;
  r.problem.precision = p;
  r.flops = flops;
  r.min_bytes = bytes;
  TimeStats t;
  t.median = median_ms;
  r.time = t;
  return r;
}

}  // namespace

TEST_CASE("GPU calibration figures round-trip through environment.calibration.gpu",
          "[calibrate][gpu]") {
  const GpuCalibration g = fake_gpu();
  ojson calibration = ojson(to_json(Calibration{}));
  calibration["gpu"] = ojson(to_json(g));
  const auto back = gpu_calibration_from_json(calibration);
  REQUIRE(back.has_value());
  for (Precision p : kAllPrecisions) CHECK(back->gemm_rate(p) == g.gemm_rate(p));
  CHECK(back->bandwidth_gbs == g.bandwidth_gbs);
  CHECK(back->name == "Fake GPU");
  CHECK(calibration["gpu"]["gemm_gflops"]["bf16"] == 700e3);  // keyed by precision name
  CHECK_FALSE(gpu_calibration_from_json(ojson(nullptr)).has_value());
  CHECK_FALSE(gpu_calibration_from_json(ojson::object()).has_value());
  CHECK(describe(g).find("bf16 700.0") != std::string::npos);
}

TEST_CASE("cuda rows are read against the GEMM rate of their precision", "[calibrate][gpu]") {
  Calibration cpu;
  cpu.sgemm_gflops = 100;
  cpu.bandwidth_gbs = 10;
  ojson calibration = ojson(to_json(cpu));
  calibration["gpu"] = ojson(to_json(fake_gpu()));
  // 7e12 FLOPs over 3e9 bytes: compute-bound at every precision on the fake GPU
  for (Precision p : kAllPrecisions) {
    INFO(precision_name(p));
    const Roofline r = roofline_for(ok_row(Backend::cuda, p, 7e12, 3e9, 100.0), calibration);
    CHECK(r.bound == "compute");
    CHECK(r.floor_ms == Approx(7e12 / (fake_gpu().gemm_rate(p) * 1e9) * 1e3));
  }
  // bf16: floor 10 ms at 700 TFLOP/s; 1 ms of copy at 3 TB/s
  Row bf16 = ok_row(Backend::cuda, Precision::bf16, 7e12, 3e9, 20.0);
  fill_roofline(bf16, calibration);
  CHECK(bf16.roofline_bound == "compute");
  CHECK(*bf16.floor_ms == Approx(10.0));
  CHECK(*bf16.pct_of_peak == Approx(50.0));
  // memory-bound on the GPU: 3e10 bytes take 10 ms
  const Roofline mem = roofline_for(ok_row(Backend::cuda, Precision::fp32, 1e9, 3e10, 40.0), calibration);
  CHECK(mem.bound == "memory");
  CHECK(mem.pct_of_peak == Approx(25.0));
  // a cpu row still uses the cpu ceilings; without a gpu object a cuda row has none
  CHECK(roofline_for(ok_row(Backend::cpu, Precision::fp32, 1e9, 1e7, 20.0), calibration).floor_ms ==
        Approx(10.0));
  CHECK(roofline_for(ok_row(Backend::cuda, Precision::fp32, 1e9, 1e7, 20.0), ojson(to_json(cpu)))
            .bound.empty());
  Row skipped = ok_row(Backend::cuda, Precision::fp32, 1e9, 1e7, 20.0);
  skipped.status = "skipped";
  CHECK(roofline_for(skipped, calibration).bound.empty());
}

TEST_CASE("without a CUDA device the GPU calibration measures nothing and says why",
          "[calibrate][gpu]") {
  std::string why;
  if (cuda_available(&why)) {
    SUCCEED("a CUDA device is present; tests/gpu calibrates it");
    return;
  }
  std::string reason;
  CHECK_FALSE(calibrate_gpu(true, &reason).has_value());
  CHECK_FALSE(reason.empty());
}

TEST_CASE("NVML throttle reasons are named, idle left out", "[calibrate][gpu]") {
  CHECK(throttle_reason_names(0) == "");
  CHECK(throttle_reason_names(0x1) == "");  // idle between samples says nothing
  CHECK(throttle_reason_names(0x4 | 0x40) == "sw_power_cap,hw_thermal_slowdown");
  CHECK(throttle_reason_names(0x8 | 0x1000) == "hw_slowdown,0x1000");
  // without the driver's library (this machine, CI) there are no clocks, and no crash
  if (!cuda_available(nullptr)) CHECK_FALSE(nvml_clocks("0000:00:00.0").has_value());
}

TEST_CASE("correctness is judged against the row's own precision", "[calibrate][accuracy]") {
  Row r = ok_row(Backend::cuda, Precision::bf16, 1, 1, 1);
  r.problem.seq_len = 1024;
  r.correctness_rel_l2 = 5e-3;  // bf16 rounding of the probabilities and the output
  judge_correctness(r);
  REQUIRE(r.correctness_tolerance.has_value());
  CHECK(*r.correctness_tolerance == correctness_tolerance(Precision::bf16, 1024));
  CHECK(r.warnings.empty());
  r.problem.precision = Precision::fp32;  // the same error at fp32 is wrong
  judge_correctness(r);
  CHECK(*r.correctness_tolerance == 1e-5);
  REQUIRE(r.warnings.size() == 1);
  CHECK(r.warnings[0].find("exceeds the fp32 tolerance") != std::string::npos);
  Row none;
  judge_correctness(none);  // no error figure, nothing to judge
  CHECK_FALSE(none.correctness_tolerance.has_value());
}

TEST_CASE("a runner's notes fill the row's measurement fields", "[calibrate][backend]") {
  Row r;
  r.timing_method = "cuda_events";
  r.warnings = {"earlier"};
  RunNotes n;
  n.timing_method = "cuda_graph";
  n.cache = "cold";
  n.launch_overhead_ms = 0.012;
  n.measured_device_bytes = 4096;
  n.warnings = {"later"};
  apply_run_notes(n, r);
  CHECK(r.timing_method == "cuda_graph");
  CHECK(r.cache == "cold");
  CHECK(*r.launch_overhead_ms == 0.012);
  CHECK(*r.measured_device_bytes == 4096);
  CHECK(r.warnings == std::vector<std::string>{"earlier", "later"});
  apply_run_notes(RunNotes{}, r);  // empty notes change nothing
  CHECK(r.timing_method == "cuda_graph");
  // the cpu runner times with the steady clock and flushes nothing
  const RunNotes cpu = make_cpu_runner()->notes();
  CHECK(cpu.timing_method == "steady_clock");
  CHECK(cpu.cache == "warm");
  CHECK_FALSE(cpu.launch_overhead_ms.has_value());
}

TEST_CASE("library bytes: the cuBLAS workspace, counted for every kernel that calls cuBLAS",
          "[calibrate][backend]") {
  CHECK(cublas_workspace_bytes(9) == size_t(32) << 20);
  CHECK(cublas_workspace_bytes(8) == size_t(4) << 20);
  for (const Kernel* k : Registry::instance().kernels()) {
    INFO(k->info().name << " " << backend_name(k->info().backend));
    const Problem p = with_defaults(*k, Problem{});
    const bool calls = k->info().name.rfind("lisa_", 0) == 0 ||
                       k->info().name == "vanilla_materialized" || k->info().name == "vanilla_eager";
    // cpu kernels never call cuBLAS; the cuda ones that do are exactly the GEMM pipelines
    CHECK(k->uses_cublas(p) == (k->info().backend == Backend::cuda && calls));
  }
}

}  // namespace attnbench::testing
