#include "export.hpp"

#include <filesystem>
#include <fstream>
#include <span>
#include <tuple>
#include <variant>

#include <fmt/format.h>

#include "attnbench/reference.hpp"
#include "errors.hpp"
#include "file_io.hpp"
#include "inputs.hpp"
#include "npy.hpp"

namespace attnbench {

namespace {

std::vector<std::string> input_names(unsigned flags) {
  std::vector<std::string> v;
  if (flags & kInputQKV) v.insert(v.end(), {"q", "k", "v"});
  if (flags & kInputCodes) v.push_back("codes");
  if (flags & kInputProbs) v.push_back("probs");
  if (flags & kInputCodebooks) v.push_back("codebooks");
  if (flags & kInputProjections) v.insert(v.end(), {"wq", "wk", "wv"});
  if (flags & kInputConv) v.push_back("conv");
  return v;
}

ojson point_json(const Point& pt) {
  const KernelInfo& info = pt.kernel->info();
  return {{"kernel", info.name},
          {"backend", backend_name(pt.backend)},
          {"family", info.family},
          {"is_vanilla", info.is_vanilla},
          {"inputs", input_names(info.inputs)},
          {"group", pt.group},
          {"axes", axes_json(pt.problem)}};
}

// One input tensor as eval reads it (eval.hpp, problem.hpp for the layouts); the data's
// length travels with it, so npy::write checks it against the shape.
struct NpyTensor {
  std::string file;
  std::vector<int64_t> shape;
  std::variant<std::span<const float>, std::span<const int32_t>> data;
};

std::vector<NpyTensor> input_tensors(const Problem& p, const HostInputs& in) {
  auto param_or_0 = [&](const char* name) { return p.has_param(name) ? p.int_param(name) : 0; };
  const int64_t b = p.batch, h = p.heads, n = p.seq_len, dh = p.head_dim,
                B = param_or_0("codebooks"), W = param_or_0("codewords");
  const std::vector<int64_t> seq = {b, h, n, dh}, proj = {h, B, dh, dh};
  const std::tuple<const char*, const std::vector<float>*, std::vector<int64_t>> floats[] = {
      {"q.npy", &in.q, seq},
      {"k.npy", &in.k, seq},
      {"v.npy", &in.v, seq},
      {"codebooks.npy", &in.codebooks, {h, B, W, dh}},
      {"wq.npy", &in.wq, proj},
      {"wk.npy", &in.wk, proj},
      {"wv.npy", &in.wv, proj},
      {"probs.npy", &in.probs, {b, h, n, B, W}},
      {"conv.npy", &in.conv, {h, param_or_0("conv_width"), dh}},
  };
  std::vector<NpyTensor> v;
  for (const auto& [file, data, shape] : floats)
    if (!data->empty()) v.push_back({file, shape, std::span<const float>(*data)});
  if (!in.codes.empty())
    v.push_back({"codes.npy", {b, h, n, B}, std::span<const int32_t>(in.codes)});
  return v;
}

// The rows correctness_rows(p) checks, as int64 [rows, 2] of (sequence, position).
std::vector<int64_t> row_pairs(const std::vector<RowId>& rows) {
  std::vector<int64_t> v;
  v.reserve(2 * rows.size());
  for (const RowId& r : rows) v.insert(v.end(), {r.seq, r.row});
  return v;
}

}  // namespace

ojson sweep_plan_json(const SweepSpec& s, const RunOptions& o, const std::vector<Point>& points,
                      const Environment& env) {
  ojson timing = ojson::object();
  for (const auto& [b, t] : o.timing) timing[backend_name(b)] = to_json(t);
  ojson pts = ojson::array();
  for (const Point& pt : points) pts.push_back(point_json(pt));
  return {{"name", s.name},
          {"vanilla_kernel", s.vanilla_kernel},
          {"timing", timing},
          {"max_point_seconds", o.max_point_seconds},
          {"threads", o.threads},
          {"environment", to_json(env)},
          {"points", pts}};
}

Point export_point(const std::string& kernel, const std::vector<std::string>& axes) {
  // a one-point sweep, so the point is built exactly as a sweep builds it
  SweepSpec s = builtin_sweep();
  override_kernels(s, {kernel});
  for (const auto& text : axes) {
    const auto [name, values] = parse_axis_override(text);
    if (values.size() != 1)
      fail_at("--axis " + text, "export takes one value per axis");
    override_axis(s, name, values);
  }
  const std::vector<Point> points = expand(s, {Backend::cpu});
  if (points.size() != 1)
    fail_at("export", fmt::format("{} has no cpu point at these axes", kernel));
  return points.front();
}

namespace {

// The folder export writes into: an existing folder, or created with its parents.
void make_out_folder(const std::string& dir) {
  const std::string where = "--out " + dir;
  if (dir.empty()) fail_at("--out", "an empty path");
  std::error_code ec;
  const auto st = std::filesystem::status(dir, ec);
  if (std::filesystem::exists(st) && !std::filesystem::is_directory(st))
    fail_at(where, "is not a folder (export writes several files into a folder)");
  std::filesystem::create_directories(dir, ec);
  if (ec) fail_at(where, fmt::format("cannot create the folder ({})", ec.message()));
}

// The inputs and the reference export holds in memory must fit 80 % of it, before either is
// allocated (a sweep would skip such a point).
void check_export_fits(const Point& pt) {
  const Problem& p = pt.problem;
  const double bytes = double(input_sizes(p, pt.kernel->info().inputs).bytes()) +
                       double(correctness_rows(p).size()) * double(p.head_dim) * sizeof(double);
  const double limit = 0.8 * double(backend_memory_bytes(Backend::cpu));
  if (bytes > limit)
    fail_at("export", fmt::format("{} needs {} for its inputs, more than 80 % of memory ({})",
                                  pt.describe(), format_bytes(bytes), format_bytes(limit)));
}

}  // namespace

std::vector<std::string> export_point_files(const Point& pt, const std::string& dir) {
  const Kernel& k = *pt.kernel;
  const Problem& p = pt.problem;
  k.validate(p);
  check_export_fits(pt);
  make_out_folder(dir);
  const auto path = [&](const std::string& f) { return (std::filesystem::path(dir) / f).string(); };
  std::vector<std::string> files;

  const HostInputs in = make_inputs(p, k.info().inputs, p.seed);
  for (const NpyTensor& t : input_tensors(p, in)) {
    std::visit([&](auto data) { npy::write(path(t.file), t.shape, data); }, t.data);
    files.push_back(t.file);
  }
  const std::vector<RowId> rows = correctness_rows(p);
  const auto nrows = int64_t(rows.size());
  std::vector<double> reference(rows.size() * size_t(p.head_dim));
  k.reference_rows(p, in.view(), rows, reference.data());
  npy::write(path("rows.npy"), {nrows, 2}, row_pairs(rows));
  npy::write(path("reference.npy"), {nrows, p.head_dim}, reference);
  files.insert(files.end(), {"rows.npy", "reference.npy"});

  const ojson point = {{"kernel", k.info().name},
                       {"family", k.info().family},
                       {"axes", axes_json(p)},
                       {"flops", k.flops(p)},
                       {"min_bytes", k.min_bytes(p)},
                       {"inputs_bytes", input_sizes(p, k.info().inputs).bytes()},
                       {"outputs_bytes", output_bytes(p)},
                       {"seed", p.seed},
                       {"files", files}};
  file_io::write_atomic(path("point.json"), point.dump(2) + "\n");
  files.push_back("point.json");
  return files;
}

int run_export_command(const std::string& kernel, const std::vector<std::string>& axes,
                       const std::string& dir) {
  const Point pt = export_point(kernel, axes);
  const auto files = export_point_files(pt, dir);
  fmt::print("{}: wrote {} files to {}\n", pt.describe(), files.size(), dir);
  return 0;
}

}  // namespace attnbench
