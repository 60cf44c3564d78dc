// Helpers shared by the CUDA kernels (kernels/cuda/*.cu): the stream and cuBLAS handle of an
// ExecContext, the device launcher that runs a pipeline's functors and products
// (attnbench/cuda/workspace.hpp describes the launcher interface), and the CPU-twin delegation
// every CUDA kernel uses for validation, FLOP count and float64 reference.
// Everything is in an anonymous namespace: each .cu file gets its own copy.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <climits>
#include <cstdint>
#include <string>

#include "attnbench/cuda/check.hpp"
#include "attnbench/cuda/gemm.hpp"
#include "attnbench/cuda/tiling.hpp"
#include "attnbench/cuda/workspace.hpp"
#include "attnbench/kernel.hpp"

namespace attnbench::gpu {
namespace {

inline cudaStream_t stream_of(const ExecContext& ctx) {
  return static_cast<cudaStream_t>(ctx.cuda_stream);
}

// The context's cuBLAS handle, bound to the context's stream. cublasSetStream also resets
// the handle's workspace to cuBLAS's own default, so it is called only when the stream
// differs: the runner sets the stream and then its pool-allocated workspace, and that
// workspace must survive here.
inline cublasHandle_t cublas_of(const ExecContext& ctx) {
  auto handle = static_cast<cublasHandle_t>(ctx.cublas);
  if (!handle) throw std::runtime_error("cuda kernel: the ExecContext has no cuBLAS handle");
  cudaStream_t current = nullptr;
  AB_CUBLAS_CHECK(cublasGetStream(handle, &current));
  if (current != stream_of(ctx)) AB_CUBLAS_CHECK(cublasSetStream(handle, stream_of(ctx)));
  return handle;
}

constexpr int kItemThreads = 256;

// Thread-level grid-stride loop over a functor's items (tiling.hpp conventions).
template <class F>
__global__ void __launch_bounds__(kItemThreads) for_each_item_kernel(int64_t items, F f) {
  for (int64_t item = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; item < items;
       item += int64_t(gridDim.x) * blockDim.x)
    f(item);
}

inline cublasOperation_t cublas_op(bool trans) { return trans ? CUBLAS_OP_T : CUBLAS_OP_N; }

inline cudaDataType_t cuda_type(Elem e) {
  return e == Elem::bf16 ? CUDA_R_16BF : e == Elem::f16 ? CUDA_R_16F : CUDA_R_32F;
}

// Runs a pipeline (vanilla_pipeline.hpp, lisa_pipeline.hpp) on the context's stream.
class DeviceLauncher {
 public:
  explicit DeviceLauncher(const ExecContext& ctx) : ctx_(ctx) {}

  template <class F>
  void each(const char* name, int64_t items, const F& f) {
    if (items <= 0) return;
    for_each_item_kernel<F><<<unsigned(thread_grid_blocks(items, kItemThreads)), kItemThreads, 0,
                              stream()>>>(items, f);
    check_cuda(cudaGetLastError(), name, __FILE__, __LINE__);
  }
  void zero(float* p, int64_t count) {
    if (count > 0)
      AB_CUDA_CHECK(cudaMemsetAsync(p, 0, static_cast<size_t>(count) * sizeof(float), stream()));
  }
  // Untimed (prepare): the host buffer may be freed when this returns.
  void upload(void* dst, const void* src, size_t bytes) {
    AB_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream()));
    AB_CUDA_CHECK(cudaStreamSynchronize(stream()));
  }
  // Plain fp32 products keep cublasSgemmStridedBatched; typed ones (gemm.hpp) go through
  // cublasGemmStridedBatchedEx with float32 accumulation (TF32 tensor cores for tf32).
  void gemm_strided(const char* name, const GemmShape& g, const void* a, const void* b, void* c) {
    if (g.plain_fp32()) {
      check_cublas(cublasSgemmStridedBatched(
                       cublas_of(ctx_), cublas_op(g.trans_a), cublas_op(g.trans_b),
                       to_int(name, g.m), to_int(name, g.n), to_int(name, g.k), &g.alpha,
                       static_cast<const float*>(a), to_int(name, g.lda), g.stride_a,
                       static_cast<const float*>(b), to_int(name, g.ldb), g.stride_b, &g.beta,
                       static_cast<float*>(c), to_int(name, g.ldc), g.stride_c,
                       to_int(name, g.batch)),
                   name, __FILE__, __LINE__);
      return;
    }
    if (g.beta != 0.0f) throw std::runtime_error(std::string(name) + ": typed products write C");
    check_cublas(cublasGemmStridedBatchedEx(
                     cublas_of(ctx_), cublas_op(g.trans_a), cublas_op(g.trans_b),
                     to_int(name, g.m), to_int(name, g.n), to_int(name, g.k), &g.alpha, a,
                     cuda_type(g.a), to_int(name, g.lda), g.stride_a, b, cuda_type(g.b),
                     to_int(name, g.ldb), g.stride_b, &g.beta, c, cuda_type(g.c),
                     to_int(name, g.ldc), g.stride_c, to_int(name, g.batch),
                     g.tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F,
                     CUBLAS_GEMM_DEFAULT),
                 name, __FILE__, __LINE__);
  }
  void gemm_batched(const char* name, const GemmShape& g, const float* const* a,
                    const float* const* b, float* const* c) {
    check_cublas(cublasSgemmBatched(cublas_of(ctx_), cublas_op(g.trans_a), cublas_op(g.trans_b),
                                    to_int(name, g.m), to_int(name, g.n), to_int(name, g.k),
                                    &g.alpha, a, to_int(name, g.lda), b, to_int(name, g.ldb),
                                    &g.beta, c, to_int(name, g.ldc), to_int(name, g.batch)),
                 name, __FILE__, __LINE__);
  }
  cudaStream_t stream() const { return stream_of(ctx_); }

