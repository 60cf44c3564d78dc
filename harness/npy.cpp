#include "npy.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "attnbench/problem.hpp"
#include "file_io.hpp"

namespace attnbench::npy {

namespace {
constexpr unsigned char kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
constexpr size_t kMaxHeader = size_t(1) << 20;

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
    // the header as one line: control bytes shown as '?', at most 120 characters
    std::string shown = s.substr(0, 120);
    for (char& c : shown) c = (c >= 32 && c < 127) ? c : '?';
    fail(name, fmt::format("corrupt .npy header ({} at character {}): {}{}", what, i, shown,
                           s.size() > 120 ? "..." : ""));
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
    if (i - start > 18) fail(name, fmt::format("dimension {} is too large", s.substr(start, i - start)));
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
// Where the header starts and how long it is, from the first (up to) 12 bytes.
struct Prefix {
  size_t offset = 0, header_len = 0;
};
Prefix parse_prefix(const unsigned char* b, size_t n, const std::string& name) {
  if (n < 10 || std::memcmp(b, kMagic, 6) != 0) fail(name, "not a .npy file (no \\x93NUMPY magic)");
  const unsigned major = b[6];
  if (major == 1) return {10, size_t(b[8]) | size_t(b[9]) << 8};
  if (major != 2 && major != 3)
    fail(name, fmt::format("unsupported .npy format version {}.{}", major, unsigned(b[7])));
  if (n < 12) fail(name, "truncated .npy header");
  const size_t len = size_t(b[8]) | size_t(b[9]) << 8 | size_t(b[10]) << 16 | size_t(b[11]) << 24;
  // NumPy's own headers are a few hundred bytes; a huge one is corrupt, not worth reading
  if (len > kMaxHeader) fail(name, fmt::format("corrupt .npy header ({} bytes long)", len));
  return {12, len};
}

// Bytes of data the shape and dtype need; a product that overflows is an error.
size_t data_bytes(const Array& a, const std::string& name) {
  size_t n = a.item_bytes();
  for (int64_t d : a.shape)
    if (__builtin_mul_overflow(n, size_t(d), &n))
      fail(name, fmt::format("shape {} is too large", shape_str(a.shape)));
  return n;
}

// The header dict: descr, fortran_order and shape, checked. `a.data` stays empty.
Array parse_header(const std::string& header, const std::string& name) {
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
  return a;
}

// The data after the header must be exactly what the shape needs.
void check_data_size(const Array& a, size_t want, size_t have, const std::string& name) {
  if (have < want)
    fail(name, fmt::format("truncated: shape {} of '{}' needs {} bytes of data, the file has {}",
                           shape_str(a.shape), a.descr, want, have));
  if (have > want)
    fail(name, fmt::format("corrupt: {} unexpected bytes after the data of shape {}", have - want,
                           shape_str(a.shape)));
}

struct Fd {
  int fd;
  ~Fd() { ::close(fd); }
};

void read_exact(int fd, void* dst, size_t n, size_t at, const std::string& path) {
  auto* p = static_cast<unsigned char*>(dst);
  while (n > 0) {
    const ssize_t got = ::pread(fd, p, n, off_t(at));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) fail(path, fmt::format("read error ({})", std::strerror(errno)));
    if (got == 0) fail(path, "read error (the file shrank while being read)");
    p += got, at += size_t(got), n -= size_t(got);
  }
}
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
  const Prefix pre = parse_prefix(bytes.data(), bytes.size(), name);
  if (bytes.size() - pre.offset < pre.header_len)
    fail(name, fmt::format("truncated .npy header (needs {} bytes, file has {})",
                           pre.offset + pre.header_len, bytes.size()));
  const size_t start = pre.offset + pre.header_len;
  Array a = parse_header(std::string(reinterpret_cast<const char*>(bytes.data() + pre.offset),
                                     pre.header_len),
                         name);
  check_data_size(a, data_bytes(a, name), bytes.size() - start, name);
  a.data.assign(bytes.begin() + std::ptrdiff_t(start), bytes.end());
  return a;
}

Array read(const std::string& path) {
  size_t size = 0;
  const Fd f{file_io::open_regular(path, size, "a .npy file")};
  unsigned char prefix[12] = {};
  const size_t got = std::min(size, sizeof prefix);
  read_exact(f.fd, prefix, got, 0, path);
  const Prefix pre = parse_prefix(prefix, got, path);
  // the header length is checked against the file before the header is allocated
  if (size - pre.offset < pre.header_len)
    fail(path, fmt::format("truncated .npy header (needs {} bytes, file has {})",
                           pre.offset + pre.header_len, size));
  std::string header(pre.header_len, '\0');
  read_exact(f.fd, header.data(), header.size(), pre.offset, path);
  Array a = parse_header(header, path);
  // and the data's size against the file before the data is
  const size_t start = pre.offset + pre.header_len;
  check_data_size(a, data_bytes(a, path), size - start, path);
  a.data.resize(size - start);
  read_exact(f.fd, a.data.data(), a.data.size(), start, path);
  return a;
}

namespace detail {

std::vector<unsigned char> serialize(const std::string& name, const char* descr, size_t item,
                                     const std::vector<int64_t>& shape, const void* data,
                                     size_t count) {
  size_t n = 1;
  for (int64_t d : shape)
    if (d < 0 || __builtin_mul_overflow(n, size_t(d), &n))
      fail(name, fmt::format("cannot write shape {}", shape_str(shape)));
  if (n != count)
    fail(name, fmt::format("shape {} has {} elements but the data has {}", shape_str(shape), n,
                           count));
  std::string header =
      fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", descr, shape_str(shape));
  // magic (6) + version (2) + length (2) + header + '\n', padded with spaces to 64 bytes
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
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

void write(const std::string& path, const char* descr, size_t item,
           const std::vector<int64_t>& shape, const void* data, size_t count) {
  const auto bytes = serialize(path, descr, item, shape, data, count);
  file_io::write_atomic(path, {reinterpret_cast<const char*>(bytes.data()), bytes.size()});
}

}  // namespace detail

}  // namespace attnbench::npy
