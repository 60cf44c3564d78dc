// What the command lines of attnbench and attnbench_gate share: options checked while they
// are parsed (numbers whole and in range, sizes with units, no empty path or list), and every
// command-line error as one line on stderr with exit status 2 (--help still exits 0).
// An option's checks throw InvalidProblem("<option>: <what is wrong>"), which `parse` prints.
#pragma once

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "errors.hpp"
#include "text.hpp"

namespace attnbench::cli {

// The option's name as messages give it: "--min-reps", or "BASE" for a positional.
inline std::string option_name(const CLI::Option* o) {
  const std::string name = o->get_name();
  return name.empty() ? o->get_name(true) : name;
}

// A whole number in `r`: "12" and "1e3" are taken, "1.5", "1e12" beyond r.hi and "" are not.
// The text is rewritten to plain digits, which is what CLI11 then converts.
inline CLI::Option* whole(CLI::Option* o, const IntRange& r) {
  const std::string name = option_name(o);
  o->transform(CLI::Validator(
      [name, r](std::string& s) {
        s = std::to_string(parse_integer(s, r, name));
        return std::string();
      },
      "in " + r.interval()));
  return o;
}

// A number in `r` ("0.5", "1e-3"); no NaN, infinity or text CLI11 would half-read.
inline CLI::Option* real(CLI::Option* o, const RealRange& r) {
  const std::string name = option_name(o);
  o->transform(CLI::Validator(
      [name, r](std::string& s) {
        s = fmt::format("{}", parse_real(s, r, name));
        return std::string();
      },
      "in " + r.interval()));
  return o;
}

// A size in bytes as parse_size takes it ("20G", "512MB", "1500000000"); the text is kept.
inline CLI::Option* size(CLI::Option* o) {
  const std::string name = option_name(o);
  o->check(CLI::Validator(
      [name](std::string& s) {
        parse_size(s, name);
        return std::string();
      },
      "SIZE"));
  return o;
}

// A path, name or word that must not be empty (each value of a repeated option).
inline CLI::Option* nonempty(CLI::Option* o, const char* what = "path") {
  const std::string name = option_name(o);
  o->check(CLI::Validator(
      [name, what](std::string& s) {
        if (s.empty()) fail_at(name, fmt::format("an empty {}", what));
        return std::string();
      },
      ""));
  return o;
}

// A comma-separated list with at least one item ("a,b"; not "" or ",").
inline CLI::Option* nonempty_list(CLI::Option* o) {
  const std::string name = option_name(o);
  o->check(CLI::Validator(
      [name](std::string& s) {
        if (split_list(s).empty()) fail_at(name, fmt::format("an empty list ('{}')", s));
        return std::string();
      },
      ""));
  return o;
}

// A first word that is no option must name a subcommand (CLI11 would only say that one is
// required).
inline void check_subcommand(const CLI::App& app, int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') return;
  std::vector<std::string> known;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (sub->get_name() == argv[1]) return;
    known.push_back(sub->get_name());
  }
  fail_at(fmt::format("'{}'", argv[1]),
          fmt::format("not a subcommand (known: {})", join(known)));
}

// Parses the command line. nullopt: go on and run; otherwise the exit status: 0 after --help,
// 2 after any error of the command line (unknown option, missing or bad value), printed as
// "<tool>: error: <one line>".
inline std::optional<int> parse(CLI::App& app, int argc, char** argv, const char* tool) {
  try {
    check_subcommand(app, argc, argv);
    app.parse(argc, argv);
    return std::nullopt;
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
    fmt::print(stderr, "{}: error: {} (see --help)\n", tool, one_line(e.what()));
  } catch (const std::exception& e) {  // an option's own check (InvalidProblem)
    fmt::print(stderr, "{}: error: {}\n", tool, one_line(e.what()));
  }
  return 2;
}

}  // namespace attnbench::cli
