// LISA on the GPU (docs/methods.md section 2); CPU twins in kernels/cpu/lisa.cpp, same names:
//   lisa_base  hard codes [b, h, N, B], codebooks [h, B, W, dh] (default W = 128)
//   lisa_mini  the same kernel under its own name (default W = 16)
//   lisa_soft  soft assignments [b, h, N, B, W]; histogram = prefix sum of the probabilities,
//              query code = math::argmax_row of the position's probabilities
//
// The algorithm is attnbench/cuda/lisa_pipeline.hpp, run here with the device launcher
// (common.cuh): each functor is a grid-stride kernel, each product one cuBLAS call.
//   prepare (untimed)  tables in the CPU twin's layout: T and E [h, B, W, W], then with
//                      projections Cq, Ck, Cv [h, B, W, dh]; the products are strided-batched
//                      sgemms over the h*B codebooks, E = exp(T - rowmax T) a kernel.
//   run, causal        slabs of (group of sequences) x (block of positions): chunk totals, a
//                      scan over the chunks, the prefix histogram of every position, the
//                      weights by math::lisa_weights (the CPU kernel's function), and
//                      out = a (rows x BW) * Cv (BW x dh) as one batched sgemm per slab.
//                      Scratch O(slab * BW), never O(N * BW).
//   run, bidirectional per group of sequences: the full histogram, the W x W weight table per
//                      codebook, Y = a Cv (batched sgemm), a gather of B rows of Y per position.
// The same pipeline runs on the CPU in tests/test_cuda_tiling.cpp; on a GPU,
// tests/gpu/test_gpu_kernels.cpp checks this file against the CPU twin and float64.
#include <string>

#include "attnbench/cuda/lisa_pipeline.hpp"
#include "attnbench/descriptions.hpp"
#include "common.cuh"

namespace attnbench::gpu {
namespace {

class LisaCuda : public CudaKernel {
 public:
  LisaCuda(const char* name, int64_t default_w, bool soft)
      : soft_(soft), info_(lisa_info(name, default_w, soft, Backend::cuda)) {}
  const KernelInfo& info() const override { return info_; }
  bool uses_cublas(const Problem&) const override { return true; }
  WorkspaceSize workspace(const Problem& p) const override { return lisa_workspace(p); }

  void prepare(const Problem& p, const Inputs& in, void* prepared,
               const ExecContext& ctx) const override {
    DeviceLauncher l(ctx);
    lisa_prepare(l, p, in, prepared);
  }

  void run(const Problem& p, const Inputs& in, const void* prepared, void* scratch, float* out,
           const ExecContext& ctx) const override {
    DeviceLauncher l(ctx);
    lisa_run(l, p, in, soft_, prepared, scratch, out);
  }

 protected:
  void validate_cuda(const Problem& p) const override {
    require_int("codebooks*codewords", p.int_param("codebooks") * p.int_param("codewords"));
  }

 private:
  bool soft_;
  KernelInfo info_;
};

struct LisaBaseCuda : LisaCuda {
  LisaBaseCuda() : LisaCuda("lisa_base", 128, false) {}
};
struct LisaMiniCuda : LisaCuda {
  LisaMiniCuda() : LisaCuda("lisa_mini", 16, false) {}
};
struct LisaSoftCuda : LisaCuda {
  LisaSoftCuda() : LisaCuda("lisa_soft", 16, true) {}
};

}  // namespace
}  // namespace attnbench::gpu

namespace attnbench {
ATTNBENCH_REGISTER_KERNEL(gpu::LisaBaseCuda);
ATTNBENCH_REGISTER_KERNEL(gpu::LisaMiniCuda);
ATTNBENCH_REGISTER_KERNEL(gpu::LisaSoftCuda);
}  // namespace attnbench
