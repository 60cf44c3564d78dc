// vanilla_eager on the CPU (docs/methods.md section 1): exact softmax attention computed the way
// eager PyTorch runs the papers' baseline,
//     softmax(masked_fill(torch.matmul(q, k.transpose(-2, -1)) * scale, mask, -inf), dim=-1) @ v
// with mask = torch.triu(torch.ones(N, N, dtype=torch.bool), 1): one op at a time, each
// writing a fresh tensor. Both products are full N x N sgemms even when causal (the
// framework skips nothing; the FLOPs reported are still the method's, 4 b h N^2 dh halved
// when causal, as for the other vanilla kernels). CUDA twin: kernels/cuda/vanilla.cu
// (pipeline in cuda/vanilla_pipeline.hpp).
//
// Memory: what eager PyTorch holds at the peak of one inference call (no autograd), S = b*h:
//   F = S N^2 4 bytes: one [b, h, N, N] float32 tensor;  M = N^2 bytes: the bool mask.
//   op (in order)          allocates   alive while it runs             then frees
//   triu(ones(N,N), 1)     mask (M)    ones (M), mask                  ones
//   matmul(q, k^T)         raw (F)     mask, raw                       -
//   raw * scale            scaled (F)  mask, raw, scaled               raw
//   masked_fill(.., -inf)  masked (F)  mask, scaled, masked            scaled
//   softmax(.., -1)        probs (F)   mask, masked, probs             masked
//   probs @ v              out         mask, probs, out                probs
// k.transpose is a view; matmul folds b and h of both operands into one bmm through views
// (no copy); masked_fill is out of place (clone, then fill) and broadcasts the [N, N] mask by
// expand (a view). A temporary dies as soon as the op it feeds returns, because nothing else
// refers to it: without autograd no op saves its inputs. So each op holds its input and its
// output and no other score tensor: the peak is 2F + M, while any of scale, masked_fill or
// softmax runs. Bidirectional has no mask and no masked_fill (raw -> scaled -> probs): 2F.
// Even under autograd the forward peak is the same 2F + M (mul by a scalar saves nothing,
// masked_fill saves the mask, softmax its output); only probs would outlive the call.
// Checked with torch 1.13's profiler (profile_memory, CPU, inference_mode), b*h = 1..4,
// N = 512 and 1024: the expression's live-tensor peak is 2F + M to the byte (bidirectional:
// 2F plus 12 bytes of scalar tensors); the output does not exist yet at that peak. Code that
// keeps the scores in a named local (s = ...; softmax(s) @ v) holds `masked` through the last
// matmul and peaks at 2F + M + the output. The harness holds the inputs and the output for
// the whole call, so its peak_bytes is inputs + output + the workspace below. (When N < dh
// the output outweighs a score tensor and the expression peaks in its last matmul, at
// F + output (+ M while the mask is referenced), below the harness's figure.)
// The workspace is 2F + M: two slots of F, an op writing the slot its input does not occupy
// (the block the framework's allocator would reuse), and the mask (vanilla_eager.hpp,
// eager_tensors):
//   causal          2 align64(4 b h N^2) + align64(N^2) bytes
//   bidirectional   2 align64(4 b h N^2) bytes
// Not in it, as for every kernel: q, k, v and the output (the harness counts them). Not
// modelled: the allocator's rounding (PyTorch's CUDA caching allocator rounds blocks to
// 512 bytes, ours to 64) and the mask's transient `ones` (M, before any score tensor exists).
//
// Passes: both products as sgemms over whole sequences or blocks of their query rows (every
// block against all N keys), one per thread with serial BLAS; one vectorized, OpenMP-parallel
// loop per elementwise op; softmax subtracts the row max, as torch's (cpu/vanilla.hpp,
// softmax_row). Phases reported to ctx.phases (phases.hpp).
// Tests: tests/test_vanilla_eager.cpp, tests/test_kernels_cpu.cpp (float64, via the
// registry), tests/test_vanilla_cpu.cpp; the CUDA pipeline in tests/test_cuda_tiling.cpp.
#include <algorithm>
#include <cmath>

#include "attnbench/cpu/vanilla.hpp"
#include "attnbench/cpu_util.hpp"
#include "attnbench/descriptions.hpp"
#include "attnbench/phases.hpp"
#include "attnbench/vanilla_eager.hpp"

