// The one way the harness reports a bad input: an InvalidProblem whose message names where
// the problem is (a file, a row, an option) and what it is, on one line. The tools print it
// as "attnbench: error: <where>: <what>" and exit 2.
#pragma once

#include <string>

#include "attnbench/problem.hpp"

namespace attnbench {

// Throws InvalidProblem("<where>: <what>").
[[noreturn]] inline void fail_at(const std::string& where, const std::string& what) {
  throw InvalidProblem(where + ": " + what);
}

}  // namespace attnbench
