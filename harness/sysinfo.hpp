// Facts about this machine recorded with every result (design.md, "Measurement rules").
#pragma once

#include <cstddef>
#include <string>

namespace attnbench::sysinfo {

std::string cpu_model();          // "model name" of /proc/cpuinfo, or "unknown"
int logical_cpus();               // online logical CPUs
size_t physical_memory_bytes();   // RAM, lowered to the cgroup limit when there is one
std::string host_name();
std::string utc_now_iso();        // 2025-01-31T12:34:56Z
std::string utc_today();          // 2025-01-31

}  // namespace attnbench::sysinfo
