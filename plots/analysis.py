"""What the figures and the report compute from the rows: which rows a figure may put on one
line (fixed axes), the fitted scaling exponents, and the claims table with its verdicts.

Verdict rules (also in plots/README.md and in every REPORT.md):
  ratio claims (LISA 57x faster, 78x less memory; ratio = vs_vanilla against
  vanilla_materialized, max over the lisa* kernels, every N and W):
    - at the paper setting (batch 1, heads 1, head_dim 1024, causal, codebooks 8) when the
      device has LISA rows there:
        reproduced       the largest measured ratio >= the claimed figure;
        not reproduced   it is below, and a LISA ratio exists at N >= 65536 (vanilla ran at
                         the paper's length, where the ratio is largest);
        not measurable   it is below and no LISA ratio exists at N = 65536 (vanilla was
                         skipped, failed or not run there; the reason is quoted).
    - otherwise (paper size absent; the causal codebooks-8 rows count, all LISA rows if
      there are none): reproduced if one reaches the claim (the setting is named); else not
      measurable, as the claim's setting was not measured.
  Measured figures are compared with the claim at the precision the table prints them.
  Reformer 7.6x slower at N = 128: measured = max over settings at seq_len 128 of
    reformer_lsh median / vanilla median (1 / vs_vanilla.speedup); reproduced if >= 7.6,
    not reproduced if below, not measurable if no such pair ran.
  scaling exponents (LISA linear, vanilla quadratic): least-squares slope of log median time
    against log N over the upper range of N (N_max/16 .. N_max, at least 3 points), at the
    paper setting if LISA has >= 3 points there, else at the setting with the most LISA
    points; LISA reproduced if every lisa* kernel's slope is in [0.8, 1.2], vanilla if
    vanilla_materialized's is in [1.7, 2.3]; not measurable with fewer than 3 points.
"""

import math
from dataclasses import dataclass

import numpy as np

from results_io import COMMON_AXES, SHAPE_AXES, params_sort_key, value_sort_key

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

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
NOT_MEASURABLE = "not measurable here"

AXIS_ABBREV = {"batch": "b", "heads": "h", "seq_len": "N", "head_dim": "dh",
               "codebooks": "B", "codewords": "W"}


def is_lisa(kernel):
    return kernel.startswith("lisa")


def group_by(items, keyfn):
    out = {}
    for it in items:
        out.setdefault(keyfn(it), []).append(it)
    return out


def ok_ns(rows):
    return sorted({r.seq_len for r in rows if r.ok})


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


def shape_text(shape):
    return ", ".join(f"{a} {v}" for a, v in zip(SHAPE_AXES, shape))


def axes_text(axes):
    """Every axis, spelled out: 'batch 1, heads 1, seq_len 65536, head_dim 1024, causal, ...'."""
    parts = [f"{a} {axes[a]}" for a in ("batch", "heads", "seq_len", "head_dim")]
    parts.append("causal" if axes["causal"] else "bidirectional")
    parts += [f"{k} {fmt_value(v)}" for k, v in sorted(axes.items()) if k not in COMMON_AXES]
    return ", ".join(parts)


def point_text(axes):
    """Compact: 'b1 h1 N=65536 dh=1024 causal B=8 W=16'."""
    parts = [f"b{axes['batch']}", f"h{axes['heads']}", f"N={axes['seq_len']}",
             f"dh={axes['head_dim']}", "causal" if axes["causal"] else "bidir"]
    parts += [f"{AXIS_ABBREV.get(k, k)}={fmt_value(v)}" for k, v in sorted(axes.items())
              if k not in COMMON_AXES]
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


def shapes_for_device(rows, device, limit=3):
    """(batch, heads, head_dim) settings measured on a device that a vs-N figure can show
    (some kernel with >= 2 measured N), the most measured first; and the ones left out."""
    dev_rows = [r for r in rows if r.device == device]
    scored = []
    for shape, srows in group_by(dev_rows, lambda r: r.shape).items():
        per_kernel = group_by(srows, lambda r: r.kernel)
        best_line = max(len(ok_ns(choose_params_group(k)[1])) for k in per_kernel.values())
        if best_line < 2:
            continue
        points = len({(r.kernel, r.seq_len, r.causal) for r in srows if r.ok})
        scored.append((points, len(per_kernel), shape))
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
    ns: list
    slope_all: float
    upper_ns: list
    slope_upper: float

    @property
    def fixed_text(self):
        t = shape_text(self.shape)
        return t + (", " + params_text(self.params) if self.params else "")


