"""limits.py: the CPU performance targets, on rows whose verdicts are known in advance."""

import io
import tempfile
import unittest
from contextlib import redirect_stderr

import helpers as h

import limits

CAL = {"sgemm_gflops": 200.0, "sgemm_gflops_one_thread": 100.0, "bandwidth_gbs": 40.0,
       "threads": 2}


def env(cal=CAL):
    e = h.environment()
    e["calibration"] = cal
    return e


def with_pct(r, pct, bound="compute"):
    r["pct_of_peak"] = pct
    r["roofline_bound"] = bound
    return r


def materialized(seq_len, head_dim, heads, prod_gflops, softmax_gbs, scratch_extra=0):
    """A vanilla_materialized row whose products run at prod_gflops and whose softmax moves
    its bytes at softmax_gbs; workspace one N*N buffer plus scratch_extra bytes."""
    r = h.row("vanilla_materialized", batch=1, heads=heads, seq_len=seq_len, head_dim=head_dim,
              causal=False, time_ms=100.0)
    nn = heads * seq_len ** 2 * 4
    r["prepared_bytes"], r["scratch_bytes"] = 0, nn + scratch_extra
    flops = 2.0 * heads * seq_len ** 2 * head_dim
    sbytes = 2.0 * nn
    r["phases"] = [
        {"name": "scores", "ms": flops / (prod_gflops * 1e6), "flops": flops, "bytes": 0, "share": 0.3},
        {"name": "softmax", "ms": sbytes / (softmax_gbs * 1e6), "flops": 0, "bytes": sbytes, "share": 0.4},
        {"name": "output", "ms": flops / (prod_gflops * 1e6), "flops": flops, "bytes": 0, "share": 0.3},
    ]
    return r


def lisa(seq_len, pct, share):
    r = h.row("lisa_base", batch=1, heads=1, seq_len=seq_len, head_dim=1024, causal=True,
              time_ms=10.0, params={"codebooks": 8, "codewords": 16})
    r["phases"] = [{"name": "histogram+weights", "ms": 10 * share, "share": share, "flops": 0, "bytes": 0},
                   {"name": "product", "ms": 10 * (1 - share), "share": 1 - share, "flops": 1e9, "bytes": 0}]
    return with_pct(r, pct)


def largest(kernel, ms, pct=None, causal=True):
    r = h.row(kernel, batch=1, heads=4, seq_len=8192, head_dim=64, causal=causal, time_ms=ms)
    return with_pct(r, pct) if pct is not None else r


def verdicts(all_rows, one_rows=None, cal=CAL):
    doc = {"schema_version": 1, "rows": all_rows, "environment": env(cal)}
    one = None if one_rows is None else {"schema_version": 1, "rows": one_rows, "environment": env()}
    return {t.name: t for t in limits.judge(doc, one)}


class LimitsCase(unittest.TestCase):
    def test_materialized_products_softmax_memory(self):
        good = materialized(4096, 64, 4, prod_gflops=170, softmax_gbs=25)  # 85 %, 62.5 %
        t = verdicts([good])
        self.assertEqual(t["materialized: products"].verdict(), "met")
        self.assertEqual(t["materialized: softmax"].verdict(), "met")
        self.assertEqual(t["materialized: memory"].verdict(), "met")
        self.assertIn("85.0 %", t["materialized: products"].lines[0][2])
        slow = materialized(8192, 64, 4, prod_gflops=150, softmax_gbs=10, scratch_extra=2 << 20)
        t = verdicts([slow])
        self.assertEqual(t["materialized: products"].verdict(), "not met")  # 75 %
        self.assertEqual(t["materialized: softmax"].verdict(), "not met")   # 25 %
        self.assertEqual(t["materialized: memory"].verdict(), "not met")    # 2 MiB extra
        t = verdicts([good, slow])
        self.assertEqual(t["materialized: products"].verdict(), "met at some points")

    def test_materialized_without_phases_is_not_measured(self):
        r = materialized(4096, 64, 4, 170, 25)
        del r["phases"]
        t = verdicts([r])
        self.assertEqual(t["materialized: products"].verdict(), "not measured")
        r = materialized(4096, 64, 4, 170, 25)
        self.assertEqual(verdicts([r], cal={})["materialized: softmax"].verdict(), "not measured")

    def test_flash_needs_rate_and_to_beat_materialized(self):
        m = largest("vanilla_materialized", 50.0, 70)
        fast = largest("vanilla_flash", 40.0, 65)
        self.assertEqual(verdicts([m, fast])["flash"].verdict(), "met")
        slow = largest("vanilla_flash", 60.0, 65)  # rate fine, but slower than materialized
        self.assertEqual(verdicts([m, slow])["flash"].verdict(), "not met")
        low = largest("vanilla_flash", 40.0, 55)
        self.assertEqual(verdicts([m, low])["flash"].verdict(), "not met")
        self.assertEqual(verdicts([fast])["flash"].verdict(), "not measured")

    def test_lisa_rate_and_phase_share(self):
        self.assertEqual(verdicts([lisa(8192, 70, 0.10)])["lisa_base, paper point"].verdict(), "met")
        self.assertEqual(verdicts([lisa(8192, 70, 0.20)])["lisa_base, paper point"].verdict(), "not met")
        self.assertEqual(verdicts([lisa(65536, 55, 0.05)])["lisa_base, paper point"].verdict(), "not met")
        # below the paper's N range: not judged
        self.assertEqual(verdicts([lisa(4096, 10, 0.9)])["lisa_base, paper point"].verdict(), "not measured")

    def test_linear_family_and_scaling(self):
        rows = [largest("linear_elu", 10.0, 55), largest("hydra", 2.0, 45, causal=False)]
        t = verdicts(rows, [largest("linear_elu", 19.0), largest("hydra", 3.0, causal=False)])
        lin = {line[0].split()[0]: line[3] for line in t["linear family"].lines}
        self.assertEqual(lin, {"linear_elu": "met", "hydra": "not met"})
        sc = {line[0].split()[0]: line[3] for line in t["two threads"].lines}
        self.assertEqual(sc, {"linear_elu": "met", "hydra": "not met"})  # 1.9x, 1.5x
        self.assertEqual(verdicts(rows)["two threads"].verdict(), "not measured")

    def test_report_and_bad_input(self):
        with tempfile.TemporaryDirectory() as d:
            doc = h.document([largest("linear_elu", 10.0, 55)], env=env())
            path = h.write(f"{d}/a.json", doc)
            out = f"{d}/LIMITS.md"
            with redirect_stderr(io.StringIO()):
                self.assertEqual(limits.main([path, "--out", out]), 0)
            with open(out) as f:
                text = f.read()
            self.assertIn("| linear family |", text)
            self.assertIn("sgemm 200.0 GFLOP/s", text)
            bad = f"{d}/bad.json"
            with open(bad, "w") as f:
                f.write("{not json")
            err = io.StringIO()
            with redirect_stderr(err):
                self.assertEqual(limits.main([bad]), 2)
            self.assertIn("not JSON", err.getvalue())
            self.assertEqual(len(err.getvalue().strip().splitlines()), 1)


if __name__ == "__main__":
    unittest.main()
