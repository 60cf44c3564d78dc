#!/usr/bin/env python3
"""Fails when a C++ function under the given folders is longer than the limit.

    function_lengths.py [--max-lines 80] [--list N] [--allow FILE:FUNCTION]... DIR_OR_FILE...

A function's length counts the lines from the first line of its signature (template line
included) to its closing brace. Lambdas and local classes count towards the function that
holds them; member functions defined in a class body count on their own. Comments, string
and character literals (raw strings included) and preprocessor lines are blanked out before
the braces are read, so a brace in them does not count.

--allow FILE:FUNCTION lets one named function stay over the limit (for code another change
owns); it is printed as allowed, and as stale once it fits.

Exit status: 0 when every function fits, 1 naming each one that does not, 2 on bad usage.
docs/architecture.md (section 4) says why the harness keeps its functions short.
"""

import argparse
import os
import re
import sys

SOURCE_SUFFIXES = (".cpp", ".hpp", ".h", ".cc", ".cu", ".cuh")
CONTROL_WORDS = {"if", "for", "while", "switch", "catch", "return", "sizeof", "decltype",
                 "alignof", "static_assert", "noexcept", "requires"}
ACCESS_LABELS = re.compile(r"^(\s*(public|private|protected)\s*:(?!:))+")
# What may follow a function's closing parenthesis before its body.
TRAILING = re.compile(
    r"(\s*(const|noexcept(\s*\([^()]*\))?|override|final|mutable|volatile|&&|&|"
    r"->\s*[\w:<>,\s\*&]+?|\[\[[^\]]*\]\]))*\s*$")


def blank(text, start, end):
    """text[start:end] with every character but newlines replaced by a space."""
    return re.sub(r"[^\n]", " ", text[start:end])


def strip_code(text):
    """The text with comments, literals and preprocessor lines blanked; lines are kept."""
    out = []
    i, n = 0, len(text)
    line_start = True
    while i < n:
        c = text[i]
        if line_start and c in " \t":
            out.append(c)
            i += 1
            continue
        if line_start and c == "#":  # a directive, with its continuation lines
            j = i
            while j < n and not (text[j] == "\n" and text[j - 1] != "\\"):
                j += 1
            out.append(blank(text, i, j))
            i = j
            continue
        line_start = c == "\n"
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(blank(text, i, j))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(blank(text, i, j))
            i = j
        elif re.match(r'(u8|u|U|L)?R"', text[i:i + 4]) and (i == 0 or not text[i - 1].isalnum()):
            q = text.index('"', i)
            paren = text.find("(", q)
            delim = ")" + text[q + 1:paren] + '"'
            j = text.find(delim, paren)
            j = n if j < 0 else j + len(delim)
            out.append(blank(text, i, j))
            i = j
        elif c in "\"'":
            if c == "'" and i > 0 and text[i - 1].isalnum() and i + 1 < n and text[i + 1].isalnum():
                out.append(" ")  # a digit separator: 1'000'000
                i += 1
                continue
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(blank(text, i, j))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def matching_open_paren(head, close):
    """Index of the '(' that the ')' at `close` closes, or -1."""
    depth = 0
    for k in range(close, -1, -1):
        if head[k] == ")":
            depth += 1
        elif head[k] == "(":
            depth -= 1
            if depth == 0:
                return k
    return -1


def function_name(head):
    """The name of the function a brace opens, or None when the brace opens no function."""
    body = TRAILING.sub("", head)
    body = re.sub(r"\s*=\s*default\s*$", "", body)
    if not body.endswith(")"):
        return None
    first = first_call_name(head)
    if first is None or first in CONTROL_WORDS:
        return None
    if re.search(r"\]\s*\([^()]*\)\s*$", body) or re.search(r"(^|[=,(])\s*\[[^\]]*\]", head):
        return "lambda"
    return first


