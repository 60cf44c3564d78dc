// What a method is (name, family, forms, inputs, parameters with defaults) does not depend on
// the backend that runs it. The methods with a CPU and a CUDA kernel take their KernelInfo
// from here, so the two backends cannot drift apart; only KernelInfo::backend differs.
// A CPU-only kernel builds its own with method_info.
#pragma once

#include <cstdint>
#include <vector>

#include "attnbench/kernel.hpp"

namespace attnbench {

KernelInfo method_info(const char* name, Backend b, const char* family, const char* summary,
                       unsigned inputs = kInputQKV, std::vector<ParamSpec> params = {});

KernelInfo vanilla_materialized_info(Backend b);
KernelInfo vanilla_flash_info(Backend b);
KernelInfo vanilla_eager_info(Backend b);
// lisa_base (W = 128), lisa_mini (W = 16), lisa_soft (soft assignments, W = 16)
KernelInfo lisa_info(const char* name, int64_t default_codewords, bool soft, Backend b);
KernelInfo linear_elu_info(Backend b);
KernelInfo linrec_info(Backend b);
KernelInfo performer_info(Backend b);
KernelInfo efficient_attention_info(Backend b);
KernelInfo hydra_info(Backend b);
KernelInfo local_window_info(Backend b);
KernelInfo reformer_info(Backend b);
KernelInfo sinkhorn_info(Backend b);
KernelInfo lsan_twin_info(Backend b);

// The method parameters of a Problem, read in exactly one function per method: the kernels
// of both backends, their workspaces and references take these structs, never the Problem's
// fields, so a change in how a Problem carries its parameters touches only these readers.
struct ReformerShape {
  int64_t bucket_size;  // chunk length after sorting by bucket
  int64_t n_hashes;     // hash rounds
  uint64_t seed;        // seeds the random rotations
};
ReformerShape reformer_shape(const Problem& p);
struct SinkhornShape {
  int64_t block;  // block size (queries and keys)
};
SinkhornShape sinkhorn_shape(const Problem& p);
struct LsanShape {
  int64_t conv_width;  // L, taps of the depthwise convolution
};
LsanShape lsan_shape(const Problem& p);

}  // namespace attnbench
