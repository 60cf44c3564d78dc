// The cuda runner (backend.hpp): one device (0), a dedicated non-blocking stream, one cuBLAS
// handle bound to it, CUDA events around each run, and every byte of a point (inputs,
// output, prepared state, scratch and the cuBLAS workspace) from one cudaMallocAsync memory
// pool whose used-memory high-water mark (cudaMemPoolAttrUsedMemHigh, reset before each
// point's setup) is the measured peak. Without the CUDA backend (ATTNBENCH_HAVE_CUDA unset)
// only stubs are compiled: no runner, no device, no GPU information.
#include "backend.hpp"

#include <fmt/format.h>

#if defined(ATTNBENCH_HAVE_CUDA)
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "attnbench/cuda/check.hpp"
#include "attnbench/cuda/cuda_kernel.hpp"
#endif

namespace attnbench {

#if defined(ATTNBENCH_HAVE_CUDA)
namespace {

constexpr int kDevice = 0;

// cuBLAS's recommended user workspace: 32 MiB on Hopper and later, 4 MiB before.
size_t cublas_workspace_bytes(int cc_major) {
  return (cc_major >= 9 ? size_t(32) : size_t(4)) << 20;
}

std::string version_string(int v) { return fmt::format("{}.{}", v / 1000, (v % 1000) / 10); }

class CudaRunner final : public BackendRunner {
 public:
  CudaRunner() {
    try {
      AB_CUDA_CHECK(cudaSetDevice(kDevice));
      AB_CUDA_CHECK(cudaDeviceGetAttribute(&cc_major_, cudaDevAttrComputeCapabilityMajor, kDevice));
      int l2 = 0;
      AB_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, kDevice));
      AB_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
      AB_CUDA_CHECK(cudaEventCreate(&start_));
      AB_CUDA_CHECK(cudaEventCreate(&stop_));
      AB_CUBLAS_CHECK(cublasCreate(&cublas_));
      AB_CUBLAS_CHECK(cublasSetPointerMode(cublas_, CUBLAS_POINTER_MODE_HOST));
      // Plain FP32 products (no TF32 tensor-core rounding): the kernels are checked against
      // float64 at float32 rounding level (kernels.md section 5).
      AB_CUBLAS_CHECK(cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH));
      AB_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
      cudaMemPoolProps props{};
      props.allocType = cudaMemAllocationTypePinned;
      props.handleTypes = cudaMemHandleTypeNone;
      props.location.type = cudaMemLocationTypeDevice;
      props.location.id = kDevice;
      AB_CUDA_CHECK(cudaMemPoolCreate(&pool_, &props));
      // The flush buffer is the runner's, not the point's: plain cudaMalloc, outside the pool,
      // so it never shows in a point's peak.
      flush_bytes_ = 2 * size_t(l2 > 0 ? l2 : (1 << 20));
      AB_CUDA_CHECK(cudaMalloc(&flush_, flush_bytes_));
    } catch (...) {
      release();
      throw;
    }
  }
  ~CudaRunner() override {
    try {
      teardown();
    } catch (...) {
      // a destructor cannot report; the device error was already reported by the failing call
    }
    release();
  }

  Backend backend() const override { return Backend::cuda; }

  void setup(const Kernel& k, const Problem& p, const HostInputs& in) override {
    teardown();
    if (k.info().backend != Backend::cuda)
      throw InvalidProblem(fmt::format("{} is a {} kernel, not a cuda kernel", k.info().name,
                                       backend_name(k.info().backend)));
    k.validate(p);
    k.validate_inputs(p, in.view());
    const WorkspaceSize ws = k.workspace(p);
    const InputSizes sizes = input_sizes(p, k.info().inputs);
    const auto* traits = dynamic_cast<const gpu::CudaKernelTraits*>(&k);
    const bool cublas = traits ? traits->uses_cublas(p) : true;

    // The cuBLAS workspace is memory the point needs (cuBLAS would otherwise take its own,
    // invisibly, outside the pool), but it is not part of the kernel's workspace query, which
    // describes the algorithm and matches the cpu backend. It is counted in scratch_bytes
    // here so that the runner's figures add up to what the pool measures
    // (peak_bytes() == inputs + output + prepared + scratch); the difference from the kernel's
    // own query is exactly cublas_workspace_bytes(), 32 MiB on Hopper, for kernels that call
    // cuBLAS and 0 for the others.
    cublas_ws_bytes_ = cublas ? cublas_workspace_bytes(cc_major_) : 0;
    mem_ = {};
    mem_.inputs_bytes = sizes.bytes();
    mem_.outputs_bytes = output_bytes(p);
    mem_.prepared_bytes = ws.prepared_bytes;
    mem_.scratch_bytes = ws.scratch_bytes + cublas_ws_bytes_;

    AB_CUDA_CHECK(cudaSetDevice(kDevice));
    AB_CUDA_CHECK(cudaStreamSynchronize(stream_));
    AB_CUDA_CHECK(cudaMemPoolGetAttribute(pool_, cudaMemPoolAttrUsedMemCurrent, &used_at_reset_));
    std::uint64_t zero = 0;  // the high-water mark can only be reset to 0 (= current use)
    AB_CUDA_CHECK(cudaMemPoolSetAttribute(pool_, cudaMemPoolAttrUsedMemHigh, &zero));
    try {
      view_ = {};
      view_.q = upload(in.q, sizes.q, "q", k, p);
      view_.k = upload(in.k, sizes.k, "k", k, p);
      view_.v = upload(in.v, sizes.v, "v", k, p);
      view_.codes = upload(in.codes, sizes.codes, "codes", k, p);
      view_.codebooks = upload(in.codebooks, sizes.codebooks, "codebooks", k, p);
      view_.wq = upload(in.wq, sizes.wq, "wq", k, p);
      view_.wk = upload(in.wk, sizes.wk, "wk", k, p);
      view_.wv = upload(in.wv, sizes.wv, "wv", k, p);
      view_.probs = upload(in.probs, sizes.probs, "probs", k, p);
      view_.conv = upload(in.conv, sizes.conv, "conv", k, p);
      // The output starts poisoned (inputs.hpp), so an element a kernel never writes shows.
      std::vector<float> poisoned(output_elems(p));
      poison(poisoned.data(), poisoned.size());
      out_ = static_cast<float*>(upload(poisoned, poisoned.size(), "output", k, p));
      prepared_ = allocate(ws.prepared_bytes, "prepared state", k, p);
      scratch_ = allocate(ws.scratch_bytes, "scratch", k, p);
      cublas_ws_ = allocate(cublas_ws_bytes_, "cuBLAS workspace", k, p);
      // cublasSetStream resets the handle's workspace, so the stream is set first.
      AB_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
      if (cublas_ws_) AB_CUBLAS_CHECK(cublasSetWorkspace(cublas_, cublas_ws_, cublas_ws_bytes_));
      kernel_ = &k;
      problem_ = p;
      ctx_ = ExecContext{};
      ctx_.cuda_stream = stream_;
      ctx_.cublas = cublas_;
      k.prepare(p, view_, prepared_, ctx_);
      AB_CUDA_CHECK(cudaStreamSynchronize(stream_));
    } catch (...) {
      teardown();
      throw;
    }
  }

  double run_once_ms() override {
    if (!kernel_) throw std::logic_error("cuda runner: run before setup");
    AB_CUDA_CHECK(cudaEventRecord(start_, stream_));
    kernel_->run(problem_, view_, prepared_, scratch_, out_, ctx_);
    AB_CUDA_CHECK(cudaEventRecord(stop_, stream_));
    AB_CUDA_CHECK(cudaEventSynchronize(stop_));
    float ms = 0;
    AB_CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
    return ms;
  }

  // Between samples, overwrite twice the L2 size when the point's working set would otherwise
  // stay (largely) resident in L2 from the previous sample: anything under 2 x L2.
  void flush_cache() override {
    if (!kernel_ || mem_.peak_bytes() >= flush_bytes_) return;
    flush_value_ = (flush_value_ + 1) & 0xff;
    AB_CUDA_CHECK(cudaMemsetAsync(flush_, flush_value_, flush_bytes_, stream_));
  }

  std::vector<float> output() override {
    if (!kernel_) throw std::logic_error("cuda runner: output before setup");
    std::vector<float> host(output_elems(problem_));
    AB_CUDA_CHECK(cudaMemcpyAsync(host.data(), out_, host.size() * sizeof(float),
                                  cudaMemcpyDeviceToHost, stream_));
    AB_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return host;
  }

  MemoryFigures memory() const override { return mem_; }

  // Pool memory in use at the high-water mark since setup began, less what was in use when
  // it was reset (0 unless an earlier point leaked). Only allocations from the pool count:
  // the runner makes every allocation of a point there, and gives cuBLAS its workspace from
  // it; memory a library took with plain cudaMalloc would not show.
  size_t measured_peak_bytes() const override {
    std::uint64_t high = 0;
    AB_CUDA_CHECK(cudaMemPoolGetAttribute(pool_, cudaMemPoolAttrUsedMemHigh, &high));
    return high > used_at_reset_ ? size_t(high - used_at_reset_) : 0;
  }

  void teardown() override {
    kernel_ = nullptr;
    view_ = {};
    out_ = nullptr;
    prepared_ = scratch_ = cublas_ws_ = nullptr;
    if (allocations_.empty()) return;
    std::string first_error;
    auto note = [&](cudaError_t e, const char* what) {
      if (e != cudaSuccess && first_error.empty())
        first_error = fmt::format("cuda runner teardown: {}: {}", what, cudaGetErrorString(e));
    };
    note(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    // Detach the workspace before it is freed (cublasSetStream resets it to cuBLAS's own).
    if (cublasSetStream(cublas_, stream_) != CUBLAS_STATUS_SUCCESS && first_error.empty())
      first_error = "cuda runner teardown: cublasSetStream failed";
    for (void* ptr : allocations_) note(cudaFreeAsync(ptr, stream_), "cudaFreeAsync");
    allocations_.clear();
    note(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    if (!first_error.empty()) throw std::runtime_error(first_error);
  }

 private:
  void* allocate(size_t bytes, const char* what, const Kernel& k, const Problem& p) {
    if (bytes == 0) return nullptr;
    void* ptr = nullptr;
    const cudaError_t e = cudaMallocFromPoolAsync(&ptr, bytes, pool_, stream_);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();  // an allocation failure is not sticky; clear it
      throw std::runtime_error(fmt::format(
          "cuda: cannot allocate {} bytes of device memory for the {} of {} ({}): {}", bytes,
          what, k.info().name, describe(p), cudaGetErrorString(e)));
    }
    allocations_.push_back(ptr);
    return ptr;
  }
  template <class T>
  T* upload(const std::vector<T>& host, size_t count, const char* what, const Kernel& k,
            const Problem& p) {
    if (count == 0) return nullptr;
    if (host.size() < count)
      throw InvalidProblem(fmt::format("{}: input '{}' has {} elements, {} needs {}",
                                       k.info().name, what, host.size(), describe(p), count));
    auto* dev = static_cast<T*>(allocate(count * sizeof(T), what, k, p));
    AB_CUDA_CHECK(
        cudaMemcpyAsync(dev, host.data(), count * sizeof(T), cudaMemcpyHostToDevice, stream_));
    return dev;
  }
  // Frees the runner's own resources (destructor, or a constructor that failed half-way).
  void release() noexcept {
    if (flush_) (void)cudaFree(flush_);
    if (pool_) (void)cudaMemPoolDestroy(pool_);
    if (cublas_) (void)cublasDestroy(cublas_);
    if (start_) (void)cudaEventDestroy(start_);
    if (stop_) (void)cudaEventDestroy(stop_);
    if (stream_) (void)cudaStreamDestroy(stream_);
    flush_ = nullptr;
    pool_ = nullptr;
    cublas_ = nullptr;
    start_ = stop_ = nullptr;
    stream_ = nullptr;
  }

  int cc_major_ = 0;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  cudaMemPool_t pool_ = nullptr;
  void* flush_ = nullptr;
  size_t flush_bytes_ = 0;
  int flush_value_ = 0;

  const Kernel* kernel_ = nullptr;
  Problem problem_;
  ExecContext ctx_;
  MemoryFigures mem_;
  Inputs view_;
  float* out_ = nullptr;
  void* prepared_ = nullptr;
  void* scratch_ = nullptr;
  void* cublas_ws_ = nullptr;
  size_t cublas_ws_bytes_ = 0;
  std::uint64_t used_at_reset_ = 0;
  std::vector<void*> allocations_;
};

}  // namespace

