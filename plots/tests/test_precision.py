"""Precision in the figures: one line style per precision (fp32 solid, tf32 dashed, bf16
dotted, fp16 dash-dot), colours per kernel, the precision in the legend when a figure has
several, and never two precisions on one line."""

import pathlib
import tempfile
import unittest
from unittest import mock

import helpers as h

import figures
from results_io import load_dataset

NS = (256, 512, 1024, 2048)
# time = factor x N: a line's y / x is constant only when its points share a precision.
FACTOR = {"fp32": 1e-3, "tf32": 6e-4, "bf16": 4e-4, "fp16": 3e-4}


def rows(precisions):
    out = []
    for p in precisions:
        for n in NS:
            pt = dict(batch=1, heads=2, seq_len=n, head_dim=64, causal=True)
            out.append(h.row("vanilla_flash", time_ms=FACTOR[p] * n, peak_bytes=2e5 * n * FACTOR[p],
                             params={"precision": p}, **pt))
            out.append(h.row("lisa_base", time_ms=0.5 * FACTOR[p] * n, peak_bytes=1e5 * n * FACTOR[p],
                             approx=0.3, params={"precision": p, "codebooks": 8, "codewords": 16}, **pt))
    return out


class Captured:
    """figures.save replaced: keeps the figure instead of writing and closing it."""

    def __init__(self):
        self.figs = []

    def __call__(self, fig, outdir, stem):
        self.figs.append(fig)


class VsNStyles(unittest.TestCase):
    def draw(self, precisions, quantity="time"):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        ds = load_dataset([h.write(f"{tmp.name}/r.json", h.document(rows(precisions)))])
        cap = Captured()
        with mock.patch.object(figures, "save", cap):
            figures.fig_vs_n(ds, figures.KernelStyle(ds.kernels), pathlib.Path(tmp.name),
                             ds.devices[0], (1, 2, 64), quantity)
        fig, = cap.figs
        self.addCleanup(figures.plt.close, fig)
        lines = [ln for ln in fig.axes[0].get_lines() if len(ln.get_xdata()) > 1]
        legend = [t.get_text() for t in fig.legends[0].get_texts()]
        return lines, legend

    def test_one_style_per_precision_one_colour_per_kernel(self):
        lines, legend = self.draw(["fp32", "tf32", "bf16", "fp16"])
        self.assertEqual(len(lines), 8)
        by_style = {}
        for ln in lines:
            xs, ys = ln.get_xdata(), ln.get_ydata()
            factors = {round(y / x, 9) for x, y in zip(xs, ys)}
            self.assertEqual(len(factors), 1, "a line joins points of different precisions")
            by_style.setdefault(ln.get_linestyle(), set()).add(factors.pop())
        self.assertEqual(by_style, {"-": {1e-3, 5e-4}, "--": {6e-4, 3e-4}, ":": {4e-4, 2e-4},
                                    "-.": {3e-4, 1.5e-4}})
        colours = {ln.get_color() for ln in lines}
        self.assertEqual(colours, {dict(figures.KERNEL_COLOURS)["vanilla_flash"],
                                   dict(figures.KERNEL_COLOURS)["lisa_base"]})

    def test_legend_names_the_precision_only_when_several(self):
        _, legend = self.draw(["fp32", "bf16"], "memory")
        self.assertIn("vanilla_flash (bf16)", legend)
        self.assertIn("lisa_base (B=8, W=16, fp32)", legend)
        _, legend = self.draw(["fp32"])
        self.assertEqual(legend, ["vanilla_flash", "lisa_base (B=8, W=16)"])

    def test_precision_styles(self):
        self.assertEqual([figures.precision_style(p) for p in ("fp32", "tf32", "bf16", "fp16")],
                         ["-", "--", ":", "-."])


class SampleFigures(unittest.TestCase):
    """The committed cuda default sample has bf16 rows next to fp32 ones."""

    def test_ratio_figure_has_a_line_per_precision(self):
        ds = load_dataset([str(h.PLOTS / "tests" / "data" / "sample_cuda_default.json")])
        cap = Captured()
        with mock.patch.object(figures, "save", cap):
            figures.fig_ratios(ds, figures.KernelStyle(ds.kernels), pathlib.Path("."),
                               ds.devices[0], (2, 2, 64))
        fig, = cap.figs
        self.addCleanup(figures.plt.close, fig)
        legend = fig.legends[0]
        handles = getattr(legend, "legend_handles", None) or legend.legendHandles
        styles = {t.get_text(): hd.get_linestyle() for hd, t in zip(handles, legend.get_texts())}
        self.assertEqual(styles["lisa_base (B=8, W=16, bf16)"], ":")
        self.assertEqual(styles["lisa_base (B=8, W=16, fp32)"], "-")
        red = dict(figures.KERNEL_COLOURS)["lisa_base"]
        lisa = [ln for ln in fig.axes[0].get_lines() if ln.get_color() == red]
        self.assertEqual(sorted(ln.get_linestyle() for ln in lisa), ["-", ":"])
        self.assertTrue(all(len(ln.get_xdata()) == 4 for ln in lisa))


if __name__ == "__main__":
    unittest.main()
