"""Builders for results documents in the schema of results/README.md, used by the tests and
by data/make_sample.py. Values are given directly (time in ms, bytes), so the tests know
every ratio and verdict in advance."""

import json
import os
import pathlib
import sys

PLOTS = pathlib.Path(__file__).resolve().parents[1]
if str(PLOTS) not in sys.path:
    sys.path.insert(0, str(PLOTS))

COMMON = ("batch", "heads", "seq_len", "head_dim", "causal")


def environment(host="devbox", cpu="Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", gpu=None,
                date="2025-06-01T10:00:00Z", commit="0123456789abcdef0123456789abcdef01234567"):
    return {
        "host": host, "cpu_model": cpu, "cpu_cores": 2, "threads_used": 2,
        "memory_bytes": 8 * 10**9, "gpu": gpu, "compiler": "GNU 12.2.0",
        "cxx_flags": "-O3 -march=native", "build_type": "Release", "blas": "OpenBLAS 0.3.21",
        "cuda_compiler": "" if gpu is None else "NVIDIA 12.4", "git_commit": commit,
        "git_dirty": False, "date": date, "command_line": "attnbench sweep --preset sample",
        "calibration": None,
    }


def gpu(name="NVIDIA A10G", memory_bytes=24 * 10**9):
    return {"name": name, "memory_bytes": memory_bytes, "driver_version": "550.54",
            "runtime_version": "12.4", "compute_capability": "8.6"}


def row(kernel, backend="cpu", batch=1, heads=1, seq_len=128, head_dim=64, causal=True,
        status="ok", reason="", time_ms=None, peak_bytes=None, approx=None, params=None):
    """One row. time_ms: the median (the other statistics follow from it); peak_bytes: the
    exact peak. vs_vanilla is filled in by attach_ratios."""
    axes = {"batch": batch, "heads": heads, "seq_len": seq_len, "head_dim": head_dim,
            "causal": causal}
    axes.update(params or {})
    ok = status == "ok"
    io = 4 * batch * heads * seq_len * head_dim
    t = None
    if ok:
        t = {"median": time_ms, "min": time_ms * 0.97, "max": time_ms * 1.1,
             "p25": time_ms * 0.99, "p75": time_ms * 1.02, "mean": time_ms * 1.01, "count": 5,
             "samples": [time_ms * f for f in (0.97, 0.99, 1.0, 1.02, 1.1)]}
    flops = 4.0 * batch * heads * seq_len ** 2 * head_dim * (0.5 if causal else 1.0)
    return {
        "kernel": kernel, "backend": backend, "axes": axes, "status": status, "reason": reason,
        "time_ms": t,
        "inputs_bytes": 3 * io, "outputs_bytes": io,
        "prepared_bytes": 0, "scratch_bytes": (peak_bytes or 4 * io) - 4 * io,
        "workspace_bytes": (peak_bytes or 4 * io) - 4 * io,
        "peak_bytes": peak_bytes,
        "measured_peak_bytes": peak_bytes if ok else None,
        "memory_agrees": True if ok else None,
        "correctness_rel_l2": 2e-7 if ok else None, "correctness_rows": 64,
        "approx_rel_l2": approx if ok else None,
        "approx_cosine": (1 - approx ** 2 / 2) if (ok and approx is not None) else None,
        "flops": flops, "gflops_per_s": flops / (time_ms * 1e6) if ok else None,
        "min_bytes": 4 * io, "vs_vanilla": None,
        "repro": f"attnbench sweep --kernels {kernel} --backend {backend}",
    }


def attach_ratios(rows, vanilla="vanilla_materialized"):
    """vs_vanilla as the harness computes it: against the vanilla row at the same batch,
    heads, seq_len, head_dim, causal and backend; null where vanilla did not run."""
    ref = {}
    for r in rows:
        if r["kernel"] == vanilla and r["status"] == "ok":
            ref[(r["backend"],) + tuple(r["axes"][a] for a in COMMON)] = r
    for r in rows:
        v = ref.get((r["backend"],) + tuple(r["axes"][a] for a in COMMON))
        if r["status"] == "ok" and v is not None:
            r["vs_vanilla"] = {"speedup": v["time_ms"]["median"] / r["time_ms"]["median"],
                               "memory_ratio": v["peak_bytes"] / r["peak_bytes"]}
    return rows


def document(rows, preset="sample", env=None, vanilla="vanilla_materialized"):
    return {"schema_version": 1, "tool": "attnbench", "preset": preset,
            "vanilla_kernel": vanilla, "environment": env or environment(),
            "rows": attach_ratios(rows, vanilla)}


def write(path, doc):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = str(path) + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)
    return str(path)
