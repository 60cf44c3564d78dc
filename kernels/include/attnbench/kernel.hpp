// The kernel interface and the registry (design.md, "The kernel interface").
//
// A kernel allocates nothing. The caller asks `workspace(problem)` for two sizes and hands the
// kernel that memory:
//   prepared_bytes  state derived from the inputs once and reused across calls, outside the
//                   timed region (LISA's Cv and W x W logit tables, Performer's random
//                   features); filled by `prepare`.
//   scratch_bytes   memory the timed `run` may use freely.
// Peak memory of a call is then exactly inputs + outputs + prepared + scratch.
//
// Adding a kernel: one file under kernels/cpu or kernels/cuda that defines a Kernel subclass
// and ends with one registration line, ATTNBENCH_REGISTER_KERNEL(ClassName).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "attnbench/problem.hpp"

namespace attnbench {

struct ParamSpec {
  std::string name;         // one of parameter_names()
  double default_value;     // the value a fresh Problem carries (0 may mean "derived", see doc)
  std::string doc;
};

struct KernelInfo {
  std::string name;         // e.g. "lisa_base"; the same name on every backend
  Backend backend = Backend::cpu;
  std::string family;       // "vanilla", "lisa", "linear", "sparse"
  std::string summary;      // one line
  bool has_causal = true;
  bool has_bidirectional = true;
  unsigned inputs = kInputQKV;          // InputFlags
  std::vector<ParamSpec> params;        // method parameters this kernel reads
  bool is_vanilla = false;              // computes exact softmax attention on q, k, v
};

struct WorkspaceSize {
  size_t prepared_bytes = 0;
  size_t scratch_bytes = 0;
  size_t total() const { return prepared_bytes + scratch_bytes; }
};

class PhaseProfile;  // phases.hpp

// Where a call runs. cpu: `threads` (0 = all OpenMP threads). cuda: a cudaStream_t and a
// cublasHandle_t, passed as void* so this header needs no CUDA include. `phases`: null on
// every timed run; set by the harness for one extra profiling run (phases.hpp).
struct ExecContext {
  int threads = 0;
  void* cuda_stream = nullptr;
  void* cublas = nullptr;
  PhaseProfile* phases = nullptr;
};

// A query row of the output, for float64 references on a sample of rows.
struct RowId {
  int64_t seq;   // b * heads + h
  int64_t row;   // position i
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  virtual const KernelInfo& info() const = 0;

  // Throws InvalidProblem (one line) if this kernel cannot run `p`: non-positive sizes,
  // an unsupported causal/bidirectional form, parameters out of range.
  virtual void validate(const Problem& p) const;
  // Throws InvalidProblem if the inputs are out of their domain (codes outside [0, W)).
  // Host pointers; the harness calls it on the host copy before any device upload.
  virtual void validate_inputs(const Problem& p, const Inputs& host_inputs) const;

  virtual WorkspaceSize workspace(const Problem& p) const = 0;
  // Untimed: fill `prepared` (workspace(p).prepared_bytes bytes) from the inputs.
  virtual void prepare(const Problem& p, const Inputs& in, void* prepared,
                       const ExecContext& ctx) const;
  // Timed: write every element of `out`. `scratch` holds workspace(p).scratch_bytes bytes.
  virtual void run(const Problem& p, const Inputs& in, const void* prepared, void* scratch,
                   float* out, const ExecContext& ctx) const = 0;

  // Arithmetic the method must do (FlashAttention's convention for vanilla: 4 b h N^2 dh,
  // halved when causal), and the bytes it must move at the least (inputs + output).
  virtual double flops(const Problem& p) const = 0;
  // True when run() reports its phases to ExecContext::phases (phases.hpp); the harness then
  // makes one extra, untimed profiling run per point.
  virtual bool profiles_phases() const { return false; }
  virtual double min_bytes(const Problem& p) const;

  // float64 evaluation of the same function on the chosen rows, from host inputs, written to
  // out[r * head_dim + c]. Implemented by the cpu kernels; other backends use their cpu twin's.
  virtual void reference_rows(const Problem& p, const Inputs& host_inputs,
                              std::span<const RowId> rows, double* out) const;

  // Throws InvalidProblem naming the kernel unless p suits this kernel's declared forms and
  // sizes (used by validate's default).
  void validate_common(const Problem& p) const;
};

class Registry {
 public:
  static Registry& instance();
  void add(std::unique_ptr<Kernel> k);
  // Sorted by (name, backend).
  const std::vector<const Kernel*>& kernels() const { return sorted_; }
  const Kernel* find(const std::string& name, Backend b) const;  // nullptr if absent
  // Throws InvalidProblem("unknown kernel 'x' (known: ...)") if no backend has `name`.
  const Kernel& get(const std::string& name, Backend b) const;
  std::vector<std::string> names() const;  // unique, sorted

 private:
  std::vector<std::unique_ptr<Kernel>> owned_;
  std::vector<const Kernel*> sorted_;
};

namespace detail {
struct Registrar {
  explicit Registrar(std::unique_ptr<Kernel> k) { Registry::instance().add(std::move(k)); }
};
}  // namespace detail

#define ATTNBENCH_CONCAT_INNER(a, b) a##b
#define ATTNBENCH_CONCAT(a, b) ATTNBENCH_CONCAT_INNER(a, b)
#define ATTNBENCH_REGISTER_KERNEL(Class)                                 \
  static const ::attnbench::detail::Registrar ATTNBENCH_CONCAT(          \
      attnbench_registrar_, __LINE__)(std::make_unique<Class>())

// Helpers shared by kernels.
// Rounds up to 64 bytes so sub-buffers carved from one workspace stay cache-line aligned.
constexpr size_t align_bytes(size_t n) { return (n + 63) / 64 * 64; }

}  // namespace attnbench
