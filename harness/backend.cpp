// Dispatch from a Backend to its runner factory (backend.hpp).
#include "backend.hpp"

#include <fmt/format.h>
#include <omp.h>

#include "sysinfo.hpp"

namespace attnbench {

bool backend_available(Backend b, std::string* why) {
  if (b == Backend::cpu) return true;
  return cuda_available(why);
}

std::unique_ptr<BackendRunner> make_runner(Backend b) {
  std::string why;
  if (!backend_available(b, &why))
    throw InvalidProblem(fmt::format("backend {} is not available: {}", backend_name(b), why));
  auto r = b == Backend::cpu ? make_cpu_runner() : make_cuda_runner();
  if (!r)
    throw InvalidProblem(fmt::format("backend {} is not available in this build", backend_name(b)));
  return r;
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
