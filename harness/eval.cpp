#include "eval.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include <fmt/format.h>

#include "accuracy.hpp"
#include "attnbench/reference.hpp"
#include "backend.hpp"
#include "errors.hpp"
#include "npy.hpp"
#include "point_policy.hpp"
#include "text.hpp"

namespace attnbench {

namespace {

std::string dims_str(const std::vector<std::pair<const char*, int64_t>>& dims) {
  std::string names, vals;
  for (size_t i = 0; i < dims.size(); ++i) {
    names += fmt::format("{}{}", i ? ", " : "", dims[i].first);
    vals += fmt::format("{}{}", i ? ", " : "", dims[i].second);
  }
  return fmt::format("[{}] = ({})", names, vals);
}

// A tensor file of DIR, loaded and checked for dtype and rank.
struct Loaded {
  std::string path;
  npy::Array a;
};

Loaded load(const std::string& dir, const std::string& file, size_t rank,
            std::initializer_list<const char*> dtypes, const char* layout) {
  Loaded l;
  l.path = (std::filesystem::path(dir) / file).string();
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::symlink_status(l.path, ec)))
    fail_at(l.path, fmt::format("missing (expected {})", layout));
  l.a = npy::read(l.path);
  bool ok = false;
  std::string want;
  for (const char* d : dtypes) {
    ok = ok || l.a.descr == d;
    want += (want.empty() ? "'" : " or '") + std::string(d) + "'";
  }
  if (!ok)
    fail_at(l.path, fmt::format("dtype '{}' but expected {} (float32{})", l.a.descr, want,
                                dtypes.size() > 1 ? " / int32 / int64" : ""));
  if (l.a.shape.size() != rank)
    fail_at(l.path, fmt::format("shape {} has {} dimensions, expected {} {}",
                                npy::shape_str(l.a.shape), l.a.shape.size(), rank, layout));
  for (int64_t d : l.a.shape)
    if (d <= 0)
      fail_at(l.path, fmt::format("shape {} has an empty dimension", npy::shape_str(l.a.shape)));
  return l;
}

void expect_shape(const Loaded& l, const std::vector<std::pair<const char*, int64_t>>& dims,
                  const std::string& from) {
  std::vector<int64_t> want;
  for (const auto& d : dims) want.push_back(d.second);
  if (l.a.shape != want)
    fail_at(l.path, fmt::format("shape {} but {} expects {}", npy::shape_str(l.a.shape), from,
                                dims_str(dims)));
}

std::vector<float> floats(const Loaded& l) {
  std::vector<float> v(l.a.elems());
  std::memcpy(v.data(), l.a.data.data(), v.size() * sizeof(float));
  return v;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> eval_input_files(const Kernel& k) {
  const unsigned f = k.info().inputs;
  std::vector<std::pair<std::string, std::string>> v;
  if (f & kInputQKV)
    for (const char* n : {"q.npy", "k.npy", "v.npy"}) v.push_back({n, "float32 [batch, heads, N, dh]"});
  if (f & kInputCodes) v.push_back({"codes.npy", "int32 or int64 [batch, heads, N, B], each in [0, W)"});
  if (f & kInputProbs) v.push_back({"probs.npy", "float32 [batch, heads, N, B, W]"});
  if (f & kInputCodebooks) v.push_back({"codebooks.npy", "float32 [heads, B, W, dh]"});
  if (f & kInputProjections)
    for (const char* n : {"wq.npy", "wk.npy", "wv.npy"})
      v.push_back({n, "optional float32 [heads, B, dh, dh] (all three or none)"});
  if (f & kInputConv) v.push_back({"conv.npy", "float32 [heads, L, dh]"});
  return v;
}

std::pair<std::string, double> parse_param(const std::string& text) {
  const std::string where = "--param " + text;
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) fail_at(where, "expected key=value, e.g. decay=0.1");
  const std::string key = text.substr(0, eq), val = text.substr(eq + 1);
  if (!Registry::instance().parameter(key)) {
    std::vector<std::string> known;
    for (const auto& ps : Registry::instance().parameters()) known.push_back(ps.name);
    fail_at(where, fmt::format("unknown parameter '{}' (known: {})", key, join(known)));
  }
  const std::optional<double> v = val == "true" ? 1.0 : val == "false" ? 0.0 : parse_number(val);
  if (!v) fail_at(where, fmt::format("'{}' is not a number", val));
  return {key, *v};
}

