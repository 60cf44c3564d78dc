// This machine's ceilings, measured in one short run (`attnbench calibrate`), and the
// roofline every results row is read against (docs/measurement.md section 5).
// cpu (calibrate.cpp):
//   sgemm rate       OpenBLAS sgemm on a large square problem, all threads
//   one-thread rate  the same sgemm on one thread
//   bandwidth        a large copy, bytes read + bytes written per second, all threads
// cuda device 0 (calibrate_cuda.cpp; environment.calibration.gpu):
//   GEMM rates       cuBLAS on large square products at fp32, tf32, bf16 and fp16
//   bandwidth        a device-to-device copy, bytes read + written per second
//   clocks           the GPU's name, SM count, clocks and throttle reasons while calibrating
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attnbench/problem.hpp"
#include "results.hpp"

namespace attnbench {

struct Calibration {
  double sgemm_gflops = 0;              // all threads
  double sgemm_gflops_one_thread = 0;
  double bandwidth_gbs = 0;             // GB/s (1e9 bytes), read + write
  int threads = 0;
  int64_t sgemm_n = 0;                  // square size used
  size_t copy_bytes = 0;                // bytes per copied buffer
  double seconds = 0;                   // how long calibrating took
  bool valid() const { return sgemm_gflops > 0 && bandwidth_gbs > 0; }
};

// One n x n x n single-precision product (cblas_sgemm, row-major) on seeded inputs: the one
// product every sgemm rate of the harness is measured with (calibrate, the sweep's lower
// bound of a point's time, the time gate's reference).
class SgemmProduct {
 public:
  // `outputs`: separate output buffers, so that that many threads can multiply at once.
  explicit SgemmProduct(int64_t n, int outputs = 1);
  void run(int output = 0);  // C[output] = A B
  int64_t n() const { return n_; }
  double flop() const { return 2.0 * double(n_) * double(n_) * double(n_); }

 private:
  int64_t n_;
  std::vector<float> a_, b_, c_;
};

// A quick sgemm rate (GFLOP/s) of this machine, erring high (best of all-threads and
// per-thread-parallel runs of a 384^3 product, at least 16 GFLOP/s per thread): the sweep's
// lower bound of a point's time must not skip points that can run.
double measure_sgemm_gflops();

// Measures the ceilings; `quick` uses smaller sizes (for tests), the default takes ~2-4 s.
Calibration calibrate(bool quick = false);

nlohmann::json to_json(const Calibration& c);
Calibration calibration_from_json(const nlohmann::json& j);

// Which ceiling binds a kernel: its arithmetic intensity (flops per byte it must move)
// against the machine balance (sgemm rate / bandwidth).
struct Roofline {
  std::string bound;        // "compute" or "memory"
  double floor_ms = 0;      // max(flops / sgemm rate, bytes / bandwidth)
  double pct_of_peak = 0;   // achieved rate over the binding ceiling, in percent
};
Roofline roofline(double flops, double bytes, double time_ms, const Calibration& c);
// The same against any pair of ceilings (GFLOP/s, GB/s); empty bound when either is not > 0.
Roofline roofline_at(double flops, double bytes, double time_ms, double gflops, double gbs);

struct GpuCalibration {
  std::string name, compute_capability;
  int sm_count = 0;
  int sm_clock_mhz = 0, max_sm_clock_mhz = 0, memory_clock_mhz = 0;  // after the GEMMs
  std::string throttle;                     // throttle reasons then ("" none or unknown)
  int64_t gemm_n = 0;                       // square size of the products
  std::array<double, 4> gemm_gflops{};      // per Precision (fp32, tf32, bf16, fp16)
  size_t copy_bytes = 0;                    // bytes per copied buffer
  double bandwidth_gbs = 0;                 // device-to-device copy, read + write
  int reps = 0;                             // timed runs per figure (best kept)
  double seconds = 0;
  double gemm_rate(Precision p) const { return gemm_gflops[size_t(p)]; }
  bool valid() const { return gemm_rate(Precision::fp32) > 0 && bandwidth_gbs > 0; }
};

// Measures device 0 (a few seconds; `quick`: small sizes). nullopt, with `why`, without the
// CUDA backend or a device.
std::optional<GpuCalibration> calibrate_gpu(bool quick, std::string* why = nullptr);
nlohmann::json to_json(const GpuCalibration& g);
// environment.calibration's `gpu` object, or nullopt when absent or unusable.
std::optional<GpuCalibration> gpu_calibration_from_json(const nlohmann::json& calibration);
// The lines `attnbench calibrate` prints for a GPU.
std::string describe(const GpuCalibration& g);

// The roofline of an ok row against the file's calibration (environment.calibration): cpu rows
// against the sgemm rate and the copy bandwidth, cuda rows against the GEMM rate of their
// precision and the device copy bandwidth. Empty bound when there is no such ceiling.
Roofline roofline_for(const Row& r, const ojson& calibration);
// Sets the row's roofline_bound, floor_ms and pct_of_peak, and its phases' bound and
// pct_of_peak, from roofline_for's ceilings (nothing without them).
void fill_roofline(Row& r, const ojson& calibration);

}  // namespace attnbench
