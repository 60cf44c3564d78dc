"""The figures: each function draws one kind of figure for the rows of a Dataset, writes it
as PNG and PDF into the output folder and returns a Figure record (or None with a note of
why it was not drawn). make_figures() draws them all.

  time_vs_n / memory_vs_n   log-log, one line per kernel, causal and bidirectional panels;
                            points that did not run are an x at the top edge (memory: a
                            hollow marker at the exact byte count when the row has one)
  ratios_vs_n               speedup and memory ratio against vanilla, 57x / 78x reference lines
  lisa_vs_codewords / lisa_vs_codebooks   LISA time and memory vs W and vs B
  accuracy_vs_speed         approx_rel_l2 against speedup at one N, one labelled point per kernel
  devices                   grouped bars per kernel, one bar per device, at a common point

A line never mixes settings: the shape (batch, heads, head_dim) is fixed per figure and named
in its title; each kernel's own parameters (B, W, window ...) are fixed per line and named in
the legend (analysis.choose_params_group); and a line never joins two precisions: each
(kernel, precision) is its own line, in the kernel's colour and the precision's line style
(fp32 solid, tf32 dashed, bf16 dotted, fp16 dash-dot), the legend naming the precision when
the figure has more than one.
"""

import textwrap
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter, NullLocator  # noqa: E402
import matplotlib.transforms as mtransforms  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402

import analysis as an  # noqa: E402
from results_io import params_sort_key, value_sort_key  # noqa: E402

# Colour assignment order only (never used to decide what to plot): known kernels get a
# fixed colour so a kernel looks the same in every figure and every report; unknown names
# take the fallback palette in sorted order.
KERNEL_COLOURS = [
    ("vanilla_materialized", "#000000"),
    ("vanilla_eager", "#b15928"),
    ("vanilla_flash", "#7f7f7f"),
    ("lisa_base", "#d62728"),
    ("lisa_mini", "#ff7f0e"),
    ("lisa_soft", "#8c564b"),
    ("linear_elu", "#1f77b4"),
    ("linrec", "#17becf"),
    ("hydra", "#2ca02c"),
    ("performer", "#9467bd"),
    ("efficient_attention", "#bcbd22"),
    ("local_window", "#e377c2"),
    ("reformer_lsh", "#393b79"),
    ("sinkhorn", "#637939"),
    ("lsan_twin", "#d6a21e"),
    ("torch_vanilla_eager", "#6a3d9a"),
    ("torch_sdpa", "#fb9a99"),
    ("torch_lisa_ops", "#a6761d"),
    ("torch_linear_elu", "#66a61e"),
]
FALLBACK_COLOURS = ["#843c39", "#3182bd", "#31a354", "#756bb1", "#e6550d", "#636363",
                    "#9c9ede", "#de9ed6", "#8ca252", "#7b4173", "#5254a3", "#ad494a"]
MARKERS = ["o", "s", "^", "v", "D", "P", "X", "<", ">", "p", "h", "*"]
DEVICE_HATCHES = ["", "//", "..", "xx", "\\\\", "++"]
DEVICE_ALPHAS = [1.0, 0.6, 0.4, 0.8, 0.5, 0.3]
DPI = 130
BAND_BOTTOM = 0.86  # vs-N figures: the top band (axes fraction) where "not run" marks go
# One line style per precision; the colour stays the kernel's.
PRECISION_STYLES = {"fp32": "-", "tf32": "--", "bf16": ":", "fp16": "-."}


@dataclass
class Figure:
    stem: str  # file name without extension, under figures/
    title: str
    caption: str


class KernelStyle:
    def __init__(self, kernels):
        known = [k for k, _ in KERNEL_COLOURS]
        colours = dict(KERNEL_COLOURS)
        unknown = sorted(k for k in set(kernels) if k not in colours)
        for i, k in enumerate(unknown):
            colours[k] = FALLBACK_COLOURS[i % len(FALLBACK_COLOURS)]
        self.order = known + unknown
        self.colours = colours
        self.markers = {k: MARKERS[i % len(MARKERS)] for i, k in enumerate(self.order)}

    def colour(self, k):
        return self.colours[k]

    def marker(self, k):
        return self.markers[k]

    def sort(self, kernels):
        return sorted(set(kernels), key=lambda k: self.order.index(k))


# ---------------------------------------------------------------- axis helpers

def blend_white(colour, t):
    r, g, b = to_rgb(colour)
    return (r + (1 - r) * t, g + (1 - g) * t, b + (1 - b) * t)


def n_label(n):
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024}K"
    return str(n)


def time_label(ms, _pos=None):
    if ms >= 1000:
        return f"{ms / 1000:g} s"
    if ms >= 1:
        return f"{ms:g} ms"
    if ms >= 1e-3:
        return f"{ms * 1e3:g} µs"
    return f"{ms * 1e6:g} ns"


def bytes_label(b, _pos=None):
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if b >= scale:
            return f"{b / scale:g} {unit}"
    return f"{b:g} B"


def ratio_label(x, _pos=None):
    return f"{x:g}×"


