// The cuda runner (backend.hpp), docs/measurement.md sections 3.4 and 4.3:
// - one device (0), a dedicated non-blocking stream, one cuBLAS handle bound to it;
// - every byte of a point (inputs, output, prepared state, scratch and the cuBLAS workspace)
//   from one cudaMallocAsync memory pool whose high-water mark (UsedMemHigh, reset before each
//   point's setup) is the measured peak; the device's own free-memory counter read before setup
//   (pool trimmed) and after the last sample gives measured_device_bytes besides;
// - a call is captured once per point into a CUDA graph, and each sample replays it between two
//   events, the stream held by a host-function gate while the events and the graph are
//   enqueued, so nothing but device work lies between the events; the host cost of enqueueing
//   one direct call is measured apart (launch_overhead_ms). A call that cannot be captured is
//   launched directly between the events instead (cuda_events, ungated, with the reason in the
//   row's warnings);
// - before every sample (and warm-up run) a memset of twice the L2 size evicts the previous
//   run's data, unless the runner is warm (attnbench sweep --warm).
// Without the CUDA backend (ATTNBENCH_HAVE_CUDA unset) only stubs are compiled.
#include "backend.hpp"

#include <fmt/format.h>

#if defined(ATTNBENCH_HAVE_CUDA)
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include "attnbench/cuda/check.hpp"
#include "device_data.hpp"
#include "nvml.hpp"
#endif

namespace attnbench {

#if defined(ATTNBENCH_HAVE_CUDA)
namespace {

constexpr int kDevice = 0;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::string version_string(int v) { return fmt::format("{}.{}", v / 1000, (v % 1000) / 10); }

// Holds a stream while work is enqueued behind it: a host function that waits until the host
// opens the gate. A host thread blocked inside an enqueue (a call whose launches overflow the
// stream's queue) could never open it, so the wait gives up after kMaxWait and says so.
class StreamGate {
 public:
  static constexpr double kMaxWaitMs = 2000;
  // Called only once the previous wait has returned (its stream was synchronized since).
  void close(cudaStream_t s) {
    open_.store(false, std::memory_order_release);
    gave_up_.store(false, std::memory_order_release);
    AB_CUDA_CHECK(cudaLaunchHostFunc(s, &StreamGate::wait, this));
  }
  void open() { open_.store(true, std::memory_order_release); }
  bool gave_up() const { return gave_up_.load(std::memory_order_acquire); }

 private:
  static void CUDART_CB wait(void* self) {
    auto* g = static_cast<StreamGate*>(self);
    const auto t0 = Clock::now();
    while (!g->open_.load(std::memory_order_acquire)) {
      if (ms_since(t0) > kMaxWaitMs) {
        g->gave_up_.store(true, std::memory_order_release);
        return;
      }
      std::this_thread::yield();
    }
  }
  std::atomic<bool> open_{true}, gave_up_{false};
};

// Opens the gate however the enqueueing ends (an exception included).
struct GateOpener {
  StreamGate& g;
  ~GateOpener() { g.open(); }
};

struct DeviceFigures {
  int cc_major = 0;
  size_t l2_bytes = 0;
};

DeviceFigures device_figures() {
  DeviceFigures d;
  int l2 = 0;
  AB_CUDA_CHECK(cudaDeviceGetAttribute(&d.cc_major, cudaDevAttrComputeCapabilityMajor, kDevice));
  AB_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, kDevice));
  d.l2_bytes = size_t(l2 > 0 ? l2 : (1 << 20));
  return d;
}

void check_input_size(size_t have, size_t need, const char* what, const Kernel& k,
                      const Problem& p) {
  if (have < need)
    throw InvalidProblem(fmt::format("{}: input '{}' has {} elements, {} needs {}",
                                     k.info().name, what, have, describe(p), need));
}

size_t device_free_bytes() {
  size_t free_b = 0, total = 0;
  AB_CUDA_CHECK(cudaMemGetInfo(&free_b, &total));
  return free_b;
}

