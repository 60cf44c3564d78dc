#include "npy.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>

#include <fmt/format.h>

#include "attnbench/problem.hpp"

namespace attnbench::npy {

namespace {
constexpr unsigned char kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

[[noreturn]] void fail(const std::string& name, const std::string& what) {
  throw InvalidProblem(fmt::format("{}: {}", name, what));
}

size_t item_bytes_of(const std::string& descr) {
  if (descr == "<f4" || descr == "<i4") return 4;
  if (descr == "<i8") return 8;
  return 0;
}

// The header is a Python dict literal: {'descr': '<f4', 'fortran_order': False,
// 'shape': (2, 3), }. This parser accepts exactly that subset.
struct HeaderParser {
  const std::string& s;
  const std::string& name;
  size_t i = 0;

  [[noreturn]] void bad(const std::string& what) {
    fail(name, fmt::format("corrupt .npy header ({} at character {}): {}", what, i, s));
  }
  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  }
  bool eat(char c) {
    ws();
    if (i < s.size() && s[i] == c) {
      ++i;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!eat(c)) bad(fmt::format("expected '{}'", c));
  }
  std::string str() {
    ws();
    if (i >= s.size() || (s[i] != '\'' && s[i] != '"')) bad("expected a string");
    const char q = s[i++];
    const size_t start = i;
    while (i < s.size() && s[i] != q) ++i;
    if (i >= s.size()) bad("unterminated string");
    return s.substr(start, i++ - start);
  }
  bool boolean() {
    ws();
    if (s.compare(i, 4, "True") == 0) {
      i += 4;
      return true;
    }
    if (s.compare(i, 5, "False") == 0) {
      i += 5;
      return false;
    }
    bad("expected True or False");
  }
  int64_t integer() {
    ws();
    const size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == start) bad("expected a non-negative integer");
    if (i - start > 18) bad("dimension too large");
    const int64_t v = std::stoll(s.substr(start, i - start));
    if (i < s.size() && s[i] == 'L') ++i;  // Python 2 long suffix
    return v;
  }
  std::vector<int64_t> tuple() {
    expect('(');
    std::vector<int64_t> v;
    if (eat(')')) return v;
    for (;;) {
      v.push_back(integer());
      if (eat(')')) return v;
      expect(',');
      if (eat(')')) return v;
    }
  }
};
}  // namespace

size_t Array::item_bytes() const { return item_bytes_of(descr); }

size_t Array::elems() const {
  size_t n = 1;
  for (int64_t d : shape) n *= size_t(d);
  return n;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += fmt::format("{}{}", i ? ", " : "", shape[i]);
  if (shape.size() == 1) s += ",";
  return s + ")";
}

