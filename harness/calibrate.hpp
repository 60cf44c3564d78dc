// This machine's ceilings, measured in one short run (`attnbench calibrate`), and the
// roofline every results row is read against (issue: CPU kernels at the machine's limits).
//   sgemm rate       OpenBLAS sgemm on a large square problem, all threads
//   one-thread rate  the same sgemm on one thread
//   bandwidth        a large copy, bytes read + bytes written per second, all threads
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

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

}  // namespace attnbench
