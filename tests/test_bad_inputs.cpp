// Every bad input of every subcommand of attnbench and attnbench_gate, one row each: the tool
// runs as a child process (built beside this test binary) on the row's arguments and files
// (made in a temporary folder: a folder or FIFO where a file belongs, truncated and huge
// .npy files, empty files, bad JSON, results files of a wrong schema), and must exit 2 with
// exactly one line on stderr, "<tool>: error: ...", containing the row's words. Rows that
// would run something when the check is missing use --dry-run or tiny sizes, and every child
// runs under `timeout`, so a check that blocks (a FIFO opened for reading) fails instead of
// hanging. Also the parsing helpers these checks share (text.hpp) and compare's per-row
// correctness tolerance.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "compare.hpp"
#include "npy.hpp"
#include "results.hpp"
#include "text.hpp"
#include "scratch_files.hpp"

using namespace attnbench;
namespace fs = std::filesystem;

namespace {

using attnbench::testing::slurp;

fs::path tool_path(const std::string& tool) {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path(tool) : self.parent_path() / tool;
}

struct Ran {
  int status = -1;
  std::string err;
};

// `tool` with `args` (each one shell word), stdin from /dev/null, at most 60 s.
Ran run_tool(const std::string& tool, const std::vector<std::string>& args, const fs::path& dir) {
  const fs::path err = dir / "stderr.txt";
  std::vector<std::string> words = {"timeout", "60", tool_path(tool).string()};
  words.insert(words.end(), args.begin(), args.end());
  std::string cmd;
  for (const auto& w : words) cmd.append(shell_quote(w)).append(" ");
  cmd.append("< /dev/null > /dev/null 2> ").append(shell_quote(err.string()));
  const int rc = std::system(cmd.c_str());
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, slurp(err)};
}

