"""The claims table: verdicts for inputs whose answer is known in advance."""

import tempfile
import unittest

import helpers as h

import analysis as an
from results_io import load_dataset

DATA = h.PLOTS / "tests" / "data"
SAMPLES = [str(DATA / n) for n in ("sample_cpu_default.json", "sample_cuda_default.json",
                                   "sample_cuda_paper.json")]


def verdicts(claims, prefix):
    """{device label: Claim} for the claims whose text starts with prefix."""
    return {c.device: c for c in claims if c.claim.startswith(prefix)}


def paper_rows(lisa_speedup_at, vanilla_skip_from=None, lisa_mem_ratio=50.0, ns=(4096, 16384, 65536)):
    """Paper-setting rows on one GPU: vanilla at 1 ms; lisa_base's time and peak chosen so that
    its speedup at N is lisa_speedup_at[N] and its memory ratio is lisa_mem_ratio."""
    rows = []
    for n in ns:
        pt = dict(backend="cuda", batch=1, heads=1, seq_len=n, head_dim=1024, causal=True)
        if vanilla_skip_from is not None and n >= vanilla_skip_from:
            rows.append(h.row("vanilla_materialized", status="skipped",
                              reason="needs 35.4 GB, limit 21.6 GB", peak_bytes=35.4e9, **pt))
        else:
            rows.append(h.row("vanilla_materialized", time_ms=1.0, peak_bytes=1e9, **pt))
        rows.append(h.row("lisa_base", time_ms=1.0 / lisa_speedup_at[n], approx=0.3,
                          peak_bytes=1e9 / lisa_mem_ratio, params={"codebooks": 8, "codewords": 16},
                          **pt))
    return rows


class ClaimsCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def claims_for(self, rows, env=None, name="r.json"):
        path = h.write(f"{self.tmp.name}/{name}",
                       h.document(rows, "paper", env or h.environment(host="g", gpu=h.gpu())))
        return an.claims_table(load_dataset([path]))

    def only(self, claims, prefix):
        got = [c for c in claims if c.claim.startswith(prefix)]
        self.assertEqual(len(got), 1, [c.claim for c in claims])
        return got[0]


class SampleClaims(unittest.TestCase):
    """The committed sample files: their verdicts are fixed by make_sample.py's formulas."""

    @classmethod
    def setUpClass(cls):
        cls.claims = an.claims_table(load_dataset(SAMPLES))
        cls.cpu = "cpu: Intel Xeon Platinum 8375C CPU @ 2.90GHz (devbox)"
        cls.gpu = "cuda: NVIDIA A10G (gpubox)"

    def test_speed_on_gpu_not_measurable_because_vanilla_skipped_at_paper_length(self):
        c = verdicts(self.claims, "LISA up to 57x")[self.gpu]
        self.assertEqual(c.verdict, an.NOT_MEASURABLE)
        self.assertIn("vanilla_materialized skipped at N=65536", c.reason)
        self.assertIn("needs 35.4 GB", c.reason)
        self.assertTrue(c.measured.startswith("42.6x (lisa_base, N=32768)"), c.measured)
        self.assertIn("head_dim 1024", c.setting)
        self.assertIn("codewords 16", c.setting)

    def test_memory_on_gpu_not_measurable_with_computed_ratio_note(self):
        c = verdicts(self.claims, "LISA up to 78x")[self.gpu]
        self.assertEqual(c.verdict, an.NOT_MEASURABLE)
        self.assertTrue(c.measured.startswith("67.2x"), c.measured)
        self.assertIn("computed, not measured", c.reason)

    def test_cpu_has_no_paper_setting(self):
        c = verdicts(self.claims, "LISA up to 57x")[self.cpu]
        self.assertEqual(c.verdict, an.NOT_MEASURABLE)
        self.assertIn("paper setting", c.reason)
        # The B = 1 toy row (173x) must not count when causal B = 8 rows exist.
        self.assertTrue(c.measured.startswith("31.8x (lisa_mini"), c.measured)

    def test_reformer(self):
        v = verdicts(self.claims, "Reformer")
        self.assertEqual(v[self.cpu].verdict, an.REPRODUCED)
        self.assertTrue(v[self.cpu].measured.startswith("8.00x slower"), v[self.cpu].measured)
        self.assertEqual(v[self.gpu].verdict, an.NOT_MEASURABLE)
        self.assertIn("no cuda form", v[self.gpu].reason)

    def test_exponents(self):
        for dev in (self.cpu, self.gpu):
            self.assertEqual(verdicts(self.claims, "LISA time grows")[dev].verdict, an.REPRODUCED)
            self.assertEqual(verdicts(self.claims, "vanilla time grows")[dev].verdict, an.REPRODUCED)
        self.assertIn("head_dim 1024", verdicts(self.claims, "LISA time grows")[self.gpu].setting)


