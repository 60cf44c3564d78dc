#include "file_io.hpp"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <thread>

#include <fmt/format.h>

#include "attnbench/problem.hpp"
#include "sysinfo.hpp"

namespace attnbench::file_io {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const std::string& who, const std::string& what) {
  throw InvalidProblem(fmt::format("{}: {}", who, what));
}

// FNV-1a: a stable short stand-in for a file name too long to extend.
uint64_t name_hash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// `prefix + name + suffix` when `room` more bytes still fit NAME_MAX, else the name replaced
// by its hash.
std::string fitted_name(const std::string& prefix, const std::string& name,
                        const std::string& suffix, size_t room = 0) {
  if (prefix.size() + name.size() + suffix.size() + room <= NAME_MAX) return prefix + name + suffix;
  return fmt::format("{}{:016x}{}", prefix, name_hash(name), suffix);
}

// The temporary names of a target all start with ".<name or hash>."; the pid and ".tmp"
// follow (room for a 10-digit pid, so the choice never depends on the pid).
std::string temp_stem(const std::string& name) { return fitted_name(".", name, ".", 14); }

std::string folder_of(const fs::path& p) {
  return p.has_parent_path() ? p.parent_path().string() : std::string(".");
}

// A symlink is followed to the file it finally names (which must exist).
fs::path resolved(const std::string& path, const std::string& who) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return path;
  std::error_code ec;
  const fs::path real = fs::canonical(path, ec);
  if (ec) fail(who, "is a symlink to nothing (a dangling link): point it at a file or remove it");
  return real;
}

bool process_exists(long pid) { return ::kill(pid_t(pid), 0) == 0 || errno == EPERM; }

void write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::system_error(errno, std::generic_category());
    bytes.remove_prefix(size_t(n));
  }
}

// Writes `bytes` to the new file `tmp` (mode of `like` when it exists) and syncs it; throws
// std::system_error with the failing call's errno.
void write_temp(const std::string& tmp, std::string_view bytes, const Target& like) {
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0 && errno == EEXIST && ::unlink(tmp.c_str()) == 0)  // this pid's own leftover
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) throw std::system_error(errno, std::generic_category());
  try {
    struct stat st {};
    if (like.exists && ::stat(like.path.c_str(), &st) == 0) ::fchmod(fd, st.st_mode & 07777);
    write_all(fd, bytes);
    if (::fsync(fd) != 0) throw std::system_error(errno, std::generic_category());
  } catch (...) {
    ::close(fd);
    throw;
  }
  // close reports the write errors some file systems (NFS) defer
  if (::close(fd) != 0) throw std::system_error(errno, std::generic_category());
}

void sync_folder(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);  // some file systems refuse to sync a folder: the rename is done either way
  ::close(fd);
}

std::string read_holder(int fd) {
  char buf[512] = {};
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  std::string s(buf, n > 0 ? size_t(n) : 0);
  for (char& c : s) c = (c == '\n' || c == '\r') ? ' ' : c;
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s.empty() ? "a process that has not written its name yet" : s;
}

// The lock file still has the inode `fd` locked (a releasing holder unlinks it).
bool still_linked(int fd, const std::string& path) {
  struct stat a {}, b {};
  return ::fstat(fd, &a) == 0 && ::stat(path.c_str(), &b) == 0 && a.st_ino == b.st_ino &&
         a.st_dev == b.st_dev;
}

}  // namespace

const char* file_kind(mode_t m) {
  if (S_ISDIR(m)) return "a folder";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISLNK(m)) return "a symlink";
  return "not a regular file";
}

Target check_output_target(const std::string& path, const std::string& option) {
  const std::string who = option.empty() ? path : option + " " + path;
  if (path.empty()) fail(option.empty() ? "output" : option, "an empty path");
  const fs::path real = resolved(path, who);
  if (real.filename().string().size() > NAME_MAX)
    fail(who, fmt::format("the file name is longer than {} bytes", NAME_MAX));
  struct stat st {};
  if (::stat(real.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode))
      fail(who, fmt::format("is {}, not a file (name the file to write)", file_kind(st.st_mode)));
    return {real.string(), true};
  }
  if (errno != ENOENT) fail(who, std::strerror(errno));
  const std::string dir = folder_of(real);
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    fail(who, fmt::format("the folder {} does not exist", dir));
  return {real.string(), false};
}

std::string temp_name(const std::string& name, long pid) {
  return fmt::format("{}{}.tmp", temp_stem(name), pid);
}

void write_atomic(const std::string& path, std::string_view bytes) {
  const Target t = check_output_target(path);
  const fs::path final_path(t.path);
  const std::string dir = folder_of(final_path);
  const std::string tmp = (fs::path(dir) / temp_name(final_path.filename().string(), getpid())).string();
  try {
    write_temp(tmp, bytes, t);
    if (::rename(tmp.c_str(), t.path.c_str()) != 0)
      throw std::system_error(errno, std::generic_category());
  } catch (const std::system_error& e) {
    ::unlink(tmp.c_str());
    fail(path, fmt::format("cannot write ({}); {}", e.code().message(),
                           t.exists ? "the previous file is unchanged" : "nothing was written"));
  }
  sync_folder(dir);
}

