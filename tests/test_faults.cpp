// Faults a results file must survive, driven through the attnbench executable built next to
// this test binary (skipped, with a warning, without it): a sweep killed at random moments and
// resumed, two writers of one file, a full disk (a file size limit), and the options --resume
// refuses unless --extend. Plus the spec comparison behind --resume, without the executable.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "file_io.hpp"
#include "results.hpp"
#include "sweep_command.hpp"
#include "text.hpp"
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

fs::path fresh_dir(const std::string& name) { return testing::scratch_dir("test_faults", name); }

size_t lines(const std::string& s) { return size_t(std::count(s.begin(), s.end(), '\n')); }

struct Ran {
  int status = -1;  // exit status; -1 when killed by a signal
  std::string err;
};

// The tool run with `args`; with `file_limit_kb`, under bash's `ulimit -f` (1 kB blocks), so
// that a write past that size fails as on a full disk (the tool ignores SIGXFSZ).
Ran run(const std::string& args, size_t file_limit_kb = 0) {
  const fs::path err = fresh_dir("stderr") / "err";
  std::string cmd = tool().string() + " " + args + " > /dev/null 2> " + err.string();
  if (file_limit_kb > 0)
    cmd = "bash -c 'ulimit -f " + std::to_string(file_limit_kb) + "; exec " + cmd + "'";
  const int rc = std::system(cmd.c_str());
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, slurp(err)};
}

// The tool started in the background with `args` (split at spaces), stderr into `err`.
pid_t spawn(const std::string& args, const fs::path& err) {
  std::vector<std::string> words = {tool().string()};
  for (const auto& w : split(args, ' '))
    if (!w.empty()) words.push_back(w);
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  const std::string err_path = err.string();
  const pid_t pid = fork();
  if (pid != 0) return pid;
  // the child: only async-signal-safe calls until exec
  const int null = open("/dev/null", O_WRONLY);
  const int e = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  dup2(null, 1);
  dup2(e, 2);
  execv(argv[0], argv.data());
  _exit(127);
}