def exponent_fits(rows, min_points=MIN_FIT_POINTS):
    """One fit per device, kernel, causal flag, shape and method-parameter setting with at
    least `min_points` measured N."""
    fits = []
    key = lambda r: (r.device, r.kernel, r.causal, r.shape, r.method_params)
    for (dev, kernel, causal, shape, params), g in group_by([r for r in rows if r.ok], key).items():
        pts = sorted((r.seq_len, r.median_ms) for r in g)
        if len(pts) < min_points:
            continue
        up = upper_range(pts)
        fits.append(ExponentFit(
            device=dev, kernel=kernel, causal=causal, shape=shape, params=params,
            ns=[p[0] for p in pts], slope_all=fit_slope(*zip(*pts)),
            upper_ns=[p[0] for p in up], slope_upper=fit_slope(*zip(*up))))
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


def _at_paper_setting(r):
    if r.shape != PAPER_SHAPE or not r.causal:
        return False
    return (not is_lisa(r.kernel)) or r.axes.get("codebooks") == PAPER_CODEBOOKS


PAPER_SETTING_TEXT = (f"batch {PAPER_SHAPE[0]}, heads {PAPER_SHAPE[1]}, head_dim {PAPER_SHAPE[2]}, "
                      f"causal, codebooks {PAPER_CODEBOOKS}")


def _gb(nbytes):
    return f"{nbytes / 1e9:.1f} GB"


def _first_not_ok(rows):
    bad = sorted((r for r in rows if not r.ok), key=lambda r: r.seq_len)
    return bad[0] if bad else None


def _why_no_ratio(dev_rows, lisa_rows, n_needed):
    """Why no LISA ratio exists at N >= n_needed at the paper setting."""
    van = [r for r in dev_rows if r.kernel == CLAIM_VANILLA and _at_paper_setting(r)]
    van_at = [r for r in van if r.seq_len >= n_needed]
    bad = _first_not_ok(van_at)
    if bad is not None:
        return f"{CLAIM_VANILLA} {bad.status} at N={bad.seq_len}" + (f": {bad.reason}" if bad.reason else "")
    if not any(r.ok for r in van_at):
        ran = ok_ns(van)
        first_bad = _first_not_ok(van)
        msg = f"{CLAIM_VANILLA} has no row at N={n_needed}"
        if first_bad is not None:
            msg += (f" ({first_bad.status} from N={first_bad.seq_len}"
                    + (f": {first_bad.reason}" if first_bad.reason else "") + ")")
        elif ran:
            msg += f" (largest N it ran: {ran[-1]})"
        return msg
    lisa_at = [r for r in lisa_rows if r.seq_len >= n_needed]
    bad = _first_not_ok(lisa_at)
    if bad is not None:
        return f"{bad.kernel} {bad.status} at N={bad.seq_len}" + (f": {bad.reason}" if bad.reason else "")
    return f"no LISA row at N={n_needed}"


def _computed_memory_note(dev_rows, lisa_rows):
    """Where vanilla was not run but its exact byte count is known, the ratio it implies."""
    van = {(r.shape, r.causal, r.seq_len): r for r in dev_rows
           if r.kernel == CLAIM_VANILLA and not r.ok and r.peak_bytes}
    best = None
    for r in lisa_rows:
        v = van.get((r.shape, r.causal, r.seq_len))
        if v is None or not r.peak_bytes:
            continue
        ratio = v.peak_bytes / r.peak_bytes
        if best is None or (r.seq_len, ratio) > (best[1], best[0]):
            best = (ratio, r.seq_len, v.peak_bytes)
    if best is None:
        return ""
    return (f"; from the exact byte counts vanilla would need {_gb(best[2])} at N={best[1]}, "
            f"a ratio of {best[0]:.1f}x (computed, not measured)")


