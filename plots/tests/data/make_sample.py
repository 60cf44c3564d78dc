"""Writes the committed sample results files from closed-form values, so every ratio, slope
and verdict in them is known:

  sample_cpu_default.json   cpu, preset default: batch 2, heads 2, head_dim 64, N 128..8192,
                            causal and bidirectional; vanilla_materialized skipped at N=8192
                            (time limit); sinkhorn error at N=2048 and 8192; lsan_twin has no
                            bidirectional form; a kernel unknown to the palette; LISA W and B
                            sweeps at N=2048. reformer_lsh is 8.0x slower than vanilla at N=128.
  sample_cuda_default.json  cuda (NVIDIA A10G), preset default, same points; reformer_lsh
                            skipped (no CUDA form).
  sample_cuda_paper.json    cuda, preset paper: batch 1, heads 1, head_dim 1024, causal, B=8,
                            W in {16, 256}, N 1024..65536; vanilla skipped at N=65536 (memory).
                            LISA's largest speedup (42.6x) and memory ratio (67.2x) are
                            below 57/78 up to N=32768.

Run from the repository root: /usr/bin/python3 plots/tests/data/make_sample.py
"""

import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import helpers as h  # noqa: E402

CPU_NS = (128, 512, 2048, 8192)


def io_bytes(b, hh, n, dh):
    return 4 * b * hh * n * dh


def vanilla_peak(b, hh, n, dh):
    return 4 * io_bytes(b, hh, n, dh) + 2 * 4 * b * hh * n * n  # scores and probabilities


def linear_peak(b, hh, n, dh, extra=0):
    return 4 * io_bytes(b, hh, n, dh) + extra


def lisa_peak(b, hh, n, dh, B, W):
    # codes (int32) + codebooks + output, plus the W x W tables and the running histogram
    return 4 * b * hh * n * B + 4 * hh * B * W * dh + io_bytes(b, hh, n, dh) + 4 * hh * B * W * W + 4 * B * W


def default_rows(backend, scale):
    """scale: time multiplier (cpu 1, cuda 1/20)."""
    b, hh, dh = 2, 2, 64
    rows = []
    for causal in (True, False):
        for n in CPU_NS:
            pt = dict(backend=backend, batch=b, heads=hh, seq_len=n, head_dim=dh, causal=causal)
            van_t = 4e-6 * n * n * scale
            if backend == "cpu" and n == 8192:
                rows.append(h.row("vanilla_materialized", status="skipped",
                                  reason="extrapolated 14.1 s > --max-point-seconds 10",
                                  peak_bytes=vanilla_peak(b, hh, n, dh), **pt))
            else:
                rows.append(h.row("vanilla_materialized", time_ms=van_t,
                                  peak_bytes=vanilla_peak(b, hh, n, dh), **pt))
            rows.append(h.row("vanilla_flash", time_ms=1.5e-6 * n * n * scale,
                              peak_bytes=linear_peak(b, hh, n, dh, 4096), **pt))
            rows.append(h.row("lisa_base", time_ms=(0.02 + 3e-4 * n) * scale, approx=0.35,
                              peak_bytes=lisa_peak(b, hh, n, dh, 8, 16),
                              params={"codebooks": 8, "codewords": 16}, **pt))
            rows.append(h.row("lisa_mini", time_ms=(0.015 + 2.5e-4 * n) * scale, approx=0.42,
                              peak_bytes=lisa_peak(b, hh, n, dh, 8, 32),
                              params={"codebooks": 8, "codewords": 32}, **pt))
            rows.append(h.row("linear_elu", time_ms=(0.01 + 4e-5 * n) * scale, approx=0.6,
                              peak_bytes=linear_peak(b, hh, n, dh, 4 * 64 * 64), **pt))
            rows.append(h.row("performer", time_ms=(0.02 + 1.2e-4 * n) * scale, approx=0.12,
                              peak_bytes=linear_peak(b, hh, n, dh, 4 * n * 266),
                              params={"features": 266}, **pt))
            rows.append(h.row("local_window", time_ms=(0.01 + 6e-5 * n) * scale, approx=0.25,
                              peak_bytes=linear_peak(b, hh, n, dh, 4 * n * 64),
                              params={"window": 64}, **pt))
            if backend == "cpu":
                rows.append(h.row("reformer_lsh", time_ms=8.0 * 4e-6 * 128 * 128 * (n / 128) * 1.3 ** (n.bit_length() - 8),
                                  approx=0.4, peak_bytes=linear_peak(b, hh, n, dh, 8 * 4 * n * 8),
                                  params={"bucket_size": 64, "n_hashes": 8}, **pt))
                if n >= 2048:
                    rows.append(h.row("sinkhorn", status="error",
                                      reason="output has NaN (Sinkhorn iterations diverged)",
                                      params={"block": 64}, **pt))
                else:
                    rows.append(h.row("sinkhorn", time_ms=(0.05 + 1e-4 * n) * scale, approx=0.5,
                                      peak_bytes=linear_peak(b, hh, n, dh, 4 * n * 128),
                                      params={"block": 64}, **pt))
                if causal:
                    rows.append(h.row("lsan_twin", time_ms=(van_t * 1.1 + 0.02), approx=0.3,
                                      peak_bytes=vanilla_peak(b, hh, n, dh) + 4096,
                                      params={"conv_width": 3}, **pt)
                                if n < 8192 else
                                h.row("lsan_twin", status="skipped",
                                      reason="extrapolated 15.5 s > --max-point-seconds 10",
                                      peak_bytes=vanilla_peak(b, hh, n, dh) + 4096,
                                      params={"conv_width": 3}, **pt))
                else:
                    rows.append(h.row("lsan_twin", status="skipped", reason="no bidirectional form",
                                      params={"conv_width": 3}, **pt))
                rows.append(h.row("mystery_attention", time_ms=(0.03 + 5e-5 * n) * scale,
                                  approx=0.05, peak_bytes=linear_peak(b, hh, n, dh, 4 * n * 32),
                                  **pt))
            else:
                rows.append(h.row("reformer_lsh", status="skipped",
                                  reason="no cuda form (CPU only)",
                                  params={"bucket_size": 64, "n_hashes": 8}, **pt))
    # LISA codebook-size (W) and codebook-count (B) sweeps at one point.
    pt = dict(backend=backend, batch=b, heads=hh, seq_len=2048, head_dim=dh, causal=True)
    for W in (32, 64, 128, 256):
        rows.append(h.row("lisa_base", time_ms=(0.02 + 3e-4 * 2048 * (W / 16) ** 0.5) * scale,
                          approx=0.35 * (16 / W) ** 0.3, peak_bytes=lisa_peak(b, hh, 2048, dh, 8, W),
                          params={"codebooks": 8, "codewords": W}, **pt))
    for B in (1, 2, 4, 16):
        rows.append(h.row("lisa_base", time_ms=(0.02 + 3e-4 * 2048 * B / 8) * scale,
                          approx=0.35 * (8 / B) ** 0.3, peak_bytes=lisa_peak(b, hh, 2048, dh, B, 16),
                          params={"codebooks": B, "codewords": 16}, **pt))
    return rows


