// Linear and kernelized attentions on the CPU (kernels.md section 3). Inside:
//   linear_elu    Linear Transformer: phi = elu + 1,
//                 o_i = phi(q_i)^T S_i / (phi(q_i) . z_i + 1e-6).
//   linrec        LinRec: phi = elu / ||elu||, o_i = phi(q_i)^T S_i / sqrt(dh), no denominator.
//   performer     FAVOR+: phi = m^-1/2 [exp(w_l . x' - ||x'||^2/2 - c) + 1e-4], output as
//                 linear_elu. Parameters `features` m (0 = floor(dh ln dh)) and `seed`; the
//                 m x dh projection (random_features.hpp) is drawn in `prepare` into the
//                 prepared workspace, and the float64 reference draws the same one from the
//                 same seed. The key stabiliser c is the max over every position and feature of
//                 the sequence (as the authors' code has it, in the causal form too); a pre-pass
//                 over the keys finds it, so no N x m tensor is kept.
//   efficient_attention
//                 Shen et al.: O = softmax_rows(Q) (softmax_cols(K)^T V); keys normalised per
//                 feature over positions with a running column max (online rescaling).
//   hydra         Hydra: o_t = q^_t * sum_{s<=t} k^_s * v_s elementwise. The spec normalises over
//                 the full width d; here q, k, v are [batch, heads, N, dh] and a position's
//                 width-d vector is its features of all heads together, d = heads * dh (suite
//                 choice). Everything but the norm is elementwise, so this is exactly Hydra on
//                 one head of width d, whatever the head split (tests/test_linear.cpp checks).
//
// The per-element formulas (feature maps, state update/readout) are math/linear.hpp, shared
// with CUDA. The first four share one engine, the chunked form of linear attention: positions
// go in blocks of kBlock; per block the features Qf, Kf (kBlock x m) are formed, the block's
// own causal part is a masked (Qf Kf^T) V product, the past enters through the running state
// S (m x dh), z (m) as Qf S, then S += Kf^T V. Bidirectional forms build S once and read out
// Qf S. All products are sgemm; the workspace is per-thread blocks and states only, so it does
// not grow with N (no N x N, no N x m). Parallel over batch * heads; with fewer sequences than
// threads a sequence is cut into chunks (lisa.cpp's two passes: chunk-local states, a prefix
// over chunks, then every chunk from its starting state). Hydra streams positions with one
// width-d accumulator per batch element; with fewer batch elements than threads the width is
// split into column groups instead (after a parallel pass for the per-position norms).
// Each reference_rows evaluates the definition directly in float64 (per row, sums over j <= i).
//
// Run the tests: ./build/attnbench_tests "[kernels],[linear]"   (tests/test_kernels_cpu.cpp
// checks every kernel against its float64 reference; tests/test_linear.cpp the methods'
// properties).
#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "attnbench/cpu_util.hpp"
#include "attnbench/descriptions.hpp"
#include "attnbench/math/linear.hpp"
#include "attnbench/random_features.hpp"
#include "attnbench/reference.hpp"