class CudaRunner final : public BackendRunner {
 public:
  explicit CudaRunner(const RunnerOptions& o) : warm_(o.warm_cache) {
    try {
      AB_CUDA_CHECK(cudaSetDevice(kDevice));
      dev_ = device_figures();
      AB_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
      AB_CUDA_CHECK(cudaEventCreate(&start_));
      AB_CUDA_CHECK(cudaEventCreate(&stop_));
      AB_CUBLAS_CHECK(cublasCreate(&cublas_));
      AB_CUBLAS_CHECK(cublasSetPointerMode(cublas_, CUBLAS_POINTER_MODE_HOST));
      // Plain FP32 products unless a kernel asks for TF32 per call (compute type): fp32 rows
      // are checked against float64 at float32 rounding level (methods.md section 5).
      AB_CUBLAS_CHECK(cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH));
      AB_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
      cudaMemPoolProps props{};
      props.allocType = cudaMemAllocationTypePinned;
      props.handleTypes = cudaMemHandleTypeNone;
      props.location.type = cudaMemLocationTypeDevice;
      props.location.id = kDevice;
      AB_CUDA_CHECK(cudaMemPoolCreate(&pool_, &props));
      // The flush buffer is the runner's, not the point's: plain cudaMalloc, outside the pool,
      // allocated before any point's first free-memory reading.
      flush_bytes_ = 2 * dev_.l2_bytes;
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
    declare_memory(k, p);
    reset_measurements();
    try {
      allocate_point(k, p, in);
      kernel_ = &k;
      problem_ = p;
      ctx_ = ExecContext{};
      ctx_.cuda_stream = stream_;
      ctx_.cublas = cublas_;
      k.prepare(p, view_, prepared_, ctx_);
      AB_CUDA_CHECK(cudaStreamSynchronize(stream_));
      const double first_ms = prime();
      capture();
      if (graph_exec_) measure_launch_overhead(first_ms);
      // the timed runs start from a poisoned output, so an element they never write shows
      const auto poisoned = poisoned_storage(output_elems(p), p.precision);
      AB_CUDA_CHECK(cudaMemcpyAsync(out_, poisoned.data(), poisoned.size(),
                                    cudaMemcpyHostToDevice, stream_));
      AB_CUDA_CHECK(cudaStreamSynchronize(stream_));
    } catch (...) {
      teardown();
      throw;
    }
  }

  double run_once_ms() override {
    if (!kernel_) throw std::logic_error("cuda runner: run before setup");
    {
      GateOpener opener{gate_};
      if (gated_) gate_.close(stream_);
      AB_CUDA_CHECK(cudaEventRecord(start_, stream_));
      launch_call();
      AB_CUDA_CHECK(cudaEventRecord(stop_, stream_));
    }
    AB_CUDA_CHECK(cudaEventSynchronize(stop_));
    if (gated_ && gate_.gave_up()) {
      gated_ = false;  // the host could not open the gate in time: no gate from now on
      warnings_.push_back("the stream gate gave up before the sample was enqueued: this and "
                          "later samples may include host launch time");
    }
    float ms = 0;
    AB_CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
    return ms;
  }

  // Before every sample, overwrite twice the L2 size (a different byte each time), whatever
  // the point's size, unless warm: every sample starts from a cold L2.
  void flush_cache() override {
    if (!kernel_ || warm_) return;
    flush_value_ = (flush_value_ + 1) & 0xff;
    AB_CUDA_CHECK(cudaMemsetAsync(flush_, flush_value_, flush_bytes_, stream_));
  }

  std::vector<float> output() override {
    if (!kernel_) throw std::logic_error("cuda runner: output before setup");
    std::vector<unsigned char> bytes(output_bytes(problem_));
    AB_CUDA_CHECK(
        cudaMemcpyAsync(bytes.data(), out_, bytes.size(), cudaMemcpyDeviceToHost, stream_));
    AB_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return from_storage(bytes.data(), output_elems(problem_), problem_.precision);
  }

  MemoryFigures memory() const override { return mem_; }

  // Pool memory in use at the high-water mark since setup began, less what was in use when
  // it was reset (0 unless an earlier point leaked). Only allocations from the pool count:
  // the runner makes every allocation of a point there, and gives cuBLAS its workspace from
  // it; memory taken with plain cudaMalloc shows in measured_device_bytes (notes()) instead.
  size_t measured_peak_bytes() const override {
    std::uint64_t high = 0;
    AB_CUDA_CHECK(cudaMemPoolGetAttribute(pool_, cudaMemPoolAttrUsedMemHigh, &high));
    return high > used_at_reset_ ? size_t(high - used_at_reset_) : 0;
  }

  RunNotes notes() const override;

  void teardown() override;