PAPER_NS = (1024, 4096, 16384, 32768, 65536)


def paper_rows():
    b, hh, dh = 1, 1, 1024
    rows = []
    for n in PAPER_NS:
        pt = dict(backend="cuda", batch=b, heads=hh, seq_len=n, head_dim=dh, causal=True)
        if n == 65536:
            rows.append(h.row("vanilla_materialized", status="skipped",
                              reason="needs 35.4 GB, limit 21.6 GB",
                              peak_bytes=vanilla_peak(b, hh, n, dh), **pt))
        else:
            rows.append(h.row("vanilla_materialized", time_ms=2.2e-8 * n * n,
                              peak_bytes=vanilla_peak(b, hh, n, dh), **pt))
        for W in (16, 256):
            rows.append(h.row("lisa_base", time_ms=0.03 + 1.6e-5 * n * (W / 16) ** 0.25,
                              approx=0.3, peak_bytes=lisa_peak(b, hh, n, dh, 8, W),
                              params={"codebooks": 8, "codewords": W}, **pt))
            rows.append(h.row("lisa_soft", time_ms=0.05 + 2.4e-5 * n * (W / 16) ** 0.5,
                              approx=0.25, peak_bytes=lisa_peak(b, hh, n, dh, 8, W) + 4 * n * 8 * W,
                              params={"codebooks": 8, "codewords": W}, **pt))
    return rows


def dump(path, doc):
    """One row per line: small diffs, readable."""
    head = {k: v for k, v in doc.items() if k != "rows"}
    text = json.dumps(head, indent=1)[:-2]
    text += ',\n "rows": [\n' + ",\n".join("  " + json.dumps(r) for r in doc["rows"]) + "\n ]\n}\n"
    json.loads(text)
    pathlib.Path(path).write_text(text, encoding="utf-8")


def main():
    cpu_env = h.environment(host="devbox", date="2025-06-01T10:00:00Z")
    cuda_env = h.environment(host="gpubox", cpu="AMD EPYC 7R32", gpu=h.gpu(),
                             date="2025-06-02T09:00:00Z")
    paper_env = dict(cuda_env, date="2025-06-02T11:00:00Z")
    dump(HERE / "sample_cpu_default.json", h.document(default_rows("cpu", 1.0), "default", cpu_env))
    dump(HERE / "sample_cuda_default.json", h.document(default_rows("cuda", 0.05), "default", cuda_env))
    dump(HERE / "sample_cuda_paper.json", h.document(paper_rows(), "paper", paper_env))


if __name__ == "__main__":
    main()