namespace {

// What the tensors read so far fix: the sizes and the file they came from.
struct EvalShape {
  int64_t b = 0, h = 0, n = 0, dh = 0, B = 0, W = 0;
  std::string from;  // the file the sizes come from, for messages ("" = none read yet)
};

// The inputs of one kernel as they are read from DIR, one tensor kind at a time.
struct EvalLoad {
  const Kernel& k;
  const std::string& dir;
  const std::vector<std::pair<std::string, double>>& params;  // --param key=value
  EvalInputs r;
  EvalShape s;

  // A parameter a tensor's shape fixes (B, W, L, projections): a --param must agree with it.
  void fixed_by_shape(const char* key, int64_t value, const std::string& file) {
    for (const auto& [k2, v] : params)
      if (k2 == key && v != double(value))
        fail_at(fmt::format("--param {}={}", key, v),
                fmt::format("contradicts {} ({} = {})", file, key, value));
    set_axis(r.problem, key, double(value));
  }
  // The batch, heads and N of the first tensor read.
  void first_sizes(const Loaded& l) {
    if (!s.from.empty()) return;
    s.b = l.a.shape[0], s.h = l.a.shape[1], s.n = l.a.shape[2];
    s.from = std::filesystem::path(l.path).filename().string();
  }
};

// --param keys the kernel reads, set on the problem; the shapes check theirs later.
void apply_user_params(EvalLoad& l) {
  const KernelInfo& info = l.k.info();
  std::vector<std::string> names;
  for (const auto& ps : info.params) names.push_back(ps.name);
  for (const auto& [key, v] : l.params) {
    if (std::find(names.begin(), names.end(), key) == names.end())
      fail_at("--param " + key, fmt::format("{} does not read '{}' (its parameters: {})", info.name,
                                            key, names.empty() ? "none" : join(names)));
    l.r.problem.set_param(key, v);
  }
}

void load_qkv(EvalLoad& l) {
  const char* layout = "[batch, heads, N, dh]";
  Loaded q = load(l.dir, "q.npy", 4, {"<f4"}, layout);
  l.first_sizes(q);
  l.s.dh = q.a.shape[3];
  Loaded k = load(l.dir, "k.npy", 4, {"<f4"}, layout);
  Loaded v = load(l.dir, "v.npy", 4, {"<f4"}, layout);
  const std::vector<std::pair<const char*, int64_t>> d = {
      {"batch", l.s.b}, {"heads", l.s.h}, {"N", l.s.n}, {"dh", l.s.dh}};
  expect_shape(k, d, l.s.from);
  expect_shape(v, d, l.s.from);
  l.r.inputs.q = floats(q);
  l.r.inputs.k = floats(k);
  l.r.inputs.v = floats(v);
}

// int32 or int64 codes as int32, each checked to be a valid index.
std::vector<int32_t> codes_of(const Loaded& c) {
  std::vector<int32_t> codes(c.a.elems());
  for (size_t i = 0; i < codes.size(); ++i) {
    int64_t x;
    if (c.a.descr == "<i4") {
      int32_t y;
      std::memcpy(&y, c.a.data.data() + i * 4, 4);
      x = y;
    } else {
      std::memcpy(&x, c.a.data.data() + i * 8, 8);
    }
    if (x < 0 || x > std::numeric_limits<int32_t>::max())
      fail_at(c.path, fmt::format("code {} at flat index {} is negative or too large", x, i));
    codes[i] = int32_t(x);
  }
  return codes;
}

void load_codes(EvalLoad& l) {
  Loaded c = load(l.dir, "codes.npy", 4, {"<i4", "<i8"}, "[batch, heads, N, B]");
  l.first_sizes(c);
  l.s.B = c.a.shape[3];
  expect_shape(c, {{"batch", l.s.b}, {"heads", l.s.h}, {"N", l.s.n}, {"B", l.s.B}}, l.s.from);
  l.fixed_by_shape("codebooks", l.s.B, c.path);
  l.r.inputs.codes = codes_of(c);
}

void load_probs(EvalLoad& l) {
  Loaded pr = load(l.dir, "probs.npy", 5, {"<f4"}, "[batch, heads, N, B, W]");
  l.first_sizes(pr);
  l.s.B = pr.a.shape[3];
  l.s.W = pr.a.shape[4];
  expect_shape(pr, {{"batch", l.s.b}, {"heads", l.s.h}, {"N", l.s.n}, {"B", l.s.B}, {"W", l.s.W}},
               l.s.from);
  l.fixed_by_shape("codebooks", l.s.B, pr.path);
  l.fixed_by_shape("codewords", l.s.W, pr.path);
  l.r.inputs.probs = floats(pr);
}

// wq.npy, wk.npy, wv.npy: all three (projections on) or none (identity).
void load_projections(EvalLoad& l) {
  const char* files[3] = {"wq.npy", "wk.npy", "wv.npy"};
  int present = 0;
  std::error_code ec;
  for (const char* file : files)
    present += std::filesystem::exists(
        std::filesystem::symlink_status(std::filesystem::path(l.dir) / file, ec));
  if (present != 0 && present != 3)
    fail_at(l.dir, fmt::format("give all of wq.npy, wk.npy and wv.npy or none of them (found {} of 3)",
                               present));
  l.fixed_by_shape("projections", present == 3 ? 1 : 0, "the wq/wk/wv files");
  if (present != 3) return;
  std::vector<float>* dst[3] = {&l.r.inputs.wq, &l.r.inputs.wk, &l.r.inputs.wv};
  for (int m = 0; m < 3; ++m) {
    Loaded w = load(l.dir, files[m], 4, {"<f4"}, "[heads, B, dh, dh]");
    expect_shape(w, {{"heads", l.s.h}, {"B", l.s.B}, {"dh", l.s.dh}, {"dh", l.s.dh}}, "codebooks.npy");
    *dst[m] = floats(w);
  }
}

void load_codebooks(EvalLoad& l) {
  Loaded cb = load(l.dir, "codebooks.npy", 4, {"<f4"}, "[heads, B, W, dh]");
  if (l.s.from.empty()) fail_at(l.dir, "no codes.npy or probs.npy next to it");
  if (!l.s.W) l.s.W = cb.a.shape[2];
  if (!l.s.dh) l.s.dh = cb.a.shape[3];
  const bool soft = (l.k.info().inputs & kInputProbs) != 0;
  expect_shape(cb, {{"heads", l.s.h}, {"B", l.s.B}, {"W", l.s.W}, {"dh", l.s.dh}},
               l.s.from + (soft ? "" : " and codebooks.npy"));
  l.fixed_by_shape("codewords", l.s.W, cb.path);
  l.r.inputs.codebooks = floats(cb);
  if (l.k.info().inputs & kInputProjections) load_projections(l);
}

void load_conv(EvalLoad& l) {
  Loaded cv = load(l.dir, "conv.npy", 3, {"<f4"}, "[heads, L, dh]");
  if (l.s.from.empty()) fail_at(l.dir, "conv.npy needs q.npy, k.npy, v.npy next to it");
  const int64_t L = cv.a.shape[1];
  expect_shape(cv, {{"heads", l.s.h}, {"L", L}, {"dh", l.s.dh}}, l.s.from);
  l.fixed_by_shape("conv_width", L, cv.path);
  l.r.inputs.conv = floats(cv);
}

// The shape the tensors fixed and the form; then the kernel's own checks (forms, sizes, code
// ranges, probabilities).
void finish_problem(EvalLoad& l, std::optional<bool> causal) {
  Problem& p = l.r.problem;
  p.batch = l.s.b;
  p.heads = l.s.h;
  p.seq_len = l.s.n;
  p.head_dim = l.s.dh;
  p.causal = causal ? *causal : l.k.info().has_causal;
  l.k.validate(p);
  try {
    l.k.validate_inputs(p, l.r.inputs.view());
  } catch (const InvalidProblem& e) {
    fail_at(l.dir, e.what());
  }
}

}  // namespace

