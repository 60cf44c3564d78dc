// The linear family's CUDA algorithms (docs/methods.md section 3), written once for the GPU and for
// a CPU emulation, like lisa_pipeline.hpp: per-item functors (AB_HD, one GPU thread each) and
// pipelines over a launcher (workspace.hpp). kernels/cuda/linear.cu runs them on the GPU;
// tests/test_cuda_tiling.cpp runs them on the CPU against the CPU twins (kernels/cpu/linear.cpp).
//   linear_elu, linrec, performer  the chunked parallel prefix of tiling.hpp ("Linear family");
//                                  the feature maps, the Performer features and the output
//                                  factor are math/linear.hpp's, the CPU twins' functions.
//   efficient_attention            the same chunked prefix with every partial state at its own
//                                  column maxima (tiling.hpp, "Efficient attention"); the merge,
//                                  running normaliser and readout are math/linear.hpp's.
//   hydra                          a chunked scan over the width heads * dh; the accumulate and
//                                  readout are math::hydra_accumulate / hydra_readout.
// Every product here is a plain per-thread loop (no cuBLAS): the family's whole cost is
// O(N m dh), small next to vanilla's, and a loop per output element handles the ragged last
// chunk of a slab without padding.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "attnbench/cuda/tiling.hpp"
#include "attnbench/cuda/workspace.hpp"
#include "attnbench/kernel.hpp"
#include "attnbench/math/linear.hpp"
#include "attnbench/random_features.hpp"