def set_n_axis(ax, ns, label="sequence length N (tokens)", base=2):
    ax.set_xscale("log", base=base)
    ns = sorted(set(ns))
    if ns:
        step = 1 if len(ns) <= 10 else 2
        ticks = ns[::step]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: n_label(int(round(v)))))
        ax.xaxis.set_minor_locator(NullLocator())
        lo, hi = ns[0], ns[-1]
        if lo == hi:
            lo, hi = lo / 2, hi * 2
        ax.set_xlim(lo / 1.3, hi * 1.3)
    ax.set_xlabel(label)


def set_log_y(ax, formatter):
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, numticks=12))
    ax.yaxis.set_major_formatter(FuncFormatter(formatter))
    ax.yaxis.set_minor_formatter(NullFormatter())


def tune_log_ticks(ax, which="y"):
    """Once the limits are set: a log axis spanning less than ~1.5 decades gets ticks at
    1, 2, 5 (or every integer) x 10^k, so it never shows a single labelled tick."""
    axis = ax.yaxis if which == "y" else ax.xaxis
    lo, hi = (ax.get_ylim() if which == "y" else ax.get_xlim())
    if lo <= 0 or hi <= 0:
        return
    span = hi / lo
    if span < 4:
        subs = tuple(float(i) for i in range(1, 10))
    elif span < 30:
        subs = (1.0, 2.0, 5.0)
    else:
        return
    axis.set_major_locator(LogLocator(base=10, subs=subs, numticks=30))
    axis.set_minor_locator(NullLocator())


def log_limits(values, top_room=1.0, floor=None):
    vals = [v for v in values if v and v > 0]
    if not vals:
        return None
    lo, hi = min(vals), max(vals)
    if floor is not None:
        lo = min(lo, floor)
    span = max(hi / lo, 10.0)
    return lo / span ** 0.08, hi * span ** (0.08 + top_room)


def save(fig, outdir, stem):
    fig.savefig(outdir / f"{stem}.png", dpi=DPI, bbox_inches="tight")
    fig.savefig(outdir / f"{stem}.pdf", bbox_inches="tight")
    plt.close(fig)


def add_notes(fig, lines, y=None, width=120, max_lines=8):
    """Notes under the axes (what did not run and why)."""
    if not lines:
        return
    wrapped = []
    for ln in lines:
        wrapped += textwrap.wrap(ln, width=width, subsequent_indent="    ")
    if len(wrapped) > max_lines:
        more = len(wrapped) - (max_lines - 1)
        wrapped = wrapped[:max_lines - 1] + [f"... {more} more line(s): see REPORT.md"]
    fig.text(0.01, -0.01 if y is None else y, "\n".join(wrapped), ha="left", va="top",
             fontsize=8, color="#333333")


def shorten(text, n=70):
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[:n - 3] + "..."


def not_run_notes(entries):
    """entries: (panel, kernel, status, N, reason) -> one line per (panel, kernel, status,
    reason) listing its N values."""
    grouped = {}
    for panel, kernel, status, n, reason in entries:
        grouped.setdefault((panel, kernel, status, shorten(reason) or "no reason given"), []).append(n)
    lines = []
    for (panel, kernel, status, reason), ns in grouped.items():
        ns = sorted(set(ns))
        if len(ns) > 6:
            where = f"N={n_label(ns[0])} .. {n_label(ns[-1])} ({len(ns)} values)"
        else:
            where = "N=" + ", ".join(n_label(n) for n in ns)
        lines.append(f"{panel + ': ' if panel else ''}{kernel} {status} at {where} ({reason})")
    return lines


def legend_outside(fig, handles, labels, ncol=1):
    fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 0.93), frameon=False,
               fontsize=8.5, ncol=ncol, borderaxespad=0.0)


PANEL_NAME = {True: "causal", False: "bidirectional"}


def kernel_label(kernel, params, precision=None):
    """'lisa_base (B=8, W=16)', with ', bf16' when the figure has several precisions."""
    inside = ([an.params_text(params)] if params else []) + ([precision] if precision else [])
    return kernel + (f" ({', '.join(inside)})" if inside else "")


def precision_style(precision):
    """The line style of a precision (colours stay per kernel)."""
    return PRECISION_STYLES.get(precision, PRECISION_STYLES["fp32"])


def sorted_lines(style, keys):
    """Line keys (kernel, precision, ...) in the kernels' colour order, then by precision."""
    return sorted(keys, key=lambda k: (style.order.index(k[0]), an.precision_order(k[1])) + k[2:])


def line_text(key, params, multi_precision):
    return kernel_label(key[0], params, key[1] if multi_precision else None)


def several_precisions(rows):
    return len({r.precision for r in rows}) > 1


# ---------------------------------------------------------------- time / memory vs N

def lines_for_shape(rows, device, shape):
    """{(kernel, precision): (params, rows)}: each kernel's most-measured parameter setting
    per precision at this device and shape, both causal flags (so a line keeps its setting
    across panels) and never two precisions on one line."""
    return an.line_groups([r for r in rows if r.device == device and r.shape == shape])


@dataclass
class VsN:
    """What one vs-N figure draws: its lines and how to read a row."""
    lines: dict
    is_time: bool
    vanillas: set
    multi: bool

    def value(self, r):
        return r.median_ms if self.is_time else r.peak_bytes

    def marked_in_band(self, r):
        """A point that did not run goes to the grey band unless memory knows its bytes."""
        return self.is_time or not r.peak_bytes


