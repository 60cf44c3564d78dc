// The GPU's ceilings (calibrate.hpp, docs/measurement.md section 5.1): cuBLAS GEMM rates of
// large square products at each precision, the device-to-device copy bandwidth, and the
// device's name and clocks while calibrating. Each figure is the best of a few timed runs
// (CUDA events around one product or copy) after one warm-up. Without the CUDA backend only
// the JSON and text helpers are compiled, and calibrate_gpu says why it measured nothing.
#include <fmt/format.h>

#include <chrono>

#include "backend.hpp"
#include "calibrate.hpp"

#if defined(ATTNBENCH_HAVE_CUDA)
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "attnbench/cuda/check.hpp"
#include "device_data.hpp"
#endif

namespace attnbench {

#if defined(ATTNBENCH_HAVE_CUDA)
namespace {

// The device resources of one calibration, released however it ends.
struct GpuBench {
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  cublasHandle_t cublas = nullptr;
  std::vector<void*> buffers;
  GpuBench() {
    AB_CUDA_CHECK(cudaSetDevice(0));
    AB_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    AB_CUDA_CHECK(cudaEventCreate(&start));
    AB_CUDA_CHECK(cudaEventCreate(&stop));
    AB_CUBLAS_CHECK(cublasCreate(&cublas));
    AB_CUBLAS_CHECK(cublasSetStream(cublas, stream));
    AB_CUBLAS_CHECK(cublasSetMathMode(cublas, CUBLAS_DEFAULT_MATH));  // fp32 stays FP32
  }
  ~GpuBench() {
    (void)cudaStreamSynchronize(stream);
    for (void* b : buffers) (void)cudaFree(b);
    if (cublas) (void)cublasDestroy(cublas);
    if (start) (void)cudaEventDestroy(start);
    if (stop) (void)cudaEventDestroy(stop);
    if (stream) (void)cudaStreamDestroy(stream);
  }
  void* alloc(size_t bytes) {
    void* p = nullptr;
    AB_CUDA_CHECK(cudaMalloc(&p, bytes));
    buffers.push_back(p);
    return p;
  }
  // Best time in ms of `reps` runs of f after one warm-up, each between two events.
  template <class F>
  double best_ms(int reps, F&& f) {
    f();
    double best = 1e300;
    for (int r = 0; r < reps; ++r) {
      AB_CUDA_CHECK(cudaEventRecord(start, stream));
      f();
      AB_CUDA_CHECK(cudaEventRecord(stop, stream));
      AB_CUDA_CHECK(cudaEventSynchronize(stop));
      float ms = 0;
      AB_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
      best = std::min(best, double(ms));
    }
    return best;
  }
};

// n x n operands of normal-ish values (a zero matrix would draw less power and overstate the
// rate), stored as precision p stores q, k and v.
void* random_operand(GpuBench& b, int64_t n, Precision p, uint64_t seed) {
  std::vector<float> host(size_t(n * n));
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (float& v : host) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;  // LCG: cheap and reproducible
    v = round_to(p, float(int64_t(x >> 40) - (int64_t(1) << 23)) / float(1 << 23));
  }
  const std::vector<unsigned char> bytes = to_storage(host, host.size(), p);
  void* d = b.alloc(bytes.size());
  AB_CUDA_CHECK(cudaMemcpy(d, bytes.data(), bytes.size(), cudaMemcpyHostToDevice));
  return d;
}

// GFLOP/s of C = A B (n x n) at precision p: float32 accumulation, TF32 tensor cores for tf32,
// C stored like A and B.
double gemm_gflops(GpuBench& b, int64_t n, Precision p, int reps) {
  const cudaDataType_t t = p == Precision::bf16   ? CUDA_R_16BF
                           : p == Precision::fp16 ? CUDA_R_16F
                                                  : CUDA_R_32F;
  const cublasComputeType_t compute =
      p == Precision::tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  void* a = random_operand(b, n, p, 1);
  void* bm = random_operand(b, n, p, 2);
  void* c = b.alloc(size_t(n * n) * storage_bytes(p));
  const float one = 1.0f, zero = 0.0f;
  const int ni = int(n);
  const double ms = b.best_ms(reps, [&] {
    AB_CUBLAS_CHECK(cublasGemmEx(b.cublas, CUBLAS_OP_N, CUBLAS_OP_N, ni, ni, ni, &one, a, t, ni,
                                 bm, t, ni, &zero, c, t, ni, compute, CUBLAS_GEMM_DEFAULT));
  });
  for (void* x : {a, bm, c}) {  // free now: the copy test needs the memory
    (void)cudaFree(x);
    b.buffers.erase(std::find(b.buffers.begin(), b.buffers.end(), x));
  }
  return 2.0 * double(n) * double(n) * double(n) / (ms * 1e-3) / 1e9;
}

double copy_gbs(GpuBench& b, size_t bytes, int reps) {
  void* src = b.alloc(bytes);
  void* dst = b.alloc(bytes);
  AB_CUDA_CHECK(cudaMemsetAsync(src, 1, bytes, b.stream));
  const double ms = b.best_ms(reps, [&] {
    AB_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, b.stream));
  });
  return 2.0 * double(bytes) / (ms * 1e-3) / 1e9;  // read + written
}

}  // namespace