size_t line_count(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

void write_file(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

// A .npy file whose header declares `shape` (float32) but which holds `data_bytes` bytes.
void write_npy_header(const fs::path& p, const std::string& shape, size_t data_bytes) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  std::string bytes = "\x93NUMPY";
  bytes += char(1);
  bytes += char(0);
  bytes += char(header.size() & 0xff);
  bytes += char(header.size() >> 8);
  write_file(p, bytes + header + std::string(data_bytes, '\0'));
}

// Valid float32 q, k, v [1, 1, n, dh] in `dir`.
void write_qkv(const fs::path& dir, int64_t n, int64_t dh) {
  fs::create_directories(dir);
  const std::vector<float> x(size_t(n * dh), 0.25f);
  for (const char* f : {"q.npy", "k.npy", "v.npy"})
    npy::write((dir / f).string(), {1, 1, n, dh}, x);
}

// A minimal schema-2 results file with `rows` (JSON text of the array).
std::string results_json(int schema, const std::string& rows) {
  return "{\"schema_version\": " + std::to_string(schema) +
         ", \"environment\": {}, \"rows\": " + rows + "}";
}

// The files the rows below name, in `d`.
void make_fixtures(const fs::path& d) {
  fs::create_directories(d / "folder");
  REQUIRE(mkfifo((d / "fifo").c_str(), 0600) == 0);
  write_file(d / "empty", "");
  write_file(d / "bad.json", "{\"schema_version\": 2, ");
  write_file(d / "future.json", results_json(99, "[]"));
  write_file(d / "sweepfile.json", "{\"name\": \"tiny\", \"kernels\": [\"vanilla_flash\"]}");
  write_file(d / "overflow_ints.json",
             "{\"schema_version\": 2, \"environment\": {\"cpu_cores\": 1e300}, \"rows\": []}");
  write_file(d / "ok.json", results_json(2, "[]"));
  // a sparse results file over the 256 MiB that is read whole
  { std::ofstream(d / "huge.json"); }
  fs::resize_file(d / "huge.json", size_t(300) << 20);
  // sweep files
  write_file(d / "reps.json", "{\"timing\": {\"max_reps\": 1e12}}");
  write_file(d / "half_rep.json", "{\"timing\": {\"min_reps\": 2.5}}");
  write_file(d / "no_seq.json", "{\"axes\": {\"seq_len\": []}}");
  write_file(d / "slow.json", "{\"max_point_seconds\": -1}");
  write_file(d / "kernels.json", "{\"kernels\": []}");
  write_file(d / "badsweep.json", "{\"axes\": ");
  // eval inputs: q.npy a folder, a FIFO, truncated, huge, empty
  fs::create_directories(d / "q_folder" / "q.npy");
  fs::create_directories(d / "q_fifo");
  REQUIRE(mkfifo((d / "q_fifo" / "q.npy").c_str(), 0600) == 0);
  write_npy_header(d / "q_trunc" / "q.npy", "(1, 1, 16, 8)", 100);
  write_npy_header(d / "q_huge" / "q.npy", "(1000000, 1000, 1000, 64)", 0);
  write_npy_header(d / "q_overflow" / "q.npy", "(999999999999999999, 999999999999999999)", 0);
  write_file(d / "q_empty" / "q.npy", "");
  write_qkv(d / "qkv16", 16, 8);
  write_qkv(d / "qkv512", 512, 8);
  write_file(d / "a_file", "not a folder");
}

struct BadInput {
  std::string tool;   // attnbench or attnbench_gate
  std::string args;   // the arguments, '|' between them
  std::string words;  // what the one line of stderr must contain
};

std::string at(const std::string& s, const std::string& dir) {
  std::string out = s;
  for (size_t i = out.find('@'); i != std::string::npos; i = out.find('@', i + dir.size()))
    out.replace(i, 1, dir);
  return out;
}

const std::string A = "attnbench", G = "attnbench_gate";
// Arguments separated by '|' ("" is no argument; "a||" has an empty last one), '@' the
// fixture folder. Each row: the tool, its arguments, the words of its one line of stderr.
const std::vector<BadInput> kBadInputs = {
    // ---- the command line itself ----
    {A, "", "A subcommand is required"},
    {A, "frobnicate", "frobnicate"},
    {A, "sweep|--bogus|--dry-run", "--bogus"},
    {A, "sweep|--dry-run|--min-reps", "--min-reps"},
    // ---- sweep: numbers ----
    {A, "sweep|--dry-run|--memory-limit|0.5", "--memory-limit: 0.5 is not a whole number of bytes"},
    {A, "sweep|--dry-run|--memory-limit|0", "--memory-limit: 0 is not a size"},
    {A, "sweep|--dry-run|--memory-limit|12Q", "unknown unit 'Q'"},
    {A, "sweep|--dry-run|--memory-limit|1e300G", "is not a size from 1 byte"},
    {A, "sweep|--dry-run|--min-reps|0", "--min-reps: 0 is not a whole number in [1, 1000000]"},
    {A, "sweep|--dry-run|--max-reps|1e12",
     "--max-reps: 1000000000000 is not a whole number in [1, 1000000]"},
    {A, "sweep|--dry-run|--max-reps|2.5", "--max-reps: 2.5 is not a whole number"},
    {A, "sweep|--dry-run|--warmup|-1", "--warmup: -1 is not a whole number in [0, 1000000]"},
    {A, "sweep|--dry-run|--threads|0x10",
     "--threads: expected a whole number in [1, 4096], got '0x10'"},
    {A, "sweep|--dry-run|--min-time|nan", "--min-time: expected a number in [0, 86400], got 'nan'"},
    {A, "sweep|--dry-run|--max-point-seconds|1e300",
     "--max-point-seconds: 1e+300 is not a number in [0, 604800]"},
    {A, "sweep|--dry-run|--shard|3/2", "--shard 3/2: I must lie in 1..2"},
    {A, "sweep|--dry-run|--shard|1.5/2", "expected I/N"},
    // ---- sweep: empty lists and paths ----
    {A, "sweep|--dry-run|--kernels|", "--kernels: an empty list"},
    {A, "sweep|--dry-run|--kernels|,", "--kernels: an empty list"},
    {A, "sweep|--dry-run|--axis|seq_len=", "axis seq_len has no values"},
    {A, "sweep|--dry-run|--axis|seq_len=16,,32", "an empty value"},
    {A, "sweep|--dry-run|--axis|seq_len=1e300", "seq_len"},
    {A, "sweep|--dry-run|--kernels|local_window|--axis|window=1e19", "axis window: 1e+19"},
    {A, "sweep|--dry-run|--axis|", "--axis: an empty axis"},
    {A, "sweep|--dry-run|--out|", "--out: an empty path"},
    {A, "sweep|--dry-run|--preset|", "--preset: an empty name"},
    {A, "sweep|--dry-run|--vanilla|", "--vanilla: an empty name"},
    // ---- sweep: files ----
    {A, "sweep|--dry-run|--sweep|@/folder", "@/folder: is a folder, not a sweep file"},
    {A, "sweep|--dry-run|--sweep|@/fifo", "@/fifo: is a FIFO, not a sweep file"},
    {A, "sweep|--dry-run|--sweep|@/missing.json", "@/missing.json: cannot open"},
    {A, "sweep|--dry-run|--sweep|@/empty", "@/empty: not valid JSON"},
    {A, "sweep|--dry-run|--sweep|@/badsweep.json", "not valid JSON"},
    {A, "sweep|--dry-run|--sweep|@/reps.json",
     "timing.max_reps: 1000000000000 is not a whole number in [1, 1000000]"},
    {A, "sweep|--dry-run|--sweep|@/half_rep.json", "timing.min_reps: 2.5 is not a whole number"},
    {A, "sweep|--dry-run|--sweep|@/no_seq.json", "axis 'seq_len' has no values"},
    {A, "sweep|--dry-run|--sweep|@/slow.json",
     "max_point_seconds: -1 is not a number in [0, 604800]"},
    {A, "sweep|--dry-run|--sweep|@/kernels.json", "'kernels' is empty"},
    {A, "sweep|--dry-run|--resume|@/folder", "@/folder: is a folder, not a results file"},
    {A, "sweep|--dry-run|--resume|@/huge.json", "too large for a results file"},
    // ---- merge ----
    {A, "merge|--out|@/m.json", "FILES is required"},
    {A, "merge|@/ok.json|--out|", "--out: an empty path"},
    {A, "merge||--out|@/m.json", "FILES: an empty path"},
    {A, "merge|@/folder|--out|@/m.json", "@/folder: is a folder, not a results file"},
    {A, "merge|@/bad.json|--out|@/m.json", "@/bad.json: not valid JSON"},
    {A, "merge|@/ok.json|--out|@/ok.json", "@/ok.json: exists"},
    {A, "merge|@/ok.json|--out|@/folder", "--out @/folder: is a folder"},
    {A, "merge|@/ok.json|--out|@/fifo", "--out @/fifo: is a FIFO"},
    // ---- list ----
    {A, "list|--bogus", "--bogus"},
    {A, "list|extra", "extra"},
    // ---- eval ----
    {A, "eval|--kernel|vanilla_flash|--output|@/o.npy", "--inputs is required"},
    {A, "eval|--kernel|vanilla_flash|--inputs||--output|@/o.npy", "--inputs: an empty path"},
    {A, "eval|--kernel|vanilla_flash|--inputs|@/qkv16|--output|", "--output: an empty path"},
    {A, "eval|--kernel||--inputs|@/qkv16|--output|@/o.npy", "--kernel: an empty name"},
    {A, "eval|--kernel|vanilla_flash|--inputs|@/a_file|--output|@/o.npy", "not a directory"},
    {A, "eval|--kernel|vanilla_flash|--inputs|@/q_folder|--output|@/o.npy",
     "q.npy: is a folder, not a .npy file"},
    {A, "eval|--kernel|vanilla_flash|--inputs|@/q_fifo|--output|@/o.npy",
     "q.npy: is a FIFO, not a .npy file"},
    {A, "eval|--kernel|vanilla_flash|--inputs|@/q_trunc|--output|@/o.npy", "q.npy: truncated"},
    {A, "eval|--kernel|vanilla_flash|--inputs|@/q_huge|--output|@/o.npy",
     "q.npy: truncated: shape (1000000, 1000, 1000, 64)"},
    {A, "eval|--kernel|vanilla_flash|--inputs|@/q_overflow|--output|@/o.npy", "is too large"},
    {A, "eval|--kernel|vanilla_flash|--inputs|@/q_empty|--output|@/o.npy",
     "q.npy: not a .npy file"},
    {A, "eval|--kernel|vanilla_flash|--inputs|@/folder|--output|@/o.npy", "q.npy: missing"},
    {A, "eval|--kernel|vanilla_flash|--inputs|@/qkv16|--output|@/folder",
     "--output @/folder: is a folder"},
    {A, "eval|--kernel|vanilla_flash|--inputs|@/qkv16|--output|@/o.npy|--param|window=abc",
     "'abc' is not a number"},
    {A, "eval|--kernel|local_window|--inputs|@/qkv16|--output|@/o.npy|--param|window=1e300",
     "parameter 'window' must lie in"},
    {A, "eval|--kernel|vanilla_flash|--inputs|@/qkv16|--output|@/o.npy|--param|",
     "--param: an empty parameter"},
    {A, "eval|--kernel|vanilla_flash|--inputs|@/qkv16|--output|@/o.npy|--backend|gpu", "--backend"},
    {A, "eval|--kernel|vanilla_flash|--inputs|@/qkv16|--output|@/o.npy|--memory-limit|1K",
     "the input files hold"},
    {A, "eval|--kernel|vanilla_materialized|--inputs|@/qkv512|--output|@/o.npy|--memory-limit|200K",
     "does not fit the memory limit"},
    // ---- export ----
    {A, "export|--kernel|vanilla_flash|--out|", "--out: an empty path"},
    {A, "export|--kernel|vanilla_flash|--out|@/a_file", "--out @/a_file: is not a folder"},
    {A, "export|--kernel|vanilla_flash|--axis|seq_len=16,32|--out|@/ex", "one value per axis"},
    {A, "export|--kernel|vanilla_flash|--axis|seq_len=|--out|@/ex", "axis seq_len has no values"},
    {A, "export|--kernel|vanilla_flash|--axis|seq_len=1e7|--axis|batch=1000|--out|@/ex",
     "more than 80 % of memory"},
    // ---- compare ----
    {A, "compare|@/ok.json", "NEW is required"},
    {A, "compare||@/ok.json", "BASE: an empty path"},
    {A, "compare|@/folder|@/ok.json", "@/folder: is a folder, not a results file"},
    {A, "compare|@/ok.json|@/fifo", "@/fifo: is a FIFO, not a results file"},
    {A, "compare|@/empty|@/ok.json", "@/empty: not valid JSON"},
    {A, "compare|@/bad.json|@/ok.json", "@/bad.json: not valid JSON"},
    {A, "compare|@/huge.json|@/ok.json",
     "@/huge.json: is 314572800 bytes, too large for a results file"},
    {A, "compare|@/future.json|@/ok.json", "schema_version 99 is not supported"},
    {A, "compare|@/sweepfile.json|@/ok.json", "missing field 'schema_version'"},
    {A, "compare|@/overflow_ints.json|@/ok.json",
     "field 'cpu_cores': 1e+300 is not a whole number"},
    {A, "compare|@/ok.json|@/ok.json|--threshold|lots", "--threshold lots: expected a fraction"},
    {A, "compare|@/ok.json|@/ok.json|--alpha|0", "--alpha: 0 is not a number in (0, 1)"},
    {A, "compare|@/ok.json|@/ok.json|--alpha|1.5", "--alpha: 1.5 is not a number in (0, 1)"},
    // ---- calibrate ----
    {A, "calibrate|--bogus", "--bogus"},
    {A, "calibrate|extra", "extra"},
    // ---- attnbench_gate ----
    {G, "", "A subcommand is required"},
    {G, "speed", "speed"},
    {G, "points|--bogus", "--bogus"},
    {G, "memory|--threads|0", "--threads: 0 is not a whole number in [1, 1024]"},
    {G, "memory|--threads|2.5", "--threads: 2.5 is not a whole number"},
    {G, "memory|--baselines|@/a_file", "--baselines @/a_file: is not a folder"},
    {G, "memory|--baselines|@/nowhere", "--baselines @/nowhere: no such folder"},
    {G, "memory|--baselines|", "--baselines: an empty path"},
    {G, "memory|--out|@/folder", "--out @/folder: is a folder"},
    {G, "work|--tolerance|2", "--tolerance: 2 is not a number in [0, 1]"},
    {G, "work|--driver|@/folder", "@/folder: is a folder, not the work driver"},
    {G, "work|--keep|@/a_file", "--keep @/a_file: is not a folder"},
    {G, "time|--rounds|1", "--rounds: 1 is not a whole number in [5, 100000]"},
    {G, "time|--alpha|0", "--alpha: 0 is not a number in [1e-09, 0.5]"},
    {G, "time|--min-effect|inf", "--min-effect: expected a number in [0, 10]"},
    {G, "time|--report|@/fifo", "--report @/fifo: is a FIFO"},
};

}  // namespace

