"""What the figures and the report compute from the rows: which rows a figure may put on one
line (fixed axes), the fitted scaling exponents, and the Reformer and exponent claims. The
ratio claims (57x, 78x) against every baseline, and the whole claims table, are in claims.py.

Verdict rules (also in plots/README.md and in every REPORT.md, as OTHER_RULES):
  Reformer 7.6x slower at N = 128: measured = max over settings at seq_len 128 of
    reformer_lsh median / vanilla median (1 / vs_vanilla.speedup); reproduced if >= 7.6,
    not reproduced if below, not measurable if no such pair ran.
  scaling exponents (LISA linear, vanilla quadratic): least-squares slope of log median time
    against log N over the upper range of N (N_max/16 .. N_max, at least 3 points), fp32,
    at the paper setting if LISA has >= 3 points there, else at the setting with the most
    LISA points; LISA reproduced if every lisa* kernel's slope is in [0.8, 1.2]; each exact
    vanilla kernel (vanilla_eager and vanilla_materialized always, the others where
    measured) fitted on its own, reproduced if its slope is in [1.7, 2.3]; not measurable
    with fewer than 3 points.
  Measured figures are compared with the claim at the precision the table prints them.
"""

import math
from dataclasses import dataclass

import numpy as np

from results_io import COMMON_AXES, DEFAULT_PRECISION, DEFAULT_SEED, PRECISIONS, SHAPE_AXES, \
    params_sort_key, value_sort_key

CLAIM_VANILLA = "vanilla_materialized"
PAPER_SHAPE = (1, 1, 1024)  # batch, heads, head_dim
PAPER_CODEBOOKS = 8
PAPER_SEQ_LEN = 65536
SPEED_CLAIM = 57.0
MEMORY_CLAIM = 78.0
REFORMER_CLAIM = 7.6
REFORMER_SEQ_LEN = 128
LISA_SLOPE_RANGE = (0.8, 1.2)
VANILLA_SLOPE_RANGE = (1.7, 2.3)
MIN_FIT_POINTS = 3
UPPER_RANGE_FACTOR = 16  # upper range: N_max / 16 .. N_max
CLAIM_PRECISION = DEFAULT_PRECISION  # the authors measured float32

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
NOT_MEASURABLE = "not measurable here"

# Marks a time taken from a noisy row (results_io.Row.noisy: its spread or contention stayed
# above the harness's thresholds after the retries; docs/measurement.md, "Noise and contention").
NOISY_MARK = "~"
NOISY_FOOTNOTE = (f"{NOISY_MARK} marks a time from a noisy row: its samples' spread, the context "
                  "switches or the load average stayed above the thresholds of docs/measurement.md "
                  "(\"Noise and contention\") after its re-measurements; the row's warnings "
                  "say which.")

AXIS_ABBREV = {"batch": "b", "heads": "h", "seq_len": "N", "head_dim": "dh",
               "codebooks": "B", "codewords": "W"}


def is_lisa(kernel):
    return kernel.startswith("lisa")


def noisy_note(rows):
    """' (~ from noisy rows: k1, k2)' when a time comes from noisy rows, else ''."""
    names = sorted({r.kernel for r in rows if r is not None and r.noisy})
    return f" ({NOISY_MARK} from noisy rows: {', '.join(names)})" if names else ""


def noisy_ns_note(ns):
    """' (~ noisy rows at N=a, b)' for a fit that uses noisy rows, else ''."""
    return f" ({NOISY_MARK} noisy rows at N={', '.join(str(n) for n in ns)})" if ns else ""


def group_by(items, keyfn):
    out = {}
    for it in items:
        out.setdefault(keyfn(it), []).append(it)
    return out


def ok_ns(rows):
    return sorted({r.seq_len for r in rows if r.ok})


def first_not_ok(rows):
    bad = sorted((r for r in rows if not r.ok), key=lambda r: r.seq_len)
    return bad[0] if bad else None


def precision_order(p):
    return PRECISIONS.index(p) if p in PRECISIONS else len(PRECISIONS)