 private:
  void declare_memory(const Kernel& k, const Problem& p);
  void reset_measurements();
  void allocate_point(const Kernel& k, const Problem& p, const HostInputs& in);
  double prime();
  void capture();
  void measure_launch_overhead(double first_ms);
  void launch_call();
  void* allocate(size_t bytes, const char* what, const Kernel& k, const Problem& p);
  const float* upload_qkv(const std::vector<float>& host, size_t count, const char* what,
                          const Kernel& k, const Problem& p);
  template <class T>
  const T* upload_as_is(const std::vector<T>& host, size_t count, const char* what,
                        const Kernel& k, const Problem& p);
  void release() noexcept;

  bool warm_ = false;
  DeviceFigures dev_;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  cudaMemPool_t pool_ = nullptr;
  void* flush_ = nullptr;
  size_t flush_bytes_ = 0;
  int flush_value_ = 0;
  StreamGate gate_;
  bool gated_ = true;

  const Kernel* kernel_ = nullptr;
  Problem problem_;
  ExecContext ctx_;
  MemoryFigures mem_;
  Inputs view_;
  float* out_ = nullptr;
  void* prepared_ = nullptr;
  void* scratch_ = nullptr;
  void* cublas_ws_ = nullptr;
  std::uint64_t used_at_reset_ = 0;
  size_t free_at_reset_ = 0;
  std::vector<void*> allocations_;
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t graph_exec_ = nullptr;
  std::optional<double> launch_overhead_ms_;
  std::vector<std::string> warnings_;
};

// The runner's own figures: inputs (q, k, v at the precision's storage), output, the kernel's
// workspace query, and the cuBLAS workspace as library memory for every kernel that calls
// cuBLAS (the same amount whatever the kernel; 0 for the others).
void CudaRunner::declare_memory(const Kernel& k, const Problem& p) {
  mem_ = declared_memory(k, p);
  mem_.library_bytes = k.uses_cublas(p) ? cublas_workspace_bytes(dev_.cc_major) : 0;
}

// Restarts the pool's high-water mark and reads the device's free memory with the pool
// trimmed to what is in use, so both figures start from this point's nothing.
void CudaRunner::reset_measurements() {
  AB_CUDA_CHECK(cudaSetDevice(kDevice));
  AB_CUDA_CHECK(cudaStreamSynchronize(stream_));
  AB_CUDA_CHECK(cudaMemPoolTrimTo(pool_, 0));
  AB_CUDA_CHECK(cudaMemPoolGetAttribute(pool_, cudaMemPoolAttrUsedMemCurrent, &used_at_reset_));
  std::uint64_t zero = 0;  // the high-water mark can only be reset to 0 (= current use)
  AB_CUDA_CHECK(cudaMemPoolSetAttribute(pool_, cudaMemPoolAttrUsedMemHigh, &zero));
  free_at_reset_ = device_free_bytes();
  gated_ = false;
  launch_overhead_ms_.reset();
  warnings_.clear();
}

void CudaRunner::allocate_point(const Kernel& k, const Problem& p, const HostInputs& in) {
  const InputSizes sizes = input_sizes(p, k.info().inputs);
  view_ = {};
  view_.q = upload_qkv(in.q, sizes.q, "q", k, p);
  view_.k = upload_qkv(in.k, sizes.k, "k", k, p);
  view_.v = upload_qkv(in.v, sizes.v, "v", k, p);
  view_.codes = upload_as_is(in.codes, sizes.codes, "codes", k, p);
  view_.codebooks = upload_as_is(in.codebooks, sizes.codebooks, "codebooks", k, p);
  view_.wq = upload_as_is(in.wq, sizes.wq, "wq", k, p);
  view_.wk = upload_as_is(in.wk, sizes.wk, "wk", k, p);
  view_.wv = upload_as_is(in.wv, sizes.wv, "wv", k, p);
  view_.probs = upload_as_is(in.probs, sizes.probs, "probs", k, p);
  view_.conv = upload_as_is(in.conv, sizes.conv, "conv", k, p);
  out_ = static_cast<float*>(allocate(mem_.outputs_bytes, "output", k, p));
  prepared_ = allocate(mem_.prepared_bytes, "prepared state", k, p);
  scratch_ = allocate(mem_.scratch_bytes, "scratch", k, p);
  cublas_ws_ = allocate(mem_.library_bytes, "cuBLAS workspace", k, p);
  // cublasSetStream resets the handle's workspace, so the stream is set first.
  AB_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
  if (cublas_ws_) AB_CUBLAS_CHECK(cublasSetWorkspace(cublas_, cublas_ws_, mem_.library_bytes));
}

