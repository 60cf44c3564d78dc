"""./run_all.sh peers PRESET|SWEEP_FILE [ARGS]: the PyTorch peers at a sweep's points.

Steps: re-execute under the heap interposer (LD_PRELOAD), ask the tool for the points, and
for every point a peer stands for: export its inputs and float64 reference, build the peer
on the device, time it, measure its peak, check it, write the row. The file is rewritten
after every row (atomically), like the tool's.
"""

import argparse
import gc
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from peers import report
from peers.plan import PRELOAD_LIBRARY, PRELOADED_ENV, ROOT, PeersError, Tool, build_dir, \
    export_point, group_by_export, peer_jobs

LAUNCHER_ENV = "ATTNBENCH_PEERS_LAUNCHER"  # how the user started us (for repro strings)
MEMORY_FRACTION = 0.8  # of the host's (cpu) or the device's memory, as the tool's default limit


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog=os.environ.get(LAUNCHER_ENV, "python3 -m peers"),
        description="PyTorch peers (eager vanilla, SDPA, the LISA authors' ops, Linear "
                    "Transformer) at the points of an attnbench sweep, written in the attnbench "
                    "results schema")
    ap.add_argument("sweep", help="preset (smoke, default, paper, ...) or sweep file (.json)")
    ap.add_argument("--axis", action="append", default=[],
                    help="override an axis, name=v1,v2 (repeatable; as attnbench sweep)")
    ap.add_argument("--kernels", help="attnbench kernels whose points to use (comma-separated)")
    ap.add_argument("--peers", help="peers to run, comma-separated (default: all)")
    ap.add_argument("--sdpa-backends", help="SDPA backends for torch_sdpa (default: all "
                                            "offered: math, flash; on CUDA also efficient, cudnn)")
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                    help="torch device (auto: cuda when torch sees one)")
    ap.add_argument("--threads", type=int, help="torch threads (default: as attnbench, all cores)")
    ap.add_argument("--warmup", type=int, help="untimed runs before timing")
    ap.add_argument("--min-reps", type=int, help="least timed runs per point")
    ap.add_argument("--max-reps", type=int, help="most timed runs per point")
    ap.add_argument("--min-time", type=float, help="least timed seconds per point")
    ap.add_argument("--max-point-seconds", type=float,
                    help="end a point's warm-up at half and its samples at this (0 = no limit)")
    ap.add_argument("--out", help="results file (default results/<date>-<host>-<name>-peers.json)")
    ap.add_argument("--attnbench", help="the attnbench tool (default: the build folder's)")
    ap.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return ap.parse_args(argv)


def reexec_under_heap_interposer(argv):
    """Restart this process with the malloc interposer preloaded, once, so that the cpu rows'
    peak is the heap high-water mark the tool measures for its own rows."""
    if os.environ.get(PRELOADED_ENV):
        return
    library = build_dir() / PRELOAD_LIBRARY
    if not library.is_file():
        raise PeersError(f"{library} is not built (./run_all.sh build): the cpu rows' memory "
                         "is measured through it")
    env = dict(os.environ)
    env["LD_PRELOAD"] = ":".join(filter(None, [str(library), env.get("LD_PRELOAD")]))
    env[PRELOADED_ENV] = str(library)
    env["PYTHONPATH"] = ":".join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    os.execve(sys.executable, [sys.executable, "-m", "peers", *argv], env)


def import_torch():
    try:
        import torch
        return torch
    except Exception as e:  # ImportError, or a broken install
        first = str(e).splitlines()[0] if str(e) else "no message"
        raise PeersError(f"PyTorch is not importable by {sys.executable} ({type(e).__name__}: "
                         f"{first}); ./run_all.sh peers installs Debian's python3-torch")


def tool_flags(args):
    """The timing and thread flags, which the tool applies to the sweep's own timing."""
    flags = []
    for flag, value in (("--warmup", args.warmup), ("--min-reps", args.min_reps),
                        ("--max-reps", args.max_reps), ("--min-time", args.min_time),
                        ("--max-point-seconds", args.max_point_seconds),
                        ("--threads", args.threads)):
        if value is not None:
            flags += [flag, str(value)]
    return flags


def make_device(torch, choice):
    from peers.measure import CpuDevice, CudaDevice, preloaded_heap_counter
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise PeersError(f"--device cuda: torch {torch.__version__} sees no CUDA device")
        return CudaDevice()
    heap = preloaded_heap_counter()
    if heap is None:
        raise PeersError("the heap interposer is not preloaded (run through ./run_all.sh peers "
                         "or python3 -m peers, which re-executes itself with it)")
    return CpuDevice(heap)


def selected_peers(names):
    from peers.impls import PEERS, peer_names
    if not names:
        return PEERS
    wanted = [n for n in names.split(",") if n]
    unknown = [n for n in wanted if n not in peer_names()]
    if unknown:
        raise PeersError(f"unknown peer '{unknown[0]}' (known: {', '.join(peer_names())})")
    return [p for p in PEERS if p.name in wanted]


