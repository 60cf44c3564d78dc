// The cuBLAS matrix products of the CUDA kernels, as plain data. cuBLAS is column-major; the
// suite's tensors are row-major, and a row-major X (r x c) is the column-major X^T. So a
// row-major C = A B is computed as the column-major C^T = B^T A^T: cuBLAS's "A" operand is the
// row-major right factor. Getting that right once, here, and proving it on the CPU
// (tests/test_cuda_tiling.cpp runs a column-major GEMM emulator with exactly these shapes) is
// the point of this header: the .cu files pass these shapes to cuBLAS unchanged.
//
// Precisions (docs/methods.md section 5): a product's operands are stored as `a`, `b` and `c`
// (element.hpp) and always accumulated in float32 (cuBLAS compute type 32F). With `tf32` the
// float32 operands are rounded to TF32 by the tensor cores (CUBLAS_COMPUTE_32F_FAST_TF32).
// gemm_operand and gemm_store state that arithmetic once; the CPU emulation evaluates them.
#pragma once

#include <cstdint>

#include "attnbench/cuda/element.hpp"
#include "attnbench/cuda/tiling.hpp"

namespace attnbench::gpu {

// Column-major C[i + j*ldc] = alpha * sum_l op(A)[i, l] op(B)[l, j] + beta * C, i < m, j < n,
// op(X) = X or X^T; batch item t uses A + t*stride_a etc. (strided) or pointer arrays.
struct GemmShape {
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
  int64_t batch = 1;
  float alpha = 1.0f, beta = 0.0f;
  Elem a = Elem::f32, b = Elem::f32, c = Elem::f32;  // operand storage
  bool tf32 = false;                                  // float32 operands rounded to TF32
  bool plain_fp32() const { return a == Elem::f32 && b == Elem::f32 && c == Elem::f32 && !tf32; }
};

// `g` at precision p: A and B in p's storage, C as `c`; TF32 products for tf32.
inline GemmShape typed_gemm(GemmShape g, Precision p, Elem c) {
  g.a = g.b = storage_elem(p);
  g.c = c;
  g.tf32 = p == Precision::tf32;
  return g;
}

// Element `i` of an operand stored as `e`, as the product's multiplier sees it.
AB_HD float gemm_operand(const GemmShape& g, Elem e, const void* base, int64_t i) {
  const float x = load_elem(e, base, i);
  return g.tf32 ? math::round_to_tf32(x) : x;
}

// C[i] = alpha * acc rounded to C's storage. Typed products (not plain_fp32) have beta = 0:
// C is only written.
AB_HD void gemm_store(const GemmShape& g, void* c, int64_t i, float acc) {
  store_elem(g.c, c, i, g.alpha * acc);
}

// Row-major S[s] (N x N) = scale * Q[s] (N x dh) K[s]^T: column-major S^T = K Q^T, so
// cuBLAS A = K (dh x N column-major, transposed), B = Q (dh x N column-major).
inline GemmShape vanilla_scores_gemm(int64_t sequences, int64_t n, int64_t dh, float scale) {
  GemmShape g;
  g.trans_a = true;
  g.m = n;
  g.n = n;
  g.k = dh;
  g.lda = dh;
  g.ldb = dh;
  g.ldc = n;
  g.stride_a = g.stride_b = n * dh;
  g.stride_c = n * n;
  g.batch = sequences;
  g.alpha = scale;
  return g;
}

// Row-major O[s] (N x dh) = P[s] (N x N) V[s] (N x dh): column-major O^T = V^T P^T, so
// cuBLAS A = V, B = P.
inline GemmShape vanilla_pv_gemm(int64_t sequences, int64_t n, int64_t dh) {
  GemmShape g;
  g.m = dh;
  g.n = n;
  g.k = n;
  g.lda = dh;
  g.ldb = n;
  g.ldc = dh;
  g.stride_a = g.stride_c = n * dh;
  g.stride_b = n * n;
  g.batch = sequences;
  return g;
}

// LISA projections, per (head, codebook): row-major Cx (W x dh) = C (W x dh) Wx (dh x dh):
// cuBLAS A = Wx, B = C.
inline GemmShape lisa_projection_gemm(int64_t head_codebooks, int64_t W, int64_t dh) {
  GemmShape g;
  g.m = dh;
  g.n = W;
  g.k = dh;
  g.lda = dh;
  g.ldb = dh;
  g.ldc = dh;
  g.stride_a = dh * dh;
  g.stride_b = g.stride_c = W * dh;
  g.batch = head_codebooks;
  return g;
}

// LISA logit table, per (head, codebook): row-major T (W x W) = scale Cq Ck^T, the same form
// as the vanilla scores: cuBLAS A = Ck (transposed), B = Cq.
inline GemmShape lisa_logit_gemm(int64_t head_codebooks, int64_t W, int64_t dh, float scale) {
  return vanilla_scores_gemm(head_codebooks, W, dh, scale);
}

// LISA causal output of a slab, per sequence g of the slab (pointer arrays):
// row-major out (rows x dh) = weights (rows x BW) Cv (BW x dh): cuBLAS A = Cv, B = weights.
inline GemmShape lisa_causal_out_gemm(const LisaSlab& slab, int64_t bw, int64_t dh) {
  GemmShape g;
  g.m = dh;
  g.n = slab.rows;
  g.k = bw;
  g.lda = dh;
  g.ldb = bw;
  g.ldc = dh;
  g.batch = slab.groups;
  return g;
}

// LISA bidirectional Y, per (sequence g, codebook b) of a group (pointer arrays):
// row-major Y (W x dh) = table (W x W) Cv[b] (W x dh): cuBLAS A = Cv[b], B = table.
inline GemmShape lisa_bidir_y_gemm(const LisaSlab& slab, int64_t B, int64_t W, int64_t dh) {
  GemmShape g;
  g.m = dh;
  g.n = W;
  g.k = W;
  g.lda = dh;
  g.ldb = W;
  g.ldc = dh;
  g.batch = slab.groups * B;
  return g;
}

}  // namespace attnbench::gpu
