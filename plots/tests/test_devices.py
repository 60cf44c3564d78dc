"""Several files, one report: a device is a CPU or a GPU, so peers rows (torch-cpu,
torch-cuda) join the attnbench rows of the same host or GPU."""

import tempfile
import unittest

import helpers as h

import claims as cl
from results_io import load_dataset

OF_VANILLA = ("vanilla_materialized", "vanilla_eager", "vanilla_flash")
CPU = "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz"


def pt(backend, n=256):
    return dict(backend=backend, batch=1, heads=2, seq_len=n, head_dim=16, causal=True)


class Grouping(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def write(self, name, rows, env, vanilla="vanilla_materialized"):
        return h.write(f"{self.tmp.name}/{name}", h.document(rows, "smoke", env, vanilla))

    def files(self):
        box = h.environment(host="box", cpu=CPU, gpu=h.gpu("NVIDIA H100 80GB HBM3"))
        tool = [h.row("vanilla_materialized", time_ms=1.0, peak_bytes=1e6, **pt(b))
                for b in ("cpu", "cuda")]
        cuda_env = h.peers_environment(dict(box, gpu=None), device="cuda")
        cuda_env["device_name"] = "NVIDIA H100 80GB HBM3"  # the tool saw no GPU; torch names it
        lisa_ops = [h.peer("torch_lisa_ops", of, "lisa", time_ms=t, peak_bytes=2e5,
                           params={"codebooks": 4, "codewords": 16}, **pt("torch-cpu"))
                    for of, t in ((("lisa_base", "lisa_mini"), 0.2), (("lisa_soft",), 0.3))]
        eager = [h.peer("torch_vanilla_eager", OF_VANILLA, "vanilla",
                        time_ms=2.0, peak_bytes=1.2e6, **pt("torch-cpu"))]
        other_host = [h.peer("torch_vanilla_eager", OF_VANILLA, "vanilla",
                             time_ms=2.0, peak_bytes=1.2e6, **pt("torch-cpu"))]
        return [self.write("tool.json", tool, box),
                self.write("cpu-peers.json", eager + lisa_ops, h.peers_environment(box, device="cpu"),
                           "torch_vanilla_eager"),
                self.write("cuda-peers.json", [h.peer("torch_sdpa", OF_VANILLA, "vanilla", time_ms=0.5,
                                                      peak_bytes=5e5, params={"sdpa_backend": "flash"},
                                                      **pt("torch-cuda"))], cuda_env, "torch_vanilla_eager"),
                self.write("elsewhere.json", other_host,
                           h.peers_environment(h.environment(host="other", cpu=CPU), device="cpu"),
                           "torch_vanilla_eager")]

    def test_peers_join_their_device(self):
        ds = load_dataset(self.files())
        labels = [d.label for d in ds.devices]
        self.assertEqual(labels, ["cpu: Intel Xeon Platinum 8375C CPU @ 2.90GHz (box)",
                                  "cuda: NVIDIA H100 80GB HBM3 (box)",
                                  "cpu: Intel Xeon Platinum 8375C CPU @ 2.90GHz (other)"])
        by = {(r.kernel, r.backend): r.device.label for r in ds.rows if r.device.host == "box"}
        self.assertEqual(by[("torch_sdpa", "torch-cuda")], labels[1])
        self.assertEqual(by[("torch_vanilla_eager", "torch-cpu")], labels[0])
        self.assertEqual(by[("vanilla_materialized", "cpu")], labels[0])

    def test_two_functions_of_one_peer_are_both_kept(self):
        ds = load_dataset(self.files())
        ops = sorted(r.method_params for r in ds.rows if r.kernel == "torch_lisa_ops")
        self.assertEqual(len(ops), 2)
        self.assertEqual([dict(p)["peer_of"] for p in ops], ["lisa_base/lisa_mini", "lisa_soft"])
        self.assertEqual(ds.superseded, [])

    def test_claims_use_the_peers_of_the_device(self):
        claims = cl.claims_table(load_dataset(self.files()))
        box = [c for c in claims if isinstance(c, cl.RatioClaim) and c.device.endswith("(box)")
               and c.device.startswith("cpu") and "faster" in c.claim]
        self.assertEqual(sorted({c.baseline.split(" (")[0] for c in box}),
                         ["fastest exact vanilla", "torch_vanilla_eager", "vanilla_eager",
                          "vanilla_materialized"])
        self.assertEqual(sorted({c.lisa_side for c in box}), ["attnbench lisa*", "torch_lisa_ops"])
        gpu = [c for c in claims if isinstance(c, cl.RatioClaim) and c.device.startswith("cuda")]
        # On the GPU only the tool's rows and SDPA: no torch_vanilla_eager or torch_lisa_ops row.
        self.assertEqual(sorted({c.baseline.split(" (")[0] for c in gpu}),
                         ["fastest exact vanilla", "smallest exact vanilla", "vanilla_eager",
                          "vanilla_materialized"])

    def test_torch_lisa_ops_side_is_the_faster_function(self):
        claims = cl.claims_table(load_dataset(self.files()))
        c = [c for c in claims if isinstance(c, cl.RatioClaim) and c.lisa_side == "torch_lisa_ops"
             and c.baseline == "torch_vanilla_eager" and "faster" in c.claim][0]
        self.assertTrue(c.sweep_max.startswith("10.0x at N=256, W=16"), c.sweep_max)
        self.assertIn("torch_lisa_ops [peer of lisa_base/lisa_mini] vs torch_vanilla_eager", c.sweep_max)


if __name__ == "__main__":
    unittest.main()