std::optional<GpuCalibration> calibrate_gpu(bool quick, std::string* why) {
  if (!cuda_available(why)) return std::nullopt;
  const auto t0 = std::chrono::steady_clock::now();
  GpuCalibration g;
  g.gemm_n = quick ? 1024 : 8192;
  g.copy_bytes = quick ? (size_t(64) << 20) : (size_t(1) << 30);
  g.reps = quick ? 2 : 5;
  {
    GpuBench b;
    for (Precision p : kAllPrecisions) g.gemm_gflops[size_t(p)] = gemm_gflops(b, g.gemm_n, p, g.reps);
    g.bandwidth_gbs = copy_gbs(b, g.copy_bytes, g.reps);
  }
  if (const auto info = gpu_info()) {  // read right after the work: the clocks under load
    g.name = info->name;
    g.compute_capability = info->compute_capability;
    g.sm_count = info->sm_count;
    g.sm_clock_mhz = info->sm_clock_mhz;
    g.max_sm_clock_mhz = info->max_sm_clock_mhz;
    g.memory_clock_mhz = info->memory_clock_mhz;
    g.throttle = info->throttle;
  }
  g.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return g;
}

#else  // !ATTNBENCH_HAVE_CUDA

std::optional<GpuCalibration> calibrate_gpu(bool, std::string* why) {
  if (why) *why = "built without the CUDA backend";
  return std::nullopt;
}

#endif

nlohmann::json to_json(const GpuCalibration& g) {
  nlohmann::json rates = nlohmann::json::object();
  for (Precision p : kAllPrecisions) rates[precision_name(p)] = g.gemm_rate(p);
  return {{"name", g.name},
          {"compute_capability", g.compute_capability},
          {"sm_count", g.sm_count},
          {"sm_clock_mhz", g.sm_clock_mhz},
          {"max_sm_clock_mhz", g.max_sm_clock_mhz},
          {"memory_clock_mhz", g.memory_clock_mhz},
          {"throttle", g.throttle},
          {"gemm_n", g.gemm_n},
          {"gemm_gflops", rates},
          {"copy_bytes", g.copy_bytes},
          {"bandwidth_gbs", g.bandwidth_gbs},
          {"reps", g.reps},
          {"seconds", g.seconds}};
}

std::optional<GpuCalibration> gpu_calibration_from_json(const nlohmann::json& calibration) {
  if (!calibration.is_object()) return std::nullopt;
  const auto it = calibration.find("gpu");
  if (it == calibration.end() || !it->is_object()) return std::nullopt;
  const nlohmann::json& j = *it;
  GpuCalibration g;
  g.name = j.value("name", "");
  g.compute_capability = j.value("compute_capability", "");
  g.sm_count = j.value("sm_count", 0);
  g.sm_clock_mhz = j.value("sm_clock_mhz", 0);
  g.max_sm_clock_mhz = j.value("max_sm_clock_mhz", 0);
  g.memory_clock_mhz = j.value("memory_clock_mhz", 0);
  g.throttle = j.value("throttle", "");
  g.gemm_n = j.value("gemm_n", int64_t(0));
  if (const auto r = j.find("gemm_gflops"); r != j.end() && r->is_object())
    for (Precision p : kAllPrecisions) g.gemm_gflops[size_t(p)] = r->value(precision_name(p), 0.0);
  g.copy_bytes = j.value("copy_bytes", size_t(0));
  g.bandwidth_gbs = j.value("bandwidth_gbs", 0.0);
  g.reps = j.value("reps", 0);
  g.seconds = j.value("seconds", 0.0);
  if (!g.valid()) return std::nullopt;
  return g;
}

std::string describe(const GpuCalibration& g) {
  std::string s = fmt::format("{} (compute capability {}, {} SMs)\n", g.name,
                              g.compute_capability, g.sm_count);
  s += fmt::format("cuBLAS GEMM ({0} x {0} x {0}, best of {1}):", g.gemm_n, g.reps);
  for (Precision p : kAllPrecisions)
    s += fmt::format(" {} {:.1f}", precision_name(p), g.gemm_rate(p) / 1e3);
  s += " TFLOP/s\n";
  s += fmt::format("device copy bandwidth:   {:.1f} GB/s (read + write, {} per buffer)\n",
                   g.bandwidth_gbs, format_bytes(double(g.copy_bytes)));
  s += fmt::format("clocks after the GEMMs:  SM {} MHz (max {}), memory {} MHz{}\n",
                   g.sm_clock_mhz, g.max_sm_clock_mhz, g.memory_clock_mhz,
                   g.throttle.empty() ? "" : ", throttled: " + g.throttle);
  s += fmt::format("fp32 balance:            {:.1f} FLOP per byte ({:.1f} s to calibrate)\n",
                   g.bandwidth_gbs > 0 ? g.gemm_rate(Precision::fp32) / g.bandwidth_gbs : 0.0,
                   g.seconds);
  return s;
}

}  // namespace attnbench
