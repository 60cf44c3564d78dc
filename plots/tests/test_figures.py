"""The whole plots step on the committed sample files: figures exist and are not empty, the
report embeds them, lists what did not run and carries the claims table."""

import pathlib
import re
import subprocess
import tempfile
import unittest

import helpers as h

SCRIPT = h.PLOTS / "attnplots.py"
DATA = h.PLOTS / "tests" / "data"
SAMPLES = sorted(str(p) for p in DATA.glob("sample_*.json"))

CPU = "cpu-devbox-intel-xeon-platinum-8375c-cpu-2-90ghz"
GPU = "cuda-gpubox-nvidia-a10g"
EXPECTED = [
    f"{kind}__{dev}__{shape}"
    for kind in ("time_vs_n", "memory_vs_n", "ratios_vs_n", "accuracy_vs_speed")
    for dev, shape in ((CPU, "b2_h2_dh64"), (GPU, "b2_h2_dh64"), (GPU, "b1_h1_dh1024"))
] + [
    f"lisa_vs_codewords__{CPU}__b2_h2_dh64", f"lisa_vs_codebooks__{CPU}__b2_h2_dh64",
    f"lisa_vs_codewords__{GPU}__b2_h2_dh64", f"lisa_vs_codebooks__{GPU}__b2_h2_dh64",
    f"lisa_vs_codewords__{GPU}__b1_h1_dh1024",
    "devices",
]


class SamplePlots(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.out = pathlib.Path(cls.tmp.name) / "out"
        cls.proc = subprocess.run(["/usr/bin/python3", str(SCRIPT), "--out", str(cls.out), *SAMPLES],
                                  capture_output=True, text=True, timeout=600)
        report = cls.out / "REPORT.md"
        cls.report = report.read_text(encoding="utf-8") if report.exists() else ""

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_exit_status(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stderr)
        self.assertNotIn("Traceback", self.proc.stderr)
        self.assertIn("REPORT.md", self.proc.stdout)

    def test_every_expected_figure_as_png_and_pdf(self):
        self.assertEqual(len(SAMPLES), 3)
        for stem in EXPECTED:
            png = self.out / "figures" / f"{stem}.png"
            pdf = self.out / "figures" / f"{stem}.pdf"
            self.assertTrue(png.exists(), png)
            self.assertTrue(pdf.exists(), pdf)
            self.assertGreater(png.stat().st_size, 10_000, png)
            self.assertEqual(png.read_bytes()[:8], b"\x89PNG\r\n\x1a\n")
            self.assertEqual(pdf.read_bytes()[:5], b"%PDF-")

    def test_no_unexpected_figures(self):
        got = sorted(p.stem for p in (self.out / "figures").glob("*.png"))
        self.assertEqual(got, sorted(EXPECTED))

    def test_report_embeds_every_figure_by_relative_path(self):
        embedded = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", self.report)
        self.assertEqual(sorted(embedded), sorted(f"figures/{s}.png" for s in EXPECTED))
        for rel in embedded:
            self.assertTrue((self.out / rel).exists(), rel)

    def test_report_sections(self):
        for heading in ("## Results files and their environments", "## Claims",
                        "## Scaling exponents of time in N", "## Figures", "## Results by preset",
                        "### Preset `default`", "### Preset `paper`", "## Rows that did not run"):
            self.assertIn(heading, self.report)
        self.assertIn("NVIDIA A10G, 24 GB", self.report)
        self.assertIn("0123456789ab", self.report)  # commit

    def test_report_claims_table(self):
        claims = self.report.split("## Claims")[1].split("## Scaling")[0]
        table_rows = [ln for ln in claims.splitlines() if ln.startswith("| LISA up to 57x")]
        self.assertEqual(len(table_rows), 2)
        gpu_row = [ln for ln in table_rows if "NVIDIA A10G" in ln][0]
        self.assertIn("**not measurable here**: below 57x up to N=32768; vanilla_materialized "
                      "skipped at N=65536: needs 35.4 GB", gpu_row)
        reformer = [ln for ln in claims.splitlines() if ln.startswith("| Reformer") and "devbox" in ln][0]
        self.assertIn("**reproduced**", reformer)
        self.assertIn("How the verdicts are decided", claims)

    def test_report_lists_rows_that_did_not_run(self):
        section = self.report.split("## Rows that did not run")[1]
        self.assertIn("output has NaN (Sinkhorn iterations diverged)", section)
        self.assertIn("| 2048, 8192 | error |", section)
        self.assertIn("no bidirectional form", section)
        self.assertIn("needs 35.4 GB, limit 21.6 GB", section)

    def test_exponent_table(self):
        section = self.report.split("## Scaling exponents of time in N")[1].split("## Figures")[0]
        row = [ln for ln in section.splitlines()
               if "| vanilla_materialized | causal | batch 1, heads 1, head_dim 1024 |" in ln][0]
        self.assertIn("| 1024 .. 32768 | 4 | 2.00 |", row)


class Colours(unittest.TestCase):
    def test_known_fixed_unknown_fallback(self):
        import figures
        a = figures.KernelStyle(["lisa_base", "zeta_attention", "alpha_attention"])
        b = figures.KernelStyle(["alpha_attention", "vanilla_materialized", "zeta_attention"])
        self.assertEqual(a.colour("lisa_base"), dict(figures.KERNEL_COLOURS)["lisa_base"])
        self.assertEqual(a.colour("alpha_attention"), b.colour("alpha_attention"))
        self.assertNotEqual(a.colour("alpha_attention"), a.colour("zeta_attention"))
        known = set(dict(figures.KERNEL_COLOURS).values())
        self.assertNotIn(a.colour("zeta_attention"), known)


if __name__ == "__main__":
    unittest.main()