// One direct call, untimed: lazy module loading, cuBLAS's first-call set-up and per-kernel
// attributes (flash.cuh) happen here, outside any capture and any sample. Returns its wall
// time in ms (bounds how many more direct calls the launch-overhead measurement may make).
double CudaRunner::prime() {
  const auto t0 = Clock::now();
  kernel_->run(problem_, view_, prepared_, scratch_, out_, ctx_);
  AB_CUDA_CHECK(cudaStreamSynchronize(stream_));
  return ms_since(t0);
}

// Captures one call into a graph. Any failure (a call that synchronizes, allocates or calls a
// library that cannot be captured) leaves the runner on direct launches, with the reason.
void CudaRunner::capture() {
  std::string why;
  AB_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
  try {
    kernel_->run(problem_, view_, prepared_, scratch_, out_, ctx_);
  } catch (const std::exception& e) {
    why = e.what();
  }
  cudaGraph_t g = nullptr;
  const cudaError_t end = cudaStreamEndCapture(stream_, &g);
  if (why.empty() && end != cudaSuccess) why = cudaGetErrorString(end);
  if (why.empty() && cudaGraphInstantiate(&graph_exec_, g, 0) != cudaSuccess) {
    why = "cudaGraphInstantiate failed";
    graph_exec_ = nullptr;
  }
  (void)cudaGetLastError();  // a failed capture is not sticky; clear it
  if (!why.empty()) {
    // A call that cannot be captured may wait for the device itself, so it is neither held
    // behind the gate nor timed for its launch overhead.
    if (g) (void)cudaGraphDestroy(g);
    warnings_.push_back("timed by events around direct launches, launch overhead included and "
                        "not measured apart: the call could not be captured into a CUDA graph (" +
                        why + ")");
    return;
  }
  graph_ = g;
  gated_ = true;
  AB_CUDA_CHECK(cudaGraphUpload(graph_exec_, stream_));
}

