// The problem and input descriptions every kernel, test, benchmark and the harness share.
// Plain data only: no allocation policy, no backend. See ../shared/docs/design.md
// ("The kernel interface") and kernels.md for the meaning of each parameter.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace attnbench {

// Thrown for every rejected problem or input: the message is one line, meant for the user.
struct InvalidProblem : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

enum class Backend { cpu, cuda };
const char* backend_name(Backend b);
std::optional<Backend> parse_backend(const std::string& s);

// One attention problem: the shape, the masking and every method's own parameters.
// A method reads only the parameters it declares (KernelInfo::params); the rest are ignored.
struct Problem {
  int64_t batch = 1;
  int64_t heads = 1;
  int64_t seq_len = 1;
  int64_t head_dim = 64;
  bool causal = true;

  // LISA (kernels.md section 2)
  int64_t codebooks = 8;          // B
  int64_t codewords = 16;         // W, the paper's "codebook size"
  bool projections = false;       // per-codebook Wq, Wk, Wv present (absent = identity)
  double decay = 0.0;             // lambda of counts_decay; 0 = no decay

  // linear / kernelized (section 3)
  int64_t features = 0;           // Performer m; 0 = floor(dh ln dh)

  // sparse / hashed (section 4)
  int64_t window = 64;            // local window w
  int64_t bucket_size = 64;       // Reformer chunk size
  int64_t n_hashes = 8;           // Reformer rounds
  int64_t block = 64;             // Sinkhorn block size
  int64_t conv_width = 3;         // LSAN depthwise convolution width L

  uint64_t seed = 1234;           // seeds the random features / rotations of seeded methods

  int64_t rows() const { return seq_len; }
  int64_t sequences() const { return batch * heads; }
  int64_t qkv_elems() const { return batch * heads * seq_len * head_dim; }
};

// Names of the method parameters, as the harness and the command line spell them.
// get/set work on every name in parameter_names(); set throws InvalidProblem on an unknown name.
const std::vector<std::string>& parameter_names();
double get_parameter(const Problem& p, const std::string& name);
void set_parameter(Problem& p, const std::string& name, double value);
// "b=1 h=1 N=4096 dh=64 causal B=8 W=16" plus the given method parameters.
std::string describe(const Problem& p, const std::vector<std::string>& params = {});

// Which input tensors a method reads. Layouts (row-major, all contiguous):
//   q, k, v     float [batch, heads, N, dh]
//   codes       int32 [batch, heads, N, B], each in [0, W)
//   codebooks   float [heads, B, W, dh]
//   wq, wk, wv  float [heads, B, dh, dh] (only when Problem::projections)
//   probs       float [batch, heads, N, B, W] (soft assignments, each row sums to 1)
//   conv        float [heads, L, dh] (LSAN depthwise filter; tap 0 multiplies position i)
//   output      float [batch, heads, N, dh]
enum InputFlags : unsigned {
  kInputQKV = 1u << 0,
  kInputCodes = 1u << 1,
  kInputCodebooks = 1u << 2,
  kInputProjections = 1u << 3,  // read only when Problem::projections
  kInputProbs = 1u << 4,
  kInputConv = 1u << 5,
};

// Non-owning views of the inputs. Pointers are host pointers for the cpu backend and device
// pointers for the cuda backend.
struct Inputs {
  const float* q = nullptr;
  const float* k = nullptr;
  const float* v = nullptr;
  const int32_t* codes = nullptr;
  const float* codebooks = nullptr;
  const float* wq = nullptr;
  const float* wk = nullptr;
  const float* wv = nullptr;
  const float* probs = nullptr;
  const float* conv = nullptr;
};

// Element counts of each input for a problem (0 where the method does not read it).
struct InputSizes {
  size_t q = 0, k = 0, v = 0, codes = 0, codebooks = 0, wq = 0, wk = 0, wv = 0, probs = 0,
         conv = 0;
  size_t bytes() const;  // all inputs together, in bytes
};
InputSizes input_sizes(const Problem& p, unsigned input_flags);
size_t output_elems(const Problem& p);

}  // namespace attnbench
