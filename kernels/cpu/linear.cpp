// Linear and kernelized attentions on the CPU (docs/methods.md section 3). Inside:
//   linear_elu    Linear Transformer: phi = elu + 1,
//                 o_i = phi(q_i)^T S_i / (phi(q_i) . z_i + 1e-6).
//   linrec        LinRec: phi = elu / ||elu||, o_i = phi(q_i)^T S_i / sqrt(dh), no denominator.
//   performer     FAVOR+: phi = m^-1/2 [exp(w_l . x' - ||x'||^2/2 - c) + 1e-4], output as
//                 linear_elu. Parameters `features` m (0 = floor(dh ln dh)) and `seed`; the
//                 m x dh projection (random_features.hpp) is drawn in `prepare` and kept in the
//                 prepared workspace transposed and times dh^-1/4, and the float64 reference
//                 draws the same one from the same seed. The key stabiliser c is the max over
//                 every position and feature of the sequence (as the authors' code has it, in
//                 the causal form too); a pre-pass over the keys finds it, so no N x m tensor is
//                 kept (a sequence whose dots fit a fixed 64 kB per thread keeps them).
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
// with CUDA; cpu/linear_simd.hpp applies them to rows (AVX-512 exp), cpu/linear_gemm.hpp
// holds the small products. The first four share one engine, the chunked form of linear
// attention: causal positions go in blocks of kCausalBlock (half that for states up to
// 64 x 64); per block the features Fq, Fk are formed, A^T = Fk Fq^T is masked to keys at or
// before the query, then O = Fq S + A V is one product whose row tiles stop at their last
// key (the masked triangle is skipped tile by tile), and the block joins the running state
// S (m x dh), z (m) through a product that adds Fk^T V with Kahan compensation (column
// softmax: rescaled, no compensation). Bidirectional forms build S once (blocks of kBidirBlock) and read out Fq S.
// Small heads (m = dh <= 16, AVX-512) keep the state in registers and go position by position
// within a block (no intra-block product), the block joining the memory state as above.
// Performer's key stabiliser needs all key dots first: a pre-pass, whose dots are kept for
// sequences that fit a fixed per-thread buffer. The products are register-tiled AVX-512
// (cblas_sgemm without AVX-512); the workspace is per-thread blocks and states only, so it does
// not grow with N (no N x N, no N x m). Parallel over batch * heads; with fewer sequences than
// threads a sequence is cut into chunks (lisa.cpp's two passes: chunk-local states, a prefix
// over chunks, then every chunk from its starting state). Hydra goes one batch element per
// thread through blocks of positions (the block's full-width norms, then head by head with
// the accumulator in registers); with fewer batch elements than threads the causal form splits
// the width into column groups instead (after a parallel pass for the per-position norms), and
// the bidirectional form splits the positions (partial key sums added, then the readout).
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

#include "attnbench/cpu/linear_gemm.hpp"
#include "attnbench/cpu/linear_simd.hpp"
#include "attnbench/cpu_util.hpp"
#include "attnbench/descriptions.hpp"
#include "attnbench/math/linear.hpp"
#include "attnbench/random_features.hpp"
#include "attnbench/reference.hpp"

