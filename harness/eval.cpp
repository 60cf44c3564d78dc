#include "eval.hpp"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include <fmt/format.h>

#include "attnbench/reference.hpp"
#include "backend.hpp"
#include "npy.hpp"
#include "sweep.hpp"

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
  if (!std::filesystem::exists(l.path))
    throw InvalidProblem(fmt::format("{}: missing (expected {})", l.path, layout));
  l.a = npy::read(l.path);
  bool ok = false;
  std::string want;
  for (const char* d : dtypes) {
    ok = ok || l.a.descr == d;
    want += (want.empty() ? "'" : " or '") + std::string(d) + "'";
  }
  if (!ok)
    throw InvalidProblem(fmt::format("{}: dtype '{}' but expected {} (float32{})", l.path,
                                     l.a.descr, want,
                                     dtypes.size() > 1 ? " / int32 / int64" : ""));
  if (l.a.shape.size() != rank)
    throw InvalidProblem(fmt::format("{}: shape {} has {} dimensions, expected {} {}", l.path,
                                     npy::shape_str(l.a.shape), l.a.shape.size(), rank, layout));
  for (int64_t d : l.a.shape)
    if (d <= 0)
      throw InvalidProblem(fmt::format("{}: shape {} has an empty dimension", l.path,
                                       npy::shape_str(l.a.shape)));
  return l;
}

