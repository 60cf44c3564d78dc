// results/schema.json is the one source of the results schema: every file the harness writes
// validates against it, the validator rejects what the schema forbids, the committed reference
// and baseline files validate, and results/README.md documents exactly the fields it names.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "json_schema.hpp"
#include "results.hpp"
#include "sweep.hpp"
#include "sysinfo.hpp"

namespace attnbench {
namespace {

namespace fs = std::filesystem;

ojson read_json(const fs::path& p) {
  std::ifstream in(p);
  return ojson::parse(in);
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

// A small real sweep: every kernel at a tiny point, both forms, written as the tool writes it.
ResultsFile small_sweep() {
  SweepSpec s = builtin_sweep();
  override_axis(s, "seq_len", {7});
  override_axis(s, "head_dim", {8});
  override_axis(s, "causal", {1, 0});
  override_axis(s, "precision", {0, 2});
  RunOptions o;
  o.max_point_seconds = 0;
  for (auto& [b, t] : o.timing) t = Timing{0, 2, 0.0, 2};
  ResultsFile f;
  f.preset = "schema-test";
  f.environment = collect_environment(1, "test");
  run_sweep(expand(s, {Backend::cpu}), o, f, "");
  return f;
}

std::set<std::string> schema_fields(const ojson& object_schema) {
  std::set<std::string> names;
  for (auto it = object_schema.at("properties").begin(); it != object_schema.at("properties").end(); ++it)
    names.insert(it.key());
  return names;
}

// The backticked names in the first column of results/README.md's field tables.
std::set<std::string> readme_fields() {
  std::ifstream in(std::string(ATTNBENCH_SOURCE_DIR) + "/results/README.md");
  std::set<std::string> names;
  const std::regex cell(R"(^\| ([^|]*) \|)"), name(R"(`([a-z_0-9]+)`)");
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (!std::regex_search(line, m, cell)) continue;
    const std::string first = m[1];
    for (std::sregex_iterator it(first.begin(), first.end(), name), end; it != end; ++it)
      names.insert((*it)[1]);
  }
  return names;
}

}  // namespace

TEST_CASE("a sweep's results file validates against results/schema.json", "[results][schema]") {
  const ResultsFile f = small_sweep();
  REQUIRE(f.rows.size() > 20);
  const ojson j = to_json(f);
  const auto errors = schema_errors(results_schema(), j);
  INFO(joined(errors));
  CHECK(errors.empty());
  // and the skipped rows (no bf16 on the cpu) are in it too
  CHECK(std::any_of(f.rows.begin(), f.rows.end(), [](const Row& r) { return r.status == "skipped"; }));
}

TEST_CASE("the schema validator rejects what the schema forbids", "[results][schema]") {
  const ojson good = to_json(small_sweep());
  REQUIRE(schema_errors(results_schema(), good).empty());
  auto first_error = [&](auto mutate) {
    ojson j = good;
    mutate(j);
    const auto e = schema_errors(results_schema(), j);
    return e.empty() ? std::string("no error") : e.front();
  };
  CHECK_THAT(first_error([](ojson& j) { j["rows"][0].erase("kernel"); }),
             Catch::Contains("/rows/0") && Catch::Contains("missing required field 'kernel'"));
  CHECK_THAT(first_error([](ojson& j) { j["rows"][1]["status"] = "fine"; }),
             Catch::Contains("/rows/1/status") && Catch::Contains("not one of"));
  CHECK_THAT(first_error([](ojson& j) { j["rows"][0]["peak_bytes"] = -5; }),
             Catch::Contains("below the minimum"));
  CHECK_THAT(first_error([](ojson& j) { j["rows"][0]["flops"] = "many"; }),
             Catch::Contains("/rows/0/flops") && Catch::Contains("not of type"));
  CHECK_THAT(first_error([](ojson& j) { j["rows"][0]["colour"] = 1; }),
             Catch::Contains("unknown field 'colour'"));
  CHECK_THAT(first_error([](ojson& j) { j["rows"][0]["axes"]["precision"] = "fp8"; }),
             Catch::Contains("/rows/0/axes/precision"));
  CHECK_THAT(first_error([](ojson& j) { j["environment"]["gpu"] = 3; }),
             Catch::Contains("oneOf"));
  CHECK_THROWS_AS(schema_errors(ojson{{"pattern", "x"}}, ojson(1)), std::invalid_argument);
}

TEST_CASE("the committed reference and baseline files validate", "[results][schema]") {
  int files = 0;
  for (const char* dir : {"results/reference", "results/baselines"})
    for (const auto& e : fs::recursive_directory_iterator(std::string(ATTNBENCH_SOURCE_DIR) + "/" + dir)) {
      if (e.path().extension() != ".json") continue;
      const ojson j = read_json(e.path());
      if (!j.contains("rows")) continue;  // not a results file (e.g. a gate's settings)
      ++files;
      const auto errors = schema_errors(results_schema(), j);
      INFO(e.path().string() << "\n" << joined(errors));
      CHECK(errors.empty());
    }
  CHECK(files >= 4);
}

TEST_CASE("results/README.md documents exactly the schema's fields", "[results][schema]") {
  const ojson& s = results_schema();
  std::set<std::string> in_schema = schema_fields(s);
  for (const char* def : {"row", "environment", "gpu"})
    for (const auto& n : schema_fields(s.at("$defs").at(def))) in_schema.insert(n);
  const std::set<std::string> documented = readme_fields();
  for (const auto& n : in_schema) {
    INFO("in results/schema.json but not documented in results/README.md: " << n);
    CHECK(documented.count(n));
  }
  for (const auto& n : documented) {
    INFO("documented in results/README.md but not in results/schema.json: " << n);
    CHECK(in_schema.count(n));
  }
}

}  // namespace attnbench
