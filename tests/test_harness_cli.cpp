// The attnbench executable end to end, when it was built next to this test binary (the same
// build folder): exit statuses, one-line errors, a small sweep with the malloc interposer's
// measurement, and compare of a file against itself. Skipped (with a warning) without it.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "results.hpp"

using namespace attnbench;
namespace fs = std::filesystem;

namespace {

fs::path tool() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : self.parent_path() / "attnbench";
}

struct Ran {
  int status = -1;
  std::string err;
};

Ran run(const std::string& args) {
  const auto dir = fs::temp_directory_path() / "attnbench_test_cli";
  fs::create_directories(dir);
  const fs::path err = dir / ("stderr." + std::to_string(getpid()));
  const std::string cmd = tool().string() + " " + args + " > /dev/null 2> " + err.string();
  const int rc = std::system(cmd.c_str());
  Ran r;
  r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  std::ifstream in(err);
  std::stringstream ss;
  ss << in.rdbuf();
  r.err = ss.str();
  return r;
}

// Sanitizer builds leave the malloc interposer out: the counting allocator measures.
#ifdef ATTNBENCH_NO_INTERPOSER
constexpr const char* kPeakSource = "counting_allocator";
#else
constexpr const char* kPeakSource = "heap";
#endif

size_t lines(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

}  // namespace

TEST_CASE("attnbench: bad input is one line on stderr and a non-zero exit", "[harness][cli]") {
  if (!fs::exists(tool())) {
    WARN("attnbench is not built next to the tests; skipping the command-line checks");
    return;
  }
  for (const char* args : {"sweep --kernels nope --dry-run", "sweep --axis seq_len=-4 --dry-run",
                           "sweep --axis colour=red --dry-run", "sweep --preset nope",
                           "sweep --memory-limit 12Q --dry-run",
                           "eval --kernel lisa_base --inputs /nonexistent --output /tmp/x.npy",
                           "compare /nonexistent/a.json /nonexistent/b.json"}) {
    INFO(args);
    const Ran r = run(args);
    CHECK(r.status == 2);
    CHECK(lines(r.err) == 1);
    CHECK_THAT(r.err, Catch::StartsWith("attnbench: error: "));
  }
}

TEST_CASE("attnbench: a small sweep, measured through the heap, compares equal to itself",
          "[harness][cli]") {
  if (!fs::exists(tool())) {
    WARN("attnbench is not built next to the tests; skipping the command-line checks");
    return;
  }
  const auto dir = fs::temp_directory_path() / "attnbench_test_cli";
  fs::create_directories(dir);
  const std::string out = (dir / ("sweep." + std::to_string(getpid()) + ".json")).string();
  fs::remove(out);
  const Ran r = run("sweep --kernels vanilla_materialized,lisa_mini --axis seq_len=32,64 "
                    "--axis head_dim=8 --min-reps 2 --min-time 0 --quiet --out " + out);
  REQUIRE(r.status == 0);
  const ResultsFile f = read_results(out);
  CHECK(f.rows.size() == 4);
  for (const Row& row : f.rows) {
    CHECK(row.status == "ok");
    CHECK(row.measured_peak_source == kPeakSource);
    REQUIRE(row.measured_peak_bytes);
    CHECK(*row.measured_peak_bytes >= row.memory.peak_bytes());
    CHECK(row.memory_agrees.has_value());
  }
  CHECK(f.environment.command_line.find("--kernels vanilla_materialized,lisa_mini") != std::string::npos);
  CHECK(run("compare " + out + " " + out).status == 0);
  fs::remove(out);
}
