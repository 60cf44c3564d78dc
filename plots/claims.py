"""LISA's ratio claims ("up to 57x faster", "78x more memory efficient than vanilla
self-attention") judged per device against every baseline, and the whole claims table.

A device is a CPU or a GPU: torch-cpu rows belong with the cpu rows of the same host,
torch-cuda rows with the cuda rows of the same GPU (results_io.device_of). Per device there is
one row per (claim, LISA side, baseline):

  LISA sides   attnbench: the fastest (time claim) or smallest (memory claim) `lisa*` kernel
               at the point; torch_lisa_ops (the authors' op sequence), where measured.
  baselines    the paper's baseline: vanilla_eager and, where measured, torch_vanilla_eager;
               vanilla_materialized; the fastest (time) or smallest (memory) exact vanilla
               measured on the device at the point, peers included (any row of family
               vanilla: vanilla_*, torch_vanilla_eager, torch_sdpa per SDPA backend), named.

Every ratio is computed here from the rows' raw fields: baseline median time / LISA median
time, baseline peak_bytes / LISA peak_bytes (attnbench: the exact declared peak; peers: the
measured peak), never from vs_vanilla (which is against one kernel only). Two rows are at the
same point when device, batch, heads, seq_len, head_dim, causal and precision agree; a LISA
point also fixes codebooks, codewords, decay and projections.

Verdict rules (also in plots/README.md and every REPORT.md):
  primary      at the paper's point: batch 1, heads 1, head_dim 1024, causal, B=8 codebooks,
               W=16 codewords, no decay, no projections, N=65536, fp32. reproduced: the
               ratio, rounded to 0.1, reaches the claim; not reproduced: it is below;
               not measurable here: a side has no ok row there, with the reason quoted
               (skipped for memory with its byte figure, not run, error). For memory, a
               skipped baseline's exact byte count gives a ratio marked computed, not measured.
  sweep max    secondary: the largest ratio over the sweep's points at the paper setting (any
               N and W), naming N, W and the kernels. Without LISA rows there: the causal
               B=8 fp32 rows at any shape, else every fp32 row of that LISA side; the setting
               is named.
  crossover    the smallest N from which LISA is faster (time) or smaller (memory) than the
               baseline at every larger N where both ran, at the paper setting with W=16 (else
               the setting of the sweep max with the most such N): "below the smallest N
               measured" when LISA wins at every N, "not reached" when it loses at the largest.
"""

from dataclasses import dataclass
from typing import Callable

import analysis as an
from results_io import DEFAULT_PRECISION

PAPER_SHAPE = an.PAPER_SHAPE
PAPER_SEQ_LEN = an.PAPER_SEQ_LEN
PAPER_PRECISION = DEFAULT_PRECISION
# The authors' profiling: B=8 codebooks of W=16 codewords, no decay, no projections.
PAPER_LISA = (("codebooks", 8), ("codewords", 16), ("decay", 0), ("projections", 0))
LISA_AXES = tuple(a for a, _ in PAPER_LISA)
PAPER_POINT_TEXT = "b1 h1 N=65536 dh=1024 causal B=8 W=16 fp32"
TORCH_LISA = "torch_lisa_ops"
TORCH_EAGER = "torch_vanilla_eager"


@dataclass(frozen=True)
class Quantity:
    """What a ratio claim compares: a row field where less is better."""
    field: str
    claimed: float
    claim: str
    better: str  # "faster" / "smaller"
    best: str  # "fastest" / "smallest"

    def value(self, row):
        return getattr(row, self.field)

    def show(self, v):
        return f"{v:.3g} ms" if self.field == "median_ms" else an.bytes_text(v)

    def noisy_note(self, *rows):
        """Times only: which of the rows behind a figure are noisy (memory is exact)."""
        return an.noisy_note(rows) if self.field == "median_ms" else ""


