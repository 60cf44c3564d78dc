// The work of one vanilla_flash thread block (docs/methods.md section 1, "fused (flash)"), written
// once for the GPU and for a CPU emulation of it.
//
// A block is a sequence of phases separated by barriers. Each phase is an AB_HD function of
// the thread index; `flash_block` runs them through an executor:
//   on the device (kernels/cuda/vanilla.cu)  each_thread(f) is f(threadIdx.x, registers) and
//                                            sync() is __syncthreads();
//   in tests/test_cuda_tiling.cpp            each_thread(f) loops f over all kFlashThreads
//                                            threads (forwards and backwards: a phase that
//                                            reads what another thread writes in the same
//                                            phase, a race on the GPU, gives different results)
//                                            and sync() does nothing.
// So the CPU test runs the GPU's exact arithmetic, shared-memory layout and index maps
// (tiling.hpp) against the CPU twin and float64. What it cannot see is a missing barrier that
// the phase structure itself does not express; every phase boundary below is a barrier.
//
// Used by vanilla_flash and, with a band mask, by local_window (docs/methods.md section 4).
// Per key tile: scores s = (scale q) . k over head-dimension chunks (K staged in shared
// memory), masked (causal or band, past N), one thread per query row updates the online softmax of
// math/softmax.hpp (the CPU twin's order: tile max, rescale factor, weights, tile sum), then
// acc = acc * factor + P V over head-dimension chunks (V staged). Finally o = acc / l.
#pragma once

#include <cstdint>

#include "attnbench/cuda/tiling.hpp"
#include "attnbench/math/softmax.hpp"