def draw_vs_n_panel(ax, spec, style, causal, legend, notes, panel):
    """One panel (causal or bidirectional): a line per (kernel, precision), the points that
    did not run as hollow markers (known bytes) or as x in the top band. Returns which
    kinds of marks it drew."""
    failed = []
    for key in sorted_lines(style, spec.lines):
        params, g = spec.lines[key]
        g = [r for r in g if r.causal == causal]
        ok = sorted((r.seq_len, spec.value(r)) for r in g if r.ok)
        c, m = style.colour(key[0]), style.marker(key[0])
        label = line_text(key, params, spec.multi)
        if ok:
            # The reference drawn wide and underneath, so a kernel that coincides with it
            # does not hide it.
            ref = key[0] in spec.vanillas
            h, = ax.plot([p[0] for p in ok], [p[1] for p in ok], color=c, marker=m,
                         ms=6 if ref else 5, lw=3.2 if ref else 1.6, zorder=1.8 if ref else 2,
                         ls=precision_style(key[1]))
            legend[key] = (h, label)
        bad = sorted((r for r in g if not r.ok), key=lambda r: r.seq_len)
        if bad:
            failed.append((key, bad, ok))
            legend.setdefault(key, (Line2D([], [], color=c, marker=m, lw=1.6,
                                           ls=precision_style(key[1])), label + " (did not run)"))
        short = kernel_label(key[0], None, key[1] if spec.multi else None)
        notes += [(panel, short, r.status, r.seq_len, r.reason) for r in bad]
    return draw_not_run(ax, spec, style, failed)


def draw_not_run(ax, spec, style, failed):
    """Marks for the points that did not run; returns (any in the band, any hollow)."""
    band = [f for f in failed if any(spec.marked_in_band(r) for r in f[1])]
    if band:
        # A band above the data, so a "not run" mark is never read as a value.
        ax.add_patch(Rectangle((0, BAND_BOTTOM), 1, 1 - BAND_BOTTOM, transform=ax.transAxes,
                               facecolor="#e8e8e8", edgecolor="none", zorder=0))
    trans = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
    slot = {f[0]: i for i, f in enumerate(band)}
    hollow = False
    for key, bad, ok in failed:
        c, m = style.colour(key[0]), style.marker(key[0])
        for r in bad:
            if spec.marked_in_band(r):
                ax.plot([r.seq_len], [0.955 - 0.03 * (slot[key] % 4)], marker="x", ms=7, mew=2.0,
                        color=c, transform=trans, clip_on=False, ls="none")
                continue
            hollow = True
            ax.plot([r.seq_len], [r.peak_bytes], marker=m, ms=6, mfc="white", mec=c, ls="none")
            if ok and ok[-1][0] < r.seq_len:
                ax.plot([ok[-1][0], r.seq_len], [ok[-1][1], r.peak_bytes], color=c, lw=1.0, ls=":")
    return bool(band), hollow


def vs_n_y_axis(ax, spec, lims, any_band):
    fmt = time_label if spec.is_time else bytes_label
    set_log_y(ax, fmt)
    if lims:
        ax.set_ylim(*lims)
    tune_log_ticks(ax)
    if any_band and lims:
        # No value labels next to the band: its marks are not values.
        lo, hi = lims
        cut = lo * (hi / lo) ** BAND_BOTTOM
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, p: "" if v > cut else fmt(v)))
    ax.set_ylabel("median time per call" if spec.is_time
                  else "peak memory (inputs + outputs + workspace)")


def vs_n_legend(fig, style, legend, any_band, any_hollow):
    keys = sorted_lines(style, legend)
    hs, ls = [legend[k][0] for k in keys], [legend[k][1] for k in keys]
    if any_band:
        hs.append(Line2D([], [], color="#444444", marker="x", ls="none", mew=2))
        ls.append("x in the grey band: point not run\n(skipped or error, see notes)")
    if any_hollow:
        hs.append(Line2D([], [], color="#444444", marker="o", mfc="white", ls="none"))
        ls.append("hollow: memory it would need\n(exact byte count; not run)")
    legend_outside(fig, hs, ls)


