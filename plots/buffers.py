"""The memory paragraph of REPORT.md: per device, which buffers make each side's peak at the
paper point, and why LISA's 78x memory claim is or is not reached against each baseline.

Everything comes from the rows' memory fields. An attnbench row's peak_bytes is exact:
inputs_bytes + outputs_bytes + prepared_bytes + scratch_bytes (+ library_bytes, schema 2: the
cuBLAS workspace a kernel that calls cuBLAS is charged). A peers row has no workspace
query (prepared_bytes and scratch_bytes are null), so what it holds besides its inputs and
output is its measured peak minus those two, and the paragraph says so. A vanilla kernel's
buffer beyond inputs and output of at least one b*h*N*N score tensor is split into whole score
tensors, an N*N bool mask when the rest matches one (causal only), and the rest; a LISA
buffer that large is given as a multiple of its output (the authors' ops hold an N x B x dh
tensor, B outputs).

Why 78x is or is not reached: any LISA holds its own output, so against a baseline of peak P
no LISA can exceed P / (LISA's outputs_bytes). When that bound is below the claim, the claim
is out of reach against that baseline by construction; when the bound is above it but the
ratio is not, LISA's other buffers are what keeps it below.

Without rows at the paper point, the paragraph describes the largest N of the claims' sweep
setting (claims.sweep_pool) where attnbench's LISA ran, and names it.
"""

import analysis as an
import claims as cl