namespace attnbench {
namespace {

constexpr int64_t kBlock = 64;  // positions per block of the chunked form
// Efficient attention's causal block form reads the state at the block's column max; if a
// column's prefix max at the block's first row sits more than this below it, the block is
// done row by row instead (exact online rescaling), so no normaliser underflows.
constexpr float kColumnSafeRange = 60.0f;

// Chunks per sequence: enough that every thread has work (1 when sequences >= threads).
int64_t chunks_per_sequence(int64_t sequences, int64_t units, int nt) {
  if (sequences >= nt) return 1;
  return std::max<int64_t>(1, std::min<int64_t>((nt + sequences - 1) / sequences, units));
}

// =========================================================================================
// The chunked feature-map engine (linear_elu, linrec, performer, efficient_attention)

struct LinearForm {
  int64_t m = 0;                // feature width
  bool denominator = false;     // divide by fq . z + eps
  float scale = 1.0f;           // output scale
  bool column_softmax = false;  // efficient attention: keys softmaxed over positions
  bool key_stabilizer = false;  // performer: per-sequence key max, found in a pre-pass
};

// Feature maps: map_q / map_k write rows x m features of `rows` contiguous dh-vectors;
// key_max returns the largest key dot of the rows (performer only; `tmp` is rows x m).
struct EluPlusOneMap {
  void map_q(const float* x, int64_t rows, int64_t dh, float* out) const {
    math::elu_plus_one_row(x, int(rows * dh), out);
  }
  void map_k(const float* x, int64_t rows, int64_t dh, float, float* out) const {
    map_q(x, rows, dh, out);
  }
  float key_max(const float*, int64_t, int64_t, float*) const { return 0.0f; }
};

struct LinRecMap {
  void map_q(const float* x, int64_t rows, int64_t dh, float* out) const {
    for (int64_t r = 0; r < rows; ++r) math::linrec_feature_row(x + r * dh, int(dh), out + r * dh);
  }
  void map_k(const float* x, int64_t rows, int64_t dh, float, float* out) const {
    map_q(x, rows, dh, out);
  }
  float key_max(const float*, int64_t, int64_t, float*) const { return 0.0f; }
};

struct PerformerMap {
  const float* w;  // m x dh projection
  int64_t m;
  void dots(const float* x, int64_t rows, int64_t dh, float* out) const {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(m), int(dh),
                math::performer_input_scale(int(dh)), x, int(dh), w, int(dh), 0.0f, out, int(m));
  }
  void map_q(const float* x, int64_t rows, int64_t dh, float* out) const {
    dots(x, rows, dh, out);
    for (int64_t r = 0; r < rows; ++r) {
      float* f = out + r * m;
      math::performer_finish(f, int(m), math::performer_half_sq_norm(x + r * dh, int(dh)),
                             math::row_max_f(f, int(m)));
    }
  }
  void map_k(const float* x, int64_t rows, int64_t dh, float key_c, float* out) const {
    dots(x, rows, dh, out);
    for (int64_t r = 0; r < rows; ++r)
      math::performer_finish(out + r * m, int(m), math::performer_half_sq_norm(x + r * dh, int(dh)),
                             key_c);
  }
  float key_max(const float* x, int64_t rows, int64_t dh, float* tmp) const {
    dots(x, rows, dh, tmp);
    return math::row_max_f(tmp, int(rows * m));
  }
};

struct EfficientMap {
  void map_q(const float* x, int64_t rows, int64_t dh, float* out) const {
    for (int64_t r = 0; r < rows; ++r) math::softmax_row_f(x + r * dh, int(dh), out + r * dh);
  }
  // raw keys: the engine exponentiates them against the running column max
  void map_k(const float* x, int64_t rows, int64_t dh, float, float* out) const {
    std::copy(x, x + rows * dh, out);
  }
  float key_max(const float*, int64_t, int64_t, float*) const { return 0.0f; }
};

// The state S (m x dh), z (m) and, for column softmax, the column max (m).
struct StateView {
  float* s;
  float* z;
  float* cmax;
};
int64_t state_stride(int64_t m, int64_t dh) { return (m * dh + 2 * m + 15) / 16 * 16; }
StateView state_at(float* base, int64_t index, int64_t m, int64_t dh) {
  float* b = base + index * state_stride(m, dh);
  return {b, b + m * dh, b + m * dh + m};
}

// Per-thread working memory.
struct Slot {
  StateView st;
  float* colmax;  // m: a block's column max (column softmax)
  float* zrun;    // m: running normaliser inside a block (column softmax)
  float* qf;      // kBlock x m
  float* kf;      // kBlock x m
  float* a;       // kBlock x kBlock: the block's masked Qf Kf^T
  // Compensated (Kahan) accumulation of the state over blocks: a block's Kf^T V lands in
  // `block`, and s_comp / z_comp carry the low-order bits the running sums drop. Without it
  // the float32 state drifts as O(N eps) once the sum cancels (FAVOR+'s near-uniform
  // features: 1.6e-5 relative at N = 20000), with it the error stays at O(eps).
  float* block;   // m x dh
  float* s_comp;  // m x dh
  float* z_comp;  // m
};
// `compensated`: the forms whose state is added with Kahan compensation (all but column
// softmax, which rescales its state as the maxima move) carry the three extra buffers.
cpu::Sizer slot_sizer(int64_t m, int64_t dh, bool compensated) {
  cpu::Sizer s;
  s.add<float>(m * dh).add<float>(m).add<float>(m).add<float>(m).add<float>(m);
  s.add<float>(kBlock * m).add<float>(kBlock * m).add<float>(kBlock * kBlock);
  if (compensated) s.add<float>(m * dh).add<float>(m * dh).add<float>(m);
  return s;
}
Slot carve_slot(void* base, int64_t m, int64_t dh, bool compensated) {
  cpu::Carver c(base);
  Slot w{};
  w.st.s = c.take<float>(m * dh);
  w.st.z = c.take<float>(m);
  w.st.cmax = c.take<float>(m);
  w.colmax = c.take<float>(m);
  w.zrun = c.take<float>(m);
  w.qf = c.take<float>(kBlock * m);
  w.kf = c.take<float>(kBlock * m);
  w.a = c.take<float>(kBlock * kBlock);
  if (compensated) {
    w.block = c.take<float>(m * dh);
    w.s_comp = c.take<float>(m * dh);
    w.z_comp = c.take<float>(m);
  }
  return w;
}

// Scratch: one Slot per thread, then (only when sequences are chunked) one state and one key
// max per (sequence, chunk). Nothing depends on N beyond the chunk count (<= threads).
size_t linear_scratch_bytes(const Problem& p, int64_t m, bool compensated) {
  const int nt = cpu::max_threads();
  const int64_t S = p.sequences(), dh = p.head_dim;
  const int64_t blocks = (p.seq_len + kBlock - 1) / kBlock;
  const int64_t C = chunks_per_sequence(S, blocks, nt);
  size_t bytes = slot_sizer(m, dh, compensated).bytes() * size_t(nt);
  if (C > 1)
    bytes += cpu::Sizer().add<float>(S * C * state_stride(m, dh)).add<float>(S * C).bytes();
  return bytes;
}

template <class Map>
class LinearEngine {
 public:
  LinearEngine(const Problem& p, const Inputs& in, const Map& map, const LinearForm& f)
      : p_(p), in_(in), map_(map), f_(f), N_(p.seq_len), dh_(p.head_dim), m_(f.m) {}

