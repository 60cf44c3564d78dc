"""The fitted scaling exponents recover known slopes and never mix settings."""

import tempfile
import unittest

import helpers as h

import analysis as an
from results_io import load_dataset


def noisy(i):
    """Deterministic multiplicative noise of at most 3 %."""
    return 1.0 + 0.03 * ((i * 7919) % 13 - 6) / 6


class FitSlope(unittest.TestCase):
    def test_exact_power_laws(self):
        ns = [256, 512, 1024, 2048, 4096]
        for p in (0.5, 1.0, 1.5, 2.0, 3.0):
            self.assertAlmostEqual(an.fit_slope(ns, [3e-5 * n ** p for n in ns]), p, places=9)

    def test_noise_barely_moves_it(self):
        ns = [128 * 2 ** i for i in range(8)]
        got = an.fit_slope(ns, [1e-6 * n ** 2 * noisy(i) for i, n in enumerate(ns)])
        self.assertAlmostEqual(got, 2.0, delta=0.02)

    def test_upper_range(self):
        pts = [(128 * 2 ** i, 1.0) for i in range(10)]  # N up to 65536
        self.assertEqual([p[0] for p in an.upper_range(pts)], [4096, 8192, 16384, 32768, 65536])
        self.assertEqual([p[0] for p in an.upper_range(pts[:3])], [128, 256, 512])
        sparse = [(128, 1.0), (512, 1.0), (65536, 1.0)]
        self.assertEqual([p[0] for p in an.upper_range(sparse)], [128, 512, 65536])


class ExponentFits(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def test_rows_recover_slopes_per_setting(self):
        rows = []
        ns = [512, 1024, 2048, 4096, 8192, 16384]
        for i, n in enumerate(ns):
            for causal in (True, False):
                pt = dict(batch=1, heads=2, seq_len=n, head_dim=64, causal=causal)
                rows.append(h.row("vanilla_materialized", time_ms=2e-6 * n ** 2 * noisy(i),
                                  peak_bytes=1e6, **pt))
                # Two W settings with different growth: each must get its own fit.
                rows.append(h.row("lisa_base", time_ms=1e-4 * n * noisy(i + 1), peak_bytes=1e5,
                                  approx=0.3, params={"codebooks": 8, "codewords": 16}, **pt))
                rows.append(h.row("lisa_base", time_ms=1e-6 * n ** 1.5, peak_bytes=1e5,
                                  approx=0.3, params={"codebooks": 8, "codewords": 256}, **pt))
        # A skipped row is not a point.
        rows.append(h.row("vanilla_materialized", status="skipped", reason="memory",
                          batch=1, heads=2, seq_len=32768, head_dim=64, causal=True))
        path = h.write(f"{self.tmp.name}/r.json", h.document(rows))
        fits = an.exponent_fits(load_dataset([path]).rows)
        by = {(f.kernel, f.causal, f.params): f for f in fits}
        self.assertEqual(len(fits), 6)
        for causal in (True, False):
            v = by[("vanilla_materialized", causal, ())]
            self.assertAlmostEqual(v.slope_all, 2.0, delta=0.03)
            self.assertEqual(v.ns, ns)
            self.assertEqual(v.upper_ns, ns[1:])  # 16384 / 16 = 1024
            w16 = by[("lisa_base", causal, (("codebooks", 8), ("codewords", 16)))]
            self.assertAlmostEqual(w16.slope_all, 1.0, delta=0.03)
            w256 = by[("lisa_base", causal, (("codebooks", 8), ("codewords", 256)))]
            self.assertAlmostEqual(w256.slope_all, 1.5, places=6)
            self.assertAlmostEqual(w256.slope_upper, 1.5, places=6)

    def test_overhead_shows_in_all_range_not_upper(self):
        rows = []
        for n in [64 * 2 ** i for i in range(11)]:  # 64 .. 65536
            rows.append(h.row("lisa_base", time_ms=0.05 + 1e-4 * n, peak_bytes=1e5, approx=0.3,
                              params={"codebooks": 8, "codewords": 16}, seq_len=n))
        path = h.write(f"{self.tmp.name}/r.json", h.document(rows))
        f, = an.exponent_fits(load_dataset([path]).rows)
        self.assertLess(f.slope_all, 0.8)
        self.assertGreater(f.slope_upper, 0.8)


class Selection(unittest.TestCase):
    def test_choose_params_group_prefers_most_measured(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        rows = [h.row("lisa_base", time_ms=1.0, peak_bytes=1.0, seq_len=n,
                      params={"codebooks": 8, "codewords": 16}) for n in (128, 256, 512)]
        rows += [h.row("lisa_base", time_ms=1.0, peak_bytes=1.0, seq_len=256,
                       params={"codebooks": b, "codewords": 16}) for b in (1, 2)]
        path = h.write(f"{tmp.name}/r.json", h.document(rows))
        params, g = an.choose_params_group(load_dataset([path]).rows)
        self.assertEqual(params, (("codebooks", 8), ("codewords", 16)))
        self.assertEqual(sorted(r.seq_len for r in g), [128, 256, 512])


if __name__ == "__main__":
    unittest.main()