EvalInputs load_eval_inputs(const Kernel& k, const std::string& dir, std::optional<bool> causal,
                            const std::vector<std::pair<std::string, double>>& params) {
  std::error_code ec;
  if (dir.empty()) fail_at("--inputs", "an empty path (give the folder holding the .npy files)");
  if (!std::filesystem::is_directory(dir, ec))
    fail_at(dir, "not a directory (--inputs takes the folder holding the .npy files)");
  EvalLoad l{k, dir, params, {}, {}};
  l.r.problem = with_defaults(k, l.r.problem);
  apply_user_params(l);
  const unsigned f = k.info().inputs;
  if (f & kInputQKV) load_qkv(l);
  if (f & kInputCodes) load_codes(l);
  if (f & kInputProbs) load_probs(l);
  if (f & kInputCodebooks) load_codebooks(l);
  if (f & kInputConv) load_conv(l);
  if (l.s.from.empty())
    fail_at(k.info().name, fmt::format("{} reads no tensors this tool knows how to load", dir));
  finish_problem(l, causal);
  return std::move(l.r);
}

namespace {

// The memory limit eval runs under, as a sweep's: --memory-limit, else 80 % of the memory.
RunOptions memory_options(const EvalOptions& o) {
  RunOptions ro;
  ro.host_memory_limit = o.memory_limit;
  ro.device_memory_limit = o.memory_limit;
  return ro;
}

// The input files together must fit the host limit before any of them is read.
void check_files_fit(const Kernel& k, const EvalOptions& o) {
  const RunOptions ro = memory_options(o);
  const double limit = ro.host_memory_limit ? double(ro.host_memory_limit)
                                            : 0.8 * double(backend_memory_bytes(Backend::cpu));
  double bytes = 0;
  for (const auto& [file, layout] : eval_input_files(k)) {
    std::error_code ec;
    const auto path = std::filesystem::path(o.inputs_dir) / file;
    if (!std::filesystem::is_regular_file(path, ec)) continue;  // load() names what is wrong
    const auto size = std::filesystem::file_size(path, ec);
    if (!ec) bytes += double(size);
  }
  if (bytes > limit)
    fail_at(o.inputs_dir,
            fmt::format("the input files hold {}, more than the memory limit {} (--memory-limit)",
                        format_bytes(bytes), format_bytes(limit)));
}

}  // namespace

