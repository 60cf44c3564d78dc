"""The test-name check finds a name CTest would cut, and passes clean ones."""

import pathlib
import tempfile
import unittest

import catch_names


class CatchNames(unittest.TestCase):
    def names_in(self, source):
        with tempfile.TemporaryDirectory() as d:
            path = pathlib.Path(d) / "t.cpp"
            path.write_text(source, encoding="utf-8")
            return list(catch_names.bad_names([path]))

    def test_semicolon_is_found_with_its_line(self):
        found = self.names_in('\n\nTEST_CASE("a; b", "[x]") {}\n')
        self.assertEqual(len(found), 1)
        self.assertIn("t.cpp:3:", found[0])

    def test_commas_and_escaped_quotes_pass(self):
        self.assertEqual(self.names_in('TEST_CASE("a, b \\"c\\" [d]", "[x]") {}\n'), [])


if __name__ == "__main__":
    unittest.main()
