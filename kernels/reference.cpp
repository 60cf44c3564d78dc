#include "attnbench/reference.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "attnbench/math/lisa.hpp"

namespace attnbench {

namespace {
template <class T>
void vanilla_rows(const Problem& p, const T* q, const T* k, const T* v, double scale,
                  std::span<const RowId> rows, double* out) {
  const int64_t N = p.seq_len, dh = p.head_dim;
  std::vector<double> s(static_cast<size_t>(N));
  for (size_t r = 0; r < rows.size(); ++r) {
    const int64_t base = rows[r].seq * N * dh;
    const int64_t i = rows[r].row;
    const int64_t last = p.causal ? i : N - 1;
    double mx = -std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j <= last; ++j) {
      double acc = 0;
      for (int64_t c = 0; c < dh; ++c)
        acc += double(q[base + i * dh + c]) * double(k[base + j * dh + c]);
      s[j] = acc * scale;
      mx = std::max(mx, s[j]);
    }
    double sum = 0;
    for (int64_t j = 0; j <= last; ++j) sum += (s[j] = std::exp(s[j] - mx));
    double* o = out + r * dh;
    std::fill(o, o + dh, 0.0);
    for (int64_t j = 0; j <= last; ++j) {
      const double w = s[j] / sum;
      for (int64_t c = 0; c < dh; ++c) o[c] += w * double(v[base + j * dh + c]);
    }
  }
}

// out[w, :] = C[w, :] M (dh x dh) in float64, or C itself when M is null.
void project(const float* c, const float* m, int64_t W, int64_t dh, double* out) {
  for (int64_t w = 0; w < W; ++w)
    for (int64_t e = 0; e < dh; ++e) {
      if (!m) {
        out[w * dh + e] = c[w * dh + e];
        continue;
      }
      double acc = 0;
      for (int64_t f = 0; f < dh; ++f) acc += double(c[w * dh + f]) * double(m[f * dh + e]);
      out[w * dh + e] = acc;
    }
}
}  // namespace

void vanilla_reference_rows(const Problem& p, const float* q, const float* k, const float* v,
                            double scale, std::span<const RowId> rows, double* out) {
  vanilla_rows(p, q, k, v, scale, rows, out);
}

void vanilla_reference_rows_f64(const Problem& p, const double* q, const double* k,
                                const double* v, double scale, std::span<const RowId> rows,
                                double* out) {
  vanilla_rows(p, q, k, v, scale, rows, out);
}

LisaTablesF64 lisa_tables_f64(const Problem& p, const Inputs& in) {
  const int64_t H = p.heads, B = p.int_param("codebooks"), W = p.int_param("codewords"), dh = p.head_dim;
  LisaTablesF64 t;
  const size_t n = static_cast<size_t>(H * B * W * dh);
  t.cq.resize(n);
  t.ck.resize(n);
  t.cv.resize(n);
  for (int64_t hb = 0; hb < H * B; ++hb) {
    const float* c = in.codebooks + hb * W * dh;
    const bool proj = p.flag_param("projections");
    project(c, proj ? in.wq + hb * dh * dh : nullptr, W, dh, t.cq.data() + hb * W * dh);
    project(c, proj ? in.wk + hb * dh * dh : nullptr, W, dh, t.ck.data() + hb * W * dh);
    project(c, proj ? in.wv + hb * dh * dh : nullptr, W, dh, t.cv.data() + hb * W * dh);
  }
  return t;
}

QKV lisa_equivalent_qkv(const Problem& p, const Inputs& in, bool soft) {
  const int64_t H = p.heads, B = p.int_param("codebooks"), W = p.int_param("codewords"), dh = p.head_dim, N = p.seq_len;
  const LisaTablesF64 t = lisa_tables_f64(p, in);
  QKV r;
  const size_t n = static_cast<size_t>(p.batch * H * N * dh);
  r.q.assign(n, 0.f);
  r.k.assign(n, 0.f);
  r.v.assign(n, 0.f);
  std::vector<double> acc(static_cast<size_t>(3 * dh));
  for (int64_t s = 0; s < p.batch * H; ++s) {
    const int64_t h = s % H;
    for (int64_t i = 0; i < N; ++i) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t b = 0; b < B; ++b) {
        const int64_t pos = (s * N + i) * B + b;
        const int64_t code =
            soft ? math::argmax_row(in.probs + pos * W, static_cast<int>(W)) : in.codes[pos];
        const int64_t off = ((h * B + b) * W + code) * dh;
        for (int64_t c = 0; c < dh; ++c) {
          acc[c] += t.cq[off + c];
          acc[dh + c] += t.ck[off + c];
          acc[2 * dh + c] += t.cv[off + c];
        }
      }
      for (int64_t c = 0; c < dh; ++c) {
        const size_t o = static_cast<size_t>((s * N + i) * dh + c);
        r.q[o] = float(acc[c]);
        r.k[o] = float(acc[dh + c]);
        r.v[o] = float(acc[2 * dh + c]);
      }
    }
  }
  return r;
}

std::vector<RowId> sample_rows(const Problem& p, int64_t count, int64_t max_seqs) {
  std::vector<RowId> rows;
  const int64_t S = p.batch * p.heads, N = p.seq_len;
  if (S * N <= count) {
    for (int64_t s = 0; s < S; ++s)
      for (int64_t i = 0; i < N; ++i) rows.push_back({s, i});
    return rows;
  }
  const int64_t nseq = std::min(S, std::max<int64_t>(1, max_seqs));
  const int64_t per = std::max<int64_t>(2, (count + nseq - 1) / nseq);
  for (int64_t k = 0; k < nseq; ++k) {
    const int64_t s = nseq == 1 ? 0 : k * (S - 1) / (nseq - 1);
    const int64_t m = std::min(per, N);
    for (int64_t t = 0; t < m; ++t) {
      const int64_t i = m == 1 ? 0 : t * (N - 1) / (m - 1);
      if (!rows.empty() && rows.back().seq == s && rows.back().row == i) continue;
      rows.push_back({s, i});
    }
  }
  return rows;
}

double rel_l2_rows(const Problem& p, const float* got, std::span<const RowId> rows,
                   const double* want) {
  const int64_t dh = p.head_dim;
  double num = 0, den = 0;
  for (size_t r = 0; r < rows.size(); ++r) {
    const float* g = got + (rows[r].seq * p.seq_len + rows[r].row) * dh;
    for (int64_t c = 0; c < dh; ++c) {
      const double d = double(g[c]) - want[r * dh + c];
      num += d * d;
      den += want[r * dh + c] * want[r * dh + c];
    }
  }
  if (!std::isfinite(num)) return std::numeric_limits<double>::infinity();
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

}  // namespace attnbench
