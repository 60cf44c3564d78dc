// Vanilla softmax attention on the CPU (docs/methods.md section 1). Two versions:
//   vanilla_materialized  S = scale Q K^T and P = softmax(S) in one b*h*N*N workspace (softmax
//                         in place), both products through CBLAS sgemm. The papers' baseline.
//                         Row blocks of R queries go through scores -> softmax -> output while
//                         their slice of the buffer is in cache; causal blocks multiply only
//                         the keys they see. Phases reported to ctx.phases (phases.hpp).
//   vanilla_flash         fused: blocks of queries stream over tiles of keys with the online
//                         softmax of math/softmax.hpp; both tile products are register-blocked
//                         AVX-512 micro-kernels (cpu/flash_tiles.hpp; portable fallback);
//                         O(BLOCK * dh) scratch per thread; causal key tiles above the
//                         diagonal are skipped, the diagonal tile masked.
// The float64 reference (reference.hpp, vanilla_reference_rows) checks both.
// Run: ./run_all.sh test (tests/test_kernels_cpu.cpp, tests/test_vanilla_cpu.cpp), or the harness.
#include <algorithm>
#include <cmath>
#include <limits>

#include "attnbench/cpu/flash_tiles.hpp"
#include "attnbench/cpu/vanilla.hpp"
#include "attnbench/cpu_util.hpp"
#include "attnbench/descriptions.hpp"
#include "attnbench/math/softmax.hpp"
#include "attnbench/phases.hpp"

namespace attnbench {
namespace {

using cpu::VanillaCpuBase;

// ---------------------------------------------------------------------------------------
// vanilla_materialized

// Rows are processed in blocks, for both forms: block [i0, i0+R) takes scores -> softmax ->
// output on its own R x N slice of the buffer while the slice is still in the last-level cache
// (R N 4 bytes: 8 MB at N = 4096, R = 512; 32 MB of L3 here), and its two products have the
// shapes at which OpenBLAS is fastest (M = R rather than M = N; see the note in run()).
// Causal: the block needs keys [0, i0+R) only, so both products skip the masked upper
// triangle (half the FLOPs) except the block's own diagonal triangle (R / 2N of the work),
// hence the smaller causal block. Wide heads, bidirectional: K and V (N dh 4 bytes each) evict
// the slice from the cache anyway, the products run at the sgemm rate at any M, and every call
// repacks the N x dh operand, so whole sequences (one sgemm per product) are faster.
constexpr int64_t kRowBlockBidirectional = 512;
constexpr int64_t kRowBlockCausal = 256;
constexpr int64_t kWideHead = 256;  // dh from which a bidirectional block is the whole sequence

class VanillaMaterializedCpu final : public VanillaCpuBase {
 public:
  const KernelInfo& info() const override {
    static const KernelInfo i = vanilla_materialized_info(Backend::cpu);
    return i;
  }
  bool profiles_phases() const override { return true; }
  // one b*h*N*N buffer: the scores, turned into probabilities in place
  static float* carve_scores(Carver& c, const Problem& p) {
    return c.take<float>(p.sequences() * p.seq_len * p.seq_len);
  }
  WorkspaceSize workspace(const Problem& p) const override {
    return {0, layout_bytes([&](Carver& c) { carve_scores(c, p); })};
  }
  void run(const Problem& p, const Inputs& in, const void*, void* scratch, float* out,
           const ExecContext& ctx) const override {
    const int64_t S = p.sequences(), N = p.seq_len, dh = p.head_dim;
    const float scale = 1.0f / std::sqrt(float(dh));
    const int nt = cpu::threads_for(ctx);
    Carver carver(scratch);
    float* scores_all = carve_scores(carver, p);
    // The floor that binds the products at dh = 64 is OpenBLAS itself: cblas_sgemm alone,
    // issued exactly as here (2 threads, one sgemm per thread, into the same buffer), reaches
    // ~72 % of its 2048^3 rate (203 GFLOP/s) on the scores product (K = 64) bidirectional,
    // ~60 % causal (must-do FLOPs; small and diagonal blocks), and 72-80 % on the output
    // product (N = 64). At K = 64 OpenBLAS updates C every 64 steps and zeroes it first
    // (beta = 0), and C is the buffer's first touch (its DRAM write-allocate). At dh = 1024
    // both products run at 85-95 % of the 2048^3 rate.
    const int64_t R = p.causal ? kRowBlockCausal : dh >= kWideHead ? N : kRowBlockBidirectional;
    const int64_t blocks = (N + R - 1) / R;
    const int64_t items = S * blocks;
    // One row block of one sequence. Phases (ctx.phases, profiling runs only): the two products
    // with the FLOPs they must do (2 dh per visible query-key pair each) and the softmax pass
    // with the bytes it must move (each visible score read and written once, 8 bytes a pair).
    auto one_block = [&](int64_t s, int64_t i0, bool parallel_rows, PhaseLaps& laps) {
      const float* q = in.q + s * N * dh;
      const float* k = in.k + s * N * dh;
      const float* v = in.v + s * N * dh;
      const int64_t rows = std::min(R, N - i0);
      const int64_t keys = p.causal ? i0 + rows : N;
      const double pairs = p.causal ? double(rows) * double(i0) + double(rows) * double(rows + 1) / 2
                                    : double(rows) * double(N);
      float* sb = scores_all + s * N * N + i0 * N;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(keys), int(dh),
                  scale, q + i0 * dh, int(dh), k, int(dh), 0.0f, sb, int(N));
      laps.lap("scores", 2.0 * double(dh) * pairs);
#pragma omp parallel for num_threads(nt) schedule(static) if (parallel_rows)
      for (int64_t r = 0; r < rows; ++r)
        cpu::softmax_row(sb + r * N, sb + r * N, p.causal ? i0 + r + 1 : N, keys,
                            r + 1 < rows ? sb + (r + 1) * N : nullptr);
      laps.lap("softmax", 0.0, 2.0 * sizeof(float) * pairs);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(dh), int(keys),
                  1.0f, sb, int(N), v, int(dh), 0.0f, out + (s * N + i0) * dh, int(dh));
      laps.lap("output", 2.0 * double(dh) * pairs);
    };
    if (items >= 4 * int64_t(nt)) {
      // Enough blocks for every thread: each block on one thread, single-threaded BLAS (the
      // OpenMP build of OpenBLAS runs serially inside a parallel region). Causal: the last
      // blocks of each sequence (the most keys) first.
#pragma omp parallel num_threads(nt)
      {
        PhaseLaps laps(ctx.phases, 1.0 / omp_get_num_threads());
#pragma omp for schedule(dynamic)
        for (int64_t it = 0; it < items; ++it) {
          const int64_t b = blocks - 1 - it / S, s = it % S;
          one_block(s, b * R, false, laps);
        }
      }
    } else {
      // Few blocks: one at a time, threaded BLAS and a parallel softmax.
      PhaseLaps laps(ctx.phases, 1.0);
      for (int64_t it = 0; it < items; ++it) one_block(it / blocks, (it % blocks) * R, true, laps);
    }
  }
};

