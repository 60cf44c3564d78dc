// Linear and kernelized attentions on the GPU (docs/methods.md section 3); CPU twins in
// kernels/cpu/linear.cpp, same names, parameters and float64 references:
//   linear_elu   phi = elu + 1 (math::elu_plus_one_row), denominator
//   linrec       phi = elu / ||elu|| (math::linrec_feature_row), scale 1/sqrt(dh), no denominator
//   performer    FAVOR+ (math::performer_feature); the m x dh projection is drawn in prepare by
//                the CPU twin's seeded generator (random_features.hpp) and uploaded; the key
//                stabiliser is the max over the whole sequence (a pre-pass), as the twin's
//   efficient_attention
//                softmax_rows(Q) (softmax_cols(K)^T V); the causal key softmax over the prefix
//                with a running column max: chunk states at their own column maxima, a max
//                scan and a rescaling scan over the chunks (math::column_merge_f), and every
//                row read at its exact running max (math::column_prefix_normaliser), so it
//                needs no fallback for keys of any spread
//   hydra        o_t = q^_t * sum_{s<=t} k^_s v_s over the width heads * dh
//                (math::hydra_accumulate / hydra_readout)
// The algorithms are attnbench/cuda/linear_pipeline.hpp (a chunked parallel prefix over the
// m x dh state; index maps in tiling.hpp), run here with the device launcher (common.cuh): every
// functor is one grid-stride kernel. No cuBLAS; scratch O(slab), independent of N.
// The same pipelines run on the CPU in tests/test_cuda_tiling.cpp; on a GPU,
// tests/gpu/test_gpu_kernels.cpp checks this file against the CPU twins and float64.
#include <cmath>
#include <string>

#include "attnbench/cuda/linear_pipeline.hpp"
#include "attnbench/descriptions.hpp"
#include "common.cuh"

namespace attnbench::gpu {
namespace {

// linear_elu, linrec and performer: the chunked feature-map engine.
class FeatureMapCuda : public CudaKernel {
 public:
  bool uses_cublas(const Problem&) const override { return false; }
  WorkspaceSize workspace(const Problem& p) const override {
    return linear_workspace(map(), p, linear_default_plan(map(), p));
  }
  void prepare(const Problem& p, const Inputs&, void* prepared,
               const ExecContext& ctx) const override {
    if (map() != LinearMap::performer) return;
    DeviceLauncher l(ctx);
    performer_prepare(l, p, prepared);
  }
  void run(const Problem& p, const Inputs& in, const void* prepared, void* scratch, float* out,
           const ExecContext& ctx) const override {
    DeviceLauncher l(ctx);
    linear_run(l, p, in, linear_spec(map(), p, static_cast<const float*>(prepared)),
               linear_default_plan(map(), p), scratch, out);
  }
  virtual LinearMap map() const = 0;

 protected:
  void validate_cuda(const Problem& p) const override {
    require_int("features * head_dim", linear_feature_count(map(), p) * p.head_dim);
  }
};

class LinearEluCuda final : public FeatureMapCuda {
 public:
  const KernelInfo& info() const override {
    static const KernelInfo i = linear_elu_info(Backend::cuda);
    return i;
  }
  LinearMap map() const override { return LinearMap::elu_plus_one; }
};

class LinRecCuda final : public FeatureMapCuda {
 public:
  const KernelInfo& info() const override {
    static const KernelInfo i = linrec_info(Backend::cuda);
    return i;
  }
  LinearMap map() const override { return LinearMap::linrec; }
};

class PerformerCuda final : public FeatureMapCuda {
 public:
  const KernelInfo& info() const override {
    static const KernelInfo i = performer_info(Backend::cuda);
    return i;
  }
  LinearMap map() const override { return LinearMap::performer; }
};

class EfficientAttentionCuda final : public CudaKernel {
 public:
  const KernelInfo& info() const override {
    static const KernelInfo i = efficient_attention_info(Backend::cuda);
    return i;
  }
  bool uses_cublas(const Problem&) const override { return false; }
  WorkspaceSize workspace(const Problem& p) const override {
    return efficient_workspace(p, efficient_default_plan(p));
  }
  void run(const Problem& p, const Inputs& in, const void*, void* scratch, float* out,
           const ExecContext& ctx) const override {
    DeviceLauncher l(ctx);
    efficient_run(l, p, in, efficient_default_plan(p), scratch, out);
  }
  void validate_cuda(const Problem& p) const override {
    require_int("head_dim * head_dim", p.head_dim * p.head_dim);
  }
};

class HydraCuda final : public CudaKernel {
 public:
  const KernelInfo& info() const override {
    static const KernelInfo i = hydra_info(Backend::cuda);
    return i;
  }
  bool uses_cublas(const Problem&) const override { return false; }
  WorkspaceSize workspace(const Problem& p) const override {
    return hydra_workspace(p, hydra_default_plan(p));
  }
  void run(const Problem& p, const Inputs& in, const void*, void* scratch, float* out,
           const ExecContext& ctx) const override {
    DeviceLauncher l(ctx);
    hydra_run(l, p, in, hydra_default_plan(p), scratch, out);
  }
  void validate_cuda(const Problem& p) const override {
    require_int("heads * head_dim", p.heads * p.head_dim);
  }
};

}  // namespace
}  // namespace attnbench::gpu

namespace attnbench {
ATTNBENCH_REGISTER_KERNEL(gpu::LinearEluCuda);
ATTNBENCH_REGISTER_KERNEL(gpu::LinRecCuda);
ATTNBENCH_REGISTER_KERNEL(gpu::PerformerCuda);
ATTNBENCH_REGISTER_KERNEL(gpu::EfficientAttentionCuda);
ATTNBENCH_REGISTER_KERNEL(gpu::HydraCuda);
}  // namespace attnbench
