// Shards and merge: `attnbench sweep --shard I/N` runs a deterministic part of the expanded
// points, every point in exactly one shard, and `attnbench merge` joins the shards' files into
// the points of the unsharded sweep; files of other sweeps, shards of other counts and
// conflicting rows are refused with one line, and --out is never overwritten.
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <set>
#include <string>

#include <fmt/format.h>

#include "merge.hpp"
#include "sweep_command.hpp"

using namespace attnbench;
namespace fs = std::filesystem;

namespace {

std::string temp_path(const std::string& name) {
  const auto dir = fs::temp_directory_path() / "attnbench_test_shards";
  fs::create_directories(dir);
  return (dir / name).string();
}

// A tiny sweep of three kernels, two lengths and both forms.
SweepSpec tiny_spec() {
  return parse_sweep(ojson::parse(R"({
    "name": "tiny", "backends": ["cpu"], "max_point_seconds": 0,
    "kernels": ["vanilla_materialized", "lisa_mini", "performer"],
    "timing": {"warmup": 0, "min_reps": 1, "max_reps": 2, "min_time_s": 0},
    "axes": {"seq_len": [32, 64], "head_dim": [8], "causal": [true, false]}})"),
                     "tiny.json");
}

// The results file of one shard of the tiny sweep, as `attnbench sweep --shard` starts it.
ResultsFile run_shard(const Shard& shard) {
  const SweepSpec spec = tiny_spec();
  const auto backends = resolve_backends(spec.backends);
  const RunOptions o = run_options(SweepArgs{}, spec, 1);
  ResultsFile f;
  start_results_file(f, SweepArgs{}, expanded_spec(spec, backends, o), shard, 1, "test");
  run_sweep(points_to_run(spec, backends, shard), o, f, "");
  return f;
}

std::multiset<std::string> keys_of(const ResultsFile& f) {
  std::multiset<std::string> keys;
  for (const Row& r : f.rows) keys.insert(row_key(r));
  return keys;
}

