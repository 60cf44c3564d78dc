// NVML through dlopen (nvml.hpp). The few declarations below are NVML's C ABI (nvml.h is not
// part of the CUDA Toolkit installed here): opaque device handles, int return codes (0 =
// success), clock types NVML_CLOCK_SM = 1 and NVML_CLOCK_MEM = 2.
#include "nvml.hpp"

#include <dlfcn.h>

#include <fmt/format.h>

#include <utility>

namespace attnbench {
namespace {

using NvmlDevice = struct NvmlDeviceOpaque*;
using InitFn = int (*)();
using ByBusIdFn = int (*)(const char*, NvmlDevice*);
using ClockFn = int (*)(NvmlDevice, int, unsigned*);
using ReasonsFn = int (*)(NvmlDevice, unsigned long long*);
constexpr int kClockSm = 1, kClockMem = 2;

struct Nvml {
  ByBusIdFn by_bus_id = nullptr;
  ClockFn clock = nullptr, max_clock = nullptr;
  ReasonsFn reasons = nullptr;
  bool ok() const { return by_bus_id && clock && max_clock; }
};

template <class F>
F symbol(void* lib, const char* name) {
  return reinterpret_cast<F>(dlsym(lib, name));
}

// Opened and initialised once per process, never closed (the library stays valid for every
// later call; shutting NVML down between reads would cost its initialisation each time).
const Nvml& nvml() {
  static const Nvml api = [] {
    Nvml n;
    void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) return n;
    const auto init = symbol<InitFn>(lib, "nvmlInit_v2");
    if (!init || init() != 0) return n;
    n.by_bus_id = symbol<ByBusIdFn>(lib, "nvmlDeviceGetHandleByPciBusId_v2");
    n.clock = symbol<ClockFn>(lib, "nvmlDeviceGetClockInfo");
    n.max_clock = symbol<ClockFn>(lib, "nvmlDeviceGetMaxClockInfo");
    n.reasons = symbol<ReasonsFn>(lib, "nvmlDeviceGetCurrentClocksEventReasons");
    if (!n.reasons) n.reasons = symbol<ReasonsFn>(lib, "nvmlDeviceGetCurrentClocksThrottleReasons");
    return n;
  }();
  return api;
}

}  // namespace

std::string throttle_reason_names(uint64_t mask) {
  static const std::pair<uint64_t, const char*> kNames[] = {
      {0x2, "applications_clocks_setting"}, {0x4, "sw_power_cap"},
      {0x8, "hw_slowdown"},                 {0x10, "sync_boost"},
      {0x20, "sw_thermal_slowdown"},        {0x40, "hw_thermal_slowdown"},
      {0x80, "hw_power_brake_slowdown"},    {0x100, "display_clock_setting"}};
  std::string s;
  const auto add = [&s](const std::string& name) {
    if (!s.empty()) s += ',';
    s += name;
  };
  uint64_t rest = mask & ~uint64_t(0x1);  // 0x1: idle
  for (const auto& [bit, name] : kNames)
    if (rest & bit) {
      add(name);
      rest &= ~bit;
    }
  if (rest) add(fmt::format("0x{:x}", rest));
  return s;
}

std::optional<GpuClocks> nvml_clocks(const std::string& pci_bus_id) {
  const Nvml& n = nvml();
  NvmlDevice dev = nullptr;
  if (!n.ok() || n.by_bus_id(pci_bus_id.c_str(), &dev) != 0) return std::nullopt;
  unsigned sm = 0, max_sm = 0, mem = 0;
  if (n.clock(dev, kClockSm, &sm) != 0 || n.max_clock(dev, kClockSm, &max_sm) != 0 ||
      n.clock(dev, kClockMem, &mem) != 0)
    return std::nullopt;
  GpuClocks c;
  c.sm_mhz = int(sm);
  c.max_sm_mhz = int(max_sm);
  c.memory_mhz = int(mem);
  unsigned long long reasons = 0;
  if (n.reasons && n.reasons(dev, &reasons) == 0) c.throttle = throttle_reason_names(reasons);
  return c;
}

}  // namespace attnbench