namespace attnbench {
namespace {

namespace lin = cpu::lin;

// Positions per block. Causal: a block's own part is a masked rows x rows product: about
// C (m + dh) flops per row on top of the 4 m dh of state update and readout that flops()
// counts (the products skip the masked triangle tile by tile), and one compensated state update
// per block; 32 rows balance the two for large states, 16 for small ones (causal_range).
// Bidirectional forms have no own part: larger blocks.
constexpr int64_t kCausalBlock = 32;
constexpr int64_t kBidirBlock = 64;
constexpr int64_t kMaxBlock = std::max(kCausalBlock, kBidirBlock);
// Performer: the key stabiliser needs every key's dots before the first feature, so the dots
// are computed twice (a pre-pass for the max, then per block); a sequence whose dots fit in
// this many floats keeps them from the pre-pass instead (a fixed per-thread buffer, whatever N).
constexpr int64_t kKeyCacheFloats = 16384;
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

// Feature maps: map_q / map_k write rows x m features (row stride m) of `rows` contiguous
// dh-vectors; key_max returns the largest key dot of the rows (performer only; `tmp` is
// rows x m).
struct EluPlusOneMap {
  void finish_k(const float*, int64_t, int64_t, float, float*) const {}
  void map_q(const float* x, int64_t rows, int64_t dh, float* out) const {
    lin::elu_plus_one(x, rows * dh, out);
  }
  void map_k(const float* x, int64_t rows, int64_t dh, float, float* out) const {
    map_q(x, rows, dh, out);
  }
  float key_max(const float*, int64_t, int64_t, float*) const { return 0.0f; }
};

struct LinRecMap {
  void finish_k(const float*, int64_t, int64_t, float, float*) const {}
  void map_q(const float* x, int64_t rows, int64_t dh, float* out) const {
    lin::linrec_features(x, rows, dh, out);
  }
  void map_k(const float* x, int64_t rows, int64_t dh, float, float* out) const {
    map_q(x, rows, dh, out);
  }
  float key_max(const float*, int64_t, int64_t, float*) const { return 0.0f; }
};

struct PerformerMap {
  const float* wt;  // dh x m: the projection transposed, times dh^-1/4 (see PerformerCpu)
  int64_t m;
  // dots[r][l] = w_l . x_r'
  void dots(const float* x, int64_t rows, int64_t dh, float* out) const {
    lin::Product p;
    p.M = rows, p.N = m, p.K1 = dh;
    p.A1 = {x, dh, 1}, p.B1 = wt, p.ldb1 = m;
    p.C = out, p.ldc = m;
    lin::run_product(p);
  }
  void map_q(const float* x, int64_t rows, int64_t dh, float* out) const {
    dots(x, rows, dh, out);
    for (int64_t r = 0; r < rows; ++r) {
      float* f = out + r * m;
      lin::performer_finish(f, m, math::performer_half_sq_norm(x + r * dh, int(dh)),
                            lin::row_max(f, m));
    }
  }
  void map_k(const float* x, int64_t rows, int64_t dh, float key_c, float* out) const {
    dots(x, rows, dh, out);
    for (int64_t r = 0; r < rows; ++r)
      lin::performer_finish(out + r * m, m, math::performer_half_sq_norm(x + r * dh, int(dh)),
                            key_c);
  }
  float key_max(const float* x, int64_t rows, int64_t dh, float* tmp) const {
    dots(x, rows, dh, tmp);
    return lin::row_max(tmp, rows * m);
  }
  // key features from dots already computed (the key cache), in place
  void finish_k(const float* x, int64_t rows, int64_t dh, float key_c, float* d) const {
    for (int64_t r = 0; r < rows; ++r)
      lin::performer_finish(d + r * m, m, math::performer_half_sq_norm(x + r * dh, int(dh)),
                            key_c);
  }
};

struct EfficientMap {
  void finish_k(const float*, int64_t, int64_t, float, float*) const {}
  void map_q(const float* x, int64_t rows, int64_t dh, float* out) const {
    lin::softmax_rows(x, rows, dh, out);
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
  float* qf;      // kMaxBlock x m: query features
  float* kf;      // kMaxBlock x m: key features
  float* qt;      // m x kCausalBlock: a causal block's query features transposed
  float* at;      // kCausalBlock x kCausalBlock: A^T, A = Fq Fk^T masked to keys <= query
  float* factor;  // kMaxBlock: per-row output factors
  // Compensated (Kahan) accumulation of the state over blocks: s_comp / z_comp carry the
  // low-order bits the running sums drop. Without it the float32 state drifts as O(N eps)
  // once the sum cancels (FAVOR+'s near-uniform features: 1.6e-5 relative at N = 20000),
  // with it the error stays at O(eps). `block` is a block's Kf^T V where the product cannot
  // add it in place (the BLAS fallback), then the block's column sums of Kf.
  float* block;   // m x dh + m
  float* s_comp;  // m x dh
  float* z_comp;  // m
  float* kcache;  // kKeyCacheFloats (performer): a short sequence's key dots
};
// `compensated`: the forms whose state is added with Kahan compensation (all but column
// softmax, which rescales its state as the maxima move) carry the three extra buffers.
Slot carve_slot(Carver& c, int64_t m, int64_t dh, bool compensated, bool key_cache) {
  Slot w{};
  w.st.s = c.take<float>(m * dh);
  w.st.z = c.take<float>(m);
  w.st.cmax = c.take<float>(m);
  w.colmax = c.take<float>(m);
  w.zrun = c.take<float>(m);
  w.qf = c.take<float>(kMaxBlock * m);
  w.kf = c.take<float>(kMaxBlock * m);
  w.qt = c.take<float>(m * kCausalBlock);
  w.at = c.take<float>(kCausalBlock * kCausalBlock);
  w.factor = c.take<float>(kMaxBlock);
  if (compensated) {
    w.block = c.take<float>(m * dh + m);
    w.s_comp = c.take<float>(m * dh);
    w.z_comp = c.take<float>(m);
  }
  if (key_cache) w.kcache = c.take<float>(kKeyCacheFloats);
  return w;
}

// Chunks per sequence of the run (> 1 only when sequences are fewer than threads).
int64_t sequence_chunks(const Problem& p, int nt) {
  return chunks_per_sequence(p.sequences(), (p.seq_len + kBidirBlock - 1) / kBidirBlock, nt);
}

// Scratch: one Slot per thread, then (only when sequences are chunked) one state and one key
// max per (sequence, chunk). Nothing depends on N beyond the chunk count (<= threads). The
// query sizes the chunks for every thread, a run for its own thread count (never more).
struct LinearScratch {
  Slots slots;
  float* states;  // [S, chunks] states of state_stride floats
  float* key_c;   // [S, chunks]
};
LinearScratch carve_linear(Carver& c, const Problem& p, int64_t m, bool compensated,
                           bool key_cache, int64_t chunks) {
  const int64_t S = p.sequences(), dh = p.head_dim;
  LinearScratch s{};
  s.slots = take_slots(c, cpu::max_threads(),
                       [&](Carver& t) { carve_slot(t, m, dh, compensated, key_cache); });
  if (chunks > 1) {
    s.states = c.take<float>(S * chunks * state_stride(m, dh));
    s.key_c = c.take<float>(S * chunks);
  }
  return s;
}
size_t linear_scratch_bytes(const Problem& p, int64_t m, bool compensated,
                            bool key_cache = false) {
  const int64_t chunks = sequence_chunks(p, cpu::max_threads());
  return layout_bytes([&](Carver& c) { carve_linear(c, p, m, compensated, key_cache, chunks); });
}

template <class Map>
class LinearEngine {
 public:
  LinearEngine(const Problem& p, const Inputs& in, const Map& map, const LinearForm& f)
      : p_(p), in_(in), map_(map), f_(f), N_(p.seq_len), dh_(p.head_dim), m_(f.m) {}