// launch_overhead_ms: the median host time of enqueueing one direct call while the gate holds
// the stream (the device runs it only after the host's clock stopped). Up to 7 calls; fewer
// when one call runs long (they all run on the device after the measurement).
void CudaRunner::measure_launch_overhead(double first_ms) {
  const int calls = first_ms > 200 ? 1 : first_ms > 20 ? 3 : 7;
  std::vector<double> ms;
  for (int c = 0; c < calls; ++c) {
    double t = 0;
    {
      GateOpener opener{gate_};
      gate_.close(stream_);
      const auto t0 = Clock::now();
      kernel_->run(problem_, view_, prepared_, scratch_, out_, ctx_);
      t = ms_since(t0);
    }
    AB_CUDA_CHECK(cudaStreamSynchronize(stream_));
    if (gate_.gave_up()) {
      warnings_.push_back("launch overhead not measured: enqueueing one call blocked on the "
                          "stream's full queue");
      return;
    }
    ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  launch_overhead_ms_ = ms[ms.size() / 2];
}

void CudaRunner::launch_call() {
  if (graph_exec_)
    AB_CUDA_CHECK(cudaGraphLaunch(graph_exec_, stream_));
  else
    kernel_->run(problem_, view_, prepared_, scratch_, out_, ctx_);
}

RunNotes CudaRunner::notes() const {
  RunNotes n;
  n.timing_method = graph_exec_ ? "cuda_graph" : "cuda_events";
  n.cache = warm_ ? "warm" : "cold";
  n.launch_overhead_ms = launch_overhead_ms_;
  n.warnings = warnings_;
  if (!kernel_) return n;
  const size_t now_free = device_free_bytes();
  const size_t device = free_at_reset_ > now_free ? free_at_reset_ - now_free : 0;
  n.measured_device_bytes = device;
  // Beyond the pool's peak by more than allocator granularity: memory taken outside the pool
  // (a library's own allocation; at a kernel's first use, the runtime loading its module or
  // growing the local-memory reservation for its threads; another process).
  constexpr size_t kSlack = size_t(64) << 20;
  const size_t pool = measured_peak_bytes();
  if (device > pool + kSlack)
    n.warnings.push_back(fmt::format(
        "device memory in use grew by {} during the point, {} more than the pool's peak: "
        "memory allocated outside the pool (a library; the runtime at a kernel's first use: "
        "module loading, local memory for its threads; or another process)",
        device, device - pool));
  return n;
}

void CudaRunner::teardown() {
  kernel_ = nullptr;
  view_ = {};
  out_ = nullptr;
  prepared_ = scratch_ = cublas_ws_ = nullptr;
  if (graph_exec_) (void)cudaGraphExecDestroy(graph_exec_);
  if (graph_) (void)cudaGraphDestroy(graph_);
  graph_exec_ = nullptr;
  graph_ = nullptr;
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

void* CudaRunner::allocate(size_t bytes, const char* what, const Kernel& k, const Problem& p) {
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

// q, k or v in the precision's storage: as is for fp32 and tf32, as 2-byte elements for bf16
// and fp16 (storage.hpp), converted on the host and synchronized so the copy may go.
const float* CudaRunner::upload_qkv(const std::vector<float>& host, size_t count,
                                    const char* what, const Kernel& k, const Problem& p) {
  if (storage_bytes(p.precision) == sizeof(float) || count == 0)
    return upload_as_is(host, count, what, k, p);
  check_input_size(host.size(), count, what, k, p);
  const std::vector<unsigned char> bytes = to_storage(host, count, p.precision);
  void* dev = allocate(bytes.size(), what, k, p);
  AB_CUDA_CHECK(cudaMemcpyAsync(dev, bytes.data(), bytes.size(), cudaMemcpyHostToDevice, stream_));
  AB_CUDA_CHECK(cudaStreamSynchronize(stream_));
  return static_cast<const float*>(dev);
}

template <class T>
const T* CudaRunner::upload_as_is(const std::vector<T>& host, size_t count, const char* what,
                                  const Kernel& k, const Problem& p) {
  if (count == 0) return nullptr;
  check_input_size(host.size(), count, what, k, p);
  auto* dev = static_cast<T*>(allocate(count * sizeof(T), what, k, p));
  AB_CUDA_CHECK(
      cudaMemcpyAsync(dev, host.data(), count * sizeof(T), cudaMemcpyHostToDevice, stream_));
  return dev;
}

// Frees the runner's own resources (destructor, or a constructor that failed half-way).
void CudaRunner::release() noexcept {
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

std::unique_ptr<BackendRunner> make_cuda_runner(const RunnerOptions& o) {
  std::string why;
  if (!cuda_available(&why)) throw InvalidProblem("cuda backend: " + why);
  return std::make_unique<CudaRunner>(o);
}

std::optional<GpuInfo> gpu_info() {
  if (!cuda_available(nullptr)) return std::nullopt;
  cudaDeviceProp prop{};
  int driver = 0, runtime = 0, max_khz = 0, mem_khz = 0;
  char bus_id[32] = {};
  if (cudaGetDeviceProperties(&prop, kDevice) != cudaSuccess ||
      cudaDriverGetVersion(&driver) != cudaSuccess ||
      cudaRuntimeGetVersion(&runtime) != cudaSuccess ||
      cudaDeviceGetAttribute(&max_khz, cudaDevAttrClockRate, kDevice) != cudaSuccess ||
      cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, kDevice) != cudaSuccess ||
      cudaDeviceGetPCIBusId(bus_id, int(sizeof bus_id), kDevice) != cudaSuccess) {
    (void)cudaGetLastError();
    return std::nullopt;
  }
  GpuInfo g;
  g.name = prop.name;
  g.memory_bytes = prop.totalGlobalMem;
  g.driver_version = version_string(driver);
  g.runtime_version = version_string(runtime);
  g.compute_capability = fmt::format("{}.{}", prop.major, prop.minor);
  g.sm_count = prop.multiProcessorCount;
  g.l2_bytes = size_t(prop.l2CacheSize);
  // the runtime knows the peak clocks; NVML the current ones and why they are lower
  g.max_sm_clock_mhz = max_khz / 1000;
  g.memory_clock_mhz = mem_khz / 1000;
  if (const auto c = nvml_clocks(bus_id)) {
    g.sm_clock_mhz = c->sm_mhz;
    if (c->max_sm_mhz > 0) g.max_sm_clock_mhz = c->max_sm_mhz;
    g.memory_clock_mhz = c->memory_mhz;
    g.throttle = c->throttle;
  }
  return g;
}

#else  // !ATTNBENCH_HAVE_CUDA

bool cuda_available(std::string* why) {
  if (why) *why = "built without the CUDA backend";
  return false;
}

std::unique_ptr<BackendRunner> make_cuda_runner(const RunnerOptions&) {
  throw InvalidProblem("cuda backend: built without the CUDA backend");
}

std::optional<GpuInfo> gpu_info() { return std::nullopt; }

#endif

}  // namespace attnbench
