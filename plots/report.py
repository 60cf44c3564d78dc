"""REPORT.md: the environment of each results file (torch's version for peers files), the
claims tables with verdicts (claims.claims_table) and the memory paragraph of each device
(buffers.memory_paragraphs), the fitted scaling exponents, the figures, a table per preset
and the rows that did not run; every table names the precision."""

import datetime
import os

import analysis as an
import buffers
import claims as cl
from figures import KernelStyle


def md_escape(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        out.append("| " + " | ".join(md_escape(c) for c in r) + " |")
    return "\n".join(out)


def fmt_num(v, digits=3):
    if v is None:
        return "-"
    if v == 0:
        return "0"
    if abs(v) >= 1000 or abs(v) < 0.01:
        return f"{v:.{digits - 1}e}" if abs(v) < 0.01 else f"{v:,.0f}"
    return f"{v:.{digits}g}"


def fmt_ratio(v):
    return "-" if v is None else f"{v:.2f}x"


def fmt_mb(b):
    return "-" if b is None else f"{b / 1e6:,.3g}" if b < 1e8 else f"{b / 1e6:,.0f}"


def _env_rows(ds):
    rows = []
    for s in ds.sources:
        e = s.environment
        gpu = e.get("gpu")
        gpu_text = "none"
        if isinstance(gpu, dict):
            mem = gpu.get("memory_bytes")
            gpu_text = (f"{gpu.get('name', '?')}"
                        + (f", {mem / 1e9:.0f} GB" if isinstance(mem, (int, float)) else "")
                        + (f", driver {gpu['driver_version']}" if gpu.get("driver_version") else "")
                        + (f", CUDA {gpu['runtime_version']}" if gpu.get("runtime_version") else ""))
        mem = e.get("memory_bytes")
        cpu = (f"{e.get('cpu_model', '?')} ({e.get('cpu_cores', '?')} logical CPUs, "
               f"{e.get('threads_used', '?')} threads used"
               + (f", {mem / 1e9:.0f} GB RAM" if isinstance(mem, (int, float)) else "") + ")")
        commit = str(e.get("git_commit") or "?")[:12] + (" (dirty)" if e.get("git_dirty") else "")
        counts = {st: 0 for st in ("ok", "skipped", "error")}
        for r in ds.rows:
            if r.source is s:
                counts[r.status] += 1
        rows.append([f"`{s.path}`", s.preset, e.get("host", "?"), cpu, gpu_text,
                     _build_text(e), s.torch_text or "-", commit, e.get("date", "?"),
                     f"{counts['ok']} / {counts['skipped']} / {counts['error']}"])
    return table(["file", "preset", "host", "CPU", "GPU", "compiler, BLAS", "torch", "commit",
                  "date", "rows ok / skipped / error"], rows)


def _build_text(e):
    """The attnbench build; a peers file has none of its own ('-')."""
    if not e.get("compiler"):
        return "-"
    return (f"{e['compiler']} {e.get('build_type', '')}".strip()
            + (f", {e['blas']}" if e.get("blas") else ""))


def _verdict_cell(c):
    return f"**{c.verdict}**" + (f": {c.reason}" if c.reason else "")


def _ratio_claims_table(claims):
    rows = [[c.device, c.claim, c.lisa_side, c.baseline, c.measured, _verdict_cell(c),
             c.sweep_max, c.crossover] for c in claims]
    return table(["device", "claim", "LISA side", "baseline",
                  f"at the paper point ({cl.PAPER_POINT_TEXT})", "verdict",
                  "max over the sweep (secondary)", "crossover N"], rows)


def _claims_section(claims, ds):
    ratio = [c for c in claims if isinstance(c, cl.RatioClaim)]
    other = [c for c in claims if not isinstance(c, cl.RatioClaim)]
    parts = [_ratio_claims_table(ratio), "", "### Memory at the paper point", ""]
    parts += [p + "\n" for p in buffers.memory_paragraphs(ds.rows, ds.devices)] or [
        "No device has LISA rows to describe.", ""]
    parts += ["### Other claims", "",
              table(["claim", "claimed", "measured", "setting", "device", "verdict"],
                    [[c.claim, c.claimed, c.measured, c.setting, c.device, _verdict_cell(c)]
                     for c in other]), "", "How the verdicts are decided:", ""]
    parts += [f"- {rule}" for rule in cl.VERDICT_RULES]
    if any(r.noisy for r in ds.rows):
        parts += ["", an.NOISY_FOOTNOTE]
    return "\n".join(parts)


def _exponent_section(fits, style):
    if not fits:
        return f"No kernel has {an.MIN_FIT_POINTS} or more measured N at one setting; no exponents."
    fits = sorted(fits, key=lambda f: (f.device.label, style.order.index(f.kernel),
                                       an.precision_order(f.precision), not f.causal, f.shape,
                                       an.params_sort_key(f.params)))
    rows = [[f.device.label, f.kernel, "causal" if f.causal else "bidirectional", f.fixed_text,
             f"{f.ns[0]} .. {f.ns[-1]}", len(f.ns), f"{f.slope_all:.2f}",
             f"{f.upper_ns[0]} .. {f.upper_ns[-1]}", len(f.upper_ns), f"{f.slope_upper:.2f}"]
            for f in fits]
    intro = (f"Slope of log(median time) against log(N), least squares, for each device, kernel, "
             f"causal flag and fixed setting of the other axes with at least {an.MIN_FIT_POINTS} "
             f"measured N. 'All N' fits every measured point; 'upper range' fits N_max/"
             f"{an.UPPER_RANGE_FACTOR} .. N_max (at least {an.MIN_FIT_POINTS} points), where fixed "
             f"overheads matter least. 1 = linear, 2 = quadratic.\n\n")
    return intro + table(["device", "kernel", "mask", "fixed axes", "N range (all)", "points",
                          "exponent (all N)", "N range (upper)", "points", "exponent (upper)"], rows)


def _figures_section(figs, notes, fig_rel):
    parts = []
    for f in figs:
        parts += [f"### {f.title}", "",
                  f"![{f.title}]({fig_rel}/{f.stem}.png)", "",
                  f"{f.caption} [PDF]({fig_rel}/{f.stem}.pdf)", ""]
    if notes:
        parts += ["### Figures not drawn", ""] + [f"- {n}" for n in notes] + [""]
    if not figs and not notes:
        parts.append("No figures.")
    return "\n".join(parts)


def _row_sort_key(style):
    return lambda r: (r.device.label, style.order.index(r.kernel), an.precision_order(r.precision),
                      not r.causal, r.shape, an.params_sort_key(r.method_params), r.seq_len)


def _median_cell(r):
    """The median, marked when the row is noisy."""
    return (an.NOISY_MARK if r.noisy else "") + fmt_num(r.median_ms)


def _preset_sections(ds, style):
    parts = []
    presets = []
    for s in ds.sources:
        if s.preset not in presets:
            presets.append(s.preset)
    for p in presets:
        files = [s.path for s in ds.sources if s.preset == p]
        rows = sorted((r for r in ds.rows if r.source.preset == p), key=_row_sort_key(style))
        parts += [f"### Preset `{p}`", "", "Files: " + ", ".join(f"`{f}`" for f in files) + ". "
                  "Times are medians in ms; peak memory in MB (10^6 bytes, exact: inputs + outputs "
                  "+ workspace; peers: measured); ratios against the file's vanilla kernel at the "
                  "same point (peers files: torch_vanilla_eager); "
                  "correctness against float64 of the same function, approximation error against "
                  "softmax attention (relative L2).", ""]
        if not rows:
            parts += ["No rows.", ""]
            continue
        trows = []
        for r in rows:
            status = r.status if r.ok else f"**{r.status}**: {r.reason or 'no reason given'}"
            trows.append([r.device.label, f"{r.kernel} ({r.backend})" if r.is_peer else r.kernel,
                          an.point_text(r.axes), r.precision, _median_cell(r),
                          fmt_mb(r.peak_bytes), fmt_ratio(r.speedup), fmt_ratio(r.memory_ratio),
                          fmt_num(r.correctness_rel_l2), fmt_num(r.approx_rel_l2), status])
        parts += [table(["device", "kernel", "point", "precision", "median ms", "peak MB",
                         "speedup", "memory ratio", "correctness", "approx error", "status"],
                        trows), ""]
        noisy = [r for r in rows if r.noisy]
        if noisy:
            parts += [f"{len(noisy)} noisy row(s). {an.NOISY_FOOTNOTE}", ""]
    return "\n".join(parts)


def _not_run_section(ds, style):
    bad = [r for r in ds.rows if not r.ok]
    if not bad:
        return "Every row ran (status ok)."
    grouped = {}
    for r in sorted(bad, key=_row_sort_key(style)):
        k = (r.device.label, r.kernel, r.status, r.reason or "no reason given",
             r.shape, r.causal, r.precision, r.method_params)
        grouped.setdefault(k, []).append(r.seq_len)
    rows = [[dev, kernel, f"{an.shape_text(shape)}, {'causal' if causal else 'bidirectional'}, "
             f"{precision}" + (f", {an.params_text(params)}" if params else ""),
             ", ".join(str(n) for n in sorted(set(ns))), status, reason]
            for (dev, kernel, status, reason, shape, causal, precision, params), ns in grouped.items()]
    return table(["device", "kernel", "setting", "N", "status", "reason"], rows)


def write_report(ds, figs, fig_notes, out_dir, fig_dir, argv_paths):
    style = KernelStyle(ds.kernels)
    fits = an.exponent_fits(ds.rows)
    claims = cl.claims_table(ds, fits)
    fig_rel = os.path.relpath(fig_dir, out_dir)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "# attnbench: reproduction report", "",
        f"Generated {now} by `plots/attnplots.py` from {len(ds.sources)} results file(s): "
        + ", ".join(f"`{p}`" for p in argv_paths) + ".", "",
        "## Results files and their environments", "",
        _env_rows(ds), "",
    ]
    if ds.superseded:
        parts += [f"{len(ds.superseded)} row(s) measured again in a newer file on the same device "
                  f"were replaced by the newer measurement.", ""]
    parts += [
        "## Claims", "",
        "The paper claims of `docs/reproduction.md`: LISA's ratio claims per device and per "
        "(claim, LISA side, baseline), judged at the paper's point; the memory at that point; "
        "the other claims per device.", "",
        _claims_section(claims, ds), "",
        "## Scaling exponents of time in N", "",
        _exponent_section(fits, style), "",
        "## Figures", "",
        _figures_section(figs, fig_notes, fig_rel),
        "## Results by preset", "",
        _preset_sections(ds, style),
        "## Rows that did not run", "",
        _not_run_section(ds, style), "",
    ]
    text = "\n".join(parts)
    path = out_dir / "REPORT.md"
    path.write_text(text, encoding="utf-8")
    return path, claims