  void run(void* scratch, float* out, int nt) const {
    const int64_t S = p_.sequences();
    const int64_t blocks = (N_ + kBlock - 1) / kBlock;
    const int64_t C = chunks_per_sequence(S, blocks, nt);
    const size_t slot_bytes = slot_sizer(m_, dh_, !f_.column_softmax).bytes();
    char* slots = static_cast<char*>(scratch);
    if (C == 1) {
#pragma omp parallel num_threads(nt)
      {
        Slot w = carve_slot(slots + slot_bytes * size_t(omp_get_thread_num()), m_, dh_, !f_.column_softmax);
#pragma omp for schedule(dynamic)
        for (int64_t s = 0; s < S; ++s) whole_sequence(s, w, out);
      }
      return;
    }
    // chunked: states and key maxima per (sequence, chunk) after the per-thread slots
    cpu::Carver shared(slots + slot_bytes * size_t(cpu::max_threads()));
    float* states = shared.take<float>(S * C * state_stride(m_, dh_));
    float* key_c = shared.take<float>(S * C);
    const int64_t chunk_len = (blocks + C - 1) / C * kBlock;
    auto range = [&](int64_t c) {
      return std::pair{std::min(N_, c * chunk_len), std::min(N_, (c + 1) * chunk_len)};
    };
    if (f_.key_stabilizer) {
#pragma omp parallel num_threads(nt)
      {
        Slot w = carve_slot(slots + slot_bytes * size_t(omp_get_thread_num()), m_, dh_, !f_.column_softmax);
#pragma omp for schedule(static) collapse(2)
        for (int64_t s = 0; s < S; ++s)
          for (int64_t c = 0; c < C; ++c) {
            const auto [i0, i1] = range(c);
            key_c[s * C + c] = key_max(s, i0, i1, w);
          }
      }
      for (int64_t s = 0; s < S; ++s)
        key_c[s * C] = *std::max_element(key_c + s * C, key_c + (s + 1) * C);
    }
    // pass 1: chunk-local states (causal: the last chunk's is never needed)
    const int64_t local_chunks = p_.causal ? C - 1 : C;
#pragma omp parallel num_threads(nt)
    {
      Slot w = carve_slot(slots + slot_bytes * size_t(omp_get_thread_num()), m_, dh_, !f_.column_softmax);
#pragma omp for schedule(static) collapse(2)
      for (int64_t s = 0; s < S; ++s)
        for (int64_t c = 0; c < local_chunks; ++c) {
          const StateView st = state_at(states, s * C + c, m_, dh_);
          zero(st);
          reset_compensation(w);
          const auto [i0, i1] = range(c);
          for (int64_t i = i0; i < i1; i += kBlock) {
            const int64_t rows = std::min(kBlock, i1 - i);
            key_block(st, s, i, rows, f_.key_stabilizer ? key_c[s * C] : 0.0f, w);
            absorb(st, w.kf, in_.v + (s * N_ + i) * dh_, rows, w);
          }
        }
    }
    if (p_.causal) {
      // entry c <- the state before chunk c: shift the locals up one, then a prefix
      for (int64_t s = 0; s < S; ++s) {
        for (int64_t c = C - 1; c >= 1; --c)
          copy_state(state_at(states, s * C + c - 1, m_, dh_),
                     state_at(states, s * C + c, m_, dh_));
        zero(state_at(states, s * C, m_, dh_));
        for (int64_t c = 1; c < C; ++c)
          combine(state_at(states, s * C + c, m_, dh_), state_at(states, s * C + c - 1, m_, dh_));
      }
    } else {
      for (int64_t s = 0; s < S; ++s) {
        const StateView total = state_at(states, s * C, m_, dh_);
        for (int64_t c = 1; c < C; ++c) combine(total, state_at(states, s * C + c, m_, dh_));
        finalize_bidirectional(total);
      }
    }
    // pass 2: every chunk's outputs
#pragma omp parallel num_threads(nt)
    {
      Slot w = carve_slot(slots + slot_bytes * size_t(omp_get_thread_num()), m_, dh_, !f_.column_softmax);
#pragma omp for schedule(static) collapse(2)
      for (int64_t s = 0; s < S; ++s)
        for (int64_t c = 0; c < C; ++c) {
          const auto [i0, i1] = range(c);
          if (p_.causal) {
            copy_state(state_at(states, s * C + c, m_, dh_), w.st);
            reset_compensation(w);
            causal_range(s, i0, i1, f_.key_stabilizer ? key_c[s * C] : 0.0f, w, out);
          } else {
            read_range(s, i0, i1, state_at(states, s * C, m_, dh_), w, out);
          }
        }
    }
  }

 private:
  void zero(const StateView& st) const {
    std::fill(st.s, st.s + m_ * dh_, 0.0f);
    std::fill(st.z, st.z + m_, 0.0f);
    std::fill(st.cmax, st.cmax + m_, math::neg_inf_f());
  }

  void copy_state(const StateView& from, const StateView& to) const {
    std::copy(from.s, from.s + m_ * dh_, to.s);
    std::copy(from.z, from.z + m_, to.z);
    std::copy(from.cmax, from.cmax + m_, to.cmax);
  }

  // into <- from (+) into: sums, or for column softmax the rescaled sums at the larger max.
  void combine(const StateView& into, const StateView& from) const {
    if (!f_.column_softmax) {
      for (int64_t x = 0; x < m_ * dh_; ++x) into.s[x] += from.s[x];
      for (int64_t c = 0; c < m_; ++c) into.z[c] += from.z[c];
      return;
    }
    for (int64_t c = 0; c < m_; ++c) {
      const float mx = math::max_f(into.cmax[c], from.cmax[c]);
      const float ri = math::column_rescale_f(into.cmax[c], mx);
      const float rf = math::column_rescale_f(from.cmax[c], mx);
      for (int64_t e = 0; e < dh_; ++e)
        into.s[c * dh_ + e] = into.s[c * dh_ + e] * ri + from.s[c * dh_ + e] * rf;
      into.z[c] = into.z[c] * ri + from.z[c] * rf;
      into.cmax[c] = mx;
    }
  }

  void finalize_bidirectional(const StateView& st) const {
    if (!f_.column_softmax) return;
    for (int64_t c = 0; c < m_; ++c) {  // G = diag(1/z) S: the keys' column softmax
      const float inv = 1.0f / st.z[c];
      for (int64_t e = 0; e < dh_; ++e) st.s[c * dh_ + e] *= inv;
    }
  }

  float key_max(int64_t s, int64_t i0, int64_t i1, const Slot& w) const {
    float mx = math::neg_inf_f();
    for (int64_t i = i0; i < i1; i += kBlock)
      mx = math::max_f(
          mx, map_.key_max(in_.k + (s * N_ + i) * dh_, std::min(kBlock, i1 - i), dh_, w.kf));
    return mx;
  }