def _ratio_claims(rows, devices, field, claimed, claim_text):
    out = []
    claimed_text = f"{claimed:g}x"
    for dev in devices:
        dev_rows = [r for r in rows if r.device == dev]
        lisa = [r for r in dev_rows if is_lisa(r.kernel)]
        against = [r for r in lisa if r.source.vanilla_kernel == CLAIM_VANILLA]

        def claim(measured, setting, verdict, reason=""):
            out.append(Claim(claim_text, claimed_text, measured, setting, dev.label, verdict, reason))

        if not lisa:
            claim("-", "-", NOT_MEASURABLE, "no LISA rows on this device")
            continue
        if not against:
            claim("-", "-", NOT_MEASURABLE,
                  f"ratios here are against {lisa[0].source.vanilla_kernel}, not {CLAIM_VANILLA}")
            continue
        paper = [r for r in against if _at_paper_setting(r)]
        # Without the paper's size, still hold its configuration (causal, B = 8) when the
        # results have it: a B = 1 toy is not the method the claim is about.
        like_paper = [r for r in against if r.causal and r.axes.get("codebooks") == PAPER_CODEBOOKS]
        pool = paper or like_paper or against
        cands = [r for r in pool if getattr(r, field) is not None]
        best = max(cands, key=lambda r: (getattr(r, field), r.seq_len)) if cands else None
        measured = (f"{getattr(best, field):.1f}x ({best.kernel}, N={best.seq_len})" if best else "-")
        setting = axes_text(best.axes) if best else PAPER_SETTING_TEXT
        # Compared at the precision the table shows, so the verdict matches what is read.
        value = round(getattr(best, field), 1) if best else None
        note = _computed_memory_note(dev_rows, pool) if field == "memory_ratio" else ""
        if paper:
            if value is not None and value >= claimed:
                claim(measured, setting, REPRODUCED)
            elif any(r.seq_len >= PAPER_SEQ_LEN for r in cands):
                claim(measured, setting, NOT_REPRODUCED,
                      f"below {claimed_text} at every measured N, including N={PAPER_SEQ_LEN}")
            else:
                claim(measured, setting, NOT_MEASURABLE,
                      f"below {claimed_text} up to N={max(r.seq_len for r in cands) if cands else '-'}; "
                      + _why_no_ratio(dev_rows, paper, PAPER_SEQ_LEN) + note)
        else:
            if value is not None and value >= claimed:
                claim(measured, setting, REPRODUCED,
                      f"at a setting other than the paper's ({PAPER_SETTING_TEXT})")
            else:
                claim(measured, setting, NOT_MEASURABLE,
                      f"the paper setting ({PAPER_SETTING_TEXT}) is not in these results"
                      + ("" if cands else "; no LISA row has a ratio against vanilla") + note)
    return out


def _reformer_claims(rows, devices):
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
        measured = f"{ratio:.2f}x slower (vs {best.source.vanilla_kernel})"
        if round(ratio, 2) >= REFORMER_CLAIM:
            claim(measured, axes_text(best.axes), REPRODUCED)
        else:
            claim(measured, axes_text(best.axes), NOT_REPRODUCED,
                  f"below {REFORMER_CLAIM:g}x at every setting measured at N={REFORMER_SEQ_LEN}")
    return out


def _exponent_claims(rows, devices, fits):
    out = []
    lo_l, hi_l = LISA_SLOPE_RANGE
    lo_v, hi_v = VANILLA_SLOPE_RANGE
    for dev in devices:
        dfits = [f for f in fits if f.device == dev]
        lisa_fits = [f for f in dfits if is_lisa(f.kernel)]
        lisa_text = f"LISA time grows linearly in N (exponent in [{lo_l}, {hi_l}])"
        van_text = f"vanilla time grows quadratically in N (exponent in [{lo_v}, {hi_v}])"
        if not lisa_fits:
            why = ("no LISA rows on this device" if not any(is_lisa(r.kernel) for r in rows if r.device == dev)
                   else f"no LISA setting with {MIN_FIT_POINTS} or more measured N")
            out.append(Claim(lisa_text, "1", "-", "-", dev.label, NOT_MEASURABLE, why))
            out.append(Claim(van_text, "2", "-", "-", dev.label, NOT_MEASURABLE, why + " to compare with"))
            continue
        # The cell (shape, causal) the claims are judged in: the paper's, else the one with
        # the most LISA points.
        cells = group_by(lisa_fits, lambda f: (f.shape, f.causal))
        paper_cell = (PAPER_SHAPE, True)
        paper_ok = [f for f in cells.get(paper_cell, []) if dict(f.params).get("codebooks") == PAPER_CODEBOOKS]
        if paper_ok:
            cell, cell_fits = paper_cell, paper_ok
        else:
            cell, cell_fits = max(cells.items(), key=lambda kv: (sum(len(f.ns) for f in kv[1]),
                                                                  max(max(f.ns) for f in kv[1]),
                                                                  kv[0][1]))
        shape, causal = cell
        chosen = []
        for kernel, kf in group_by(cell_fits, lambda f: f.kernel).items():
            chosen.append(min(kf, key=lambda f: (-len(f.ns), params_sort_key(f.params))))
        chosen.sort(key=lambda f: f.kernel)
        setting = shape_text(shape) + (", causal" if causal else ", bidirectional")
        lisa_setting = setting + "; " + "; ".join(
            f"{f.kernel}: {params_text(f.params, short=False)}, N {f.upper_ns[0]}..{f.upper_ns[-1]} "
            f"({len(f.upper_ns)} points)" for f in chosen)
        measured = ", ".join(f"{f.kernel} {f.slope_upper:.2f}" for f in chosen)
        outside = [f for f in chosen if not (lo_l <= round(f.slope_upper, 2) <= hi_l)]
        if outside:
            out.append(Claim(lisa_text, "1", measured, lisa_setting, dev.label, NOT_REPRODUCED,
                             "outside the range: " + ", ".join(f.kernel for f in outside)))
        else:
            out.append(Claim(lisa_text, "1", measured, lisa_setting, dev.label, REPRODUCED))
        vf = [f for f in dfits if f.kernel == CLAIM_VANILLA and f.shape == shape and f.causal == causal]
        if not vf:
            van_rows = [r for r in rows if r.device == dev and r.kernel == CLAIM_VANILLA
                        and r.shape == shape and r.causal == causal]
            n = len(ok_ns(van_rows))
            bad = _first_not_ok(van_rows)
            why = f"{CLAIM_VANILLA} ran at {n} N value(s) at this setting (needs {MIN_FIT_POINTS})"
            if bad is not None:
                why += f"; {bad.status} from N={bad.seq_len}" + (f": {bad.reason}" if bad.reason else "")
            out.append(Claim(van_text, "2", "-", setting, dev.label, NOT_MEASURABLE, why))
            continue
        f = vf[0]
        vsetting = setting + f"; N {f.upper_ns[0]}..{f.upper_ns[-1]} ({len(f.upper_ns)} points)"
        verdict = REPRODUCED if lo_v <= round(f.slope_upper, 2) <= hi_v else NOT_REPRODUCED
        out.append(Claim(van_text, "2", f"{CLAIM_VANILLA} {f.slope_upper:.2f}", vsetting, dev.label,
                         verdict, "" if verdict == REPRODUCED else "outside the range"))
    return out


