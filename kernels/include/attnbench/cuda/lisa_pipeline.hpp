// LISA's CUDA algorithm (docs/methods.md section 2), written once for the GPU and for a CPU
// emulation: per-item functors (AB_HD, one GPU thread each) and the pipelines that order them
// with the cuBLAS products, over a launcher (workspace.hpp). kernels/cuda/lisa.cu runs them
// with the device launcher; tests/test_cuda_tiling.cpp runs them on the CPU and compares the
// result with the CPU twin (kernels/cpu/lisa.cpp) and float64. The slab plan and index maps are
// in tiling.hpp; the product shapes in gemm.hpp; the table layout, the exp table, the weights
// and the decay are math/lisa.hpp's, the functions the CPU kernel calls.
#pragma once

#include <cmath>
#include <cstdint>

#include "attnbench/cuda/gemm.hpp"
#include "attnbench/cuda/tiling.hpp"
#include "attnbench/cuda/workspace.hpp"
#include "attnbench/kernel.hpp"
#include "attnbench/math/lisa.hpp"

namespace attnbench::gpu {

// What the kernels read of the assignments: hard codes or soft probabilities.
struct LisaAssign {
  const int32_t* codes;  // [S, N, B] (hard) or nullptr
  const float* probs;    // [S, N, B, W] (soft) or nullptr
  int64_t n, heads, B, W;
};
// Assignment of position (s, i), codebook b to codeword w: one-hot entry or probability.
AB_HD float lisa_assignment(const LisaAssign& a, int64_t s, int64_t i, int64_t b, int64_t w) {
  const int64_t pos = (s * a.n + i) * a.B + b;
  if (a.probs) return a.probs[pos * a.W + w];
  return a.codes[pos] == w ? 1.0f : 0.0f;
}
// Query code of position (s, i), codebook b (Soft: the argmax, as the CPU twin).
AB_HD int64_t lisa_query_code(const LisaAssign& a, int64_t s, int64_t i, int64_t b) {
  const int64_t pos = (s * a.n + i) * a.B + b;
  return a.probs ? math::argmax_row(a.probs + pos * a.W, int(a.W)) : a.codes[pos];
}

// ---- functors (one GPU thread per item) ----------------------------------------------------

// prepare: E = exp(T - rowmax T) (math::lisa_exp_table_row), item = table row (head*B + b)*W + c.
struct LisaExpTable {
  const float* t;
  float* e;
  int64_t W;
  AB_HD void operator()(int64_t r) const { math::lisa_exp_table_row(t + r * W, W, e + r * W); }
};

// tot[g, c, bw] = the decayed sum of chunk c's assignments (decay before each add, as the
// CPU's step()).
struct LisaChunkTotals {
  LisaAssign as;
  LisaSlab slab;
  float decay;
  float* tot;
  AB_HD void operator()(int64_t item) const {
    const int64_t bw_all = as.B * as.W;
    const LisaScanItem it = lisa_scan_item(item, slab, bw_all);
    const int64_t s = slab.s0 + it.g, b = it.bw / as.W, w = it.bw % as.W;
    float h = 0.0f;
    for (int64_t i = lisa_chunk_begin(slab, it.c); i < lisa_chunk_end(slab, it.c); ++i) {
      if (decay != 1.0f) h *= decay;
      h += lisa_assignment(as, s, slab.r0 + i, b, w);
    }
    tot[(it.g * slab.chunks + it.c) * bw_all + it.bw] = h;
  }
};

// Exclusive scan over the slab's chunks from the carried histogram: tot[g, c] becomes the
// histogram before chunk c, state[g] the histogram after the slab. Item = (g, bw).
struct LisaChunkScan {
  LisaSlab slab;
  int64_t bw_all;
  double lambda;
  float* tot;
  float* state;
  AB_HD void operator()(int64_t item) const {
    const int64_t g = item / bw_all, bw = item % bw_all;
    float run = state[item];
    for (int64_t c = 0; c < slab.chunks; ++c) {
      float* t = tot + (g * slab.chunks + c) * bw_all + bw;
      const float local = *t;
      *t = run;
      const int64_t len = lisa_chunk_end(slab, c) - lisa_chunk_begin(slab, c);
      run = run * math::lisa_decay_span(lambda, len) + local;
    }
    state[item] = run;
  }
};

// hist[g, i, bw] = the histogram at position r0 + i (inclusive), from the chunk's start.
struct LisaPrefixHist {
  LisaAssign as;
  LisaSlab slab;
  float decay;
  const float* tot;
  float* hist;
  AB_HD void operator()(int64_t item) const {
    const int64_t bw_all = as.B * as.W;
    const LisaScanItem it = lisa_scan_item(item, slab, bw_all);
    const int64_t s = slab.s0 + it.g, b = it.bw / as.W, w = it.bw % as.W;
    float h = tot[(it.g * slab.chunks + it.c) * bw_all + it.bw];
    for (int64_t i = lisa_chunk_begin(slab, it.c); i < lisa_chunk_end(slab, it.c); ++i) {
      if (decay != 1.0f) h *= decay;
      h += lisa_assignment(as, s, slab.r0 + i, b, w);
      hist[(it.g * slab.rows + i) * bw_all + it.bw] = h;
    }
  }
};

// weights[g, i, b, :] = math::lisa_weights of position r0 + i, codebook b.
struct LisaCausalWeights {
  LisaAssign as;
  LisaSlab slab;
  const float* t;
  const float* e;
  const float* hist;
  float* weights;
  AB_HD void operator()(int64_t item) const {
    const int64_t bw_all = as.B * as.W;
    const LisaWeightItem it = lisa_weight_item(item, slab, as.B);
    const int64_t s = slab.s0 + it.g, head = s % as.heads;
    const int64_t code = lisa_query_code(as, s, slab.r0 + it.i, it.b);
    const int64_t row = ((head * as.B + it.b) * as.W + code) * as.W;
    const int64_t at = (it.g * slab.rows + it.i) * bw_all + it.b * as.W;
    math::lisa_weights(e + row, t + row, hist + at, int(as.W), weights + at);
  }
};

// Pointers of the causal output product of sequence g of the slab:
// out[s, r0:r0+rows, :] = weights[g] (rows x BW) * Cv[head(s)] (BW x dh).
struct LisaCausalPointers {
  LisaSlab slab;
  int64_t n, heads, bw, dh;
  const float* cv;
  const float* weights;
  float* out;
  const float** ptr_a;
  const float** ptr_b;
  float** ptr_c;
  AB_HD void operator()(int64_t g) const {
    const int64_t s = slab.s0 + g;
    ptr_a[g] = cv + (s % heads) * bw * dh;
    ptr_b[g] = weights + g * slab.rows * bw;
    ptr_c[g] = out + (s * n + slab.r0) * dh;
  }
};

// Bidirectional: table[g, b, c, :] = math::lisa_weights of query code c against the full
// histogram state[g, b, :]. Item = (g, b, c).
struct LisaTableWeights {
  LisaAssign as;
  LisaSlab slab;
  const float* t;
  const float* e;
  const float* state;
  float* table;
  AB_HD void operator()(int64_t item) const {
    const LisaTableItem it = lisa_table_item(item, as.B, as.W);
    const int64_t head = (slab.s0 + it.g) % as.heads;
    const int64_t row = ((head * as.B + it.b) * as.W + it.c) * as.W;
    math::lisa_weights(e + row, t + row, state + (it.g * as.B + it.b) * as.W, int(as.W),
                       table + ((it.g * as.B + it.b) * as.W + it.c) * as.W);
  }
};

// Pointers of Y[g, b] (W x dh) = table[g, b] (W x W) * Cv[head, b] (W x dh); item = g*B + b.
struct LisaBidirPointers {
  LisaSlab slab;
  int64_t heads, B, W, dh;
  const float* cv;
  const float* table;
  float* y;
  const float** ptr_a;
  const float** ptr_b;
  float** ptr_c;
  AB_HD void operator()(int64_t x) const {
    const int64_t g = x / B, b = x % B, head = (slab.s0 + g) % heads;
    ptr_a[x] = cv + (head * B + b) * W * dh;
    ptr_b[x] = table + x * W * W;
    ptr_c[x] = y + x * W * dh;
  }
};

// out[s, i, col] = sum_b Y[g, b, code(i, b), col], in codebook order (the CPU's gather).
struct LisaGather {
  LisaAssign as;
  LisaSlab slab;
  int64_t dh;
  const float* y;
  float* out;
  AB_HD void operator()(int64_t item) const {
    const LisaGatherItem it = lisa_gather_item(item, slab, dh);
    const int64_t s = slab.s0 + it.g;
    float o = 0.0f;
    for (int64_t b = 0; b < as.B; ++b) {
      const int64_t code = lisa_query_code(as, s, it.i, b);
      o += y[((it.g * as.B + b) * as.W + code) * dh + it.col];
    }
    out[(s * as.n + it.i) * dh + it.col] = o;
  }
};

// ---- workspace ---------------------------------------------------------------------------

// The prepared tables: math::lisa_carve_tables, the CPU twin's layout.
using math::LisaTables;

// Causal scratch: product pointers, carried histograms, chunk totals, prefix histograms and
// weights of one slab: O(slab * BW), independent of N.
struct LisaCausalScratch {
  const float** ptr_a;
  const float** ptr_b;
  float** ptr_c;
  float* state;
  float* tot;
  float* hist;
  float* weights;
};
inline LisaCausalScratch lisa_carve_causal(const LisaCausalPlan& plan, int64_t bw, void* base,
                                           size_t* bytes = nullptr) {
  Carver c(base);
  LisaCausalScratch s{};
  s.ptr_a = c.take<const float*>(plan.group);
  s.ptr_b = c.take<const float*>(plan.group);
  s.ptr_c = c.take<float*>(plan.group);
  s.state = c.take<float>(plan.group * bw);
  s.tot = c.take<float>(plan.group * plan.chunks * bw);
  s.hist = c.take<float>(plan.group * plan.rows * bw);
  s.weights = c.take<float>(plan.group * plan.rows * bw);
  if (bytes) *bytes = c.used();
  return s;
}

// Bidirectional scratch per group: product pointers (per sequence and codebook), histograms,
// chunk totals, the W x W weight tables and Y.
struct LisaBidirScratch {
  const float** ptr_a;
  const float** ptr_b;
  float** ptr_c;
  float* state;
  float* tot;
  float* table;
  float* y;
};
inline LisaBidirScratch lisa_carve_bidir(const LisaBidirPlan& plan, int64_t B, int64_t W,
                                         int64_t dh, void* base, size_t* bytes = nullptr) {
  const int64_t bw = B * W;
  Carver c(base);
  LisaBidirScratch s{};
  s.ptr_a = c.take<const float*>(plan.group * B);
  s.ptr_b = c.take<const float*>(plan.group * B);
  s.ptr_c = c.take<float*>(plan.group * B);
  s.state = c.take<float>(plan.group * bw);
  s.tot = c.take<float>(plan.group * plan.chunks * bw);
  s.table = c.take<float>(plan.group * bw * W);
  s.y = c.take<float>(plan.group * bw * dh);
  if (bytes) *bytes = c.used();
  return s;
}

inline WorkspaceSize lisa_workspace(const Problem& p) {
  const int64_t B = p.int_param("codebooks"), W = p.int_param("codewords");
  WorkspaceSize ws;
  ws.prepared_bytes = layout_bytes([&](Carver& c) { math::lisa_carve_tables(c, p); });
  if (p.causal)
    lisa_carve_causal(lisa_causal_plan(p.sequences(), p.seq_len, B * W), B * W, nullptr,
                      &ws.scratch_bytes);
  else
    lisa_carve_bidir(lisa_bidir_plan(p.sequences(), p.seq_len, B, W, p.head_dim), B, W,
                     p.head_dim, nullptr, &ws.scratch_bytes);
  return ws;
}

// ---- pipelines ------------------------------------------------------------------------------

// prepare: Cq, Ck, Cv = C Wq, C Wk, C Wv (with projections), T = Cq Ck^T / sqrt(dh), E.
template <class L>
void lisa_prepare(L& l, const Problem& p, const Inputs& in, void* prepared) {
  const int64_t HB = p.heads * p.int_param("codebooks"), W = p.int_param("codewords"), dh = p.head_dim;
  Carver carver(prepared);
  const LisaTables t = math::lisa_carve_tables(carver, p);
  const float* cq = in.codebooks;
  const float* ck = in.codebooks;
  if (p.flag_param("projections")) {
    const GemmShape proj = lisa_projection_gemm(HB, W, dh);
    l.gemm_strided("lisa projection q", proj, in.wq, in.codebooks, t.cq);
    l.gemm_strided("lisa projection k", proj, in.wk, in.codebooks, t.ck);
    l.gemm_strided("lisa projection v", proj, in.wv, in.codebooks, t.cv);
    cq = t.cq;
    ck = t.ck;
  }
  const float scale = 1.0f / std::sqrt(float(dh));
  l.gemm_strided("lisa logit table", lisa_logit_gemm(HB, W, dh, scale), ck, cq, t.t);
  l.each("lisa exp table", lisa_table_rows(p.heads, p.int_param("codebooks"), W), LisaExpTable{t.t, t.e, W});
}

template <class L>
void lisa_run_causal(L& l, const Problem& p, const LisaAssign& as, const LisaTables& t,
                     const float* cv, void* scratch, float* out) {
  const int64_t S = p.sequences(), N = p.seq_len, BW = p.int_param("codebooks") * p.int_param("codewords"),
                dh = p.head_dim;
  const LisaCausalPlan plan = lisa_causal_plan(S, N, BW);
  const LisaCausalScratch sc = lisa_carve_causal(plan, BW, scratch);
  const float decay = math::lisa_decay_factor(p.real_param("decay"));
  const int64_t slabs = lisa_causal_slabs(plan, S, N);
  for (int64_t x = 0; x < slabs; ++x) {
    const LisaSlab slab = lisa_causal_slab(plan, S, N, x);
    if (slab.r0 == 0) l.zero(sc.state, slab.groups * BW);  // a group starts from nothing
    l.each("lisa chunk totals", lisa_scan_items(slab, BW), LisaChunkTotals{as, slab, decay, sc.tot});
    l.each("lisa chunk scan", lisa_carry_items(slab, BW),
           LisaChunkScan{slab, BW, p.real_param("decay"), sc.tot, sc.state});
    l.each("lisa prefix histograms", lisa_scan_items(slab, BW),
           LisaPrefixHist{as, slab, decay, sc.tot, sc.hist});
    l.each("lisa weights", lisa_weight_items(slab, as.B),
           LisaCausalWeights{as, slab, t.t, t.e, sc.hist, sc.weights});
    l.each("lisa output pointers", slab.groups,
           LisaCausalPointers{slab, N, p.heads, BW, dh, cv, sc.weights, out, sc.ptr_a, sc.ptr_b,
                              sc.ptr_c});
    l.gemm_batched("lisa output", lisa_causal_out_gemm(slab, BW, dh), sc.ptr_a, sc.ptr_b,
                   sc.ptr_c);
  }
}

template <class L>
void lisa_run_bidirectional(L& l, const Problem& p, const LisaAssign& as, const LisaTables& t,
                            const float* cv, void* scratch, float* out) {
  const int64_t S = p.sequences(), N = p.seq_len, B = p.int_param("codebooks"), W = p.int_param("codewords"),
                BW = B * W, dh = p.head_dim;
  const LisaBidirPlan plan = lisa_bidir_plan(S, N, B, W, dh);
  const LisaBidirScratch sc = lisa_carve_bidir(plan, B, W, dh, scratch);
  const int64_t groups = lisa_bidir_groups(plan, S);
  for (int64_t x = 0; x < groups; ++x) {
    const LisaSlab slab = lisa_bidir_slab(plan, S, N, x);
    l.zero(sc.state, slab.groups * BW);
    l.each("lisa chunk totals", lisa_scan_items(slab, BW), LisaChunkTotals{as, slab, 1.0f, sc.tot});
    l.each("lisa chunk scan", lisa_carry_items(slab, BW),
           LisaChunkScan{slab, BW, 0.0, sc.tot, sc.state});
    l.each("lisa weight tables", lisa_table_items(slab, B, W),
           LisaTableWeights{as, slab, t.t, t.e, sc.state, sc.table});
    l.each("lisa table pointers", slab.groups * B,
           LisaBidirPointers{slab, p.heads, B, W, dh, cv, sc.table, sc.y, sc.ptr_a, sc.ptr_b,
                             sc.ptr_c});
    l.gemm_batched("lisa Y", lisa_bidir_y_gemm(slab, B, W, dh), sc.ptr_a, sc.ptr_b, sc.ptr_c);
    l.each("lisa gather", lisa_gather_items(slab, dh), LisaGather{as, slab, dh, sc.y, out});
  }
}

// run: soft selects the probabilities (LISA-Soft) over the hard codes.
template <class L>
void lisa_run(L& l, const Problem& p, const Inputs& in, bool soft, const void* prepared,
              void* scratch, float* out) {
  Carver carver(const_cast<void*>(prepared));
  const LisaTables t = math::lisa_carve_tables(carver, p);
  const float* cv = p.flag_param("projections") ? t.cv : in.codebooks;
  const LisaAssign as{soft ? nullptr : in.codes, soft ? in.probs : nullptr, p.seq_len, p.heads,
                      p.int_param("codebooks"), p.int_param("codewords")};
  if (p.causal)
    lisa_run_causal(l, p, as, t, cv, scratch, out);
  else
    lisa_run_bidirectional(l, p, as, t, cv, scratch, out);
}

}  // namespace attnbench::gpu