  // Raw column max of the block's keys (already copied into kf) into w.colmax.
  void block_column_max(const StateView& st, int64_t rows, const Slot& w) const {
    std::copy(st.cmax, st.cmax + m_, w.colmax);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < m_; ++c) w.colmax[c] = math::max_f(w.colmax[c], w.kf[r * m_ + c]);
  }
  // Column softmax: move the state to the new column max and exponentiate the block's keys.
  void rescale_and_exp(const StateView& st, int64_t rows, const Slot& w) const {
    for (int64_t c = 0; c < m_; ++c) {
      const float r = math::column_rescale_f(st.cmax[c], w.colmax[c]);
      if (r != 1.0f) {
        for (int64_t e = 0; e < dh_; ++e) st.s[c * dh_ + e] *= r;
        st.z[c] *= r;
      }
      st.cmax[c] = w.colmax[c];
    }
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < m_; ++c)
        w.kf[r * m_ + c] = math::exp_f(w.kf[r * m_ + c] - st.cmax[c]);
  }

  // Key features of positions [i, i + rows) into w.kf (for column softmax: state moved to the
  // block's max, keys exponentiated).
  void key_block(const StateView& st, int64_t s, int64_t i, int64_t rows, float key_c,
                 const Slot& w) const {
    map_.map_k(in_.k + (s * N_ + i) * dh_, rows, dh_, key_c, w.kf);
    if (f_.column_softmax) {
      block_column_max(st, rows, w);
      rescale_and_exp(st, rows, w);
    }
  }

  // S += Kf^T V, z += column sums of Kf.
  // Starts a new compensated accumulation into the state the slot works on.
  void reset_compensation(const Slot& w) const {
    if (f_.column_softmax) return;
    std::fill(w.s_comp, w.s_comp + m_ * dh_, 0.0f);
    std::fill(w.z_comp, w.z_comp + m_, 0.0f);
  }

  // S += Kf^T V, z += column sums of Kf. Column softmax rescales S as its maxima move, so it
  // adds directly; the other forms add each block with Kahan compensation (see Slot).
  void absorb(const StateView& st, const float* kf, const float* v, int64_t rows,
              const Slot& w) const {
    if (f_.column_softmax) {  // (its slot has no compensation buffers)
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(m_), int(dh_), int(rows), 1.0f,
                  kf, int(m_), v, int(dh_), 1.0f, st.s, int(dh_));
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < m_; ++c) st.z[c] += kf[r * m_ + c];
      return;
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(m_), int(dh_), int(rows), 1.0f, kf,
                int(m_), v, int(dh_), 0.0f, w.block, int(dh_));
    kahan_add(st.s, w.s_comp, w.block, m_ * dh_);
    if (f_.denominator) {
      std::fill(w.block, w.block + m_, 0.0f);  // the block's column sums of Kf
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < m_; ++c) w.block[c] += kf[r * m_ + c];
      kahan_add(st.z, w.z_comp, w.block, m_);
    }
  }
  static void kahan_add(float* sum, float* comp, const float* add, int64_t n) {
    for (int64_t x = 0; x < n; ++x) {
      const float y = add[x] - comp[x];
      const float t = sum[x] + y;
      comp[x] = (t - sum[x]) - y;
      sum[x] = t;
    }
  }

  void whole_sequence(int64_t s, const Slot& w, float* out) const {
    const float key_c = f_.key_stabilizer ? key_max(s, 0, N_, w) : 0.0f;
    zero(w.st);
    reset_compensation(w);
    if (p_.causal) {
      causal_range(s, 0, N_, key_c, w, out);
      return;
    }
    for (int64_t i = 0; i < N_; i += kBlock) {
      const int64_t rows = std::min(kBlock, N_ - i);
      key_block(w.st, s, i, rows, key_c, w);
      absorb(w.st, w.kf, in_.v + (s * N_ + i) * dh_, rows, w);
    }
    finalize_bidirectional(w.st);
    read_range(s, 0, N_, w.st, w, out);
  }

  // Bidirectional outputs of positions [i0, i1): O = Qf S, each row times its factor.
  void read_range(int64_t s, int64_t i0, int64_t i1, const StateView& st, const Slot& w,
                  float* out) const {
    for (int64_t i = i0; i < i1; i += kBlock) {
      const int64_t rows = std::min(kBlock, i1 - i);
      float* o = out + (s * N_ + i) * dh_;
      map_.map_q(in_.q + (s * N_ + i) * dh_, rows, dh_, w.qf);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(dh_), int(m_), 1.0f,
                  w.qf, int(m_), st.s, int(dh_), 0.0f, o, int(dh_));
      for (int64_t r = 0; r < rows; ++r) {
        const float factor =
            math::linear_output_factor(w.qf + r * m_, f_.denominator ? st.z : nullptr, int(m_),
                                       math::kLinearDenominatorEps, f_.scale);
        if (factor != 1.0f)
          for (int64_t e = 0; e < dh_; ++e) o[r * dh_ + e] *= factor;
      }
    }
  }

  // Causal outputs of positions [i0, i1) from the state in w.st (the state before i0).
  void causal_range(int64_t s, int64_t i0, int64_t i1, float key_c, const Slot& w,
                    float* out) const {
    for (int64_t i = i0; i < i1; i += kBlock) {
      const int64_t rows = std::min(kBlock, i1 - i);
      const float* q = in_.q + (s * N_ + i) * dh_;
      const float* v = in_.v + (s * N_ + i) * dh_;
      float* o = out + (s * N_ + i) * dh_;
      map_.map_k(in_.k + (s * N_ + i) * dh_, rows, dh_, key_c, w.kf);
      map_.map_q(q, rows, dh_, w.qf);
      if (f_.column_softmax) {
        block_column_max(w.st, rows, w);
        bool safe = true;
        for (int64_t c = 0; c < m_; ++c)
          safe &= math::max_f(w.st.cmax[c], w.kf[c]) >= w.colmax[c] - kColumnSafeRange;
        if (!safe) {  // rare: a key column jumps by > kColumnSafeRange inside the block
          for (int64_t r = 0; r < rows; ++r) {
            math::column_softmax_update(w.st.s, w.st.z, w.st.cmax, w.kf + r * m_, v + r * dh_,
                                        int(dh_));
            math::column_softmax_readout(w.qf + r * m_, w.st.s, w.st.z, int(dh_), o + r * dh_);
          }
          continue;
        }
        rescale_and_exp(w.st, rows, w);
        // query row r reads the state through z_r = z + sum_{j<=r} exp(k_j - cmax)
        std::copy(w.st.z, w.st.z + m_, w.zrun);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t c = 0; c < m_; ++c) {
            w.zrun[c] += w.kf[r * m_ + c];
            w.qf[r * m_ + c] /= w.zrun[c];
          }
      }
      // the block's own part: A = Qf Kf^T with keys after the query masked
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(rows), int(m_), 1.0f,
                  w.qf, int(m_), w.kf, int(m_), 0.0f, w.a, int(kBlock));
      for (int64_t r = 0; r < rows; ++r)
        std::fill(w.a + r * kBlock + r + 1, w.a + r * kBlock + rows, 0.0f);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(dh_), int(rows), 1.0f,
                  w.a, int(kBlock), v, int(dh_), 0.0f, o, int(dh_));
      // the past: + Qf S
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(dh_), int(m_), 1.0f,
                  w.qf, int(m_), w.st.s, int(dh_), 1.0f, o, int(dh_));
      for (int64_t r = 0; r < rows; ++r) {
        float factor = f_.scale;
        if (f_.denominator) {
          float den = 0.0f;
          for (int64_t j = 0; j <= r; ++j) den += w.a[r * kBlock + j];
          den += math::dot_f(w.qf + r * m_, w.st.z, int(m_));
          factor = f_.scale / (den + math::kLinearDenominatorEps);
        }
        if (factor != 1.0f)
          for (int64_t e = 0; e < dh_; ++e) o[r * dh_ + e] *= factor;
      }
      absorb(w.st, w.kf, v, rows, w);
    }
  }

  const Problem& p_;
  const Inputs& in_;
  const Map& map_;
  LinearForm f_;
  int64_t N_, dh_, m_;
};