Array parse(const std::vector<unsigned char>& bytes, const std::string& name) {
  if (bytes.size() < 10 || std::memcmp(bytes.data(), kMagic, 6) != 0)
    fail(name, "not a .npy file (no \\x93NUMPY magic)");
  const unsigned major = bytes[6];
  size_t header_len = 0, offset = 0;
  if (major == 1) {
    header_len = size_t(bytes[8]) | size_t(bytes[9]) << 8;
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) fail(name, "truncated .npy header");
    header_len = size_t(bytes[8]) | size_t(bytes[9]) << 8 | size_t(bytes[10]) << 16 |
                 size_t(bytes[11]) << 24;
    offset = 12;
  } else {
    fail(name, fmt::format("unsupported .npy format version {}.{}", major, unsigned(bytes[7])));
  }
  if (bytes.size() < offset + header_len)
    fail(name, fmt::format("truncated .npy header (needs {} bytes, file has {})",
                           offset + header_len, bytes.size()));
  const std::string header(reinterpret_cast<const char*>(bytes.data() + offset), header_len);

  HeaderParser hp{header, name};
  Array a;
  bool have_descr = false, have_order = false, have_shape = false, fortran = false;
  hp.expect('{');
  while (!hp.eat('}')) {
    const std::string key = hp.str();
    hp.expect(':');
    if (key == "descr") {
      hp.ws();
      if (hp.i < header.size() && header[hp.i] == '[')
        fail(name, "structured dtypes are not supported (expected '<f4', '<i4' or '<i8')");
      a.descr = hp.str();
      have_descr = true;
    } else if (key == "fortran_order") {
      fortran = hp.boolean();
      have_order = true;
    } else if (key == "shape") {
      a.shape = hp.tuple();
      have_shape = true;
    } else {
      hp.bad(fmt::format("unexpected key '{}'", key));
    }
    if (!hp.eat(',')) {
      hp.expect('}');
      break;
    }
  }
  if (!have_descr || !have_order || !have_shape)
    fail(name, "corrupt .npy header (needs 'descr', 'fortran_order' and 'shape')");
  if (fortran)
    fail(name, "Fortran-order arrays are not supported (save a C-contiguous array, e.g. "
               "np.ascontiguousarray)");
  if (item_bytes_of(a.descr) == 0)
    fail(name, fmt::format("dtype '{}' is not supported (expected '<f4' float32, '<i4' int32 or "
                           "'<i8' int64)",
                           a.descr));
  // element count, refusing products that overflow
  size_t n = 1;
  for (int64_t d : a.shape) {
    if (d != 0 && n > std::numeric_limits<size_t>::max() / 16 / size_t(d))
      fail(name, fmt::format("shape {} is too large", shape_str(a.shape)));
    n *= size_t(d);
  }
  const size_t want = n * a.item_bytes(), have = bytes.size() - offset - header_len;
  if (have < want)
    fail(name, fmt::format("truncated: shape {} of '{}' needs {} bytes of data, the file has {}",
                           shape_str(a.shape), a.descr, want, have));
  if (have > want)
    fail(name, fmt::format("corrupt: {} unexpected bytes after the data of shape {}", have - want,
                           shape_str(a.shape)));
  a.data.assign(bytes.begin() + std::ptrdiff_t(offset + header_len), bytes.end());
  return a;
}

Array read(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, fmt::format("cannot open ({})", std::strerror(errno)));
  f.seekg(0, std::ios::end);
  const std::streamoff size = f.tellg();
  if (size < 0) fail(path, "cannot read");
  f.seekg(0);
  std::vector<unsigned char> bytes(static_cast<size_t>(size));
  if (size > 0 && !f.read(reinterpret_cast<char*>(bytes.data()), size)) fail(path, "read error");
  return parse(bytes, path);
}

std::vector<unsigned char> serialize(const std::string& descr, const std::vector<int64_t>& shape,
                                     const void* data) {
  // float64 is written (export's references) but not read: eval takes float32 tensors
  const size_t item = descr == "<f8" ? 8 : item_bytes_of(descr);
  if (!item) throw InvalidProblem(fmt::format("npy: cannot write dtype '{}'", descr));
  std::string header =
      fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", descr, shape_str(shape));
  // magic (6) + version (2) + length (2) + header + '\n', padded with spaces to 64 bytes
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  size_t n = 1;
  for (int64_t d : shape) n *= size_t(d);
  // one buffer, filled with memcpy: magic, version 1.0, little-endian header length, header, data
  std::vector<unsigned char> out(10 + header.size() + n * item);
  std::memcpy(out.data(), kMagic, 6);
  out[6] = 1;
  out[7] = 0;
  out[8] = static_cast<unsigned char>(header.size() & 0xff);
  out[9] = static_cast<unsigned char>(header.size() >> 8);
  std::memcpy(out.data() + 10, header.data(), header.size());
  if (n > 0) std::memcpy(out.data() + 10 + header.size(), data, n * item);
  return out;
}

void write(const std::string& path, const std::string& descr, const std::vector<int64_t>& shape,
           const void* data) {
  const auto bytes = serialize(descr, shape, data);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) fail(path, fmt::format("cannot create ({})", std::strerror(errno)));
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  f.close();
  if (!f) fail(path, "write error");
}

void write_f32(const std::string& path, const std::vector<int64_t>& shape, const float* data) {
  write(path, "<f4", shape, data);
}

}  // namespace attnbench::npy
