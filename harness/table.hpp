// The text table `attnbench sweep` prints after a sweep.
#pragma once

#include <string>

#include "results.hpp"

namespace attnbench {

// Marks the median of a noisy row (Row::noisy) in the table.
inline constexpr const char* kNoisyMark = "~";

// The final table of a results file (fmt): kernel, backend, point, median ms (marked "~" when
// noisy), % of peak, peak MB, speedup and memory ratio vs vanilla, correctness, approximation
// error, status; then a line counting the noisy rows, when there are any.
std::string results_table(const ResultsFile& f);

}  // namespace attnbench