TIME = Quantity("median_ms", an.SPEED_CLAIM, f"LISA up to {an.SPEED_CLAIM:g}x faster than vanilla",
                "faster", "fastest")
MEMORY = Quantity("peak_bytes", an.MEMORY_CLAIM,
                  f"LISA up to {an.MEMORY_CLAIM:g}x more memory efficient than vanilla",
                  "smaller", "smallest")


@dataclass(frozen=True)
class Side:
    """A LISA side or a baseline: which rows belong to it. `always`: listed even on a device
    without any of its rows (then not measurable); otherwise only where measured."""
    name: str
    member: Callable
    always: bool = True
    pick_best: bool = False  # the name is a role ("fastest exact vanilla"): say who won

    def label(self, quantity, row=None):
        name = self.name.format(best=quantity.best)
        return name + (f" ({kernel_text(row)})" if row is not None and self.pick_best else "")


def is_exact_vanilla(r):
    return r.family == "vanilla"


LISA_SIDES = [
    Side("attnbench lisa*", lambda r: an.is_lisa(r.kernel), pick_best=True),
    Side(TORCH_LISA, lambda r: r.kernel == TORCH_LISA, always=False),
]
BASELINES = [
    Side("vanilla_eager", lambda r: r.kernel == "vanilla_eager"),
    Side(TORCH_EAGER, lambda r: r.kernel == TORCH_EAGER, always=False),
    Side("vanilla_materialized", lambda r: r.kernel == "vanilla_materialized"),
    Side("{best} exact vanilla", is_exact_vanilla, pick_best=True),
]


@dataclass
class RatioClaim(an.Claim):
    """One (claim, LISA side, baseline) row; `ratio` is the primary figure (None when not
    measurable), `crossover_n` the crossover (None: not reached or not measurable)."""
    lisa_side: str = ""
    baseline: str = ""
    sweep_max: str = ""
    crossover: str = ""
    ratio: float = None
    crossover_n: int = None

    @property
    def summary(self):
        return (f"{self.claim} [{self.device}] {self.lisa_side} vs {self.baseline}: "
                f"{self.measured}; {self.verdict}; crossover {self.crossover.split(';')[0]}")


# ---------------------------------------------------------------- points

def kernel_text(r):
    """The kernel, with what tells it apart from its namesakes at a point."""
    extra = [f"{k}={an.fmt_value(v)}" for k, v in r.method_params
             if k not in LISA_AXES and k != "peer_of"]
    if r.peer_of and r.family == "lisa":
        extra.append("peer of " + "/".join(r.peer_of))
    return r.kernel + (f" [{', '.join(extra)}]" if extra else "")


def base_key(r):
    """What a baseline shares with the LISA row it is compared with."""
    return (r.shape, r.causal, r.seq_len, r.precision)


def lisa_setting(r):
    """A LISA point without its N: shape, mask, precision, B, W, decay, projections."""
    return (r.shape, r.causal, r.precision) + tuple((a, r.axes.get(a, 0)) for a in LISA_AXES)


PAPER_SETTING = (PAPER_SHAPE, True, PAPER_PRECISION) + PAPER_LISA


def without_w(setting):
    return tuple(p for p in setting if not (isinstance(p, tuple) and p[:1] == ("codewords",)))


def at_paper_setting(r, any_w=False):
    if any_w:
        return without_w(lisa_setting(r)) == without_w(PAPER_SETTING)
    return lisa_setting(r) == PAPER_SETTING


def at_paper_shape(r):
    """A baseline row at the paper's shape, mask and precision (any N)."""
    return base_key(r)[:2] + base_key(r)[3:] == (PAPER_SHAPE, True, PAPER_PRECISION)


def like_paper(r):
    """The paper's configuration (causal, B=8, no decay or projections, fp32) at any shape."""
    s = lisa_setting(r)
    return s[1:3] == PAPER_SETTING[1:3] and s[3] == PAPER_LISA[0] and s[5:] == PAPER_LISA[2:]