namespace attnbench::gpu {

struct FlashArgs {
  const float* q;
  const float* k;
  const float* v;
  float* out;
  int64_t sequences, n, dh;
  bool causal;
  int64_t window;  // <= 0: vanilla; > 0: local_window's band (tiling.hpp, flash_visible)
  float scale;
  FlashConfig cfg;
};

// The block's shared memory, carved as flash_config's smem_bytes describes.
struct FlashSmem {
  float* q;       // [bm][ld_q] scaled queries (rows past the tile: 0)
  float* acc;     // [bm][ld_q] output accumulators
  float* kv;      // [bn][ld_kv] staged K or V chunk (keys past N: 0)
  float* s;       // [bm][ld_s] scores, then probabilities
  float* m;       // [bm] running max
  float* l;       // [bm] running sum
  float* factor;  // [bm] this tile's rescale factor
};
AB_HD FlashSmem flash_smem(const FlashConfig& c, float* base) {
  FlashSmem sm{};
  sm.q = base;
  sm.acc = sm.q + c.bm * c.ld_q;
  sm.kv = sm.acc + c.bm * c.ld_q;
  sm.s = sm.kv + c.bn * c.ld_kv;
  sm.m = sm.s + c.bm * c.ld_s;
  sm.l = sm.m + c.bm;
  sm.factor = sm.l + c.bm;
  return sm;
}

// A thread's registers that live across phases: its micro-tile of the score tile.
struct FlashRegs {
  float s[kFlashMicro][kFlashMicro];
};

// ---- phases (thread tid) ----------------------------------------------------------------

AB_HD void flash_stage_queries(const FlashArgs& a, const FlashWork& w, const FlashSmem& sm,
                               int tid) {
  const FlashConfig& c = a.cfg;
  const float* qs = a.q + (w.seq * a.n + w.i0) * a.dh;
  for (int64_t e = tid; e < int64_t(c.bm) * a.dh; e += kFlashThreads) {
    const int64_t r = e / a.dh, col = e % a.dh;
    sm.q[r * c.ld_q + col] = r < w.rows ? qs[r * a.dh + col] * a.scale : 0.0f;
    sm.acc[r * c.ld_q + col] = 0.0f;
  }
  for (int r = tid; r < c.bm; r += kFlashThreads) {
    const math::OnlineSoftmaxRow st = math::online_softmax_init();
    sm.m[r] = st.m;
    sm.l[r] = st.l;
    sm.factor[r] = 1.0f;
  }
}

// Stages rows [j0, j0 + bn) x head columns [d0, d0 + dw) of `src` (one sequence's K or V);
// keys past the tile's `keys` are 0.
AB_HD void flash_stage_chunk(const FlashConfig& c, const float* src, int64_t dh, int64_t j0,
                             int keys, int64_t d0, int dw, float* kv, int tid) {
  for (int e = tid; e < c.bn * dw; e += kFlashThreads) {
    const int j = e / dw, col = e % dw;
    kv[j * c.ld_kv + col] = j < keys ? src[(j0 + j) * dh + d0 + col] : 0.0f;
  }
}

AB_HD void flash_clear_scores(FlashRegs& r) {
  for (int a = 0; a < kFlashMicro; ++a)
    for (int b = 0; b < kFlashMicro; ++b) r.s[a][b] = 0.0f;
}

// s += q[:, d0:d0+dw] . k_chunk over the chunk's columns, in column order.
AB_HD void flash_accumulate_scores(const FlashConfig& c, const FlashSmem& sm, int d0, int dw,
                                   int tid, FlashRegs& regs) {
  for (int col = 0; col < dw; ++col) {
    float qa[kFlashMicro], kb[kFlashMicro];
AB_UNROLL
    for (int a = 0; a < kFlashMicro; ++a) {
      int r, j;
      qa[a] = flash_score_element(c, tid, a, 0, r, j) ? sm.q[r * c.ld_q + d0 + col] : 0.0f;
    }
AB_UNROLL
    for (int b = 0; b < kFlashMicro; ++b) {
      int r, j;
      kb[b] = flash_score_element(c, tid, 0, b, r, j) ? sm.kv[j * c.ld_kv + col] : 0.0f;
    }
AB_UNROLL
    for (int a = 0; a < kFlashMicro; ++a)
AB_UNROLL
      for (int b = 0; b < kFlashMicro; ++b) regs.s[a][b] += qa[a] * kb[b];
  }
}

// The thread's scores into the tile, -inf where masked (causal, band, keys past N, rows past
// the tile's end).
AB_HD void flash_store_scores(const FlashArgs& a, const FlashWork& w, int64_t j0,
                              const FlashSmem& sm, int tid, const FlashRegs& regs) {
  const FlashConfig& c = a.cfg;
AB_UNROLL
  for (int ia = 0; ia < kFlashMicro; ++ia) {
    int r, j;
    if (!flash_score_element(c, tid, ia, 0, r, j)) continue;
    // row r sees the tile's keys [lo, hi) (rows past the tile's end: none)
    const FlashRowKeys keys = r < w.rows ? flash_row_keys(w.i0 + r, a.n, a.causal, a.window)
                                         : FlashRowKeys{0, 0};
    const int64_t lo = keys.lo - j0, hi = keys.hi - j0;
AB_UNROLL
    for (int ib = 0; ib < kFlashMicro; ++ib)
      if (flash_score_element(c, tid, ia, ib, r, j))
        sm.s[r * c.ld_s + j] = j >= lo && j < hi ? regs.s[ia][ib] : math::neg_inf_f();
  }
}

// Thread r < bm: the online-softmax update of query row r for this tile; the row's scores
// become probabilities under the new running max.
AB_HD void flash_softmax_row(const FlashConfig& c, const FlashSmem& sm, int tid) {
  if (tid >= c.bm) return;
  const int r = tid;
  float* srow = sm.s + r * c.ld_s;
  float tile_max = math::neg_inf_f();
  for (int j = 0; j < c.bn; ++j) tile_max = math::max_f(tile_max, srow[j]);
  math::OnlineSoftmaxRow st{sm.m[r], sm.l[r]};
  const float factor = math::online_softmax_rescale(st, tile_max);
  float tile_sum = 0.0f;
  for (int j = 0; j < c.bn; ++j) {
    const float pj = math::online_softmax_weight(st, srow[j]);
    srow[j] = pj;
    tile_sum += pj;
  }
  sm.m[r] = st.m;
  sm.l[r] = st.l + tile_sum;
  sm.factor[r] = factor;
}

// acc[:, c0:c0+dc] = acc * factor + P V_chunk for the accumulator elements the thread owns.
AB_HD void flash_accumulate_pv(const FlashArgs& a, const FlashWork& w, const FlashSmem& sm,
                               int keys, int c0, int tid) {
  const FlashConfig& c = a.cfg;
  const int dh = int(a.dh), rows = int(w.rows);
  float o[kFlashMicro][kFlashMicro];
AB_UNROLL
  for (int ia = 0; ia < kFlashMicro; ++ia)
AB_UNROLL
    for (int ib = 0; ib < kFlashMicro; ++ib) o[ia][ib] = 0.0f;
  for (int j = 0; j < keys; ++j) {
    float pa[kFlashMicro], vb[kFlashMicro];
AB_UNROLL
    for (int ia = 0; ia < kFlashMicro; ++ia) {
      int r, col;
      pa[ia] = flash_out_element(c, c.bm, dh, tid, ia, c0, 0, r, col) ? sm.s[r * c.ld_s + j]
                                                                      : 0.0f;
    }
AB_UNROLL
    for (int ib = 0; ib < kFlashMicro; ++ib) {
      int r, col;
      vb[ib] = flash_out_element(c, c.bm, dh, tid, 0, c0, ib, r, col)
                   ? sm.kv[j * c.ld_kv + (col - c0)]
                   : 0.0f;
    }
AB_UNROLL
    for (int ia = 0; ia < kFlashMicro; ++ia)
AB_UNROLL
      for (int ib = 0; ib < kFlashMicro; ++ib) o[ia][ib] += pa[ia] * vb[ib];
  }
AB_UNROLL
  for (int ia = 0; ia < kFlashMicro; ++ia)
AB_UNROLL
    for (int ib = 0; ib < kFlashMicro; ++ib) {
      int r, col;
      if (flash_out_element(c, rows, dh, tid, ia, c0, ib, r, col))
        sm.acc[r * c.ld_q + col] = sm.acc[r * c.ld_q + col] * sm.factor[r] + o[ia][ib];
    }
}

// o = acc / l for the elements the thread owns.
AB_HD void flash_write_output(const FlashArgs& a, const FlashWork& w, const FlashSmem& sm,
                              int tid) {
  const FlashConfig& c = a.cfg;
  const int dh = int(a.dh), rows = int(w.rows);
  for (int c0 = 0; c0 < dh; c0 += c.dc)
AB_UNROLL
    for (int ia = 0; ia < kFlashMicro; ++ia)
AB_UNROLL
      for (int ib = 0; ib < kFlashMicro; ++ib) {
        int r, col;
        if (flash_out_element(c, rows, dh, tid, ia, c0, ib, r, col)) {
          const math::OnlineSoftmaxRow st{sm.m[r], sm.l[r]};
          a.out[(w.seq * a.n + w.i0 + r) * a.dh + col] =
              sm.acc[r * c.ld_q + col] * math::online_softmax_inv_sum(st);
        }
      }
}

// ---- the block ------------------------------------------------------------------------------

// One (sequence, query tile) work item. Exec provides each_thread(f) with
// f(int tid, FlashRegs& regs) and sync(), a block-wide barrier.
template <class Exec>
AB_HD void flash_block(Exec& ex, const FlashArgs& a, const FlashWork& w, const FlashSmem& sm) {
  const FlashConfig& c = a.cfg;
  const float* ks = a.k + w.seq * a.n * a.dh;
  const float* vs = a.v + w.seq * a.n * a.dh;
  ex.each_thread([&](int tid, FlashRegs&) { flash_stage_queries(a, w, sm, tid); });
  ex.sync();
  const FlashKeyTiles tiles = flash_key_tiles(w, a.n, a.causal, a.window, c);
  for (int64_t kt = tiles.begin; kt < tiles.end; ++kt) {
    const int64_t j0 = kt * c.bn;
    const int keys = int(flash_tile_keys(kt, a.n, c));
    ex.each_thread([&](int, FlashRegs& regs) { flash_clear_scores(regs); });
    for (int d0 = 0; d0 < int(a.dh); d0 += c.dc) {
      const int dw = int(min_i64(c.dc, a.dh - d0));
      ex.each_thread(
          [&](int tid, FlashRegs&) { flash_stage_chunk(c, ks, a.dh, j0, keys, d0, dw, sm.kv, tid); });
      ex.sync();
      ex.each_thread(
          [&](int tid, FlashRegs& regs) { flash_accumulate_scores(c, sm, d0, dw, tid, regs); });
      ex.sync();
    }
    ex.each_thread([&](int tid, FlashRegs& regs) { flash_store_scores(a, w, j0, sm, tid, regs); });
    ex.sync();
    ex.each_thread([&](int tid, FlashRegs&) { flash_softmax_row(c, sm, tid); });
    ex.sync();
    for (int c0 = 0; c0 < int(a.dh); c0 += c.dc) {
      const int dw = int(min_i64(c.dc, a.dh - c0));
      ex.each_thread(
          [&](int tid, FlashRegs&) { flash_stage_chunk(c, vs, a.dh, j0, keys, c0, dw, sm.kv, tid); });
      ex.sync();
      ex.each_thread([&](int tid, FlashRegs&) { flash_accumulate_pv(a, w, sm, keys, c0, tid); });
      ex.sync();
    }
  }
  ex.each_thread([&](int tid, FlashRegs&) { flash_write_output(a, w, sm, tid); });
  ex.sync();  // the block's next work item restages shared memory
}

}  // namespace attnbench::gpu
