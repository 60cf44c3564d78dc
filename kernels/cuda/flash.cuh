// The fused flash kernel shared by vanilla_flash (kernels/cuda/vanilla.cu) and local_window
// (kernels/cuda/sparse.cu): one block per (sequence, query tile), the phases of
// attnbench/cuda/flash_block.hpp run by the block's threads with __syncthreads between them.
// In the anonymous namespace of common.cuh: each .cu file gets its own copy.
#pragma once

#include <cmath>
#include <string>

#include "attnbench/cuda/flash_block.hpp"
#include "common.cuh"

namespace attnbench::gpu {
namespace {

// flash_block's executor on the device: the calling thread, its registers, __syncthreads.
struct FlashDeviceExec {
  FlashRegs regs;
  template <class F>
  __device__ void each_thread(F&& f) {
    f(int(threadIdx.x), regs);
  }
  __device__ void sync() { __syncthreads(); }
};

// Two blocks per SM: caps registers at 128 per thread (no spills, see the resource usage in
// the README's GPU notes) and matches the shared memory of dh = 64 (about 70 KiB per block).
__global__ void __launch_bounds__(kFlashThreads, 2) flash_kernel(FlashArgs a) {
  extern __shared__ float smem[];
  const FlashSmem sm = flash_smem(a.cfg, smem);
  FlashDeviceExec ex;
  const int64_t items = flash_items(a.sequences, a.n, a.cfg);
  for (int64_t item = blockIdx.x; item < items; item += gridDim.x)
    flash_block(ex, a, flash_work(item, a.n, a.cfg), sm);
}

inline void validate_flash(const std::string& name, const Problem& p) {
  if (p.head_dim > kFlashMaxHeadDim)
    throw InvalidProblem(name + " (cuda): head_dim " + std::to_string(p.head_dim) + " > " +
                         std::to_string(kFlashMaxHeadDim) +
                         " does not fit the flash kernel's shared-memory tiles");
}

// The device's opt-in shared memory per block, read once per process (the runner's device 0),
// and the flash kernel's dynamic shared-memory limit raised to it at the same time, so a call
// makes no host query and sets no attribute (nothing but launches between a sample's events).
// A failure throws and leaves the static unset: the next call tries again.
inline int flash_smem_limit() {
  static const int limit = [] {
    int device = 0, smem = 0;
    AB_CUDA_CHECK(cudaGetDevice(&device));
    AB_CUDA_CHECK(cudaDeviceGetAttribute(&smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    AB_CUDA_CHECK(
        cudaFuncSetAttribute(flash_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    return smem;
  }();
  return limit;
}

// window <= 0: vanilla attention; window > 0: local_window's band.
inline void launch_flash(const Problem& p, const Inputs& in, float* out, const ExecContext& ctx,
                         int64_t window) {
  const FlashConfig cfg = flash_config(p.head_dim);
  const int smem_limit = flash_smem_limit();
  if (cfg.smem_bytes > smem_limit)
    throw std::runtime_error("flash kernel: dh = " + std::to_string(p.head_dim) + " needs " +
                             std::to_string(cfg.smem_bytes) +
                             " bytes of shared memory per block; this device allows " +
                             std::to_string(smem_limit));
  const FlashArgs a{in.q,     in.k,   in.v, out, p.sequences(), p.seq_len, p.head_dim,
                    p.causal, window, 1.0f / std::sqrt(float(p.head_dim)), cfg};
  const int64_t items = flash_items(p.sequences(), p.seq_len, cfg);
  flash_kernel<<<unsigned(grid_blocks(items)), kFlashThreads, size_t(cfg.smem_bytes),
                 stream_of(ctx)>>>(a);
  AB_CUDA_CHECK_LAUNCH();
}

}  // namespace
}  // namespace attnbench::gpu
