// Sparse and hashed attentions on the GPU (docs/methods.md section 4); CPU twins in
// kernels/cpu/sparse.cpp, same names, parameters (one reader per method, descriptions.hpp) and
// float64 references.
//   local_window  softmax attention over the band i - w < j <= i (causal) or |i - j| < w
//                 (bidirectional): the flash kernel (flash.cuh, attnbench/cuda/flash_block.hpp)
//                 with the band as its mask. A query tile visits only the key tiles its rows'
//                 bands reach (tiling.hpp, flash_key_tiles), so the work is O(N w dh), and the
//                 memory O(N dh) (no workspace). The band limits are math/sparse.hpp's, the
//                 CPU twin's. w >= N is vanilla attention.
//   reformer_lsh, sinkhorn, lsan_twin: attnbench/cuda/sparse_pipeline.hpp, run with the device
//                 launcher (common.cuh): every functor is one grid-stride kernel of 256 threads
//                 per block, one thread per item; no cuBLAS. Launches of one run:
//
// reformer_lsh (prepare, untimed: the rotations of every round, drawn on the host by the CPU
// twin's seeded generator and uploaded: [n_hashes, dh, buckets/2] floats)
//   memset        out = 0
//   begin         thread per position: 1 / ||q||, an empty running combination
//   hash          thread per (round, position), all rounds at once: math::lsh_bucket
//   sort          the stable counting sort of every (round, sequence) by bucket, in 4 launches
//                 (tiling.hpp: chunk histograms; per-bucket offsets over the chunks; bucket
//                 starts; a chunk-ordered scatter). No atomics, so the order is deterministic
//                 and exactly the CPU twin's (bucket, position) order. A device radix sort
//                 (CUB) would also be stable, but needs a temporary buffer whose size is only
//                 known by querying CUB, and the buckets are few (about N / bucket_size):
//                 counting is the natural sort here, as on the CPU.
//   per round, per slab of sorted slots (one slab unless the scores exceed 16 MiB):
//     gather      thread per (chunk, column, key): the chunk's keys (its slots, then the
//                 previous chunk's), normalized and transposed for the next launch
//     scores      thread per (slot, key): q . k / sqrt(dh), the self logit, the causal mask
//     softmax     thread per slot: math::softmax_in_place, the log-normalizer kept
//     output      thread per (slot, column): P V folded into the running combination
//     fold state  thread per slot: the running weight sum and max
//   finish        thread per output element: divide by the running weight sum
//   so 7 + n_hashes * 5 * slabs launches. Scratch: O(n_hashes b h N) ints (buckets, sorted
//   orders, counters), 3 b h N floats, and the slab buffers (at most 16 MiB, or one chunk).
//
// sinkhorn, per group of sequences (one group unless the block tables exceed 16 MiB):
//   means         thread per (block, column): mean block queries (scaled) and keys
//   logits        thread per (block, block): the block logits, once (the CPU twin recomputes
//                 them in each step with the same fmaf chain: same bits)
//   2 x 5 steps   thread per block: a Sinkhorn row step, then a column step (memsets first)
//   argmax        thread per block: its sorted block
// then per slab of blocks the gather, scores, softmax and output launches of Reformer (keys:
// the block's own, then its sorted block's). 13 launches per group + 4 per slab; scratch
// O(b h (N/block)^2) for the block logits of a group, and the slab buffers.
//
// lsan_twin
//   flash         vanilla_flash's kernel (flash.cuh): the global branch, written to out
//   local branch  thread per output element: += the causal depthwise convolution of V
//   2 launches, no workspace.
//
// Loads: the score threads of one query read consecutive keys of the transposed gather, the
// output threads consecutive columns of V rows; the per-row threads (hash, softmax) read rows
// that stay in L1 across their loops.
// The same pipelines run on the CPU in tests/test_cuda_tiling.cpp (against the CPU twins and
// float64); on a GPU, tests/gpu/test_gpu_kernels.cpp checks this file.
#include <string>

#include "attnbench/cuda/sparse_pipeline.hpp"
#include "attnbench/descriptions.hpp"
#include "common.cuh"
#include "flash.cuh"

namespace attnbench::gpu {
namespace {

// The device launcher plus the flash block that lsan_twin's pipeline asks for.
class SparseLauncher : public DeviceLauncher {
 public:
  explicit SparseLauncher(const ExecContext& ctx) : DeviceLauncher(ctx), ctx_(ctx) {}
  void flash(const char*, const Problem& p, const Inputs& in, float* out) {
    launch_flash(p, in, out, ctx_, 0);
  }

 private:
  ExecContext ctx_;
};

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

class ReformerCuda final : public CudaKernel {
 public:
  const KernelInfo& info() const override {
    static const KernelInfo i = reformer_info(Backend::cuda);
    return i;
  }
  bool uses_cublas(const Problem&) const override { return false; }
  WorkspaceSize workspace(const Problem& p) const override {
    const ReformerShape sh = reformer_shape(p);
    return reformer_workspace(p, sh, reformer_plan(p, sh));
  }
  void prepare(const Problem& p, const Inputs&, void* prepared,
               const ExecContext& ctx) const override {
    SparseLauncher l(ctx);
    reformer_prepare(l, p, reformer_shape(p), prepared);
  }
  void run(const Problem& p, const Inputs& in, const void* prepared, void* scratch, float* out,
           const ExecContext& ctx) const override {
    const ReformerShape sh = reformer_shape(p);
    SparseLauncher l(ctx);
    reformer_run(l, p, sh, reformer_plan(p, sh), in, prepared, scratch, out);
  }
};

class SinkhornCuda final : public CudaKernel {
 public:
  const KernelInfo& info() const override {
    static const KernelInfo i = sinkhorn_info(Backend::cuda);
    return i;
  }
  bool uses_cublas(const Problem&) const override { return false; }
  WorkspaceSize workspace(const Problem& p) const override {
    return sinkhorn_workspace(p, sinkhorn_plan(p, sinkhorn_shape(p)));
  }
  void run(const Problem& p, const Inputs& in, const void*, void* scratch, float* out,
           const ExecContext& ctx) const override {
    SparseLauncher l(ctx);
    sinkhorn_run(l, p, sinkhorn_plan(p, sinkhorn_shape(p)), in, scratch, out);
  }
};

class LsanTwinCuda final : public CudaKernel {
 public:
  const KernelInfo& info() const override {
    static const KernelInfo i = lsan_twin_info(Backend::cuda);
    return i;
  }
  bool uses_cublas(const Problem&) const override { return false; }
  WorkspaceSize workspace(const Problem&) const override { return {0, 0}; }
  void run(const Problem& p, const Inputs& in, const void*, void*, float* out,
           const ExecContext& ctx) const override {
    SparseLauncher l(ctx);
    lsan_twin_run(l, p, lsan_shape(p), in, out);
  }

 protected:
  void validate_cuda(const Problem& p) const override { validate_flash(info().name, p); }
};

}  // namespace
}  // namespace attnbench::gpu

namespace attnbench {
ATTNBENCH_REGISTER_KERNEL(gpu::LocalWindowCuda);
ATTNBENCH_REGISTER_KERNEL(gpu::ReformerCuda);
ATTNBENCH_REGISTER_KERNEL(gpu::SinkhornCuda);
ATTNBENCH_REGISTER_KERNEL(gpu::LsanTwinCuda);
}  // namespace attnbench
