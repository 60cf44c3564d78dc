// The subcommands of `attnbench` besides sweep (sweep_command.hpp) and export (export.hpp),
// each one library call with its options in a struct: harness/cli/attnbench.cpp only parses
// the command line into these and calls them. Each returns the exit status and throws
// InvalidProblem (one line) for bad input.
#pragma once

#include <string>
#include <vector>

#include "eval.hpp"
#include "results.hpp"

namespace attnbench {

// `attnbench list`: the registered kernels, their forms and parameters, the presets and the
// backends. --verbose adds each kernel's source file (relative to the source tree).
struct ListArgs {
  bool json = false;
  bool verbose = false;
};
// One object per kernel name: name, family, summary, backends, forms, is_vanilla, inputs,
// params, source_files (per backend, relative to the source tree).
ojson kernel_list_json();
int run_list_command(const ListArgs& a);

// A kernel's source file as __FILE__ gave it, relative to the source tree when inside it.
std::string source_relative(const std::string& path);

// `attnbench eval`: one kernel on the user's .npy tensors.
struct EvalArgs {
  EvalOptions options;
  std::string backend = "cpu";
  std::vector<std::string> params;  // key=value
  bool causal = false, bidirectional = false;
};
int run_eval_command(EvalArgs a);

// `attnbench calibrate`: this machine's sgemm rate and copy bandwidth.
struct CalibrateArgs {
  bool quick = false;
  bool json = false;
};
int run_calibrate_command(const CalibrateArgs& a);

// `attnbench compare BASE NEW`: exit 1 on a regression.
struct CompareArgs {
  std::string base_path, new_path, threshold = "10%";
  double alpha = 0.05;
  bool markdown = false;
};
int run_compare_command(const CompareArgs& a);

}  // namespace attnbench
