// Running another program from the harness (git for the environment, valgrind for the work
// gate) without a shell: argv as given, PATH searched for argv[0].
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace attnbench::process {

// Runs argv with stdout and stderr going to the file `log` (created or truncated); the exit
// status, 128 + the signal when it was killed. Throws InvalidProblem when it cannot start.
int run_to_file(const std::vector<std::string>& argv, const std::string& log);
// Runs argv and returns what it wrote to stdout (stderr is dropped), or nullopt when it could
// not start or did not exit with 0.
std::optional<std::string> output_of(const std::vector<std::string>& argv);

// The whole file ("" when it cannot be read).
std::string read_text(const std::string& path);
// The last `n` lines of `text`.
std::string tail_lines(const std::string& text, size_t n);

}  // namespace attnbench::process
