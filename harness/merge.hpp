// `attnbench merge FILES... --out F`: joins results files of the same sweep, such as the
// shards of `attnbench sweep --shard I/N` run as a job array, into one file.
#pragma once

#include <string>
#include <vector>

#include "results.hpp"

namespace attnbench {

struct MergeResult {
  ResultsFile file;
  std::vector<std::string> warnings;  // the files were measured on different machines or builds
};

// Joins `files` (named `names` in messages). Rows are keyed by their point and device (kernel,
// backend, axes: row_key): a row that two files hold identically is kept once. The merged
// file keeps the first file's environment, records the merge in its resumes, and holds shard
// "" once the files cover every shard of their count ("1,3/4" while some are missing).
// Throws InvalidProblem (one line) when a file records no sweep, its sweep differs from the
// first file's, shards of different counts meet, or two rows of one point and device differ.
MergeResult merge_results(const std::vector<ResultsFile>& files, const std::vector<std::string>& names,
                          const std::string& command_line);

// Reads `inputs`, merges them, prints the warnings to stderr and writes `out`, which must not
// exist yet (merge never overwrites a file). Returns the exit status.
int run_merge_command(const std::vector<std::string>& inputs, const std::string& out,
                      const std::string& command_line);

}  // namespace attnbench
