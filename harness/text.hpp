// Small text helpers the harness shares: numbers as the command line takes them back,
// durations, lists, shell quoting.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace attnbench {

// 512 -> "512", 0.1 -> "0.1": integers without a decimal point, other numbers in the shortest
// text that reads back to the same double.
std::string number_text(double v);
// The finite number the whole of `s` spells in decimal ("1e3", "0.5", "-2"), or nullopt ("",
// "12x", " 5", "0x10", "nan", "inf", "1e999").
std::optional<double> parse_number(const std::string& s);

// The values an option or a file field accepts, in words for its error message.
struct IntRange {
  int64_t lo, hi;
  std::string interval() const;  // "[1, 1000000]"
  std::string words() const;     // "a whole number in [1, 1000000]"
};
struct RealRange {
  double lo, hi;
  bool open_lo = false, open_hi = false;  // (lo, ...: lo itself is refused
  std::string interval() const;  // "(0, 1)"
  std::string words() const;     // "a number in (0, 1)"
};
// `v` when it is a whole number within `r`; otherwise InvalidProblem("<where>: <v> is not
// <r.words()>"). For numbers that are counts: never truncated, never cast out of range.
int64_t whole_in(double v, const IntRange& r, const std::string& where);
// `v` when it is finite and within `r`; otherwise InvalidProblem as above.
double real_in(double v, const RealRange& r, const std::string& where);
// The text of a command-line option as a number within the range ("12", "1e3" for a whole
// number; "0.5" for a real); InvalidProblem("<where>: expected <r.words()>, got '<text>'").
int64_t parse_integer(const std::string& text, const IntRange& r, const std::string& where);
double parse_real(const std::string& text, const RealRange& r, const std::string& where);
// A size in bytes: "20G" / "20GiB" (binary), "20GB" / "1.5e9" (decimal), "123456" bytes; at
// least one byte, at most 2^60; bytes without a unit must be whole, a size with a unit is
// rounded to the nearest byte. InvalidProblem("<where>: ...") naming the accepted forms.
size_t parse_size(const std::string& text, const std::string& where);
// `s` with every line break (and tab) replaced by a space: a message for one line of stderr.
std::string one_line(const std::string& s);
// 42 -> "42s", 125 -> "2m05s", 7300 -> "2h01m"; a negative time -> "?".
std::string format_seconds(double s);
// "a,,b" -> {"a", "", "b"} (every field, empty ones included).
std::vector<std::string> split(const std::string& s, char sep);
// "a,,b," -> {"a", "b"} (the non-empty fields).
std::vector<std::string> split_list(const std::string& s, char sep = ',');
// "a, b, c".
std::string join(const std::vector<std::string>& items, const std::string& sep = ", ");
// Without leading and trailing white space.
std::string trim(const std::string& s);
// The word unchanged when the shell would read it so, else in single quotes.
std::string shell_quote(const std::string& s);
// argv as one shell command line.
std::string command_line(int argc, char** argv);

}  // namespace attnbench