EvalResult run_eval(const EvalOptions& o) {
  const Kernel& k = Registry::instance().get(o.kernel, o.backend);
  check_files_fit(k, o);
  EvalInputs ei = load_eval_inputs(k, o.inputs_dir, o.causal, o.params);
  const Problem& p = ei.problem;
  // the point's declared peak against the limit, as a sweep would skip it, before allocating
  if (const auto why = memory_skip_reason(k, p, o.backend, memory_options(o)))
    fail_at(k.info().name, fmt::format("{} does not fit the memory limit: {} (--memory-limit)",
                                       describe(p), *why));
  EvalResult r;
  r.kernel = &k;
  r.problem = p;
  auto runner = make_runner(o.backend);
  runner->setup(k, p, ei.inputs);
  r.run_ms = runner->run_once_ms();
  r.output = runner->output();
  runner->teardown();
  r.output_shape = {p.batch, p.heads, p.seq_len, p.head_dim};
  size_t bad = 0;
  for (float x : r.output) bad += !std::isfinite(x);
  if (bad)
    fail_at(k.info().name, fmt::format("{} of {} output elements are NaN or infinite (inputs out "
                                       "of a sensible range?)",
                                       bad, r.output.size()));
  if (const Kernel* ref = Registry::instance().find(k.info().name, Backend::cpu)) {
    const auto rows = approximation_rows(p);
    std::vector<double> want(rows.size() * size_t(p.head_dim));
    ref->reference_rows(p, ei.inputs.view(), rows, want.data());
    r.reference_rel_l2 = rel_l2_rows(p, r.output.data(), rows, want.data());
    r.reference_rows = int64_t(rows.size());
  }
  if (!o.output_path.empty()) npy::write(o.output_path, r.output_shape, r.output);
  return r;
}

}  // namespace attnbench
