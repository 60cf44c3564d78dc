"""What the peers ask the attnbench tool for: the sweep's points (`sweep --dry-run --json`)
and each point's seeded inputs with the float64 reference of its checked rows (`export`).
Python never expands a sweep, generates inputs or evaluates a reference itself.
"""

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PRELOAD_LIBRARY = "libattnbench_heap_preload.so"
PRELOADED_ENV = "ATTNBENCH_PEERS_HEAP_PRELOAD"  # the library the runner re-executed itself with


class PeersError(Exception):
    """A one-line error for the user (exit status 2)."""


def build_dir():
    return Path(os.environ.get("ATTNBENCH_BUILD_DIR") or ROOT / "build")


def axis_text(value):
    """An axis value as `--axis name=value` spells it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Tool:
    """The attnbench executable."""

    def __init__(self, path=None):
        self.path = Path(path) if path else build_dir() / "attnbench"
        if not self.path.is_file():
            raise PeersError(f"attnbench is not built at {self.path} (./run_all.sh build)")

    def run(self, args):
        # the heap interposer is the tool's own: do not hand it the peers' LD_PRELOAD
        env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        done = subprocess.run([str(self.path), *args], capture_output=True, text=True, env=env)
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines() or ["(no message)"]
            raise PeersError(lines[-1])
        return done.stdout

    def plan(self, sweep, axes=(), kernels=None, timing_flags=()):
        """The expanded points of a preset or sweep file, with timing and environment."""
        source = ["--sweep", sweep] if sweep.endswith(".json") or os.path.sep in sweep \
            else ["--preset", sweep]
        args = ["sweep", *source, "--backend", "cpu", "--dry-run", "--json", *timing_flags]
        for a in axes:
            args += ["--axis", a]
        if kernels:
            args += ["--kernels", kernels]
        return json.loads(self.run(args))

    def export(self, kernel, axes, out_dir):
        args = ["export", "--kernel", kernel, "--out", str(out_dir)]
        for name, value in axes.items():
            args += ["--axis", f"{name}={axis_text(value)}"]
        self.run(args)


@dataclass
class Job:
    """One peer at one point: the attnbench kernels there whose function it computes."""
    peer: object                 # impls.Peer
    point: dict                  # the first matching point of the plan
    kernels: list = field(default_factory=list)

    @property
    def axes(self):
        return self.point["axes"]

    @property
    def export_key(self):
        """Jobs with the same key read the same export (same inputs, same reference)."""
        return (self.peer.family, self.peer.function_of(self.point),
                json.dumps(self.axes, sort_keys=True))


def peer_jobs(points, peers):
    """Every (peer, point) the plan asks for, once, in the plan's order."""
    jobs = {}
    for point in points:
        for peer in peers:
            if not peer.matches(point):
                continue
            key = (peer.name, peer.function_of(point), json.dumps(point["axes"], sort_keys=True))
            job = jobs.setdefault(key, Job(peer, point))
            if point["kernel"] not in job.kernels:
                job.kernels.append(point["kernel"])
    return list(jobs.values())


def group_by_export(jobs):
    """[(export key, [jobs])] in order: one export serves every peer at a point."""
    groups = {}
    for job in jobs:
        groups.setdefault(job.export_key, []).append(job)
    return list(groups.items())


@dataclass
class Exported:
    """One point's export: inputs (numpy, eval's layout), checked rows, float64 reference."""
    axes: dict
    point: dict                  # point.json: kernel, flops, min_bytes, inputs/outputs bytes
    arrays: dict                 # q, k, v, codes, codebooks, wq, wk, wv, probs, ...
    rows: np.ndarray             # int64 [rows, 2]: (sequence b * heads + h, position)
    reference: np.ndarray        # float64 [rows, head_dim]


def load_export(folder):
    folder = Path(folder)
    point = json.loads((folder / "point.json").read_text())
    arrays = {f[:-4]: np.load(folder / f) for f in point["files"]
              if f not in ("rows.npy", "reference.npy")}
    return Exported(point["axes"], point, arrays, np.load(folder / "rows.npy"),
                    np.load(folder / "reference.npy"))


def export_point(tool, kernel, axes):
    with tempfile.TemporaryDirectory(prefix="attnbench-peers-") as d:
        tool.export(kernel, axes, d)
        return load_export(d)
