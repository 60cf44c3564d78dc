"""Writes the committed sample results files from closed-form values, so every ratio, slope
and verdict in them is known:

  sample_cpu_default.json   cpu, preset default: batch 2, heads 2, head_dim 64, N 128..8192,
                            causal and bidirectional; vanilla_materialized skipped at N=8192
                            (time limit); sinkhorn error at N=2048 and 8192; lsan_twin has no
                            bidirectional form; a kernel unknown to the palette; LISA W and B
                            sweeps at N=2048. reformer_lsh is 8.0x slower than vanilla at N=128.
  sample_cuda_default.json  cuda (NVIDIA A10G), preset default, same points; reformer_lsh
                            skipped (no CUDA form).
                            Plus bf16 rows of vanilla_materialized, vanilla_flash and
                            lisa_base (W=16): two precisions in one figure.
  sample_cuda_paper.json    cuda, preset paper: batch 1, heads 1, head_dim 1024, causal, B=8,
                            fp32, N 1024..65536; lisa_base and lisa_soft at W in {16, 256},
                            lisa_mini at 16; vanilla_materialized and vanilla_eager skipped at
                            N=65536 (memory, with their exact bytes), vanilla_flash runs.
  sample_cuda_paper_peers.json  the PyTorch peers on the same GPU (torch-cuda): eager and
                            SDPA math skipped at 65536, SDPA flash (the fastest exact vanilla
                            there), torch_lisa_ops for the hard codes and for lisa_soft.
  Each row's memory fields are exact (inputs + outputs + prepared + scratch = peak); a row
  refused by validate (no bidirectional or cuda form) has zeros, as the tool writes it. The
  peers file's rows that did not run also have peak_bytes 0: results/schema.json requires an
  integer there. Every file validates against results/schema.json.

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
                                      peak_bytes=linear_peak(b, hh, n, dh, 4 * n * 128),
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
PAPER_AXES = {"precision": "fp32", "seed": 1234}
GPU_LIMIT = "limit 21.6 GB"


def vanilla_buffers(n, dh, scratch):
    io = io_bytes(1, 1, n, dh)
    return h.buffers(3 * io, io, 0, scratch)


def lisa_buffers(n, dh, B, W, soft=False):
    """codes (soft: probabilities) and codebooks in; the W x W tables prepared; the
    histogram as scratch (lisa_peak's terms, one by one)."""
    assignments = 4 * n * B * (W if soft else 1)
    return h.buffers(assignments + 4 * B * W * dh, io_bytes(1, 1, n, dh), 4 * B * W * W, 4 * B * W)


def paper_vanillas(n, dh, pt):
    """vanilla_materialized (scores and probabilities), vanilla_eager (two score tensors and
    the mask, 3x slower) and vanilla_flash (no workspace); the first two do not fit at 65536."""
    out = []
    for kernel, scratch, t in (("vanilla_materialized", 8 * n * n, 2.2e-8 * n * n),
                               ("vanilla_eager", 8 * n * n + n * n, 6.6e-8 * n * n),
                               ("vanilla_flash", 0, 0.05 + 1.2e-8 * n * n)):
        mem = vanilla_buffers(n, dh, scratch)
        peak = mem["inputs_bytes"] + mem["outputs_bytes"] + scratch
        if peak > 21.6e9:
            out.append(h.row(kernel, status="skipped", reason=f"needs {peak / 1e9:.1f} GB, {GPU_LIMIT}",
                             memory=mem, extra={"family": "vanilla"}, **pt))
        else:
            out.append(h.row(kernel, time_ms=t, memory=mem, extra={"family": "vanilla"}, **pt))
    return out


def paper_rows():
    b, hh, dh = 1, 1, 1024
    rows = []
    for n in PAPER_NS:
        pt = dict(backend="cuda", batch=b, heads=hh, seq_len=n, head_dim=dh, causal=True)
        rows += paper_vanillas(n, dh, pt)
        lisa = {"family": "lisa"}
        for W in (16, 256):
            params = dict(PAPER_AXES, codebooks=8, codewords=W)
            rows.append(h.row("lisa_base", time_ms=0.03 + 1.6e-5 * n * (W / 16) ** 0.25,
                              approx=0.3, memory=lisa_buffers(n, dh, 8, W), params=params,
                              extra=lisa, **pt))
            rows.append(h.row("lisa_soft", time_ms=0.05 + 2.4e-5 * n * (W / 16) ** 0.5,
                              approx=0.25, memory=lisa_buffers(n, dh, 8, W, soft=True),
                              params=params, extra=lisa, **pt))
        rows.append(h.row("lisa_mini", time_ms=0.025 + 1.5e-5 * n, approx=0.3,
                          memory=lisa_buffers(n, dh, 8, 16),
                          params=dict(PAPER_AXES, codebooks=8, codewords=16), extra=lisa, **pt))
    return rows


PEER_OF_VANILLA = ("vanilla_materialized", "vanilla_eager", "vanilla_flash")


def peers_vanillas(n, io, pt):
    """torch_vanilla_eager (two score tensors and the mask, 2 MB of allocator slack) and SDPA's
    flash and math backends; eager and math do not fit at 65536 (no peak: not run)."""
    eager_peak = 4 * io + 9 * n * n + 2 * 2 ** 20
    out = []
    for kernel, backend, peak, t in (("torch_vanilla_eager", None, eager_peak, 7e-8 * n * n),
                                     ("torch_sdpa", "math", eager_peak, 5e-8 * n * n),
                                     ("torch_sdpa", "flash", 4 * io + 2 ** 20, 0.04 + 0.8e-8 * n * n)):
        params = dict(PAPER_AXES, **({"sdpa_backend": backend} if backend else {}))
        kw = dict(inputs=3 * io, outputs=io, params=params, **pt)
        if peak > 19.2e9:
            out.append(h.peer(kernel, PEER_OF_VANILLA, "vanilla", status="skipped",
                              reason=f"estimated {peak / 1e9:.1f} GB > limit 19.2 GB", **kw))
        else:
            out.append(h.peer(kernel, PEER_OF_VANILLA, "vanilla", time_ms=t, peak_bytes=peak, **kw))
    return out


def peers_rows():
    """The PyTorch peers on the same GPU: eager, SDPA, and the authors' LISA ops (hard codes
    at W = 16 and 256, soft at 16), whose einsum holds B = 8 outputs."""
    dh = 1024
    rows = []
    for n in PAPER_NS:
        pt = dict(backend="torch-cuda", batch=1, heads=1, seq_len=n, head_dim=dh, causal=True)
        io = io_bytes(1, 1, n, dh)
        rows += peers_vanillas(n, io, pt)
        for W, soft in ((16, False), (256, False), (16, True)):
            mem = lisa_buffers(n, dh, 8, W, soft)
            peak = mem["inputs_bytes"] + io + 8 * io + 2 * 2 ** 20
            rows.append(h.peer("torch_lisa_ops", ("lisa_soft",) if soft else ("lisa_base", "lisa_mini"),
                               "lisa", time_ms=0.2 + 2e-4 * n * (1.2 if soft else 1.0),
                               peak_bytes=peak, inputs=mem["inputs_bytes"], outputs=io,
                               params=dict(PAPER_AXES, codebooks=8, codewords=W, decay=0,
                                           projections=0), **pt))
    return rows


def bf16_rows(rows):
    """The same cuda points at bf16 for vanilla_materialized, vanilla_flash and lisa_base
    (half the time and the bytes): two precisions in one figure."""
    out = []
    for r in rows:
        if r["kernel"] in ("vanilla_materialized", "vanilla_flash", "lisa_base") and r["status"] == "ok" \
                and r["axes"].get("codewords", 16) == 16 and r["axes"].get("codebooks", 8) == 8:
            a = r["axes"]
            params = {k: v for k, v in a.items() if k not in h.COMMON}
            out.append(h.row(r["kernel"], backend="cuda", batch=a["batch"], heads=a["heads"],
                             seq_len=a["seq_len"], head_dim=a["head_dim"], causal=a["causal"],
                             time_ms=r["time_ms"]["median"] / 2, peak_bytes=r["peak_bytes"] // 2,
                             approx=r["approx_rel_l2"], params=dict(params, precision="bf16")))
    return out


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
    # A version 1 file: no precision, seed or family (read as fp32, 1234, by name).
    dump(HERE / "sample_cpu_default.json",
         h.document(default_rows("cpu", 1.0), "default", cpu_env, version=1))
    cuda_default = default_rows("cuda", 0.05)
    dump(HERE / "sample_cuda_default.json",
         h.document(cuda_default + bf16_rows(cuda_default), "default", cuda_env))
    dump(HERE / "sample_cuda_paper.json", h.document(paper_rows(), "paper", paper_env))
    dump(HERE / "sample_cuda_paper_peers.json",
         h.document(peers_rows(), "paper", h.peers_environment(dict(cuda_env, date="2025-06-02T12:00:00Z")),
                    vanilla="torch_vanilla_eager", tool="attnbench-peers"))


if __name__ == "__main__":
    main()