// ---- float64 references (from the definitions, sums over j directly) ----------------------

double elu_d(double x) { return x > 0 ? x : std::expm1(x); }
double inv_norm_d(const double* x, int64_t n) {
  double ss = 0;
  for (int64_t c = 0; c < n; ++c) ss += x[c] * x[c];
  return 1.0 / std::max(std::sqrt(ss), double(math::kNormFloor));
}

// Feature-map attention in float64: o_i = scale * sum_{j<=last} (fq_i . fk_j) v_j, divided by
// sum_j fq_i . fk_j + eps when `denominator`. key_features(s, fk) fills fk (N x m) for
// sequence s; query_feature(x, fq) maps one query.
template <class KeyFeatures, class QueryFeature>
void feature_reference(const Problem& p, const Inputs& in, std::span<const RowId> rows, double* out,
                       int64_t m, bool denominator, double scale, KeyFeatures key_features,
                       QueryFeature query_feature) {
  const int64_t N = p.seq_len, dh = p.head_dim;
  std::vector<double> fk(static_cast<size_t>(N * m)), fq(static_cast<size_t>(m)),
      num(static_cast<size_t>(dh));
  int64_t cached = -1;
  for (size_t r = 0; r < rows.size(); ++r) {
    const int64_t s = rows[r].seq, i = rows[r].row;
    if (s != cached) {
      key_features(s, fk.data());
      cached = s;
    }
    query_feature(in.q + (s * N + i) * dh, fq.data());
    std::fill(num.begin(), num.end(), 0.0);
    double den = 0;
    const int64_t last = p.causal ? i : N - 1;
    for (int64_t j = 0; j <= last; ++j) {
      double wgt = 0;
      for (int64_t c = 0; c < m; ++c) wgt += fq[c] * fk[j * m + c];
      den += wgt;
      const float* vj = in.v + (s * N + j) * dh;
      for (int64_t e = 0; e < dh; ++e) num[e] += wgt * double(vj[e]);
    }
    const double factor = denominator ? scale / (den + double(math::kLinearDenominatorEps)) : scale;
    for (int64_t e = 0; e < dh; ++e) out[r * dh + e] = factor * num[e];
  }
}

// =========================================================================================
// linear_elu

class LinearEluCpu final : public Kernel {
 public:
  const KernelInfo& info() const override {
    static const KernelInfo i = linear_elu_info(Backend::cpu);
    return i;
  }
  WorkspaceSize workspace(const Problem& p) const override {
    return {0, linear_scratch_bytes(p, p.head_dim, /*compensated=*/true)};
  }
  void run(const Problem& p, const Inputs& in, const void*, void* scratch, float* out,
           const ExecContext& ctx) const override {
    LinearForm f;
    f.m = p.head_dim;
    f.denominator = true;
    const EluPlusOneMap map;
    LinearEngine<EluPlusOneMap>(p, in, map, f).run(scratch, out, cpu::threads_for(ctx));
  }
  // state update and readout 2 N dh^2 each; z update and denominator 2 N dh each
  double flops(const Problem& p) const override {
    const double S = double(p.sequences()), N = double(p.seq_len), dh = double(p.head_dim);
    return S * (4 * N * dh * dh + 4 * N * dh);
  }
  void reference_rows(const Problem& p, const Inputs& in, std::span<const RowId> rows,
                      double* out) const override {
    const int64_t N = p.seq_len, dh = p.head_dim;
    auto phi = [dh](const float* x, double* f) {
      for (int64_t c = 0; c < dh; ++c)
        f[c] = x[c] > 0 ? double(x[c]) + 1.0 : std::exp(double(x[c]));
    };
    feature_reference(
        p, in, rows, out, dh, true, 1.0,
        [&](int64_t s, double* fk) {
          for (int64_t j = 0; j < N; ++j) phi(in.k + (s * N + j) * dh, fk + j * dh);
        },
        phi);
  }
};