void write_new(const std::string& path, std::string_view bytes) {
  const Target t = check_output_target(path);
  if (t.exists) fail(path, "exists; it is not overwritten");
  const fs::path final_path(t.path);
  const std::string dir = folder_of(final_path);
  const std::string tmp = (fs::path(dir) / temp_name(final_path.filename().string(), getpid())).string();
  int err = 0;
  try {
    write_temp(tmp, bytes, t);
    // link, unlike rename, fails when the target appeared meanwhile: nothing is ever replaced
    if (::link(tmp.c_str(), t.path.c_str()) != 0) err = errno;
  } catch (const std::system_error& e) {
    err = e.code().value();
  }
  ::unlink(tmp.c_str());
  if (err == EEXIST) fail(path, "exists; it is not overwritten");
  if (err != 0) fail(path, fmt::format("cannot create ({})", std::strerror(err)));
  sync_folder(dir);
}

std::vector<LeftoverTemp> leftover_temps(const std::string& target, bool remove_orphans) {
  const fs::path real = resolved(target, target);
  const std::string name = real.filename().string();
  // ".<name or hash>.<pid>.tmp" (temp_name) and "<name>.tmp.<pid>" (earlier versions)
  const std::string ours = temp_stem(name), old = name + ".tmp.";
  std::vector<LeftoverTemp> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(folder_of(real), ec)) {
    const std::string f = e.path().filename().string();
    std::string digits;
    if (f.size() > ours.size() + 4 && f.starts_with(ours) && f.ends_with(".tmp"))
      digits = f.substr(ours.size(), f.size() - ours.size() - 4);
    else if (f.size() > old.size() && f.starts_with(old))
      digits = f.substr(old.size());
    if (digits.empty() || digits.size() > 10 || digits.find_first_not_of("0123456789") != std::string::npos)
      continue;
    LeftoverTemp t{e.path().string(), std::stol(digits), false, false};
    t.writer_running = process_exists(t.pid);
    if (remove_orphans && !t.writer_running) t.removed = fs::remove(e.path(), ec);
    found.push_back(std::move(t));
  }
  return found;
}

void check_create_only(const std::string& path, const std::string& resumed, bool force) {
  std::error_code ec;
  if (force || !fs::exists(path, ec)) return;
  if (!resumed.empty() && fs::equivalent(path, resumed, ec)) return;
  fail(path, "exists; --resume continues it, --force replaces it (or choose another --out)");
}

std::string lock_path(const std::string& target) {
  const fs::path real = resolved(target, target);
  return (fs::path(folder_of(real)) / fitted_name("", real.filename().string(), ".lock")).string();
}

RunLock::RunLock(const std::string& target, const std::string& command_line, double wait_seconds)
    : path_(file_io::lock_path(target)) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(wait_seconds);
  for (;;) {
    const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) fail(path_, fmt::format("cannot create the lock file ({})", std::strerror(errno)));
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
      if (still_linked(fd, path_)) {
        fd_ = fd;
        break;
      }
      ::close(fd);  // its holder released and removed it meanwhile: lock the new one
      continue;
    }
    const int err = errno;
    const std::string holder = read_holder(fd);
    ::close(fd);
    if (err != EWOULDBLOCK) fail(path_, fmt::format("cannot lock ({})", std::strerror(err)));
    if (std::chrono::steady_clock::now() >= deadline)
      fail(target, fmt::format("is being written by another run: {} (lock {}{})", holder, path_,
                               wait_seconds > 0 ? fmt::format(", waited {} s", wait_seconds) : ""));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const std::string me = fmt::format("pid {} on {}: {}\n", getpid(), sysinfo::host_name(), command_line);
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) < 0) {
    // the lock holds without the note; a waiting writer then cannot name this run
  }
}

RunLock::~RunLock() {
  // unlinked while still locked, so a writer waiting on this inode retries on a fresh file
  ::unlink(path_.c_str());
  ::close(fd_);
}

// ---- reading -----------------------------------------------------------------------------

int open_regular(const std::string& path, size_t& size, const char* what) {
  if (path.empty()) fail("input", fmt::format("an empty path where {} belongs", what));
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    fail(path, fmt::format("cannot open ({})", std::strerror(errno)));
  if (!S_ISREG(st.st_mode)) fail(path, fmt::format("is {}, not {}", file_kind(st.st_mode), what));
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) fail(path, fmt::format("cannot open ({})", std::strerror(errno)));
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "changed while being opened (no longer a regular file)");
  }
  size = size_t(st.st_size);
  return fd;
}

std::string read_regular(const std::string& path, size_t max_bytes, const char* what) {
  size_t size = 0;
  const int fd = open_regular(path, size, what);
  if (size > max_bytes) {
    ::close(fd);
    fail(path, fmt::format("is {} bytes, too large for {} (at most {} bytes)", size, what,
                           max_bytes));
  }
  std::string text(size, '\0');
  size_t got = 0;
  while (got < size) {
    const ssize_t n = ::pread(fd, text.data() + got, size - got, off_t(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      fail(path, n == 0 ? "read error (the file shrank while being read)"
                        : fmt::format("read error ({})", std::strerror(err)));
    }
    got += size_t(n);
  }
  ::close(fd);
  return text;
}

}  // namespace attnbench::file_io
