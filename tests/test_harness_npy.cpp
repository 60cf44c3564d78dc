// harness/npy: byte-exact with NumPy's own files, round trips, and every kind of bad file.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <cstring>
#include <span>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "attnbench/problem.hpp"
#include "npy.hpp"

using namespace attnbench;

namespace {
std::vector<unsigned char> unhex(const std::string& h) {
  std::vector<unsigned char> v;
  for (size_t i = 0; i + 1 < h.size(); i += 2) v.push_back(static_cast<unsigned char>(std::stoi(h.substr(i, 2), nullptr, 16)));
  return v;
}
// np.save of np.arange(6, dtype='<f4').reshape(2, 3) and np.array([7, -1, 3], dtype='<i8')
const char* kNumpyF4 =
    "934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046"
    "616c73652c20277368617065273a2028322c2033292c207d202020202020202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020202020202020200a00000000000080"
    "3f0000004000004040000080400000a040";
const char* kNumpyI8 =
    "934e554d5059010076007b276465736372273a20273c6938272c2027666f727472616e5f6f72646572273a2046"
    "616c73652c20277368617065273a2028332c292c207d2020202020202020202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020202020202020200a07000000000000"
    "00ffffffffffffffff0300000000000000";

// A file with an arbitrary header dict (version 1).
std::vector<unsigned char> raw_npy(const std::string& dict, size_t data_bytes, int version = 1) {
  std::string header = dict;
  const size_t prefix = version == 1 ? 10 : 12;
  header.append((64 - (prefix + header.size() + 1) % 64) % 64, ' ');
  header.push_back('\n');
  std::vector<unsigned char> out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<unsigned char>(version), 0};
  out.push_back(header.size() & 0xff);
  out.push_back((header.size() >> 8) & 0xff);
  if (version != 1) {
    out.push_back(0);
    out.push_back(0);
  }
  out.insert(out.end(), header.begin(), header.end());
  out.resize(out.size() + data_bytes, 0);
  return out;
}

