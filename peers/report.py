"""The peers' results file: the attnbench schema (results/README.md, schema_version 1) with
`backend` torch-cpu / torch-cuda, torch's version and device in `environment`, and per row
`family` and `peer_of` (the attnbench kernels at that point whose function the peer computes).
"""

import json
import math
import os
import shlex
import socket
import time
from datetime import datetime, timezone
from pathlib import Path

SCHEMA_VERSION = 1
VANILLA_PEER = "torch_vanilla_eager"
COMMON_AXES = ("batch", "heads", "seq_len", "head_dim", "causal")
# the tool's environment fields that describe the attnbench build, not the torch run
BUILD_FIELDS = ("compiler", "cxx_flags", "build_type", "blas", "cuda_compiler", "calibration")


def default_out_path(results_dir, host, name):
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    stem = Path(results_dir) / f"{stamp}-{host}-{name}-peers"
    path, i = Path(f"{stem}.json"), 2
    while path.exists():
        path, i = Path(f"{stem}-{i}.json"), i + 1
    return path


def environment(tool_env, torch, device, threads, command_line):
    from peers.impls import debian_package_version, torch_version
    env = {k: v for k, v in tool_env.items() if k not in BUILD_FIELDS}
    env.update({
        "host": tool_env.get("host") or socket.gethostname(),
        "threads_used": threads,
        "torch_version": torch.__version__,
        "torch_release": torch_version(),
        "torch_debian_package": debian_package_version(),
        "torch_threads": torch.get_num_threads(),
        "torch_device": device.torch_device,
        "device_name": device.name(tool_env),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command_line": command_line,
        "resumes": [],
    })
    return env


def new_row(job, variant, device, exported_point, repro):
    """A row with everything known before the run; status and figures come later."""
    axes = dict(job.axes)
    axes.setdefault("precision", "fp32")
    axes.update(job.peer.axes_extra(variant))
    return {
        "kernel": job.peer.name, "backend": device.backend, "family": job.peer.family,
        "peer_of": list(job.kernels), "axes": axes, "status": "ok", "reason": "",
        "time_ms": None, "warmup_runs": 0,
        "inputs_bytes": exported_point.get("inputs_bytes", 0) if exported_point else 0,
        "outputs_bytes": exported_point.get("outputs_bytes", 0) if exported_point else 0,
        # torch has no workspace query: peak_bytes is the measured peak
        "prepared_bytes": None, "scratch_bytes": None, "workspace_bytes": None,
        "peak_bytes": None, "measured_peak_bytes": None,
        "measured_peak_source": device.peak_source, "memory_agrees": None,
        "memory_note": "peak_bytes is measured (torch has no workspace query)",
        "correctness_rel_l2": None, "correctness_rows": 0,
        "approx_rel_l2": None, "approx_cosine": None, "approx_rows": 0,
        "flops": exported_point.get("flops", 0) if exported_point else 0,
        "gflops_per_s": None,
        "min_bytes": exported_point.get("min_bytes", 0) if exported_point else 0,
        "roofline_bound": "", "floor_ms": None, "pct_of_peak": None, "vs_vanilla": None,
        "point_seconds": 0.0, "check_seconds": 0.0, "repro": repro,
    }


def repro_command(launcher, sweep, job, variant, device, timing, threads, max_point_seconds):
    """The peers command that reruns exactly this row."""
    args = [sweep, "--peers", job.peer.name, "--kernels", job.kernels[0]]
    for name, value in job.axes.items():
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        args += ["--axis", f"{name}={text}"]
    if variant.label:
        args += ["--sdpa-backends", variant.label]
    args += ["--device", device.torch_device, "--threads", str(threads),
             "--warmup", str(timing["warmup"]), "--min-reps", str(timing["min_reps"]),
             "--max-reps", str(timing["max_reps"]), "--min-time", str(timing["min_time_s"]),
             "--max-point-seconds", str(max_point_seconds)]
    return f"{launcher} {shlex.join(args)}"


def fill_vs_vanilla(rows):
    """vs_vanilla against torch_vanilla_eager at the same backend and common axes: the
    ratio the LISA paper claims (its vanilla was this eager code)."""
    key = lambda r: (r["backend"],) + tuple(r["axes"][a] for a in COMMON_AXES)
    vanilla = {key(r): r for r in rows if r["kernel"] == VANILLA_PEER and r["status"] == "ok"}
    for r in rows:
        v = vanilla.get(key(r))
        ok = v is not None and r["status"] == "ok" and r["peak_bytes"] and r["time_ms"]
        r["vs_vanilla"] = {"speedup": v["time_ms"]["median"] / r["time_ms"]["median"],
                           "memory_ratio": v["peak_bytes"] / r["peak_bytes"]} if ok else None


def results_document(name, tool_env, rows):
    return {"schema_version": SCHEMA_VERSION, "tool": "attnbench-peers", "preset": name,
            "vanilla_kernel": VANILLA_PEER, "environment": tool_env, "rows": rows}


def json_safe(value):
    """Numbers that do not exist (NaN, infinity) as null, as the tool writes them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def write_atomic(path, document):
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(json_safe(document), indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)


def format_bytes(n):
    """Decimal units, as the tool's format_bytes."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def describe(row):
    a = row["axes"]
    text = (f"{row['kernel']} {row['backend']} b={a['batch']} h={a['heads']} N={a['seq_len']} "
            f"dh={a['head_dim']} {'causal' if a['causal'] else 'bidirectional'}")
    extra = [f"{k}={v}" for k, v in a.items() if k not in COMMON_AXES and k != "precision"]
    return " ".join([text, *extra, f"(peer of {','.join(row['peer_of'])})"])


def outcome(row):
    if row["status"] != "ok":
        return f"{row['status']}: {row['reason']}"
    rel = row["correctness_rel_l2"]
    return (f"ok {row['time_ms']['median']:.3f} ms, peak {row['peak_bytes'] / 1e6:.2f} MB, "
            f"rel-L2 {rel:.1e}" if rel is not None else "ok")


def table(rows):
    head = ["peer", "peer of", "backend", "point", "median ms", "peak MB", "vs eager",
            "mem ratio", "rel-L2", "status"]
    lines = [head]
    for r in rows:
        vs = r["vs_vanilla"]
        lines.append([
            r["kernel"], ",".join(r["peer_of"]), r["backend"],
            describe(r).split(" ", 2)[2].rsplit(" (peer of", 1)[0],
            f"{r['time_ms']['median']:.3f}" if r["time_ms"] else "-",
            f"{r['peak_bytes'] / 1e6:.2f}" if r["peak_bytes"] else "-",
            f"{vs['speedup']:.2f}x" if vs else "-", f"{vs['memory_ratio']:.2f}x" if vs else "-",
            f"{r['correctness_rel_l2']:.1e}" if r["correctness_rel_l2"] is not None else "-",
            r["status"] + (f": {r['reason'][:60]}" if r["reason"] else "")])
    widths = [max(len(l[i]) for l in lines) for i in range(len(head))]
    out = []
    for n, l in enumerate(lines):
        out.append("  ".join(c.rjust(w) if 4 <= i <= 8 else c.ljust(w)
                             for i, (c, w) in enumerate(zip(l, widths))).rstrip())
        if n == 0:
            out.append("-" * len(out[0]))
    return "\n".join(out) + "\n"
