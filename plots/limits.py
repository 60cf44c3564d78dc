#!/usr/bin/env python3
"""The CPU performance targets (README, "Performance"), judged from results files.

usage: limits.py ALL_THREADS.json [ONE_THREAD.json] [--out LIMITS.md]

ALL_THREADS.json is a `limits` sweep with every core (`attnbench sweep --preset limits`),
ONE_THREAD.json the same sweep with `--threads 1`; both carry a calibration (the sweep
calibrates first), so every row has pct_of_peak and the phased kernels their phases. The
report lists each target, the rows it is judged on, the measured figure and a verdict:

  materialized products  vanilla_materialized, scores + output phases: their FLOPs over
                         their time, against the sgemm rate             >= 80 %
  materialized softmax   its softmax phase's bytes over its time, against bandwidth >= 50 %
  materialized memory    workspace = exactly one b*h*N*N float buffer (plus < 1 MiB)
  flash                  vanilla_flash at N >= 4096, dh 64 and 128: pct_of_peak >= 60 and
                         faster than vanilla_materialized at the same point
  lisa paper point       lisa_base, b=1 h=1 dh=1024 B=8 causal, N >= 8192: pct_of_peak >= 60
                         and the histogram+weights phase <= 15 % of the profiled time
  linear family          linear_elu, linrec, hydra, performer, efficient_attention at the
                         largest point (b=1 h=4 dh=64 N=8192): pct_of_peak >= 50
  two threads            every kernel at that point: one-thread median / all-thread median
                         >= 1.8 (needs ONE_THREAD.json)

A target with no row to judge it on says so ("not measured"), never "met". Exit status 0
when the report was written (whatever the verdicts), 2 on an unusable input file.
"""

import argparse
import json
import sys

from results_io import SCHEMA_VERSIONS

PROG = "limits"
LINEAR = ("linear_elu", "linrec", "hydra", "performer", "efficient_attention")
LARGEST = dict(batch=1, heads=4, head_dim=64, seq_len=8192)


class InputError(Exception):
    pass


def load(path):
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror})")
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not JSON ({e.msg} at line {e.lineno})")
    if not isinstance(doc, dict) or doc.get("schema_version") not in SCHEMA_VERSIONS:
        raise InputError(f"{path}: not an attnbench results file of schema_version "
                         f"{' or '.join(map(str, SCHEMA_VERSIONS))}")
    rows = doc.get("rows")
    if not isinstance(rows, list):
        raise InputError(f"{path}: 'rows' must be an array")
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or not isinstance(r.get("axes"), dict) or "kernel" not in r:
            raise InputError(f"{path}: row {i} lacks kernel or axes")
    return doc


def ok_rows(doc):
    return [r for r in doc["rows"] if r.get("status") == "ok" and r.get("backend", "cpu") == "cpu"
            and isinstance(r.get("time_ms"), dict) and r["time_ms"].get("median")]


def median(r):
    return float(r["time_ms"]["median"])


def point_key(r):
    a = r["axes"]
    return (r["kernel"],) + tuple(sorted((k, v) for k, v in a.items()))


def shape(r):
    a = r["axes"]
    return (a["batch"], a["heads"], a["seq_len"], a["head_dim"], bool(a["causal"]))


def describe(r):
    a = r["axes"]
    s = f"b={a['batch']} h={a['heads']} N={a['seq_len']} dh={a['head_dim']} " \
        f"{'causal' if a['causal'] else 'bidir'}"
    if "codewords" in a and r["kernel"].startswith("lisa"):
        s += f" B={a.get('codebooks')} W={a['codewords']}"
    return s


def matches(r, **want):
    return all(r["axes"].get(k) == v for k, v in want.items())


def calibration(doc):
    c = (doc.get("environment") or {}).get("calibration") or {}
    return c if c.get("sgemm_gflops") and c.get("bandwidth_gbs") else None


def phase(r, name):
    for p in r.get("phases") or []:
        if p.get("name") == name:
            return p
    return None


def fmt_pct(x):
    return "-" if x is None else f"{x:.1f}"