namespace attnbench {
namespace {

// Like PyTorch's CPU ops (at::internal::GRAIN_SIZE), a pass over fewer elements than this runs
// on one thread: a parallel region costs more than such a pass, and far more when the cores
// are shared.
constexpr int64_t kGrain = 32768;

// The batched matmul: product(s, r0, rows) over blocks of query rows, each block's sgemm on
// one thread with serial BLAS (the OpenMP build of OpenBLAS runs serially inside a parallel
// region). Whole sequences when they spread evenly over the threads or are many; otherwise
// each sequence is cut into blocks of rows, about 4 per thread, as vanilla_materialized does.
// Every block multiplies against all N keys. (Threaded BLAS would split the same way, and
// allocate 512 kB of job buffers per call behind the workspace's back.)
template <class Product>
void for_each_row_block(int64_t sequences, int64_t n, int nt, const Product& product) {
  const bool parallel = sequences * n * n >= kGrain;
  const bool whole = !parallel || sequences % nt == 0 || sequences >= 4 * int64_t(nt);
  const int64_t rows = whole ? n : std::max<int64_t>(1, n * sequences / (4 * int64_t(nt)));
  const int64_t blocks = (n + rows - 1) / rows, items = sequences * blocks;
#pragma omp parallel for num_threads(nt) schedule(dynamic) if (parallel)
  for (int64_t it = 0; it < items; ++it) {
    const int64_t s = it / blocks, r0 = (it % blocks) * rows;
    product(s, r0, std::min(rows, n - r0));
  }
}

// scaled = raw * scale
void scale_pass(const float* in, float* out, int64_t count, float scale, int nt) {
#pragma omp parallel for simd num_threads(nt) schedule(static) if (count >= kGrain)
  for (int64_t x = 0; x < count; ++x) out[x] = in[x] * scale;
}

// mask = triu(ones(N, N), 1), built on every call as the framework's per-call mask.
void build_mask(uint8_t* mask, int64_t n, int nt) {
#pragma omp parallel for num_threads(nt) schedule(static) if (n * n >= kGrain)
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) mask[i * n + j] = eager_mask_value(i, j);
}

// masked = masked_fill(scaled, mask, -inf), the [N, N] mask broadcast over the sequences.
void masked_fill_pass(const float* in, const uint8_t* mask, float* out, int64_t rows, int64_t n,
                      int nt) {
#pragma omp parallel for num_threads(nt) schedule(static) if (rows * n >= kGrain)
  for (int64_t r = 0; r < rows; ++r) {
    const float* src = in + r * n;
    const uint8_t* m = mask + (r % n) * n;
    float* dst = out + r * n;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) dst[j] = eager_masked_fill(src[j], m[j]);
  }
}

// probs = softmax(masked, -1) over whole rows: masked keys are -inf and get 0.
void softmax_pass(const float* in, float* out, int64_t rows, int64_t n, int nt) {
#pragma omp parallel for num_threads(nt) schedule(static) if (rows * n >= kGrain)
  for (int64_t r = 0; r < rows; ++r)
    cpu::softmax_row(in + r * n, out + r * n, n, n, r + 1 < rows ? in + (r + 1) * n : nullptr);
}

class VanillaEagerCpu final : public cpu::VanillaCpuBase {
 public:
  const KernelInfo& info() const override {
    static const KernelInfo i = vanilla_eager_info(Backend::cpu);
    return i;
  }
  bool profiles_phases() const override { return true; }
  WorkspaceSize workspace(const Problem& p) const override { return vanilla_eager_workspace(p); }
  void run(const Problem& p, const Inputs& in, const void*, void* scratch, float* out,
           const ExecContext& ctx) const override {
    const int64_t S = p.sequences(), N = p.seq_len, dh = p.head_dim, elems = S * N * N;
    const int nt = cpu::threads_for(ctx);
    const EagerTensors t = eager_tensors(p, scratch);
    // Phase work: the FLOPs the full products execute, and each score read and written once.
    const double product_flops = 2.0 * double(dh) * double(elems);
    const double pass_bytes = 2.0 * sizeof(float) * double(elems);
    {
      PhaseScope phase(ctx.phases, "scores", product_flops);
      for_each_row_block(S, N, nt, [&](int64_t s, int64_t r0, int64_t rows) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(N), int(dh), 1.0f,
                    in.q + (s * N + r0) * dh, int(dh), in.k + s * N * dh, int(dh), 0.0f,
                    t.raw + (s * N + r0) * N, int(N));
      });
    }
    {
      PhaseScope phase(ctx.phases, "scale", 0, pass_bytes);
      scale_pass(t.raw, t.scaled, elems, eager_scale(dh), nt);
    }
    if (p.causal) {
      PhaseScope phase(ctx.phases, "masked_fill", 0, pass_bytes + double(N * N));
      build_mask(t.mask, N, nt);
      masked_fill_pass(t.scaled, t.mask, t.masked, S * N, N, nt);
    }
    {
      PhaseScope phase(ctx.phases, "softmax", 0, pass_bytes);
      softmax_pass(t.masked, t.probs, S * N, N, nt);
    }
    PhaseScope phase(ctx.phases, "output", product_flops);
    for_each_row_block(S, N, nt, [&](int64_t s, int64_t r0, int64_t rows) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(dh), int(N), 1.0f,
                  t.probs + (s * N + r0) * N, int(N), in.v + s * N * dh, int(dh), 0.0f,
                  out + (s * N + r0) * dh, int(dh));
    });
  }
};

}  // namespace

ATTNBENCH_REGISTER_KERNEL(VanillaEagerCpu);

}  // namespace attnbench