TEST_CASE("bad inputs: every subcommand exits 2 with one line naming what is wrong",
          "[inputs][cli]") {
  for (const char* tool : {"attnbench", "attnbench_gate"})
    REQUIRE(fs::exists(tool_path(tool)));  // CMake builds both before the tests
  const fs::path dir =
      fs::temp_directory_path() / ("attnbench_bad_inputs." + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  make_fixtures(dir);
  for (const BadInput& c : kBadInputs) {
    std::vector<std::string> args;
    if (!c.args.empty())
      for (const auto& a : split(c.args, '|')) args.push_back(at(a, dir.string()));
    const std::string words = at(c.words, dir.string());
    INFO(c.tool << " " << join(args, " "));
    const Ran r = run_tool(c.tool, args, dir);
    INFO("stderr: " << r.err);
    CHECK(r.status == 2);
    CHECK(line_count(r.err) == 1);
    CHECK_THAT(r.err, Catch::StartsWith(c.tool + ": error: ") && Catch::Contains(words));
  }
  CHECK(kBadInputs.size() >= 40);
  fs::remove_all(dir);
}

TEST_CASE("bad inputs: --help still exits 0 and lists the exit statuses", "[inputs][cli]") {
  const fs::path dir = fs::temp_directory_path() / ("attnbench_help." + std::to_string(getpid()));
  fs::create_directories(dir);
  for (const char* tool : {"attnbench", "attnbench_gate"}) {
    const fs::path out = dir / "help.txt";
    const std::string cmd = "timeout 60 " + shell_quote(tool_path(tool).string()) + " --help > " +
                            shell_quote(out.string()) + " 2>&1";
    const int rc = std::system(cmd.c_str());
    CHECK((WIFEXITED(rc) && WEXITSTATUS(rc) == 0));
    const std::string help = slurp(out);
    CHECK_THAT(help, Catch::Contains("Exit status: 0") && Catch::Contains("2 a bad input"));
  }
  fs::remove_all(dir);
}

TEST_CASE("parsing helpers: whole numbers, reals and sizes in range, never truncated",
          "[inputs]") {
  const IntRange reps{1, 1000000};
  CHECK(parse_integer("12", reps, "--x") == 12);
  CHECK(parse_integer("1e3", reps, "--x") == 1000);
  for (const char* bad : {"", " 5", "5 ", "0x10", "1.5", "1e12", "0", "nan", "inf", "1e999", "12x"})
    CHECK_THROWS_WITH(parse_integer(bad, reps, "--x"), Catch::StartsWith("--x: ") &&
                                                           Catch::Contains("[1, 1000000]"));
  CHECK(whole_in(5, reps, "f") == 5);
  CHECK_THROWS_WITH(whole_in(1e300, reps, "f"), Catch::Contains("1e+300 is not a whole number"));
  const RealRange unit{0, 1, true, false};
  CHECK(parse_real("0.5", unit, "--y") == 0.5);
  CHECK(parse_real("1", unit, "--y") == 1);
  CHECK_THROWS_WITH(parse_real("0", unit, "--y"), Catch::Contains("(0, 1]"));
  CHECK_THROWS_WITH(parse_real("-inf", unit, "--y"), Catch::Contains("got '-inf'"));
  CHECK(parse_size("20G", "--m") == size_t(20) << 30);
  CHECK(parse_size("0.5G", "--m") == size_t(1) << 29);
  CHECK(parse_size("1.5GB", "--m") == size_t(1500000000));
  CHECK(parse_size("4096", "--m") == 4096);
  CHECK(parse_size("2 MiB", "--m") == size_t(2) << 20);
  CHECK_THROWS_WITH(parse_size("0.5", "--m"), Catch::Contains("not a whole number of bytes"));
  CHECK_THROWS_WITH(parse_size("0", "--m"), Catch::Contains("must be positive"));
  CHECK_THROWS_WITH(parse_size("2e9T", "--m"), Catch::Contains("1024 PiB"));
  CHECK_THROWS_WITH(parse_size("G", "--m"), Catch::Contains("expected a size"));
  CHECK(one_line("a\nb\r\tc") == "a b  c");
}

namespace {

// A row of `precision` at N = 64 with one correctness error and the given stored tolerance.
Row judged_row(Precision precision, double error, std::optional<double> tolerance) {
  Row r;
  r.kernel = "vanilla_materialized";
  r.problem.batch = r.problem.heads = 1;
  r.problem.seq_len = 64;
  r.problem.head_dim = 8;
  r.problem.precision = precision;
  r.status = "ok";
  TimeStats t;
  t.samples = {1.0, 1.0, 1.0};
  t.median = t.min = t.max = t.p25 = t.p75 = t.mean = 1.0;
  t.count = 3;
  r.time = t;
  r.correctness_rel_l2 = error;
  r.correctness_tolerance = tolerance;
  return r;
}

bool accuracy_regressed(const Row& base, const Row& now) {
  ResultsFile a, b;
  a.rows = {base};
  b.rows = {now};
  const Comparison c = compare_results(a, b);
  REQUIRE(c.rows.size() == 1);
  return c.rows[0].accuracy_regressed;
}

}  // namespace

TEST_CASE("compare: a row's correctness is judged against its own tolerance", "[inputs][compare]") {
  // a bf16 row at 3e-3 is within its own tolerance (well above float32's)
  const double bf16_tol = correctness_tolerance(Precision::bf16, 64);
  REQUIRE(bf16_tol > 3e-3);
  CHECK_FALSE(accuracy_regressed(judged_row(Precision::bf16, 1e-6, bf16_tol),
                                 judged_row(Precision::bf16, 3e-3, bf16_tol)));
  // beyond its own tolerance it is a regression
  CHECK(accuracy_regressed(judged_row(Precision::bf16, 1e-6, bf16_tol),
                           judged_row(Precision::bf16, 2 * bf16_tol, bf16_tol)));
  // an fp32 row whose stored tolerance is tighter than the old constant: judged by its own
  CHECK(accuracy_regressed(judged_row(Precision::fp32, 1e-7, 1e-5),
                           judged_row(Precision::fp32, 5e-5, 1e-5)));
  // a row without one (schema 1) falls back to float32's constant
  CHECK_FALSE(accuracy_regressed(judged_row(Precision::fp32, 1e-7, std::nullopt),
                                 judged_row(Precision::fp32, 5e-5, std::nullopt)));
  CHECK(accuracy_regressed(judged_row(Precision::fp32, 1e-7, std::nullopt),
                           judged_row(Precision::fp32, 2 * kCorrectnessTolerance, std::nullopt)));
  // a stored tolerance that is not positive is a bad file
  ResultsFile bad;
  bad.rows = {judged_row(Precision::fp32, 1e-7, 0.0)};
  CHECK_THROWS_WITH(check_time_samples(bad, "f.json"), Catch::Contains("correctness_tolerance"));
}
