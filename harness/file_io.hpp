// Safe writing of the files the tools produce (results files, eval's output, baselines):
// what may be written (check_output_target), how (write_atomic: never a half-written or lost
// file), by whom (RunLock: one writer per results file) and whether an existing file may be
// replaced at all (check_create_only). docs/measurement.md section 10 describes the rules.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

namespace attnbench::file_io {

// The file a write to a path replaces.
struct Target {
  std::string path;     // the path itself, or the final target of a symlink
  bool exists = false;  // a regular file is there now; otherwise a new one is created
};

// An output path (--out, --output) must name a regular file or a new file in an existing
// folder. A symlink is written through: its target is replaced and the link stays, as a shell
// redirection would. A folder, FIFO, device, socket, dangling symlink, missing folder or a
// name longer than NAME_MAX is an InvalidProblem of one line naming `option` and the path.
Target check_output_target(const std::string& path, const std::string& option = "");

// Replaces the file at `path` (checked as above) with `bytes`, atomically: a temporary file in
// the target's folder (temp_name), written, fsync'ed, renamed over the target, then the folder
// fsync'ed so the rename survives a crash. On any failure (disk full, file size limit,
// permissions) the temporary file is removed, the previous file is untouched, and the
// InvalidProblem is one line naming the path and the cause. Processes calling this should
// ignore SIGXFSZ, so that a file size limit is an error rather than a kill.
void write_atomic(const std::string& path, std::string_view bytes);

// Creates `path` with `bytes` the same way, but only if no file is there: a file that exists,
// or appears while writing, is never replaced (an InvalidProblem naming the path).
void write_new(const std::string& path, std::string_view bytes);

// The temporary file name of a target file name: ".<name>.<pid>.tmp", or, when that could
// exceed NAME_MAX (255 bytes) for some pid, ".<16 hex digits of a hash of name>.<pid>.tmp".
std::string temp_name(const std::string& name, long pid);

// A temporary file of a target that a writer left behind (killed or crashed mid-write).
struct LeftoverTemp {
  std::string path;
  long pid = 0;                // the writer that created it
  bool writer_running = false; // a process with that pid exists: it may still be writing
  bool removed = false;
};
// The leftover temporary files of `target` in its folder (this module's names, and the
// "<name>.tmp.<pid>" names earlier versions used). With remove_orphans, those whose writer is
// gone are deleted. Pids are those of this host: a folder shared between hosts may show a
// remote writer as gone.
std::vector<LeftoverTemp> leftover_temps(const std::string& target, bool remove_orphans);

// Create-only writing of results files: an existing `path` may be written only when it is the
// file being resumed (`resumed`, "" when none) or with `force`; otherwise an InvalidProblem
// that names the path and both flags.
void check_create_only(const std::string& path, const std::string& resumed, bool force);

// An exclusive lock for a whole run that writes `target`: flock on a lock file beside the
// (symlink-resolved) target, "<name>.lock" (hashed like temp_name when too long), holding the
// holder's pid, host and command line. A second writer fails at once with an InvalidProblem
// naming the holder, or first waits up to `wait_seconds` for it. The lock file is removed on
// release; the kernel drops the lock if the holder dies.
class RunLock {
 public:
  RunLock(const std::string& target, const std::string& command_line, double wait_seconds = 0);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;
  const std::string& lock_path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

// The lock file RunLock uses for `target`.
std::string lock_path(const std::string& target);

// "a folder", "a FIFO", "a character device", ... for messages.
const char* file_kind(mode_t mode);

// ---- reading the files the tools are given ---------------------------------------------------

// Opens an input file for reading: `path` must be a regular file (stat first, so a FIFO or
// device is never opened; O_NONBLOCK and fstat of what was opened, so one swapped in cannot
// block either). `what` names what belongs there ("a .npy file"). Sets `size`; returns the
// descriptor. InvalidProblem("<path>: is a folder, not a .npy file"), "cannot open (...)".
int open_regular(const std::string& path, size_t& size, const char* what);
// The whole of a text input file (results file, sweep file, baseline), refused without
// reading when it is not a regular file or is larger than `max_bytes`.
std::string read_regular(const std::string& path, size_t max_bytes, const char* what);
// The largest JSON input read whole: parsing takes several times the text in memory.
constexpr size_t kMaxJsonInputBytes = size_t(256) << 20;

}  // namespace attnbench::file_io
