// GPU clocks and clock-throttle reasons from NVML, the driver's management library, opened at
// run time (dlopen of libnvidia-ml.so.1), so the tools link and run on machines without the
// NVIDIA driver. Used for environment.gpu and the GPU calibration (docs/measurement.md 5.1).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace attnbench {

struct GpuClocks {
  int sm_mhz = 0;          // current SM clock
  int max_sm_mhz = 0;      // the SM clock's maximum
  int memory_mhz = 0;      // current memory clock
  std::string throttle;    // active clock-throttle reasons, comma-separated; "" when none
};

// The clocks of the device with this PCI bus id ("0000:1B:00.0", cudaDeviceGetPCIBusId), or
// nullopt when NVML is absent or does not know the device.
std::optional<GpuClocks> nvml_clocks(const std::string& pci_bus_id);

// Names of the bits of an NVML clocks-event (throttle) reason mask, comma-separated
// ("sw_power_cap,hw_slowdown"; unknown bits as hex). The idle reason is left out: a device
// between samples is idle, which says nothing about its clocks under load.
std::string throttle_reason_names(uint64_t mask);

}  // namespace attnbench
