// The problem and input descriptions every kernel, test, benchmark and the harness share.
// Plain data only: no allocation policy, no backend. docs/architecture.md describes the seam;
// docs/methods.md gives the meaning of each method's parameters.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace attnbench {

// Thrown for every rejected problem or input: the message is one line, meant for the user.
struct InvalidProblem : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

enum class Backend { cpu, cuda };
const char* backend_name(Backend b);
std::optional<Backend> parse_backend(const std::string& s);

// The arithmetic of a point (the `precision` axis):
//   fp32  float32 inputs, outputs and arithmetic (the default);
//   tf32  float32 inputs and outputs, products on TF32 tensor cores, float32 accumulation;
//   bf16, fp16  16-bit inputs and outputs, float32 accumulation and softmax statistics.
enum class Precision { fp32, tf32, bf16, fp16 };
constexpr Precision kAllPrecisions[] = {Precision::fp32, Precision::tf32, Precision::bf16,
                                        Precision::fp16};
const char* precision_name(Precision p);
std::optional<Precision> parse_precision(std::string_view s);
// Bytes of one stored element of q, k, v and the output (4 for fp32 and tf32, 2 otherwise).
size_t storage_bytes(Precision p);
// Unit roundoff of the precision's products: 2^-24, 2^-11, 2^-8, 2^-11.
double unit_roundoff(Precision p);
// The relative L2 error a correct kernel stays under, against float64 of the same function on
// inputs already rounded to the precision. fp32: 1e-5 whatever the reduction length. Others:
// 4 u (the probabilities and the output are each rounded once to the precision, <= u each,
// doubled for safety) plus 4 sqrt(n) 2^-24 for float32 accumulation over `reduction_length`
// terms (docs/methods.md section 5).
double correctness_tolerance(Precision p, int64_t reduction_length);
// x rounded to the nearest value the precision stores (math/precision.hpp; fp32: x).
float round_to(Precision p, float x);

// One attention problem: the shape axes, typed, and the method parameters the kernel declares
// (KernelInfo::params), by name. A kernel reads only its own declared parameters.
struct Problem {
  int64_t batch = 1;
  int64_t heads = 1;
  int64_t seq_len = 1;
  int64_t head_dim = 64;
  bool causal = true;
  Precision precision = Precision::fp32;
  uint64_t seed = 1234;  // seeds the inputs and the random features / rotations of seeded methods
  std::map<std::string, double, std::less<>> params;

  int64_t rows() const { return seq_len; }
  int64_t sequences() const { return batch * heads; }
  int64_t qkv_elems() const { return batch * heads * seq_len * head_dim; }

  bool has_param(std::string_view name) const { return params.find(name) != params.end(); }
  // The value of a declared parameter; throws InvalidProblem when the problem does not set it.
  double real_param(std::string_view name) const;
  int64_t int_param(std::string_view name) const;
  bool flag_param(std::string_view name) const { return real_param(name) != 0.0; }
  Problem& set_param(std::string_view name, double value);
};

// The axes every problem has, typed fields of Problem, as sweeps and results spell them.
const std::vector<std::string>& shape_axes();  // batch heads seq_len head_dim causal precision seed
bool is_shape_axis(std::string_view name);
// Any axis as a number: a shape axis (causal 1/0, precision its Precision index) or a method
// parameter. get throws InvalidProblem for a parameter the problem does not set; set checks a
// shape axis's type and range, and stores any other name as a method parameter (the kernel's
// validate checks it against its ParamSpec).
double get_axis(const Problem& p, std::string_view name);
void set_axis(Problem& p, std::string_view name, double value);
// "b=1 h=1 N=4096 dh=64 causal" plus " bf16" when not fp32, plus the given method parameters.
std::string describe(const Problem& p, const std::vector<std::string>& params = {});

// Which input tensors a method reads. Layouts (row-major, all contiguous):
//   q, k, v     [batch, heads, N, dh], elements of storage_bytes(precision)
//   codes       int32 [batch, heads, N, B], each in [0, W)
//   codebooks   float [heads, B, W, dh]
//   wq, wk, wv  float [heads, B, dh, dh] (only when the `projections` parameter is 1)
//   probs       float [batch, heads, N, B, W] (soft assignments, each row sums to 1)
//   conv        float [heads, L, dh] (LSAN depthwise filter; tap 0 multiplies position i)
//   output      [batch, heads, N, dh], elements of storage_bytes(precision)
// B, W and L are the `codebooks`, `codewords` and `conv_width` parameters.
enum InputFlags : unsigned {
  kInputQKV = 1u << 0,
  kInputCodes = 1u << 1,
  kInputCodebooks = 1u << 2,
  kInputProjections = 1u << 3,  // read only when the `projections` parameter is 1
  kInputProbs = 1u << 4,
  kInputConv = 1u << 5,
};

// Non-owning views of the inputs. Pointers are host pointers for the cpu backend and device
// pointers for the cuda backend. For bf16 and fp16 problems q, k, v (and the kernel's output)
// hold 2-byte elements: a kernel that declares those precisions reads them through
// storage_cast (attnbench/storage.hpp); every other kernel only ever sees float32 data.
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
  Precision precision = Precision::fp32;
  size_t bytes() const;  // all inputs together, in bytes (q, k, v at the storage size)
};
InputSizes input_sizes(const Problem& p, unsigned input_flags);
size_t output_elems(const Problem& p);
size_t output_bytes(const Problem& p);

}  // namespace attnbench
