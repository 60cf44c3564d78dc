// Vanilla softmax attention on the GPU (docs/methods.md section 1); CPU twins in
// kernels/cpu/vanilla.cpp.
//   vanilla_materialized  S = scale Q K^T for all b*h sequences in one cuBLAS strided-batched
//                         sgemm, a row softmax kernel in place (one block per row, causal
//                         columns written 0), O = P V in a second strided-batched sgemm.
//                         Scores live in the scratch workspace: b*h*N*N floats. Runs fp32,
//                         tf32, bf16 and fp16 (vanilla_pipeline.hpp: cublasGemmStridedBatchedEx,
//                         float32 scores and softmax, 16-bit probabilities for P V).
//                         Pipeline: attnbench/cuda/vanilla_pipeline.hpp, row_softmax.hpp.
//   vanilla_eager         as eager PyTorch: raw = Q K^T (strided-batched sgemm, full square),
//                         then one elementwise kernel per op into a fresh tensor (scale; the
//                         triu mask and masked_fill when causal), the row softmax of
//                         vanilla_materialized out of place, O = P V. The workspace holds the
//                         tensors eager PyTorch holds at its peak (kernels/cpu/vanilla_eager.cpp
//                         lists them): two b*h*N*N slots and the N x N mask. fp32 and tf32.
//                         Pipeline: attnbench/cuda/vanilla_pipeline.hpp, vanilla_eager.hpp.
//   vanilla_flash         fused tiled attention: one block per (sequence, query tile of bm
//                         rows) streams key tiles of 64 through shared memory with the online
//                         softmax of math/softmax.hpp; causal key tiles above the diagonal are
//                         never visited, the diagonal tile is masked. O(N dh) memory.
//                         Block phases: attnbench/cuda/flash_block.hpp.
// Index maps: attnbench/cuda/tiling.hpp. tests/test_cuda_tiling.cpp proves them and runs the
// pipelines on the CPU (emulated cuBLAS, emulated thread block) against the CPU twins.
// Checked against the CPU twin and float64 by tests/gpu/test_gpu_kernels.cpp
// (build-cuda/attnbench_gpu_tests on a machine with a GPU).
#include <cmath>
#include <initializer_list>
#include <string>

#include "attnbench/cuda/row_softmax.hpp"
#include "attnbench/cuda/vanilla_pipeline.hpp"
#include "attnbench/descriptions.hpp"
#include "attnbench/math/softmax.hpp"
#include "common.cuh"
#include "flash.cuh"

