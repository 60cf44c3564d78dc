"""The claims table: verdicts for inputs whose answer is known in advance, one row per
(claim, LISA side, baseline), ratios computed from the raw fields."""

import tempfile
import unittest

import helpers as h

import analysis as an
import claims as cl
from results_io import load_dataset

DATA = h.PLOTS / "tests" / "data"
SAMPLES = sorted(str(p) for p in DATA.glob("sample_*.json"))
GPU = "cuda: NVIDIA A10G (g)"
NS = (4096, 16384, 65536)
PAPER = dict(precision="fp32", seed=1234)
W16 = dict(PAPER, codebooks=8, codewords=16)


def at(n, backend="cuda"):
    return dict(backend=backend, batch=1, heads=1, seq_len=n, head_dim=1024, causal=True)


def scaled(n):
    return n / 65536


def tool_rows():
    """attnbench rows; at N = 65536: lisa_mini 1.0 ms and 0.3 GB; vanilla_eager 100 ms and
    39.7 GB; vanilla_materialized skipped for memory (18.3 GB); vanilla_flash 60.5 ms, 1.1 GB.
    A lisa_base W=64 row at 16384 is the sweep's fastest LISA against eager (125x)."""
    rows, van = [], {"family": "vanilla"}
    for n in NS:
        s = scaled(n)
        rows.append(h.row("lisa_mini", time_ms=0.2 + 0.8 * s, peak_bytes=0.3e9 * s, approx=0.3,
                          params=W16, extra={"family": "lisa"}, **at(n)))
        rows.append(h.row("vanilla_eager", time_ms=100 * s * s, peak_bytes=39.7e9 * s * s,
                          extra=van, **at(n)))
        rows.append(h.row("vanilla_flash", time_ms=0.5 + 60 * s * s, peak_bytes=1.1e9 * s,
                          extra=van, **at(n)))
        if n < 65536:
            rows.append(h.row("vanilla_materialized", time_ms=30 * s * s, peak_bytes=18.3e9 * s * s,
                              extra=van, **at(n)))
        else:
            rows.append(h.row("vanilla_materialized", status="skipped",
                              reason="needs 18.3 GB, limit 16.0 GB", peak_bytes=18.3e9, extra=van,
                              **at(n)))
    rows.append(h.row("lisa_base", time_ms=0.05, peak_bytes=0.1e9, approx=0.3,
                      params=dict(W16, codewords=64), extra={"family": "lisa"}, **at(16384)))
    return rows


def peers_rows():
    """torch-cuda rows on the same GPU: eager skipped at 65536 (no byte figure), SDPA flash
    40 ms there (the fastest exact vanilla), SDPA math 120 ms, the authors' LISA ops 10.5 ms
    and 2.5 GB."""
    rows, of = [], ("vanilla_materialized", "vanilla_eager", "vanilla_flash")
    for n in NS:
        s, pt = scaled(n), at(n, "torch-cuda")
        if n < 65536:
            rows.append(h.peer("torch_vanilla_eager", of, "vanilla", time_ms=110 * s * s,
                               peak_bytes=39.8e9 * s * s, params=PAPER, **pt))
        else:
            rows.append(h.peer("torch_vanilla_eager", of, "vanilla", status="skipped",
                               reason="estimated 41.0 GB > limit 16.0 GB", params=PAPER, **pt))
        for backend, t, peak in (("flash", 40 * s * s, 1.2e9 * s), ("math", 120 * s * s, 40e9 * s * s)):
            rows.append(h.peer("torch_sdpa", of, "vanilla", time_ms=t, peak_bytes=peak,
                               params=dict(PAPER, sdpa_backend=backend), **pt))
        rows.append(h.peer("torch_lisa_ops", ("lisa_base", "lisa_mini"), "lisa",
                           time_ms=0.5 + 10 * s, peak_bytes=2.5e9 * s,
                           params=dict(W16, decay=0, projections=0), **pt))
    return rows


class ClaimsCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, rows, name="r.json", env=None, vanilla="vanilla_materialized", spoil=False):
        doc = h.document(rows, "paper", env or h.environment(host="g", gpu=h.gpu()), vanilla)
        if spoil:  # vs_vanilla must not be read by the ratio claims
            for r in doc["rows"]:
                r["vs_vanilla"] = {"speedup": 999.0, "memory_ratio": 999.0} if r["status"] == "ok" else None
        return h.write(f"{self.tmp.name}/{name}", doc)

    def claims_for(self, *paths):
        return cl.claims_table(load_dataset(list(paths)))

    def only(self, claims, prefix):
        got = [c for c in claims if c.claim.startswith(prefix)]
        self.assertEqual(len(got), 1, [c.claim for c in claims])
        return got[0]


