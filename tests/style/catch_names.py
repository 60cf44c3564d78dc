"""Fails naming every Catch2 test case whose name CTest cannot pass whole.

catch_discover_tests registers each test case by its name, and CMake cuts a name at ';' (its
list separator): such a test then matches nothing and passes without running an assertion.

usage: catch_names.py DIR...
"""

import pathlib
import re
import sys

TEST_CASE = re.compile(r'TEST_CASE\(\s*"((?:[^"\\]|\\.)*)"')


def bad_names(paths):
    for path in paths:
        text = path.read_text(encoding="utf-8")
        for match in TEST_CASE.finditer(text):
            if ";" in match.group(1):
                line = text.count("\n", 0, match.start()) + 1
                yield f"{path}:{line}: test name has ';' (CTest would run nothing): {match.group(1)}"


def main(argv):
    paths = [p for d in argv[1:] for p in sorted(pathlib.Path(d).rglob("*.cpp"))]
    problems = list(bad_names(paths))
    for p in problems:
        print(p)
    print(f"{len(paths)} files, {len(problems)} test names CTest cannot run")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