# ---------------------------------------------------------------- describing settings

def fmt_value(v):
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def params_text(params, short=True):
    """codebooks=8, codewords=16 -> 'B=8, W=16'."""
    parts = []
    for k, v in params:
        name = AXIS_ABBREV.get(k, k) if short else k
        parts.append(f"{name}={fmt_value(v)}")
    return ", ".join(parts)


def bytes_text(b):
    """Decimal units, one decimal: 17.2 GB, 268.4 MB."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if b >= scale:
            return f"{b / scale:.1f} {unit}"
    return f"{b:.0f} B"


def extra_axes(axes):
    """The axes besides the common ones that a setting names: the kernel's parameters, the
    seed when it is not the default; the precision is named on its own."""
    return [(k, v) for k, v in sorted(axes.items()) if k not in COMMON_AXES and k != "precision"
            and not (k == "seed" and v == DEFAULT_SEED)]


def shape_text(shape):
    return ", ".join(f"{a} {v}" for a, v in zip(SHAPE_AXES, shape))


def axes_text(axes):
    """Every axis, spelled out: 'batch 1, heads 1, seq_len 65536, head_dim 1024, causal, ...'."""
    parts = [f"{a} {axes[a]}" for a in ("batch", "heads", "seq_len", "head_dim")]
    parts.append("causal" if axes["causal"] else "bidirectional")
    parts.append(str(axes.get("precision", DEFAULT_PRECISION)))
    parts += [f"{k} {fmt_value(v)}" for k, v in extra_axes(axes)]
    return ", ".join(parts)


def point_text(axes):
    """Compact: 'b1 h1 N=65536 dh=1024 causal B=8 W=16'."""
    parts = [f"b{axes['batch']}", f"h{axes['heads']}", f"N={axes['seq_len']}",
             f"dh={axes['head_dim']}", "causal" if axes["causal"] else "bidir"]
    parts += [f"{AXIS_ABBREV.get(k, k)}={fmt_value(v)}" for k, v in extra_axes(axes)]
    return " ".join(parts)


def ranges_text(ns):
    """[512, 1024, 4096] -> '512, 1024, 4096'; long runs shortened."""
    ns = sorted(ns)
    if len(ns) <= 4:
        return ", ".join(str(n) for n in ns)
    return f"{ns[0]} .. {ns[-1]} ({len(ns)} values)"


# ---------------------------------------------------------------- choosing rows for a line

def choose_params_group(kernel_rows):
    """Rows of one kernel at one device and shape, possibly several method-parameter
    settings (W, B, window ...). Returns (params, rows) of the setting with the most
    distinct measured N (then the most rows, then the smallest values), so a line never
    mixes settings."""
    groups = group_by(kernel_rows, lambda r: r.method_params)
    params, rows = min(groups.items(), key=lambda kv: (-len(ok_ns(kv[1])), -len(kv[1]),
                                                       params_sort_key(kv[0])))
    return params, rows


def line_groups(rows):
    """{(kernel, precision): (params, rows)}: each kernel and precision at its most measured
    parameter setting, so no line mixes precisions or settings."""
    return {k: choose_params_group(g)
            for k, g in group_by(rows, lambda r: (r.kernel, r.precision)).items()}


def shapes_for_device(rows, device, limit=3):
    """(batch, heads, head_dim) settings measured on a device that a vs-N figure can show
    (some kernel with >= 2 measured N), the most measured first; and the ones left out."""
    dev_rows = [r for r in rows if r.device == device]
    scored = []
    for shape, srows in group_by(dev_rows, lambda r: r.shape).items():
        lines = line_groups(srows)
        best_line = max(len(ok_ns(g)) for _, g in lines.values())
        if best_line < 2:
            continue
        points = len({(r.kernel, r.precision, r.seq_len, r.causal) for r in srows if r.ok})
        scored.append((points, len(lines), shape))
    scored.sort(key=lambda t: (-t[0], -t[1], t[2]))
    chosen = [s for _, _, s in scored[:limit]]
    dropped = [s for _, _, s in scored[limit:]]
    return chosen, dropped


# ---------------------------------------------------------------- scaling exponents

def fit_slope(ns, times):
    """Least-squares slope of log(time) against log(N)."""
    x = np.log(np.asarray(ns, dtype=float))
    y = np.log(np.asarray(times, dtype=float))
    slope, _ = np.polyfit(x, y, 1)
    return float(slope)


def upper_range(points):
    """The points with N in [N_max / 16, N_max], or the 3 largest if that band has fewer."""
    points = sorted(points)
    n_max = points[-1][0]
    band = [p for p in points if p[0] * UPPER_RANGE_FACTOR >= n_max]
    if len(band) < MIN_FIT_POINTS:
        band = points[-MIN_FIT_POINTS:]
    return band


@dataclass
class ExponentFit:
    device: object
    kernel: str
    causal: bool
    shape: tuple
    params: tuple
    precision: str
    ns: list
    slope_all: float
    upper_ns: list
    slope_upper: float
    noisy_ns: tuple = ()  # the N of upper-range rows that are noisy

    @property
    def fixed_text(self):
        t = shape_text(self.shape) + f", {self.precision}"
        return t + (", " + params_text(self.params) if self.params else "")


def exponent_fits(rows, min_points=MIN_FIT_POINTS):
    """One fit per device, kernel, causal flag, shape, precision and method-parameter setting
    with at least `min_points` measured N."""
    fits = []
    key = lambda r: (r.device, r.kernel, r.causal, r.shape, r.method_params, r.precision)
    for (dev, kernel, causal, shape, params, prec), g in group_by([r for r in rows if r.ok], key).items():
        pts = sorted((r.seq_len, r.median_ms) for r in g)
        if len(pts) < min_points:
            continue
        up = upper_range(pts)
        upper = {p[0] for p in up}
        fits.append(ExponentFit(
            device=dev, kernel=kernel, causal=causal, shape=shape, params=params, precision=prec,
            ns=[p[0] for p in pts], slope_all=fit_slope(*zip(*pts)),
            upper_ns=[p[0] for p in up], slope_upper=fit_slope(*zip(*up)),
            noisy_ns=tuple(sorted(r.seq_len for r in g if r.noisy and r.seq_len in upper))))
    return fits


# ---------------------------------------------------------------- the claims table

@dataclass
class Claim:
    claim: str
    claimed: str
    measured: str
    setting: str
    device: str
    verdict: str
    reason: str = ""

    @property
    def verdict_text(self):
        return self.verdict + (f": {self.reason}" if self.reason else "")

    @property
    def summary(self):
        """One line for the console."""
        return f"{self.claim} [{self.device}]: {self.measured}; {self.verdict}"


def reformer_claims(rows, devices):
    out = []
    name = "reformer_lsh"
    for dev in devices:
        ref = [r for r in rows if r.device == dev and r.kernel == name
               and r.seq_len == REFORMER_SEQ_LEN]
        cands = [r for r in ref if r.speedup is not None]

        def claim(measured, setting, verdict, reason=""):
            out.append(Claim(f"Reformer is {REFORMER_CLAIM:g}x slower than vanilla at N={REFORMER_SEQ_LEN}",
                             f"{REFORMER_CLAIM:g}x slower", measured, setting, dev.label, verdict, reason))

        if not cands:
            if not ref:
                reason = f"no {name} row at N={REFORMER_SEQ_LEN} on this device"
            elif any(r.ok for r in ref):
                reason = f"vanilla did not run at N={REFORMER_SEQ_LEN} (no vs_vanilla ratio)"
            else:
                bad = ref[0]
                reason = f"{name} {bad.status}" + (f": {bad.reason}" if bad.reason else "")
            claim("-", f"seq_len {REFORMER_SEQ_LEN}", NOT_MEASURABLE, reason)
            continue
        best = max(cands, key=lambda r: 1.0 / r.speedup)
        ratio = 1.0 / best.speedup
        measured = f"{ratio:.2f}x slower (vs {best.source.vanilla_kernel})" + noisy_note([best])
        if round(ratio, 2) >= REFORMER_CLAIM:
            claim(measured, axes_text(best.axes), REPRODUCED)
        else:
            claim(measured, axes_text(best.axes), NOT_REPRODUCED,
                  f"below {REFORMER_CLAIM:g}x at every setting measured at N={REFORMER_SEQ_LEN}")
    return out


LISA_EXPONENT_TEXT = (f"LISA time grows linearly in N (exponent in [{LISA_SLOPE_RANGE[0]}, "
                      f"{LISA_SLOPE_RANGE[1]}])")
VANILLA_EXPONENT_TEXT = (f"vanilla time grows quadratically in N (exponent in "
                         f"[{VANILLA_SLOPE_RANGE[0]}, {VANILLA_SLOPE_RANGE[1]}])")
# Always judged (not measurable without rows): the paper's baseline and the single buffer.
EXPONENT_VANILLAS = ("vanilla_eager", CLAIM_VANILLA)


def most_measured(fits):
    """Per kernel, the fit of its most measured parameter setting (then the smallest)."""
    return sorted((min(kf, key=lambda f: (-len(f.ns), params_sort_key(f.params)))
                   for kf in group_by(fits, lambda f: f.kernel).values()), key=lambda f: f.kernel)


def exponent_cell(lisa_fits):
    """The (shape, causal) the exponent claims are judged in: the paper's (B = 8), else the
    one with the most LISA points; and the LISA fits there."""
    cells = group_by(lisa_fits, lambda f: (f.shape, f.causal))
    paper_ok = [f for f in cells.get((PAPER_SHAPE, True), [])
                if dict(f.params).get("codebooks") == PAPER_CODEBOOKS]
    if paper_ok:
        return (PAPER_SHAPE, True), paper_ok
    return max(cells.items(), key=lambda kv: (sum(len(f.ns) for f in kv[1]),
                                              max(max(f.ns) for f in kv[1]), kv[0][1]))


def cell_text(cell):
    shape, causal = cell
    return shape_text(shape) + (", causal" if causal else ", bidirectional")


def upper_text(f):
    return f"N {f.upper_ns[0]}..{f.upper_ns[-1]} ({len(f.upper_ns)} points)"


def lisa_exponent_claim(dev, cell, cell_fits):
    lo, hi = LISA_SLOPE_RANGE
    chosen = most_measured(cell_fits)
    setting = cell_text(cell) + "; " + "; ".join(
        f"{f.kernel}: {params_text(f.params, short=False)}, {upper_text(f)}" for f in chosen)
    measured = ", ".join(f"{f.kernel} {f.slope_upper:.2f}{noisy_ns_note(f.noisy_ns)}"
                         for f in chosen)
    outside = [f for f in chosen if not (lo <= round(f.slope_upper, 2) <= hi)]
    if outside:
        return Claim(LISA_EXPONENT_TEXT, "1", measured, setting, dev.label, NOT_REPRODUCED,
                     "outside the range: " + ", ".join(f.kernel for f in outside))
    return Claim(LISA_EXPONENT_TEXT, "1", measured, setting, dev.label, REPRODUCED)


def vanilla_exponent_claim(dev, kernel, cell, dfits, dev_rows):
    """One vanilla kernel's exponent, fitted on its own, in the cell LISA is judged in."""
    text = f"{VANILLA_EXPONENT_TEXT}: {kernel}"
    vf = most_measured([f for f in dfits if f.kernel == kernel and (f.shape, f.causal) == cell])
    if not vf:
        van_rows = [r for r in dev_rows if r.kernel == kernel and (r.shape, r.causal) == cell]
        why = (f"{kernel} ran at {len(ok_ns(van_rows))} N value(s) at this setting "
               f"(needs {MIN_FIT_POINTS})")
        bad = first_not_ok(van_rows)
        if bad is not None:
            why += f"; {bad.status} from N={bad.seq_len}" + (f": {bad.reason}" if bad.reason else "")
        return Claim(text, "2", "-", cell_text(cell), dev.label, NOT_MEASURABLE, why)
    f = vf[0]
    lo, hi = VANILLA_SLOPE_RANGE
    verdict = REPRODUCED if lo <= round(f.slope_upper, 2) <= hi else NOT_REPRODUCED
    return Claim(text, "2", f"{kernel} {f.slope_upper:.2f}{noisy_ns_note(f.noisy_ns)}",
                 f"{cell_text(cell)}; {upper_text(f)}",
                 dev.label, verdict, "" if verdict == REPRODUCED else "outside the range")