class RatioVerdicts(ClaimsCase):
    def test_reached_is_reproduced(self):
        claims = self.claims_for(paper_rows({4096: 3.0, 16384: 60.0, 65536: 40.0}, lisa_mem_ratio=80.0))
        c = self.only(claims, "LISA up to 57x")
        self.assertEqual(c.verdict, an.REPRODUCED)
        self.assertTrue(c.measured.startswith("60.0x (lisa_base, N=16384)"), c.measured)
        self.assertIn("seq_len 16384", c.setting)
        self.assertEqual(self.only(claims, "LISA up to 78x").verdict, an.REPRODUCED)

    def test_below_with_vanilla_at_paper_length_is_not_reproduced(self):
        claims = self.claims_for(paper_rows({4096: 3.0, 16384: 20.0, 65536: 50.0}))
        c = self.only(claims, "LISA up to 57x")
        self.assertEqual(c.verdict, an.NOT_REPRODUCED)
        self.assertTrue(c.measured.startswith("50.0x"), c.measured)
        self.assertEqual(self.only(claims, "LISA up to 78x").verdict, an.NOT_REPRODUCED)

    def test_below_with_vanilla_skipped_is_not_measurable(self):
        claims = self.claims_for(paper_rows({4096: 3.0, 16384: 20.0, 65536: 50.0},
                                            vanilla_skip_from=65536))
        c = self.only(claims, "LISA up to 57x")
        self.assertEqual(c.verdict, an.NOT_MEASURABLE)
        self.assertIn("vanilla_materialized skipped at N=65536: needs 35.4 GB", c.reason)
        self.assertTrue(c.measured.startswith("20.0x (lisa_base, N=16384)"), c.measured)

    def test_reached_before_vanilla_skipped_is_still_reproduced(self):
        claims = self.claims_for(paper_rows({4096: 3.0, 16384: 58.0, 65536: 90.0},
                                            vanilla_skip_from=65536))
        self.assertEqual(self.only(claims, "LISA up to 57x").verdict, an.REPRODUCED)

    def test_vanilla_never_run_at_paper_length(self):
        claims = self.claims_for(paper_rows({4096: 3.0, 16384: 20.0}, ns=(4096, 16384)))
        c = self.only(claims, "LISA up to 57x")
        self.assertEqual(c.verdict, an.NOT_MEASURABLE)
        self.assertIn("no row at N=65536", c.reason)

    def test_other_setting_reaching_the_claim_names_it(self):
        rows = []
        for n, s in ((512, 10.0), (2048, 70.0)):
            pt = dict(batch=2, heads=2, seq_len=n, head_dim=64, causal=True)
            rows.append(h.row("vanilla_materialized", time_ms=1.0, peak_bytes=1e8, **pt))
            rows.append(h.row("lisa_base", time_ms=1.0 / s, peak_bytes=1e7, approx=0.3,
                              params={"codebooks": 8, "codewords": 16}, **pt))
        # A faster B = 1 row that must not be what the claim quotes.
        rows.append(h.row("lisa_base", time_ms=1.0 / 500, peak_bytes=1e7, approx=0.9,
                          params={"codebooks": 1, "codewords": 16}, batch=2, heads=2,
                          seq_len=2048, head_dim=64, causal=True))
        claims = self.claims_for(rows, env=h.environment())
        c = self.only(claims, "LISA up to 57x")
        self.assertEqual(c.verdict, an.REPRODUCED)
        self.assertTrue(c.measured.startswith("70.0x"), c.measured)
        self.assertIn("other than the paper", c.reason)
        self.assertIn("head_dim 64", c.setting)

    def test_ratio_against_another_vanilla_is_not_used(self):
        rows = paper_rows({4096: 3.0, 16384: 60.0, 65536: 90.0})
        path = h.write(f"{self.tmp.name}/flash.json",
                       h.document([dict(r, kernel="vanilla_flash") if r["kernel"] == "vanilla_materialized"
                                   else r for r in rows], "paper", h.environment(gpu=h.gpu()),
                                  vanilla="vanilla_flash"))
        c = self.only(an.claims_table(load_dataset([path])), "LISA up to 57x")
        self.assertEqual(c.verdict, an.NOT_MEASURABLE)
        self.assertIn("vanilla_flash", c.reason)