def table(claims):
    """{(claim word, LISA side, baseline): RatioClaim}, names without the winner."""
    return {("time" if "faster" in c.claim else "memory", c.lisa_side.split(" (")[0],
             c.baseline.split(" (")[0]): c for c in claims if isinstance(c, cl.RatioClaim)}


class EveryBaseline(ClaimsCase):
    """Both LISA sides against every baseline at the paper point."""

    def setUp(self):
        super().setUp()
        self.claims = self.claims_for(self.write(tool_rows(), spoil=True),
                                      self.write(peers_rows(), "p.json", h.peers_environment(
                                          h.environment(host="g", gpu=h.gpu())), "torch_vanilla_eager"))
        self.t = table(self.claims)

    def check(self, key, verdict, ratio, *fragments):
        c = self.t[key]
        self.assertEqual(c.verdict, verdict, (key, c.reason))
        if ratio is None:
            self.assertIsNone(c.ratio, key)
        else:
            self.assertAlmostEqual(c.ratio, ratio, places=1, msg=key)
        for f in fragments:
            self.assertIn(f, c.measured + " | " + c.reason + " | " + c.baseline, key)

    def test_one_row_per_claim_side_and_baseline(self):
        self.assertEqual(len(self.t), 2 * 2 * 4)
        self.assertTrue(all(c.device == GPU for c in self.t.values()))

    def test_time_attnbench_lisa(self):
        side = "attnbench lisa*"
        self.check(("time", side, "vanilla_eager"), an.REPRODUCED, 100.0, "100.0x: 100 ms / 1 ms")
        self.check(("time", side, "torch_vanilla_eager"), an.NOT_MEASURABLE, None,
                   "torch_vanilla_eager skipped at N=65536: estimated 41.0 GB > limit 16.0 GB")
        self.check(("time", side, "vanilla_materialized"), an.NOT_MEASURABLE, None,
                   "vanilla_materialized skipped at N=65536: needs 18.3 GB, limit 16.0 GB")
        self.check(("time", side, "fastest exact vanilla"), an.NOT_REPRODUCED, 40.0,
                   "torch_sdpa [sdpa_backend=flash]", "below 57x")
        self.assertEqual(self.t[("time", side, "vanilla_eager")].lisa_side, "attnbench lisa* (lisa_mini)")

    def test_time_torch_lisa_ops(self):
        side = "torch_lisa_ops"
        self.check(("time", side, "vanilla_eager"), an.NOT_REPRODUCED, 100 / 10.5)
        self.check(("time", side, "torch_vanilla_eager"), an.NOT_MEASURABLE, None, "estimated 41.0 GB")
        self.check(("time", side, "vanilla_materialized"), an.NOT_MEASURABLE, None, "needs 18.3 GB")
        self.check(("time", side, "fastest exact vanilla"), an.NOT_REPRODUCED, 40 / 10.5,
                   "torch_sdpa [sdpa_backend=flash]")

    def test_memory_attnbench_lisa(self):
        side = "attnbench lisa*"
        self.check(("memory", side, "vanilla_eager"), an.REPRODUCED, 39.7 / 0.3, "39.7 GB / 300.0 MB")
        self.check(("memory", side, "torch_vanilla_eager"), an.NOT_MEASURABLE, None, "estimated 41.0 GB")
        self.check(("memory", side, "vanilla_materialized"), an.NOT_MEASURABLE, None,
                   "needs 18.3 GB", "from vanilla_materialized's exact byte count (18.3 GB) the "
                   "ratio would be 61.0x (computed, not measured)")
        self.check(("memory", side, "smallest exact vanilla"), an.NOT_REPRODUCED, 1.1 / 0.3,
                   "smallest exact vanilla (vanilla_flash)")

    def test_memory_torch_lisa_ops(self):
        side = "torch_lisa_ops"
        self.check(("memory", side, "vanilla_eager"), an.NOT_REPRODUCED, 39.7 / 2.5, "below 78x")
        self.check(("memory", side, "torch_vanilla_eager"), an.NOT_MEASURABLE, None, "estimated 41.0 GB")
        self.check(("memory", side, "vanilla_materialized"), an.NOT_MEASURABLE, None, "7.3x (computed")
        self.check(("memory", side, "smallest exact vanilla"), an.NOT_REPRODUCED, 1.1 / 2.5, "vanilla_flash")

    def test_crossovers(self):
        t = self.t
        # lisa_mini beats eager at 4096 already; the fastest exact vanilla only from 16384.
        self.assertEqual(t[("time", "attnbench lisa*", "vanilla_eager")].crossover_n, 4096)
        self.assertIn("below the smallest N measured (4096)",
                      t[("time", "attnbench lisa*", "vanilla_eager")].crossover)
        fastest = t[("time", "attnbench lisa*", "fastest exact vanilla")]
        self.assertEqual(fastest.crossover_n, 16384)
        self.assertTrue(fastest.crossover.startswith("N=16384; N 4096..65536, 3 points"), fastest.crossover)
        # vanilla_materialized ran up to 16384 only: the crossover reads those points.
        mat = t[("time", "attnbench lisa*", "vanilla_materialized")]
        self.assertTrue(mat.crossover.startswith("N=16384; N 4096..16384, 2 points"), mat.crossover)
        smallest = t[("memory", "torch_lisa_ops", "smallest exact vanilla")]
        self.assertIsNone(smallest.crossover_n)
        self.assertTrue(smallest.crossover.startswith("not reached: not smaller at N=65536"))

    def test_sweep_max_names_n_and_w(self):
        c = self.t[("time", "attnbench lisa*", "vanilla_eager")]
        self.assertTrue(c.sweep_max.startswith("125.0x at N=16384, W=64"), c.sweep_max)
        self.assertIn("lisa_base vs vanilla_eager; reaches 57x", c.sweep_max)


