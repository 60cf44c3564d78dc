#include "sysinfo.hpp"

#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <fstream>
#include <string>

#include <fmt/format.h>

#include "attnbench/build_info.hpp"
#include "noise.hpp"
#include "process.hpp"

namespace attnbench::sysinfo {

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) {
        std::string m = line.substr(colon + 1);
        m.erase(0, m.find_first_not_of(" \t"));
        return m;
      }
    }
  }
  return "unknown";
}

int logical_cpus() {
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? int(n) : 1;
}

size_t physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  size_t bytes = pages > 0 && page > 0 ? size_t(pages) * size_t(page) : 0;
  // A container's memory limit is what a point can really use.
  for (const char* path : {"/sys/fs/cgroup/memory.max",
                           "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    std::ifstream f(path);
    std::string v;
    if (f >> v && !v.empty() && std::all_of(v.begin(), v.end(), ::isdigit)) {
      const size_t limit = std::stoull(v);
      if (limit > 0 && (bytes == 0 || limit < bytes)) bytes = limit;
    }
  }
  return bytes;
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || !buf[0]) return "unknown-host";
  return buf;
}

namespace {
std::string utc_format(const char* fmt) {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, fmt, &tm);
  return buf;
}
}  // namespace

std::string utc_now_iso() { return utc_format("%Y-%m-%dT%H:%M:%SZ"); }
std::string utc_today() { return utc_format("%Y-%m-%d"); }

std::string git_commit(const std::string& dir) {
  std::string hash = process::output_of({"git", "-C", dir, "rev-parse", "HEAD"}).value_or("");
  while (!hash.empty() && (hash.back() == '\n' || hash.back() == '\r')) hash.pop_back();
  // only a full hash counts (outside a checkout rev-parse fails, or echoes its argument)
  if (hash.size() != 40 || hash.find_first_not_of("0123456789abcdef") != std::string::npos)
    return "unknown";
  return hash;
}

bool git_dirty(const std::string& dir) {
  const auto status =
      process::output_of({"git", "-C", dir, "status", "--porcelain", "--untracked-files=no"});
  return status && status->find_first_not_of(" \t\r\n") != std::string::npos;
}

}  // namespace attnbench::sysinfo

namespace attnbench {

Environment collect_environment(int threads_used, const std::string& command_line) {
  Environment e;
  e.host = sysinfo::host_name();
  e.cpu_model = sysinfo::cpu_model();
  e.cpu_cores = sysinfo::logical_cpus();
  e.threads_used = threads_used;
  e.memory_bytes = sysinfo::physical_memory_bytes();
  e.gpu = gpu_info();
  e.compiler = build_info::compiler;
  e.cxx_flags = build_info::cxx_flags;
  e.build_type = build_info::build_type;
  e.blas = build_info::blas_library;
  if (build_info::cuda_backend)
    e.cuda_compiler = fmt::format("nvcc {} (architectures {})", build_info::cuda_compiler_version,
                                  build_info::cuda_architectures);
  e.git_commit = sysinfo::git_commit(ATTNBENCH_SOURCE_DIR);
  e.git_dirty = sysinfo::git_dirty(ATTNBENCH_SOURCE_DIR);
  e.date = sysinfo::utc_now_iso();
  e.command_line = command_line;
  e.calibration = nullptr;
  e.omp_wait_policy = noise::omp_wait_policy();
  e.load_average = noise::load_average();
  return e;
}

}  // namespace attnbench