class ReformerVerdicts(ClaimsCase):
    def rows(self, ratio):
        pt = dict(batch=1, heads=2, seq_len=128, head_dim=64, causal=True)
        return [h.row("vanilla_materialized", time_ms=0.1, peak_bytes=1e6, **pt),
                h.row("reformer_lsh", time_ms=0.1 * ratio, peak_bytes=1e6, approx=0.4,
                      params={"n_hashes": 8}, **pt)]

    def test_slower_enough(self):
        c = self.only(self.claims_for(self.rows(7.6)), "Reformer")
        self.assertEqual(c.verdict, an.REPRODUCED)

    def test_not_slow_enough(self):
        c = self.only(self.claims_for(self.rows(5.0)), "Reformer")
        self.assertEqual(c.verdict, an.NOT_REPRODUCED)
        self.assertTrue(c.measured.startswith("5.00x slower"), c.measured)

    def test_absent(self):
        c = self.only(self.claims_for(self.rows(5.0)[:1]), "Reformer")
        self.assertEqual(c.verdict, an.NOT_MEASURABLE)


class ExponentVerdicts(ClaimsCase):
    def rows(self, lisa_p, van_p, ns=(1024, 2048, 4096, 8192)):
        rows = []
        for n in ns:
            pt = dict(backend="cuda", batch=1, heads=1, seq_len=n, head_dim=1024, causal=True)
            rows.append(h.row("vanilla_materialized", time_ms=1e-6 * n ** van_p, peak_bytes=1e9, **pt))
            rows.append(h.row("lisa_base", time_ms=1e-4 * n ** lisa_p, peak_bytes=1e7, approx=0.3,
                              params={"codebooks": 8, "codewords": 16}, **pt))
        return rows

    def test_in_range(self):
        claims = self.claims_for(self.rows(1.0, 2.0))
        self.assertEqual(self.only(claims, "LISA time grows").verdict, an.REPRODUCED)
        self.assertEqual(self.only(claims, "vanilla time grows").verdict, an.REPRODUCED)

    def test_out_of_range(self):
        claims = self.claims_for(self.rows(1.4, 1.5))
        self.assertEqual(self.only(claims, "LISA time grows").verdict, an.NOT_REPRODUCED)
        self.assertEqual(self.only(claims, "vanilla time grows").verdict, an.NOT_REPRODUCED)
        self.assertIn("1.40", self.only(claims, "LISA time grows").measured)

    def test_too_few_points(self):
        claims = self.claims_for(self.rows(1.0, 2.0, ns=(1024, 2048)))
        self.assertEqual(self.only(claims, "LISA time grows").verdict, an.NOT_MEASURABLE)
        self.assertEqual(self.only(claims, "vanilla time grows").verdict, an.NOT_MEASURABLE)


if __name__ == "__main__":
    unittest.main()
