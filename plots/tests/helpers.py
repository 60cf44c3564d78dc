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


def peers_environment(env, torch_version="2.3.1", threads=4, device="cuda"):
    """A peers file's environment: the tool's machine fields (no build) plus torch's."""
    out = {k: v for k, v in env.items()
           if k not in ("compiler", "cxx_flags", "build_type", "blas", "cuda_compiler", "calibration")}
    out.update({"torch_version": torch_version, "torch_release": torch_version,
                "torch_debian_package": "", "torch_threads": threads, "torch_device": device,
                "device_name": (env.get("gpu") or {}).get("name") or env.get("cpu_model")})
    return out


def buffers(inputs, outputs, prepared=0, scratch=0, library=0):
    """Exact memory fields; peak_bytes is their sum (as the tool writes it). library_bytes
    (schema 2: the cuBLAS workspace) only when given."""
    out = {"inputs_bytes": inputs, "outputs_bytes": outputs, "prepared_bytes": prepared,
           "scratch_bytes": scratch, "workspace_bytes": prepared + scratch}
    return dict(out, library_bytes=library) if library else out


def peer(kernel, peer_of, family, inputs=None, outputs=None, **kw):
    """A peers row (backend torch-cuda unless given): measured peak, no workspace query
    (prepared and scratch null)."""
    extra = {"peer_of": list(peer_of), "family": family, "prepared_bytes": None,
             "scratch_bytes": None, "workspace_bytes": None}
    if inputs is not None:
        extra.update(inputs_bytes=inputs, outputs_bytes=outputs)
    kw.setdefault("backend", "torch-cuda")
    return row(kernel, extra=extra, **kw)


def default_buffers(peak, io):
    """Memory fields that add up to `peak` when no others are given: output io, inputs 3 io,
    the rest scratch (a smaller peak fills the output, then the inputs)."""
    out = min(io, peak)
    inputs = min(3 * io, peak - out)
    return buffers(inputs, out, 0, peak - inputs - out)


def row(kernel, backend="cpu", batch=1, heads=1, seq_len=128, head_dim=64, causal=True,
        status="ok", reason="", time_ms=None, peak_bytes=None, approx=None, params=None,
        memory=None, extra=None):
    """One row. time_ms: the median (the other statistics follow from it); peak_bytes: the
    exact peak (from `memory`, helpers.buffers, when not given; a row that did not run and
    has neither was refused by validate, and has zeros, as the tool writes it). `extra`:
    fields set last (family, peer_of ...). vs_vanilla is filled in by attach_ratios."""
    if memory is None and peak_bytes is None:
        memory = buffers(0, 0) if status != "ok" else None
        peak_bytes = None if memory else 4 * 4 * batch * heads * seq_len * head_dim
    if memory is not None and peak_bytes is None:
        peak_bytes = (memory["inputs_bytes"] + memory["outputs_bytes"] + memory["workspace_bytes"]
                      + memory.get("library_bytes", 0))
    peak_bytes = int(round(peak_bytes))  # the schema's bytes are integers
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
        **default_buffers(peak_bytes, io),
        "peak_bytes": peak_bytes,
        "measured_peak_bytes": peak_bytes if ok else None,
        "memory_agrees": True if ok else None,
        "correctness_rel_l2": 2e-7 if ok else None, "correctness_rows": 64,
        "approx_rel_l2": approx if ok else None,
        "approx_cosine": (1 - approx ** 2 / 2) if (ok and approx is not None) else None,
        "flops": flops, "gflops_per_s": flops / (time_ms * 1e6) if ok else None,
        "min_bytes": 4 * io, "vs_vanilla": None,
        "repro": f"attnbench sweep --kernels {kernel} --backend {backend}",
        **(memory or {}), **(extra or {}),
    }


def attach_ratios(rows, vanilla="vanilla_materialized"):
    """vs_vanilla as the harness computes it: against the vanilla row at the same batch,
    heads, seq_len, head_dim, causal, precision and backend; null where vanilla did not run."""
    key = lambda r: ((r["backend"], r["axes"].get("precision", "fp32"))
                     + tuple(r["axes"][a] for a in COMMON))
    ref = {key(r): r for r in rows if r["kernel"] == vanilla and r["status"] == "ok"}
    for r in rows:
        v = ref.get(key(r))
        if r["status"] == "ok" and v is not None:
            r["vs_vanilla"] = {"speedup": v["time_ms"]["median"] / r["time_ms"]["median"],
                               "memory_ratio": v["peak_bytes"] / r["peak_bytes"]}
    return rows


def document(rows, preset="sample", env=None, vanilla="vanilla_materialized", version=2,
             tool="attnbench"):
    """A results file (results/schema.json); version 1 files lack precision, seed, family."""
    return {"schema_version": version, "tool": tool, "preset": preset,
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
