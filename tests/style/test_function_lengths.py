"""The function-length check finds long functions and only those (synthetic sources)."""
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import function_lengths  # noqa: E402


def body(lines):
    """`lines` statements, one a line."""
    return "".join(f"  x += {i};\n" for i in range(lines))


def run_script(*args):
    """The check run as CTest runs it."""
    return subprocess.run([sys.executable, os.path.join(HERE, "function_lengths.py"), *args],
                          capture_output=True, text=True)


def lengths(text):
    return {name: last - first + 1 for name, first, last in function_lengths.functions(text)}


class FunctionLengths(unittest.TestCase):
    def test_counts_signature_to_closing_brace(self):
        text = "namespace a {\n\nint small(int x) {\n  return x;\n}\n\n}  // namespace a\n"
        self.assertEqual(lengths(text), {"small": 3})

    def test_braces_in_comments_literals_and_directives_do_not_count(self):
        text = ('// {{{ not code\n'
                '#define OPEN {\n'
                'std::string f() {\n'
                '  const char* s = "}}}";  /* } */\n'
                "  char c = '}';\n"
                '  auto r = R"x(}})x";\n'
                '  return s;\n'
                '}\n'
                'int g() { return 1\'000; }\n')
        self.assertEqual(lengths(text), {"f": 6, "g": 1})

    def test_lambdas_control_blocks_and_local_classes_belong_to_their_function(self):
        text = ("void outer() {\n"
                "  auto l = [&](int y) {\n    return y;\n  };\n"
                "  struct Local { int m() { return 2; } } v;\n"
                "  for (int i = 0; i < 3; ++i) {\n    if (i) {\n    }\n  }\n"
                "}\n")
        self.assertEqual(lengths(text), {"outer": 10})

    def test_member_functions_constructors_and_templates_count_on_their_own(self):
        text = ("class K {\n public:\n"
                "  explicit K(int n) : n_(n), v_(size_t(n)) {\n    go();\n  }\n"
                "  int n() const override { return n_; }\n"
                " private:\n  int n_ = 0;\n  std::vector<int> v_{};\n};\n"
                "template <class F>\nvoid each(F f) {\n  f();\n}\n"
                "bool operator==(const K& a, const K& b) {\n  return a.n() == b.n();\n}\n"
                "enum class E { a, b };\n"
                "const int table[] = {1, 2, 3};\n")
        self.assertEqual(lengths(text), {"K": 3, "n": 1, "each": 4, "operator==": 3})

    def test_the_script_fails_naming_a_function_over_the_limit(self):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "long.cpp"), "w") as f:
                f.write("int fits() {\n" + body(78) + "}\n")    # 80 lines
                f.write("int too_long() {\n" + body(79) + "}\n")  # 81 lines
            run = run_script(d)
            self.assertEqual(run.returncode, 1)
            self.assertIn("'too_long' has 81 lines (limit 80)", run.stderr)
            self.assertNotIn("fits", run.stderr)
            with open(os.path.join(d, "long.cpp"), "w") as f:
                f.write("int fits() {\n" + body(78) + "}\n")
            run = run_script(d)
            self.assertEqual(run.returncode, 0, run.stderr)
            self.assertIn("the longest fits", run.stdout)

    def test_an_allowed_function_passes_and_a_stale_allowance_is_named(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "owned.cpp")
            with open(path, "w") as f:
                f.write("int owned_elsewhere() {\n" + body(90) + "}\n")
            run = run_script(d, "--allow", f"{path}:owned_elsewhere", "--allow", f"{path}:gone")
            self.assertEqual(run.returncode, 0, run.stderr)
            self.assertIn("allowed by --allow", run.stdout)
            self.assertIn(f"--allow {path}:gone is not needed", run.stdout)
            run = run_script(d, "--allow", f"{path}:other")
            self.assertEqual(run.returncode, 1)
            self.assertIn("'owned_elsewhere' has 92 lines", run.stderr)


if __name__ == "__main__":
    unittest.main()