// =========================================================================================
// linrec

class LinRecCpu final : public Kernel {
 public:
  const KernelInfo& info() const override {
    static const KernelInfo i = linrec_info(Backend::cpu);
    return i;
  }
  WorkspaceSize workspace(const Problem& p) const override {
    return {0, linear_scratch_bytes(p, p.head_dim, /*compensated=*/true)};
  }
  void run(const Problem& p, const Inputs& in, const void*, void* scratch, float* out,
           const ExecContext& ctx) const override {
    LinearForm f;
    f.m = p.head_dim;
    f.scale = 1.0f / std::sqrt(float(p.head_dim));
    const LinRecMap map;
    LinearEngine<LinRecMap>(p, in, map, f).run(scratch, out, cpu::threads_for(ctx));
  }
  double flops(const Problem& p) const override {
    const double S = double(p.sequences()), N = double(p.seq_len), dh = double(p.head_dim);
    return S * 4 * N * dh * dh;
  }
  void reference_rows(const Problem& p, const Inputs& in, std::span<const RowId> rows,
                      double* out) const override {
    const int64_t N = p.seq_len, dh = p.head_dim;
    auto phi = [dh](const float* x, double* f) {
      for (int64_t c = 0; c < dh; ++c) f[c] = elu_d(double(x[c]));
      const double inv = inv_norm_d(f, dh);
      for (int64_t c = 0; c < dh; ++c) f[c] *= inv;
    };
    feature_reference(
        p, in, rows, out, dh, false, 1.0 / std::sqrt(double(dh)),
        [&](int64_t s, double* fk) {
          for (int64_t j = 0; j < N; ++j) phi(in.k + (s * N + j) * dh, fk + j * dh);
        },
        phi);
  }
};

// =========================================================================================
// performer

class PerformerCpu final : public Kernel {
 public:
  const KernelInfo& info() const override {
    static const KernelInfo i = performer_info(Backend::cpu);
    return i;
  }
  void validate(const Problem& p) const override {
    validate_common(p);
    if (p.features < 0 || p.features > (1 << 20))
      throw InvalidProblem(fmt::format(
          "performer: features must be in [0, 2^20] (0 = default), got {}", p.features));
  }
  static int64_t features(const Problem& p) {
    return random_features::performer_features(p.features, p.head_dim);
  }
  // prepared: the float m x dh projection, then the generator's double work block.
  WorkspaceSize workspace(const Problem& p) const override {
    const int64_t m = features(p), dh = p.head_dim;
    cpu::Sizer prep;
    prep.add<float>(m * dh).add<double>(
        int64_t(random_features::performer_projection_work_elems(dh)));
    return {prep.bytes(), linear_scratch_bytes(p, m, /*compensated=*/true)};
  }
  void prepare(const Problem& p, const Inputs&, void* prepared, const ExecContext&) const override {
    const int64_t m = features(p), dh = p.head_dim;
    cpu::Carver c(prepared);
    float* w = c.take<float>(m * dh);
    double* work = c.take<double>(int64_t(random_features::performer_projection_work_elems(dh)));
    random_features::performer_projection(m, dh, p.seed, work, w);
  }
  void run(const Problem& p, const Inputs& in, const void* prepared, void* scratch, float* out,
           const ExecContext& ctx) const override {
    LinearForm f;
    f.m = features(p);
    f.denominator = true;
    f.key_stabilizer = true;
    const PerformerMap map{static_cast<const float*>(prepared), f.m};
    LinearEngine<PerformerMap>(p, in, map, f).run(scratch, out, cpu::threads_for(ctx));
  }
  // feature projections of q and k 2 N m dh each; state update and readout 2 N m dh each;
  // z update and denominator 2 N m each
  double flops(const Problem& p) const override {
    const double S = double(p.sequences()), N = double(p.seq_len), dh = double(p.head_dim),
                 m = double(features(p));
    return S * (8 * N * m * dh + 4 * N * m);
  }
  void reference_rows(const Problem& p, const Inputs& in, std::span<const RowId> rows,
                      double* out) const override {
    const int64_t N = p.seq_len, dh = p.head_dim, m = features(p);
    const std::vector<double> w = random_features::performer_projection(m, dh, p.seed);
    const double xscale = 1.0 / std::sqrt(std::sqrt(double(dh)));
    const double ratio = 1.0 / std::sqrt(double(m));
    // dots[l] = w_l . x', returns ||x'||^2 / 2
    auto dots = [&](const float* x, double* d) {
      double ss = 0;
      for (int64_t c = 0; c < dh; ++c) ss += (xscale * x[c]) * (xscale * x[c]);
      for (int64_t l = 0; l < m; ++l) {
        double acc = 0;
        for (int64_t c = 0; c < dh; ++c) acc += w[size_t(l * dh + c)] * (xscale * x[c]);
        d[l] = acc;
      }
      return ss / 2;
    };
    auto finish = [&](double* d, double half, double c) {
      for (int64_t l = 0; l < m; ++l)
        d[l] = ratio * (std::exp(d[l] - half - c) + double(math::kPerformerFeatureEps));
    };
    std::vector<double> halves(static_cast<size_t>(N));
    feature_reference(
        p, in, rows, out, m, true, 1.0,
        [&](int64_t s, double* fk) {
          // keys: c = max over every position and feature of the sequence (both forms)
          double c = -INFINITY;
          for (int64_t j = 0; j < N; ++j) {
            halves[j] = dots(in.k + (s * N + j) * dh, fk + j * m);
            c = std::max(c, *std::max_element(fk + j * m, fk + (j + 1) * m));
          }
          for (int64_t j = 0; j < N; ++j) finish(fk + j * m, halves[j], c);
        },
        [&](const float* x, double* fq) {
          const double half = dots(x, fq);
          finish(fq, half, *std::max_element(fq, fq + m));
        });
  }
};