std::string merge_error(const std::vector<ResultsFile>& files) {
  std::vector<std::string> names;
  for (size_t i = 0; i < files.size(); ++i) names.push_back(fmt::format("f{}.json", i));
  try {
    merge_results(files, names, "test");
  } catch (const InvalidProblem& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("every point is in exactly one shard, ladders whole, order kept", "[shards]") {
  const auto points = expand(load_sweep_file(preset_path("default")), {Backend::cpu});
  REQUIRE(points.size() > 50);
  for (int count : {1, 2, 3, 7}) {
    INFO("shards: " << count);
    std::map<std::string, int> shard_of;  // point -> shard
    std::map<std::string, std::set<int>> ladder_shards;
    for (int i = 1; i <= count; ++i) {
      const auto mine = shard_points(points, {i, count});
      CHECK(mine.size() == shard_points(points, {i, count}).size());  // deterministic
      size_t at = 0;  // a shard's points are the expansion's, in its order
      for (const Point& p : mine) {
        while (at < points.size() && points[at].key() != p.key()) ++at;
        CHECK(at < points.size());
        CHECK(shard_of.emplace(p.key(), i).second);
        Problem ladder = p.problem;
        ladder.seq_len = 0;
        ladder_shards[point_key(p.kernel->info().name, p.backend, ladder)].insert(i);
      }
      if (count <= 3) CHECK_FALSE(mine.empty());
    }
    CHECK(shard_of.size() == points.size());
    for (const auto& [ladder, shards] : ladder_shards) CHECK(shards.size() == 1);
  }
  CHECK(shard_points(points, {}).size() == points.size());
}

TEST_CASE("a shard is I/N with 1 <= I <= N and anything else is refused", "[shards]") {
  CHECK(parse_shard("2/4").index == 2);
  CHECK(parse_shard("2/4").count == 4);
  CHECK(parse_shard("2/4").text() == "2/4");
  CHECK(Shard{}.text().empty());
  for (const char* bad : {"0/3", "4/3", "a/b", "3", "1/0", "", "1/2/3", "-1/2", "1 /2"}) {
    INFO(bad);
    CHECK_THROWS_WITH(parse_shard(bad), Catch::StartsWith(std::string("--shard ") + bad + ":"));
  }
}

TEST_CASE("the recorded sweep reads back as the same sweep", "[shards]") {
  const SweepSpec spec = tiny_spec();
  const ojson j = to_json(spec);
  const SweepSpec back = parse_sweep(j, "recorded");
  CHECK(to_json(back) == j);
  std::vector<std::string> a, b;
  for (const Point& p : expand(spec, {Backend::cpu})) a.push_back(p.key());
  for (const Point& p : expand(back, {Backend::cpu})) b.push_back(p.key());
  CHECK(a == b);
  CHECK(j["groups"][0]["axes"]["causal"] == ojson::array({true, false}));
}

TEST_CASE("the shards of a sweep merged hold the points of the unsharded sweep", "[shards]") {
  const ResultsFile whole = run_shard({});
  REQUIRE(whole.rows.size() == 12);
  std::vector<ResultsFile> shards = {run_shard({1, 3}), run_shard({2, 3}), run_shard({3, 3})};
  for (const auto& s : shards) CHECK(s.sweep == whole.sweep);
  CHECK(shards[1].shard == "2/3");
  const MergeResult m = merge_results(shards, {"a.json", "b.json", "c.json"}, "attnbench merge");
  CHECK(keys_of(m.file) == keys_of(whole));
  CHECK(m.file.rows.size() == whole.rows.size());
  CHECK(m.file.shard.empty());
  CHECK(m.file.sweep == whole.sweep);
  CHECK(m.file.environment.resumes.back().command_line == "attnbench merge");
  CHECK_THAT(m.file.environment.resumes.back().change, Catch::Contains("b.json (shard 2/3"));
  // the ratios to vanilla are taken again over the merged rows
  for (const Row& r : m.file.rows)
    if (r.status == "ok") CHECK(r.vs_vanilla.has_value());

  // some of the shards: the file says which; a file twice: its rows once
  const MergeResult part = merge_results({shards[0], shards[2], shards[0]}, {"a", "c", "a2"}, "m");
  CHECK(part.file.shard == "1,3/3");
  CHECK(part.file.rows.size() == shards[0].rows.size() + shards[2].rows.size());
}

TEST_CASE("merge refuses other sweeps, other shard counts and conflicting rows", "[shards]") {
  const ResultsFile a = run_shard({1, 2});
  ResultsFile other = a;
  other.sweep["max_point_seconds"] = 5;
  CHECK(merge_error({a, other}) == "f1.json: not the sweep of f0.json ('max_point_seconds' differs)");
  ResultsFile unrecorded = a;
  unrecorded.sweep = nullptr;
  CHECK_THAT(merge_error({a, unrecorded}), Catch::StartsWith("f1.json: records no sweep"));
  ResultsFile thirds = a;
  thirds.shard = "2/3";
  CHECK(merge_error({a, thirds}) == "f1.json: shard 2/3 of another count than f0.json's shards (/2)");
  REQUIRE_FALSE(a.rows.empty());
  ResultsFile conflict = a;
  conflict.rows.back().correctness_rel_l2 = 0.5;
  const std::string err = merge_error({a, conflict});
  CHECK_THAT(err, Catch::StartsWith("f1.json: " + conflict.rows.back().kernel + " cpu ") &&
                      Catch::EndsWith("differs from its row in f0.json"));
  CHECK(err.find('\n') == std::string::npos);
  CHECK(merge_error({}) == "merge: no files to merge");
}

TEST_CASE("merge never overwrites --out", "[shards]") {
  const ResultsFile a = run_shard({1, 2}), b = run_shard({2, 2});
  const std::string in_a = temp_path("a.json"), in_b = temp_path("b.json"), out = temp_path("out.json");
  write_results(in_a, a);
  write_results(in_b, b);
  fs::remove(out);
  CHECK(run_merge_command({in_a, in_b}, out, "test") == 0);
  CHECK(read_results(out).rows.size() == a.rows.size() + b.rows.size());
  const auto size = fs::file_size(out);
  CHECK_THROWS_WITH(run_merge_command({in_a}, out, "test"), Catch::Contains("exists"));
  CHECK(fs::file_size(out) == size);
  CHECK_THROWS_WITH(create_results(out, a), out + ": exists; it is not overwritten");
  for (const auto& p : {in_a, in_b, out}) fs::remove(p);
}

TEST_CASE("a resumed shard must be continued as that shard", "[shards]") {
  ResultsFile f = run_shard({1, 2});
  SweepArgs resume;
  resume.resume = "shard.json";
  const SweepSpec spec = tiny_spec();
  const auto backends = resolve_backends(spec.backends);
  const SweepSpec expanded = expanded_spec(spec, backends, run_options(resume, spec, 1));
  CHECK_THROWS_WITH(start_results_file(f, resume, expanded, {2, 2}, 1, "again"),
                    "shard.json: holds shard 1/2; continue it with --shard 1/2");
  CHECK_NOTHROW(start_results_file(f, resume, expanded, {1, 2}, 1, "again"));
  CHECK(f.environment.resumes.back().command_line == "again");
}
