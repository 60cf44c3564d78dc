"""Noisy rows (the harness's `noisy` flag): read from the results file, marked in the report's
preset tables with a footnote, and named in the claims whose times come from them."""

import pathlib
import tempfile
import unittest

import helpers as h

import analysis as an
import claims as cl
import report
from results_io import load_dataset

NS = (4096, 16384, 65536)
W16 = dict(precision="fp32", seed=1234, codebooks=8, codewords=16)
NOISE = {"noisy": True, "warnings": ["noisy: rsd 23% over 5 samples, load 3.1 on 2 cores; "
                                     "re-measured 2 times, the quietest kept"]}


def at(n):
    return dict(backend="cpu", batch=1, heads=1, seq_len=n, head_dim=1024, causal=True)


def rows(noisy_lisa_at=()):
    """lisa_mini (noisy at the N given) and vanilla_eager at three N, LISA 1 ms at 65536."""
    out = []
    for n in NS:
        s = n / 65536
        lisa_extra = dict({"family": "lisa"}, **(NOISE if n in noisy_lisa_at else {}))
        out.append(h.row("lisa_mini", time_ms=s, peak_bytes=0.3e9 * s, approx=0.3, params=W16,
                         extra=lisa_extra, **at(n)))
        out.append(h.row("vanilla_eager", time_ms=100 * s * s, peak_bytes=39.7e9 * s * s,
                         extra={"family": "vanilla"}, **at(n)))
    return out


class NoisyRows(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = pathlib.Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def dataset(self, noisy_lisa_at):
        doc = h.document(rows(noisy_lisa_at), "paper", vanilla="vanilla_eager")
        return load_dataset([h.write(self.dir / "r.json", doc)])

    def report_text(self, ds):
        out = self.dir / "out"
        out.mkdir(exist_ok=True)
        path, _ = report.write_report(ds, [], [], out, out / "figures", ["r.json"])
        return path.read_text(encoding="utf-8")

    def test_the_flag_is_read(self):
        ds = self.dataset({65536})
        noisy = [r for r in ds.rows if r.noisy]
        self.assertEqual([(r.kernel, r.seq_len) for r in noisy], [("lisa_mini", 65536)])
        self.assertTrue(noisy[0].noise_warning.startswith("noisy: rsd 23%"))

    def test_preset_table_marks_the_row_and_explains_the_mark(self):
        text = self.report_text(self.dataset({65536}))
        self.assertIn(f"| {an.NOISY_MARK}1 |", text)  # lisa_mini's 1 ms at N = 65536
        self.assertIn("1 noisy row(s). " + an.NOISY_FOOTNOTE, text)
        self.assertEqual(text.count(f"| {an.NOISY_MARK}"), 1)

    def test_claims_name_the_noisy_row_behind_a_time(self):
        ds = self.dataset({65536})
        claims = cl.claims_table(ds)
        by = {(c.claim.split()[4], c.baseline): c for c in claims if isinstance(c, cl.RatioClaim)}
        time, memory = by[("faster", "vanilla_eager")], by[("more", "vanilla_eager")]
        self.assertIn(f"({an.NOISY_MARK} from noisy rows: lisa_mini)", time.measured)
        self.assertIn(an.NOISY_MARK, time.sweep_max)
        self.assertNotIn(an.NOISY_MARK, memory.measured)  # bytes are exact, not timed
        lisa_exp = [c for c in claims if c.claim == an.LISA_EXPONENT_TEXT][0]
        self.assertIn(f"({an.NOISY_MARK} noisy rows at N=65536)", lisa_exp.measured)
        self.assertIn(an.NOISY_FOOTNOTE, self.report_text(ds))

    def test_quiet_rows_carry_no_mark(self):
        ds = self.dataset(())
        text = self.report_text(ds)
        self.assertNotIn(an.NOISY_FOOTNOTE, text)
        self.assertNotIn(f"| {an.NOISY_MARK}", text)
        self.assertFalse(any(an.NOISY_MARK in c.measured for c in cl.claims_table(ds)))


if __name__ == "__main__":
    unittest.main()
