// NumPy .npy files (format versions 1, 2 and 3), for `attnbench eval`: little-endian float32
// ('<f4'), int32 ('<i4') and int64 ('<i8') arrays in C order. Everything else (Fortran
// order, other dtypes, truncated or corrupt files) is rejected with a one-line
// InvalidProblem naming the file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace attnbench::npy {

struct Array {
  std::string descr;             // "<f4", "<i4" or "<i8"
  std::vector<int64_t> shape;
  std::vector<unsigned char> data;  // C order, little-endian
  size_t elems() const;
  size_t item_bytes() const;
};

// Reads `path`; throws InvalidProblem("<path>: <what is wrong>").
Array read(const std::string& path);
// Parses the bytes of a whole .npy file; `name` is used in messages.
Array parse(const std::vector<unsigned char>& bytes, const std::string& name);

// Writes a version 1 file (header padded to a multiple of 64 bytes, as NumPy does); also
// float64 ('<f8'), which `read` refuses.
// Throws InvalidProblem when the file cannot be written.
void write(const std::string& path, const std::string& descr, const std::vector<int64_t>& shape,
           const void* data);
void write_f32(const std::string& path, const std::vector<int64_t>& shape, const float* data);
std::vector<unsigned char> serialize(const std::string& descr, const std::vector<int64_t>& shape,
                                     const void* data);

// "(2, 3, 4)" as NumPy prints a shape.
std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace attnbench::npy