// ---------------------------------------------------------------------------------------
// vanilla_flash: fused, register-blocked (cpu/flash_tiles.hpp). A work item is one block of
// kBlockM queries of one sequence; its queries are packed transposed and pre-scaled
// (Q^T * scale, dh x kBlockM) and its output accumulates transposed (O^T, dh x kBlockM). For
// each tile of kBlockN keys: S^T = K_tile Q^T (score_rows, K read in place, tile max on the
// fly, causal mask on the diagonal); the online softmax of math/softmax.hpp, vectorized
// across the block's queries, turns S^T into P^T in place; O^T = factor * O^T + V_tile^T P^T
// (pv_rows). At the end o = O^T^T / l. Causal: key tiles past the block's last query are never
// visited. Scratch per thread: Q^T, O^T, one S^T tile and five state vectors.

constexpr int64_t kBlockM = cpu::flash::kBlockM;  // queries per block
constexpr int64_t kBlockN = 64;                    // keys per tile

class VanillaFlashCpu final : public VanillaCpuBase {
 public:
  const KernelInfo& info() const override {
    static const KernelInfo i = vanilla_flash_info(Backend::cpu);
    return i;
  }
  // Per thread: Q^T (scaled) and the O^T accumulators (dh x kBlockM), S^T / P^T of one key
  // tile, and the running max, running sum, tile max, rescale factor and tile sum per query.
  struct Slot {
    float* qt;
    float* ot;
    float* sp;
    float* m;
    float* l;
    float* tmax;
    float* fac;
    float* tsum;
  };
  static Slot carve_slot(Carver& c, int64_t dh) {
    Slot t{};
    t.qt = c.take<float>(dh * kBlockM);
    t.ot = c.take<float>(dh * kBlockM);
    t.sp = c.take<float>(kBlockN * kBlockM);
    t.m = c.take<float>(kBlockM);
    t.l = c.take<float>(kBlockM);
    t.tmax = c.take<float>(kBlockM);
    t.fac = c.take<float>(kBlockM);
    t.tsum = c.take<float>(kBlockM);
    return t;
  }
  static Slots carve_slots(Carver& c, int64_t dh) {
    return take_slots(c, cpu::max_threads(), [&](Carver& t) { carve_slot(t, dh); });
  }
  WorkspaceSize workspace(const Problem& p) const override {
    return {0, layout_bytes([&](Carver& c) { carve_slots(c, p.head_dim); })};
  }
  void run(const Problem& p, const Inputs& in, const void*, void* scratch, float* out,
           const ExecContext& ctx) const override {
    using namespace cpu::flash;
    const int64_t S = p.sequences(), N = p.seq_len, dh = p.head_dim;
    const float scale = 1.0f / std::sqrt(float(dh));
    const int64_t q_blocks = (N + kBlockM - 1) / kBlockM;
    Carver carver(scratch);
    const Slots slots = carve_slots(carver, dh);
    const int nt = cpu::threads_for(ctx);
    const int64_t items = S * q_blocks;
#pragma omp parallel num_threads(nt)
    {
      Carver mine(slots.at(omp_get_thread_num()));
      const auto [qt, ot, sp, m, l, tmax, fac, tsum] = carve_slot(mine, dh);
#pragma omp for schedule(dynamic)
      for (int64_t it = 0; it < items; ++it) {
        // last query blocks first: under the causal mask they carry the most work
        const int64_t item = items - 1 - it;
        const int64_t s = item / q_blocks, i0 = (item % q_blocks) * kBlockM;
        const int64_t rows = std::min(kBlockM, N - i0);
        const float* q = in.q + (s * N + i0) * dh;
        const float* k = in.k + s * N * dh;
        const float* v = in.v + s * N * dh;
        // Q^T * scale; lanes past the last query are zero (finite scores, never written out)
        for (int64_t i = 0; i < kBlockM; ++i)
          for (int64_t d = 0; d < dh; ++d)
            qt[d * kBlockM + i] = i < rows ? q[i * dh + d] * scale : 0.0f;
        for (int64_t i = 0; i < kBlockM; ++i) {
          const math::OnlineSoftmaxRow st = math::online_softmax_init();
          m[i] = st.m;
          l[i] = st.l;
        }
        // causal: key tiles wholly above the diagonal are never visited
        const int64_t key_end = p.causal ? i0 + rows : N;
        for (int64_t j0 = 0; j0 < key_end; j0 += kBlockN) {
          const int64_t cols = std::min(kBlockN, key_end - j0);
          // S^T tile, masked where key j0+r is after query i0+i, and its max per query
          std::fill(tmax, tmax + kBlockM, math::neg_inf_f());
          const int64_t lo = p.causal ? j0 - i0 : kNoMask;
          int64_t r0 = 0;
          for (; r0 + kRows <= cols; r0 += kRows)
            score_rows<kRows>(dh, k + (j0 + r0) * dh, qt, sp + r0 * kBlockM, tmax, lo + r0);
          if (r0 < cols)
            dispatch_rows<ScoreRows>(int(cols - r0), dh, k + (j0 + r0) * dh,
                                     static_cast<const float*>(qt), sp + r0 * kBlockM, tmax,
                                     lo + r0);
          // online softmax across the block's queries (math/softmax.hpp)
          for (int64_t i = 0; i < kBlockM; ++i) {
            math::OnlineSoftmaxRow st{m[i], l[i]};
            fac[i] = math::online_softmax_rescale(st, tmax[i]);
            m[i] = st.m;
            l[i] = st.l;
            tsum[i] = 0.0f;
          }
          for (int64_t j = 0; j < cols; ++j) {
            float* prow = sp + j * kBlockM;
            for (int64_t i = 0; i < kBlockM; ++i) {
              const float w = math::online_softmax_weight(math::OnlineSoftmaxRow{m[i], 0.0f},
                                                          prow[i]);
              prow[i] = w;
              tsum[i] += w;
            }
          }
          for (int64_t i = 0; i < kBlockM; ++i) l[i] += tsum[i];
          // O^T = fac * O^T + V_tile^T P^T
          const bool first = j0 == 0;
          const float* vt = v + j0 * dh;
          int64_t c0 = 0;
          for (; c0 + kRows <= dh; c0 += kRows)
            pv_rows<kRows>(cols, dh, vt + c0, sp, ot + c0 * kBlockM, fac, first);
          if (c0 < dh)
            dispatch_rows<PvRows>(int(dh - c0), cols, dh, vt + c0,
                                  static_cast<const float*>(sp), ot + c0 * kBlockM,
                                  static_cast<const float*>(fac), first);
        }
        float* o = out + (s * N + i0) * dh;
        for (int64_t i = 0; i < rows; ++i) {
          const float inv = math::online_softmax_inv_sum(math::OnlineSoftmaxRow{m[i], l[i]});
          for (int64_t c = 0; c < dh; ++c) o[i * dh + c] = ot[c * kBlockM + i] * inv;
        }
      }
    }
  }
};

}  // namespace

ATTNBENCH_REGISTER_KERNEL(VanillaMaterializedCpu);
ATTNBENCH_REGISTER_KERNEL(VanillaFlashCpu);

}  // namespace attnbench
