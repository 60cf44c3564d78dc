// Sparse attentions on the GPU (kernels.md section 4); CPU twins in kernels/cpu/sparse.cpp.
//   local_window  softmax attention over the band i - w < j <= i (causal) or |i - j| < w
//                 (bidirectional): the flash kernel (flash.cuh, attnbench/cuda/flash_block.hpp)
//                 with the band as its mask. A query tile visits only the key tiles its rows'
//                 bands reach (tiling.hpp, flash_key_tiles), so the work is O(N w dh), and the
//                 memory O(N dh) (no workspace). The band limits are math/sparse.hpp's, the
//                 CPU twin's. w >= N is vanilla attention.
// reformer_lsh, sinkhorn and lsan_twin have no CUDA version yet (the registry says so; the
// harness records their cuda points as skipped).
// The flash block runs on the CPU in tests/test_cuda_tiling.cpp (with the band too); on a GPU,
// tests/gpu/test_gpu_kernels.cpp checks this file against the CPU twin and float64.
#include <string>

#include "attnbench/descriptions.hpp"
#include "common.cuh"
#include "flash.cuh"

namespace attnbench::gpu {
namespace {

class LocalWindowCuda final : public CudaKernel {
 public:
  const KernelInfo& info() const override {
    static const KernelInfo i = local_window_info(Backend::cuda);
    return i;
  }
  bool uses_cublas(const Problem&) const override { return false; }
  WorkspaceSize workspace(const Problem&) const override { return {0, 0}; }
  void run(const Problem& p, const Inputs& in, const void*, void*, float* out,
           const ExecContext& ctx) const override {
    launch_flash(p, in, out, ctx, std::min(p.int_param("window"), p.seq_len));
  }

 protected:
  void validate_cuda(const Problem& p) const override { validate_flash(info().name, p); }
};

}  // namespace
}  // namespace attnbench::gpu

namespace attnbench {
ATTNBENCH_REGISTER_KERNEL(gpu::LocalWindowCuda);
}  // namespace attnbench
