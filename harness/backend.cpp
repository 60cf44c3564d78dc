// Dispatch from a Backend to its runner factory (backend.hpp).
#include "backend.hpp"

#include <fmt/format.h>
#include <omp.h>

#include "results.hpp"
#include "sysinfo.hpp"

namespace attnbench {

bool backend_available(Backend b, std::string* why) {
  if (b == Backend::cpu) return true;
  return cuda_available(why);
}

std::unique_ptr<BackendRunner> make_runner(Backend b, const RunnerOptions& o) {
  std::string why;
  if (!backend_available(b, &why))
    throw InvalidProblem(fmt::format("backend {} is not available: {}", backend_name(b), why));
  auto r = b == Backend::cpu ? make_cpu_runner() : make_cuda_runner(o);
  if (!r)
    throw InvalidProblem(fmt::format("backend {} is not available in this build", backend_name(b)));
  return r;
}

size_t cublas_workspace_bytes(int cc_major) {
  return (cc_major >= 9 ? size_t(32) : size_t(4)) << 20;
}

void apply_run_notes(const RunNotes& n, Row& row) {
  if (!n.timing_method.empty()) row.timing_method = n.timing_method;
  if (!n.cache.empty()) row.cache = n.cache;
  if (n.launch_overhead_ms) row.launch_overhead_ms = n.launch_overhead_ms;
  if (n.measured_device_bytes) row.measured_device_bytes = n.measured_device_bytes;
  row.warnings.insert(row.warnings.end(), n.warnings.begin(), n.warnings.end());
}

std::string backend_device_name(Backend b) {
  if (b == Backend::cpu)
    return fmt::format("{}, {} threads", sysinfo::cpu_model(), omp_get_max_threads());
  if (const auto g = gpu_info()) return g->name;
  std::string why;
  cuda_available(&why);
  return fmt::format("no CUDA device ({})", why);
}

size_t backend_memory_bytes(Backend b) {
  if (b == Backend::cpu) return sysinfo::physical_memory_bytes();
  if (const auto g = gpu_info()) return g->memory_bytes;
  return 0;
}

}  // namespace attnbench
