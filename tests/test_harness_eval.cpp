// `attnbench eval`: tensors written as .npy, evaluated, and compared with running the kernel
// directly; every kind of bad input is rejected with a message naming the file.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "eval.hpp"
#include "kernel_testing.hpp"
#include "npy.hpp"
#include "scratch_files.hpp"

using namespace attnbench;

namespace {

namespace fs = std::filesystem;

fs::path fresh_dir(const std::string& name) { return testing::scratch_dir("test_eval", name); }

// Writes a kernel's inputs as the .npy files eval reads.
void write_inputs(const fs::path& dir, const Problem& p, const HostInputs& in, bool codes_int64 = false) {
  auto param_or_0 = [&](const char* name) { return p.has_param(name) ? p.int_param(name) : 0; };
  const int64_t b = p.batch, h = p.heads, n = p.seq_len, dh = p.head_dim,
                B = param_or_0("codebooks"), W = param_or_0("codewords");
  auto f32 = [&](const char* name, const std::vector<float>& v, std::vector<int64_t> shape) {
    if (!v.empty()) npy::write((dir / name).string(), shape, v);
  };
  f32("q.npy", in.q, {b, h, n, dh});
  f32("k.npy", in.k, {b, h, n, dh});
  f32("v.npy", in.v, {b, h, n, dh});
  f32("codebooks.npy", in.codebooks, {h, B, W, dh});
  f32("wq.npy", in.wq, {h, B, dh, dh});
  f32("wk.npy", in.wk, {h, B, dh, dh});
  f32("wv.npy", in.wv, {h, B, dh, dh});
  f32("probs.npy", in.probs, {b, h, n, B, W});
  f32("conv.npy", in.conv, {h, param_or_0("conv_width"), dh});
  if (!in.codes.empty()) {
    if (codes_int64) {
      std::vector<int64_t> c(in.codes.begin(), in.codes.end());
      npy::write((dir / "codes.npy").string(), {b, h, n, B}, c);
    } else {
      npy::write((dir / "codes.npy").string(), {b, h, n, B}, in.codes);
    }
  }
}

struct Case {
  const char* kernel;
  bool causal;
  bool projections;
  bool codes_int64;
};

}  // namespace

TEST_CASE("eval round trips: .npy in, kernel, .npy out equals running the kernel directly",
          "[harness][eval]") {
  const Case cases[] = {
      {"vanilla_materialized", true, false, false}, {"vanilla_flash", false, false, false},
      {"lisa_base", true, false, false},            {"lisa_base", false, true, true},
      {"lisa_mini", true, true, false},             {"lisa_soft", true, false, false},
  };
  for (const Case& c : cases) {
    const Kernel& k = Registry::instance().get(c.kernel, Backend::cpu);
    SECTION(std::string(c.kernel) + (c.causal ? " causal" : " bidirectional") +
            (c.projections ? " projections" : "") + (c.codes_int64 ? " int64 codes" : "")) {
      Problem p = testing::problem_for(k, 2, 2, 48, 16, c.causal);
      if (k.info().inputs & kInputCodebooks) {
        p.set_param("codebooks", 3);
        p.set_param("codewords", 8);
        p.set_param("projections", c.projections);
      }
      const HostInputs in = make_inputs(p, k.info().inputs, 77);
      const fs::path dir = fresh_dir(std::string("ok_") + c.kernel);
      write_inputs(dir, p, in, c.codes_int64);

      EvalOptions o;
      o.kernel = c.kernel;
      o.inputs_dir = dir.string();
      o.output_path = (dir / "out.npy").string();
      o.causal = c.causal;
      const EvalResult r = run_eval(o);
      CHECK(r.problem.batch == 2);
      CHECK(r.problem.heads == 2);
      CHECK(r.problem.seq_len == 48);
      CHECK(r.problem.head_dim == 16);
      CHECK(r.problem.params == p.params);  // read back from the tensors' shapes
      CHECK(r.reference_rel_l2 < 1e-4);

      const auto direct = testing::run_guarded(k, p, in);
      const npy::Array out = npy::read(o.output_path);
      CHECK(out.descr == "<f4");
      CHECK(out.shape == std::vector<int64_t>{2, 2, 48, 16});
      REQUIRE(out.elems() == direct.out.size());
      std::vector<float> got(out.elems());
      std::memcpy(got.data(), out.data.data(), got.size() * sizeof(float));
      double max_diff = 0;
      for (size_t i = 0; i < got.size(); ++i)
        max_diff = std::max(max_diff, double(std::fabs(got[i] - direct.out[i])));
      CHECK(max_diff <= 1e-6);
    }
  }
}