def claims_table(dataset, fits=None):
    rows = dataset.rows
    devices = dataset.devices
    if fits is None:
        fits = exponent_fits(rows)
    out = []
    out += _ratio_claims(rows, devices, "speedup", SPEED_CLAIM, f"LISA up to {SPEED_CLAIM:g}x faster than vanilla")
    out += _ratio_claims(rows, devices, "memory_ratio", MEMORY_CLAIM,
                         f"LISA up to {MEMORY_CLAIM:g}x more memory efficient than vanilla")
    out += _reformer_claims(rows, devices)
    out += _exponent_claims(rows, devices, fits)
    return out


VERDICT_RULES = [
    f"**LISA {SPEED_CLAIM:g}x faster / {MEMORY_CLAIM:g}x less memory** (per device). Measured = the "
    f"largest `vs_vanilla.speedup` (or `memory_ratio`) of any `lisa*` kernel against "
    f"`{CLAIM_VANILLA}`, over every N and W. When the device has LISA rows at the paper setting "
    f"({PAPER_SETTING_TEXT}), only those count, and: *reproduced* if measured >= claimed; "
    f"*not reproduced* if measured < claimed and a LISA ratio exists at N >= {PAPER_SEQ_LEN} "
    f"(vanilla ran at the paper's length, where the ratio is largest); *not measurable here* "
    f"if measured < claimed and no ratio exists at N = {PAPER_SEQ_LEN} (the reason, e.g. vanilla "
    f"skipped for memory, is quoted; a ratio below the claim at shorter N does not refute an "
    f"'up to' claim made at N = {PAPER_SEQ_LEN}). Without the paper setting, the causal B = "
    f"{PAPER_CODEBOOKS} rows count (all LISA rows if there are none): *reproduced* if one reaches "
    f"the claim (its setting is named), else *not measurable here*.",
    f"**Reformer {REFORMER_CLAIM:g}x slower at N = {REFORMER_SEQ_LEN}**: measured = the largest "
    f"`reformer_lsh` median / vanilla median (1 / `vs_vanilla.speedup`) over the settings at "
    f"seq_len {REFORMER_SEQ_LEN}; *reproduced* if >= {REFORMER_CLAIM:g}, *not reproduced* if below, "
    f"*not measurable here* if no such pair ran.",
    f"**Scaling exponents**: least-squares slope of log(median time) against log(N) over the upper "
    f"range of N (N_max/{UPPER_RANGE_FACTOR} .. N_max, at least {MIN_FIT_POINTS} points; at small N "
    f"fixed overheads hide the asymptotic growth), at the paper setting when LISA has >= "
    f"{MIN_FIT_POINTS} points there, else at the (shape, causal) setting with the most LISA points, "
    f"each kernel at its most-measured W and B. LISA *reproduced* if every `lisa*` kernel's slope "
    f"is in [{LISA_SLOPE_RANGE[0]}, {LISA_SLOPE_RANGE[1]}]; vanilla if `{CLAIM_VANILLA}`'s slope is "
    f"in [{VANILLA_SLOPE_RANGE[0]}, {VANILLA_SLOPE_RANGE[1]}]; *not measurable here* with fewer than "
    f"{MIN_FIT_POINTS} measured N.",
    "Measured figures are compared with the claims at the precision the table prints them "
    "(ratios to 0.1, the Reformer ratio and exponents to 0.01). A claim gets one row per device "
    "(backend and machine); a device without the rows a claim needs says so.",
]
