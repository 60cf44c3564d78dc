// A validator for the part of JSON Schema (draft 2020-12) that results/schema.json uses: type,
// enum, required, properties, additionalProperties, items, minimum, oneOf and local $ref.
// Debian ships no C++ JSON Schema library, and the tests must check what the harness writes
// against the one schema file the Python side validates with python3-jsonschema.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace attnbench {

// Every place `doc` breaks `schema`, as "<JSON pointer>: <what is wrong>" (empty when valid).
// Throws std::invalid_argument for a keyword this validator does not implement, so a schema
// change that needs more is noticed rather than silently ignored.
std::vector<std::string> schema_errors(const nlohmann::ordered_json& schema,
                                       const nlohmann::ordered_json& doc);

// results/schema.json of the source tree, parsed once.
const nlohmann::ordered_json& results_schema();

}  // namespace attnbench
