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
        self.assertEqual(len(SAMPLES), 4)
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
        gpu = [ln for ln in claims.splitlines() if ln.startswith("| cuda: NVIDIA A10G (gpubox) | LISA up to")]
        # 2 claims x 2 LISA sides (attnbench, torch_lisa_ops) x 4 baselines; the peers file's
        # rows are on the same GPU, not a device of their own.
        self.assertEqual(len(gpu), 16)
        self.assertFalse(any("torch-cuda" in ln.split("|")[1] for ln in claims.splitlines()
                             if ln.startswith("| ")))
        row = [ln for ln in gpu if "| attnbench lisa* (lisa_mini) | fastest exact vanilla "
               "(torch_sdpa [sdpa_backend=flash]) | 34.1x: 34.4 ms / 1.01 ms | **not reproduced**" in ln]
        self.assertEqual(len(row), 1, gpu)
        self.assertIn("| N=4096; N 1024..65536, 5 points |", row[0])
        eager = [ln for ln in gpu if "57x" in ln and "| vanilla_eager |" in ln and "lisa_mini" in ln][0]
        self.assertIn("**not measurable here**: vanilla_eager skipped at N=65536: needs 39.7 GB, "
                      "limit 21.6 GB", eager)
        self.assertIn("### Memory at the paper point", claims)
        self.assertIn("2 x 17.2 GB b*h*N*N fp32 score tensors + 4.3 GB N*N bool mask", claims)
        reformer = [ln for ln in claims.splitlines() if ln.startswith("| Reformer") and "devbox" in ln][0]
        self.assertIn("**reproduced**", reformer)
        self.assertIn("How the verdicts are decided", claims)
        self.assertIn("*Crossover N*", claims)

    def test_environment_table_names_torch(self):
        env = self.report.split("## Results files and their environments")[1].split("## Claims")[0]
        peers = [ln for ln in env.splitlines() if "sample_cuda_paper_peers.json" in ln][0]
        self.assertIn("| - | torch 2.3.1, 4 threads |", peers)
        tool = [ln for ln in env.splitlines() if "sample_cuda_paper.json" in ln][0]
        self.assertIn("GNU 12.2.0 Release, OpenBLAS 0.3.21 | - |", tool)

    def test_preset_tables_show_precision(self):
        section = self.report.split("### Preset `default`")[1].split("### Preset")[0]
        self.assertIn("| precision |", section)
        bf16 = [ln for ln in section.splitlines() if "| lisa_base |" in ln and "| bf16 |" in ln]
        self.assertEqual(len(bf16), 8)  # causal and bidirectional, 4 N

    def test_report_lists_rows_that_did_not_run(self):
        section = self.report.split("## Rows that did not run")[1]
        self.assertIn("output has NaN (Sinkhorn iterations diverged)", section)
        self.assertIn("| 2048, 8192 | error |", section)
        self.assertIn("no bidirectional form", section)
        self.assertIn("needs 35.4 GB, limit 21.6 GB", section)

    def test_exponent_table(self):
        section = self.report.split("## Scaling exponents of time in N")[1].split("## Figures")[0]
        row = [ln for ln in section.splitlines()
               if "| vanilla_materialized | causal | batch 1, heads 1, head_dim 1024, fp32 |" in ln][0]
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
