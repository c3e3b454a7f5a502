"""What every figure is drawn with: a figure of panels on matplotlib's Agg canvas (never
pyplot's global state), one color per run, grouped bars, base-2 axes, a density estimate, and
the file writer. Nothing here knows a results file."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from cram_harness.atomic import atomic_path

DPI = 130


class Skip(Exception):  # noqa: N818 - a figure skipped for missing data, not an error
    """A figure whose data is missing; str() is the one-line reason."""


def new_figure(panels: int = 1, width: float = 7.0) -> tuple[Figure, list]:
    """A figure of `panels` axes, at most three to a row."""
    cols = min(panels, 3)
    rows = math.ceil(panels / cols)
    size = (width, 4.5) if panels == 1 else (5.2 * cols, 4.3 * rows)
    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = list(fig.subplots(rows, cols, squeeze=False).ravel())
    for ax in axes[panels:]:
        ax.set_visible(False)
    return fig, axes[:panels]


def save(fig: Figure, out_dir: Path, name: str, formats: Sequence[str]) -> list[Path]:
    """out_dir/<name>.<format> for each format, each written whole."""
    paths = []
    for fmt in formats:
        path = out_dir / f"{name}.{fmt}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=DPI)
        paths.append(path)
    return paths


def run_colors(labels: Sequence[str]) -> dict[str, str]:
    """One color per run label, the same in every figure."""
    return {label: f"C{i % 10}" for i, label in enumerate(labels)}


def legend_right(ax, **kw: object) -> None:
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), **kw)


def label_panel(ax, **labels: object) -> None:
    """A panel's axis labels and title (`ax.set`'s keywords) and its legend, small."""
    ax.set(**labels)
    ax.legend(fontsize=7)


def log2_axis(ax, axis: str = "x") -> None:
    """A base-2 log axis with plain numbers (8, 16, 32) as tick labels."""
    getattr(ax, f"set_{axis}scale")("log", base=2)
    getattr(ax, f"{axis}axis").set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def bars(ax, items: list[tuple[str, str, float | None]], colors: dict[str, str],
         label: Callable[[float], str] = lambda v: f"{v:.0f}") -> None:
    """Grouped bars: x = dataset, one bar per run label (the legend); a missing value is an
    empty slot labelled "none". The value axis starts at 0."""
    groups = list(dict.fromkeys(g for g, _, _ in items))
    hues = [h for h in colors if any(h == hh for _, hh, _ in items)]
    width = 0.8 / len(hues)
    for j, hue in enumerate(hues):
        xs = [groups.index(g) + (j - (len(hues) - 1) / 2) * width for g, h, _ in items if h == hue]
        vals = [v for _, h, v in items if h == hue]
        drawn = ax.bar(xs, [v or 0.0 for v in vals], width, label=hue, color=colors[hue])
        ax.bar_label(drawn, ["none" if v is None else label(v) for v in vals], fontsize=8)
    ax.set_xticks(range(len(groups)), groups)
    legend_right(ax, title="model")
    top = max((v for _, _, v in items if v), default=1.0)
    ax.set_ylim(0, top * 1.15)


def kde(vals: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """A Gaussian density estimate of `vals` on `grid`, bandwidth by Silverman's rule."""
    h = 1.06 * vals.std(ddof=1) * len(vals) ** -0.2
    z = (grid[:, None] - vals[None, :]) / h
    return np.exp(-0.5 * z**2).mean(axis=1) / (h * math.sqrt(2 * math.pi))