TEST_CASE("eval takes the form and parameters from the command line", "[harness][eval]") {
  const Kernel& k = Registry::instance().get("lisa_base", Backend::cpu);
  Problem p = testing::problem_for(k, 1, 1, 32, 8, true);
  p.set_param("codebooks", 2);
  p.set_param("codewords", 4);
  const HostInputs in = make_inputs(p, k.info().inputs, 5);
  const fs::path dir = fresh_dir("params");
  write_inputs(dir, p, in);
  // default form: causal (the kernel has it); decay is a parameter lisa reads
  auto ei = load_eval_inputs(k, dir.string(), std::nullopt, {{"decay", 0.1}});
  CHECK(ei.problem.causal);
  CHECK(ei.problem.real_param("decay") == 0.1);
  CHECK_FALSE(load_eval_inputs(k, dir.string(), false, {}).problem.causal);
  CHECK_THROWS_WITH(load_eval_inputs(k, dir.string(), std::nullopt, {{"window", 3}}),
                    Catch::Contains("does not read 'window'"));
  CHECK_THROWS_WITH(load_eval_inputs(k, dir.string(), std::nullopt, {{"codewords", 16}}),
                    Catch::Contains("contradicts") && Catch::Contains("codebooks.npy"));
  CHECK_THROWS_WITH(load_eval_inputs(k, dir.string(), false, {{"decay", 0.1}}),
                    Catch::Contains("no bidirectional form"));
  CHECK(parse_param("decay=0.5") == std::pair<std::string, double>{"decay", 0.5});
  CHECK_THROWS_WITH(parse_param("decay"), Catch::Contains("key=value"));
  CHECK_THROWS_WITH(parse_param("decay=fast"), Catch::Contains("not a number"));
  CHECK_THROWS_WITH(parse_param("speed=1"), Catch::Contains("unknown parameter 'speed'"));
}

