// Phase profiles: where a kernel's time goes, for the performance targets that are about one
// part of a kernel (LISA's histogram and weights against its product; vanilla's two products
// against its softmax pass). The harness runs a point once more, untimed by the samples, with
// ExecContext::phases pointing at a PhaseProfile; a kernel that supports it wraps its phases in
// PhaseScope (serial code, or one thread's share of a parallel loop) and the row records each
// phase's seconds, FLOPs and bytes. With ExecContext::phases null (every timed run) a scope
// costs one pointer test.
//
// Seconds are wall-equivalent: a scope that runs on one of `nt` threads in a parallel loop is
// created with `share = 1.0 / nt`, so the sum over threads is that phase's wall time when the
// threads are balanced. FLOPs and bytes are the phase's work (counted once, not per thread).
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace attnbench {

struct PhaseTime {
  std::string name;
  double seconds = 0;  // wall-equivalent (see above)
  double flops = 0;    // arithmetic of the phase, 0 if not counted
  double bytes = 0;    // bytes the phase must move at the least, 0 if not counted
};

class PhaseProfile {
 public:
  // Adds to the phase `name` (created on first use, in order of first use). Thread-safe.
  void add(const char* name, double seconds, double flops = 0, double bytes = 0) {
    std::lock_guard<std::mutex> lock(mu_);
    for (PhaseTime& p : phases_)
      if (p.name == name) {
        p.seconds += seconds;
        p.flops += flops;
        p.bytes += bytes;
        return;
      }
    phases_.push_back({name, seconds, flops, bytes});
  }
  std::vector<PhaseTime> phases() const {
    std::lock_guard<std::mutex> lock(mu_);
    return phases_;
  }
  void clear() {
    std::lock_guard<std::mutex> lock(mu_);
    phases_.clear();
  }

 private:
  mutable std::mutex mu_;
  std::vector<PhaseTime> phases_;
};

// Times its lifetime into `profile` (nothing when null). `share` scales the seconds (1/nt for
// one thread's part of a parallel loop); flops and bytes are added as given.
class PhaseScope {
 public:
  PhaseScope(PhaseProfile* profile, const char* name, double flops = 0, double bytes = 0,
             double share = 1.0)
      : profile_(profile), name_(name), flops_(flops), bytes_(bytes), share_(share) {
    if (profile_) t0_ = std::chrono::steady_clock::now();
  }
  PhaseScope(const PhaseScope&) = delete;
  PhaseScope& operator=(const PhaseScope&) = delete;
  ~PhaseScope() {
    if (!profile_) return;
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    profile_->add(name_, s * share_, flops_, bytes_);
  }

 private:
  PhaseProfile* profile_;
  const char* name_;
  double flops_, bytes_, share_;
  std::chrono::steady_clock::time_point t0_{};
};

// Phases that alternate inside one thread's loop (histogram, product, histogram, product...):
// lap(name) charges the time since the previous lap (or since construction) to `name`; the
// sums go to the profile once, when the object dies, scaled by `share`. Up to kMax names.
// Every call is a no-op without a profile.
class PhaseLaps {
 public:
  PhaseLaps(PhaseProfile* profile, double share) : profile_(profile), share_(share) {
    if (profile_) last_ = std::chrono::steady_clock::now();
  }
  PhaseLaps(const PhaseLaps&) = delete;
  PhaseLaps& operator=(const PhaseLaps&) = delete;
  void lap(const char* name, double flops = 0, double bytes = 0) {
    if (!profile_) return;
    const auto now = std::chrono::steady_clock::now();
    const double s = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    int i = 0;
    while (i < used_ && std::string_view(laps_[i].name) != name) ++i;
    if (i == used_) {
      if (used_ == kMax) return;  // more names than slots: dropped (a kernel bug, not data)
      laps_[used_++] = {name, 0, 0, 0};
    }
    laps_[i].seconds += s;
    laps_[i].flops += flops;
    laps_[i].bytes += bytes;
  }
  ~PhaseLaps() {
    if (!profile_) return;
    for (int i = 0; i < used_; ++i)
      profile_->add(laps_[i].name, laps_[i].seconds * share_, laps_[i].flops, laps_[i].bytes);
  }

 private:
  static constexpr int kMax = 6;
  struct Lap {
    const char* name;
    double seconds, flops, bytes;
  };
  PhaseProfile* profile_;
  double share_;
  std::chrono::steady_clock::time_point last_{};
  Lap laps_[kMax]{};
  int used_ = 0;
};

}  // namespace attnbench