def exact_vanillas(dev_rows):
    """The paper's baseline and the single buffer first, then every other exact vanilla."""
    others = sorted({r.kernel for r in dev_rows if r.family == "vanilla"} - set(EXPONENT_VANILLAS))
    return list(EXPONENT_VANILLAS) + others


def exponent_claims(rows, devices, fits):
    """LISA linear, each vanilla kernel quadratic: fitted per kernel at the claim precision."""
    out = []
    for dev in devices:
        dev_rows = [r for r in rows if r.device == dev]
        dfits = [f for f in fits if f.device == dev and f.precision == CLAIM_PRECISION]
        lisa_fits = [f for f in dfits if is_lisa(f.kernel)]
        if not lisa_fits:
            why = ("no LISA rows on this device" if not any(is_lisa(r.kernel) for r in dev_rows)
                   else f"no {CLAIM_PRECISION} LISA setting with {MIN_FIT_POINTS} or more measured N")
            out.append(Claim(LISA_EXPONENT_TEXT, "1", "-", "-", dev.label, NOT_MEASURABLE, why))
            out.append(Claim(VANILLA_EXPONENT_TEXT, "2", "-", "-", dev.label, NOT_MEASURABLE,
                             why + " to compare with"))
            continue
        cell, cell_fits = exponent_cell(lisa_fits)
        out.append(lisa_exponent_claim(dev, cell, cell_fits))
        out += [vanilla_exponent_claim(dev, k, cell, dfits, dev_rows) for k in exact_vanillas(dev_rows)]
    return out