class Target:
    def __init__(self, name, rule):
        self.name, self.rule, self.lines = name, rule, []

    def add(self, point, time_ms, figure, verdict, why=""):
        self.lines.append((point, time_ms, figure, verdict, why))

    def verdict(self):
        if not self.lines:
            return "not measured"
        vs = {v for _, _, _, v, _ in self.lines}
        if vs == {"met"}:
            return "met"
        if "met" in vs:
            return "met at some points"
        return "not met" if "not met" in vs else "not measured"


def judge(all_doc, one_doc):
    cal = calibration(all_doc)
    rows = ok_rows(all_doc)
    targets = []
    by_point = {(r["kernel"], shape(r)): r for r in rows}

    def verdict(cond):
        return "met" if cond else "not met"

    # vanilla_materialized: products, softmax, memory
    prod = Target("materialized: products", "scores + output FLOPs over their time >= 80 % of sgemm")
    soft = Target("materialized: softmax", "softmax bytes over its time >= 50 % of bandwidth")
    mem = Target("materialized: memory", "workspace = one b*h*N*N float buffer (+ < 1 MiB)")
    for r in rows:
        if r["kernel"] != "vanilla_materialized" or r["axes"]["seq_len"] not in (4096, 8192) \
                or r["axes"]["head_dim"] not in (64, 1024):
            continue
        a = r["axes"]
        nn = a["batch"] * a["heads"] * a["seq_len"] ** 2 * 4
        ws = (r.get("prepared_bytes") or 0) + (r.get("scratch_bytes") or 0)
        mem.add(describe(r), median(r), f"{ws:,} B ({ws / nn:.4f} x the N*N buffer)",
                verdict(nn <= ws < nn + (1 << 20)))
        sc, out, sm = phase(r, "scores"), phase(r, "output"), phase(r, "softmax")
        if not (sc and out and sm) or cal is None:
            prod.add(describe(r), median(r), "no phase profile or calibration", "not measured")
            soft.add(describe(r), median(r), "no phase profile or calibration", "not measured")
            continue
        ms = sc["ms"] + out["ms"]
        gf = (sc["flops"] + out["flops"]) / (ms * 1e-3) / 1e9 if ms > 0 else 0
        pct = 100 * gf / cal["sgemm_gflops"]
        prod.add(describe(r), median(r), f"{gf:.1f} GFLOP/s = {pct:.1f} %", verdict(pct >= 80))
        gbs = sm["bytes"] / (sm["ms"] * 1e-3) / 1e9 if sm["ms"] > 0 else 0
        spct = 100 * gbs / cal["bandwidth_gbs"]
        soft.add(describe(r), median(r), f"{gbs:.1f} GB/s = {spct:.1f} %", verdict(spct >= 50))
    targets += [prod, soft, mem]

    fl = Target("flash", "pct_of_peak >= 60 and faster than vanilla_materialized (N >= 4096, dh 64, 128)")
    for r in rows:
        a = r["axes"]
        if r["kernel"] != "vanilla_flash" or a["seq_len"] < 4096 or a["head_dim"] not in (64, 128):
            continue
        m = by_point.get(("vanilla_materialized", shape(r)))
        pct = r.get("pct_of_peak")
        if m is None:
            fl.add(describe(r), median(r), f"{fmt_pct(pct)} %, no materialized row", "not measured")
            continue
        ratio = median(m) / median(r)
        fl.add(describe(r), median(r), f"{fmt_pct(pct)} %, {ratio:.2f}x materialized",
               verdict(pct is not None and pct >= 60 and ratio > 1))
    targets.append(fl)

    li = Target("lisa_base, paper point", "pct_of_peak >= 60, histogram+weights <= 15 % of its time")
    for r in rows:
        if r["kernel"] != "lisa_base" or not matches(r, batch=1, heads=1, head_dim=1024,
                                                       codebooks=8, causal=True) \
                or r["axes"]["seq_len"] < 8192:
            continue
        pct = r.get("pct_of_peak")
        hw = phase(r, "histogram+weights")
        share = hw.get("share") if hw else None
        fig = f"{fmt_pct(pct)} %, histogram+weights " + \
              ("-" if share is None else f"{100 * share:.1f} %")
        li.add(describe(r), median(r), fig,
               verdict(pct is not None and pct >= 60 and share is not None and share <= 0.15))
    targets.append(li)

    lin = Target("linear family", "pct_of_peak >= 50 of the binding ceiling")
    for r in rows:
        if r["kernel"] in LINEAR and matches(r, **LARGEST):
            pct = r.get("pct_of_peak")
            lin.add(f"{r['kernel']} {describe(r)}", median(r),
                    f"{fmt_pct(pct)} % ({r.get('roofline_bound') or '-'})",
                    verdict(pct is not None and pct >= 50))
    targets.append(lin)

    sc = Target("two threads", "one-thread median / all-thread median >= 1.8")
    if one_doc is not None:
        one = {point_key(r): r for r in ok_rows(one_doc)}
        for r in rows:
            if not matches(r, **LARGEST):
                continue
            o = one.get(point_key(r))
            if o is None:
                sc.add(f"{r['kernel']} {describe(r)}", median(r), "no one-thread row", "not measured")
                continue
            s = median(o) / median(r)
            sc.add(f"{r['kernel']} {describe(r)}", median(r),
                   f"{median(o):.2f} / {median(r):.2f} ms = {s:.2f}x", verdict(s >= 1.8))
    targets.append(sc)
    return targets


