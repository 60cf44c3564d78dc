// Scratch folders and whole-file reads for the tests that run the tools on real files.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace attnbench::testing {

// An empty folder <tmp>/attnbench_<suite>/<name>.<pid>, made afresh (the pid keeps two test
// processes running at once apart).
inline std::filesystem::path scratch_dir(const std::string& suite, const std::string& name) {
  const auto d = std::filesystem::temp_directory_path() / ("attnbench_" + suite) /
                 (name + "." + std::to_string(getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

// The whole file as bytes ("" when it cannot be read).
inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace attnbench::testing
