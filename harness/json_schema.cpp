#include "json_schema.hpp"

#include <algorithm>
#include <fstream>
#include <set>
#include <stdexcept>

#include <fmt/format.h>

namespace attnbench {

namespace {

using ojson = nlohmann::ordered_json;

const std::set<std::string> kKnownKeywords = {
    "$schema", "$id",      "$defs",    "title",   "description",          "type",
    "enum",    "required", "properties", "items", "additionalProperties", "minimum",
    "oneOf",   "$ref"};

struct Validator {
  const ojson& root;
  std::vector<std::string> errors;

  const ojson& resolve(const std::string& ref) const {
    const std::string prefix = "#/$defs/";
    if (ref.rfind(prefix, 0) != 0) throw std::invalid_argument("unsupported $ref " + ref);
    return root.at("$defs").at(ref.substr(prefix.size()));
  }

  static bool has_type(const ojson& v, const std::string& t) {
    if (t == "null") return v.is_null();
    if (t == "boolean") return v.is_boolean();
    if (t == "integer") return v.is_number_integer() || (v.is_number_float() && v.get<double>() == double(int64_t(v.get<double>())));
    if (t == "number") return v.is_number();
    if (t == "string") return v.is_string();
    if (t == "array") return v.is_array();
    if (t == "object") return v.is_object();
    throw std::invalid_argument("unsupported type " + t);
  }

  void fail(const std::string& at, const std::string& what) {
    errors.push_back(fmt::format("{}: {}", at.empty() ? "/" : at, what));
  }

  bool check_type(const ojson& s, const ojson& v, const std::string& at) {
    auto t = s.find("type");
    if (t == s.end()) return true;
    std::vector<std::string> types;
    if (t->is_string()) types.push_back(t->get<std::string>());
    else for (const auto& x : *t) types.push_back(x.get<std::string>());
    for (const auto& x : types)
      if (has_type(v, x)) return true;
    fail(at, fmt::format("{} is not of type {}", v.dump(), t->dump()));
    return false;
  }

  void check_object(const ojson& s, const ojson& v, const std::string& at) {
    if (auto req = s.find("required"); req != s.end())
      for (const auto& name : *req)
        if (!v.contains(name.get<std::string>()))
          fail(at, fmt::format("missing required field '{}'", name.get<std::string>()));
    const auto props = s.find("properties");
    const auto extra = s.find("additionalProperties");
    for (auto it = v.begin(); it != v.end(); ++it) {
      const std::string child = at + "/" + it.key();
      if (props != s.end() && props->contains(it.key())) {
        check(props->at(it.key()), *it, child);
      } else if (extra != s.end()) {
        if (extra->is_boolean() && !extra->get<bool>()) fail(at, fmt::format("unknown field '{}'", it.key()));
        else if (extra->is_object()) check(*extra, *it, child);
      }
    }
  }

  void check_one_of(const ojson& alternatives, const ojson& v, const std::string& at) {
    int matching = 0;
    for (const auto& alt : alternatives) {
      Validator sub{root, {}};
      sub.check(alt, v, at);
      if (sub.errors.empty()) ++matching;
    }
    if (matching != 1) fail(at, fmt::format("matches {} of the oneOf alternatives, not exactly 1", matching));
  }

  void check(const ojson& s, const ojson& v, const std::string& at) {
    for (auto it = s.begin(); it != s.end(); ++it)
      if (!kKnownKeywords.count(it.key()))
        throw std::invalid_argument("unsupported schema keyword '" + it.key() + "' at " + at);
    if (auto ref = s.find("$ref"); ref != s.end()) check(resolve(ref->get<std::string>()), v, at);
    if (auto one = s.find("oneOf"); one != s.end()) check_one_of(*one, v, at);
    if (!check_type(s, v, at)) return;
    if (auto e = s.find("enum"); e != s.end() && std::find(e->begin(), e->end(), v) == e->end())
      fail(at, fmt::format("{} is not one of {}", v.dump(), e->dump()));
    if (auto m = s.find("minimum"); m != s.end() && v.is_number() && v.get<double>() < m->get<double>())
      fail(at, fmt::format("{} is below the minimum {}", v.dump(), m->dump()));
    if (v.is_object()) check_object(s, v, at);
    if (auto items = s.find("items"); items != s.end() && v.is_array())
      for (size_t i = 0; i < v.size(); ++i) check(*items, v[i], fmt::format("{}/{}", at, i));
  }
};

}  // namespace

std::vector<std::string> schema_errors(const ojson& schema, const ojson& doc) {
  Validator v{schema, {}};
  v.check(schema, doc, "");
  return v.errors;
}

const ojson& results_schema() {
  static const ojson schema = [] {
    const std::string path = std::string(ATTNBENCH_SOURCE_DIR) + "/results/schema.json";
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open " + path);
    return ojson::parse(in);
  }();
  return schema;
}

}  // namespace attnbench
