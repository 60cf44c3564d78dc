// `attnbench eval`: one kernel on a user's own tensors (.npy files), so anyone can check a
// kernel against their model. Layouts as problem.hpp describes them; DIR holds q.npy, k.npy,
// v.npy, or for codebook methods codes.npy / probs.npy, codebooks.npy and optional wq/wk/wv.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "attnbench/kernel.hpp"
#include "inputs.hpp"

namespace attnbench {

// The files a kernel reads from DIR, and their shapes in words (for messages and --help).
std::vector<std::pair<std::string, std::string>> eval_input_files(const Kernel& k);

struct EvalInputs {
  Problem problem;
  HostInputs inputs;
};
// Reads and checks DIR's tensors for kernel `k`: shapes agree with each other, dtypes are
// float32 (codes int32 or int64), codes lie in [0, W). `causal` unset = the kernel's causal
// form when it has one. `params` are --param key=value (only parameters `k` reads; the ones
// the shapes fix must agree with them). Throws InvalidProblem with one line naming the file.
EvalInputs load_eval_inputs(const Kernel& k, const std::string& dir, std::optional<bool> causal,
                            const std::vector<std::pair<std::string, double>>& params);

struct EvalResult {
  const Kernel* kernel = nullptr;
  Problem problem;
  std::vector<float> output;          // [batch, heads, N, dh]
  std::vector<int64_t> output_shape;
  double run_ms = 0;
  double reference_rel_l2 = 0;        // against the float64 reference on sampled rows
  int64_t reference_rows = 0;
};

struct EvalOptions {
  std::string kernel;
  Backend backend = Backend::cpu;
  std::string inputs_dir;
  std::string output_path;            // "" = do not write
  std::optional<bool> causal;
  std::vector<std::pair<std::string, double>> params;
  size_t memory_limit = 0;            // bytes; 0 = 80 % of physical / device memory (as sweep)
};
// Loads (the files' sizes checked against the memory limit first), checks the point's declared
// peak against the memory limit as a sweep does, runs once on the backend (through the backend
// runner), checks sampled rows against the float64 reference, writes the output .npy. Throws
// InvalidProblem (one line).
EvalResult run_eval(const EvalOptions& o);

// "key=value" of --param; throws InvalidProblem.
std::pair<std::string, double> parse_param(const std::string& text);

}  // namespace attnbench
