// harness/file_io: atomic writes that never lose the previous file (a full disk included),
// output targets (symlinks, folders, FIFOs, long names), the run lock between processes,
// create-only writing and leftover temporary files.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "attnbench/problem.hpp"
#include "file_io.hpp"
#include "scratch_files.hpp"

using namespace attnbench;
namespace fs = std::filesystem;

namespace {

using attnbench::testing::slurp;

fs::path fresh_dir(const std::string& name) { return testing::scratch_dir("test_file_io", name); }

void put(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

// Runs `body` in a child process; its exit status and what it wrote to `out`.
struct Child {
  int status = -1;
  std::string said;
};
Child in_child(const std::function<int(int out)>& body) {
  int p[2];
  REQUIRE(pipe(p) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(p[0]);
    _exit(body(p[1]));  // _exit: the child must not run the parent's test teardown
  }
  close(p[1]);
  Child c;
  char buf[1024];
  for (ssize_t n; (n = read(p[0], buf, sizeof buf)) > 0;) c.said.append(buf, size_t(n));
  close(p[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  c.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return c;
}

void say(int fd, const std::string& s) {
  if (write(fd, s.data(), s.size()) < 0) _exit(9);
}

// A pid no process can have (above the kernel's pid_max).
constexpr long kGonePid = 999999999;

}  // namespace

TEST_CASE("write_atomic replaces the whole file and keeps its permissions", "[harness][file_io]") {
  const auto dir = fresh_dir("atomic");
  const auto path = dir / "r.json";
  file_io::write_atomic(path.string(), "first\n");
  CHECK(slurp(path) == "first\n");
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
  file_io::write_atomic(path.string(), "second\n");
  CHECK(slurp(path) == "second\n");
  CHECK(fs::status(path).permissions() == (fs::perms::owner_read | fs::perms::owner_write));
  CHECK(file_io::leftover_temps(path.string(), false).empty());
  fs::remove_all(dir);
}

TEST_CASE("a full disk leaves the previous file intact and says so in one line",
          "[harness][file_io]") {
  const auto dir = fresh_dir("full");
  const auto path = dir / "r.json";
  put(path, "the previous results\n");
  // a child under a 64 kB file size limit writes 1 MB: the write fails with EFBIG
  const Child c = in_child([&](int out) {
    signal(SIGXFSZ, SIG_IGN);
    const rlimit lim{65536, 65536};
    if (setrlimit(RLIMIT_FSIZE, &lim) != 0) return 8;
    try {
      file_io::write_atomic(path.string(), std::string(size_t(1) << 20, 'x'));
    } catch (const InvalidProblem& e) {
      say(out, e.what());
      return 2;
    }
    return 0;
  });
  CHECK(c.status == 2);
  CHECK_THAT(c.said, Catch::StartsWith(path.string() + ": cannot write (File too large)") &&
                         Catch::Contains("the previous file is unchanged"));
  CHECK(c.said.find('\n') == std::string::npos);
  CHECK(slurp(path) == "the previous results\n");
  CHECK(file_io::leftover_temps(path.string(), false).empty());
  fs::remove_all(dir);
}

TEST_CASE("a 255-byte file name is written, locked and cleaned up", "[harness][file_io]") {
  const auto dir = fresh_dir("long");
  const std::string name = std::string(NAME_MAX - 5, 'n') + ".json";  // exactly NAME_MAX
  const auto path = dir / name;
  CHECK(file_io::check_output_target(path.string()).exists == false);
  file_io::write_atomic(path.string(), "a");
  file_io::write_atomic(path.string(), "b");
  CHECK(slurp(path) == "b");
  CHECK(file_io::temp_name(name, 4194304).size() <= NAME_MAX);
  {
    const file_io::RunLock lock(path.string(), "test");
    CHECK(fs::path(lock.lock_path()).filename().string().size() <= NAME_MAX);
    CHECK(fs::exists(lock.lock_path()));
  }
  put(dir / file_io::temp_name(name, kGonePid), "partial");
  const auto found = file_io::leftover_temps(path.string(), true);
  REQUIRE(found.size() == 1);
  CHECK(found[0].removed);
  // one byte more is not a legal name
  CHECK_THROWS_WITH(file_io::check_output_target((dir / (name + "x")).string(), "--out"),
                    Catch::Contains("longer than 255 bytes"));
  CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 1);  // the file
  fs::remove_all(dir);
}

TEST_CASE("output targets: symlinks are written through, anything but a file is refused",
          "[harness][file_io]") {
  const auto dir = fresh_dir("targets");
  put(dir / "real.json", "old");
  fs::create_symlink("real.json", dir / "link.json");
  file_io::write_atomic((dir / "link.json").string(), "new");
  CHECK(fs::is_symlink(dir / "link.json"));
  CHECK(slurp(dir / "real.json") == "new");
  CHECK(file_io::check_output_target((dir / "link.json").string()).path ==
        fs::canonical(dir / "real.json").string());

  fs::create_symlink("nowhere.json", dir / "dangling.json");
  CHECK_THROWS_WITH(file_io::check_output_target((dir / "dangling.json").string(), "--out"),
                    Catch::Contains("dangling"));
  fs::create_directory(dir / "folder.json");
  CHECK_THROWS_WITH(file_io::check_output_target((dir / "folder.json").string(), "--out"),
                    Catch::StartsWith("--out " + (dir / "folder.json").string() + ": is a folder"));
  REQUIRE(mkfifo((dir / "fifo.json").c_str(), 0600) == 0);
  CHECK_THROWS_WITH(file_io::write_atomic((dir / "fifo.json").string(), "x"),
                    Catch::Contains("is a FIFO"));  // refused without opening it: nothing blocks
  CHECK_THROWS_WITH(file_io::check_output_target("/dev/null", "--output"),
                    Catch::Contains("is a character device"));
  CHECK_THROWS_WITH(file_io::check_output_target((dir / "no" / "such" / "r.json").string()),
                    Catch::Contains("the folder") && Catch::Contains("does not exist"));
  CHECK_THROWS_WITH(file_io::check_output_target("", "--out"), Catch::Contains("empty"));
  const auto fresh = file_io::check_output_target((dir / "new.json").string());
  CHECK_FALSE(fresh.exists);
  CHECK(fs::is_fifo(dir / "fifo.json"));
  fs::remove_all(dir);
}

TEST_CASE("a second writer fails at once naming the first, or waits when asked",
          "[harness][file_io]") {
  const auto dir = fresh_dir("lock");
  const std::string path = (dir / "r.json").string();
  int ready[2], go[2];
  REQUIRE(pipe(ready) == 0);
  REQUIRE(pipe(go) == 0);
  const pid_t holder = fork();
  REQUIRE(holder >= 0);
  if (holder == 0) {
    int rc = 0;
    try {
      const file_io::RunLock lock(path, "attnbench sweep --out r.json (the first)");
      say(ready[1], "x");
      char c;
      if (read(go[0], &c, 1) != 1) rc = 4;
    } catch (...) {
      rc = 3;
    }
    _exit(rc);
  }
  char c;
  REQUIRE(read(ready[0], &c, 1) == 1);
  const std::string pid = "pid " + std::to_string(holder);
  CHECK_THROWS_WITH(file_io::RunLock(path, "the second"),
                    Catch::StartsWith(path + ": is being written by another run: " + pid) &&
                        Catch::Contains("(the first)"));
  CHECK_THROWS_WITH(file_io::RunLock(path, "the second", 0.3),
                    Catch::Contains(pid) && Catch::Contains("waited 0.3 s"));
  // a waiter gets the lock once the holder ends
  say(go[1], "x");
  {
    const file_io::RunLock lock(path, "the third", 30);
    CHECK_THAT(slurp(lock.lock_path()), Catch::StartsWith("pid " + std::to_string(getpid())) &&
                                            Catch::Contains("the third"));
  }
  int st = 0;
  waitpid(holder, &st, 0);
  CHECK((WIFEXITED(st) && WEXITSTATUS(st) == 0));
  CHECK_FALSE(fs::exists(file_io::lock_path(path)));  // removed on release
  fs::remove_all(dir);
}

TEST_CASE("an existing results file needs --resume or --force", "[harness][file_io]") {
  const auto dir = fresh_dir("create_only");
  const std::string path = (dir / "r.json").string(), other = (dir / "other.json").string();
  CHECK_NOTHROW(file_io::check_create_only(path, "", false));
  put(path, "{}");
  put(other, "{}");
  CHECK_THROWS_WITH(file_io::check_create_only(path, "", false),
                    Catch::StartsWith(path + ": exists") && Catch::Contains("--resume") &&
                        Catch::Contains("--force"));
  CHECK_NOTHROW(file_io::check_create_only(path, path, false));
  CHECK_THROWS(file_io::check_create_only(path, other, false));
  CHECK_NOTHROW(file_io::check_create_only(path, other, true));
  fs::remove_all(dir);
}

TEST_CASE("leftover temporary files are reported, and removed when their writer is gone",
          "[harness][file_io]") {
  const auto dir = fresh_dir("leftovers");
  const std::string path = (dir / "r.json").string();
  put(path, "{}");
  put(dir / file_io::temp_name("r.json", kGonePid), "partial");
  put(dir / file_io::temp_name("r.json", getpid()), "being written");
  put(dir / ("r.json.tmp." + std::to_string(kGonePid - 1)), "an earlier version's name");
  put(dir / file_io::temp_name("other.json", kGonePid), "another file's");
  auto found = file_io::leftover_temps(path, false);
  REQUIRE(found.size() == 3);
  for (const auto& t : found) {
    CHECK(t.writer_running == (t.pid == getpid()));
    CHECK_FALSE(t.removed);
  }
  found = file_io::leftover_temps(path, true);
  REQUIRE(found.size() == 3);
  for (const auto& t : found) CHECK(t.removed == (t.pid != getpid()));
  CHECK(fs::exists(dir / file_io::temp_name("r.json", getpid())));
  CHECK_FALSE(fs::exists(dir / file_io::temp_name("r.json", kGonePid)));
  CHECK(fs::exists(dir / file_io::temp_name("other.json", kGonePid)));
  fs::remove_all(dir);
}