ELEMENT_BYTES = {"fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2}
MATCH_SLACK = 4096  # bytes of allocator rounding a mask may differ by, at the least
MATCH_SHARE = 0.02  # and 2 % of the mask: a measured peak carries allocator slack


def score_bytes(r):
    """One [b, h, N, N] score tensor at the row's precision."""
    b, h, _ = r.shape
    return ELEMENT_BYTES.get(r.precision, 4) * b * h * r.seq_len ** 2


def mask_bytes(r):
    """The eager expression's [N, N] bool mask (causal only)."""
    return r.seq_len ** 2 if r.causal else 0


def split_quadratic(extra, r):
    """`extra` bytes as whole score tensors, an N*N mask and the rest; [] when it holds no
    whole score tensor."""
    f, m = score_bytes(r), mask_bytes(r)
    k = int(extra // f)
    if k == 0:
        return []
    rest = extra - k * f
    parts = [f"{k} x {an.bytes_text(f)} b*h*N*N {r.precision} score tensors" if k > 1
             else f"one {an.bytes_text(f)} b*h*N*N {r.precision} score tensor"]
    if m and abs(rest - m) <= max(MATCH_SLACK, MATCH_SHARE * m):
        parts.append(f"{an.bytes_text(m)} N*N bool mask")
        rest = max(0.0, rest - m)
    if rest > MATCH_SLACK:
        parts.append(f"{an.bytes_text(rest)} other")
    return parts


def buffers(r):
    """[(name, bytes)] of a row's peak, largest first (None fields left out)."""
    if r.is_peer:
        if None in (r.peak_bytes, r.inputs_bytes, r.outputs_bytes):
            return []
        parts = [("inputs", r.inputs_bytes), ("output", r.outputs_bytes),
                 ("beyond inputs and output", r.peak_bytes - r.inputs_bytes - r.outputs_bytes)]
    else:
        parts = [("inputs", r.inputs_bytes), ("output", r.outputs_bytes),
                 ("prepared", r.prepared_bytes), ("scratch", r.scratch_bytes),
                 ("library", r.library_bytes)]
    return sorted(((n, b) for n, b in parts if b is not None), key=lambda p: -p[1])


def part_text(name, nbytes, r, share=None):
    notes = [f"{share:.0f} % of the peak"] if share is not None else []
    text = f"{name} {an.bytes_text(nbytes)}"
    beyond_io = name in ("scratch", "prepared", "beyond inputs and output")
    # Only a vanilla kernel's buffers are score tensors; LISA's are read against its output.
    split = split_quadratic(nbytes, r) if beyond_io and r.family == "vanilla" else []
    if not split and beyond_io and r.outputs_bytes and nbytes >= r.outputs_bytes:
        notes.append(f"{nbytes / r.outputs_bytes:.1f} x its output")
    text += f" ({'; '.join(notes)})" if notes else ""
    return text + (" = " + " + ".join(split) if split else "")


def row_sentence(r):
    """'vanilla_eager, 39.7 GB peak (exact): scratch 38.7 GB (97 % of the peak) = ...; ...'."""
    parts = [(n, b) for n, b in buffers(r) if b > 0]
    if not parts or not r.peak_bytes:
        return f"{cl.kernel_text(r)}: memory fields absent."
    how = "measured" if r.is_peer else "exact" if r.ok else f"exact byte count; {r.status}, not run"
    texts = [part_text(n, b, r, 100 * b / r.peak_bytes if i == 0 else None)
             for i, (n, b) in enumerate(parts)]
    total = sum(b for _, b in parts)
    if abs(total - r.peak_bytes) > MATCH_SLACK:  # a file whose fields disagree says so
        texts.append(f"these add up to {an.bytes_text(total)}, not to peak_bytes")
    return f"{cl.kernel_text(r)}, {an.bytes_text(r.peak_bytes)} peak ({how}): {'; '.join(texts)}."


def lisa_sentence(lisa, bases):
    """The ratio against each baseline, the most any LISA holding its output could reach
    (baseline peak / LISA output), and which of the two keeps each ratio under the claim."""
    claim = cl.MEMORY.claimed
    out = lisa.outputs_bytes
    pairs, groups = [], {"reaches": [], "out of reach": [], "held back": []}
    for b in bases:
        ratio = b.peak_bytes / lisa.peak_bytes
        bound = b.peak_bytes / out if out else None
        notes = ([] if b.ok else ["computed, not measured"]) + ([f"at most {bound:.1f}x"] if bound else [])
        pairs.append(f"{ratio:.1f}x against {cl.kernel_text(b)}" + (f" ({'; '.join(notes)})" if notes else ""))
        kind = ("reaches" if round(ratio, 1) >= claim else
                "out of reach" if bound and round(bound, 1) < claim else "held back")
        groups[kind].append(b.kernel)
    text = (f"{cl.kernel_text(lisa)} ({an.bytes_text(lisa.peak_bytes)}"
            + (f", of which its output {an.bytes_text(out)}" if out else "") + "): "
            + "; ".join(pairs) + ".")
    if groups["reaches"]:
        text += f" {claim:g}x is reached against {', '.join(groups['reaches'])}."
    if groups["out of reach"]:
        text += (f" Against {', '.join(groups['out of reach'])} it is out of reach: even a LISA "
                 f"holding nothing but its output stays below {claim:g}x.")
    if groups["held back"]:
        text += (f" Against {', '.join(groups['held back'])} its buffers besides the output "
                 f"({an.bytes_text(lisa.peak_bytes - (out or 0))}) keep it below {claim:g}x.")
    return text


def memory_point(lisa_rows):
    """(LISA setting, N, at the paper point?) the paragraph describes, or None."""
    if cl.rows_at_paper_point(lisa_rows, True):
        return cl.PAPER_SETTING, cl.PAPER_SEQ_LEN, True
    pool, _ = cl.sweep_pool(lisa_rows)
    by_setting = an.group_by([r for r in pool if r.ok], cl.lisa_setting)
    if not by_setting:
        return None
    setting = max(by_setting, key=lambda s: (len(an.ok_ns(by_setting[s])), s[1],
                                             dict(s[3:]).get("codewords") == 16))
    return setting, an.ok_ns(by_setting[setting])[-1], False


def rows_at(dev_rows, setting, n):
    """Each side's row at the point: LISA sides their smallest, baselines theirs (a row that
    did not run counts when its exact byte count is known)."""
    shown = {}
    for side in cl.sides_on(dev_rows, cl.LISA_SIDES):
        got = [r for r in dev_rows if side.member(r) and cl.lisa_setting(r) == setting
               and r.seq_len == n]
        shown[side.label(cl.MEMORY)] = cl.best(got, cl.MEMORY)
    key = (setting[0], setting[1], n, setting[2])
    for side in cl.sides_on(dev_rows, cl.BASELINES):
        got = [r for r in dev_rows if side.member(r) and cl.base_key(r) == key]
        known = [r for r in got if r.peak_bytes] if not side.pick_best else []
        shown[side.label(cl.MEMORY)] = cl.best(got, cl.MEMORY) or (
            min(known, key=lambda r: r.peak_bytes) if known else None)
    return shown


def device_paragraph(dev, dev_rows):
    """The paragraph for one device, or '' when it has no LISA rows to describe."""
    lisa_rows = [r for r in dev_rows if any(s.member(r) for s in cl.LISA_SIDES)]
    found = memory_point([r for r in lisa_rows if cl.LISA_SIDES[0].member(r)] or lisa_rows)
    if found is None:
        return ""
    setting, n, paper = found
    shown = rows_at(dev_rows, setting, n)
    where = (f"at the paper point ({cl.PAPER_POINT_TEXT})" if paper else
             f"the paper point was not measured; at N={n} of {cl.setting_text(setting)}, "
             f"the largest N where attnbench's LISA ran at the claims' sweep setting")
    rows = list({id(r): r for r in shown.values() if r is not None}.values())
    missing = [name for name, r in shown.items() if r is None]
    lisas = [r for r in rows if r.family == "lisa" and r.ok]
    bases = [r for r in rows if r.family != "lisa"]
    text = [f"**{dev.label}**, {where}."] + [row_sentence(r) for r in rows]
    if any(r.is_peer for r in rows):
        text.append("Peers rows: torch has no workspace query, so what they hold besides "
                    "inputs and output is their measured peak minus those two.")
    if missing:
        text.append("Not measured there: " + ", ".join(missing) + ".")
    text += [lisa_sentence(lr, bases) for lr in lisas if bases]
    return " ".join(text)


def memory_paragraphs(rows, devices):
    out = []
    for dev in devices:
        p = device_paragraph(dev, [r for r in rows if r.device == dev])
        if p:
            out.append(p)
    return out
