"""Malformed inputs: exit status 2 and one line "attnplots: error: FILE: why", no traceback."""

import json
import shutil
import pathlib
import subprocess
import tempfile
import unittest

import helpers as h

SCRIPT = h.PLOTS / "attnplots.py"
PYTHON = "/usr/bin/python3"


def valid_doc():
    pt = dict(batch=1, heads=1, seq_len=128, head_dim=64, causal=True)
    return h.document([h.row("vanilla_materialized", time_ms=1.0, peak_bytes=1e6, **pt),
                       h.row("lisa_base", time_ms=0.5, peak_bytes=1e5, approx=0.3,
                             params={"codebooks": 8, "codewords": 16}, **pt)])


class MalformedInputs(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = pathlib.Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def run_plots(self, *paths):
        return subprocess.run([PYTHON, str(SCRIPT), "--out", str(self.dir / "out"), *map(str, paths)],
                              capture_output=True, text=True, timeout=120)

    def assert_one_line_error(self, proc, path, *fragments):
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertNotIn("Traceback", proc.stderr)
        lines = proc.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, proc.stderr)
        self.assertTrue(lines[0].startswith(f"attnplots: error: {path}: "), lines[0])
        for frag in fragments:
            self.assertIn(frag, lines[0])
        self.assertFalse((self.dir / "out" / "REPORT.md").exists())

    def write_text(self, name, text):
        p = self.dir / name
        p.write_text(text, encoding="utf-8")
        return p

    def write_doc(self, name, doc):
        return self.write_text(name, json.dumps(doc, indent=1))

    def test_missing_file(self):
        p = self.dir / "nope.json"
        self.assert_one_line_error(self.run_plots(p), p, "no such file")

    def test_not_json(self):
        p = self.write_text("bad.json", '{\n "schema_version": 1,\n "rows": [,]\n}\n')
        self.assert_one_line_error(self.run_plots(p), p, "not valid JSON (line 3")

    def test_truncated_json(self):
        text = json.dumps(valid_doc(), indent=1)
        p = self.write_text("cut.json", text[: len(text) // 2])
        self.assert_one_line_error(self.run_plots(p), p, "not valid JSON")

    def test_wrong_schema_version(self):
        doc = valid_doc()
        doc["schema_version"] = 3
        p = self.write_doc("v3.json", doc)
        self.assert_one_line_error(self.run_plots(p), p, "schema_version 3 is not supported")

    def test_no_schema_version(self):
        doc = valid_doc()
        del doc["schema_version"]
        p = self.write_doc("nov.json", doc)
        self.assert_one_line_error(self.run_plots(p), p, "schema_version")

    def test_top_level_not_an_object(self):
        p = self.write_text("list.json", "[1, 2]")
        self.assert_one_line_error(self.run_plots(p), p, "not an attnbench results file")

    def test_missing_rows(self):
        doc = valid_doc()
        del doc["rows"]
        p = self.write_doc("norows.json", doc)
        self.assert_one_line_error(self.run_plots(p), p, "does not match results/schema.json at rows: missing")

    def test_row_missing_status(self):
        doc = valid_doc()
        del doc["rows"][1]["status"]
        p = self.write_doc("nostatus.json", doc)
        self.assert_one_line_error(self.run_plots(p), p, "at rows[1] (lisa_base).status: missing")

    def test_row_missing_axis(self):
        doc = valid_doc()
        del doc["rows"][0]["axes"]["seq_len"]
        p = self.write_doc("noaxis.json", doc)
        self.assert_one_line_error(self.run_plots(p), p, "rows[0]", "axes.seq_len")

    def test_ok_row_without_time(self):
        doc = valid_doc()
        doc["rows"][0]["time_ms"] = None
        p = self.write_doc("notime.json", doc)
        self.assert_one_line_error(self.run_plots(p), p, "time_ms.median")

    def test_unknown_status(self):
        doc = valid_doc()
        doc["rows"][0]["status"] = "crashed"
        p = self.write_doc("status.json", doc)
        self.assert_one_line_error(self.run_plots(p), p, "'crashed'")

    def test_wrong_type(self):
        doc = valid_doc()
        doc["rows"][1]["peak_bytes"] = "lots"
        p = self.write_doc("type.json", doc)
        self.assert_one_line_error(self.run_plots(p), p, "peak_bytes")

    def test_unknown_precision(self):
        doc = valid_doc()
        doc["rows"][1]["axes"]["precision"] = "fp8"
        p = self.write_doc("prec.json", doc)
        self.assert_one_line_error(self.run_plots(p), p, "at rows[1] (lisa_base).axes.precision: 'fp8' "
                                   "is not one of ['fp32', 'tf32', 'bf16', 'fp16']")

    def test_peer_of_not_a_list(self):
        doc = valid_doc()
        doc["rows"][0]["peer_of"] = "vanilla_eager"
        p = self.write_doc("peer.json", doc)
        self.assert_one_line_error(self.run_plots(p), p, "at rows[0] (vanilla_materialized).peer_of: "
                                   "'vanilla_eager' is not of type 'array'")

    def test_field_the_schema_does_not_know(self):
        doc = valid_doc()
        doc["rows"][1]["speedup"] = 3.0
        p = self.write_doc("extra.json", doc)
        self.assert_one_line_error(self.run_plots(p), p, "does not match results/schema.json at "
                                   "rows[1] (lisa_base): Additional properties are not allowed "
                                   "('speedup' was unexpected)")

    def test_environment_path_is_named(self):
        doc = valid_doc()
        doc["environment"]["gpu"] = {"memory_bytes": 1}
        p = self.write_doc("gpu.json", doc)
        self.assert_one_line_error(self.run_plots(p), p, "at environment.gpu")

    def test_row_with_a_bad_peak_does_not_validate(self):
        # peak_bytes is an integer, or null on a peers row that did not run (torch has no
        # workspace query to declare it); anything else is refused with its path.
        doc = valid_doc()
        doc["rows"][0].update(status="skipped", reason="torch 1.13.1 has no sdpa", time_ms=None,
                              peak_bytes=None, backend="torch-cpu", kernel="torch_sdpa")
        p = self.write_doc("nullpeak.json", doc)
        self.assertEqual(self.run_plots(p).returncode, 0)
        shutil.rmtree(self.dir / "out")  # the next run must write no report
        doc["rows"][0]["peak_bytes"] = "lots"
        p = self.write_doc("badpeak.json", doc)
        self.assert_one_line_error(self.run_plots(p), p, "at rows[0] (torch_sdpa).peak_bytes: ")

    def test_directory(self):
        d = self.dir / "adir"
        d.mkdir()
        self.assert_one_line_error(self.run_plots(d), d, "directory")

    def test_bad_file_after_good_one(self):
        good = self.write_doc("good.json", valid_doc())
        bad = self.write_text("bad.json", "{")
        self.assert_one_line_error(self.run_plots(good, bad), bad, "not valid JSON")

    def test_only_skipped_and_error_rows_is_fine(self):
        pt = dict(batch=1, heads=1, seq_len=65536, head_dim=1024, causal=True)
        doc = h.document([h.row("vanilla_materialized", status="skipped", reason="needs 35.4 GB",
                                peak_bytes=35.4e9, **pt),
                          h.row("lisa_base", status="error", reason="CUDA error: out of memory",
                                params={"codebooks": 8, "codewords": 16}, **pt)])
        p = self.write_doc("skipped.json", doc)
        proc = self.run_plots(p)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        report = (self.dir / "out" / "REPORT.md").read_text(encoding="utf-8")
        self.assertIn("needs 35.4 GB", report)
        self.assertIn("CUDA error: out of memory", report)
        self.assertIn("No row with status ok", report)


if __name__ == "__main__":
    unittest.main()