namespace attnbench::gpu {
namespace {

// ---------------------------------------------------------------------------------------
// vanilla_materialized

// Row softmax of float32 `in` [S, n, n] into `out` stored as `out_elem` (in == out: in place,
// float32), one block per row (tiling.hpp): each thread streams its columns into an online row
// state, the states are merged (a warp butterfly, then thread 0 over the warps in order) and
// each thread writes its columns (row_softmax.hpp).
__global__ void __launch_bounds__(kSoftmaxThreads)
    row_softmax_kernel(const float* in, void* out, Elem out_elem, int64_t sequences, int64_t n,
                       bool causal) {
  __shared__ float part_m[kSoftmaxThreads / 32], part_l[kSoftmaxThreads / 32];
  __shared__ float row_m, row_l;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t items = softmax_items(sequences, n);
  for (int64_t item = blockIdx.x; item < items; item += gridDim.x) {
    const SoftmaxRow r = softmax_row_of_item(item, n);
    const int64_t row_at = (r.seq * n + r.row) * n;
    const float* row_in = in + row_at;
    void* row_out = static_cast<char*>(out) + row_at * int64_t(elem_bytes(out_elem));
    const int64_t visible = softmax_visible(r.row, n, causal);
    math::OnlineSoftmaxRow st =
        row_softmax_thread_state(row_in, visible, int(threadIdx.x), kSoftmaxThreads);
    for (int o = 16; o > 0; o >>= 1) {
      const math::OnlineSoftmaxRow other{__shfl_xor_sync(0xffffffffu, st.m, o),
                                         __shfl_xor_sync(0xffffffffu, st.l, o)};
      st = online_softmax_merge(st, other);
    }
    if (lane == 0) {
      part_m[warp] = st.m;
      part_l[warp] = st.l;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      math::OnlineSoftmaxRow all = math::online_softmax_init();
      for (int w = 0; w < kSoftmaxThreads / 32; ++w)
        all = online_softmax_merge(all, math::OnlineSoftmaxRow{part_m[w], part_l[w]});
      row_m = all.m;
      row_l = all.l;
    }
    __syncthreads();
    row_softmax_thread_write(row_in, row_out, out_elem, n, visible,
                             math::OnlineSoftmaxRow{row_m, row_l}, int(threadIdx.x),
                             kSoftmaxThreads);
    __syncthreads();  // part_* and row_* are reused by the block's next row
  }
}

// The twin's description with the precisions this CUDA version runs (its twin runs fp32).
KernelInfo with_precisions(KernelInfo i, std::initializer_list<Precision> ps) {
  i.precisions = 0;
  for (Precision p : ps) i.precisions |= precision_bit(p);
  return i;
}

// The device launcher plus the row softmax the vanilla pipelines ask for.
class VanillaLauncher : public DeviceLauncher {
 public:
  using DeviceLauncher::DeviceLauncher;
  void row_softmax(const float* in, void* out, int64_t sequences, int64_t n, bool causal,
                   Elem out_elem) {
    const int64_t rows = softmax_items(sequences, n);
    row_softmax_kernel<<<unsigned(grid_blocks(rows)), kSoftmaxThreads, 0, stream()>>>(
        in, out, out_elem, sequences, n, causal);
    AB_CUDA_CHECK_LAUNCH();
  }
};

class VanillaMaterializedCuda final : public CudaKernel {
 public:
  const KernelInfo& info() const override {
    static const KernelInfo i = with_precisions(vanilla_materialized_info(Backend::cuda),
                                                {Precision::fp32, Precision::tf32,
                                                 Precision::bf16, Precision::fp16});
    return i;
  }
  bool uses_cublas(const Problem&) const override { return true; }
  WorkspaceSize workspace(const Problem& p) const override {
    return vanilla_materialized_workspace(p);
  }
  void run(const Problem& p, const Inputs& in, const void*, void* scratch, float* out,
           const ExecContext& ctx) const override {
    VanillaLauncher l(ctx);
    vanilla_materialized_run(l, p, in, scratch, out);
  }
};

// ---------------------------------------------------------------------------------------
// vanilla_eager

class VanillaEagerCuda final : public CudaKernel {
 public:
  const KernelInfo& info() const override {
    static const KernelInfo i =
        with_precisions(vanilla_eager_info(Backend::cuda), {Precision::fp32, Precision::tf32});
    return i;
  }
  bool uses_cublas(const Problem&) const override { return true; }
  WorkspaceSize workspace(const Problem& p) const override { return vanilla_eager_workspace(p); }
  void run(const Problem& p, const Inputs& in, const void*, void* scratch, float* out,
           const ExecContext& ctx) const override {
    VanillaLauncher l(ctx);
    vanilla_eager_run(l, p, in, scratch, out);
  }
};

// ---------------------------------------------------------------------------------------
// vanilla_flash

class VanillaFlashCuda final : public CudaKernel {
 public:
  const KernelInfo& info() const override {
    static const KernelInfo i = vanilla_flash_info(Backend::cuda);
    return i;
  }
  bool uses_cublas(const Problem&) const override { return false; }
  WorkspaceSize workspace(const Problem&) const override { return {0, 0}; }
  void run(const Problem& p, const Inputs& in, const void*, void*, float* out,
           const ExecContext& ctx) const override {
    launch_flash(p, in, out, ctx, 0);
  }

 protected:
  void validate_cuda(const Problem& p) const override {
    validate_flash(info().name, p);
  }
};

}  // namespace
}  // namespace attnbench::gpu

namespace attnbench {
ATTNBENCH_REGISTER_KERNEL(gpu::VanillaMaterializedCuda);
ATTNBENCH_REGISTER_KERNEL(gpu::VanillaEagerCuda);
ATTNBENCH_REGISTER_KERNEL(gpu::VanillaFlashCuda);
}  // namespace attnbench
