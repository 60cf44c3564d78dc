"""Reading attnbench results files (results/schema.json; schema_version 1 and 2).

load_dataset(paths) reads every file, validates it against results/schema.json (JSON Schema
draft 2020-12, with Debian's python3-jsonschema) and returns a Dataset of Row objects.
Anything wrong with a file (missing, unreadable, not JSON, another schema_version, not
matching the schema, an ok row without a median or a peak) raises ResultsError with one line
that names the file and the failing path (a row by its index and kernel, e.g.
"rows[3] (lisa_base).axes.seq_len"). attnplots.py turns that into "attnplots: error: ..." on
stderr and exit status 2.

Files of `attnbench sweep` and of the PyTorch peers (`./run_all.sh peers`, backend torch-cpu
or torch-cuda) are read alike. A Device is the hardware, not the backend: torch-cpu rows belong
to the cpu device of the same host, torch-cuda rows to the cuda device of the same GPU.

Beyond the schema: an ok row needs a positive time_ms.median and a peak_bytes. Fields a
version 1 file lacks read as their defaults (precision fp32, seed 1234, absent meaning null).
"""

import functools
import json
import math
import pathlib
from dataclasses import dataclass, field

SCHEMA_VERSIONS = (1, 2)
SCHEMA_PATH = pathlib.Path(__file__).resolve().parents[1] / "results" / "schema.json"
SCHEMA_NAME = "results/schema.json"
MESSAGE_CHARS = 160  # a schema message quotes the value: long ones are cut
# The axes every row has; vs_vanilla matches rows on exactly these (results/README.md).
COMMON_AXES = ("batch", "heads", "seq_len", "head_dim", "causal")
# The axes a figure holds fixed across kernels (seq_len is the x axis, causal the panel).
SHAPE_AXES = ("batch", "heads", "head_dim")
# Axes every row has besides the common ones; files written before they existed read as these.
DEFAULT_PRECISION = "fp32"
DEFAULT_SEED = 1234
PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
# Peers backends and the device kind they run on.
DEVICE_KIND = {"cpu": "cpu", "cuda": "cuda", "torch-cpu": "cpu", "torch-cuda": "cuda"}


class ResultsError(Exception):
    """A results file that cannot be used; the message is one line naming the file."""


@dataclass(frozen=True)
class Device:
    """Where rows were measured: the kind (cpu or cuda, whatever the backend: attnbench or
    torch), the CPU model or GPU name and the host."""
    kind: str
    name: str
    host: str

    @property
    def label(self):
        return f"{self.kind}: {self.name} ({self.host})"

    @property
    def slug(self):
        return slugify(f"{self.kind}-{self.host}-{self.name}")


@dataclass
class Source:
    """One results file."""
    path: str
    order: int  # position on the command line
    preset: str
    vanilla_kernel: str
    environment: dict
    n_rows: int = 0

    @property
    def date(self):
        return str(self.environment.get("date") or "")

    @property
    def torch_text(self):
        """'torch 1.13.1 (1.13.0a0, Debian 1.13.1+dfsg-4), 1 thread' for a peers file, else ''."""
        e = self.environment
        if not e.get("torch_version"):
            return ""
        release = e.get("torch_release") or e["torch_version"]
        detail = [str(e["torch_version"])] if release != e["torch_version"] else []
        if e.get("torch_debian_package"):
            detail.append(f"Debian {e['torch_debian_package']}")
        threads = e.get("torch_threads")
        return (f"torch {release}" + (f" ({', '.join(detail)})" if detail else "")
                + (f", {threads} thread{'s' if threads != 1 else ''}" if threads else ""))


