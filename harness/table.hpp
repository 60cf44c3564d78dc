// The text table `attnbench sweep` prints after a sweep.
#pragma once

#include <string>

#include "results.hpp"

namespace attnbench {

// The final table of a results file (fmt): kernel, backend, point, median ms, % of peak, peak
// MB, speedup and memory ratio vs vanilla, correctness, approximation error, status.
std::string results_table(const ResultsFile& f);

}  // namespace attnbench