def setting_text(setting, with_w=True):
    shape, causal, precision = setting[:3]
    params = ", ".join(f"{an.AXIS_ABBREV.get(k, k)}={an.fmt_value(v)}" for k, v in setting[3:]
                       if with_w or k != "codewords")
    return f"{an.shape_text(shape)}, {'causal' if causal else 'bidirectional'}, {params}, {precision}"


def best(rows, quantity):
    ok = [r for r in rows if r.ok and quantity.value(r)]
    return min(ok, key=quantity.value) if ok else None


def ratio_of(quantity, lisa_row, base_row):
    return quantity.value(base_row) / quantity.value(lisa_row)


def pairs(quantity, lisa_rows, base_rows):
    """[(setting, N, lisa row, baseline row, ratio)] at every point where both sides ran."""
    by_point = an.group_by(base_rows, base_key)
    out = []
    for (setting, n), g in an.group_by(lisa_rows, lambda r: (lisa_setting(r), r.seq_len)).items():
        lr = best(g, quantity)
        br = best(by_point.get(base_key(g[0]), []), quantity)
        if lr is not None and br is not None:
            out.append((setting, n, lr, br, ratio_of(quantity, lr, br)))
    return out


# ---------------------------------------------------------------- the sweep: max and crossover

def sweep_pool(lisa_rows):
    """The LISA rows the sweep max and the crossover use, and whether they are the paper's:
    the first tier with rows, from the paper setting (any W) to any fp32 row."""
    tiers = (lambda r: at_paper_setting(r, any_w=True), like_paper,
             lambda r: r.causal and r.precision == PAPER_PRECISION,
             lambda r: r.precision == PAPER_PRECISION)
    for i, tier in enumerate(tiers):
        pool = [r for r in lisa_rows if tier(r)]
        if pool:
            return pool, i == 0
    return [], False


def sweep_max_text(quantity, found, paper_pool):
    if not found:
        return "-: no point where both ran"
    setting, n, lr, br, ratio = max(found, key=lambda p: (p[4], p[1]))
    w = dict(setting[3:]).get("codewords")
    where = f"N={n}, W={an.fmt_value(w)}" + ("" if paper_pool else f" ({setting_text(setting, False)})")
    reach = "reaches" if round(ratio, 1) >= quantity.claimed else "below"
    return (f"{ratio:.1f}x at {where}: {quantity.show(quantity.value(br))} / "
            f"{quantity.show(quantity.value(lr))} ({kernel_text(lr)} vs {kernel_text(br)}; "
            f"{reach} {quantity.claimed:g}x)" + quantity.noisy_note(lr, br))


def crossover_setting(found, paper_pool):
    """The setting the crossover is read at: the paper's (W=16) when it has points, else
    the one with the most N where both ran (then the largest N)."""
    by_setting = an.group_by(found, lambda p: p[0])
    if paper_pool and PAPER_SETTING in by_setting:
        return PAPER_SETTING
    return max(by_setting, key=lambda s: (len(by_setting[s]), max(p[1] for p in by_setting[s]),
                                          s[1], dict(s[3:]).get("codewords") == 16))


def crossover(series):
    """series: [(N, ratio)], any order. Returns (N or None, kind) with kind 'below' (LISA
    better at every N), 'at' (from N on), 'not reached' (worse at the largest N) or 'none'."""
    series = sorted(series)
    if not series:
        return None, "none"
    if series[-1][1] <= 1.0:
        return None, "not reached"
    k = len(series) - 1
    while k > 0 and series[k - 1][1] > 1.0:
        k -= 1
    return series[k][0], ("below" if k == 0 else "at")