  void run(void* scratch, float* out, int nt) const {
    const int64_t S = p_.sequences();
    const int64_t C = sequence_chunks(p_, nt);
    Carver carver(scratch);
    const LinearScratch sc =
        carve_linear(carver, p_, m_, !f_.column_softmax, f_.key_stabilizer, C);
    if (C == 1) {
#pragma omp parallel num_threads(nt)
      {
        const Slot w = slot_of(sc);
#pragma omp for schedule(dynamic)
        for (int64_t s = 0; s < S; ++s) whole_sequence(s, w, out);
      }
      return;
    }
    // chunked: states and key maxima per (sequence, chunk) after the per-thread slots
    float* states = sc.states;
    float* key_c = sc.key_c;
    const int64_t blocks = (N_ + kBidirBlock - 1) / kBidirBlock;
    const int64_t chunk_len = (blocks + C - 1) / C * kBidirBlock;
    auto range = [&](int64_t c) {
      return std::pair{std::min(N_, c * chunk_len), std::min(N_, (c + 1) * chunk_len)};
    };
    if (f_.key_stabilizer) {
#pragma omp parallel num_threads(nt)
      {
        const Slot w = slot_of(sc);
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
      const Slot w = slot_of(sc);
#pragma omp for schedule(static) collapse(2)
      for (int64_t s = 0; s < S; ++s)
        for (int64_t c = 0; c < local_chunks; ++c) {
          const StateView st = state_at(states, s * C + c, m_, dh_);
          zero(st);
          reset_compensation(w);
          const auto [i0, i1] = range(c);
          for (int64_t i = i0; i < i1; i += kBidirBlock) {
            const int64_t rows = std::min(kBidirBlock, i1 - i);
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
      const Slot w = slot_of(sc);
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
  // The calling thread's slot.
  Slot slot_of(const LinearScratch& sc) const {
    Carver c(sc.slots.at(omp_get_thread_num()));
    return carve_slot(c, m_, dh_, !f_.column_softmax, f_.key_stabilizer);
  }

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
    for (int64_t i = i0; i < i1; i += kMaxBlock)
      mx = math::max_f(
          mx, map_.key_max(in_.k + (s * N_ + i) * dh_, std::min(kMaxBlock, i1 - i), dh_, w.kf));
    return mx;
  }

  // Raw column max of the block's keys (already copied into kf) into w.colmax.
  void block_column_max(const StateView& st, int64_t rows, const Slot& w) const {
    lin::column_reduce<true>(w.kf, rows, m_, st.cmax, w.colmax);
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
    for (int64_t r = 0; r < rows; ++r) lin::exp_shifted(w.kf + r * m_, st.cmax, m_, w.kf + r * m_);
  }

  // Key features of positions [i, i + rows) into w.kf (for column softmax: state moved to the
  // block's max, keys exponentiated).
  // kcache: the sequence's key dots (performer, short sequences), finished in place instead.
  const float* key_block(const StateView& st, int64_t s, int64_t i, int64_t rows, float key_c,
                         const Slot& w, float* kcache = nullptr) const {
    const float* k = in_.k + (s * N_ + i) * dh_;
    if (kcache) {
      map_.finish_k(k, rows, dh_, key_c, kcache + i * m_);
      return kcache + i * m_;
    }
    map_.map_k(k, rows, dh_, key_c, w.kf);
    if (f_.column_softmax) {
      block_column_max(st, rows, w);
      rescale_and_exp(st, rows, w);
    }
    return w.kf;
  }

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
    lin::Product p;
    p.M = m_, p.N = dh_, p.K1 = rows;
    p.A1 = {kf, 1, m_}, p.B1 = v, p.ldb1 = dh_;  // Kf^T: row c of the product is feature c
    p.C = st.s, p.ldc = dh_;
    if (f_.column_softmax) {  // (its slot has no compensation buffers)
      p.mode = lin::Store::add;
      lin::run_product(p);
      lin::column_reduce<false>(kf, rows, m_, st.z, st.z);
      return;
    }
    p.mode = lin::Store::kahan, p.comp = w.s_comp, p.tmp = w.block;
    lin::run_product(p);
    if (f_.denominator) {
      float* zb = w.block + m_ * dh_;  // the block's column sums of Kf
      std::fill(zb, zb + m_, 0.0f);
      lin::column_reduce<false>(kf, rows, m_, zb, zb);
      for (int64_t c = 0; c < m_; ++c) {
        const float y = zb[c] - w.z_comp[c];
        const float t = st.z[c] + y;
        w.z_comp[c] = (t - st.z[c]) - y;
        st.z[c] = t;
      }
    }
  }

  void whole_sequence(int64_t s, const Slot& w, float* out) const {
    // performer: the key max, keeping the dots when they fit the cache
    float* kcache = f_.key_stabilizer && N_ * m_ <= kKeyCacheFloats ? w.kcache : nullptr;
    float key_c = 0.0f;
    if (kcache) {
      for (int64_t i = 0; i < N_; i += kMaxBlock)
        map_.key_max(in_.k + (s * N_ + i) * dh_, std::min(kMaxBlock, N_ - i), dh_, kcache + i * m_);
      key_c = lin::row_max(kcache, N_ * m_);
    } else if (f_.key_stabilizer) {
      key_c = key_max(s, 0, N_, w);
    }
    zero(w.st);
    reset_compensation(w);
    if (p_.causal) {
      causal_range(s, 0, N_, key_c, w, out, kcache);
      return;
    }
    for (int64_t i = 0; i < N_; i += kBidirBlock) {
      const int64_t rows = std::min(kBidirBlock, N_ - i);
      const float* kf = key_block(w.st, s, i, rows, key_c, w, kcache);
      absorb(w.st, kf, in_.v + (s * N_ + i) * dh_, rows, w);
    }
    finalize_bidirectional(w.st);
    read_range(s, 0, N_, w.st, w, out);
  }

  // Output factors of `rows` rows from their denominators (den[r] = fq_r . z): scale / (den +
  // eps), or scale alone; null when every factor is 1.
  const float* factors(float* den, int64_t rows) const {
    if (f_.denominator) {
      for (int64_t r = 0; r < rows; ++r) den[r] = f_.scale / (den[r] + math::kLinearDenominatorEps);
      return den;
    }
    if (f_.scale == 1.0f) return nullptr;
    std::fill(den, den + rows, f_.scale);
    return den;
  }

  // Bidirectional outputs of positions [i0, i1): O = Fq S, each row times its factor.
  void read_range(int64_t s, int64_t i0, int64_t i1, const StateView& st, const Slot& w,
                  float* out) const {
#if defined(__AVX512F__)
    if (small())
      return m_ == 16 ? read_range_small<16>(s, i0, i1, st, w, out)
                      : read_range_small<0>(s, i0, i1, st, w, out);
#endif
    for (int64_t i = i0; i < i1; i += kMaxBlock) {
      const int64_t rows = std::min(kMaxBlock, i1 - i);
      map_.map_q(in_.q + (s * N_ + i) * dh_, rows, dh_, w.qf);
      if (f_.denominator)
        for (int64_t r = 0; r < rows; ++r) w.factor[r] = lin::row_dot(w.qf + r * m_, st.z, m_);
      lin::Product p;
      p.M = rows, p.N = dh_, p.K1 = m_;
      p.A1 = {w.qf, m_, 1}, p.B1 = st.s, p.ldb1 = dh_;
      p.C = out + (s * N_ + i) * dh_, p.ldc = dh_;
      p.row_scale = factors(w.factor, rows);
      lin::run_product(p);
    }
  }

  // Column softmax, causal, a block of raw keys in w.kf and query features in w.qf: moves the
  // state to the block's column max and exponentiates the keys. Returns false when a column
  // jumps by more than kColumnSafeRange inside the block (rare); the block is then done here,
  // row by row with exact online rescaling.
  bool column_block(int64_t rows, const float* v, float* o, const Slot& w) const {
    block_column_max(w.st, rows, w);
    bool safe = true;
    for (int64_t c = 0; c < m_; ++c)
      safe &= math::max_f(w.st.cmax[c], w.kf[c]) >= w.colmax[c] - kColumnSafeRange;
    if (safe) {
      rescale_and_exp(w.st, rows, w);
      return true;
    }
    for (int64_t r = 0; r < rows; ++r) {
      math::column_softmax_update(w.st.s, w.st.z, w.st.cmax, w.kf + r * m_, v + r * dh_,
                                  int(dh_));
      math::column_softmax_readout(w.qf + r * m_, w.st.s, w.st.z, int(dh_), o + r * dh_);
    }
    return false;
  }

  // Small heads (m = dh <= 16, AVX-512): a state row is one vector, so the whole state of a
  // block lives in registers and positions go one at a time: S += fk v^T, then o = fq^T S, no
  // masked intra-block product (which would cost more than the state work at this size).
  // Blocks of kMaxBlock positions: the block's features are formed together, and the block
  // joins the memory state through the compensated product (the registers' running sum is
  // only used within the block, so its rounding does not accumulate along the sequence).
  bool small() const {
#if defined(__AVX512F__)
    return m_ == dh_ && dh_ <= 16;
#else
    return false;
#endif
  }

#if defined(__AVX512F__)
  template <int M>
  void causal_range_small(int64_t s, int64_t i0, int64_t i1, float key_c, const Slot& w,
                          float* out) const {
    const __mmask16 lanes = lin::tail_mask(dh_);
    const int m = M > 0 ? M : int(m_);
    const bool column_softmax = f_.column_softmax, denominator = f_.denominator;
    const float scale = f_.scale;
    float* const ss = w.st.s;
    float* const sz = w.st.z;
    const float* const kf = w.kf;
    const float* const qf = w.qf;
    alignas(64) float ab[16];
    for (int64_t i = i0; i < i1; i += kMaxBlock) {
      const int64_t rows = std::min(kMaxBlock, i1 - i);
      const float* v = in_.v + (s * N_ + i) * dh_;
      float* o = out + (s * N_ + i) * dh_;
      map_.map_k(in_.k + (s * N_ + i) * dh_, rows, dh_, key_c, w.kf);
      map_.map_q(in_.q + (s * N_ + i) * dh_, rows, dh_, w.qf);
      if (column_softmax && !column_block(rows, v, o, w)) continue;
      __m512 S[16];
#pragma GCC unroll 16
      for (int c = 0; c < 16; ++c)
        S[c] = c < m ? _mm512_maskz_loadu_ps(lanes, ss + c * dh_) : _mm512_setzero_ps();
      __m512 z = _mm512_maskz_loadu_ps(lanes, sz);
      for (int64_t r = 0; r < rows; ++r) {
        const __m512 vr = _mm512_maskz_loadu_ps(lanes, v + r * dh_);
        const float* fk = kf + r * m;
#pragma GCC unroll 16
        for (int c = 0; c < 16; ++c)
          if (c < m) S[c] = _mm512_fmadd_ps(_mm512_set1_ps(fk[c]), vr, S[c]);
        z = _mm512_add_ps(z, _mm512_maskz_loadu_ps(lanes, fk));
        const __m512 fq = _mm512_maskz_loadu_ps(lanes, qf + r * m);
        const float* a = qf + r * m;
        if (column_softmax) {  // the query's weights over columns: softmax(q) / z_r
          _mm512_store_ps(ab, _mm512_maskz_div_ps(lanes, fq, z));
          a = ab;
        }
        __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                         _mm512_setzero_ps()};
#pragma GCC unroll 16
        for (int c = 0; c < 16; ++c)
          if (c < m) acc[c % 4] = _mm512_fmadd_ps(_mm512_set1_ps(a[c]), S[c], acc[c % 4]);
        __m512 ov = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
        if (denominator)
          ov = _mm512_mul_ps(ov, _mm512_set1_ps(scale / (_mm512_reduce_add_ps(_mm512_mul_ps(fq, z)) +
                                                         math::kLinearDenominatorEps)));
        else if (scale != 1.0f)
          ov = _mm512_mul_ps(ov, _mm512_set1_ps(scale));
        _mm512_mask_storeu_ps(o + r * dh_, lanes, ov);
      }
      if (column_softmax) {  // no compensation: the registers are the state
#pragma GCC unroll 16
        for (int c = 0; c < 16; ++c)
          if (c < m) _mm512_mask_storeu_ps(ss + c * dh_, lanes, S[c]);
        _mm512_mask_storeu_ps(sz, lanes, z);
      } else {
        absorb(w.st, w.kf, v, rows, w);
      }
    }
  }

  // Bidirectional outputs with the state in registers.
  template <int M>
  void read_range_small(int64_t s, int64_t i0, int64_t i1, const StateView& st, const Slot& w,
                        float* out) const {
    const __mmask16 lanes = lin::tail_mask(dh_);
    const int m = M > 0 ? M : int(m_);
    const bool denominator = f_.denominator;
    const float scale = f_.scale;
    const float* const qf = w.qf;
    __m512 S[16];
#pragma GCC unroll 16
    for (int c = 0; c < 16; ++c)
      S[c] = c < m ? _mm512_maskz_loadu_ps(lanes, st.s + c * dh_) : _mm512_setzero_ps();
    const __m512 z = _mm512_maskz_loadu_ps(lanes, st.z);
    for (int64_t i = i0; i < i1; i += kMaxBlock) {
      const int64_t rows = std::min(kMaxBlock, i1 - i);
      float* o = out + (s * N_ + i) * dh_;
      map_.map_q(in_.q + (s * N_ + i) * dh_, rows, dh_, w.qf);
      for (int64_t r = 0; r < rows; ++r) {
        const float* a = qf + r * m;
        __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                         _mm512_setzero_ps()};
#pragma GCC unroll 16
        for (int c = 0; c < 16; ++c)
          if (c < m) acc[c % 4] = _mm512_fmadd_ps(_mm512_set1_ps(a[c]), S[c], acc[c % 4]);
        __m512 ov = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
        if (denominator)
          ov = _mm512_mul_ps(
              ov, _mm512_set1_ps(scale / (_mm512_reduce_add_ps(_mm512_mul_ps(
                                              _mm512_maskz_loadu_ps(lanes, a), z)) +
                                          math::kLinearDenominatorEps)));
        else if (scale != 1.0f)
          ov = _mm512_mul_ps(ov, _mm512_set1_ps(scale));
        _mm512_mask_storeu_ps(o + r * dh_, lanes, ov);
      }
    }
  }
#endif

  // Causal outputs of positions [i0, i1) from the state in w.st (the state before i0). Per
  // block, with the query features transposed (Fq^T, m x rows): A^T = Fk Fq^T masked to keys
  // at or before the query, the denominators z^T Fq^T + column sums of A^T, then
  // O = Fq S + A V in one product whose row tiles stop at their last key, and the block joins
  // the state.
  void causal_range(int64_t s, int64_t i0, int64_t i1, float key_c, const Slot& w, float* out,
                    float* kcache = nullptr) const {
#if defined(__AVX512F__)
    if (small())  // (never the performer: m != dh there, so no key cache)
      return m_ == 16 ? causal_range_small<16>(s, i0, i1, key_c, w, out)
                      : causal_range_small<0>(s, i0, i1, key_c, w, out);
#endif
    constexpr int64_t ld = kCausalBlock;  // of qt and at
    // Half blocks for states up to 64 x 64: the own part costs ~ C (m + dh) per row, the
    // state's compensated update ~ m dh / C; at m = dh = 64 16 rows ran 2-3 % faster than 32
    // (linrec, linear_elu, efficient_attention; performer's 266 x 64 and dh = 128 did not)
    const int64_t cb = m_ <= 64 && dh_ <= 64 ? kCausalBlock / 2 : kCausalBlock;
    for (int64_t i = i0; i < i1; i += cb) {
      const int64_t rows = std::min(cb, i1 - i);
      const float* q = in_.q + (s * N_ + i) * dh_;
      const float* v = in_.v + (s * N_ + i) * dh_;
      float* o = out + (s * N_ + i) * dh_;
      if (i + 3 * cb <= i1) {  // the inputs two blocks ahead into L2
        const int64_t ahead = 2 * cb * dh_;
        lin::prefetch_l2(q + ahead, cb * dh_);
        lin::prefetch_l2(in_.k + (s * N_ + i) * dh_ + ahead, cb * dh_);
        lin::prefetch_l2(v + ahead, cb * dh_);
      }
      const float* kf = w.kf;
      if (kcache) {
        kf = kcache + i * m_;
        map_.finish_k(in_.k + (s * N_ + i) * dh_, rows, dh_, key_c, kcache + i * m_);
      } else {
        map_.map_k(in_.k + (s * N_ + i) * dh_, rows, dh_, key_c, w.kf);
      }
      map_.map_q(q, rows, dh_, w.qf);
      if (f_.column_softmax) {
        if (!column_block(rows, v, o, w)) continue;
        // query row r reads the state through z_r = z + sum_{j<=r} exp(k_j - cmax)
        std::copy(w.st.z, w.st.z + m_, w.zrun);
        lin::running_normalise(w.kf, rows, m_, w.zrun, w.qf);
      }
      lin::transpose(w.qf, m_, rows, m_, w.qt, ld);
      // A^T = Fk Fq^T by 16 queries at a time, each with the keys up to its last query, then
      // keys after the query masked: row j keeps columns r >= j
      for (int64_t r0 = 0; r0 < rows; r0 += 16) {
        lin::Product a;
        a.M = std::min(rows, r0 + 16), a.N = std::min<int64_t>(16, rows - r0), a.K1 = m_;
        a.A1 = {kf, m_, 1}, a.B1 = w.qt + r0, a.ldb1 = ld;
        a.C = w.at + r0, a.ldc = ld;
        lin::run_product(a);
      }
      for (int64_t j = 1; j < rows; ++j) std::fill(w.at + j * ld, w.at + j * ld + j, 0.0f);
      if (f_.denominator) {  // den_r = fq_r . z + sum_j A[r][j], for all rows at once
        lin::weighted_rows_sum(w.qt, ld, m_, w.st.z, rows, w.factor, false);
        lin::weighted_rows_sum(w.at, ld, rows, nullptr, rows, w.factor, true);
      }
      // O = Fq S + A V, A read through A^T; row tile [r, r + t) needs the keys < r + t
      lin::Product p;
      p.M = rows, p.N = dh_;
      p.K1 = m_, p.A1 = {w.qt, 1, ld}, p.B1 = w.st.s, p.ldb1 = dh_;
      p.K2 = rows, p.A2 = {w.at, 1, ld}, p.B2 = v, p.ldb2 = dh_, p.causal_k2 = true;
      p.C = o, p.ldc = dh_;
      p.row_scale = factors(w.factor, rows);
      lin::run_product(p);
      absorb(w.st, kf, v, rows, w);
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
  static int64_t features(const Problem& p) {
    return random_features::performer_features(p.int_param("features"), p.head_dim);
  }
  // prepared: the projection as the kernel reads it, transposed (dh x m) and times dh^-1/4
  // (so the dots are one product with the raw rows; run reads it at the start), then the
  // generator's m x dh float output and its double work block.
  struct Prepared {
    float* wt;
    float* w;
    double* work;
  };
  static Prepared carve_prepared(Carver& c, const Problem& p) {
    const int64_t m = features(p), dh = p.head_dim;
    Prepared t{};
    t.wt = c.take<float>(dh * m);
    t.w = c.take<float>(m * dh);
    t.work = c.take<double>(int64_t(random_features::performer_projection_work_elems(dh)));
    return t;
  }
  WorkspaceSize workspace(const Problem& p) const override {
    return {layout_bytes([&](Carver& c) { carve_prepared(c, p); }),
            linear_scratch_bytes(p, features(p), /*compensated=*/true, /*key_cache=*/true)};
  }
  void prepare(const Problem& p, const Inputs&, void* prepared, const ExecContext&) const override {
    const int64_t m = features(p), dh = p.head_dim;
    Carver carver(prepared);
    const auto [wt, w, work] = carve_prepared(carver, p);
    random_features::performer_projection(m, dh, p.seed, work, w);
    const float scale = math::performer_input_scale(int(dh));
    for (int64_t l = 0; l < m; ++l)
      for (int64_t c = 0; c < dh; ++c) wt[c * m + l] = scale * w[l * dh + c];
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
    static const KernelInfo i = efficient_attention_info(Backend::cpu);
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
  // Positions per block of the one-batch-element-per-thread path.
  static constexpr int64_t kBlock = 64;
  // Per thread a width-d accumulator and a block's inverse norms of k and q; with column groups
  // (causal only) also the inverse norms of q and k of every position (2 floats per position:
  // linear in N).
  struct Slot {
    float* acc;  // d
    float* rk;   // kBlock
    float* rq;   // kBlock
  };
  static Slot carve_slot(Carver& c, int64_t d) {
    Slot t{};
    t.acc = c.take<float>(d);
    t.rk = c.take<float>(kBlock);
    t.rq = c.take<float>(kBlock);
    return t;
  }
  struct Scratch {
    Slots slots;
    float* rk;  // [batch, N] (column groups only)
    float* rq;
  };
  static Scratch carve_scratch(Carver& c, const Problem& p, bool grouped) {
    const int64_t d = p.heads * p.head_dim;
    Scratch s{};
    s.slots = take_slots(c, cpu::max_threads(), [&](Carver& t) { carve_slot(t, d); });
    if (grouped) {
      s.rk = c.take<float>(p.batch * p.seq_len);
      s.rq = c.take<float>(p.batch * p.seq_len);
    }
    return s;
  }
  WorkspaceSize workspace(const Problem& p) const override {
    const bool grouped = p.causal && column_groups(p, cpu::max_threads()) > 1;
    return {0, layout_bytes([&](Carver& c) { carve_scratch(c, p, grouped); })};
  }

  // Positions [n0, n1) of batch element b, in blocks of kBlock: each block's inverse norms
  // first (squares over the whole width, position by position), then head by head down the
  // block's contiguous rows with the head's part of the accumulator in registers. With k
  // (keys): acc += rk k v; with q (queries): out = rq q acc; causal passes both.
  struct Pass {
    bool keys, queries;
  };
  static void stream(const Problem& p, const Inputs& in, int64_t b, int64_t n0, int64_t n1,
                     Pass pass, float* acc, float* rk, float* rq, float* out) {
    const int64_t H = p.heads, N = p.seq_len, dh = p.head_dim;
    const int64_t head = N * dh;  // floats from one head's rows to the next head's
    auto base = [&](const float* x, int64_t n) { return x + (b * H * N + n) * dh; };
    auto norms = [&](const float* x, int64_t n, int64_t rows, float* r) {
      for (int64_t i = 0; i < rows; ++i)
        r[i] = math::inv_l2_norm_f(lin::sum_squares_strided(base(x, n + i), H, head, dh));
    };
    for (int64_t n = n0; n < n1; n += kBlock) {
      const int64_t rows = std::min(kBlock, n1 - n);
      if (pass.keys) norms(in.k, n, rows, rk);
      if (pass.queries) norms(in.q, n, rows, rq);
      for (int64_t h = 0; h < H; ++h) {
        float* o = pass.queries ? out + (b * H * N + n) * dh + h * head : nullptr;
        lin::hydra_rows(pass.queries ? base(in.q, n) + h * head : nullptr,
                        pass.keys ? base(in.k, n) + h * head : nullptr,
                        pass.keys ? base(in.v, n) + h * head : nullptr, rk, rq, rows, dh,
                        acc + h * dh, o);
      }
    }
  }

  // One batch element on one thread: causal in one pass, bidirectional keys then queries.
  static void stream_batch(const Problem& p, const Inputs& in, int64_t b, float* acc, float* rk,
                           float* rq, float* out) {
    const int64_t N = p.seq_len;
    std::fill(acc, acc + p.heads * p.head_dim, 0.0f);
    if (p.causal) return stream(p, in, b, 0, N, {true, true}, acc, rk, rq, out);
    stream(p, in, b, 0, N, {true, false}, acc, rk, rq, out);
    stream(p, in, b, 0, N, {false, true}, acc, rk, rq, out);
  }

  // Bidirectional, fewer batch elements than threads: each batch element's positions split
  // into `parts` ranges, one per thread. Every thread sums its range's keys into its own
  // accumulator; the first part's thread adds the others' (in part order); then every thread
  // reads its range's queries out against that total. Each input is read once (the column
  // groups of the causal form read q and k twice, once for the norms).
  template <class SlotOf>
  static void split_bidirectional(const Problem& p, const Inputs& in, SlotOf&& slot_of,
                                  float* out) {
    const int64_t d = p.heads * p.head_dim, N = p.seq_len;
    const int t = omp_get_thread_num();
    const int64_t parts = std::max<int64_t>(1, omp_get_num_threads() / p.batch);
    const int64_t b = t / parts, part = t % parts;
    const bool active = b < p.batch;
    const int64_t len = (N + parts - 1) / parts;
    const int64_t n0 = std::min(N, part * len), n1 = std::min(N, n0 + len);
    const Slot w = slot_of(t);
    if (active) {
      std::fill(w.acc, w.acc + d, 0.0f);
      stream(p, in, b, n0, n1, {true, false}, w.acc, w.rk, w.rq, out);
    }
#pragma omp barrier
    if (active && part == 0)
      for (int64_t other = 1; other < parts; ++other) {
        const float* x = slot_of(int(t + other)).acc;
        for (int64_t c = 0; c < d; ++c) w.acc[c] += x[c];
      }
#pragma omp barrier
    if (active)
      stream(p, in, b, n0, n1, {false, true}, slot_of(int(t - part)).acc, w.rk, w.rq, out);
  }

  void run(const Problem& p, const Inputs& in, const void*, void* scratch, float* out,
           const ExecContext& ctx) const override {
    const int nt = cpu::threads_for(ctx);
    const int64_t Bt = p.batch, H = p.heads, N = p.seq_len, dh = p.head_dim, d = H * dh;
    const int64_t G = column_groups(p, nt);
    Carver carver(scratch);
    const Scratch sc = carve_scratch(carver, p, p.causal && G > 1);
    auto slot_of = [&](int t) {
      Carver c(sc.slots.at(t));
      return carve_slot(c, d);
    };
    if (G == 1) {  // one batch element per thread
#pragma omp parallel for num_threads(nt) schedule(dynamic)
      for (int64_t b = 0; b < Bt; ++b) {
        const Slot w = slot_of(omp_get_thread_num());
        stream_batch(p, in, b, w.acc, w.rk, w.rq, out);
      }
      return;
    }
    if (!p.causal) {
#pragma omp parallel num_threads(nt)
      split_bidirectional(p, in, slot_of, out);
      return;
    }

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
    auto stream_columns = [&](float* acc, int64_t b, int64_t c0, int64_t c1, auto&& rk_of,
                              auto&& rq_of) {
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

    // column groups: the norms first (parallel over positions), then each group streams
    float* rk = sc.rk;
    float* rq = sc.rq;
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
          stream_columns(
              slot_of(omp_get_thread_num()).acc, b, c0, c1,
              [&](int64_t n) { return rk[b * N + n]; }, [&](int64_t n) { return rq[b * N + n]; });
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