class PaperPoint(ClaimsCase):
    def test_other_precision_is_not_the_fastest_vanilla(self):
        rows = tool_rows() + [h.row("vanilla_flash", time_ms=0.1, peak_bytes=1e6,
                                    params={"precision": "bf16"}, extra={"family": "vanilla"},
                                    **at(65536))]
        c = table(self.claims_for(self.write(rows)))[("time", "attnbench lisa*", "fastest exact vanilla")]
        self.assertEqual(c.baseline, "fastest exact vanilla (vanilla_flash)")
        self.assertAlmostEqual(c.ratio, 60.5, places=1)
        self.assertEqual(c.verdict, an.REPRODUCED)

    def test_lisa_side_not_run_quotes_its_reason(self):
        rows = [r for r in tool_rows() if not (r["kernel"] == "lisa_mini" and r["axes"]["seq_len"] == 65536)]
        rows.append(h.row("lisa_mini", status="error", reason="output has NaN", params=W16,
                          extra={"family": "lisa"}, **at(65536)))
        c = table(self.claims_for(self.write(rows)))[("time", "attnbench lisa*", "vanilla_eager")]
        self.assertEqual(c.verdict, an.NOT_MEASURABLE)
        self.assertIn("lisa_mini error at N=65536: output has NaN", c.reason)

    def test_paper_point_never_measured(self):
        rows = [r for r in tool_rows() if r["axes"]["seq_len"] < 65536]
        c = table(self.claims_for(self.write(rows)))[("memory", "attnbench lisa*", "vanilla_eager")]
        self.assertEqual(c.verdict, an.NOT_MEASURABLE)
        self.assertIn("attnbench lisa* not run at the paper point", c.reason)
        self.assertIn("largest N it ran at the paper setting: 16384", c.reason)

    def test_device_without_peers_has_no_torch_rows(self):
        t = table(self.claims_for(self.write(tool_rows())))
        self.assertEqual(sorted({k[1] for k in t}), ["attnbench lisa*"])
        self.assertEqual(sorted({k[2] for k in t}), ["fastest exact vanilla", "smallest exact vanilla",
                                                     "vanilla_eager", "vanilla_materialized"])

    def test_other_setting_is_named(self):
        rows = []
        for n, s in ((512, 0.5), (2048, 70.0)):
            pt = dict(batch=2, heads=2, seq_len=n, head_dim=64, causal=True)
            rows.append(h.row("vanilla_eager", time_ms=1.0, peak_bytes=1e8, **pt))
            rows.append(h.row("lisa_base", time_ms=1.0 / s, peak_bytes=1e7, approx=0.3,
                              params={"codebooks": 8, "codewords": 16}, **pt))
        c = table(self.claims_for(self.write(rows, env=h.environment())))[
            ("time", "attnbench lisa*", "vanilla_eager")]
        self.assertEqual(c.verdict, an.NOT_MEASURABLE)
        self.assertIn("70.0x at N=2048, W=16 (batch 2, heads 2, head_dim 64, causal", c.sweep_max)
        self.assertEqual(c.crossover_n, 2048)


