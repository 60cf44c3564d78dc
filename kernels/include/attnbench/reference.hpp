// float64 evaluations shared by the kernels' reference_rows, the tests and the harness
// (docs/methods.md section 5). Each evaluates only the requested query rows: a row of vanilla
// attention costs O(N dh), so large N is checked on a sample of rows.
#pragma once

#include <span>
#include <vector>

#include "attnbench/kernel.hpp"

namespace attnbench {

// Exact softmax attention in float64 over q, k, v ([batch, heads, N, dh], float) with the
// given scale (1/sqrt(dh) for vanilla), causal per p.causal. out[r * dh + c].
void vanilla_reference_rows(const Problem& p, const float* q, const float* k, const float* v,
                            double scale, std::span<const RowId> rows, double* out);

// Same, with double inputs (for tests that build their own float64 q, k, v).
void vanilla_reference_rows_f64(const Problem& p, const double* q, const double* k,
                                const double* v, double scale, std::span<const RowId> rows,
                                double* out);

// LISA's projected codebooks in float64: Cq, Ck, Cv, each [heads, B, W, dh]
// (C[b] Wq[b] etc., or C itself without projections).
struct LisaTablesF64 {
  std::vector<double> cq, ck, cv;
};
LisaTablesF64 lisa_tables_f64(const Problem& p, const Inputs& in);

// The vanilla attention LISA approximates (docs/methods.md section 5): q_i = sum_b Cq[b][c_ib]
// etc., float32 [batch, heads, N, dh]. For LISA-Soft the code of a position is its argmax.
struct QKV {
  std::vector<float> q, k, v;
};
QKV lisa_equivalent_qkv(const Problem& p, const Inputs& in, bool soft);

// Every row of every sequence, or `count` rows spread evenly (first and last included) over
// the positions of each of at most `max_seqs` sequences, when that is fewer.
std::vector<RowId> sample_rows(const Problem& p, int64_t count, int64_t max_seqs = 4);

// Relative L2 error ||got - want|| / ||want|| over the chosen rows (got is the full output).
double rel_l2_rows(const Problem& p, const float* got, std::span<const RowId> rows,
                   const double* want);

}  // namespace attnbench
