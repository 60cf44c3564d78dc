// Small text helpers the harness shares: numbers as the command line takes them back,
// durations, lists, shell quoting.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace attnbench {

// 512 -> "512", 0.1 -> "0.1": integers without a decimal point, other numbers in the shortest
// text that reads back to the same double.
std::string number_text(double v);
// The number the whole of `s` spells ("1e3", "0.5"), or nullopt ("", "12x", "x").
std::optional<double> parse_number(const std::string& s);
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
