// `attnbench export` and `sweep --dry-run --json` (harness/export.hpp), what the PyTorch peers
// read: the files and their shapes, inputs that eval reads back unchanged, and a float64
// reference that the kernel's own output matches on the checked rows.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "eval.hpp"
#include "export.hpp"
#include "kernel_testing.hpp"
#include "npy.hpp"
#include "sysinfo.hpp"
#include "scratch_files.hpp"

using namespace attnbench;

namespace {

using attnbench::testing::slurp;

namespace fs = std::filesystem;

fs::path fresh_dir(const std::string& name) {
  const auto d = fs::temp_directory_path() / "attnbench_test_export" / name;
  fs::remove_all(d);
  return d;
}

// reference.npy is float64, which npy::read refuses: check its header, take the data from
// the end of the file.
std::vector<double> read_reference(const fs::path& p, int64_t rows, int64_t dh) {
  const std::string bytes = slurp(p);
  REQUIRE(bytes.find("'descr': '<f8'") != std::string::npos);
  REQUIRE(bytes.find(npy::shape_str({rows, dh})) != std::string::npos);
  std::vector<double> v(size_t(rows * dh));
  REQUIRE(bytes.size() >= v.size() * sizeof(double));
  std::memcpy(v.data(), bytes.data() + bytes.size() - v.size() * sizeof(double),
              v.size() * sizeof(double));
  return v;
}

struct Case {
  const char* kernel;
  std::vector<std::string> axes;
};

}  // namespace

TEST_CASE("export writes eval's inputs and a float64 reference the kernel agrees with",
          "[harness][export]") {
  const Case cases[] = {
      {"vanilla_materialized", {"batch=1", "heads=2", "seq_len=64", "head_dim=16", "causal=true"}},
      {"lisa_base", {"heads=2", "seq_len=48", "head_dim=16", "causal=false", "codebooks=3",
                     "codewords=8", "projections=1"}},
      {"lisa_soft", {"heads=1", "seq_len=40", "head_dim=8", "codebooks=2", "codewords=4"}},
      {"linear_elu", {"batch=2", "heads=2", "seq_len=32", "head_dim=16", "causal=true"}},
  };
  for (const Case& c : cases) {
    SECTION(c.kernel) {
      const Point pt = export_point(c.kernel, c.axes);
      const Problem& p = pt.problem;
      const Kernel& k = *pt.kernel;
      const fs::path dir = fresh_dir(c.kernel);
      const auto files = export_point_files(pt, dir.string());
      for (const auto& f : files) CHECK(fs::exists(dir / f));

      // eval reads the inputs back: same layout, the seeded values of make_inputs
      const EvalInputs loaded = load_eval_inputs(k, dir.string(), p.causal, {});
      const HostInputs want = make_inputs(p, k.info().inputs, p.seed);
      CHECK(loaded.problem.seq_len == p.seq_len);
      CHECK(loaded.problem.head_dim == p.head_dim);
      CHECK(loaded.inputs.q == want.q);
      CHECK(loaded.inputs.codes == want.codes);
      CHECK(loaded.inputs.codebooks == want.codebooks);
      CHECK(loaded.inputs.wq == want.wq);
      CHECK(loaded.inputs.probs == want.probs);

      // rows.npy: correctness_rows(p) as (sequence, position)
      const auto rows = correctness_rows(p);
      const npy::Array r = npy::read((dir / "rows.npy").string());
      CHECK(r.descr == "<i8");
      REQUIRE(r.shape == std::vector<int64_t>{int64_t(rows.size()), 2});
      std::vector<int64_t> pairs(r.elems());
      std::memcpy(pairs.data(), r.data.data(), r.data.size());
      for (size_t i = 0; i < rows.size(); ++i) {
        CHECK(pairs[2 * i] == rows[i].seq);
        CHECK(pairs[2 * i + 1] == rows[i].row);
      }

      // reference.npy agrees with the kernel's float32 output at float32 rounding
      const auto ref = read_reference(dir / "reference.npy", int64_t(rows.size()), p.head_dim);
      const testing::RunResult out = testing::run_guarded(k, p, loaded.inputs);
      CHECK(rel_l2_rows(p, out.out.data(), rows, ref.data()) < 1e-5);

      const ojson point = ojson::parse(slurp(dir / "point.json"));
      CHECK(point["kernel"] == c.kernel);
      CHECK(point["flops"].get<double>() == k.flops(p));
      CHECK(point["axes"] == axes_json(p));
      CHECK(point["inputs_bytes"].get<size_t>() == input_sizes(p, k.info().inputs).bytes());
    }
  }
}

TEST_CASE("export refuses unknown kernels and several values of an axis", "[harness][export]") {
  CHECK_THROWS_WITH(export_point("nope", {}), Catch::Contains("unknown kernel 'nope'"));
  CHECK_THROWS_WITH(export_point("vanilla_flash", {"seq_len=64,128"}),
                    Catch::Contains("one value per axis"));
  CHECK_THROWS_WITH(export_point("vanilla_flash", {"colour=3"}), Catch::Contains("unknown axis"));
}

TEST_CASE("sweep --dry-run --json: every expanded point with its axes, and the timing",
          "[harness][export]") {
  SweepSpec s = load_sweep_file(preset_path("smoke"));
  RunOptions o;
  o.timing = s.timing;
  o.threads = 1;
  const auto points = expand(s, {Backend::cpu});
  const ojson plan = sweep_plan_json(s, o, points, collect_environment(1, "test"));
  REQUIRE(plan["points"].size() == points.size());
  CHECK(plan["name"] == "smoke");
  CHECK(plan["timing"]["cpu"]["min_reps"] == s.timing[Backend::cpu].min_reps);
  CHECK(plan["environment"]["host"].is_string());
  for (size_t i = 0; i < points.size(); ++i) {
    const ojson& j = plan["points"][i];
    CHECK(j["kernel"] == points[i].kernel->info().name);
    CHECK(j["backend"] == "cpu");
    CHECK(j["family"] == points[i].kernel->info().family);
    CHECK(j["axes"] == axes_json(points[i].problem));
  }
}
