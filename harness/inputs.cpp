#include "inputs.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

namespace attnbench {

namespace {
constexpr uint32_t kPoisonBits = 0x7fa5a5a5u;  // a quiet NaN with a fixed payload

enum Stream : uint64_t { kQ = 1, kK, kV, kCodebooks, kWq, kWk, kWv, kProbs, kConv, kItems, kCodes };

void fill_normal(std::vector<float>& v, size_t n, uint64_t seed, uint64_t stream, double scale) {
  v.resize(n);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < int64_t(n); ++i)
    v[size_t(i)] = float(scale * counter_normal(seed, stream, uint64_t(i)));
}
void fill_codes(HostInputs& h, const Problem& p, uint64_t seed) {
  const int64_t B = p.int_param("codebooks"), W = p.int_param("codewords");
  const int64_t positions = p.batch * p.heads * p.seq_len;
  {
    // Zipf popularity over a catalogue: item r (0-based rank) has weight 1 / (r+1)^s. Each
    // item's code is fixed (uniform in [0, W) per codebook), so popular items repeat codes.
    std::vector<double> cdf(static_cast<size_t>(kCatalogueItems), 0.0);
    double acc = 0;
    for (int64_t r = 0; r < kCatalogueItems; ++r)
      cdf[size_t(r)] = (acc += 1.0 / std::pow(double(r + 1), kZipfExponent));
    for (auto& c : cdf) c /= acc;
    h.codes.resize(size_t(positions * B));
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < positions; ++i) {
      const double u = counter_uniform(seed, kItems, uint64_t(i));
      const auto item = int64_t(std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
      for (int64_t b = 0; b < B; ++b) {
        const double cu = counter_uniform(seed, kCodes, uint64_t(item * B + b));
        h.codes[size_t(i * B + b)] = int32_t(std::min<int64_t>(W - 1, int64_t(cu * double(W))));
      }
    }
  }
}

void fill_probs(HostInputs& h, const Problem& p, uint64_t seed) {
  const int64_t B = p.int_param("codebooks"), W = p.int_param("codewords");
  const int64_t positions = p.batch * p.heads * p.seq_len;
  {
    // soft assignments: softmax of random logits with a temperature that makes them peaked
    h.probs.resize(size_t(positions * B * W));
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < positions * B; ++r) {
      float* row = h.probs.data() + r * W;
      double mx = -1e300, sum = 0;
      for (int64_t w = 0; w < W; ++w) {
        row[w] = float(2.0 * counter_normal(seed, kProbs, uint64_t(r * W + w)));
        mx = std::max(mx, double(row[w]));
      }
      for (int64_t w = 0; w < W; ++w) sum += (row[w] = float(std::exp(double(row[w]) - mx)));
      for (int64_t w = 0; w < W; ++w) row[w] = float(double(row[w]) / sum);
    }
  }
}


}  // namespace

Inputs HostInputs::view() const {
  Inputs in;
  auto ptr = [](const std::vector<float>& x) { return x.empty() ? nullptr : x.data(); };
  in.q = ptr(q);
  in.k = ptr(k);
  in.v = ptr(v);
  in.codes = codes.empty() ? nullptr : codes.data();
  in.codebooks = ptr(codebooks);
  in.wq = ptr(wq);
  in.wk = ptr(wk);
  in.wv = ptr(wv);
  in.probs = ptr(probs);
  in.conv = ptr(conv);
  return in;
}

size_t HostInputs::bytes() const {
  return (q.size() + k.size() + v.size() + codebooks.size() + wq.size() + wk.size() +
          wv.size() + probs.size() + conv.size()) *
             sizeof(float) +
         codes.size() * sizeof(int32_t);
}

HostInputs make_inputs(const Problem& p, unsigned flags, uint64_t seed) {
  HostInputs h;
  const InputSizes sz = input_sizes(p, flags);
  const double dh = double(p.head_dim);
  fill_normal(h.q, sz.q, seed, kQ, 1.0);
  fill_normal(h.k, sz.k, seed, kK, 1.0);
  fill_normal(h.v, sz.v, seed, kV, 1.0);
  fill_normal(h.codebooks, sz.codebooks, seed, kCodebooks, 1.0);
  // projections scaled by 1/sqrt(dh) keep the projected codewords at unit scale
  fill_normal(h.wq, sz.wq, seed, kWq, 1.0 / std::sqrt(dh));
  fill_normal(h.wk, sz.wk, seed, kWk, 1.0 / std::sqrt(dh));
  fill_normal(h.wv, sz.wv, seed, kWv, 1.0 / std::sqrt(dh));
  if (sz.conv)
    fill_normal(h.conv, sz.conv, seed, kConv, 1.0 / std::sqrt(double(p.int_param("conv_width"))));
  round_to_precision(h, p.precision);
  if (sz.codes) fill_codes(h, p, seed);
  if (sz.probs) fill_probs(h, p, seed);
  return h;
}

void round_to_precision(HostInputs& h, Precision precision) {
  if (precision == Precision::fp32) return;
  for (std::vector<float>* t : {&h.q, &h.k, &h.v, &h.codebooks, &h.wq, &h.wk, &h.wv, &h.conv})
    for (float& x : *t) x = round_to(precision, x);
}


void poison(float* out, size_t n) {
  float x;
  std::memcpy(&x, &kPoisonBits, sizeof x);
  std::fill(out, out + n, x);
}

bool is_poison(float x) {
  uint32_t b;
  std::memcpy(&b, &x, sizeof b);
  return b == kPoisonBits;
}

}  // namespace attnbench
