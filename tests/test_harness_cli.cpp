// The attnbench executable end to end, when it was built next to this test binary (the same
// build folder): exit statuses, one-line errors, a small sweep with the malloc interposer's
// measurement, and compare of a file against itself. Skipped (with a warning) without it.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "file_io.hpp"
#include "npy.hpp"
#include "results.hpp"
#include "scratch_files.hpp"

using namespace attnbench;
namespace fs = std::filesystem;

namespace {

using attnbench::testing::slurp;

fs::path tool() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : self.parent_path() / "attnbench";
}

struct Ran {
  int status = -1;
  std::string err;
};

// `before`: shell words run first, e.g. "ulimit -f 128; exec ".
Ran run(const std::string& args, const std::string& before = "") {
  const auto dir = fs::temp_directory_path() / "attnbench_test_cli";
  fs::create_directories(dir);
  const fs::path err = dir / ("stderr." + std::to_string(getpid()));
  const std::string cmd = before + tool().string() + " " + args + " > /dev/null 2> " + err.string();
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

fs::path fresh_dir(const std::string& name) { return testing::scratch_dir("test_cli", name); }

// A one-point sweep of tiny sizes (the caller adds --out and more).
const std::string kTinySweep = "sweep --kernels vanilla_materialized --axis seq_len=16 --axis head_dim=8 "
                               "--min-reps 3 --min-time 0 --no-calibrate --quiet ";

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

TEST_CASE("attnbench sweep: an existing results file is neither replaced nor shared unasked",
          "[harness][cli]") {
  if (!fs::exists(tool())) {
    WARN("attnbench is not built next to the tests; skipping the command-line checks");
    return;
  }
  const auto dir = fresh_dir("out");
  const std::string out = (dir / "r.json").string();
  std::ofstream(out) << "precious";
  Ran r = run(kTinySweep + "--out " + out);
  CHECK(r.status == 2);
  CHECK(lines(r.err) == 1);
  CHECK_THAT(r.err, Catch::Contains(out + ": exists") && Catch::Contains("--force"));
  CHECK(slurp(out) == "precious");
  {
    // another run holds the file: refused at once, naming it
    const file_io::RunLock lock(out, "the test's own run");
    r = run(kTinySweep + "--force --out " + out);
    CHECK(r.status == 2);
    CHECK(lines(r.err) == 1);
    CHECK_THAT(r.err, Catch::Contains("being written by another run: pid " + std::to_string(getpid())));
    CHECK(slurp(out) == "precious");
  }
  r = run(kTinySweep + "--force --out " + out);
  REQUIRE(r.status == 0);
  CHECK(read_results(out).rows.size() == 1);
  CHECK_FALSE(fs::exists(file_io::lock_path(out)));
  for (const auto& [target, words] : {std::pair<std::string, std::string>{dir.string(), "is a folder"},
                                      {(dir / "fifo.json").string(), "is a FIFO"},
                                      {(dir / "no" / "r.json").string(), "the folder"}}) {
    if (words == "is a FIFO") REQUIRE(mkfifo(target.c_str(), 0600) == 0);
    r = run(kTinySweep + "--out " + target);
    CHECK(r.status == 2);
    CHECK(lines(r.err) == 1);
    CHECK_THAT(r.err, Catch::Contains("--out " + target + ": " + words));
  }
  fs::remove_all(dir);
}

TEST_CASE("attnbench compare: a tampered file is refused, a missing row fails --require-all",
          "[harness][cli]") {
  if (!fs::exists(tool())) {
    WARN("attnbench is not built next to the tests; skipping the command-line checks");
    return;
  }
  const auto dir = fresh_dir("compare");
  const std::string base = (dir / "base.json").string();
  REQUIRE(run("sweep --kernels vanilla_materialized,lisa_mini --axis seq_len=16 --axis head_dim=8 "
              "--min-reps 3 --min-time 0 --no-calibrate --quiet --out " + base).status == 0);
  std::ifstream in(base);
  const ojson j = ojson::parse(in);
  REQUIRE(j["rows"].size() == 2);
  auto write = [&](const std::string& name, const ojson& v) {
    const std::string p = (dir / name).string();
    std::ofstream(p) << v.dump(1);
    return p;
  };
  // doubled samples under the old median
  ojson doubled = j;
  for (auto& x : doubled["rows"][1]["time_ms"]["samples"]) x = x.get<double>() * 2;
  const std::string tampered = write("doubled.json", doubled);
  Ran r = run("compare " + base + " " + tampered);
  CHECK(r.status == 2);
  CHECK(lines(r.err) == 1);
  CHECK_THAT(r.err, Catch::Contains(tampered + ": row 1 (lisa_mini cpu") && Catch::Contains("stored median"));
  // an ok row timed at zero
  ojson zero = j;
  for (auto& x : zero["rows"][0]["time_ms"]["samples"]) x = 0.0;
  for (const char* f : {"median", "min", "max", "p25", "p75", "mean"}) zero["rows"][0]["time_ms"][f] = 0.0;
  r = run("compare " + base + " " + write("zero.json", zero));
  CHECK(r.status == 2);
  CHECK_THAT(r.err, Catch::Contains("row 0") && Catch::Contains("positive and finite"));
  // a row missing from NEW: reported; a regression under --require-all
  ojson missing = j;
  missing["rows"].erase(1);
  const std::string fewer = write("missing.json", missing);
  r = run("compare " + base + " " + fewer);
  CHECK(r.status == 0);
  CHECK_THAT(r.err, Catch::Contains("1 row of " + base + " is missing"));
  CHECK(run("compare --require-all " + base + " " + fewer).status == 1);
  CHECK(run("compare --require-all " + base + " " + base).status == 0);
  fs::remove_all(dir);
}

TEST_CASE("attnbench eval: a failed write keeps the previous output and says so in one line",
          "[harness][cli]") {
  if (!fs::exists(tool())) {
    WARN("attnbench is not built next to the tests; skipping the command-line checks");
    return;
  }
  const auto dir = fresh_dir("eval_full");
  REQUIRE(run("export --kernel vanilla_flash --axis seq_len=1024 --axis head_dim=64 --out " +
              dir.string()).status == 0);
  const std::string out = (dir / "out.npy").string();
  std::ofstream(out) << "previous output";
  const std::string eval = "eval --kernel vanilla_flash --inputs " + dir.string() + " --output ";
  // 256 kB of output under a file size limit of 64 kB (128 blocks of 512 bytes, or of 1 kB)
  Ran r = run(eval + out, "ulimit -f 128; exec ");
  CHECK(r.status == 2);
  CHECK(lines(r.err) == 1);
  CHECK_THAT(r.err, Catch::Contains(out + ": cannot write (File too large)") &&
                        Catch::Contains("previous file is unchanged"));
  CHECK(slurp(out) == "previous output");
  CHECK(file_io::leftover_temps(out, false).empty());
  r = run(eval + dir.string());
  CHECK(r.status == 2);
  CHECK_THAT(r.err, Catch::Contains("--output " + dir.string() + ": is a folder"));
  REQUIRE(run(eval + out).status == 0);
  CHECK(npy::read(out).shape == std::vector<int64_t>{1, 1, 1024, 64});
  fs::remove_all(dir);
}
