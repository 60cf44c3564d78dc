// NumPy .npy files (format versions 1, 2 and 3), for `attnbench eval`: little-endian float32
// ('<f4'), int32 ('<i4') and int64 ('<i8') arrays in C order. Everything else (Fortran
// order, other dtypes, truncated or corrupt files, a path that is not a regular file) is
// rejected with a one-line InvalidProblem naming the file.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

namespace attnbench::npy {

struct Array {
  std::string descr;             // "<f4", "<i4" or "<i8"
  std::vector<int64_t> shape;
  std::vector<unsigned char> data;  // C order, little-endian
  size_t elems() const;
  size_t item_bytes() const;
};

// Reads `path`, which must be a regular file (a folder, FIFO or device is refused without
// opening it for long: nothing blocks). The header is checked against the file's size before
// any allocation. Throws InvalidProblem("<path>: <what is wrong>").
Array read(const std::string& path);
// Parses the bytes of a whole .npy file; `name` is used in messages.
Array parse(const std::vector<unsigned char>& bytes, const std::string& name);

// The dtype of an element type (every platform attnbench builds on is little-endian).
template <class T>
constexpr const char* dtype_of() {
  if constexpr (std::is_same_v<T, float>) return "<f4";
  else if constexpr (std::is_same_v<T, double>) return "<f8";
  else if constexpr (std::is_same_v<T, int32_t>) return "<i4";
  else if constexpr (std::is_same_v<T, int64_t>) return "<i8";
  else static_assert(sizeof(T) == 0, "npy: no dtype for this element type");
}

namespace detail {
std::vector<unsigned char> serialize(const std::string& name, const char* descr, size_t item,
                                     const std::vector<int64_t>& shape, const void* data,
                                     size_t count);
void write(const std::string& path, const char* descr, size_t item,
           const std::vector<int64_t>& shape, const void* data, size_t count);
}  // namespace detail

// A version 1 file (header padded to a multiple of 64 bytes, as NumPy does) of `data` with
// `shape`; the dtype follows from T (float64 too, which `read` refuses). The shape's element
// count must equal data.size(): otherwise InvalidProblem, and nothing is written. `write`
// replaces the file atomically (file_io::write_atomic) and throws InvalidProblem when it
// cannot be written, leaving any previous file as it was.
template <class T>
std::vector<unsigned char> serialize(const std::vector<int64_t>& shape, std::span<const T> data) {
  return detail::serialize("npy", dtype_of<T>(), sizeof(T), shape, data.data(), data.size());
}
template <class T>
std::vector<unsigned char> serialize(const std::vector<int64_t>& shape, const std::vector<T>& data) {
  return serialize(shape, std::span<const T>(data));
}
template <class T>
void write(const std::string& path, const std::vector<int64_t>& shape, std::span<const T> data) {
  detail::write(path, dtype_of<T>(), sizeof(T), shape, data.data(), data.size());
}
template <class T>
void write(const std::string& path, const std::vector<int64_t>& shape, const std::vector<T>& data) {
  write(path, shape, std::span<const T>(data));
}

// "(2, 3, 4)" as NumPy prints a shape.
std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace attnbench::npy