TEST_CASE("eval rejects each kind of bad input with the file named", "[harness][eval]") {
  const Kernel& vanilla = Registry::instance().get("vanilla_materialized", Backend::cpu);
  const Kernel& lisa = Registry::instance().get("lisa_base", Backend::cpu);
  const Problem pv = testing::problem_for(vanilla, 1, 2, 16, 8, true);
  Problem pl = testing::problem_for(lisa, 1, 2, 16, 8, true);
  pl.set_param("codebooks", 2);
  pl.set_param("codewords", 4);
  const HostInputs iv = make_inputs(pv, vanilla.info().inputs, 3);
  const HostInputs il = make_inputs(pl, lisa.info().inputs, 3);
  auto expect_error = [&](const Kernel& k, const fs::path& dir, const std::string& file,
                          const std::string& words) {
    INFO(dir.string());
    EvalOptions o;
    o.kernel = k.info().name;
    o.inputs_dir = dir.string();
    o.output_path = (dir / "out.npy").string();
    CHECK_THROWS_WITH(run_eval(o), Catch::Contains(file) && Catch::Contains(words));
    CHECK_FALSE(fs::exists(dir / "out.npy"));
  };

  SECTION("wrong shape") {
    const auto d = fresh_dir("wrong_shape");
    write_inputs(d, pv, iv);
    std::vector<float> k2(iv.k.begin(), iv.k.begin() + 2 * 15 * 8);
    npy::write((d / "k.npy").string(), {1, 2, 15, 8}, k2);
    expect_error(vanilla, d, "k.npy", "shape (1, 2, 15, 8)");
  }
  SECTION("wrong rank") {
    const auto d = fresh_dir("wrong_rank");
    write_inputs(d, pv, iv);
    npy::write((d / "q.npy").string(), {2, 16, 8}, iv.q);
    expect_error(vanilla, d, "q.npy", "3 dimensions");
  }
  SECTION("wrong dtype") {
    const auto d = fresh_dir("wrong_dtype");
    write_inputs(d, pv, iv);
    std::vector<int32_t> ints(iv.v.size(), 1);
    npy::write((d / "v.npy").string(), {1, 2, 16, 8}, ints);
    expect_error(vanilla, d, "v.npy", "dtype '<i4'");
  }
  SECTION("codes as float") {
    const auto d = fresh_dir("codes_float");
    write_inputs(d, pl, il);
    std::vector<float> c(il.codes.begin(), il.codes.end());
    npy::write((d / "codes.npy").string(), {1, 2, 16, 2}, c);
    expect_error(lisa, d, "codes.npy", "dtype '<f4'");
  }
  SECTION("codes out of range") {
    const auto d = fresh_dir("codes_range");
    HostInputs bad = il;
    bad.codes[5] = 4;  // W = 4
    write_inputs(d, pl, bad);
    expect_error(lisa, d, d.string(), "outside [0, W=4)");
  }
  SECTION("negative int64 codes") {
    const auto d = fresh_dir("codes_negative");
    write_inputs(d, pl, il, true);
    std::vector<int64_t> c(il.codes.begin(), il.codes.end());
    c[0] = -1;
    npy::write((d / "codes.npy").string(), {1, 2, 16, 2}, c);
    expect_error(lisa, d, "codes.npy", "negative");
  }
  SECTION("codebooks that disagree with the codes") {
    const auto d = fresh_dir("codebooks_shape");
    write_inputs(d, pl, il);
    const std::vector<float> cb(2 * 3 * 4 * 8, 0.5f);  // as many elements as the shape says
    npy::write((d / "codebooks.npy").string(), {2, 3, 4, 8}, cb);
    expect_error(lisa, d, "codebooks.npy", "(2, 3, 4, 8)");
  }
  SECTION("only some projections") {
    const auto d = fresh_dir("projections");
    write_inputs(d, pl, il);
    std::vector<float> w(2 * 2 * 8 * 8, 0.1f);
    npy::write((d / "wq.npy").string(), {2, 2, 8, 8}, w);
    expect_error(lisa, d, d.string(), "found 1 of 3");
  }
  SECTION("truncated file") {
    const auto d = fresh_dir("truncated");
    write_inputs(d, pv, iv);
    fs::resize_file(d / "q.npy", fs::file_size(d / "q.npy") - 10);
    expect_error(vanilla, d, "q.npy", "truncated");
  }
  SECTION("corrupt file") {
    const auto d = fresh_dir("corrupt");
    write_inputs(d, pv, iv);
    std::ofstream(d / "k.npy", std::ios::binary | std::ios::trunc) << "this is not numpy data";
    expect_error(vanilla, d, "k.npy", "not a .npy file");
  }
  SECTION("a folder where q.npy belongs") {
    const auto d = fresh_dir("folder");
    write_inputs(d, pv, iv);
    fs::remove(d / "q.npy");
    fs::create_directory(d / "q.npy");
    expect_error(vanilla, d, "q.npy", "is a folder");
  }
  SECTION("a FIFO where k.npy belongs is refused, not opened (nothing blocks)") {
    const auto d = fresh_dir("fifo");
    write_inputs(d, pv, iv);
    fs::remove(d / "k.npy");
    REQUIRE(mkfifo((d / "k.npy").c_str(), 0600) == 0);
    expect_error(vanilla, d, "k.npy", "is a FIFO");
  }
  SECTION("a huge declared shape in a tiny file is refused before allocating") {
    const auto d = fresh_dir("huge_shape");
    write_inputs(d, pv, iv);
    // 2^58 bytes declared, 64 present: allocating before checking would fail differently
    std::string header =
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1048576, 1048576, 1024, 64), }";
    header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
    header += '\n';
    std::ofstream f(d / "v.npy", std::ios::binary | std::ios::trunc);
    f << "\x93NUMPY\x01" << '\0' << char(header.size() & 0xff) << char(header.size() >> 8)
      << header << std::string(64, '\0');
    f.close();
    expect_error(vanilla, d, "v.npy", "truncated");
  }
  SECTION("missing file") {
    const auto d = fresh_dir("missing");
    write_inputs(d, pv, iv);
    fs::remove(d / "v.npy");
    expect_error(vanilla, d, "v.npy", "missing");
  }
  SECTION("missing folder") {
    const auto d = fs::temp_directory_path() / "attnbench_test_eval" / "does_not_exist";
    fs::remove_all(d);
    EvalOptions o;
    o.kernel = "vanilla_flash";
    o.inputs_dir = d.string();
    CHECK_THROWS_WITH(run_eval(o), Catch::Contains("not a directory"));
  }
  SECTION("unknown kernel") {
    EvalOptions o;
    o.kernel = "vanilla_fast";
    o.inputs_dir = fresh_dir("unknown").string();
    CHECK_THROWS_WITH(run_eval(o), Catch::Contains("unknown kernel 'vanilla_fast'"));
  }
}