class Crossover(unittest.TestCase):
    def test_from_the_last_loss_on(self):
        self.assertEqual(cl.crossover([(8192, 5.0), (512, 0.5), (1024, 1.5), (2048, 0.9), (4096, 2.0)]),
                         (4096, "at"))

    def test_below_the_smallest(self):
        self.assertEqual(cl.crossover([(512, 1.2), (1024, 3.0)]), (512, "below"))

    def test_not_reached_and_parity(self):
        self.assertEqual(cl.crossover([(512, 2.0), (1024, 1.0)]), (None, "not reached"))
        self.assertEqual(cl.crossover([(512, 1.0), (1024, 2.0)]), (1024, "at"))  # parity is no win
        self.assertEqual(cl.crossover([]), (None, "none"))


class SampleClaims(unittest.TestCase):
    """The committed sample files (make_sample.py): attnbench and peers files on one GPU."""

    @classmethod
    def setUpClass(cls):
        cls.claims = cl.claims_table(load_dataset(SAMPLES))
        cls.cpu = "cpu: Intel Xeon Platinum 8375C CPU @ 2.90GHz (devbox)"
        cls.gpu = "cuda: NVIDIA A10G (gpubox)"

    def test_gpu_fastest_exact_vanilla_is_sdpa_flash(self):
        t = table(c for c in self.claims if c.device == self.gpu)
        c = t[("time", "attnbench lisa*", "fastest exact vanilla")]
        self.assertEqual(c.verdict, an.NOT_REPRODUCED)
        self.assertTrue(c.measured.startswith("34.1x: 34.4 ms / 1.01 ms"), c.measured)
        self.assertEqual(c.crossover_n, 4096)
        eager = t[("time", "attnbench lisa*", "vanilla_eager")]
        self.assertIn("vanilla_eager skipped at N=65536: needs 39.7 GB, limit 21.6 GB", eager.reason)
        self.assertIn("137.2x at N=32768, W=16", eager.sweep_max)

    def test_cpu_has_no_paper_setting(self):
        t = table(c for c in self.claims if c.device == self.cpu)
        self.assertEqual(len(t), 2 * 1 * 3)  # no peers, no vanilla_eager rows: 3 baselines
        c = t[("time", "attnbench lisa*", "vanilla_materialized")]
        self.assertEqual(c.verdict, an.NOT_MEASURABLE)
        # The B = 1 toy row (173x) must not count when causal B = 8 rows exist.
        self.assertTrue(c.sweep_max.startswith("31.8x at N=2048, W=32"), c.sweep_max)
        self.assertIn("(lisa_mini vs vanilla_materialized", c.sweep_max)

    def test_reformer(self):
        v = {c.device: c for c in self.claims if c.claim.startswith("Reformer")}
        self.assertEqual(v[self.cpu].verdict, an.REPRODUCED)
        self.assertTrue(v[self.cpu].measured.startswith("8.00x slower"), v[self.cpu].measured)
        self.assertEqual(v[self.gpu].verdict, an.NOT_MEASURABLE)
        self.assertIn("no cuda form", v[self.gpu].reason)

    def test_exponents_per_vanilla_kernel(self):
        got = {(c.device, c.measured.split(" ")[0]): c for c in self.claims
               if c.claim.startswith("vanilla time grows")}
        for kernel in ("vanilla_eager", "vanilla_materialized", "vanilla_flash", "torch_vanilla_eager"):
            self.assertEqual(got[(self.gpu, kernel)].verdict, an.REPRODUCED, kernel)
        self.assertEqual(got[(self.cpu, "vanilla_materialized")].verdict, an.REPRODUCED)
        self.assertEqual(got[(self.cpu, "-")].verdict, an.NOT_MEASURABLE)  # no vanilla_eager rows
        lisa = {c.device: c for c in self.claims if c.claim.startswith("LISA time grows")}
        self.assertEqual(lisa[self.gpu].verdict, an.REPRODUCED)
        self.assertIn("head_dim 1024", lisa[self.gpu].setting)