def cal_line(doc, label):
    c = calibration(doc)
    env = doc.get("environment") or {}
    if c is None:
        return f"- {label}: no calibration (run the sweep without --no-calibrate)"
    return (f"- {label}: {env.get('cpu_model', '?')}, {c.get('threads', '?')} threads: sgemm "
            f"{c['sgemm_gflops']:.1f} GFLOP/s, copy {c['bandwidth_gbs']:.1f} GB/s "
            f"(commit {str(env.get('git_commit', '?'))[:10]}, {env.get('date', '?')})")


def report(all_path, all_doc, one_path, one_doc):
    targets = judge(all_doc, one_doc)
    out = ["# CPU performance targets", "",
           f"From `{all_path}`" + (f" and `{one_path}` (one thread)" if one_path else "") +
           ", written by `plots/limits.py` (`./run_all.sh limits`).", "",
           cal_line(all_doc, "all threads")]
    if one_doc is not None:
        out.append(cal_line(one_doc, "one thread"))
    out += ["", "| target | rule | verdict |", "|---|---|---|"]
    for t in targets:
        out.append(f"| {t.name} | {t.rule} | {t.verdict()} |")
    for t in targets:
        out += ["", f"## {t.name}", "", f"Rule: {t.rule}.", ""]
        if not t.lines:
            out.append("No row to judge it on (not measured).")
            continue
        out += ["| point | median ms | measured | verdict |", "|---|---:|---|---|"]
        for point, ms, fig, v, _ in t.lines:
            out.append(f"| {point} | {ms:.3f} | {fig} | {v} |")
    phased = [r for r in ok_rows(all_doc) if r.get("phases")]
    if phased:
        out += ["", "## Phases", "", "| kernel | point | phase | ms | share | % of its ceiling |",
                "|---|---|---|---:|---:|---:|"]
        for r in phased:
            for p in r["phases"]:
                pct = p.get("pct_of_peak")
                out.append(f"| {r['kernel']} | {describe(r)} | {p['name']} | {p['ms']:.2f} | "
                           f"{100 * p.get('share', 0):.1f} % | "
                           f"{'-' if pct is None else f'{pct:.1f} % ' + (p.get('bound') or '')} |")
    return "\n".join(out) + "\n", targets


def main(argv=None):
    ap = argparse.ArgumentParser(prog=PROG, description="Judge the CPU performance targets.")
    ap.add_argument("all_threads")
    ap.add_argument("one_thread", nargs="?")
    ap.add_argument("--out", help="write the markdown here (default: stdout)")
    a = ap.parse_args(argv)
    try:
        all_doc = load(a.all_threads)
        one_doc = load(a.one_thread) if a.one_thread else None
    except InputError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    text, targets = report(a.all_threads, all_doc, a.one_thread, one_doc)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    for t in targets:
        print(f"{t.name}: {t.verdict()}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