def crossover_text(quantity, found, paper_pool):
    if not found:
        return None, "-: no N where both ran"
    setting = crossover_setting(found, paper_pool)
    series = [(p[1], p[4]) for p in found if p[0] == setting]
    n, kind = crossover(series)
    ns = sorted(s[0] for s in series)
    where = "" if setting == PAPER_SETTING else f" ({setting_text(setting)})"
    text = {"below": f"below the smallest N measured ({ns[0]})",
            "at": f"N={n}",
            "not reached": f"not reached: not {quantity.better} at N={ns[-1]}"}[kind]
    return n, f"{text}; N {ns[0]}..{ns[-1]}, {len(ns)} points{where}"


# ---------------------------------------------------------------- the paper point

def rows_at_paper_point(rows, lisa):
    """Rows at the paper point: for a LISA side its full setting, for a baseline the shape."""
    if lisa:
        return [r for r in rows if at_paper_setting(r) and r.seq_len == PAPER_SEQ_LEN]
    key = (PAPER_SHAPE, True, PAPER_SEQ_LEN, PAPER_PRECISION)
    return [r for r in rows if base_key(r) == key]


def why_missing(side, quantity, at_point, all_rows):
    """Why a side has no ok row at the paper point, quoting the rows' own reasons."""
    name = side.label(quantity)
    if at_point:
        return "; ".join(f"{kernel_text(r)} {r.status} at N={r.seq_len}"
                         + (f": {r.reason}" if r.reason else "") for r in at_point)
    if not all_rows:
        return f"no {name} rows on this device"
    at_setting = lambda r: at_paper_setting(r, any_w=True) if r.family == "lisa" else at_paper_shape(r)
    ran = an.ok_ns([r for r in all_rows if at_setting(r)])
    return (f"{name} not run at the paper point"
            + (f" (largest N it ran at the paper setting: {ran[-1]})" if ran else ""))


def computed_note(quantity, lisa_row, base_at):
    """Memory: a baseline that did not run still has its exact byte count."""
    known = [r for r in base_at if not r.ok and r.peak_bytes]
    if quantity is not MEMORY or lisa_row is None or not known:
        return "", None
    r = min(known, key=lambda x: x.peak_bytes)
    ratio = r.peak_bytes / lisa_row.peak_bytes
    return (f"; from {r.kernel}'s exact byte count ({an.bytes_text(r.peak_bytes)}) the ratio "
            f"would be {ratio:.1f}x (computed, not measured)"), ratio


def paper_verdict(quantity, lisa_side, baseline, lisa_rows, base_rows):
    """(measured text, verdict, reason, ratio, lisa row, baseline row) at the paper point."""
    l_at = rows_at_paper_point(lisa_rows, True)
    b_at = rows_at_paper_point(base_rows, False)
    lr, br = best(l_at, quantity), best(b_at, quantity)
    if lr is not None and br is not None:
        ratio = ratio_of(quantity, lr, br)
        measured = (f"{ratio:.1f}x: {quantity.show(quantity.value(br))} / "
                    f"{quantity.show(quantity.value(lr))}" + quantity.noisy_note(lr, br))
        if round(ratio, 1) >= quantity.claimed:
            return measured, an.REPRODUCED, "", ratio, lr, br
        return measured, an.NOT_REPRODUCED, f"below {quantity.claimed:g}x", ratio, lr, br
    reasons = []
    if lr is None:
        reasons.append(why_missing(lisa_side, quantity, l_at, lisa_rows))
    if br is None:
        reasons.append(why_missing(baseline, quantity, b_at, base_rows))
    note, computed = computed_note(quantity, lr, b_at)
    measured = f"{computed:.1f}x computed, not measured" if computed else "-"
    return measured, an.NOT_MEASURABLE, "; ".join(reasons) + note, None, lr, br


# ---------------------------------------------------------------- the rows