namespace attnbench::gpu {

enum class LinearMap : int { elu_plus_one, linrec, performer };

struct LinearSpec {
  LinearMap map;
  int64_t m;          // feature width
  bool denominator;   // divide by fq . z + eps
  float scale;        // output scale
  const float* w;     // performer: the m x dh projection (prepared)
};

// The features of one dh-vector (is_query: Performer's c is the row's own max, else key_c).
AB_HD void linear_feature(const LinearSpec& sp, const float* x, int dh, bool is_query,
                          float key_c, float* out) {
  if (sp.map == LinearMap::elu_plus_one)
    math::elu_plus_one_row(x, dh, out);
  else if (sp.map == LinearMap::linrec)
    math::linrec_feature_row(x, dh, out);
  else
    math::performer_feature(x, dh, sp.w, int(sp.m), is_query, key_c, out);
}

// ---- functors --------------------------------------------------------------------------------

// Performer's key stabiliser, step 1: the largest key dot of each position of the slab (the
// dots go through `tmp`, a row of m floats per position).
struct LinKeyRowMax {
  LinearSpec sp;
  const float* k;
  int64_t n, dh;
  RowSlab slab;
  float* tmp;
  float* rowmax;
  AB_HD void operator()(int64_t item) const {
    const LinRowItem it = linear_row_item(item, slab);
    float* d = tmp + item * sp.m;
    math::performer_dots(k + ((slab.s0 + it.g) * n + slab.r0 + it.i) * dh, int(dh), sp.w,
                         int(sp.m), d);
    rowmax[item] = math::row_max_f(d, int(sp.m));
  }
};
// Step 2, thread per sequence g: key_c[g] = max over the sequence (first slab: assigns).
struct LinKeyMaxFold {
  RowSlab slab;
  bool first;
  const float* rowmax;
  float* key_c;
  AB_HD void operator()(int64_t g) const {
    float mx = first ? math::neg_inf_f() : key_c[g];
    for (int64_t i = 0; i < slab.rows; ++i) mx = math::max_f(mx, rowmax[g * slab.rows + i]);
    key_c[g] = mx;
  }
};

// qf or kf [g, i, m] of the slab's positions.
struct LinFeatures {
  LinearSpec sp;
  const float* x;  // q or k
  int64_t n, dh;
  RowSlab slab;
  bool is_query;
  const float* key_c;  // performer keys, per sequence of the slab
  float* out;
  AB_HD void operator()(int64_t item) const {
    const LinRowItem it = linear_row_item(item, slab);
    linear_feature(sp, x + ((slab.s0 + it.g) * n + slab.r0 + it.i) * dh, int(dh), is_query,
                   key_c ? key_c[it.g] : 0.0f, out + item * sp.m);
  }
};

// states[g, c, x]: chunk c's S = Kf_c^T V_c (x = a * dh + e) and z = column sums of Kf_c
// (x = m * dh + a).
struct LinChunkStates {
  int64_t m;
  const float* v;
  int64_t n, dh;
  RowSlab slab;
  const float* kf;
  float* states;
  AB_HD void operator()(int64_t item) const {
    const int64_t state = linear_state_floats(m, dh);
    const LinStateItem it = linear_state_item(item, slab, state);
    const int64_t j0 = lisa_chunk_begin(slab, it.c), j1 = lisa_chunk_end(slab, it.c);
    const float* kf_g = kf + it.g * slab.rows * m;
    float acc = 0.0f;
    if (it.x < m * dh) {
      const int64_t a = it.x / dh, e = it.x % dh;
      const float* v_g = v + ((slab.s0 + it.g) * n + slab.r0) * dh;
      for (int64_t j = j0; j < j1; ++j) acc += kf_g[j * m + a] * v_g[j * dh + e];
    } else {
      const int64_t a = it.x - m * dh;
      for (int64_t j = j0; j < j1; ++j) acc += kf_g[j * m + a];
    }
    states[item] = acc;
  }
};

// Exclusive scan over the slab's chunks from the carried state: states[g, c] becomes the
// state before chunk c, carry[g] the state after the slab. Item = (g, x).
struct LinChunkScan {
  RowSlab slab;
  int64_t state;
  float* states;
  float* carry;
  AB_HD void operator()(int64_t item) const {
    const int64_t g = item / state, x = item % state;
    float run = carry[item];
    for (int64_t c = 0; c < slab.chunks; ++c) {
      float* t = states + (g * slab.chunks + c) * state + x;
      const float local = *t;
      *t = run;
      run += local;
    }
    carry[item] = run;
  }
};

// Causal scores inside a chunk: A[g, i, jj] = qf_i . kf_{c0+jj} for c0 + jj <= i, else 0.
struct LinChunkScores {
  int64_t m;
  RowSlab slab;
  const float* qf;
  const float* kf;
  float* scores;
  AB_HD void operator()(int64_t item) const {
    const LinScoreItem it = linear_score_item(item, slab);
    const int64_t j = (it.i / slab.chunk) * slab.chunk + it.jj;
    scores[item] = j <= it.i ? math::dot_f(qf + (it.g * slab.rows + it.i) * m,
                                           kf + (it.g * slab.rows + j) * m, int(m))
                             : 0.0f;
  }
};

// Causal output: o_i = factor * (qf_i S_c + sum_{jj <= i - c0} A[i, jj] v_{c0+jj}),
// factor = scale / (sum_jj A[i, jj] + qf_i . z_c + eps) with a denominator (as the CPU
// twin's block form), else scale.
struct LinCausalOutput {
  LinearSpec sp;
  const float* v;
  int64_t n, dh;
  RowSlab slab;
  const float* qf;
  const float* scores;
  const float* states;
  float* out;
  AB_HD void operator()(int64_t item) const {
    const int64_t m = sp.m, state = linear_state_floats(m, dh);
    const LinOutItem it = linear_out_item(item, slab, dh);
    const int64_t c = it.i / slab.chunk, c0 = c * slab.chunk, s = slab.s0 + it.g;
    const float* fq = qf + (it.g * slab.rows + it.i) * m;
    const float* st = states + (it.g * slab.chunks + c) * state;
    const float* arow = scores + (it.g * slab.rows + it.i) * slab.chunk;
    const float* v_c = v + (s * n + slab.r0 + c0) * dh;
    float num = 0.0f;
    for (int64_t jj = 0; jj <= it.i - c0; ++jj) num += arow[jj] * v_c[jj * dh + it.e];
    for (int64_t a = 0; a < m; ++a) num += fq[a] * st[a * dh + it.e];
    float factor = sp.scale;
    if (sp.denominator) {
      float den = 0.0f;
      for (int64_t jj = 0; jj <= it.i - c0; ++jj) den += arow[jj];
      den += math::dot_f(fq, st + m * dh, int(m));
      factor = sp.scale / (den + math::kLinearDenominatorEps);
    }
    out[(s * n + slab.r0 + it.i) * dh + it.e] = num * factor;
  }
};

// Bidirectional output: o_i = qf_i S * math::linear_output_factor (the CPU twin's readout).
struct LinBidirOutput {
  LinearSpec sp;
  int64_t n, dh;
  RowSlab slab;
  const float* qf;
  const float* total;  // [g, state]
  float* out;
  AB_HD void operator()(int64_t item) const {
    const int64_t m = sp.m, state = linear_state_floats(m, dh);
    const LinOutItem it = linear_out_item(item, slab, dh);
    const float* fq = qf + (it.g * slab.rows + it.i) * m;
    const float* st = total + it.g * state;
    float num = 0.0f;
    for (int64_t a = 0; a < m; ++a) num += fq[a] * st[a * dh + it.e];
    const float factor = math::linear_output_factor(fq, sp.denominator ? st + m * dh : nullptr,
                                                    int(m), math::kLinearDenominatorEps, sp.scale);
    out[((slab.s0 + it.g) * n + slab.r0 + it.i) * dh + it.e] = num * factor;
  }
};

// ---- workspace and pipeline ---------------------------------------------------------------

struct LinearScratch {
  float* key_c;   // [group] performer
  float* rowmax;  // [group * rows] performer
  float* qf;      // [group * rows * m]
  float* kf;      // [group * rows * m]
  float* scores;  // [group * rows * chunk] causal
  float* states;  // [group * chunks * state]
  float* carry;   // [group * state]
};
inline LinearScratch linear_carve(const LinearPlan& plan, int64_t m, int64_t dh, bool causal,
                                  bool performer, void* base, size_t* bytes = nullptr) {
  const int64_t G = plan.group, R = plan.rows, state = linear_state_floats(m, dh);
  Carver c(base);
  LinearScratch s{};
  if (performer) {
    s.key_c = c.take<float>(G);
    s.rowmax = c.take<float>(G * R);
  }
  s.qf = c.take<float>(G * R * m);
  s.kf = c.take<float>(G * R * m);
  if (causal) s.scores = c.take<float>(G * R * plan.chunk);
  s.states = c.take<float>(G * plan.chunks * state);
  s.carry = c.take<float>(G * state);
  if (bytes) *bytes = c.used();
  return s;
}

// Performer's prepared state: the m x dh projection, drawn on the host by the CPU twin's seeded
// generator (random_features.hpp) and uploaded; the float64 reference draws the same one.
inline int64_t performer_features(const Problem& p) {
  return ::attnbench::random_features::performer_features(p.int_param("features"), p.head_dim);
}
// The prepared layout: the projection alone (so the kernel reads it at the block's start).
inline float* performer_carve_projection(Carver& c, const Problem& p) {
  return c.take<float>(performer_features(p) * p.head_dim);
}
inline size_t performer_prepared_bytes(const Problem& p) {
  return layout_bytes([&](Carver& c) { performer_carve_projection(c, p); });
}
template <class L>
void performer_prepare(L& l, const Problem& p, void* prepared) {
  const int64_t m = performer_features(p), dh = p.head_dim;
  std::vector<float> w(size_t(m * dh));
  std::vector<double> work(::attnbench::random_features::performer_projection_work_elems(dh));
  ::attnbench::random_features::performer_projection(m, dh, p.seed, work.data(), w.data());
  Carver c(prepared);
  l.upload(performer_carve_projection(c, p), w.data(), w.size() * sizeof(float));
}

// The kernel's form: feature width, denominator, scale (docs/methods.md section 3, the CPU twins'
// LinearForm), and its workspace for a plan.
inline int64_t linear_feature_count(LinearMap map, const Problem& p) {
  return map == LinearMap::performer ? performer_features(p) : p.head_dim;
}
inline LinearSpec linear_spec(LinearMap map, const Problem& p, const float* projection) {
  LinearSpec sp{};
  sp.map = map;
  sp.m = linear_feature_count(map, p);
  sp.denominator = map != LinearMap::linrec;
  sp.scale = map == LinearMap::linrec ? 1.0f / std::sqrt(float(p.head_dim)) : 1.0f;
  sp.w = map == LinearMap::performer ? projection : nullptr;
  return sp;
}
inline LinearPlan linear_default_plan(LinearMap map, const Problem& p) {
  return linear_plan(p.sequences(), p.seq_len, linear_feature_count(map, p), p.head_dim);
}
inline WorkspaceSize linear_workspace(LinearMap map, const Problem& p, const LinearPlan& plan) {
  WorkspaceSize ws;
  linear_carve(plan, linear_feature_count(map, p), p.head_dim, p.causal,
               map == LinearMap::performer, nullptr, &ws.scratch_bytes);
  if (map == LinearMap::performer) ws.prepared_bytes = performer_prepared_bytes(p);
  return ws;
}

// The plan is linear_default_plan in the kernels; tests pass smaller slab budgets.
template <class L>
void linear_run(L& l, const Problem& p, const Inputs& in, const LinearSpec& sp,
                const LinearPlan& plan, void* scratch, float* out) {
  const int64_t S = p.sequences(), N = p.seq_len, dh = p.head_dim, m = sp.m;
  const int64_t state = linear_state_floats(m, dh);
  const bool performer = sp.map == LinearMap::performer;
  const LinearScratch sc = linear_carve(plan, m, dh, p.causal, performer, scratch);
  const int64_t per_group = linear_slabs_per_group(plan, N);
  for (int64_t gi = 0; gi < linear_groups(plan, S); ++gi) {
    if (performer)  // keys: c = the max over every position and feature of the sequence
      for (int64_t x = 0; x < per_group; ++x) {
        const RowSlab slab = linear_slab(plan, S, N, gi, x);
        l.each("performer key dots", linear_row_items(slab),
               LinKeyRowMax{sp, in.k, N, dh, slab, sc.kf, sc.rowmax});
        l.each("performer key max", slab.groups, LinKeyMaxFold{slab, x == 0, sc.rowmax, sc.key_c});
      }
    const float* key_c = performer ? sc.key_c : nullptr;
    const RowSlab first = linear_slab(plan, S, N, gi, 0);
    l.zero(sc.carry, first.groups * state);
    for (int64_t x = 0; x < per_group; ++x) {
      const RowSlab slab = linear_slab(plan, S, N, gi, x);
      l.each("linear key features", linear_row_items(slab),
             LinFeatures{sp, in.k, N, dh, slab, false, key_c, sc.kf});
      l.each("linear chunk states", linear_state_items(slab, state),
             LinChunkStates{m, in.v, N, dh, slab, sc.kf, sc.states});
      l.each("linear chunk scan", linear_carry_items(slab, state),
             LinChunkScan{slab, state, sc.states, sc.carry});
      if (!p.causal) continue;
      l.each("linear query features", linear_row_items(slab),
             LinFeatures{sp, in.q, N, dh, slab, true, nullptr, sc.qf});
      l.each("linear chunk scores", linear_score_items(slab),
             LinChunkScores{m, slab, sc.qf, sc.kf, sc.scores});
      l.each("linear output", linear_out_items(slab, dh),
             LinCausalOutput{sp, in.v, N, dh, slab, sc.qf, sc.scores, sc.states, out});
    }
    if (p.causal) continue;
    for (int64_t x = 0; x < per_group; ++x) {  // bidirectional: every row reads the total
      const RowSlab slab = linear_slab(plan, S, N, gi, x);
      l.each("linear query features", linear_row_items(slab),
             LinFeatures{sp, in.q, N, dh, slab, true, nullptr, sc.qf});
      l.each("linear output", linear_out_items(slab, dh),
             LinBidirOutput{sp, N, dh, slab, sc.qf, sc.carry, out});
    }
  }
}

// ---- efficient attention ------------------------------------------------------------------
// The chunked prefix of tiling.hpp ("Efficient attention"), m = dh. A partial state (a chunk's,
// the state before a chunk, the carry) is S (dh x dh) and z (dh) at its own column maxima,
// merged only by math::column_merge_f; every causal row is read at its exact running max
// (math::column_prefix_normaliser), so nothing underflows that the result needs, whatever the
// spread of a key column (the CPU twin's block form needs a row-by-row fallback for that).

// M [g, c, a] = column a's max over chunk c; e [g, i, a] = exp(k_ia - M) for its positions.
struct EffChunkKeys {
  const float* k;
  int64_t n, dh;
  RowSlab slab;
  float* chunk_max;
  float* ek;
  AB_HD void operator()(int64_t item) const {
    const HydraColItem it = chunk_col_item(item, slab, dh);
    const int64_t j0 = lisa_chunk_begin(slab, it.c), j1 = lisa_chunk_end(slab, it.c);
    const float* kc = k + ((slab.s0 + it.g) * n + slab.r0) * dh + it.col;
    float mx = math::neg_inf_f();
    for (int64_t j = j0; j < j1; ++j) mx = math::max_f(mx, kc[j * dh]);
    chunk_max[item] = mx;
    float* e = ek + it.g * slab.rows * dh + it.col;
    for (int64_t j = j0; j < j1; ++j) e[j * dh] = math::exp_f(kc[j * dh] - mx);
  }
};

// The scans below walk the slab's chunks serially; they load kEffScanBatch chunks' values
// before using any, so a GPU thread has that many loads in flight instead of one.
constexpr int kEffScanBatch = 8;

// Exclusive max scan, item = (g, a): start_max[g, c, a] = the max before chunk c (from the
// carried max), carry_max[g, a] = the max after the slab.
struct EffMaxScan {
  RowSlab slab;
  int64_t dh;
  const float* chunk_max;
  float* start_max;
  float* carry_max;
  AB_HD void operator()(int64_t item) const {
    const int64_t g = item / dh, a = item % dh;
    float run = carry_max[item];
    for (int64_t c0 = 0; c0 < slab.chunks; c0 += kEffScanBatch) {
      const int64_t nb = min_i64(kEffScanBatch, slab.chunks - c0);
      float local[kEffScanBatch] = {};
      AB_UNROLL
      for (int b = 0; b < kEffScanBatch; ++b)
        if (b < nb) local[b] = chunk_max[(g * slab.chunks + c0 + b) * dh + a];
      AB_UNROLL
      for (int b = 0; b < kEffScanBatch; ++b)
        if (b < nb) {
          start_max[(g * slab.chunks + c0 + b) * dh + a] = run;
          run = math::max_f(run, local[b]);
        }
    }
    carry_max[item] = run;
  }
};

// Exclusive scan of the chunk states, item = (g, x): states[g, c] becomes the state before
// chunk c (at start_max[g, c]), carry[g] the state after the slab (at the new carry_max). The
// running state at start_max[c] and chunk c's at chunk_max[c] merge at their larger max, which
// is start_max[c + 1] (EffMaxScan's arithmetic).
struct EffChunkScan {
  RowSlab slab;
  int64_t dh, state;
  const float* chunk_max;
  const float* start_max;
  float* states;
  float* carry;
  AB_HD void operator()(int64_t item) const {
    const int64_t g = item / state, x = item % state;
    const int64_t a = x < dh * dh ? x / dh : x - dh * dh;  // the column of S[a][e] or z[a]
    float run = carry[item];
    for (int64_t c0 = 0; c0 < slab.chunks; c0 += kEffScanBatch) {
      const int64_t nb = min_i64(kEffScanBatch, slab.chunks - c0);
      float local[kEffScanBatch] = {}, m_run[kEffScanBatch] = {}, m_chunk[kEffScanBatch] = {};
      AB_UNROLL
      for (int b = 0; b < kEffScanBatch; ++b)
        if (b < nb) {
          const int64_t gc = g * slab.chunks + c0 + b;
          local[b] = states[gc * state + x];
          m_run[b] = start_max[gc * dh + a];
          m_chunk[b] = chunk_max[gc * dh + a];
        }
      AB_UNROLL
      for (int b = 0; b < kEffScanBatch; ++b)
        if (b < nb) {
          states[(g * slab.chunks + c0 + b) * state + x] = run;
          run = math::column_merge_f(run, m_run[b], local[b], m_chunk[b],
                                     math::max_f(m_run[b], m_chunk[b]));
        }
    }
    carry[item] = run;
  }
};

// Item = (g, i): coef[g, i, :] = softmax(q_i) (the CPU twin's EfficientMap::map_q), divided by
// the total's z when `total` is given (bidirectional).
struct EffQuery {
  const float* q;
  int64_t n, dh;
  RowSlab slab;
  const float* total;  // [g, state] or null
  int64_t state;
  float* coef;
  AB_HD void operator()(int64_t item) const {
    const LinRowItem it = linear_row_item(item, slab);
    float* c = coef + item * dh;
    math::softmax_row_f(q + ((slab.s0 + it.g) * n + slab.r0 + it.i) * dh, int(dh), c);
    if (!total) return;
    const float* z = total + it.g * state + dh * dh;
    for (int64_t a = 0; a < dh; ++a) c[a] /= z[a];
  }
};

// Causal, item = (g, i, a): column a's running max R at row i and the normaliser z there (from
// the state before i's chunk and the chunk's keys up to i); coef <- softmax(q_i)[a] / z (in
// place), start_w = coef * exp(M0 - R), the weight of the chunk's start state S0[a, :].
struct EffRowColumns {
  const float* k;
  int64_t n, dh, state;
  RowSlab slab;
  const float* start_max;
  const float* states;
  float* coef;
  float* rmax;
  float* start_w;
  AB_HD void operator()(int64_t item) const {
    const LinOutItem it = linear_out_item(item, slab, dh);
    const int64_t a = it.e, c0 = (it.i / slab.chunk) * slab.chunk;
    const int64_t gc = it.g * slab.chunks + it.i / slab.chunk;
    const float m0 = start_max[gc * dh + a];
    float r = m0;
    const float z = math::column_prefix_normaliser(
        k + ((slab.s0 + it.g) * n + slab.r0 + c0) * dh + a, dh, it.i - c0 + 1, m0,
        states[gc * state + dh * dh + a], &r);
    const float cf = coef[item] / z;
    coef[item] = cf;
    rmax[item] = r;
    start_w[item] = cf * math::column_rescale_f(m0, r);
  }
};

// Causal scores inside a chunk: A[g, i, jj] = the weight of key c0 + jj in row i's readout
// (math::column_softmax_key_weight at i's running maxima) for c0 + jj <= i, else 0.
struct EffChunkScores {
  const float* k;
  int64_t n, dh;
  RowSlab slab;
  const float* coef;
  const float* rmax;
  float* scores;
  AB_HD void operator()(int64_t item) const {
    const LinScoreItem it = linear_score_item(item, slab);
    const int64_t j = (it.i / slab.chunk) * slab.chunk + it.jj;
    const int64_t row = it.g * slab.rows + it.i;
    scores[item] = j <= it.i ? math::column_softmax_key_weight(
                                   coef + row * dh, k + ((slab.s0 + it.g) * n + slab.r0 + j) * dh,
                                   rmax + row * dh, int(dh))
                             : 0.0f;
  }
};

// Causal output, item = (g, i, e): o_i = sum_{jj <= i - c0} A[i, jj] v_{c0+jj}
// + sum_a start_w[i, a] S0[a, e], S0 the state before i's chunk.
struct EffCausalOutput {
  const float* v;
  int64_t n, dh, state;
  RowSlab slab;
  const float* scores;
  const float* start_w;
  const float* states;
  float* out;
  AB_HD void operator()(int64_t item) const {
    const LinOutItem it = linear_out_item(item, slab, dh);
    const int64_t c = it.i / slab.chunk, c0 = c * slab.chunk, s = slab.s0 + it.g;
    const int64_t row = it.g * slab.rows + it.i;
    const float* arow = scores + row * slab.chunk;
    const float* v_c = v + (s * n + slab.r0 + c0) * dh;
    float o = 0.0f;
    for (int64_t jj = 0; jj <= it.i - c0; ++jj) o += arow[jj] * v_c[jj * dh + it.e];
    o += math::column_softmax_readout_at(start_w + row * dh,
                                         states + (it.g * slab.chunks + c) * state, int(dh),
                                         int(it.e));
    out[(s * n + slab.r0 + it.i) * dh + it.e] = o;
  }
};

// Bidirectional output, item = (g, i, e): o_i = sum_a coef[i, a] S[a, e] (coef = softmax / z).
struct EffBidirOutput {
  int64_t n, dh, state;
  RowSlab slab;
  const float* coef;
  const float* total;  // [g, state]
  float* out;
  AB_HD void operator()(int64_t item) const {
    const LinOutItem it = linear_out_item(item, slab, dh);
    out[((slab.s0 + it.g) * n + slab.r0 + it.i) * dh + it.e] = math::column_softmax_readout_at(
        coef + (it.g * slab.rows + it.i) * dh, total + it.g * state, int(dh), int(it.e));
  }
};

// count floats set to -inf (the carried maxima of a new sequence group: an empty state).
struct EffNegInf {
  float* p;
  AB_HD void operator()(int64_t item) const { p[item] = math::neg_inf_f(); }
};

struct EfficientScratch {
  float* coef;       // [group * rows * dh] softmax(q), then coef
  float* ek;         // [group * rows * dh]
  float* rmax;       // [group * rows * dh] causal
  float* start_w;    // [group * rows * dh] causal
  float* scores;     // [group * rows * chunk] causal
  float* states;     // [group * chunks * state]
  float* chunk_max;  // [group * chunks * dh]
  float* start_max;  // [group * chunks * dh]
  float* carry;      // [group * state]
  float* carry_max;  // [group * dh]
};
inline EfficientScratch efficient_carve(const LinearPlan& plan, int64_t dh, bool causal,
                                        void* base, size_t* bytes = nullptr) {
  const int64_t G = plan.group, R = plan.rows, C = plan.chunks;
  const int64_t state = linear_state_floats(dh, dh);
  Carver c(base);
  EfficientScratch s{};
  s.coef = c.take<float>(G * R * dh);
  s.ek = c.take<float>(G * R * dh);
  if (causal) {
    s.rmax = c.take<float>(G * R * dh);
    s.start_w = c.take<float>(G * R * dh);
    s.scores = c.take<float>(G * R * plan.chunk);
  }
  s.states = c.take<float>(G * C * state);
  s.chunk_max = c.take<float>(G * C * dh);
  s.start_max = c.take<float>(G * C * dh);
  s.carry = c.take<float>(G * state);
  s.carry_max = c.take<float>(G * dh);
  if (bytes) *bytes = c.used();
  return s;
}

inline LinearPlan efficient_default_plan(const Problem& p) {
  return efficient_plan(p.sequences(), p.seq_len, p.head_dim);
}
// The plan is efficient_default_plan in the kernel; tests pass smaller slab budgets.
inline WorkspaceSize efficient_workspace(const Problem& p, const LinearPlan& plan) {
  WorkspaceSize ws;
  efficient_carve(plan, p.head_dim, p.causal, nullptr, &ws.scratch_bytes);
  return ws;
}

template <class L>
void efficient_run(L& l, const Problem& p, const Inputs& in, const LinearPlan& plan,
                   void* scratch, float* out) {
  const int64_t S = p.sequences(), N = p.seq_len, dh = p.head_dim;
  const int64_t state = linear_state_floats(dh, dh);
  const EfficientScratch sc = efficient_carve(plan, dh, p.causal, scratch);
  const int64_t per_group = linear_slabs_per_group(plan, N);
  for (int64_t gi = 0; gi < linear_groups(plan, S); ++gi) {
    const RowSlab first = linear_slab(plan, S, N, gi, 0);
    l.zero(sc.carry, first.groups * state);
    l.each("efficient max reset", first.groups * dh, EffNegInf{sc.carry_max});
    for (int64_t x = 0; x < per_group; ++x) {
      const RowSlab slab = linear_slab(plan, S, N, gi, x);
      l.each("efficient chunk keys", chunk_col_items(slab, dh),
             EffChunkKeys{in.k, N, dh, slab, sc.chunk_max, sc.ek});
      l.each("efficient chunk states", linear_state_items(slab, state),
             LinChunkStates{dh, in.v, N, dh, slab, sc.ek, sc.states});
      l.each("efficient max scan", linear_carry_items(slab, dh),
             EffMaxScan{slab, dh, sc.chunk_max, sc.start_max, sc.carry_max});
      l.each("efficient chunk scan", linear_carry_items(slab, state),
             EffChunkScan{slab, dh, state, sc.chunk_max, sc.start_max, sc.states, sc.carry});
      if (!p.causal) continue;
      l.each("efficient query softmax", linear_row_items(slab),
             EffQuery{in.q, N, dh, slab, nullptr, state, sc.coef});
      l.each("efficient row columns", linear_out_items(slab, dh),
             EffRowColumns{in.k, N, dh, state, slab, sc.start_max, sc.states, sc.coef, sc.rmax,
                           sc.start_w});
      l.each("efficient chunk scores", linear_score_items(slab),
             EffChunkScores{in.k, N, dh, slab, sc.coef, sc.rmax, sc.scores});
      l.each("efficient output", linear_out_items(slab, dh),
             EffCausalOutput{in.v, N, dh, state, slab, sc.scores, sc.start_w, sc.states, out});
    }
    if (p.causal) continue;
    for (int64_t x = 0; x < per_group; ++x) {  // bidirectional: every row reads the total
      const RowSlab slab = linear_slab(plan, S, N, gi, x);
      l.each("efficient query", linear_row_items(slab),
             EffQuery{in.q, N, dh, slab, sc.carry, state, sc.coef});
      l.each("efficient output", linear_out_items(slab, dh),
             EffBidirOutput{N, dh, state, slab, sc.coef, sc.carry, out});
    }
  }
}

// ---- hydra ------------------------------------------------------------------------------------

struct HydraView {
  const float* q;
  const float* k;
  const float* v;
  float* out;
  int64_t heads, n, dh;
  AB_HD int64_t at(int64_t b, int64_t col, int64_t pos) const {
    return hydra_index(b, col, pos, heads, n, dh);
  }
};

// rk, rq [g, i]: inverse norms of k and q over the full width (the CPU twin's sum over heads).
struct HydraNorms {
  HydraView hv;
  RowSlab slab;
  float* rk;
  float* rq;
  AB_HD void operator()(int64_t item) const {
    const LinRowItem it = linear_row_item(item, slab);
    const int64_t b = slab.s0 + it.g, pos = slab.r0 + it.i;
    float ssk = 0.0f, ssq = 0.0f;
    for (int64_t hh = 0; hh < hv.heads; ++hh) {
      const int64_t at = hv.at(b, hh * hv.dh, pos);
      ssk += math::sum_squares_f(hv.k + at, int(hv.dh));
      ssq += math::sum_squares_f(hv.q + at, int(hv.dh));
    }
    rk[item] = math::inv_l2_norm_f(ssk);
    rq[item] = math::inv_l2_norm_f(ssq);
  }
};

// tot[g, c, col] = sum over chunk c of rk k v (column col).
struct HydraChunkTotals {
  HydraView hv;
  RowSlab slab;
  const float* rk;
  float* tot;
  AB_HD void operator()(int64_t item) const {
    const int64_t d = hv.heads * hv.dh;
    const HydraColItem it = hydra_col_item(item, slab, d);
    const int64_t b = slab.s0 + it.g;
    float acc = 0.0f;
    for (int64_t i = lisa_chunk_begin(slab, it.c); i < lisa_chunk_end(slab, it.c); ++i) {
      const int64_t at = hv.at(b, it.col, slab.r0 + i);
      math::hydra_accumulate(&acc, hv.k + at, hv.v + at, rk[it.g * slab.rows + i], 1);
    }
    tot[item] = acc;
  }
};

// Exclusive scan over the slab's chunks from the carried accumulator; item = (g, col).
struct HydraScan {
  RowSlab slab;
  int64_t d;
  float* tot;
  float* carry;
  AB_HD void operator()(int64_t item) const {
    const int64_t g = item / d, col = item % d;
    float run = carry[item];
    for (int64_t c = 0; c < slab.chunks; ++c) {
      float* t = tot + (g * slab.chunks + c) * d + col;
      const float local = *t;
      *t = run;
      run += local;
    }
    carry[item] = run;
  }
};

// Causal: chunk c walks its positions from its starting accumulator; out = rq q acc.
struct HydraCausalOut {
  HydraView hv;
  RowSlab slab;
  const float* rk;
  const float* rq;
  const float* starts;
  AB_HD void operator()(int64_t item) const {
    const int64_t d = hv.heads * hv.dh;
    const HydraColItem it = hydra_col_item(item, slab, d);
    const int64_t b = slab.s0 + it.g;
    float acc = starts[item];
    for (int64_t i = lisa_chunk_begin(slab, it.c); i < lisa_chunk_end(slab, it.c); ++i) {
      const int64_t at = hv.at(b, it.col, slab.r0 + i);
      math::hydra_accumulate(&acc, hv.k + at, hv.v + at, rk[it.g * slab.rows + i], 1);
      math::hydra_readout(hv.q + at, &acc, rq[it.g * slab.rows + i], 1, hv.out + at);
    }
  }
};

// Bidirectional: out = rq q total, item = (g, i, col).
struct HydraBidirOut {
  HydraView hv;
  RowSlab slab;
  const float* rq;
  const float* total;
  AB_HD void operator()(int64_t item) const {
    const int64_t d = hv.heads * hv.dh;
    const LinOutItem it = linear_out_item(item, slab, d);
    const int64_t at = hv.at(slab.s0 + it.g, it.e, slab.r0 + it.i);
    math::hydra_readout(hv.q + at, total + it.g * d + it.e, rq[it.g * slab.rows + it.i], 1,
                        hv.out + at);
  }
};

inline LinearPlan hydra_default_plan(const Problem& p) {
  return hydra_plan(p.batch, p.seq_len, p.heads * p.head_dim);
}

struct HydraScratch {
  float* rk;     // [group * rows]
  float* rq;     // [group * rows]
  float* tot;    // [group * chunks * d]
  float* carry;  // [group * d]
};
inline HydraScratch hydra_carve(const LinearPlan& plan, int64_t d, void* base,
                                size_t* bytes = nullptr) {
  Carver c(base);
  HydraScratch s{};
  s.rk = c.take<float>(plan.group * plan.rows);
  s.rq = c.take<float>(plan.group * plan.rows);
  s.tot = c.take<float>(plan.group * plan.chunks * d);
  s.carry = c.take<float>(plan.group * d);
  if (bytes) *bytes = c.used();
  return s;
}

// The plan is hydra_plan(batch, N, heads * dh) in the kernel; tests pass smaller budgets.
inline WorkspaceSize hydra_workspace(const Problem& p, const LinearPlan& plan) {
  WorkspaceSize ws;
  hydra_carve(plan, p.heads * p.head_dim, nullptr, &ws.scratch_bytes);
  return ws;
}

template <class L>
void hydra_run(L& l, const Problem& p, const Inputs& in, const LinearPlan& plan, void* scratch,
               float* out) {
  const int64_t Bt = p.batch, N = p.seq_len, d = p.heads * p.head_dim;
  const HydraScratch sc = hydra_carve(plan, d, scratch);
  const HydraView hv{in.q, in.k, in.v, out, p.heads, N, p.head_dim};
  const int64_t per_group = linear_slabs_per_group(plan, N);
  for (int64_t gi = 0; gi < linear_groups(plan, Bt); ++gi) {
    l.zero(sc.carry, linear_slab(plan, Bt, N, gi, 0).groups * d);
    for (int64_t x = 0; x < per_group; ++x) {
      const RowSlab slab = linear_slab(plan, Bt, N, gi, x);
      l.each("hydra norms", linear_row_items(slab), HydraNorms{hv, slab, sc.rk, sc.rq});
      l.each("hydra chunk totals", hydra_col_items(slab, d), HydraChunkTotals{hv, slab, sc.rk, sc.tot});
      l.each("hydra chunk scan", slab.groups * d, HydraScan{slab, d, sc.tot, sc.carry});
      if (p.causal)
        l.each("hydra output", hydra_col_items(slab, d),
               HydraCausalOut{hv, slab, sc.rk, sc.rq, sc.tot});
    }
    if (p.causal) continue;
    for (int64_t x = 0; x < per_group; ++x) {
      const RowSlab slab = linear_slab(plan, Bt, N, gi, x);
      l.each("hydra norms", linear_row_items(slab), HydraNorms{hv, slab, sc.rk, sc.rq});
      l.each("hydra output", hydra_out_items(slab, d), HydraBidirOut{hv, slab, sc.rq, sc.carry});
    }
  }
}

}  // namespace attnbench::gpu