class StoredH100Run(unittest.TestCase):
    """results/reference/h100-paper-cuda.json, a real version 1 paper run (no vanilla_eager):
    lisa_mini at the paper point, 0.986 ms and 321.7 MB, against vanilla_materialized."""

    @classmethod
    def setUpClass(cls):
        path = h.PLOTS.parent / "results" / "reference" / "h100-paper-cuda.json"
        cls.t = table(cl.claims_table(load_dataset([str(path)])))

    def test_time_reproduced_against_the_single_buffer(self):
        c = self.t[("time", "attnbench lisa*", "vanilla_materialized")]
        self.assertEqual((c.verdict, c.measured), (an.REPRODUCED, "358.8x: 354 ms / 0.986 ms"))
        self.assertEqual(c.lisa_side, "attnbench lisa* (lisa_mini)")

    def test_memory_below_78x_against_the_single_buffer(self):
        c = self.t[("memory", "attnbench lisa*", "vanilla_materialized")]
        self.assertEqual((c.verdict, c.measured), (an.NOT_REPRODUCED, "56.9x: 18.3 GB / 321.7 MB"))
        # vanilla_flash is smaller up to 2048 and did not run at 32768 and 65536.
        self.assertEqual(self.t[("memory", "attnbench lisa*", "smallest exact vanilla")].crossover_n, 4096)

    def test_no_eager_rows(self):
        c = self.t[("memory", "attnbench lisa*", "vanilla_eager")]
        self.assertEqual((c.verdict, c.reason), (an.NOT_MEASURABLE, "no vanilla_eager rows on this device"))


class ReformerVerdicts(ClaimsCase):
    def rows(self, ratio):
        pt = dict(batch=1, heads=2, seq_len=128, head_dim=64, causal=True)
        return [h.row("vanilla_materialized", time_ms=0.1, peak_bytes=1e6, **pt),
                h.row("reformer_lsh", time_ms=0.1 * ratio, peak_bytes=1e6, approx=0.4,
                      params={"n_hashes": 8}, **pt)]

    def test_slower_enough(self):
        c = self.only(self.claims_for(self.write(self.rows(7.6))), "Reformer")
        self.assertEqual(c.verdict, an.REPRODUCED)

    def test_not_slow_enough(self):
        c = self.only(self.claims_for(self.write(self.rows(5.0))), "Reformer")
        self.assertEqual(c.verdict, an.NOT_REPRODUCED)
        self.assertTrue(c.measured.startswith("5.00x slower"), c.measured)

    def test_absent(self):
        c = self.only(self.claims_for(self.write(self.rows(5.0)[:1])), "Reformer")
        self.assertEqual(c.verdict, an.NOT_MEASURABLE)


class ExponentVerdicts(ClaimsCase):
    def rows(self, lisa_p, van_p, eager_p=2.0, ns=(1024, 2048, 4096, 8192)):
        rows = []
        for n in ns:
            pt = dict(backend="cuda", batch=1, heads=1, seq_len=n, head_dim=1024, causal=True)
            rows.append(h.row("vanilla_materialized", time_ms=1e-6 * n ** van_p, peak_bytes=1e9, **pt))
            rows.append(h.row("vanilla_eager", time_ms=3e-6 * n ** eager_p, peak_bytes=1e9, **pt))
            rows.append(h.row("lisa_base", time_ms=1e-4 * n ** lisa_p, peak_bytes=1e7, approx=0.3,
                              params={"codebooks": 8, "codewords": 16}, **pt))
        return rows

    def vanilla(self, claims, kernel):
        return self.only(claims, f"{an.VANILLA_EXPONENT_TEXT}: {kernel}")

    def test_in_range(self):
        claims = self.claims_for(self.write(self.rows(1.0, 2.0)))
        self.assertEqual(self.only(claims, "LISA time grows").verdict, an.REPRODUCED)
        self.assertEqual(self.vanilla(claims, "vanilla_materialized").verdict, an.REPRODUCED)
        self.assertEqual(self.vanilla(claims, "vanilla_eager").verdict, an.REPRODUCED)

    def test_each_vanilla_fitted_on_its_own(self):
        claims = self.claims_for(self.write(self.rows(1.4, 1.5, eager_p=2.0)))
        self.assertEqual(self.only(claims, "LISA time grows").verdict, an.NOT_REPRODUCED)
        self.assertEqual(self.vanilla(claims, "vanilla_materialized").verdict, an.NOT_REPRODUCED)
        self.assertEqual(self.vanilla(claims, "vanilla_eager").verdict, an.REPRODUCED)
        self.assertEqual(self.vanilla(claims, "vanilla_eager").measured, "vanilla_eager 2.00")
        self.assertIn("1.40", self.only(claims, "LISA time grows").measured)

    def test_too_few_points(self):
        claims = self.claims_for(self.write(self.rows(1.0, 2.0, ns=(1024, 2048))))
        self.assertEqual(self.only(claims, "LISA time grows").verdict, an.NOT_MEASURABLE)
        self.assertEqual(self.only(claims, "vanilla time grows").verdict, an.NOT_MEASURABLE)


if __name__ == "__main__":
    unittest.main()
