// Method parameters are declared by the kernels (ParamSpec) and nowhere else: the registry
// refuses ill-formed or clashing declarations, and a parameter declared by one test kernel
// becomes a sweep axis, a validated value, a results-row field and a repro flag with no edit
// to Problem or the harness.
#include <catch2/catch.hpp>

#include <memory>

#include "attnbench/descriptions.hpp"
#include "attnbench/kernel.hpp"
#include "results.hpp"
#include "sweep.hpp"

namespace attnbench {
namespace {

// Vanilla-shaped kernel whose only job is to declare parameters; it copies v to the output.
class DeclaringKernel : public Kernel {
 public:
  DeclaringKernel(std::string name, std::vector<ParamSpec> params) {
    info_ = method_info("", Backend::cpu, "test", "a kernel that declares parameters", kInputQKV,
                        std::move(params));
    info_.name = std::move(name);
  }
  const KernelInfo& info() const override { return info_; }
  WorkspaceSize workspace(const Problem&) const override { return {}; }
  void run(const Problem& p, const Inputs& in, const void*, void*, float* out,
           const ExecContext&) const override {
    for (size_t i = 0; i < output_elems(p); ++i) out[i] = in.v[i] * float(p.real_param("temperature"));
  }
  double flops(const Problem& p) const override { return double(output_elems(p)); }

 private:
  KernelInfo info_;
};

std::unique_ptr<Kernel> declaring(std::string name, std::vector<ParamSpec> params) {
  return std::make_unique<DeclaringKernel>(std::move(name), std::move(params));
}

ParamSpec temperature() { return real_param("temperature", 1.0, 0.25, 8.0, "softmax temperature"); }

// Registers a kernel in the process-wide registry for the length of a test.
struct ScopedKernel {
  std::string name;
  explicit ScopedKernel(std::unique_ptr<Kernel> k) : name(k->info().name) {
    Registry::instance().add(std::move(k));
  }
  ~ScopedKernel() { Registry::instance().remove(name, Backend::cpu); }
};

}  // namespace

TEST_CASE("the registry refuses ill-formed and clashing parameter declarations", "[params]") {
  Registry reg;
  auto refused = [&](std::vector<ParamSpec> ps, const char* why) {
    INFO(why);
    CHECK_THROWS_WITH(reg.add(declaring("k_bad", std::move(ps))), Catch::Contains(why));
  };
  refused({int_param("Bad Name", 1, 0, 2, "doc")}, "not a lower-case identifier");
  refused({int_param("seq_len", 1, 0, 2, "doc")}, "is a shape axis");
  refused({int_param("w", 1, 0, 2, "doc"), int_param("w", 1, 0, 2, "doc")}, "declared twice");
  refused({int_param("w", 1, 3, 2, "doc")}, "above max");
  refused({int_param("w", 5, 0, 2, "doc")}, "the default must lie in");
  refused({flag_param("f", false, "")}, "no doc line");
  refused({real_param("r", std::nan(""), 0, 1, "doc")}, "finite");

  reg.add(declaring("k_one", {int_param("width", 4, 1, 64, "doc")}));
  CHECK_THROWS_WITH(reg.add(declaring("k_two", {real_param("width", 4, 1, 64, "doc")})),
                    Catch::Contains("parameter 'width' is real but k_one declares it integer"));
  CHECK_THROWS_WITH(reg.add(declaring("k_one", {})), Catch::Contains("registered twice"));
  reg.add(declaring("k_three", {int_param("width", 8, 1, 128, "doc")}));  // same kind: fine
  REQUIRE(reg.parameters().size() == 1);
  CHECK(reg.parameter("width")->kind == ParamKind::integer);
  CHECK(reg.parameter("height") == nullptr);
}

TEST_CASE("a parameter declared by one kernel is an axis, a checked value and a row field",
          "[params]") {
  ScopedKernel scoped(declaring("k_temperature", {temperature()}));
  const Kernel& k = Registry::instance().get("k_temperature", Backend::cpu);

  // the sweep knows the axis now, and checks its values against the declaration
  SweepSpec s = builtin_sweep();
  override_kernels(s, {"k_temperature", "vanilla_flash"});
  const auto [axis, values] = parse_axis_override("temperature=0.5,2");
  override_axis(s, axis, values);
  override_axis(s, "seq_len", {8});
  const auto pts = expand(s, {Backend::cpu});
  REQUIRE(pts.size() == 3);  // vanilla_flash does not read it: one point, not two
  int with_temperature = 0;
  for (const Point& pt : pts)
    if (pt.kernel == &k) {
      ++with_temperature;
      CHECK(pt.problem.has_param("temperature"));
      CHECK(pt.describe().find("temperature=") != std::string::npos);
    } else {
      CHECK_FALSE(pt.problem.has_param("temperature"));
    }
  CHECK(with_temperature == 2);
  CHECK_THROWS_WITH(parse_axis_override("temperature=9"), Catch::Contains("not a valid value"));
  CHECK_THROWS_WITH(parse_axis_override("pressure=1"), Catch::Contains("unknown axis 'pressure'"));

  // the kernel refuses what its declaration refuses, naming the parameter
  Problem bad = with_defaults(k, Problem{});
  bad.set_param("temperature", 0.1);
  CHECK_THROWS_WITH(k.validate(bad), Catch::Contains("temperature") && Catch::Contains("[0.25, 8]"));

  // a results row carries it in its axes, reads it back, and its repro sets it
  Row r;
  r.kernel = "k_temperature";
  r.family = "test";
  r.problem = pts[1].problem;
  const Row back = row_from_json(to_json(r), "row");
  CHECK(back.problem.real_param("temperature") == r.problem.real_param("temperature"));
  CHECK(row_key(back) == row_key(r));
  CHECK(repro_command(pts[1], "").find("--axis temperature=") != std::string::npos);
}

}  // namespace attnbench
