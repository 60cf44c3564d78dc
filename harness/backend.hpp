// Runs one kernel at one point on its backend: owns the memory (inputs, output, prepared
// state, scratch), times single runs and measures peak memory. The sweep, `eval`, the
// benchmarks and the GPU tests all go through this seam, so the cpu and cuda backends are
// measured the same way (docs/measurement.md).
//
//   cpu   harness/backend_cpu.cpp   steady clock; memory from a counting allocator
//   cuda  harness/backend_cuda.cpp  a captured CUDA graph replayed between two events on a
//                                   dedicated stream (events around direct launches when the
//                                   call cannot be captured), the L2 flushed before every
//                                   sample unless warm; device memory from one
//                                   cudaMallocAsync pool whose UsedMemHigh is the measured
//                                   peak (compiled only with the CUDA backend)
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attnbench/kernel.hpp"
#include "attnbench/phases.hpp"
#include "inputs.hpp"

namespace attnbench {

struct Row;  // results.hpp

// The memory a call holds, by owner. `library_bytes` is what a library the kernel calls keeps
// for it outside the kernel's workspace (the cuBLAS workspace of the stream): counted once,
// the same way, for every kernel that calls the library (docs/measurement.md section 4).
struct MemoryFigures {
  size_t inputs_bytes = 0;
  size_t outputs_bytes = 0;
  size_t prepared_bytes = 0;
  size_t scratch_bytes = 0;
  size_t library_bytes = 0;
  size_t workspace_bytes() const { return prepared_bytes + scratch_bytes; }
  size_t peak_bytes() const {
    return inputs_bytes + outputs_bytes + workspace_bytes() + library_bytes;
  }
};

// What a kernel declares for a point, by owner: its inputs and output as the harness holds
// them and its workspace query (library_bytes 0: a runner adds what its library keeps). The
// runners and the row of a skipped point take it from here. Inline: the portable work-gate
// build links the cpu runner without the rest of the harness.
inline MemoryFigures declared_memory(const Kernel& k, const Problem& p) {
  const WorkspaceSize ws = k.workspace(p);
  MemoryFigures m;
  m.inputs_bytes = input_sizes(p, k.info().inputs).bytes();
  m.outputs_bytes = output_bytes(p);
  m.prepared_bytes = ws.prepared_bytes;
  m.scratch_bytes = ws.scratch_bytes;
  return m;
}

// How a runner measured its point, for the row (docs/measurement.md sections 3 and 4).
struct RunNotes {
  std::string timing_method;                    // steady_clock | cuda_graph | cuda_events
  std::string cache;                            // cold | warm: caches before each sample
  std::optional<double> launch_overhead_ms;     // cuda: host cost of enqueueing one call
  std::optional<size_t> measured_device_bytes;  // cuda: device memory in use for the point
  std::vector<std::string> warnings;            // why a figure above is less trustworthy
};
// Copies the notes into the row (empty strings and unset figures leave the row's own value).
void apply_run_notes(const RunNotes& notes, Row& row);

struct RunnerOptions {
  bool warm_cache = false;  // cuda: no L2 flush before the samples (attnbench sweep --warm)
};

class BackendRunner {
 public:
  virtual ~BackendRunner() = default;
  virtual Backend backend() const = 0;
  // Validates, allocates (inputs copied to the backend, output, prepared, scratch), runs the
  // kernel's untimed prepare. Resets the measured peak before allocating. Throws
  // InvalidProblem (or std::runtime_error for an allocation failure) with one line.
  virtual void setup(const Kernel& k, const Problem& p, const HostInputs& in) = 0;
  // One run of the kernel; returns its time in milliseconds (steady clock / CUDA events).
  virtual double run_once_ms() = 0;
  // Evicts the working set from the caches between samples where the backend needs it.
  virtual void flush_cache() {}
  // One more run with ExecContext::phases set (after the timed samples); the phases the
  // kernel reported and that run's wall time in ms. Backends without profiling return {}.
  virtual std::vector<PhaseTime> profile_run(double* wall_ms) {
    (void)wall_ms;
    return {};
  }
  // The output of the last run, copied to the host.
  virtual std::vector<float> output() = 0;
  virtual MemoryFigures memory() const = 0;
  // Measured high-water mark of the memory held for this point since setup began.
  virtual size_t measured_peak_bytes() const = 0;
  // How the point was measured. Called right after the last timed sample: the cuda runner
  // reads the device's memory in use then.
  virtual RunNotes notes() const { return {}; }
  // Frees everything setup allocated.
  virtual void teardown() = 0;
};

// True when the backend can run here; otherwise `why` says why ("built without CUDA",
// "no CUDA device").
bool backend_available(Backend b, std::string* why = nullptr);
// Throws InvalidProblem when the backend is not available.
std::unique_ptr<BackendRunner> make_runner(Backend b, const RunnerOptions& o = {});

// Per-backend factories: make_cpu_runner in backend_cpu.cpp; make_cuda_runner, cuda_available
// and gpu_info in backend_cuda.cpp (stubs that report "built without the CUDA backend" when
// ATTNBENCH_HAVE_CUDA is not defined). make_runner / backend_available dispatch to them.
std::unique_ptr<BackendRunner> make_cpu_runner();
std::unique_ptr<BackendRunner> make_cuda_runner(const RunnerOptions& o = {});
bool cuda_available(std::string* why);

struct GpuInfo {
  std::string name;
  size_t memory_bytes = 0;
  std::string driver_version;
  std::string runtime_version;
  std::string compute_capability;
  int sm_count = 0;
  size_t l2_bytes = 0;
  int sm_clock_mhz = 0;         // current SM clock when the environment was read
  int max_sm_clock_mhz = 0;
  int memory_clock_mhz = 0;
  std::string throttle;         // active clock-throttle reasons, "" when none or unknown
};
// cuBLAS's workspace for a handle on a device of this compute capability (32 MiB on Hopper
// and later, 4 MiB before: cuBLAS's recommendation); a row's library_bytes when its kernel
// calls cuBLAS.
size_t cublas_workspace_bytes(int cc_major);

// The first CUDA device, or nullopt without the CUDA backend or a device. Clocks and
// throttle reasons come from NVML (nvml.hpp) and stay 0 / "" where it is absent.
std::optional<GpuInfo> gpu_info();

// One line describing the backend's device ("AMD EPYC ..., 2 threads" / "NVIDIA H100 ...").
std::string backend_device_name(Backend b);
// Memory the backend can give a point (physical RAM / device memory), in bytes.
size_t backend_memory_bytes(Backend b);

}  // namespace attnbench
