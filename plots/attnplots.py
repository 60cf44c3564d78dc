#!/usr/bin/python3
"""attnplots: figures and the reproduction report from attnbench results files.

    /usr/bin/python3 plots/attnplots.py --out DIR RESULTS.json [RESULTS.json ...]

writes DIR/REPORT.md and DIR/figures/*.png and *.pdf. Exit status 0 on success, 2 when a
results file is missing, malformed or does not match results/schema.json (one line on stderr:
"attnplots: error: FILE: why", naming the failing path). Modules: results_io (reading, and
validating against results/schema.json), analysis (fixed axes, exponent fits, the Reformer and
exponent claims), claims (the ratio claims against every baseline, the claims table), buffers
(the memory paragraph), figures, report. See plots/README.md.
"""

import argparse
import pathlib
import sys

PROG = "attnplots"


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog=PROG, description="Draw the figures and write REPORT.md from attnbench results files.")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="folder for REPORT.md and figures/ (created if missing)")
    parser.add_argument("results", nargs="+", metavar="RESULTS.json",
                        help="results files written by `attnbench sweep` or the PyTorch peers")
    args = parser.parse_args(argv)

    # Imported here so that `--help` and argument errors stay fast.
    from results_io import ResultsError, load_dataset
    try:
        ds = load_dataset(args.results)
    except ResultsError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2

    import figures
    import report
    out_dir = pathlib.Path(args.out)
    fig_dir = out_dir / "figures"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fig_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"{PROG}: error: {args.out}: cannot create the output folder: {e.strerror or e}",
              file=sys.stderr)
        return 2
    figs, notes = figures.make_figures(ds, fig_dir)
    path, claims = report.write_report(ds, figs, notes, out_dir, fig_dir, args.results)
    for c in claims:
        print(f"{PROG}: {c.summary}")
    print(f"{PROG}: {len(figs)} figure(s) in {fig_dir} (PNG and PDF)")
    print(f"{PROG}: report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