def first_call_name(head):
    """The qualified name before the first top-level '(' of a signature."""
    op = re.search(r"([\w:]*operator\s*(\(\)|[^\s(]+))\s*\(", head)
    if op:
        return op.group(1)
    m = re.search(r"(~?[A-Za-z_][\w:~<>,\s\*&]*?)\s*\(", head)
    if not m:
        return None
    name = m.group(1).split()[-1] if m.group(1).split() else m.group(1)
    name = re.sub(r"^[\*&]+", "", name)
    return name.split("<")[0] or None


def functions(text):
    """(name, first line, last line) of each function body in the source text."""
    code = strip_code(text)
    found = []
    stack = []  # per open brace: "function", "scope" or "other"
    head_start = 0
    for i, c in enumerate(code):
        if c in ";":
            if not any(k == "function" for k in stack):
                head_start = i + 1
        elif c == "{":
            inside = any(k == "function" for k in stack)
            kind = "other"
            if not inside and (not stack or stack[-1] == "scope"):
                head = ACCESS_LABELS.sub(lambda m: blank(m.group(0), 0, len(m.group(0))),
                                         code[head_start:i])
                name = function_name(head.strip())
                if name is not None:
                    first = head_start + len(head) - len(head.lstrip())
                    kind = "function"
                    stack.append(kind)
                    found.append([name, code.count("\n", 0, first) + 1, None, len(stack)])
                    head_start = i + 1
                    continue
                if re.search(r"\b(namespace|class|struct|union|extern)\b", head) and \
                        not re.search(r"=\s*$", head.strip()):
                    kind = "scope"
            stack.append(kind)
            if not inside:
                head_start = i + 1
        elif c == "}":
            if stack:
                kind = stack.pop()
                if kind == "function":
                    for f in reversed(found):
                        if f[2] is None and f[3] == len(stack) + 1:
                            f[2] = code.count("\n", 0, i) + 1
                            break
            if not any(k == "function" for k in stack):
                head_start = i + 1
    return [(name, first, last) for name, first, last, _ in found if last is not None]


def source_files(paths):
    for p in paths:
        if os.path.isfile(p):
            yield p
            continue
        for root, _, files in os.walk(p):
            for f in sorted(files):
                if f.endswith(SOURCE_SUFFIXES):
                    yield os.path.join(root, f)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="+", help="folders (searched recursively) or files")
    ap.add_argument("--max-lines", type=int, default=80)
    ap.add_argument("--list", type=int, default=0, metavar="N",
                    help="also print the N longest functions")
    ap.add_argument("--allow", action="append", default=[], metavar="FILE:FUNCTION",
                    help="a function that may stay over the limit (repeatable)")
    a = ap.parse_args(argv)
    allowed = set(a.allow)
    rows = []
    for path in source_files(a.paths):
        with open(path, encoding="utf-8") as f:
            for name, first, last in functions(f.read()):
                rows.append((last - first + 1, path, first, name))
    if not rows:
        print(f"function_lengths: no C++ function found under {' '.join(a.paths)}", file=sys.stderr)
        return 2
    rows.sort(key=lambda r: (-r[0], r[1], r[2]))
    for lines, path, first, name in rows[:a.list]:
        print(f"{lines:5d}  {path}:{first}  {name}")
    over = [r for r in rows if r[0] > a.max_lines]
    for lines, path, first, name in over:
        if f"{path}:{name}" in allowed:
            print(f"{path}:{first}: function '{name}' has {lines} lines, allowed by --allow")
    long = [r for r in over if f"{r[1]}:{r[3]}" not in allowed]
    for stale in sorted(allowed - {f"{r[1]}:{r[3]}" for r in over}):
        print(f"note: --allow {stale} is not needed (no such function over the limit)")
    for lines, path, first, name in long:
        print(f"{path}:{first}: function '{name}' has {lines} lines (limit {a.max_lines})",
              file=sys.stderr)
    if long:
        return 1
    fits = [r for r in rows if r not in over] or rows
    print(f"function_lengths: {len(rows)} functions, the longest {fits[0][3]} "
          f"({fits[0][1]}:{fits[0][2]}) with {fits[0][0]} lines, limit {a.max_lines}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