// =========================================================================================
// efficient_attention

class EfficientAttentionCpu final : public Kernel {
 public:
  const KernelInfo& info() const override {
    static const KernelInfo i =
        method_info("efficient_attention", Backend::cpu, "linear",
                    "Efficient Attention (Shen et al.): softmax_rows(Q) (softmax_cols(K)^T V)");
    return i;
  }
  WorkspaceSize workspace(const Problem& p) const override {
    return {0, linear_scratch_bytes(p, p.head_dim, /*compensated=*/false)};
  }
  void run(const Problem& p, const Inputs& in, const void*, void* scratch, float* out,
           const ExecContext& ctx) const override {
    LinearForm f;
    f.m = p.head_dim;
    f.column_softmax = true;
    const EfficientMap map;
    LinearEngine<EfficientMap>(p, in, map, f).run(scratch, out, cpu::threads_for(ctx));
  }
  // state update and readout 2 N dh^2 each; the two softmaxes and normalisers ~ 4 N dh
  double flops(const Problem& p) const override {
    const double S = double(p.sequences()), N = double(p.seq_len), dh = double(p.head_dim);
    return S * (4 * N * dh * dh + 4 * N * dh);
  }
  // o_i = sum_j w_ij v_j with w_ij = sum_c softmax(q_i)[c] exp(k_jc - M_c) / Z_c, where M_c and
  // Z_c are the max and sum over the keys j <= last of column c.
  void reference_rows(const Problem& p, const Inputs& in, std::span<const RowId> rows,
                      double* out) const override {
    const int64_t N = p.seq_len, dh = p.head_dim;
    std::vector<double> sq(static_cast<size_t>(dh)), mx(static_cast<size_t>(dh)),
        z(static_cast<size_t>(dh));
    for (size_t r = 0; r < rows.size(); ++r) {
      const int64_t s = rows[r].seq, i = rows[r].row, last = p.causal ? i : N - 1;
      const float* q = in.q + (s * N + i) * dh;
      const float* k = in.k + s * N * dh;
      const float* v = in.v + s * N * dh;
      const double qmax = *std::max_element(q, q + dh);
      double qsum = 0;
      for (int64_t c = 0; c < dh; ++c) qsum += (sq[c] = std::exp(double(q[c]) - qmax));
      for (int64_t c = 0; c < dh; ++c) sq[c] /= qsum;
      std::fill(mx.begin(), mx.end(), -INFINITY);
      std::fill(z.begin(), z.end(), 0.0);
      for (int64_t j = 0; j <= last; ++j)
        for (int64_t c = 0; c < dh; ++c) mx[c] = std::max(mx[c], double(k[j * dh + c]));
      for (int64_t j = 0; j <= last; ++j)
        for (int64_t c = 0; c < dh; ++c) z[c] += std::exp(double(k[j * dh + c]) - mx[c]);
      double* o = out + r * dh;
      std::fill(o, o + dh, 0.0);
      for (int64_t j = 0; j <= last; ++j) {
        double wgt = 0;
        for (int64_t c = 0; c < dh; ++c)
          wgt += sq[c] * std::exp(double(k[j * dh + c]) - mx[c]) / z[c];
        for (int64_t e = 0; e < dh; ++e) o[e] += wgt * double(v[j * dh + e]);
      }
    }
  }
};

// =========================================================================================
// hydra

