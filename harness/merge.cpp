#include "merge.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include <fmt/format.h>

#include "errors.hpp"
#include "file_io.hpp"
#include "sweep_spec.hpp"
#include "sysinfo.hpp"
#include "text.hpp"

namespace attnbench {

namespace {

// The first top-level key of two sweep objects whose values differ, for the refusal.
std::string first_difference(const ojson& a, const ojson& b) {
  if (!a.is_object() || !b.is_object()) return "not a sweep object";
  for (auto it = a.begin(); it != a.end(); ++it)
    if (!b.contains(it.key()) || b[it.key()] != *it) return fmt::format("'{}' differs", it.key());
  for (auto it = b.begin(); it != b.end(); ++it)
    if (!a.contains(it.key())) return fmt::format("'{}' differs", it.key());
  return "they differ";
}

// Every file records the same sweep and comes from the same tool as the first.
void check_same_sweep(const std::vector<ResultsFile>& files, const std::vector<std::string>& names) {
  for (size_t i = 0; i < files.size(); ++i) {
    if (files[i].sweep.is_null())
      fail_at(names[i], "records no sweep (a file from before sweeps were recorded?); merge joins "
                        "only files whose sweeps it can compare");
    if (i == 0) continue;
    if (files[i].tool != files[0].tool)
      fail_at(names[i], fmt::format("written by {}, {} by {}", files[i].tool, names[0], files[0].tool));
    if (files[i].sweep != files[0].sweep)
      fail_at(names[i], fmt::format("not the sweep of {} ({})", names[0],
                                    first_difference(files[0].sweep, files[i].sweep)));
  }
}

// "" when the files together hold every shard of their count (or a whole sweep), else the
// shards they hold ("1,3/4"). Shards of different counts cannot be told apart: refused.
std::string merged_shard(const std::vector<ResultsFile>& files, const std::vector<std::string>& names) {
  std::set<int> held;
  int count = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    if (files[i].shard.empty()) return "";  // a whole sweep covers every point
    const Shard s = parse_shard(files[i].shard);
    if (count && s.count != count)
      fail_at(names[i], fmt::format("shard {} of another count than {}'s shards (/{})",
                                    files[i].shard, names[0], count));
    count = s.count;
    held.insert(s.index);
  }
  if (int(held.size()) == count) return "";
  std::vector<std::string> indices;
  for (int i : held) indices.push_back(std::to_string(i));
  return fmt::format("{}/{}", join(indices, ","), count);
}

// A row as JSON without what a file derives from its other rows (the ratios to vanilla).
ojson row_content(const Row& r) {
  ojson j = to_json(r);
  j.erase("vs_vanilla");
  return j;
}

std::string device_of(const Row& r, const Environment& e) {
  if (r.backend == Backend::cuda && e.gpu) return fmt::format("{} on {}", e.gpu->name, e.host);
  return fmt::format("{} ({})", e.host, e.cpu_model);
}

// Adds the rows of file `i`: a point and device already held must hold the same row.
void add_rows(ResultsFile& merged, std::map<std::string, size_t>& owner,
              const std::vector<ResultsFile>& files, const std::vector<std::string>& names, size_t i) {
  for (const Row& r : files[i].rows) {
    const std::string key = row_key(r);
    const auto [it, fresh] = owner.emplace(key, i);
    if (fresh) {
      merged.rows.push_back(r);
      continue;
    }
    const size_t j = it->second;
    const Row& held = *std::find_if(files[j].rows.begin(), files[j].rows.end(),
                                    [&](const Row& x) { return row_key(x) == key; });
    if (row_content(held) != row_content(r))
      fail_at(names[i], fmt::format("{} {} {} on {} differs from its row in {}", r.kernel,
                                    backend_name(r.backend), describe_point(r.problem),
                                    device_of(r, files[i].environment), names[j]));
  }
}

// Warnings when the files were measured on other machines or builds than the first.
std::vector<std::string> environment_warnings(const std::vector<ResultsFile>& files,
                                              const std::vector<std::string>& names) {
  std::vector<std::string> w;
  const Environment& a = files[0].environment;
  for (size_t i = 1; i < files.size(); ++i) {
    const Environment& b = files[i].environment;
    auto differ = [&](const char* what, const std::string& x, const std::string& y) {
      if (x != y)
        w.push_back(fmt::format("{}: another {} than {} ('{}', not '{}')", names[i], what,
                                names[0], y, x));
    };
    differ("CPU", a.cpu_model, b.cpu_model);
    differ("GPU", a.gpu ? a.gpu->name : "", b.gpu ? b.gpu->name : "");
    differ("thread count", std::to_string(a.threads_used), std::to_string(b.threads_used));
    differ("compiler", a.compiler, b.compiler);
    differ("git commit", a.git_commit, b.git_commit);
  }
  return w;
}

// What the merge joined, in words, for the merged file's resumes.
std::string merge_record(const std::vector<ResultsFile>& files, const std::vector<std::string>& names) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < files.size(); ++i)
    parts.push_back(fmt::format("{} ({}{} rows, host {})", names[i],
                                files[i].shard.empty() ? "" : "shard " + files[i].shard + ", ",
                                files[i].rows.size(), files[i].environment.host));
  return "merged " + join(parts);
}

}  // namespace

MergeResult merge_results(const std::vector<ResultsFile>& files, const std::vector<std::string>& names,
                          const std::string& command_line) {
  if (files.empty()) throw InvalidProblem("merge: no files to merge");
  check_same_sweep(files, names);
  MergeResult m;
  ResultsFile& out = m.file;
  out = files[0];
  out.schema_version = kSchemaVersion;
  out.rows.clear();
  out.shard = merged_shard(files, names);
  std::map<std::string, size_t> owner;  // row key -> the file that holds it
  for (size_t i = 0; i < files.size(); ++i) add_rows(out, owner, files, names, i);
  out.environment.resumes.push_back({sysinfo::utc_now_iso(), command_line, merge_record(files, names)});
  fill_vs_vanilla(out);
  m.warnings = environment_warnings(files, names);
  return m;
}

int run_merge_command(const std::vector<std::string>& inputs, const std::string& out,
                      const std::string& command_line) {
  // before reading: a folder, FIFO or missing folder is refused, an existing file too (the
  // check comes again when writing)
  if (file_io::check_output_target(out, "--out").exists)
    fail_at(out, "exists; merge never overwrites a file (give another --out)");
  if (inputs.empty()) fail_at("merge", "no files to merge");
  std::vector<ResultsFile> files;
  for (const auto& path : inputs) files.push_back(read_results(path));
  const MergeResult m = merge_results(files, inputs, command_line);
  for (const auto& w : m.warnings) fmt::print(stderr, "attnbench merge: warning: {}\n", w);
  create_results(out, m.file);
  fmt::print("{} rows from {} files{}; results: {}\n", m.file.rows.size(), files.size(),
             m.file.shard.empty() ? "" : " (shards " + m.file.shard + " only)", out);
  return 0;
}

}  // namespace attnbench
