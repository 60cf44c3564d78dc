// Facts about this machine and build recorded with every result (docs/measurement.md):
// the environment of a results file and what it is made of.
#pragma once

#include <cstddef>
#include <string>

#include "results.hpp"

namespace attnbench::sysinfo {

std::string cpu_model();          // "model name" of /proc/cpuinfo, or "unknown"
int logical_cpus();               // online logical CPUs
size_t physical_memory_bytes();   // RAM, lowered to the cgroup limit when there is one
std::string host_name();
std::string utc_now_iso();        // 2025-01-31T12:34:56Z
std::string utc_today();          // 2025-01-31
// The commit checked out in `dir` (a full hash), "unknown" outside a git checkout.
std::string git_commit(const std::string& dir);
// Whether tracked files of the checkout in `dir` are modified (false outside a checkout).
bool git_dirty(const std::string& dir);

}  // namespace attnbench::sysinfo

namespace attnbench {

// This machine and build, now: also the OpenMP wait policy and the 1-minute load average
// (noise.hpp). `threads_used` is what the sweep runs with.
Environment collect_environment(int threads_used, const std::string& command_line);

}  // namespace attnbench