OTHER_RULES = [
    f"**Reformer {REFORMER_CLAIM:g}x slower at N = {REFORMER_SEQ_LEN}**: measured = the largest "
    f"`reformer_lsh` median / vanilla median (1 / `vs_vanilla.speedup`) over the settings at "
    f"seq_len {REFORMER_SEQ_LEN}; *reproduced* if >= {REFORMER_CLAIM:g}, *not reproduced* if below, "
    f"*not measurable here* if no such pair ran.",
    f"**Scaling exponents**: least-squares slope of log(median time) against log(N) over the upper "
    f"range of N (N_max/{UPPER_RANGE_FACTOR} .. N_max, at least {MIN_FIT_POINTS} points; at small N "
    f"fixed overheads hide the asymptotic growth), at {CLAIM_PRECISION}, at the paper setting when "
    f"LISA has >= {MIN_FIT_POINTS} points there, else at the (shape, causal) setting with the most "
    f"LISA points, each kernel fitted on its own at its most-measured parameters. LISA *reproduced* "
    f"if every `lisa*` kernel's slope is in [{LISA_SLOPE_RANGE[0]}, {LISA_SLOPE_RANGE[1]}]; each "
    f"exact vanilla kernel (`vanilla_eager` and `{CLAIM_VANILLA}` always, the others and the "
    f"peers' where measured) gets its own row, *reproduced* if its slope is in "
    f"[{VANILLA_SLOPE_RANGE[0]}, {VANILLA_SLOPE_RANGE[1]}]; *not measurable here* with fewer than "
    f"{MIN_FIT_POINTS} measured N.",
    "Measured figures are compared with the claims at the precision the table prints them "
    "(ratios to 0.1, the Reformer ratio and exponents to 0.01). A device without the rows a claim "
    "needs says so.",
]
