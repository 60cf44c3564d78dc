"""The PyTorch peers end to end (python3 -m peers, as ./run_all.sh peers runs it): on the
smoke preset's points every eager, LISA-ops and linear row agrees with the tool's float64
reference at float32 rounding, SDPA rows say why they are skipped on torch < 2.0, rows carry
the attnbench schema's fields, and torch_vanilla_eager's measured peak grows ~N^2.
Skipped (reported as such by CTest) where this python3 cannot import torch; the missing-torch
message is checked everywhere.
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
try:
    import torch
except Exception:  # not installed, or broken
    torch = None
NO_TORCH = "peers: PyTorch is not importable by this python3 (./run_all.sh peers installs it)"
FAST = ["--warmup", "1", "--min-reps", "3", "--max-reps", "5", "--min-time", "0"]
FP32_AGREEMENT = 1e-4


def run_peers(args, env_extra=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = ":".join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "peers", *args, "--quiet"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)


def run_to_file(args):
    out = Path(tempfile.mkdtemp(prefix="attnbench-peers-test-")) / "peers.json"
    done = run_peers([*args, "--out", str(out)])
    if done.returncode != 0:
        raise AssertionError(f"peers failed ({done.returncode}): {done.stderr.strip()}")
    return json.loads(out.read_text())


def torch_older_than_2():
    return int(torch.__version__.split(".")[0]) < 2


class MissingTorch(unittest.TestCase):
    def test_one_line_and_exit_2(self):
        with tempfile.TemporaryDirectory() as fake:
            # a torch that fails to import, ahead of any real one on the path
            Path(fake, "torch.py").write_text("raise ImportError('No module named torch')\n")
            done = run_peers(["smoke"], {"PYTHONPATH": f"{fake}:{ROOT}"})
        self.assertEqual(done.returncode, 2, done.stderr)
        lines = done.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, done.stderr)
        self.assertIn("peers: error: PyTorch is not importable", lines[0])


@unittest.skipIf(torch is None, NO_TORCH)
class SmokeRows(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.doc = run_to_file(["smoke", "--device", "cpu", *FAST])
        cls.rows = cls.doc["rows"]

    def rows_of(self, peer):
        return [r for r in self.rows if r["kernel"] == peer]

    def test_every_peer_has_rows_at_the_smoke_points(self):
        for peer in ("torch_vanilla_eager", "torch_sdpa", "torch_lisa_ops", "torch_linear_elu"):
            rows = self.rows_of(peer)
            # smoke: N in {64, 256}, causal and bidirectional
            points = {(r["axes"]["seq_len"], r["axes"]["causal"]) for r in rows}
            self.assertEqual(points, {(64, True), (64, False), (256, True), (256, False)}, peer)

    def test_accuracy_against_the_float64_reference(self):
        for peer in ("torch_vanilla_eager", "torch_lisa_ops", "torch_linear_elu"):
            for r in self.rows_of(peer):
                with self.subTest(peer=peer, axes=r["axes"], peer_of=r["peer_of"]):
                    self.assertEqual(r["status"], "ok", r["reason"])
                    self.assertGreater(r["correctness_rows"], 0)
                    self.assertLess(r["correctness_rel_l2"], FP32_AGREEMENT)

    def test_lisa_ops_cover_hard_and_soft_codes(self):
        kernels = {k for r in self.rows_of("torch_lisa_ops") for k in r["peer_of"]}
        self.assertEqual(kernels, {"lisa_base", "lisa_mini", "lisa_soft"})

    def test_sdpa_rows(self):
        rows = self.rows_of("torch_sdpa")
        if torch_older_than_2():
            from peers.impls import torch_version
            version = torch_version()
            for r in rows:
                self.assertEqual(r["status"], "skipped")
                self.assertEqual(r["reason"], f"torch {version} has no "
                                              "scaled_dot_product_attention (needs >= 2.0)")
        else:
            math_rows = [r for r in rows if r["axes"].get("sdpa_backend") == "math"]
            self.assertTrue(math_rows)
            for r in math_rows:
                self.assertEqual(r["status"], "ok", r["reason"])
                self.assertLess(r["correctness_rel_l2"], FP32_AGREEMENT)

    def test_schema(self):
        self.assertEqual(self.doc["schema_version"], 1)
        self.assertEqual(self.doc["preset"], "smoke")
        env = self.doc["environment"]
        for key in ("host", "cpu_model", "torch_version", "torch_threads", "device_name", "date",
                    "command_line", "git_commit"):
            self.assertIn(key, env)
        self.assertEqual(env["torch_version"], torch.__version__)
        for r in self.rows:
            with self.subTest(kernel=r["kernel"], axes=r["axes"]):
                self.assertEqual(r["backend"], "torch-cpu")
                self.assertIn(r["family"], ("vanilla", "lisa", "linear"))
                for a in ("batch", "heads", "seq_len", "head_dim", "causal"):
                    self.assertIn(a, r["axes"])
                self.assertEqual(r["axes"]["precision"], "fp32")
                self.assertTrue(r["repro"].split()[-2:] and "--axis" in r["repro"])
                if r["status"] != "ok":
                    self.assertTrue(r["reason"])
                    continue
                t = r["time_ms"]
                self.assertEqual(t["count"], len(t["samples"]))
                self.assertLessEqual(t["min"], t["median"])
                self.assertLessEqual(t["median"], t["max"])
                self.assertEqual(r["measured_peak_source"], "heap")
                self.assertEqual(r["peak_bytes"], r["measured_peak_bytes"])
                # inputs and outputs are alive at the peak (the outputs' declared bytes at least)
                self.assertGreaterEqual(r["peak_bytes"], r["outputs_bytes"])
                self.assertGreater(r["flops"], 0)
                self.assertGreater(r["gflops_per_s"], 0)
        lisa = self.rows_of("torch_lisa_ops")[0]
        self.assertIn("codewords", lisa["axes"])
        self.assertIn("codebooks", lisa["axes"])


@unittest.skipIf(torch is None, NO_TORCH)
class EagerMemoryGrowsQuadratically(unittest.TestCase):
    def test_peak_of_eager_vanilla(self):
        doc = run_to_file(["smoke", "--peers", "torch_vanilla_eager", "--kernels",
                           "vanilla_materialized", "--axis", "seq_len=512,1024,2048", "--axis",
                           "heads=1", "--axis", "causal=true", "--device", "cpu", *FAST])
        peak = {r["axes"]["seq_len"]: r["peak_bytes"] for r in doc["rows"]}
        self.assertEqual(set(peak), {512, 1024, 2048})
        # ~N^2: constant overheads (BLAS buffers, the inputs) weigh less as N grows
        self.assertGreater(peak[1024] / peak[512], 3.0)
        self.assertGreater(peak[2048] / peak[1024], 3.5)
        for n in (512, 1024):
            self.assertLess(peak[2 * n] / peak[n], 4.5)
        # at least two N x N float32 tensors are alive at the peak
        self.assertGreaterEqual(peak[2048], 2 * 4 * 2048 * 2048)


if __name__ == "__main__":
    unittest.main()