@dataclass
class Row:
    kernel: str
    backend: str
    axes: dict
    status: str
    reason: str
    source: Source
    device: Device
    median_ms: float = None
    p25_ms: float = None
    p75_ms: float = None
    sample_count: int = None
    peak_bytes: float = None
    measured_peak_bytes: float = None
    correctness_rel_l2: float = None
    approx_rel_l2: float = None
    approx_cosine: float = None
    flops: float = None
    gflops_per_s: float = None
    speedup: float = None
    memory_ratio: float = None
    repro: str = ""
    family: str = ""
    peer_of: tuple = ()  # peers: the attnbench kernels whose function the row computes
    function: str = ""  # set when rows at one point differ only in peer_of (load_dataset)
    inputs_bytes: float = None
    outputs_bytes: float = None
    prepared_bytes: float = None  # null in peers rows (torch has no workspace query)
    scratch_bytes: float = None
    library_bytes: float = None  # schema 2: a library's memory outside the workspace (cuBLAS)
    noisy: bool = False  # schema 2: spread or contention above the thresholds after the retries
    noise_warning: str = ""  # the row's "noisy: ..." warning, when it has one
    index: int = 0  # position in its file

    @property
    def ok(self):
        return self.status == "ok"

    @property
    def seq_len(self):
        return self.axes["seq_len"]

    @property
    def causal(self):
        return self.axes["causal"]

    @property
    def shape(self):
        """(batch, heads, head_dim): what every kernel at one point of a figure shares."""
        return tuple(self.axes[a] for a in SHAPE_AXES)

    @property
    def precision(self):
        return str(self.axes.get("precision", DEFAULT_PRECISION))

    @property
    def seed(self):
        return self.axes.get("seed", DEFAULT_SEED)

    @property
    def is_peer(self):
        return self.backend.startswith("torch-")

    @property
    def method_params(self):
        """The kernel's own axes (codebooks, codewords, window, ...), sorted by name; a seed
        other than the default and a peer's function (see load_dataset) count as parameters,
        so no line mixes them. The precision has its own line style instead."""
        params = [(k, v) for k, v in self.axes.items()
                  if k not in COMMON_AXES and k not in ("precision", "seed")]
        if self.seed != DEFAULT_SEED:
            params.append(("seed", self.seed))
        if self.function:
            params.append(("peer_of", self.function))
        return tuple(sorted(params))

    @property
    def point_key(self):
        return (self.device, self.kernel, self.backend, self.peer_of,
                tuple(sorted(self.axes.items(), key=lambda kv: kv[0])))


@dataclass
class Dataset:
    sources: list
    rows: list  # after de-duplication
    superseded: list = field(default_factory=list)  # rows replaced by a newer duplicate

    @property
    def devices(self):
        seen = []
        for r in self.rows:
            if r.device not in seen:
                seen.append(r.device)
        return seen

    @property
    def kernels(self):
        seen = []
        for r in self.rows:
            if r.kernel not in seen:
                seen.append(r.kernel)
        return seen


def slugify(text):
    out = "".join(c.lower() if c.isalnum() else "-" for c in str(text))
    while "--" in out:
        out = out.replace("--", "-")
    return out.strip("-")[:60] or "x"


def value_sort_key(v):
    """Sorts axis values of mixed types without TypeError (numbers before strings)."""
    if isinstance(v, bool):
        return (0, int(v), "")
    if isinstance(v, (int, float)):
        return (1, float(v), "")
    return (2, 0.0, str(v))


def params_sort_key(params):
    return tuple((k, value_sort_key(v)) for k, v in params)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _number_or_none(v, where, path):
    """A JSON number (finite) or null; NaN/Infinity literals count as null."""
    if v is None:
        return None
    if not _is_number(v):
        raise ResultsError(f"{path}: {where}: expected a number or null, got {json.dumps(v)[:40]}")
    return float(v) if math.isfinite(v) else None