class HydraCpu final : public Kernel {
 public:
  const KernelInfo& info() const override {
    static const KernelInfo i = hydra_info(Backend::cpu);
    return i;
  }
  // Column groups of the width d = heads * dh per batch element: 1 when the batch alone
  // keeps every thread busy, else enough groups for all threads (multiples of 16 columns, so
  // no two threads write one cache line of the output).
  static int64_t column_groups(const Problem& p, int nt) {
    if (p.batch >= nt) return 1;
    const int64_t d = p.heads * p.head_dim;
    return std::max<int64_t>(1, std::min((nt + p.batch - 1) / p.batch, d / 16));
  }
  // Per thread a width-d accumulator; with column groups also the inverse norms of q and k of
  // every position (2 floats per position: linear in N).
  WorkspaceSize workspace(const Problem& p) const override {
    const int nt = cpu::max_threads();
    const int64_t d = p.heads * p.head_dim;
    cpu::Sizer s;
    for (int t = 0; t < nt; ++t) s.add<float>(d);
    if (column_groups(p, nt) > 1) s.add<float>(p.batch * p.seq_len).add<float>(p.batch * p.seq_len);
    return {0, s.bytes()};
  }
  void run(const Problem& p, const Inputs& in, const void*, void* scratch, float* out,
           const ExecContext& ctx) const override {
    const int nt = cpu::threads_for(ctx);
    const int64_t Bt = p.batch, H = p.heads, N = p.seq_len, dh = p.head_dim, d = H * dh;
    const int64_t G = column_groups(p, nt);
    const size_t acc_bytes = cpu::Sizer().add<float>(d).bytes();
    char* base = static_cast<char*>(scratch);
    auto acc_of = [&](int t) { return reinterpret_cast<float*>(base + acc_bytes * size_t(t)); };

    // row of position n, head hh of batch element b
    auto at = [&](const float* x, int64_t b, int64_t hh, int64_t n) {
      return x + ((b * H + hh) * N + n) * dh;
    };
    auto inv_norm = [&](const float* x, int64_t b, int64_t n) {
      float ss = 0.0f;
      for (int64_t hh = 0; hh < H; ++hh) ss += math::sum_squares_f(at(x, b, hh, n), int(dh));
      return math::inv_l2_norm_f(ss);
    };
    // columns [c0, c1) of the width d at position n: acc += rk k v, and out = rq q acc
    auto accumulate = [&](float* acc, int64_t b, int64_t n, float rk, int64_t c0, int64_t c1) {
      for (int64_t hh = c0 / dh; hh * dh < c1; ++hh) {
        const int64_t lo = std::max(c0, hh * dh) - hh * dh,
                      hi = std::min(c1, (hh + 1) * dh) - hh * dh;
        math::hydra_accumulate(acc + hh * dh + lo, at(in.k, b, hh, n) + lo, at(in.v, b, hh, n) + lo,
                               rk, int(hi - lo));
      }
    };
    auto readout = [&](const float* acc, int64_t b, int64_t n, float rq, int64_t c0, int64_t c1) {
      for (int64_t hh = c0 / dh; hh * dh < c1; ++hh) {
        const int64_t lo = std::max(c0, hh * dh) - hh * dh,
                      hi = std::min(c1, (hh + 1) * dh) - hh * dh;
        math::hydra_readout(at(in.q, b, hh, n) + lo, acc + hh * dh + lo, rq, int(hi - lo),
                            out + ((b * H + hh) * N + n) * dh + lo);
      }
    };
    auto stream = [&](float* acc, int64_t b, int64_t c0, int64_t c1, auto&& rk_of, auto&& rq_of) {
      std::fill(acc + c0, acc + c1, 0.0f);
      if (p.causal) {
        for (int64_t n = 0; n < N; ++n) {
          accumulate(acc, b, n, rk_of(n), c0, c1);
          readout(acc, b, n, rq_of(n), c0, c1);
        }
      } else {
        for (int64_t n = 0; n < N; ++n) accumulate(acc, b, n, rk_of(n), c0, c1);
        for (int64_t n = 0; n < N; ++n) readout(acc, b, n, rq_of(n), c0, c1);
      }
    };

    if (G == 1) {  // one batch element per thread, norms computed as the positions stream
#pragma omp parallel for num_threads(nt) schedule(dynamic)
      for (int64_t b = 0; b < Bt; ++b)
        stream(
            acc_of(omp_get_thread_num()), b, 0, d, [&](int64_t n) { return inv_norm(in.k, b, n); },
            [&](int64_t n) { return inv_norm(in.q, b, n); });
      return;
    }
    // column groups: the norms first (parallel over positions), then each group streams
    float* rk = reinterpret_cast<float*>(base + acc_bytes * size_t(cpu::max_threads()));
    float* rq = rk + cpu::Sizer().add<float>(Bt * N).bytes() / sizeof(float);
#pragma omp parallel num_threads(nt)
    {
#pragma omp for schedule(static)
      for (int64_t x = 0; x < Bt * N; ++x) {
        rk[x] = inv_norm(in.k, x / N, x % N);
        rq[x] = inv_norm(in.q, x / N, x % N);
      }
      const int64_t width = (d / 16 + G - 1) / G * 16;  // columns per group
#pragma omp for schedule(static) collapse(2)
      for (int64_t b = 0; b < Bt; ++b)
        for (int64_t g = 0; g < G; ++g) {
          const int64_t c0 = std::min(d, g * width),
                        c1 = g == G - 1 ? d : std::min(d, (g + 1) * width);
          if (c0 >= c1) continue;
          stream(
              acc_of(omp_get_thread_num()), b, c0, c1, [&](int64_t n) { return rk[b * N + n]; },
              [&](int64_t n) { return rq[b * N + n]; });
        }
    }
  }
  // per position and feature: squares of q and k (4), k^ v accumulate (3), q^ readout (2)
  double flops(const Problem& p) const override {
    return 9.0 * double(p.batch) * double(p.heads) * double(p.seq_len) * double(p.head_dim);
  }
  void reference_rows(const Problem& p, const Inputs& in, std::span<const RowId> rows,
                      double* out) const override {
    const int64_t H = p.heads, N = p.seq_len, dh = p.head_dim;
    auto inv_norm = [&](const float* x, int64_t b, int64_t n) {
      double ss = 0;
      for (int64_t hh = 0; hh < H; ++hh)
        for (int64_t c = 0; c < dh; ++c) {
          const double e = x[((b * H + hh) * N + n) * dh + c];
          ss += e * e;
        }
      return 1.0 / std::max(std::sqrt(ss), double(math::kNormFloor));
    };
    std::vector<double> rk(static_cast<size_t>(N));
    int64_t cached_b = -1;
    for (size_t r = 0; r < rows.size(); ++r) {
      const int64_t s = rows[r].seq, t = rows[r].row, b = s / H, last = p.causal ? t : N - 1;
      if (b != cached_b) {
        for (int64_t n = 0; n < N; ++n) rk[n] = inv_norm(in.k, b, n);
        cached_b = b;
      }
      const double rq = inv_norm(in.q, b, t);
      const float* q = in.q + (s * N + t) * dh;
      for (int64_t c = 0; c < dh; ++c) {
        double acc = 0;
        for (int64_t n = 0; n <= last; ++n)
          acc += rk[n] * double(in.k[(s * N + n) * dh + c]) * double(in.v[(s * N + n) * dh + c]);
        out[r * dh + c] = rq * double(q[c]) * acc;
      }
    }
  }
};

}  // namespace

ATTNBENCH_REGISTER_KERNEL(LinearEluCpu);
ATTNBENCH_REGISTER_KERNEL(LinRecCpu);
ATTNBENCH_REGISTER_KERNEL(PerformerCpu);
ATTNBENCH_REGISTER_KERNEL(EfficientAttentionCpu);
ATTNBENCH_REGISTER_KERNEL(HydraCpu);

}  // namespace attnbench
