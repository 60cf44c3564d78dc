#include "text.hpp"

#include <cmath>
#include <cstdint>
#include <exception>

#include <fmt/format.h>

#include "errors.hpp"

namespace attnbench {

std::string number_text(double v) {
  if (v == std::floor(v) && std::fabs(v) < 9.0e15) return fmt::format("{}", int64_t(v));
  return fmt::format("{}", v);  // shortest text that reads back to the same double
}

std::optional<double> parse_number(const std::string& s) {
  // decimal only: stod alone would also take leading spaces, hex, "nan" and "inf"
  if (s.empty() || s.find_first_not_of("0123456789+-.eE") != std::string::npos) return std::nullopt;
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    return std::nullopt;  // no digits, or out of double's range
  }
  if (used != s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::string IntRange::interval() const { return fmt::format("[{}, {}]", lo, hi); }

std::string IntRange::words() const { return "a whole number in " + interval(); }

std::string RealRange::interval() const {
  return fmt::format("{}{}, {}{}", open_lo ? "(" : "[", number_text(lo), number_text(hi),
                     open_hi ? ")" : "]");
}

std::string RealRange::words() const { return "a number in " + interval(); }

int64_t whole_in(double v, const IntRange& r, const std::string& where) {
  // the comparisons come before the cast, so an out-of-range double is never converted
  if (!(std::isfinite(v) && v == std::floor(v) && v >= double(r.lo) && v <= double(r.hi)))
    fail_at(where, fmt::format("{} is not {}", number_text(v), r.words()));
  return int64_t(v);
}

double real_in(double v, const RealRange& r, const std::string& where) {
  const bool above = r.open_lo ? v > r.lo : v >= r.lo;
  const bool below = r.open_hi ? v < r.hi : v <= r.hi;
  if (!(std::isfinite(v) && above && below))
    fail_at(where, fmt::format("{} is not {}", number_text(v), r.words()));
  return v;
}

int64_t parse_integer(const std::string& text, const IntRange& r, const std::string& where) {
  const auto v = parse_number(text);
  if (!v) fail_at(where, fmt::format("expected {}, got '{}'", r.words(), text));
  return whole_in(*v, r, where);
}

double parse_real(const std::string& text, const RealRange& r, const std::string& where) {
  const auto v = parse_number(text);
  if (!v) fail_at(where, fmt::format("expected {}, got '{}'", r.words(), text));
  return real_in(*v, r, where);
}

namespace {

// The bytes of a size unit, 0 for an unknown one.
double unit_bytes(const std::string& unit) {
  static const std::pair<const char*, double> units[] = {
      {"", 1},     {"B", 1},          {"K", 0x1p10},      {"KiB", 0x1p10}, {"kB", 1e3},
      {"KB", 1e3}, {"M", 0x1p20},     {"MiB", 0x1p20},    {"MB", 1e6},     {"G", 0x1p30},
      {"GiB", 0x1p30}, {"GB", 1e9},   {"T", 0x1p40},      {"TiB", 0x1p40}, {"TB", 1e12}};
  for (const auto& [u, m] : units)
    if (unit == u) return m;
  return 0;
}

}  // namespace

size_t parse_size(const std::string& text, const std::string& where) {
  const char* forms = "a size such as 20G, 512M, 1.5GB or 1500000000 (bytes)";
  const size_t end = text.find_first_not_of("0123456789+-.eE");
  const auto v = parse_number(text.substr(0, end));
  if (!v) fail_at(where, fmt::format("expected {}, got '{}'", forms, text));
  const std::string unit = end == std::string::npos ? "" : trim(text.substr(end));
  const double mult = unit_bytes(unit);
  if (mult == 0)
    fail_at(where, fmt::format("unknown unit '{}' in '{}' (use K, M, G, T, KiB.. or kB, MB, GB, "
                               "TB)",
                               unit, text));
  if (mult == 1 && *v != std::floor(*v))
    fail_at(where, fmt::format("{} is not a whole number of bytes", text));
  const double bytes = std::round(*v * mult);
  if (!(bytes >= 1 && bytes <= 0x1p60))
    fail_at(where,
            fmt::format("{} is not a size from 1 byte to 1024 PiB (must be positive)", text));
  return size_t(bytes);
}

std::string one_line(const std::string& s) {
  std::string out = s;
  for (char& c : out)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  return out;
}

std::string format_seconds(double s) {
  if (s < 0) return "?";
  const auto t = int64_t(std::llround(s));
  if (t >= 3600) return fmt::format("{}h{:02}m", t / 3600, t / 60 % 60);
  if (t >= 60) return fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t pos = s.find(sep, start);
    out.push_back(s.substr(start, pos == std::string::npos ? std::string::npos : pos - start));
    if (pos == std::string::npos) return out;
    start = pos + 1;
  }
}

std::vector<std::string> split_list(const std::string& s, char sep) {
  std::vector<std::string> out;
  for (auto& item : split(s, sep))
    if (!item.empty()) out.push_back(std::move(item));
  return out;
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string s;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) s += sep;
    s += items[i];
  }
  return s;
}

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  const size_t b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789_-+=./,:%@") == std::string::npos)
    return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string command_line(int argc, char** argv) {
  std::string s;
  for (int i = 0; i < argc; ++i) {
    if (i) s += ' ';
    s += shell_quote(argv[i]);
  }
  return s;
}

}  // namespace attnbench
