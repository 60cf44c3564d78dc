// The accuracy checks of a point (docs/methods.md section 5): the rows checked, the correctness
// error against the float64 reference of the same function, and the approximation error
// against vanilla softmax attention.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "attnbench/kernel.hpp"
#include "inputs.hpp"

namespace attnbench {

// The rows checked for correctness (up to N = 2048 every row of the first and the last
// sequence, else 64 rows spread over up to 4 sequences, first and last position included) and
// for the approximation error (up to 256 rows over up to 4 sequences).
std::vector<RowId> correctness_rows(const Problem& p);
std::vector<RowId> approximation_rows(const Problem& p);

struct Accuracy {
  std::optional<double> correctness_rel_l2;
  int64_t correctness_rows = 0;
  std::optional<double> approx_rel_l2, approx_cosine;
  int64_t approx_rows = 0;
};
// Accuracy of `out` (the kernel's full output on `in`) per docs/methods.md section 5. The float64
// reference is the cpu twin's for every backend.
Accuracy check_accuracy(const Kernel& k, const Problem& p, const HostInputs& in,
                        const std::vector<float>& out);

}  // namespace attnbench