def fig_vs_n(ds, style, outdir, device, shape, quantity):
    lines = lines_for_shape(ds.rows, device, shape)
    all_rows = [r for _, g in lines.values() for r in g]
    spec = VsN(lines, quantity == "time", {r.source.vanilla_kernel for r in all_rows},
               several_precisions(all_rows))
    panels = [c for c in (True, False) if any(r.causal == c for r in all_rows)]
    yvals = [spec.value(r) for r in all_rows if r.ok or not spec.marked_in_band(r)]
    needs_band = any(not r.ok and spec.marked_in_band(r) for r in all_rows)
    lims = log_limits(yvals, top_room=0.35 if needs_band else 0.05)
    fig, axs = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 4.4), sharey=True,
                            squeeze=False)
    legend, notes, any_band, any_hollow = {}, [], False, False
    for ax, causal in zip(axs[0], panels):
        band, hollow = draw_vs_n_panel(ax, spec, style, causal, legend, notes,
                                       PANEL_NAME[causal] if len(panels) > 1 else "")
        any_band, any_hollow = any_band or band, any_hollow or hollow
        set_n_axis(ax, [r.seq_len for r in all_rows])
        ax.set_title(PANEL_NAME[causal], fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
    vs_n_y_axis(axs[0][0], spec, lims, any_band)
    vs_n_legend(fig, style, legend, any_band, any_hollow)
    what = "Median time" if spec.is_time else "Peak memory"
    title = f"{what} vs sequence length on {device.label}"
    fig.suptitle(f"{title}\nfixed: {an.shape_text(shape)}", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    add_notes(fig, ["Not run:"] + ["  " + ln for ln in not_run_notes(notes)] if notes else [],
              width=60 * len(panels) + 50)
    stem = f"{quantity}_vs_n__{device.slug}__b{shape[0]}_h{shape[1]}_dh{shape[2]}"
    save(fig, outdir, stem)
    caption = (f"{what} against N, log-log, {an.shape_text(shape)}; each kernel at the parameter "
               f"setting named in the legend.")
    if spec.multi:
        caption += " Line style = precision (fp32 solid, tf32 dashed, bf16 dotted, fp16 dash-dot)."
    if notes:
        caption += " Points that did not run are marked and listed under the plot."
    return Figure(stem, f"{title} ({an.shape_text(shape)})", caption)


# ---------------------------------------------------------------- ratios vs N

RATIO_ROWS = (("speedup", an.SPEED_CLAIM, "speedup (vanilla time / kernel time)"),
              ("memory_ratio", an.MEMORY_CLAIM, "memory ratio (vanilla peak / kernel peak)"))


def draw_ratio_lines(ax, style, with_ratio, causal, field, vanillas, legend):
    """One line per (kernel, precision) of its vs_vanilla field; returns the values drawn.
    With several vanilla kernels (attnbench and peers files) the label names its own."""
    multi = several_precisions([r for _, g in with_ratio.values() for r in g])
    vals = []
    for key in sorted_lines(style, with_ratio):
        params, g = with_ratio[key]
        pts = sorted((r.seq_len, getattr(r, field)) for r in g
                     if r.causal == causal and getattr(r, field) is not None)
        if not pts or key[0] in vanillas:
            continue
        vals += [p[1] for p in pts]
        h, = ax.plot([p[0] for p in pts], [p[1] for p in pts], color=style.colour(key[0]),
                     marker=style.marker(key[0]), ms=5, lw=1.6, ls=precision_style(key[1]))
        own = g[0].source.vanilla_kernel
        legend[key] = (h, line_text(key, params, multi) + (f" vs {own}" if len(vanillas) > 1 else ""))
    return vals


def draw_claim_and_gaps(ax, claim, vanilla_ns):
    """The claim and parity lines; shaded where vanilla did not run (no ratio there)."""
    ax.axhline(claim, color="#b22222", ls="--", lw=1.2, zorder=1.5)
    ax.text(0.015, claim * 1.08, f"LISA claim {claim:g}×", color="#b22222", fontsize=8,
            va="bottom", ha="left", transform=mtransforms.blended_transform_factory(
                ax.transAxes, ax.transData),
            bbox=dict(facecolor="white", edgecolor="none", alpha=0.75, pad=1.0))
    ax.axhline(1.0, color="#555555", ls=":", lw=1.0, zorder=1.5)
    tune_log_ticks(ax)
    van_ok, van_bad = vanilla_ns
    first_bad = [n for n in van_bad if not van_ok or n > max(van_ok)]
    if first_bad:
        x0, x1 = first_bad[0] / 1.15, first_bad[-1] * 1.3
        ax.axvspan(x0, x1, color="#cccccc", alpha=0.45, lw=0)
        ax.text((x0 * x1) ** 0.5, 0.5, "vanilla not run: no ratio", fontsize=7.5,
                rotation=90, transform=mtransforms.blended_transform_factory(
                    ax.transData, ax.transAxes), va="center", ha="center", color="#333333")


def fig_ratios(ds, style, outdir, device, shape):
    lines = lines_for_shape(ds.rows, device, shape)
    with_ratio = {k: v for k, v in lines.items()
                  if any(r.speedup is not None or r.memory_ratio is not None for r in v[1])}
    if not with_ratio:
        return None
    all_rows = [r for _, g in lines.values() for r in g]
    panels = [c for c in (True, False) if any(r.causal == c for _, g in with_ratio.values() for r in g)]
    vanillas = sorted({r.source.vanilla_kernel for _, g in with_ratio.values() for r in g})
    fig, axs = plt.subplots(2, len(panels), figsize=(5.6 * len(panels), 7.4), sharex=True,
                            squeeze=False)
    legend = {}
    for col, causal in enumerate(panels):
        van = [r for r in all_rows if r.kernel in vanillas and r.causal == causal]
        vanilla_ns = ([r.seq_len for r in van if r.ok], sorted(r.seq_len for r in van if not r.ok))
        for row, (field, claim, ylab) in enumerate(RATIO_ROWS):
            ax = axs[row][col]
            vals = draw_ratio_lines(ax, style, with_ratio, causal, field, vanillas, legend)
            set_log_y(ax, ratio_label)
            lims = log_limits(vals + [1.0, claim * 1.4], top_room=0.0)
            if lims:
                ax.set_ylim(*lims)
            draw_claim_and_gaps(ax, claim, vanilla_ns)
            ax.set_ylabel(ylab, fontsize=9)
            ax.grid(True, which="major", alpha=0.3)
            if row == 0:
                ax.set_title(PANEL_NAME[causal], fontsize=10)
        set_n_axis(axs[1][col], [r.seq_len for r in all_rows])
        axs[0][col].set_xlabel("")
    keys = sorted_lines(style, legend)
    hs = [legend[k][0] for k in keys] + [Line2D([], [], color="#b22222", ls="--"),
                                         Line2D([], [], color="#555555", ls=":")]
    ls = [legend[k][1] for k in keys] + ["LISA's claim: 57× (speed), 78× (memory)",
                                         "parity with vanilla (1×)"]
    legend_outside(fig, hs, ls)
    title = f"Speedup and memory ratio against {', '.join(vanillas)} on {device.label}"
    fig.suptitle(f"{title}\nfixed: {an.shape_text(shape)}; ratio at the same point of the sweep",
                 fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    stem = f"ratios_vs_n__{device.slug}__b{shape[0]}_h{shape[1]}_dh{shape[2]}"
    save(fig, outdir, stem)
    return Figure(stem, f"{title} ({an.shape_text(shape)})",
                  f"vs_vanilla ratios against N (log y) with LISA's claimed {an.SPEED_CLAIM:g}x and "
                  f"{an.MEMORY_CLAIM:g}x as dashed lines; shaded: vanilla did not run, so no ratio. "
                  f"Each file's ratios are against its own vanilla kernel (peers files: "
                  f"torch_vanilla_eager); the claims table computes every pair itself.")


# ---------------------------------------------------------------- LISA vs W / B

MAX_SWEEP_LINES = 8
SWEEP_QUANTITIES = ((lambda r: r.median_ms, "median time per call", time_label),
                    (lambda r: r.peak_bytes, "peak memory (inputs + outputs + workspace)", bytes_label))


def sweep_point(lisa, axis):
    """The (causal, N) where the most values of `axis` ran, and its lines: {(kernel,
    precision, other parameters): rows}, so a line never mixes settings or precisions."""
    best = None
    for (causal, n), g in an.group_by(lisa, lambda r: (r.causal, r.seq_len)).items():
        lines = an.group_by(g, lambda r: (r.kernel, r.precision,
                                          tuple(p for p in r.method_params if p[0] != axis)))
        widest = max(len({r.axes[axis] for r in lg if r.ok}) for lg in lines.values())
        score = (widest, len(lines), n, causal)
        if widest >= 2 and (best is None or score > best[0]):
            best = (score, causal, n, lines)
    return best[1:] if best else None


def sweep_line_label(key, multi):
    return kernel_label(key[0], key[2], key[1] if multi else None)


def draw_sweep_lines(axs, style, lines, shown, axis, multi):
    """Same hue per kernel, darker to lighter (and filled, hollow) along the other codebook
    axis; the line style is the precision."""
    per_kernel = an.group_by(shown, lambda k: k[0])
    for key in shown:
        i = per_kernel[key[0]].index(key)
        t = 0.55 * i / max(len(per_kernel[key[0]]) - 1, 1)
        colour = blend_white(style.colour(key[0]), t)
        for ax, (val, _, _) in zip(axs, SWEEP_QUANTITIES):
            pts = sorted(((r.axes[axis], val(r)) for r in lines[key] if r.ok),
                         key=lambda p: value_sort_key(p[0]))
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], color=colour,
                        marker=style.marker(key[0]), ms=5, lw=1.6, mfc=colour if i % 2 == 0 else "white",
                        ls=precision_style(key[1]), label=sweep_line_label(key, multi))


def sweep_notes(lines, shown, single, axis, sym, style):
    notes = []
    if len(lines) > len(shown):
        notes.append(f"{len(lines) - len(shown)} more line(s) not drawn; see the tables in REPORT.md.")
    if single:
        notes.append(f"Measured at one {sym} only here, not drawn: " + "; ".join(
            sweep_line_label(k, True) for k in sorted_lines(style, single)) + ".")
    for key in shown:
        notes += [f"Not run: {sweep_line_label(key, True)} {r.status} at {sym}="
                  f"{an.fmt_value(r.axes[axis])} ({shorten(r.reason) or 'no reason given'})"
                  for r in lines[key] if not r.ok]
    return notes


def draw_sweep_reference(axs, style, van_all, precisions, notes):
    """vanilla_materialized at the same point, one thin line per precision drawn."""
    for r in van_all:
        if r.precision not in precisions:
            continue
        if not r.ok:
            notes.append(f"{r.kernel} {r.status} at this point "
                         f"({shorten(r.reason) or 'no reason given'}): no reference line")
            continue
        for ax, (val, _, _) in zip(axs, SWEEP_QUANTITIES):
            ax.axhline(val(r), color=style.colour(r.kernel), ls=precision_style(r.precision),
                       lw=1.0, label=kernel_label(r.kernel, None, r.precision if len(precisions) > 1
                                                  else None) + " at this point")


def fig_lisa_sweep(ds, style, outdir, device, shape, axis):
    """LISA time and memory against `axis` (codewords W or codebooks B) at one shape and one
    (causal, N): the pair where the most values of `axis` ran. One line per kernel, precision
    and value of the other codebook axis (a B x W grid gives one line per B)."""
    other, (sym, other_sym) = ("codebooks", ("W", "B")) if axis == "codewords" else ("codewords", ("B", "W"))
    lisa = [r for r in ds.rows if r.device == device and r.shape == shape and an.is_lisa(r.kernel)
            and axis in r.axes]
    found = sweep_point(lisa, axis)
    if found is None:
        return None
    causal, n, lines = found
    # A "line" of one point says nothing about the trend: left out, and said so.
    single = [k for k, lg in lines.items() if len({r.axes[axis] for r in lg if r.ok}) < 2]
    drawable = [k for k in lines if k not in single]
    # The most complete lines first, at most MAX_SWEEP_LINES.
    shown = sorted(drawable, key=lambda k: (style.order.index(k[0]), an.precision_order(k[1]),
                                            -len({r.axes[axis] for r in lines[k] if r.ok}),
                                            params_sort_key(k[2])))[:MAX_SWEEP_LINES]
    precisions = {k[1] for k in shown}
    fig, axs = plt.subplots(1, 2, figsize=(10.5, 4.2))
    draw_sweep_lines(axs, style, lines, shown, axis, len(precisions) > 1)
    notes = sweep_notes({k: lines[k] for k in drawable}, shown, single, axis, sym, style)
    draw_sweep_reference(axs, style, [r for r in ds.rows if r.device == device
                                      and r.kernel == an.CLAIM_VANILLA and r.shape == shape
                                      and r.causal == causal and r.seq_len == n], precisions, notes)
    xs = sorted({r.axes[axis] for k in shown for r in lines[k] if isinstance(r.axes[axis], (int, float))})
    for ax, (_, ylab, fmt) in zip(axs, SWEEP_QUANTITIES):
        set_n_axis(ax, xs, label=f"{axis} {sym}", base=2)
        set_log_y(ax, fmt)
        tune_log_ticks(ax)
        ax.set_ylabel(ylab)
        ax.grid(True, which="major", alpha=0.3)
    legend_outside(fig, *axs[0].get_legend_handles_labels())
    fixed = f"{an.shape_text(shape)}, {PANEL_NAME[causal]}, N={n}"
    others = {dict(k[2]).get(other) for k in shown}
    if len(others) == 1 and None not in others:
        fixed += f", {other} {other_sym}={an.fmt_value(others.pop())}"
    what = "codebook size W (codewords)" if axis == "codewords" else "number of codebooks B"
    title = f"LISA time and memory vs {what} on {device.label}"
    fig.suptitle(f"{title}\nfixed: {fixed}", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    add_notes(fig, notes)
    stem = f"lisa_vs_{axis}__{device.slug}__b{shape[0]}_h{shape[1]}_dh{shape[2]}"
    save(fig, outdir, stem)
    return Figure(stem, f"{title} ({an.shape_text(shape)})",
                  f"fixed: {fixed}; each line fixes the kernel's other parameters (legend); line "
                  f"style = precision. Thin horizontal: {an.CLAIM_VANILLA} at the same point, "
                  f"where it ran.")


# ---------------------------------------------------------------- accuracy vs speed

def accuracy_panels(lines):
    """[(causal, N, [(line key, params, row)])]: per mask, the N where the most lines have
    both a speedup and an approximation error (at least two)."""
    panels = []
    for causal in (True, False):
        usable = {}
        for key, (params, g) in lines.items():
            for r in g:
                if r.causal == causal and r.ok and r.speedup and r.approx_rel_l2 and r.approx_rel_l2 > 0:
                    usable.setdefault(r.seq_len, []).append((key, params, r))
        if not usable:
            continue
        n = max(usable, key=lambda k: (len(usable[k]), k))
        if len(usable[n]) >= 2:
            panels.append((causal, n, sorted(usable[n], key=lambda p: p[2].speedup)))
    return panels


def draw_accuracy_panel(ax, style, causal, n, pts):
    xs = [p[2].speedup for p in pts] + [1.0]
    ys = [p[2].approx_rel_l2 for p in pts]
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(ratio_label))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(*log_limits(xs, top_room=0.3))
    set_log_y(ax, lambda v, _p=None: f"{v:g}")
    ax.set_ylim(*log_limits(ys, top_room=0.15))
    tune_log_ticks(ax, "x")
    tune_log_ticks(ax, "y")
    ax.axvline(1.0, color="#555555", ls=":", lw=1.0)
    ax.text(1.0, 0.02, " vanilla (1×)", transform=mtransforms.blended_transform_factory(
        ax.transData, ax.transAxes), fontsize=8, color="#555555")
    for key, _, r in pts:
        ax.plot([r.speedup], [r.approx_rel_l2], marker=style.marker(key[0]), ms=8,
                color=style.colour(key[0]), ls="none")
    ax.set_xlabel(f"speedup against {pts[0][2].source.vanilla_kernel} (× faster)")
    ax.set_ylabel("approximation error (relative L2 vs softmax)")
    ax.set_title(f"{PANEL_NAME[causal]}, N={n}", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)


def fig_accuracy(ds, style, outdir, device, shape):
    panels = accuracy_panels(lines_for_shape(ds.rows, device, shape))
    if not panels:
        return None
    multi = several_precisions([p[2] for _, _, pts in panels for p in pts])
    fig, axs = plt.subplots(1, len(panels), figsize=(5.8 * len(panels), 4.8), squeeze=False)
    for ax, (causal, n, pts) in zip(axs[0], panels):
        draw_accuracy_panel(ax, style, causal, n, pts)
    title = f"Accuracy against speed on {device.label}"
    fig.suptitle(f"{title}\nfixed: {an.shape_text(shape)}; lower right is better", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    for ax, (_, _, pts) in zip(axs[0], panels):  # after the layout, which moves the axes
        place_labels(fig, ax, [(kernel_label(k[0], None, k[1] if multi else None), r.speedup,
                                r.approx_rel_l2, style.colour(k[0])) for k, _, r in pts])
    settings = {p[0]: p[1] for _, _, pts in panels for p in pts if p[1]}
    if settings:
        add_notes(fig, ["Kernel settings: " + "; ".join(
            f"{line_text(k, None, multi)} {an.params_text(settings[k])}"
            for k in sorted_lines(style, settings))], width=int(75 * len(panels)))
    stem = f"accuracy_vs_speed__{device.slug}__b{shape[0]}_h{shape[1]}_dh{shape[2]}"
    save(fig, outdir, stem)
    return Figure(stem, f"{title} ({an.shape_text(shape)})",
                  "One point per kernel (and precision) at the N where the most kernels have both "
                  "a speedup and an approximation error (vanilla kernels are the reference and "
                  "have no error).")


def place_labels(fig, ax, points, fontsize=8):
    """Labels each point with its kernel name at the first of a few offsets where the text
    overlaps no other label, no marker and stays inside the axes."""
    renderer = fig.canvas.get_renderer()
    offsets = [(7, 5, "left", "bottom"), (7, -5, "left", "top"), (-7, 5, "right", "bottom"),
               (-7, -5, "right", "top"), (0, 9, "center", "bottom"), (0, -9, "center", "top"),
               (9, 14, "left", "bottom"), (9, -14, "left", "top"), (-9, 14, "right", "bottom"),
               (-9, -14, "right", "top")]
    marker_boxes = []
    for _, x, y, _ in points:
        px, py = ax.transData.transform((x, y))
        marker_boxes.append(mtransforms.Bbox.from_extents(px - 5, py - 5, px + 5, py + 5))
    axes_box = ax.get_window_extent(renderer)
    placed = []
    for name, x, y, colour in points:
        best = None
        for dx, dy, ha, va in offsets:
            t = ax.annotate(name, (x, y), xytext=(dx, dy), textcoords="offset points",
                            fontsize=fontsize, color=colour, ha=ha, va=va)
            box = t.get_window_extent(renderer).expanded(1.12, 1.35)
            clash = sum(box.overlaps(b) for b in placed + marker_boxes)
            outside = not (axes_box.x0 <= box.x0 and box.x1 <= axes_box.x1
                           and axes_box.y0 <= box.y0 and box.y1 <= axes_box.y1)
            score = clash + (2 if outside else 0)
            if best is None or score < best[0]:
                if best is not None:
                    best[1].remove()
                best = (score, t, box)
            else:
                t.remove()
            if score == 0:
                break
        placed.append(best[2])


# ---------------------------------------------------------------- per device

def setting_key(r):
    """A kernel's setting: its precision and parameters (a bar never mixes them)."""
    return (r.precision, r.method_params)


def setting_sort_key(setting):
    return (an.precision_order(setting[0]), params_sort_key(setting[1]))


def devices_point(ok):
    """The (shape, causal, N) where the most kernels ran on two or more devices, each kernel
    at the setting measured on the most devices there (its most common one on a tie):
    ((shape, causal, N), {kernel: (setting, {device: row})}) or None."""
    usual = {}
    for kernel, kg in an.group_by(ok, lambda r: r.kernel).items():
        counts = an.group_by(kg, setting_key)
        usual[kernel] = min(counts, key=lambda p: (-len(counts[p]), setting_sort_key(p)))
    best = None
    for key, g in an.group_by(ok, lambda r: (r.shape, r.causal, r.seq_len)).items():
        per_kernel = {}
        for kernel, kg in an.group_by(g, lambda r: r.kernel).items():
            by_setting = an.group_by(kg, setting_key)
            setting, prow = min(by_setting.items(), key=lambda kv: (
                -len({r.device for r in kv[1]}), kv[0] != usual[kernel], setting_sort_key(kv[0])))
            by_dev = {r.device: r for r in prow}
            if len(by_dev) >= 2:
                per_kernel[kernel] = (setting, by_dev)
        score = (len(per_kernel), sum(len(v[1]) for v in per_kernel.values()), key[2], key[1])
        if per_kernel and (best is None or score > best[0]):
            best = (score, key, per_kernel)
    return best[1:] if best else None


def fig_devices(ds, style, outdir):
    devices = ds.devices
    if len(devices) < 2:
        return None
    found = devices_point([r for r in ds.rows if r.ok])
    if found is None:
        return None
    (shape, causal, n), per_kernel = found
    kernels = style.sort(per_kernel)
    devs = [d for d in devices if any(d in per_kernel[k][1] for k in kernels)]
    nd = len(devs)
    width = 0.8 / nd
    fig, axs = plt.subplots(2, 1, figsize=(max(7.0, 0.55 * len(kernels) * nd + 3), 7.2), sharex=True)
    for j, d in enumerate(devs):
        for i, k in enumerate(kernels):
            r = per_kernel[k][1].get(d)
            x = i + (j - (nd - 1) / 2) * width
            for ax, v in zip(axs, (r.median_ms if r else None, r.speedup if r else None)):
                if v is None:
                    ax.text(x, 0.02, "n/a", rotation=90, ha="center", va="bottom", fontsize=7,
                            transform=mtransforms.blended_transform_factory(ax.transData, ax.transAxes))
                    continue
                ax.bar(x, v, width=width * 0.95, color=style.colour(k), alpha=DEVICE_ALPHAS[j % 6],
                       hatch=DEVICE_HATCHES[j % 6], edgecolor="#222222", lw=0.6)
    set_log_y(axs[0], time_label)
    tune_log_ticks(axs[0])
    axs[0].set_ylabel("median time per call")
    set_log_y(axs[1], ratio_label)
    tune_log_ticks(axs[1])
    axs[1].axhline(1.0, color="#555555", ls=":", lw=1.0)
    axs[1].set_ylabel("speedup against vanilla")
    for ax in axs:
        ax.grid(True, axis="y", which="major", alpha=0.3)
    axs[1].set_xticks(range(len(kernels)))
    multi = len({per_kernel[k][0][0] for k in kernels}) > 1
    axs[1].set_xticklabels([kernel_label(k, per_kernel[k][0][1], per_kernel[k][0][0] if multi else None)
                            for k in kernels], rotation=30, ha="right", fontsize=8.5)
    hs = [Patch(facecolor="#bbbbbb", alpha=DEVICE_ALPHAS[j % 6], hatch=DEVICE_HATCHES[j % 6],
                edgecolor="#222222") for j in range(nd)]
    legend_outside(fig, hs, [d.label for d in devs])
    fixed = f"{an.shape_text(shape)}, {PANEL_NAME[causal]}, N={n}"
    title = "The same kernels on each device"
    fig.suptitle(f"{title}\nfixed: {fixed}; bar colour = kernel, shade/hatch = device", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    stem = "devices"
    save(fig, outdir, stem)
    return Figure(stem, f"{title} ({fixed})",
                  f"Median time and speedup against vanilla per device at a point measured on "
                  f"several devices ({fixed}); n/a: not run on that device.")


# ---------------------------------------------------------------- all of them

def make_figures(ds, outdir):
    """Returns (figures, notes): the figures drawn and one line for each figure left out."""
    outdir.mkdir(parents=True, exist_ok=True)
    style = KernelStyle(ds.kernels)
    figs, notes = [], []
    if not any(r.ok for r in ds.rows):
        return figs, ["No row with status ok: no figure can be drawn."]
    for device in ds.devices:
        shapes, dropped = an.shapes_for_device(ds.rows, device)
        if not shapes:
            notes.append(f"{device.label}: no kernel ran at two or more N at one setting; "
                         f"no vs-N figures.")
        for s in dropped:
            notes.append(f"{device.label}: {an.shape_text(s)} has vs-N data but only the "
                         f"{len(shapes)} most measured settings get figures; see the tables.")
        for shape in shapes:
            figs.append(fig_vs_n(ds, style, outdir, device, shape, "time"))
            figs.append(fig_vs_n(ds, style, outdir, device, shape, "memory"))
            f = fig_ratios(ds, style, outdir, device, shape)
            if f:
                figs.append(f)
            else:
                notes.append(f"{device.label}, {an.shape_text(shape)}: no speedup or memory "
                             f"ratio against vanilla (vanilla did not run); no ratio figure.")
            f = fig_accuracy(ds, style, outdir, device, shape)
            if f:
                figs.append(f)
            else:
                notes.append(f"{device.label}, {an.shape_text(shape)}: fewer than two kernels "
                             f"with both a speedup and an approximation error at one N; no "
                             f"accuracy-vs-speed figure.")
        lisa_shapes = sorted({r.shape for r in ds.rows if r.device == device and an.is_lisa(r.kernel)})
        for axis in ("codewords", "codebooks"):
            drawn = [f for f in (fig_lisa_sweep(ds, style, outdir, device, s, axis)
                                 for s in lisa_shapes) if f]
            figs += drawn
            if not lisa_shapes and axis == "codewords":
                notes.append(f"{device.label}: no LISA rows; no LISA-vs-W or LISA-vs-B figure.")
            if lisa_shapes and not drawn:
                notes.append(f"{device.label}: the results do not vary {axis} for LISA at a "
                             f"fixed point; no LISA-vs-{'W' if axis == 'codewords' else 'B'} figure.")
    f = fig_devices(ds, style, outdir)
    if f:
        figs.append(f)
    elif len(ds.devices) < 2:
        notes.append("Results from one device only; no per-device comparison.")
    else:
        notes.append("No point was measured on two or more devices; no per-device comparison.")
    return figs, notes
