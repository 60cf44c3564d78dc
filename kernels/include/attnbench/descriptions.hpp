// What a method is (name, family, forms, inputs, parameters with defaults) does not depend on
// the backend that runs it. The methods with a CPU and a CUDA kernel take their KernelInfo
// from here, so the two backends cannot drift apart; only KernelInfo::backend differs.
// A CPU-only kernel builds its own with method_info.
#pragma once

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

}  // namespace attnbench