// The exit status of `pid` (-1: killed by a signal).
int wait_for(pid_t pid) {
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// Exits within `ms`: its status; otherwise SIGKILLed, nullopt.
std::optional<int> kill_after(pid_t pid, int ms) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < end) {
    int st = 0;
    if (waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  kill(pid, SIGKILL);
  wait_for(pid);
  return std::nullopt;
}

// Waits until a run holds the lock of `out` and has written its name (at most 20 s).
bool wait_for_holder(const std::string& out) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < end) {
    if (slurp(file_io::lock_path(out)).find("pid ") == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

std::vector<std::string> row_keys(const ResultsFile& f) {
  std::vector<std::string> keys;
  for (const Row& r : f.rows) keys.push_back(row_key(r));
  return keys;
}

std::set<std::string> key_set(const ResultsFile& f) {
  const auto k = row_keys(f);
  return {k.begin(), k.end()};
}

// 20 fast points of the smoke preset: five kernels, seq_len 64 and 256, causal and not.
const std::string kSmall =
    "sweep --preset smoke --kernels vanilla_materialized,vanilla_flash,lisa_mini,lisa_base,hydra "
    "--min-time 0.01 --no-calibrate --quiet ";

// A one-point sweep of tiny sizes with a timing of its own (the caller adds --out).
const std::string kTiny =
    "sweep --kernels vanilla_materialized --axis seq_len=16 --axis head_dim=8 "
    "--min-reps 3 --max-reps 3 --min-time 0 --no-calibrate --quiet ";

// What a resume adds to the command line: no progress, no calibration (it does not change the
// sweep, and a file started without one would otherwise be calibrated by every resume).
const std::string kQuick = " --quiet --no-calibrate";

// A copy of results file `from` at `to` without its rows from index `keep` on.
void write_cut(const std::string& from, const std::string& to, size_t keep) {
  std::ifstream in(from);
  ojson j = ojson::parse(in);
  ojson rows = ojson::array();
  for (size_t i = 0; i < keep && i < j["rows"].size(); ++i) rows.push_back(j["rows"][i]);
  j["rows"] = rows;
  std::ofstream(to) << j.dump(1);
}

#define REQUIRE_TOOL()                                                                     \
  if (!fs::exists(tool())) {                                                               \
    WARN("attnbench is not built next to the tests; skipping the fault checks");           \
    return;                                                                                \
  }

}  // namespace

namespace {

struct KillRound {
  int kills = 0, kills_mid_sweep = 0;  // the latter with some but not all rows on disk
};

// Runs the sweep of `first_args` into `out` as a child, SIGKILLed at moments drawn over
// `whole_ms` (growing, so that a run finishes), resumed until one run completes; after every
// kill the file is absent (no run got as far as writing it) or a valid results file holding
// every row it held before.
KillRound kill_until_done(const std::string& first_args, const std::string& out, int whole_ms,
                          size_t total_rows, std::mt19937& rng, const fs::path& err) {
  std::uniform_real_distribution<double> moment(0.05, 1.0);
  KillRound k;
  std::set<std::string> before;
  for (int attempt = 0;; ++attempt) {
    REQUIRE(attempt < 60);
    const std::string args = fs::exists(out) ? "sweep --resume " + out + kQuick : first_args;
    const int ms = int(moment(rng) * whole_ms * (1 + attempt / 10.0));
    const auto status = kill_after(spawn(args, err), ms);
    INFO("attempt " << attempt << " (" << ms << " ms): " << args << "\n" << slurp(err));
    if (status) {
      REQUIRE(*status == 0);
      return k;
    }
    ++k.kills;
    if (!fs::exists(out)) {
      CHECK(before.empty());
      continue;
    }
    ResultsFile now;
    REQUIRE_NOTHROW(now = read_results(out));
    const std::set<std::string> keys = key_set(now);
    CHECK(keys.size() == now.rows.size());
    CHECK(std::includes(keys.begin(), keys.end(), before.begin(), before.end()));  // none lost
    k.kills_mid_sweep += !keys.empty() && keys.size() < total_rows;
    before = keys;
  }
}

}  // namespace

TEST_CASE("sweep killed at random moments and resumed: every point exactly once", "[faults]") {
  REQUIRE_TOOL();
  const auto dir = fresh_dir("kill");
  const std::string ref = (dir / "ref.json").string(), out = (dir / "r.json").string();
  const std::string sweep = kSmall;
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(run(sweep + "--out " + ref).status == 0);
  const int whole_ms = int(
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  const ResultsFile whole = read_results(ref);
  REQUIRE(whole.rows.size() == 20);
  std::mt19937 rng(20261206);
  int mid_sweep = 0;
  // rounds of kills until at least 3 landed mid-sweep (each round from a new file)
  for (int round = 0; round < 20 && mid_sweep < 3; ++round) {
    fs::remove(out);
    mid_sweep += kill_until_done(sweep + "--out " + out, out, whole_ms, whole.rows.size(), rng,
                                 dir / "err").kills_mid_sweep;
    const ResultsFile f = read_results(out);
    CHECK(row_keys(f).size() == key_set(f).size());  // no row twice
    CHECK(key_set(f) == key_set(whole));             // the stored sweep, not the whole preset
    for (const auto& r : f.environment.resumes) CHECK(r.change.empty());
    CHECK(f.sweep == whole.sweep);
    CHECK(file_io::leftover_temps(out, false).empty());
    CHECK_FALSE(fs::exists(file_io::lock_path(out)));
  }
  CHECK(mid_sweep >= 3);
  fs::remove_all(dir);
}

TEST_CASE("two sweeps writing one file: the second fails naming the first, or waits", "[faults]") {
  REQUIRE_TOOL();
  const auto dir = fresh_dir("writers");
  const std::string out = (dir / "r.json").string(), ref = (dir / "ref.json").string();
  // two new sweeps: the second is refused at once, naming the holder
  const pid_t first = spawn(kSmall + "--out " + out, dir / "err1");
  REQUIRE(wait_for_holder(out));
  Ran second = run(kSmall + "--out " + out);
  CHECK(wait_for(first) == 0);
  CHECK(second.status == 2);
  CHECK(lines(second.err) == 1);
  CHECK_THAT(second.err, Catch::Contains(out + ": is being written by another run: pid " +
                                         std::to_string(first)));
  fs::copy_file(out, ref);
  CHECK(read_results(ref).rows.size() == 20);
  // a new sweep with --wait waits for the first, then finds the file it wrote and keeps it
  fs::remove(out);
  const pid_t again = spawn(kSmall + "--out " + out, dir / "err1");
  REQUIRE(wait_for_holder(out));
  second = run(kSmall + "--wait 60 --out " + out);
  CHECK(wait_for(again) == 0);
  CHECK(second.status == 2);
  CHECK_THAT(second.err, Catch::Contains(out + ": exists; --resume continues it"));
  CHECK(key_set(read_results(out)) == key_set(read_results(ref)));
  // two resumes of one half-done file: without --wait the second is refused, naming the first
  write_cut(ref, out, 10);
  const pid_t resume = spawn("sweep --resume " + out + kQuick, dir / "err1");
  REQUIRE(wait_for_holder(out));
  second = run("sweep --resume " + out + kQuick);
  CHECK(wait_for(resume) == 0);
  CHECK(second.status == 2);
  CHECK_THAT(second.err,
             Catch::Contains("being written by another run: pid " + std::to_string(resume)));
  // with --wait both complete; the second reads the file the first left: no row, no record lost
  write_cut(ref, out, 10);
  const pid_t a = spawn("sweep --resume " + out + " --wait 60" + kQuick, dir / "err1");
  REQUIRE(wait_for_holder(out));
  const pid_t b = spawn("sweep --resume " + out + " --wait 60" + kQuick, dir / "err2");
  CHECK(wait_for(a) == 0);
  CHECK(wait_for(b) == 0);
  const ResultsFile f = read_results(out);
  CHECK(row_keys(f).size() == 20);
  CHECK(key_set(f) == key_set(read_results(ref)));
  CHECK(f.environment.resumes.size() == 2);
  fs::remove_all(dir);
}

TEST_CASE("a full disk fails the write in one line and leaves the results file as it was",
          "[faults]") {
  REQUIRE_TOOL();
  const auto dir = fresh_dir("full");
  const std::string out = (dir / "r.json").string(), fresh = (dir / "new.json").string();
  REQUIRE(run(kTiny + "--out " + out).status == 0);
  const std::string bytes = slurp(out);
  REQUIRE(bytes.size() > 1024);
  // a file size limit of 1 kB, under the file's size
  Ran r = run("sweep --resume " + out + kQuick, 1);
  CHECK(r.status == 2);
  CHECK(lines(r.err) == 1);
  CHECK_THAT(r.err, Catch::Contains(out + ": cannot write (File too large)") &&
                        Catch::Contains("the previous file is unchanged"));
  CHECK(slurp(out) == bytes);
  CHECK(file_io::leftover_temps(out, false).empty());
  CHECK_FALSE(fs::exists(file_io::lock_path(out)));
  r = run(kTiny + "--out " + fresh, 1);
  CHECK(r.status == 2);
  CHECK_THAT(r.err,
             Catch::Contains(fresh + ": cannot write (File too large); nothing was written"));
  CHECK_FALSE(fs::exists(fresh));
  // the disk fills mid-sweep: the rows written so far stay readable, and a resume finishes
  const size_t full = fs::file_size(out);
  // (room for the file before its first row, and about one row)
  r = run(kTiny + "--axis seq_len=16,32,48,64 --out " + fresh, full / 1024 + 1);
  CHECK(r.status == 2);
  CHECK_THAT(r.err, Catch::Contains(fresh + ": cannot write (File too large)"));
  if (fs::exists(fresh)) {
    ResultsFile part;
    REQUIRE_NOTHROW(part = read_results(fresh));
    CHECK(part.rows.size() < 4);
    CHECK(run("sweep --resume " + fresh + kQuick).status == 0);
    CHECK(read_results(fresh).rows.size() == 4);
  }
  fs::remove_all(dir);
}

TEST_CASE("sweep --resume replays the stored sweep and refuses changes without --extend",
          "[faults]") {
  REQUIRE_TOOL();
  const auto dir = fresh_dir("refuse");
  const std::string out = (dir / "r.json").string();
  REQUIRE(run(kTiny + "--out " + out).status == 0);
  const std::string bytes = slurp(out);
  const std::vector<std::string> changing = {
      "--preset smoke", "--sweep " + preset_path("smoke"), "--kernels lisa_mini",
      "--axis seq_len=32", "--vanilla vanilla_flash", "--min-time 0.5", "--min-reps 4",
      "--max-reps 9", "--warmup 2", "--max-point-seconds 5", "--memory-limit 2G",
      "--threads 1", "--warm", "--shard 1/2"};
  for (const std::string& option : changing) {
    INFO(option);
    const Ran r = run("sweep --resume " + out + " " + option);
    CHECK(r.status == 2);
    CHECK(lines(r.err) == 1);
    CHECK_THAT(r.err, Catch::StartsWith("attnbench: error: " + out + ": ") &&
                          Catch::Contains(option.substr(0, option.find(' '))));
    CHECK(slurp(out) == bytes);
  }
  // unchanged: no options, the same backend, or the whole first command again
  CHECK(run("sweep --resume " + out + " --quiet --no-calibrate --backend cpu").status == 0);
  CHECK(run(kTiny + "--out " + out + " --resume " + out).status == 0);
  // the stored timing is replayed: 3 samples, not the default plan
  write_cut(out, out, 0);
  REQUIRE(run("sweep --resume " + out + kQuick).status == 0);
  ResultsFile f = read_results(out);
  REQUIRE(f.rows.size() == 1);
  REQUIRE(f.rows[0].time);
  CHECK(f.rows[0].time->count == 3);
  CHECK(f.environment.resumes.size() == 3);
  for (const auto& rec : f.environment.resumes) CHECK(rec.change.empty());
  // --extend: the new points run and the change is recorded; a plain resume then replays it
  REQUIRE(run("sweep --resume " + out +
              " --extend --no-calibrate --kernels vanilla_materialized,lisa_mini --axis seq_len=32")
              .status == 0);
  f = read_results(out);
  CHECK(f.rows.size() == 3);
  CHECK(f.environment.resumes.back().change == "axis seq_len += 32; kernels += lisa_mini");
  REQUIRE(run("sweep --resume " + out + " --extend --min-reps 4" + kQuick).status == 0);
  f = read_results(out);
  CHECK_THAT(f.environment.resumes.back().change,
             Catch::StartsWith("timing cpu min_reps 3 -> 4; timing cpu max_reps 3 -> 4") &&
                 Catch::Contains("from now on"));
  CHECK(f.rows.size() == 3);
  const ojson extended = f.sweep;
  CHECK(run("sweep --resume " + out + " --min-reps 4" + kQuick).status == 0);  // no change now
  CHECK(read_results(out).sweep == extended);
  CHECK(read_results(out).environment.resumes.back().change.empty());
  // a file that stores no sweep cannot be replayed; --extend needs --resume
  std::ifstream in(out);
  ojson j = ojson::parse(in);
  j["sweep"] = nullptr;
  const std::string old = (dir / "old.json").string();
  std::ofstream(old) << j.dump(1);
  Ran r = run("sweep --resume " + old);
  CHECK(r.status == 2);
  CHECK(lines(r.err) == 1);
  CHECK_THAT(r.err, Catch::Contains(old + ": stores no sweep"));
  r = run(kTiny + "--extend --out " + (dir / "x.json").string());
  CHECK(r.status == 2);
  CHECK_THAT(r.err, Catch::Contains("--extend needs --resume"));
  fs::remove_all(dir);
}

TEST_CASE("resume_plan: the stored sweep, a refusal naming the option, or the extension",
          "[faults]") {
  SweepArgs first;
  first.kernels = "vanilla_materialized";
  first.axes = {"seq_len=16", "head_dim=8"};
  first.min_reps = 3;
  SweepSpec spec = assemble_spec(first);
  spec.backends = {"cpu"};
  ResultsFile file;
  file.sweep = to_json(spec);
  SweepArgs again;
  again.resume = "r.json";
  CHECK(same_sweep(resume_plan(again, file).spec, spec));
  CHECK(resume_plan(again, file).change.empty());
  again.axes = {"seq_len=16,64"};
  CHECK_THROWS_WITH(resume_plan(again, file),
                    Catch::StartsWith("r.json: --axis seq_len=16,64 would change the sweep it "
                                      "stores (axis seq_len += 64)"));
  again.extend = true;
  const ResumePlan plan = resume_plan(again, file);
  CHECK(plan.change == "axis seq_len += 64");
  REQUIRE(plan.spec.groups.size() == 2);
  CHECK(plan.spec.groups[1].name == "main+1");
  CHECK(expand(plan.spec, {Backend::cpu}).size() == 2);  // 16 once, 64 added
  SweepArgs timing;
  timing.resume = "r.json";
  timing.extend = true;
  timing.min_time = 0.01;
  CHECK(resume_plan(timing, file).change ==
        "timing cpu min_time_s 0.1 -> 0.01 (settings for the points run from now on; rows "
        "already in the file keep theirs)");
  CHECK(resume_plan(timing, file).spec.groups.size() == 1);
  file.shard = "1/2";
  CHECK_THROWS_WITH(resume_plan(again, file),
                    Catch::StartsWith("r.json: holds shard 1/2; --extend"));
  file.sweep = nullptr;
  CHECK_THROWS_WITH(resume_plan(again, file), Catch::StartsWith("r.json: stores no sweep"));
}