 private:
  static int to_int(const char* name, int64_t v) {
    if (v < 0 || v > INT_MAX)
      throw std::runtime_error(std::string(name) + ": size " + std::to_string(v) +
                               " outside cuBLAS's int range");
    return int(v);
  }
  ExecContext ctx_;
};

// A CUDA kernel's CPU twin: the kernel of the same name on the cpu backend. Looked up at call
// time (never during static registration, whose order across files is unspecified).
inline const Kernel& cpu_twin(const std::string& name) {
  const Kernel* k = Registry::instance().find(name, Backend::cpu);
  if (!k) throw InvalidProblem(name + " (cuda): its cpu twin is not in the registry");
  return *k;
}

// Base of every CUDA kernel: validation, input checks, FLOP and byte counts and the float64
// reference are the CPU twin's (the same function, by definition), plus the limits of the
// CUDA implementation (int32 sizes for cuBLAS and launch arithmetic). A CUDA kernel may run
// precisions its twin does not (the twin runs fp32): the precision is checked against the
// kernel's own KernelInfo, everything else by the twin on the same problem at fp32.
class CudaKernel : public Kernel {
 public:
  const Kernel& twin() const { return cpu_twin(info().name); }
  void validate(const Problem& p) const override {
    validate_common(p);
    twin().validate(at_fp32(p));
    require_int("seq_len", p.seq_len);
    require_int("head_dim", p.head_dim);
    require_int("batch*heads", p.sequences());
    validate_cuda(p);
  }
  void validate_inputs(const Problem& p, const Inputs& host_inputs) const override {
    twin().validate_inputs(at_fp32(p), host_inputs);
  }
  // Every CUDA kernel says whether it calls cuBLAS (the runner counts its workspace).
  bool uses_cublas(const Problem& p) const override = 0;
  double flops(const Problem& p) const override { return twin().flops(p); }
  double min_bytes(const Problem& p) const override { return twin().min_bytes(p); }
  void reference_rows(const Problem& p, const Inputs& host_inputs, std::span<const RowId> rows,
                      double* out) const override {
    twin().reference_rows(p, host_inputs, rows, out);
  }

 protected:
  // Kernel-specific limits beyond the twin's.
  virtual void validate_cuda(const Problem&) const {}
  static Problem at_fp32(Problem p) {
    p.precision = Precision::fp32;
    return p;
  }
  void require_int(const char* what, int64_t v) const {
    if (v > INT_MAX)
      throw InvalidProblem(info().name + " (cuda): " + what + " = " + std::to_string(v) +
                           " exceeds the int32 range of cuBLAS and the launch arithmetic");
  }
};

}  // namespace
}  // namespace attnbench::gpu