def _read_json(path):
    try:
        with open(path, "r", encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such file")
    except IsADirectoryError:
        raise ResultsError(f"{path}: is a directory, not a results file")
    except (OSError, UnicodeDecodeError) as e:
        raise ResultsError(f"{path}: cannot read: {getattr(e, 'strerror', None) or e}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ResultsError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})")
    except RecursionError:
        raise ResultsError(f"{path}: not valid JSON (nested too deeply)")


def device_of(backend, env):
    """The device a row ran on: a torch backend's rows join the attnbench backend of the same
    kind on the same host (the CPU model, or the GPU name the tool and torch both report)."""
    host = str(env.get("host") or "unknown host")
    kind = DEVICE_KIND.get(backend, backend)
    if kind == "cpu":
        name = env.get("cpu_model") or env.get("device_name") or "unknown CPU"
    else:
        gpu = env.get("gpu")
        name = ((gpu.get("name") if isinstance(gpu, dict) else None) or env.get("device_name")
                or f"unknown {kind} device")
    # "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz" -> "Intel Xeon Platinum 8375C CPU @ 2.90GHz"
    name = str(name)
    for mark in ("(R)", "(r)", "(TM)", "(tm)"):
        name = name.replace(mark, "")
    return Device(kind=kind, name=" ".join(name.split()), host=host)


@functools.lru_cache(maxsize=1)
def schema_validator():
    """The validator of results/schema.json, built once."""
    try:
        from jsonschema import Draft202012Validator
    except ImportError:
        raise ResultsError("python3-jsonschema is not installed (Debian package python3-jsonschema; "
                           "./run_all.sh installs it)")
    try:
        schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ResultsError(f"{SCHEMA_PATH}: cannot read the results schema: {e}")
    # Its $id is relative; jsonschema 4.10 resolves "#/$defs/..." against it joined to itself,
    # so the references are resolved in the document itself instead.
    schema.pop("$id", None)
    return Draft202012Validator(schema)


def json_path_text(parts, doc):
    """['rows', 3, 'axes'] -> 'rows[3] (lisa_base).axes'."""
    out, node = "", doc
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("kernel"), str) and out.startswith("rows["):
                out += f" ({node['kernel']})"
        else:
            out += ("." if out else "") + str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out or "top level"


def check_schema(doc, path):
    """One line naming the file and the failing path when the file does not match."""
    from jsonschema.exceptions import best_match
    error = best_match(schema_validator().iter_errors(doc))
    if error is None:
        return
    parts = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [k for k in error.validator_value if k not in error.instance]
        parts, message = parts + missing[:1], "missing"
    else:
        message = error.message if len(error.message) <= MESSAGE_CHARS else error.message[:MESSAGE_CHARS] + "..."
    raise ResultsError(f"{path}: does not match {SCHEMA_NAME} at {json_path_text(parts, doc)}: {message}")


def load_results(path, order=0):
    """Reads and validates one file; returns (Source, [Row])."""
    doc = _read_json(path)
    if not isinstance(doc, dict):
        raise ResultsError(f"{path}: not an attnbench results file (top level is not an object)")
    if "schema_version" not in doc:
        raise ResultsError(f"{path}: not an attnbench results file (no schema_version)")
    if doc["schema_version"] not in SCHEMA_VERSIONS:
        raise ResultsError(f"{path}: schema_version {json.dumps(doc['schema_version'])} is not "
                           f"supported (this tool reads {', '.join(map(str, SCHEMA_VERSIONS))})")
    check_schema(doc, path)
    source = Source(path=path, order=order, preset=doc["preset"],
                    vanilla_kernel=doc["vanilla_kernel"], environment=doc["environment"],
                    n_rows=len(doc["rows"]))
    rows = [_parse_row(r, i, source, path) for i, r in enumerate(doc["rows"])]
    return source, rows