class Runner:
    """Runs the jobs of a plan on one device and keeps the results file current."""

    def __init__(self, args, torch, tool, plan, device, out_path):
        self.args, self.torch, self.tool, self.plan = args, torch, tool, plan
        self.device, self.out_path = device, out_path
        self.timing = plan["timing"]["cuda" if device.torch_device == "cuda" else "cpu"]
        self.max_point_seconds = plan["max_point_seconds"]
        self.memory_limit = MEMORY_FRACTION * device.memory_bytes(plan["environment"])
        self.launcher = os.environ.get(LAUNCHER_ENV, f"{sys.executable} -m peers")
        self.sdpa_backends = args.sdpa_backends.split(",") if args.sdpa_backends else None
        command = shlex.join([*self.launcher.split(), *sys.argv[1:]])
        self.environment = report.environment(plan["environment"], torch, device,
                                              torch.get_num_threads(), command)
        self.rows = []

    def save(self):
        report.fill_vs_vanilla(self.rows)
        report.write_atomic(self.out_path, report.results_document(
            self.plan["name"], self.environment, self.rows))

    def variants(self, job):
        return job.peer.variants(self.device.torch_device, self.sdpa_backends)

    def run(self, jobs):
        total, done = sum(len(self.variants(j)) for j in jobs), 0
        self.save()
        for _, group in group_by_export(jobs):
            exported, export_error = None, ""
            try:
                exported = export_point(self.tool, group[0].kernels[0], group[0].axes)
            except PeersError as e:
                export_error = f"attnbench export: {e}"
            for job in group:
                for variant in self.variants(job):
                    row = self.run_variant(job, variant, exported, export_error)
                    self.rows.append(row)
                    self.save()
                    done += 1
                    if not self.args.quiet:
                        print(f"[{done}/{total}] {report.describe(row)}: {report.outcome(row)}",
                              file=sys.stderr, flush=True)

    def run_variant(self, job, variant, exported, export_error):
        start = time.perf_counter()
        repro = report.repro_command(self.launcher, self.args.sweep, job, variant, self.device,
                                     self.timing, self.torch.get_num_threads(),
                                     self.max_point_seconds)
        row = report.new_row(job, variant, self.device, exported and exported.point, repro)
        if export_error:
            row.update(status="error", reason=export_error)
        elif variant.skip_reason or self.skip_reason(job, variant):
            row.update(status="skipped", reason=variant.skip_reason or self.skip_reason(job, variant))
        else:
            self.measure(job, variant, exported, row, start)
        row["point_seconds"] = time.perf_counter() - start
        return row

    def skip_reason(self, job, variant):
        precision = job.axes.get("precision", "fp32")
        if precision != "fp32":
            return f"the peers run fp32 only, not {precision}"
        need = job.peer.peak_estimate(job.axes, variant)
        if need > self.memory_limit:
            return (f"needs about {report.format_bytes(need)} (estimate), limit "
                    f"{report.format_bytes(self.memory_limit)}")
        return ""

    def measure(self, job, variant, exported, row, start):
        """Build, warm up, time, measure the peak, check the output: fills `row`."""
        from peers.impls import Refused
        from peers.measure import rel_l2, summarize, timed_samples
        device, fn = self.device, None
        try:
            with self.torch.inference_mode(), variant.context():
                device.before_inputs()
                fn = variant.build(exported, device.torch_device)
                held = device.input_bytes()
                device.prepare_flush(row["inputs_bytes"] + row["outputs_bytes"])
                samples, row["warmup_runs"] = timed_samples(
                    device, fn, self.timing, self.max_point_seconds, start)
                row["peak_bytes"] = row["measured_peak_bytes"] = int(device.peak_bytes(held))
                check_start = time.perf_counter()
                output = fn().float().cpu().numpy()
            row["time_ms"] = summarize(samples)
            if row["time_ms"]["median"] > 0 and row["flops"]:
                row["gflops_per_s"] = row["flops"] / (row["time_ms"]["median"] * 1e-3) / 1e9
            row["correctness_rel_l2"] = rel_l2(output, exported.rows, exported.reference)
            row["correctness_rows"] = int(exported.rows.shape[0])
            row["check_seconds"] = time.perf_counter() - check_start
            bad = int((~np.isfinite(output)).sum())
            if bad:
                row.update(status="error",
                           reason=f"{bad} of {output.size} output elements are NaN or infinite"
                                  + job.peer.nonfinite_hint(job.axes))
        except Refused as e:
            row.update(status="skipped", reason=f"{variant.label} SDPA backend {e}")
        except (RuntimeError, MemoryError) as e:
            row.update(status="error", reason=f"{type(e).__name__}: {str(e).splitlines()[0]}",
                       time_ms=None)
        finally:
            del fn
            gc.collect()
            device.prepare_flush(float("inf"))  # drop the flush buffer between points


def run(args, argv):
    reexec_under_heap_interposer(argv)
    torch = import_torch()
    tool = Tool(args.attnbench)
    plan = tool.plan(args.sweep, args.axis, args.kernels, tool_flags(args))
    torch.set_num_threads(plan["threads"])
    device = make_device(torch, args.device)
    jobs = peer_jobs(plan["points"], selected_peers(args.peers))
    if not jobs:
        raise PeersError(f"no point of '{plan['name']}' has a peer (peers stand for the vanilla "
                         "kernels, the lisa family and linear_elu)")
    out = Path(args.out) if args.out else report.default_out_path(
        ROOT / "results", plan["environment"]["host"], plan["name"])
    runner = Runner(args, torch, tool, plan, device, out)
    print(f"peers: {len(jobs)} peer points of '{plan['name']}' on {device.backend} "
          f"({device.name(plan['environment'])}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads); results in {out}", file=sys.stderr, flush=True)
    try:
        runner.run(jobs)
    except KeyboardInterrupt:
        runner.save()
        print(f"peers: interrupted; the finished rows are in {out}", file=sys.stderr)
        return 130
    print(report.table(runner.rows), end="")
    counts = {s: sum(r["status"] == s for r in runner.rows) for s in ("ok", "skipped", "error")}
    print(f"\n{len(runner.rows)} rows ({counts['ok']} ok, {counts['skipped']} skipped, "
          f"{counts['error']} errors); results: {out}")
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    try:
        return run(args, argv)
    except PeersError as e:
        print(f"peers: error: {e}", file=sys.stderr)
        return 2
