#include "attnbench/descriptions.hpp"

namespace attnbench {

KernelInfo method_info(const char* name, Backend b, const char* family, const char* summary,
                       unsigned inputs, std::vector<ParamSpec> params) {
  KernelInfo i;
  i.name = name;
  i.backend = b;
  i.family = family;
  i.summary = summary;
  i.inputs = inputs;
  i.params = std::move(params);
  return i;
}

KernelInfo vanilla_materialized_info(Backend b) {
  KernelInfo i = method_info(
      "vanilla_materialized", b, "vanilla",
      "softmax attention with the N x N scores in memory (sgemm, row softmax, sgemm)");
  i.is_vanilla = true;
  return i;
}

KernelInfo vanilla_flash_info(Backend b) {
  KernelInfo i = method_info("vanilla_flash", b, "vanilla",
                             "fused tiled softmax attention with an online softmax, O(N dh) "
                             "memory");
  i.is_vanilla = true;
  return i;
}

KernelInfo vanilla_eager_info(Backend b) {
  KernelInfo i = method_info("vanilla_eager", b, "vanilla",
                             "softmax attention as eager PyTorch runs it: full N x N products, "
                             "separate scale, masked_fill and softmax passes (the papers' "
                             "baseline memory)");
  i.is_vanilla = true;
  return i;
}

KernelInfo lisa_info(const char* name, int64_t default_codewords, bool soft, Backend b) {
  return method_info(
      name, b, "lisa",
      soft ? "LISA-Soft: attention over prefix sums of soft codeword assignments"
           : "LISA: attention over prefix histograms of hard codeword codes",
      (soft ? kInputProbs : kInputCodes) | kInputCodebooks | kInputProjections,
      {
          int_param("codebooks", 8, 1, 4096, "B, codebooks per head"),
          int_param("codewords", default_codewords, 1, int64_t(1) << 20,
                    "W, codewords per codebook"),
          flag_param("projections", false, "1: per-codebook Wq, Wk, Wv inputs; 0: identity"),
          real_param("decay", 0, 0, 1e6, "counts decay lambda (causal only); 0 = none"),
      });
}

KernelInfo linear_elu_info(Backend b) {
  return method_info("linear_elu", b, "linear",
                     "Linear Transformer: phi = elu + 1, running state S = sum phi(k) v^T");
}

KernelInfo linrec_info(Backend b) {
  return method_info("linrec", b, "linear",
                     "LinRec: l2-normalised elu features, S = sum k^ v^T, scaled by 1/sqrt(dh)");
}

KernelInfo performer_info(Backend b) {
  return method_info("performer", b, "linear",
                     "Performer FAVOR+: positive orthogonal random features, linear attention",
                     kInputQKV,
                     {
                         int_param("features", 0, 0, int64_t(1) << 20,
                                   "m, random features; 0 = floor(dh ln dh); the seed axis "
                                   "seeds the block-orthogonal projection"),
                     });
}

KernelInfo efficient_attention_info(Backend b) {
  return method_info("efficient_attention", b, "linear",
                     "Efficient Attention (Shen et al.): softmax_rows(Q) (softmax_cols(K)^T V)");
}

KernelInfo hydra_info(Backend b) {
  return method_info("hydra", b, "linear",
                     "Hydra attention: heads = features, o_t = q^_t * sum_s k^_s * v_s "
                     "(norms over the full width heads * dh)");
}

KernelInfo local_window_info(Backend b) {
  return method_info("local_window", b, "sparse",
                     "softmax attention over a band of w keys around each query", kInputQKV,
                     {int_param("window", 64, 1, int64_t(1) << 50,
                                "w: causal i-w < j <= i, bidirectional |i-j| < w")});
}

KernelInfo reformer_info(Backend b) {
  return method_info("reformer_lsh", b, "sparse",
                     "Reformer shared-QK LSH attention: hash, sort, chunked attention, n_hashes "
                     "rounds",
                     kInputQKV,
                     {int_param("bucket_size", 64, 1, int64_t(1) << 40,
                                "chunk length after sorting by bucket"),
                      int_param("n_hashes", 8, 1, 4096,
                                "hash rounds, combined by their log-sum-exp weights; the seed "
                                "axis seeds the random rotations")});
}

KernelInfo sinkhorn_info(Backend b) {
  return method_info("sinkhorn", b, "sparse",
                     "Sparse Sinkhorn attention: each block sees itself and its Sinkhorn-sorted "
                     "block",
                     kInputQKV, {int_param("block", 64, 1, int64_t(1) << 40, "block size (queries and keys)")});
}

KernelInfo lsan_twin_info(Backend b) {
  return method_info(
      "lsan_twin", b, "sparse",
      "LSAN twin attention: vanilla attention plus a depthwise causal convolution of V",
      kInputQKV | kInputConv, {int_param("conv_width", 3, 1, int64_t(1) << 20, "L, taps of the depthwise convolution")});
}

ReformerShape reformer_shape(const Problem& p) {
  return {p.int_param("bucket_size"), p.int_param("n_hashes"), p.seed};
}
SinkhornShape sinkhorn_shape(const Problem& p) { return {p.int_param("block")}; }
LsanShape lsan_shape(const Problem& p) { return {p.int_param("conv_width")}; }

}  // namespace attnbench