def _parse_row(r, i, source, path):
    """A row the schema has accepted; what it cannot say (an ok row has a positive median and
    a peak) is checked here."""
    where = f"rows[{i}] ({r['kernel']})"

    def fail(msg):
        raise ResultsError(f"{path}: {where}: {msg}")

    axes = r["axes"]
    ok = r["status"] == "ok"
    t = r["time_ms"] or {}
    median = _number_or_none(t.get("median"), f"{where}: time_ms.median", path)
    if ok and median is None:
        fail("status is ok but time_ms.median is missing or null")
    if ok and median <= 0:
        fail("time_ms.median should be positive")
    peak = _number_or_none(r["peak_bytes"], f"{where}: peak_bytes", path)
    if ok and peak is None:
        fail("status is ok but peak_bytes is null")
    vv = r.get("vs_vanilla") or {}

    def num(key, d=r):
        return _number_or_none(d.get(key), f"{where}: {key}", path)

    def positive(x):
        return x if (x is not None and x > 0) else None

    count = t.get("count")
    return Row(
        kernel=r["kernel"], backend=r["backend"], axes=dict(axes), status=r["status"],
        reason=r["reason"], source=source, device=device_of(r["backend"], source.environment),
        median_ms=median if ok else None,
        p25_ms=num("p25", t) if ok else None, p75_ms=num("p75", t) if ok else None,
        sample_count=count if (isinstance(count, int) and not isinstance(count, bool)) else None,
        peak_bytes=peak,
        measured_peak_bytes=num("measured_peak_bytes"),
        correctness_rel_l2=num("correctness_rel_l2"),
        approx_rel_l2=num("approx_rel_l2"), approx_cosine=num("approx_cosine"),
        flops=num("flops"), gflops_per_s=num("gflops_per_s"),
        speedup=positive(num("speedup", vv)) if ok else None,
        memory_ratio=positive(num("memory_ratio", vv)) if ok else None,
        repro=r.get("repro") if isinstance(r.get("repro"), str) else "",
        family=family_of(r, source), peer_of=tuple(r.get("peer_of") or ()),
        inputs_bytes=num("inputs_bytes"), outputs_bytes=num("outputs_bytes"),
        prepared_bytes=num("prepared_bytes"), scratch_bytes=num("scratch_bytes"),
        library_bytes=num("library_bytes"), index=i,
        noisy=ok and r.get("noisy") is True,
        noise_warning=next((w for w in r.get("warnings") or () if str(w).startswith("noisy")), ""),
    )


def family_of(r, source):
    """The row's family; files written before rows had one: vanilla by name or as the file's
    vanilla kernel, lisa by name."""
    if isinstance(r.get("family"), str) and r["family"]:
        return r["family"]
    kernel = r["kernel"]
    if kernel.startswith("vanilla") or kernel == source.vanilla_kernel:
        return "vanilla"
    return "lisa" if kernel.startswith("lisa") else ""


def load_dataset(paths):
    """Reads every file; the same point measured twice on one device keeps the row from the
    newer file (environment.date, then the later file on the command line)."""
    if not paths:
        raise ResultsError("no results files given")
    sources, all_rows = [], []
    for order, p in enumerate(paths):
        src, rows = load_results(p, order)
        sources.append(src)
        all_rows.extend(rows)
    best, superseded = {}, []
    for r in all_rows:
        k = r.point_key
        if k in best:
            old = best[k]
            newer = (r.source.date, r.source.order, r.index) >= (old.source.date, old.source.order, old.index)
            keep, drop = (r, old) if newer else (old, r)
            best[k] = keep
            superseded.append(drop)
        else:
            best[k] = r
    kept = set(id(r) for r in best.values())
    rows = [r for r in all_rows if id(r) in kept]
    name_functions(rows)
    return Dataset(sources=sources, rows=rows, superseded=superseded)


def name_functions(rows):
    """A peer that computes several functions on a device (torch_lisa_ops for the hard-code
    kernels and for lisa_soft) gets its peer_of as a parameter, so they never share a line
    or a table cell."""
    groups = {}
    for r in rows:
        if r.peer_of:
            groups.setdefault((r.device, r.kernel, r.backend), []).append(r)
    for g in groups.values():
        if len({r.peer_of for r in g}) > 1:
            for r in g:
                r.function = "/".join(r.peer_of)
