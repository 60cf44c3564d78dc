// The kernel interface and the registry (docs/architecture.md, "Kernels").
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
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "attnbench/problem.hpp"

namespace attnbench {

// A method parameter a kernel declares. Shared code learns every parameter from these: the
// sweep accepts an axis only if some kernel declares it, and a kernel's validate refuses a
// value of the wrong kind or outside [min_value, max_value].
enum class ParamKind { integer, real, flag };
struct ParamSpec {
  std::string name;         // lower-case identifier, not a shape axis (problem.hpp)
  ParamKind kind = ParamKind::integer;
  double default_value = 0; // the value a problem carries unless a sweep sets it
  double min_value = 0;
  double max_value = 0;
  std::string doc;          // one line; say what 0 means when 0 means "derived"
};
ParamSpec int_param(std::string name, int64_t default_value, int64_t min_value, int64_t max_value,
                    std::string doc);
ParamSpec real_param(std::string name, double default_value, double min_value, double max_value,
                     std::string doc);
ParamSpec flag_param(std::string name, bool default_value, std::string doc);
const char* param_kind_name(ParamKind k);

// Bit of a precision in KernelInfo::precisions.
constexpr unsigned precision_bit(Precision p) { return 1u << static_cast<int>(p); }

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
  unsigned precisions = precision_bit(Precision::fp32);  // precision_bit of each it runs
  // The CI gates ("memory", "work", "time") this kernel stays out of, each with the reason the
  // gate's report shows; every other gate measures it (harness/gates_run.hpp).
  std::map<std::string, std::string> gate_opt_outs;
  bool supports(Precision p) const { return (precisions & precision_bit(p)) != 0; }
  const ParamSpec* param(std::string_view n) const;   // nullptr when not declared
};

struct WorkspaceSize {
  size_t prepared_bytes = 0;
  size_t scratch_bytes = 0;
  size_t total() const { return prepared_bytes + scratch_bytes; }
};

class PhaseProfile;  // phases.hpp
namespace detail {
struct Registrar;
}

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
  // an unsupported causal/bidirectional form or precision, a declared parameter missing, of
  // the wrong kind or out of its range.
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
  // True when prepare or run calls cuBLAS for this problem. The cuda runner then gives the
  // cuBLAS handle its workspace from the point's memory pool and reports it as the row's
  // library_bytes, the same for every such kernel (docs/measurement.md section 4.1).
  virtual bool uses_cublas(const Problem& p) const { return false; }
  virtual double min_bytes(const Problem& p) const;

  // float64 evaluation of the same function on the chosen rows, from host inputs, written to
  // out[r * head_dim + c]. Implemented by the cpu kernels; other backends use their cpu twin's.
  virtual void reference_rows(const Problem& p, const Inputs& host_inputs,
                              std::span<const RowId> rows, double* out) const;

  // The source file that registered this kernel (ATTNBENCH_REGISTER_KERNEL's __FILE__).
  const std::string& source_file() const { return source_file_; }

  // Throws InvalidProblem naming the kernel unless p suits this kernel's declared forms,
  // sizes, precisions and parameters (used by validate's default).
  void validate_common(const Problem& p) const;

 private:
  friend struct detail::Registrar;
  std::string source_file_;
};

// Every kernel of the build. `add` refuses (std::invalid_argument, one line) a kernel whose
// description is ill-formed: a parameter with a bad name, kind, range or default, a parameter
// declared twice, a shape axis declared as a parameter, a parameter whose kind differs from
// another kernel's parameter of the same name, a name and backend already registered, or a
// backend twin whose forms, inputs or parameters differ.
class Registry {
 public:
  static Registry& instance();
  void add(std::unique_ptr<Kernel> k);
  // Takes a kernel out again (for tests that register one for their own length).
  void remove(const std::string& name, Backend b);
  // Sorted by (name, backend).
  const std::vector<const Kernel*>& kernels() const { return sorted_; }
  const Kernel* find(const std::string& name, Backend b) const;  // nullptr if absent
  // Throws InvalidProblem("unknown kernel 'x' (known: ...)") if no backend has `name`.
  const Kernel& get(const std::string& name, Backend b) const;
  std::vector<std::string> names() const;  // unique, sorted
  // Every method parameter some kernel declares (the first declaration of each name), sorted.
  std::vector<ParamSpec> parameters() const;
  const ParamSpec* parameter(std::string_view name) const;  // nullptr when none declares it

 private:
  std::vector<std::unique_ptr<Kernel>> owned_;
  std::vector<const Kernel*> sorted_;
};

// A problem for kernel `k`: the given one with every parameter `k` declares and `p` does not
// set filled with its default.
Problem with_defaults(const Kernel& k, Problem p);

namespace detail {
struct Registrar {
  Registrar(std::unique_ptr<Kernel> k, const char* file);
};
}  // namespace detail

#define ATTNBENCH_CONCAT_INNER(a, b) a##b
#define ATTNBENCH_CONCAT(a, b) ATTNBENCH_CONCAT_INNER(a, b)
#define ATTNBENCH_REGISTER_KERNEL(Class)                                 \
  static const ::attnbench::detail::Registrar ATTNBENCH_CONCAT(          \
      attnbench_registrar_, __LINE__)(std::make_unique<Class>(), __FILE__)

// Helpers shared by kernels.
// Rounds up to 64 bytes so sub-buffers carved from one workspace stay cache-line aligned.
constexpr size_t align_bytes(size_t n) { return (n + 63) / 64 * 64; }

}  // namespace attnbench