void expect_shape(const Loaded& l, const std::vector<std::pair<const char*, int64_t>>& dims,
                  const std::string& from) {
  std::vector<int64_t> want;
  for (const auto& d : dims) want.push_back(d.second);
  if (l.a.shape != want)
    throw InvalidProblem(fmt::format("{}: shape {} but {} expects {}", l.path,
                                     npy::shape_str(l.a.shape), from, dims_str(dims)));
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
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0)
    throw InvalidProblem(fmt::format("--param {}: expected key=value, e.g. decay=0.1", text));
  const std::string key = text.substr(0, eq), val = text.substr(eq + 1);
  if (!Registry::instance().parameter(key)) {
    std::string known;
    for (const auto& ps : Registry::instance().parameters()) known += (known.empty() ? "" : ", ") + ps.name;
    throw InvalidProblem(fmt::format("--param {}: unknown parameter '{}' (known: {})", text, key, known));
  }
  double v = 0;
  size_t used = 0;
  try {
    v = std::stod(val, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (val == "true") v = 1, used = val.size();
  if (val == "false") v = 0, used = val.size();
  if (val.empty() || used != val.size())
    throw InvalidProblem(fmt::format("--param {}: '{}' is not a number", text, val));
  return {key, v};
}

EvalInputs load_eval_inputs(const Kernel& k, const std::string& dir, std::optional<bool> causal,
                            const std::vector<std::pair<std::string, double>>& params) {
  const KernelInfo& info = k.info();
  const unsigned f = info.inputs;
  if (!std::filesystem::is_directory(dir))
    throw InvalidProblem(fmt::format("{}: not a directory (--inputs takes the folder holding the "
                                     ".npy files)",
                                     dir));
  EvalInputs r;
  Problem& p = r.problem;
  p = with_defaults(k, p);
  // parameters the user set; the ones fixed by tensor shapes are checked against them below
  for (const auto& [key, v] : params) {
    bool reads = false;
    std::string list;
    for (const auto& ps : info.params) {
      reads = reads || ps.name == key;
      list += (list.empty() ? "" : ", ") + ps.name;
    }
    if (!reads)
      throw InvalidProblem(fmt::format("--param {}: {} does not read '{}' (its parameters: {})",
                                       key, info.name, key, list.empty() ? "none" : list));
    p.set_param(key, v);
  }
  auto user_set = [&](const char* key) -> std::optional<double> {
    for (const auto& [k2, v] : params)
      if (k2 == key) return v;
    return std::nullopt;
  };
  auto fixed_by_shape = [&](const char* key, int64_t value, const std::string& file) {
    if (auto u = user_set(key); u && *u != double(value))
      throw InvalidProblem(fmt::format("--param {}={} contradicts {} ({} = {})", key, *u, file,
                                       key, value));
    set_axis(p, key, double(value));
  };

  int64_t b = 0, h = 0, n = 0, dh = 0, B = 0, W = 0;
  std::string shape_from;  // the file the sizes come from, for messages
  HostInputs& in = r.inputs;

  if (f & kInputQKV) {
    Loaded q = load(dir, "q.npy", 4, {"<f4"}, "[batch, heads, N, dh]");
    b = q.a.shape[0], h = q.a.shape[1], n = q.a.shape[2], dh = q.a.shape[3];
    shape_from = "q.npy";
    Loaded kk = load(dir, "k.npy", 4, {"<f4"}, "[batch, heads, N, dh]");
    Loaded v = load(dir, "v.npy", 4, {"<f4"}, "[batch, heads, N, dh]");
    const std::vector<std::pair<const char*, int64_t>> d = {{"batch", b}, {"heads", h}, {"N", n}, {"dh", dh}};
    expect_shape(kk, d, shape_from);
    expect_shape(v, d, shape_from);
    in.q = floats(q);
    in.k = floats(kk);
    in.v = floats(v);
  }
  if (f & kInputCodes) {
    Loaded c = load(dir, "codes.npy", 4, {"<i4", "<i8"}, "[batch, heads, N, B]");
    if (shape_from.empty()) {
      b = c.a.shape[0], h = c.a.shape[1], n = c.a.shape[2];
      shape_from = "codes.npy";
    }
    B = c.a.shape[3];
    expect_shape(c, {{"batch", b}, {"heads", h}, {"N", n}, {"B", B}}, shape_from);
    fixed_by_shape("codebooks", B, c.path);
    in.codes.resize(c.a.elems());
    for (size_t i = 0; i < in.codes.size(); ++i) {
      int64_t x;
      if (c.a.descr == "<i4") {
        int32_t y;
        std::memcpy(&y, c.a.data.data() + i * 4, 4);
        x = y;
      } else {
        std::memcpy(&x, c.a.data.data() + i * 8, 8);
      }
      if (x < 0 || x > std::numeric_limits<int32_t>::max())
        throw InvalidProblem(fmt::format("{}: code {} at flat index {} is negative or too large",
                                         c.path, x, i));
      in.codes[i] = int32_t(x);
    }
  }
  if (f & kInputProbs) {
    Loaded pr = load(dir, "probs.npy", 5, {"<f4"}, "[batch, heads, N, B, W]");
    if (shape_from.empty()) {
      b = pr.a.shape[0], h = pr.a.shape[1], n = pr.a.shape[2];
      shape_from = "probs.npy";
    }
    B = pr.a.shape[3];
    W = pr.a.shape[4];
    expect_shape(pr, {{"batch", b}, {"heads", h}, {"N", n}, {"B", B}, {"W", W}}, shape_from);
    fixed_by_shape("codebooks", B, pr.path);
    fixed_by_shape("codewords", W, pr.path);
    in.probs = floats(pr);
  }
  if (f & kInputCodebooks) {
    Loaded cb = load(dir, "codebooks.npy", 4, {"<f4"}, "[heads, B, W, dh]");
    if (shape_from.empty())
      throw InvalidProblem(fmt::format("{}: no codes.npy or probs.npy next to it", dir));
    if (!W) W = cb.a.shape[2];
    if (!dh) dh = cb.a.shape[3];
    expect_shape(cb, {{"heads", h}, {"B", B}, {"W", W}, {"dh", dh}},
                 shape_from + (f & kInputProbs ? "" : " and codebooks.npy"));
    fixed_by_shape("codewords", W, cb.path);
    in.codebooks = floats(cb);
    if (f & kInputProjections) {
      const auto base = std::filesystem::path(dir);
      int present = 0;
      for (const char* file : {"wq.npy", "wk.npy", "wv.npy"}) present += std::filesystem::exists(base / file);
      if (present != 0 && present != 3)
        throw InvalidProblem(fmt::format("{}: give all of wq.npy, wk.npy and wv.npy or none of them "
                                         "(found {} of 3)",
                                         dir, present));
      fixed_by_shape("projections", present == 3 ? 1 : 0, "the wq/wk/wv files");
      if (present == 3) {
        std::vector<float>* dst[3] = {&in.wq, &in.wk, &in.wv};
        const char* files[3] = {"wq.npy", "wk.npy", "wv.npy"};
        for (int m = 0; m < 3; ++m) {
          Loaded w = load(dir, files[m], 4, {"<f4"}, "[heads, B, dh, dh]");
          expect_shape(w, {{"heads", h}, {"B", B}, {"dh", dh}, {"dh", dh}}, "codebooks.npy");
          *dst[m] = floats(w);
        }
      }
    }
  }
  if (f & kInputConv) {
    Loaded cv = load(dir, "conv.npy", 3, {"<f4"}, "[heads, L, dh]");
    if (shape_from.empty())
      throw InvalidProblem(fmt::format("{}: conv.npy needs q.npy, k.npy, v.npy next to it", dir));
    const int64_t L = cv.a.shape[1];
    expect_shape(cv, {{"heads", h}, {"L", L}, {"dh", dh}}, shape_from);
    fixed_by_shape("conv_width", L, cv.path);
    in.conv = floats(cv);
  }
  if (shape_from.empty())
    throw InvalidProblem(fmt::format("{}: {} reads no tensors this tool knows how to load",
                                     info.name, dir));
  p.batch = b;
  p.heads = h;
  p.seq_len = n;
  p.head_dim = dh;
  p.causal = causal ? *causal : info.has_causal;
  // the kernel's own checks: forms, sizes, code ranges, probabilities
  k.validate(p);
  try {
    k.validate_inputs(p, in.view());
  } catch (const InvalidProblem& e) {
    throw InvalidProblem(fmt::format("{}: {}", dir, e.what()));
  }
  return r;
}

EvalResult run_eval(const EvalOptions& o) {
  const Kernel& k = Registry::instance().get(o.kernel, o.backend);
  EvalInputs ei = load_eval_inputs(k, o.inputs_dir, o.causal, o.params);
  const Problem& p = ei.problem;
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
    throw InvalidProblem(fmt::format("{}: {} of {} output elements are NaN or infinite (inputs out "
                                     "of a sensible range?)",
                                     k.info().name, bad, r.output.size()));
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