std::string error_of(const std::vector<unsigned char>& bytes) {
  try {
    npy::parse(bytes, "x.npy");
  } catch (const InvalidProblem& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("npy files are byte-identical to NumPy's", "[harness][npy]") {
  const std::vector<float> f = {0, 1, 2, 3, 4, 5};
  CHECK(npy::serialize({2, 3}, f) == unhex(kNumpyF4));
  const std::vector<int64_t> i = {7, -1, 3};
  CHECK(npy::serialize({3}, i) == unhex(kNumpyI8));

  const npy::Array a = npy::parse(unhex(kNumpyF4), "f.npy");
  CHECK(a.descr == "<f4");
  CHECK(a.shape == std::vector<int64_t>{2, 3});
  std::vector<float> back(6);
  std::memcpy(back.data(), a.data.data(), 24);
  CHECK(back == f);
  const npy::Array b = npy::parse(unhex(kNumpyI8), "i.npy");
  CHECK(b.descr == "<i8");
  CHECK(b.shape == std::vector<int64_t>{3});
  CHECK(b.elems() == 3);
}

TEST_CASE("npy round trips through files, versions 1 and 2", "[harness][npy]") {
  const auto dir = std::filesystem::temp_directory_path() / "attnbench_test_npy";
  std::filesystem::create_directories(dir);
  const std::vector<int32_t> v = {1, -2, 3, 4, 5, 6, 7, 8};
  const std::string path = (dir / "codes.npy").string();
  npy::write(path, {2, 2, 2}, v);
  const npy::Array a = npy::read(path);
  CHECK(a.descr == "<i4");
  CHECK(a.shape == std::vector<int64_t>{2, 2, 2});
  CHECK(std::memcmp(a.data.data(), v.data(), 32) == 0);
  // version 2 header (4-byte length)
  const auto v2 = raw_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", 16, 2);
  CHECK(npy::parse(v2, "v2.npy").shape == std::vector<int64_t>{4});
  // a scalar (shape ()) and key order / quoting variations
  CHECK(npy::parse(raw_npy("{'shape': (), \"fortran_order\": False, 'descr': '<f4'}", 4), "s.npy").elems() == 1);
  std::filesystem::remove_all(dir);
}

TEST_CASE("npy rejects what it cannot read, naming the file", "[harness][npy]") {
  const std::string ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  CHECK(error_of(raw_npy(ok, 24)).empty());
  CHECK_THAT(error_of(raw_npy(ok, 20)), Catch::Contains("x.npy") && Catch::Contains("truncated"));
  CHECK_THAT(error_of(raw_npy(ok, 28)), Catch::Contains("unexpected bytes"));
  CHECK_THAT(error_of(raw_npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24)),
             Catch::Contains("Fortran"));
  CHECK_THAT(error_of(raw_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", 48)),
             Catch::Contains("dtype '<f8' is not supported"));
  CHECK_THAT(error_of(raw_npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", 24)),
             Catch::Contains("'>f4'"));
  CHECK_THAT(error_of(raw_npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8)),
             Catch::Contains("structured"));
  CHECK_THAT(error_of(raw_npy("{'descr': '<f4', 'shape': (2, 3), }", 24)), Catch::Contains("corrupt"));
  CHECK_THAT(error_of(raw_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", 24)),
             Catch::Contains("corrupt"));
  CHECK_THAT(error_of(raw_npy("not a dict at all", 0)), Catch::Contains("corrupt"));
  std::vector<unsigned char> garbage = {'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0, 0, 0};
  CHECK_THAT(error_of(garbage), Catch::Contains("not a .npy file"));
  auto truncated_header = raw_npy(ok, 24);
  truncated_header.resize(30);
  CHECK_THAT(error_of(truncated_header), Catch::Contains("truncated"));
  auto v9 = raw_npy(ok, 24);
  v9[6] = 9;
  CHECK_THAT(error_of(v9), Catch::Contains("version 9"));
  CHECK_THROWS_WITH(npy::read("/nonexistent/dir/q.npy"),
                    Catch::Contains("/nonexistent/dir/q.npy") && Catch::Contains("cannot open"));
}

TEST_CASE("npy::write refuses data whose length is not the shape's element count",
          "[harness][npy]") {
  const auto dir = std::filesystem::temp_directory_path() / "attnbench_test_npy_span";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "short.npy").string();
  const std::vector<float> five(5, 1.0f);
  CHECK_THROWS_WITH(npy::write(path, {2, 3}, five),
                    Catch::Contains("short.npy") && Catch::Contains("(2, 3) has 6 elements") &&
                        Catch::Contains("has 5"));
  CHECK_FALSE(std::filesystem::exists(path));
  CHECK_THROWS_WITH(npy::serialize({-1, 3}, five), Catch::Contains("cannot write shape (-1, 3)"));
  // a span of part of a buffer is fine when the shape says so
  npy::write(path, {5}, std::span<const float>(five));
  CHECK(npy::read(path).shape == std::vector<int64_t>{5});
  std::filesystem::remove_all(dir);
}

TEST_CASE("npy::read checks the path and the header before allocating", "[harness][npy]") {
  namespace fs = std::filesystem;
  const auto dir = fs::temp_directory_path() / "attnbench_test_npy_read";
  fs::remove_all(dir);
  fs::create_directories(dir / "folder.npy");
  CHECK_THROWS_WITH(npy::read((dir / "folder.npy").string()),
                    Catch::Contains("folder.npy: is a folder"));
  REQUIRE(mkfifo((dir / "fifo.npy").c_str(), 0600) == 0);
  CHECK_THROWS_WITH(npy::read((dir / "fifo.npy").string()), Catch::Contains("fifo.npy: is a FIFO"));
  CHECK_THROWS_WITH(npy::read("/dev/zero"), Catch::Contains("/dev/zero: is a character device"));
  // a declared shape far larger than the file: refused as truncated, nothing allocated
  const auto write_raw = [&](const std::string& name, const std::vector<unsigned char>& bytes) {
    std::ofstream(dir / name, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    return (dir / name).string();
  };
  const auto huge = write_raw(
      "huge.npy", raw_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1024), }", 8));
  CHECK_THROWS_WITH(npy::read(huge), Catch::Contains("huge.npy: truncated") &&
                                         Catch::Contains("needs 4503599627370496 bytes"));
  // a shape whose byte count overflows 64 bits
  const auto over = write_raw(
      "overflow.npy",
      raw_npy("{'descr': '<i8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 8));
  CHECK_THROWS_WITH(npy::read(over), Catch::Contains("overflow.npy: shape (4294967296, 4294967296) is too large"));
  // a version 2 header longer than the file
  auto v2 = raw_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", 16, 2);
  v2[10] = 0x40;  // header length + 4 MiB
  CHECK_THROWS_WITH(npy::read(write_raw("long_header.npy", v2)), Catch::Contains("long_header.npy"));
  // the same checks hold for parse
  CHECK_THAT(error_of(raw_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1024), }", 8)),
             Catch::Contains("truncated"));
  fs::remove_all(dir);
}
