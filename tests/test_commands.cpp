// harness/commands: `attnbench list` names each kernel's source file relative to the source
// tree (--verbose), and keeps paths outside the tree as they are.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "commands.hpp"

using namespace attnbench;

TEST_CASE("list names each kernel's source file, relative to the source tree", "[commands]") {
  const ojson kernels = kernel_list_json();
  REQUIRE(kernels.size() == Registry::instance().names().size());
  for (const auto& k : kernels) {
    INFO(k["name"].get<std::string>());
    REQUIRE(k["source_files"].contains("cpu"));
    for (auto it = k["source_files"].begin(); it != k["source_files"].end(); ++it) {
      const std::string file = it->get<std::string>();
      CHECK_THAT(file, Catch::StartsWith("kernels/" + it.key() + "/"));
      CHECK(std::filesystem::exists(std::filesystem::path(ATTNBENCH_SOURCE_DIR) / file));
    }
  }
  CHECK(source_relative(std::string(ATTNBENCH_SOURCE_DIR) + "/kernels/cpu/lisa.cpp") ==
        "kernels/cpu/lisa.cpp");
  CHECK(source_relative("/elsewhere/kernel.cpp") == "/elsewhere/kernel.cpp");
}