def ratio_claim(dev, quantity, lisa_side, baseline, dev_rows):
    lisa_rows = [r for r in dev_rows if lisa_side.member(r)]
    base_rows = [r for r in dev_rows if baseline.member(r)]
    measured, verdict, reason, ratio, lr, br = paper_verdict(quantity, lisa_side, baseline,
                                                             lisa_rows, base_rows)
    pool, paper_pool = sweep_pool(lisa_rows)
    found = pairs(quantity, pool, base_rows)
    n, cross = crossover_text(quantity, found, paper_pool)
    return RatioClaim(
        claim=quantity.claim, claimed=f"{quantity.claimed:g}x", measured=measured,
        setting=PAPER_POINT_TEXT, device=dev.label, verdict=verdict, reason=reason,
        lisa_side=lisa_side.label(quantity, lr), baseline=baseline.label(quantity, br),
        sweep_max=sweep_max_text(quantity, found, paper_pool), crossover=cross, ratio=ratio,
        crossover_n=n)


def sides_on(dev_rows, sides):
    return [s for s in sides if s.always or any(s.member(r) for r in dev_rows)]


def ratio_claims(rows, devices):
    """Every (claim, LISA side, baseline) row, device by device."""
    out = []
    for dev in devices:
        dev_rows = [r for r in rows if r.device == dev]
        for quantity in (TIME, MEMORY):
            for lisa_side in sides_on(dev_rows, LISA_SIDES):
                for baseline in sides_on(dev_rows, BASELINES):
                    out.append(ratio_claim(dev, quantity, lisa_side, baseline, dev_rows))
    return out


def claims_table(dataset, fits=None):
    rows, devices = dataset.rows, dataset.devices
    if fits is None:
        fits = an.exponent_fits(rows)
    return (ratio_claims(rows, devices) + an.reformer_claims(rows, devices)
            + an.exponent_claims(rows, devices, fits))


RATIO_RULES = [
    f"**LISA {an.SPEED_CLAIM:g}x faster / {an.MEMORY_CLAIM:g}x less memory** (per device: a CPU "
    f"or a GPU, its torch-cpu / torch-cuda peers rows included). One row per (claim, LISA side, "
    f"baseline). LISA sides: attnbench's fastest (time) or smallest (memory) `lisa*` kernel at "
    f"the point, and `{TORCH_LISA}` (the authors' op sequence) where measured. Baselines: the "
    f"paper's (`vanilla_eager`, and `{TORCH_EAGER}` where measured), `vanilla_materialized`, and "
    f"the fastest / smallest exact vanilla measured on the device at the point, peers included "
    f"(family vanilla: `vanilla_*`, `{TORCH_EAGER}`, `torch_sdpa` per SDPA backend; the winner "
    f"is named). Ratios are computed from the raw fields: baseline median / LISA median, "
    f"baseline `peak_bytes` / LISA `peak_bytes` (attnbench: exact; peers: measured), at the same "
    f"batch, heads, N, head_dim, mask and precision, never from `vs_vanilla`.",
    f"*Primary verdict* at the paper's point ({PAPER_POINT_TEXT}; no decay, no projections): "
    f"*reproduced* if the ratio reaches the claim, *not reproduced* if below, *not measurable "
    f"here* if either side has no ok row there, with the reason quoted (skipped for memory with "
    f"its byte figure, not run, error); for memory a skipped baseline's exact byte count gives a "
    f"ratio marked computed, not measured.",
    "*Sweep max* (secondary): the largest ratio over the points of the paper setting (any N and "
    "W), naming N, W and both kernels; without LISA rows at the paper setting, over the causal "
    "B=8 fp32 rows at any shape, else every fp32 row of that side, the setting named.",
    "*Crossover N*: the smallest N from which LISA is faster (time) or smaller (memory) than the "
    "baseline at every larger N where both ran, read at the paper setting with W=16 (else at the "
    "sweep-max pool's setting with the most such N, named); 'below the smallest N measured' when "
    "LISA wins at every N, 'not reached' when it loses at the largest.",
]
VERDICT_RULES = RATIO_RULES + an.OTHER_RULES
