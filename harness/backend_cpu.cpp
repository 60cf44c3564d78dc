// The cpu runner (backend.hpp): every buffer of a point (inputs copied from the host inputs,
// output, prepared state, scratch) comes from the counting allocator of heap.hpp, 64-byte
// aligned; single runs are timed with the steady clock. The measured peak is the whole-heap
// high-water mark when the executable interposes malloc (the attnbench tool does), so memory
// a kernel or BLAS allocates behind the harness's back shows; otherwise it is the counting
// allocator's high-water mark.
#include <chrono>
#include <cstring>

#include <fmt/format.h>

#include "backend.hpp"
#include "heap.hpp"

namespace attnbench {
namespace {

class CpuBuffer {
 public:
  CpuBuffer() = default;
  explicit CpuBuffer(size_t bytes) : p_(heap::counted_alloc(bytes)), bytes_(bytes) {}
  CpuBuffer(const CpuBuffer&) = delete;
  CpuBuffer& operator=(const CpuBuffer&) = delete;
  CpuBuffer(CpuBuffer&& o) noexcept { swap(o); }
  CpuBuffer& operator=(CpuBuffer&& o) noexcept {
    CpuBuffer t(std::move(o));
    swap(t);
    return *this;
  }
  ~CpuBuffer() { heap::counted_free(p_, bytes_); }
  void* get() const { return p_; }
  template <class T>
  T* as() const { return static_cast<T*>(p_); }

 private:
  void swap(CpuBuffer& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(bytes_, o.bytes_);
  }
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

template <class T>
CpuBuffer copy_of(const std::vector<T>& v) {
  CpuBuffer b(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(b.get(), v.data(), v.size() * sizeof(T));
  return b;
}

class CpuRunner final : public BackendRunner {
 public:
  Backend backend() const override { return Backend::cpu; }

  void setup(const Kernel& k, const Problem& p, const HostInputs& in) override {
    teardown();
    if (k.info().backend != Backend::cpu)
      throw InvalidProblem(fmt::format("{} is a {} kernel, not a cpu kernel", k.info().name,
                                       backend_name(k.info().backend)));
    k.validate(p);
    k.validate_inputs(p, in.view());
    mem_ = declared_memory(k, p);

    heap::reset_heap_peak();
    heap::reset_counted_peak();
    try {
      q_ = copy_of(in.q);
      k_ = copy_of(in.k);
      v_ = copy_of(in.v);
      codes_ = copy_of(in.codes);
      codebooks_ = copy_of(in.codebooks);
      wq_ = copy_of(in.wq);
      wk_ = copy_of(in.wk);
      wv_ = copy_of(in.wv);
      probs_ = copy_of(in.probs);
      conv_ = copy_of(in.conv);
      out_ = CpuBuffer(mem_.outputs_bytes);
      prepared_ = CpuBuffer(mem_.prepared_bytes);
      scratch_ = CpuBuffer(mem_.scratch_bytes);
    } catch (const std::bad_alloc&) {
      const size_t need = mem_.peak_bytes();
      teardown();
      throw std::runtime_error(
          fmt::format("cpu: cannot allocate {} bytes for {} ({})", need, k.info().name, describe(p)));
    }
    view_.q = q_.as<float>();
    view_.k = k_.as<float>();
    view_.v = v_.as<float>();
    view_.codes = codes_.as<int32_t>();
    view_.codebooks = codebooks_.as<float>();
    view_.wq = wq_.as<float>();
    view_.wk = wk_.as<float>();
    view_.wv = wv_.as<float>();
    view_.probs = probs_.as<float>();
    view_.conv = conv_.as<float>();
    poison(out_.as<float>(), output_elems(p));
    kernel_ = &k;
    problem_ = p;
    ctx_ = ExecContext{};  // threads: all OpenMP threads (the harness sets their number)
    k.prepare(p, view_, prepared_.get(), ctx_);
  }

  double run_once_ms() override {
    if (!kernel_) throw std::logic_error("cpu runner: run before setup");
    const auto t0 = std::chrono::steady_clock::now();
    kernel_->run(problem_, view_, prepared_.get(), scratch_.get(), out_.as<float>(), ctx_);
    const auto t1 = std::chrono::steady_clock::now();
    return std::chrono::duration<double, std::milli>(t1 - t0).count();
  }

  std::vector<PhaseTime> profile_run(double* wall_ms) override {
    if (!kernel_) throw std::logic_error("cpu runner: profile before setup");
    PhaseProfile profile;
    ExecContext ctx = ctx_;
    ctx.phases = &profile;
    const auto t0 = std::chrono::steady_clock::now();
    kernel_->run(problem_, view_, prepared_.get(), scratch_.get(), out_.as<float>(), ctx);
    const auto t1 = std::chrono::steady_clock::now();
    if (wall_ms) *wall_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
    return profile.phases();
  }

  std::vector<float> output() override {
    if (!kernel_) throw std::logic_error("cpu runner: output before setup");
    const size_t n = output_elems(problem_);
    return std::vector<float>(out_.as<float>(), out_.as<float>() + n);
  }

  MemoryFigures memory() const override { return mem_; }

  // Wall time of each call; nothing is flushed between samples (docs/measurement.md 3.3).
  RunNotes notes() const override { return {"steady_clock", "warm", {}, {}, {}}; }

  size_t measured_peak_bytes() const override {
    return heap::interposed() ? heap::heap_peak_since_reset() : heap::counted_peak_since_reset();
  }

  void teardown() override {
    kernel_ = nullptr;
    view_ = Inputs{};
    for (CpuBuffer* b : {&q_, &k_, &v_, &codes_, &codebooks_, &wq_, &wk_, &wv_, &probs_, &conv_,
                         &out_, &prepared_, &scratch_})
      *b = CpuBuffer();
  }

  ~CpuRunner() override { teardown(); }

 private:
  const Kernel* kernel_ = nullptr;
  Problem problem_;
  ExecContext ctx_;
  MemoryFigures mem_;
  Inputs view_;
  CpuBuffer q_, k_, v_, codes_, codebooks_, wq_, wk_, wv_, probs_, conv_, out_, prepared_,
      scratch_;
};

}  // namespace

std::unique_ptr<BackendRunner> make_cpu_runner() { return std::make_unique<CpuRunner>(); }

}  // namespace attnbench