bool cuda_available(std::string* why) {
  int devices = 0;
  const cudaError_t e = cudaGetDeviceCount(&devices);
  if (e != cudaSuccess || devices == 0) {
    (void)cudaGetLastError();
    if (why)
      *why = e != cudaSuccess ? fmt::format("no CUDA device ({})", cudaGetErrorString(e))
                              : std::string("no CUDA device (device count is 0)");
    return false;
  }
  return true;
}

std::unique_ptr<BackendRunner> make_cuda_runner() {
  std::string why;
  if (!cuda_available(&why)) throw InvalidProblem("cuda backend: " + why);
  return std::make_unique<CudaRunner>();
}

std::optional<GpuInfo> gpu_info() {
  if (!cuda_available(nullptr)) return std::nullopt;
  cudaDeviceProp prop{};
  int driver = 0, runtime = 0;
  if (cudaGetDeviceProperties(&prop, kDevice) != cudaSuccess ||
      cudaDriverGetVersion(&driver) != cudaSuccess ||
      cudaRuntimeGetVersion(&runtime) != cudaSuccess) {
    (void)cudaGetLastError();
    return std::nullopt;
  }
  GpuInfo g;
  g.name = prop.name;
  g.memory_bytes = prop.totalGlobalMem;
  g.driver_version = version_string(driver);
  g.runtime_version = version_string(runtime);
  g.compute_capability = fmt::format("{}.{}", prop.major, prop.minor);
  return g;
}

#else  // !ATTNBENCH_HAVE_CUDA

bool cuda_available(std::string* why) {
  if (why) *why = "built without the CUDA backend";
  return false;
}

std::unique_ptr<BackendRunner> make_cuda_runner() {
  throw InvalidProblem("cuda backend: built without the CUDA backend");
}

std::optional<GpuInfo> gpu_info() { return std::nullopt; }

#endif

}  // namespace attnbench
