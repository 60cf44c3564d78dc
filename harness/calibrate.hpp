// This machine's ceilings, measured in one short run (`attnbench calibrate`), and the
// roofline every results row is read against (issue: CPU kernels at the machine's limits).
//   sgemm rate       OpenBLAS sgemm on a large square problem, all threads
//   one-thread rate  the same sgemm on one thread
//   bandwidth        a large copy, bytes read + bytes written per second, all threads
#pragma once

#include <cstddef>
#include <string>

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
