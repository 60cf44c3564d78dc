// The results schema (results/README.md): a written file reads back with every field, the
// JSON carries every documented key, and broken files are rejected with the file named.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "results.hpp"

using namespace attnbench;

namespace {
std::string temp_path(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / "attnbench_test_results";
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

ResultsFile full_file() {
  ResultsFile f;
  f.preset = "unit";
  f.vanilla_kernel = "vanilla_flash";
  Environment& e = f.environment;
  e.host = "host-a";
  e.cpu_model = "Test CPU 9000";
  e.cpu_cores = 12;
  e.threads_used = 6;
  e.memory_bytes = 123456789012;
  GpuInfo gpu;
  gpu.name = "Test GPU";
  gpu.memory_bytes = 80000000000;
  gpu.driver_version = "550.1";
  gpu.runtime_version = "12.4";
  gpu.compute_capability = "9.0";
  e.gpu = gpu;
  e.compiler = "GNU 12.2.0";
  e.cxx_flags = "-O3";
  e.build_type = "Release";
  e.blas = "libopenblas.so";
  e.cuda_compiler = "nvcc 12.4";
  e.git_commit = "0123456789abcdef";
  e.git_dirty = true;
  e.date = "2026-01-02T03:04:05Z";
  e.command_line = "attnbench sweep --preset unit";
  e.calibration = ojson{{"sgemm_gflops", 123.5}};
  e.resumes.push_back({"2026-01-03T00:00:00Z", "attnbench sweep --resume x.json", ""});
  e.omp_wait_policy = "passive";
  e.load_average = 0.5;
  e.cuda_cache_policy = "cold";
  f.sweep = ojson{{"name", "unit"}};

  Row r;
  r.kernel = "lisa_base";
  r.backend = Backend::cuda;
  r.problem.batch = 2;
  r.problem.heads = 3;
  r.problem.seq_len = 4096;
  r.problem.head_dim = 32;
  r.problem.causal = false;
  r.problem.set_param("codebooks", 4);
  r.problem.set_param("codewords", 64);
  r.problem.set_param("decay", 0.25).set_param("projections", 0);
  r.problem.precision = Precision::bf16;
  r.family = "lisa";
  r.status = "ok";
  TimeStats t;
  t.samples = {1.5, 1.25, 2.0};
  static_cast<stats::Summary&>(t) = stats::summarize(t.samples);
  r.time = t;
  r.warmup_runs = 2;
  r.timing_method = "cuda_graph";
  r.cache = "cold";
  r.launch_overhead_ms = 0.004;
  r.noise = NoiseFigures{0.02, 0.03, 4, 0.5, 0.75, 1};
  r.noisy = true;
  r.warnings = {"noisy: rsd 12 % > 5 %"};
  r.memory = {1000, 2000, 300, 400, 50};
  r.measured_device_bytes = 4096;
  r.correctness_tolerance = 0.0156;
  r.measured_peak_bytes = 3800;
  r.measured_peak_source = "cuda_pool";
  r.memory_agrees = true;
  r.memory_note = "note";
  r.correctness_rel_l2 = 1.5e-7;
  r.correctness_rows = 64;
  r.approx_rel_l2 = 0.25;
  r.approx_cosine = 0.97;
  r.approx_rows = 256;
  r.flops = 1.0e9;
  r.gflops_per_s = 666.5;
  r.min_bytes = 3000;
  r.roofline_bound = "compute";
  r.floor_ms = 1.25;
  r.pct_of_peak = 62.5;
  r.vs_vanilla = VsVanilla{3.5, 7.25};
  r.point_seconds = 1.75;
  r.check_seconds = 0.5;
  r.repro = "attnbench sweep --kernels lisa_base";
  f.rows.push_back(r);

  Row s;
  s.kernel = "vanilla_materialized";
  s.backend = Backend::cpu;
  s.problem.seq_len = 65536;
  s.status = "skipped";
  s.reason = "needs 17.2 GB, limit 10.0 GB";
  s.memory = {10, 20, 0, 30};
  f.rows.push_back(s);
  return f;
}
}  // namespace

TEST_CASE("a results file reads back with every field", "[harness][results]") {
  const ResultsFile f = full_file();
  const std::string path = temp_path("round_trip.json");
  write_results(path, f);
  const ResultsFile g = read_results(path);

  CHECK(g.schema_version == kSchemaVersion);
  CHECK(g.tool == "attnbench");
  CHECK(g.preset == "unit");
  CHECK(g.vanilla_kernel == "vanilla_flash");
  const Environment &a = f.environment, &b = g.environment;
  CHECK(b.host == a.host);
  CHECK(b.cpu_model == a.cpu_model);
  CHECK(b.cpu_cores == a.cpu_cores);
  CHECK(b.threads_used == a.threads_used);
  CHECK(b.memory_bytes == a.memory_bytes);
  REQUIRE(b.gpu);
  CHECK(b.gpu->name == "Test GPU");
  CHECK(b.gpu->memory_bytes == 80000000000);
  CHECK(b.gpu->driver_version == "550.1");
  CHECK(b.gpu->runtime_version == "12.4");
  CHECK(b.gpu->compute_capability == "9.0");
  CHECK(b.compiler == a.compiler);
  CHECK(b.cxx_flags == a.cxx_flags);
  CHECK(b.build_type == a.build_type);
  CHECK(b.blas == a.blas);
  CHECK(b.cuda_compiler == a.cuda_compiler);
  CHECK(b.git_commit == a.git_commit);
  CHECK(b.git_dirty == a.git_dirty);
  CHECK(b.date == a.date);
  CHECK(b.command_line == a.command_line);
  CHECK(b.calibration["sgemm_gflops"].get<double>() == 123.5);
  REQUIRE(b.resumes.size() == 1);
  CHECK(b.resumes[0].command_line == a.resumes[0].command_line);

  REQUIRE(g.rows.size() == 2);
  const Row &x = f.rows[0], &y = g.rows[0];
  CHECK(y.kernel == x.kernel);
  CHECK(y.backend == x.backend);
  CHECK(y.problem.batch == 2);
  CHECK(y.problem.heads == 3);
  CHECK(y.problem.seq_len == 4096);
  CHECK(y.problem.head_dim == 32);
  CHECK_FALSE(y.problem.causal);
  CHECK(y.problem.int_param("codebooks") == 4);
  CHECK(y.problem.int_param("codewords") == 64);
  CHECK(y.problem.real_param("decay") == 0.25);
  CHECK(y.problem.params == x.problem.params);
  CHECK(y.problem.precision == Precision::bf16);
  CHECK(y.family == "lisa");
  CHECK(row_key(y) == row_key(x));
  CHECK(y.status == "ok");
  CHECK(y.reason.empty());
  REQUIRE(y.time);
  CHECK(y.time->samples == x.time->samples);
  CHECK(y.time->median == x.time->median);
  CHECK(y.time->min == x.time->min);
  CHECK(y.time->max == x.time->max);
  CHECK(y.time->p25 == x.time->p25);
  CHECK(y.time->p75 == x.time->p75);
  CHECK(y.time->mean == x.time->mean);
  CHECK(y.time->count == 3);
  CHECK(y.warmup_runs == 2);
  CHECK(y.memory.inputs_bytes == 1000);
  CHECK(y.memory.outputs_bytes == 2000);
  CHECK(y.memory.prepared_bytes == 300);
  CHECK(y.memory.scratch_bytes == 400);
  CHECK(y.measured_peak_bytes == x.measured_peak_bytes);
  CHECK(y.measured_peak_source == "cuda_pool");
  CHECK(y.memory_agrees == x.memory_agrees);
  CHECK(y.memory_note == "note");
  CHECK(y.correctness_rel_l2 == x.correctness_rel_l2);
  CHECK(y.correctness_rows == 64);
  CHECK(y.approx_rel_l2 == x.approx_rel_l2);
  CHECK(y.approx_cosine == x.approx_cosine);
  CHECK(y.approx_rows == 256);
  CHECK(y.flops == x.flops);
  CHECK(y.gflops_per_s == x.gflops_per_s);
  CHECK(y.min_bytes == x.min_bytes);
  CHECK(y.roofline_bound == x.roofline_bound);
  CHECK(y.floor_ms == x.floor_ms);
  CHECK(y.pct_of_peak == x.pct_of_peak);
  REQUIRE(y.vs_vanilla);
  CHECK(y.vs_vanilla->speedup == 3.5);
  CHECK(y.vs_vanilla->memory_ratio == 7.25);
  CHECK(y.point_seconds == 1.75);
  CHECK(y.check_seconds == 0.5);
  CHECK(y.repro == x.repro);

  const Row& z = g.rows[1];
  CHECK(z.status == "skipped");
  CHECK(z.reason == "needs 17.2 GB, limit 10.0 GB");
  CHECK_FALSE(z.time);
  CHECK_FALSE(z.measured_peak_bytes);
  CHECK_FALSE(z.memory_agrees);
  CHECK_FALSE(z.correctness_rel_l2);
  CHECK_FALSE(z.vs_vanilla);
  CHECK(z.problem.params.empty());
}

TEST_CASE("the JSON carries every documented field", "[harness][results]") {
  ResultsFile f = full_file();
  f.rows[0].approx_cosine = std::nan("");  // numbers that do not exist are null
  const ojson j = to_json(f);
  for (const char* k : {"schema_version", "tool", "preset", "vanilla_kernel", "environment", "rows"})
    CHECK(j.contains(k));
  for (const char* k : {"host", "cpu_model", "cpu_cores", "threads_used", "memory_bytes", "gpu",
                        "compiler", "cxx_flags", "build_type", "blas", "cuda_compiler",
                        "git_commit", "git_dirty", "date", "command_line", "calibration"})
    CHECK(j["environment"].contains(k));
  const ojson& r = j["rows"][0];
  for (const char* k : {"kernel", "backend", "axes", "status", "reason", "time_ms", "inputs_bytes",
                        "outputs_bytes", "prepared_bytes", "scratch_bytes", "workspace_bytes",
                        "peak_bytes", "measured_peak_bytes", "memory_agrees", "correctness_rel_l2",
                        "correctness_rows", "approx_rel_l2", "approx_cosine", "flops",
                        "gflops_per_s", "min_bytes", "roofline_bound", "floor_ms", "pct_of_peak", "vs_vanilla", "repro"})
    CHECK(r.contains(k));
  for (const char* k : {"median", "min", "max", "p25", "p75", "mean", "count", "samples"})
    CHECK(r["time_ms"].contains(k));
  CHECK(r["workspace_bytes"].get<size_t>() == 700);
  CHECK(r["peak_bytes"].get<size_t>() == 3750);
  CHECK(r["axes"]["causal"].is_boolean());
  CHECK(r["axes"]["codewords"].is_number_integer());
  CHECK_FALSE(r["axes"].contains("window"));  // only the parameters the kernel reads
  // NaN is written as null
  CHECK(ojson::parse(j.dump()).at("rows")[0]["approx_cosine"].is_null());
}

TEST_CASE("broken results files are rejected naming the file and the row", "[harness][results]") {
  const std::string path = temp_path("broken.json");
  auto write = [&](const std::string& text) {
    std::ofstream(path) << text;
  };
  write("{ not json");
  CHECK_THROWS_WITH(read_results(path), Catch::Contains(path) && Catch::Contains("not valid JSON"));
  write(R"({"schema_version": 99, "environment": {}, "rows": []})");
  CHECK_THROWS_WITH(read_results(path), Catch::Contains("schema_version 99"));
  ojson j = to_json(full_file());
  j["rows"][1].erase("kernel");
  write(j.dump());
  CHECK_THROWS_WITH(read_results(path), Catch::Contains("row 1") && Catch::Contains("'kernel'"));
  j = to_json(full_file());
  j["rows"][0]["axes"]["bogus"] = 3;
  write(j.dump());
  CHECK_THROWS_WITH(read_results(path), Catch::Contains("row 0") && Catch::Contains("bogus"));
  CHECK_THROWS_WITH(read_results(temp_path("missing.json")), Catch::Contains("cannot open"));
}

TEST_CASE("vs_vanilla pairs rows at the same shape and backend", "[harness][results]") {
  ResultsFile f;
  auto row = [](const std::string& k, int64_t n, double ms, size_t peak) {
    Row r;
    r.kernel = k;
    r.problem.seq_len = n;
    TimeStats t;
    t.samples = {ms};
    static_cast<stats::Summary&>(t) = stats::summarize(t.samples);
    r.time = t;
    r.memory.scratch_bytes = peak;
    return r;
  };
  f.rows = {row("lisa_base", 1024, 1.0, 100), row("vanilla_materialized", 1024, 4.0, 800),
            row("lisa_base", 2048, 1.0, 100)};
  f.rows[0].problem.set_param("codewords", 128);
  fill_vs_vanilla(f);  // the vanilla row comes after: filled all the same
  REQUIRE(f.rows[0].vs_vanilla);
  CHECK(f.rows[0].vs_vanilla->speedup == 4.0);
  CHECK(f.rows[0].vs_vanilla->memory_ratio == 8.0);
  CHECK(f.rows[1].vs_vanilla->speedup == 1.0);
  CHECK_FALSE(f.rows[2].vs_vanilla);  // no vanilla at N = 2048
}
