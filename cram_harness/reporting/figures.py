"""The paper's figures from results files: Fig. 1 (capacity), 3/6 (CE without vs with [mem]),
4 (capacity vs number of [mem] vectors), 5 (Eq. 1 vs token gain, utilization), accuracy vs
length, 7 (cosine similarity) and 8 (interpolation). Only the report command imports this
module. The numbers come from `figure_data` (the results file first), the drawing tools from
`plotting`."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from cram_harness import metrics
from cram_harness.reporting import figure_data
from cram_harness.reporting.plotting import (
    Skip,
    bars,
    kde,
    label_panel,
    legend_right,
    log2_axis,
    new_figure,
    run_colors,
    save,
)
from cram_harness.reporting.runs import Run
from cram_harness.results.records import SampleRecord

__all__ = ["FIGURES", "Skip", "make_figures"]

MIN_FIT_POINTS = 3  # a line through two points says nothing about the slope's spread


def build_capacity_figure(runs: list[Run]) -> Figure:
    """Fig. 1: decoding capacity per model and dataset (one bar each)."""
    items = [(d, run.label, figure_data.capacity(v)) for run in runs
             for _, v, d in run.tasks("capacity") if figure_data.has_capacity(v)]
    if not items:
        raise Skip("no capacity results: run capacity_<dataset> or cram_<dataset>")
    at = figure_data.threshold_text(runs)
    if not any(v for _, _, v in items):
        raise Skip(f"no capacity to draw: no length reached mean accuracy {at} (run shorter "
                   "lengths, or more steps)")
    fig, (ax,) = new_figure(width=8.5)
    bars(ax, items, run_colors([r.label for r in runs]))
    ax.set(xlabel="dataset", ylabel="decoding capacity (tokens)",
           title=f"Fig. 1: decoding capacity of one [mem] vector (mean accuracy ≥ {at})")
    return fig


def _ce_records(run: Run) -> tuple[int, list[SampleRecord]] | None:
    """(k, records) of a run's CE panel: usable records with both losses, at its smallest k."""
    recs = [r for r in run.samples if r.usable and all(
        isinstance(r.get(k), int | float) for k in ("base_loss", "min_loss", "num_tokens"))]
    if not recs:
        return None
    k = min(int(r.get("n_mem", 1)) for r in recs)
    return k, [r for r in recs if int(r.get("n_mem", 1)) == k]


def build_ce_figure(runs: list[Run]) -> Figure:
    """Fig. 3/6: per model, the text's CE without [mem] vs with [mem] (total nats)."""
    panels = [(run, *found) for run in runs if (found := _ce_records(run))]
    if not panels:
        raise Skip("no per-sample records (samples_<task>_<time>.jsonl beside the results file)")
    fig, axes = new_figure(len(panels))
    for ax, (run, k, recs) in zip(axes, panels, strict=True):
        # The paper's axes: CE times L without [mem], and the run's lowest CE times L with it
        x = np.array([r["base_loss"] * r["num_tokens"] for r in recs])
        y = np.array([r["min_loss"] * r["num_tokens"] for r in recs])
        lossless = np.array([r.exact for r in recs])
        data = np.array([str(r.get("dataset", "?")) for r in recs])
        for i, d in enumerate(sorted(set(data))):
            for mask, marker, what in ((~lossless, "o", "not lossless"),
                                       (lossless, "*", "lossless (greedy exact)")):
                m = mask & (data == d)
                if m.any():
                    ax.scatter(x[m], y[m], marker=marker, s=60 if marker == "*" else 22,
                               color=f"C{i}", alpha=0.8, label=f"{d}: {what} ({m.sum()})")
        ig = figure_data.info_gain(run, recs)
        if ig is not None:
            ax.axvline(ig[0], ls="--", color="k",
                       label=f"lossless threshold: mean info gain {ig[0]:.0f} nats ({ig[1]})")
        n_fit = int((~lossless).sum())
        if n_fit >= MIN_FIT_POINTS and np.ptp(x[~lossless]) > 0:
            slope, icpt = np.polyfit(x[~lossless], y[~lossless], 1)
            xs = np.linspace(x.min(), x.max(), 2)
            ax.plot(xs, slope * xs + icpt, color="gray",
                    label=f"fit (not lossless, n={n_fit}): y = {slope:.2f}x {icpt:+.0f}")
        else:
            ax.text(0.02, 0.98, f"no fit: {n_fit} text{'s' if n_fit != 1 else ''} not "
                    f"lossless, {MIN_FIT_POINTS} needed", transform=ax.transAxes, va="top",
                    fontsize=8, color="gray")
        label_panel(ax, xlabel="text CE without [mem] (nats: mean CE x L)",
                        ylabel="lowest CE with [mem] (nats: min mean CE x L)",
                        title=f"{run.label}: {k} [mem] vector{'s' if k > 1 else ''}")
    return fig


def build_mem_scaling_figure(runs: list[Run]) -> Figure:
    """Fig. 4: capacity vs number of [mem] vectors, the ideal linear line, ±1 std bands."""
    series = [(run, d, caps) for run in runs for d, caps in figure_data.scaling_series(run)]
    if not series:
        raise Skip(f"no capacity per number of [mem] vectors: {figure_data.scaling_hint(runs)}")
    series = [(run, d, caps) for run, d, caps in series if any(caps.values())]
    if not series:
        at = figure_data.threshold_text(runs)
        raise Skip(f"no tested length reached mean accuracy {at} at any number of [mem] vectors")
    fig, (ax,) = new_figure(width=9.0)
    styles, no_band = {}, []
    ideal: str | None = "ideal (dotted): capacity at k=1 × k"
    ceiling: str | None = "△ reached the longest length run: a lower bound, not a plateau"
    for index, (run, d, caps) in enumerate(series):
        color = f"C{index % 10}"  # one colour per series, not per model
        ks = sorted(caps)
        ys = np.array([np.nan if caps[k] is None else caps[k] for k in ks], dtype=float)
        style = styles.setdefault(d, "osDvp"[len(styles) % 5])
        ax.plot(ks, ys, f"{style}-", color=color, label=f"{run.label} ({d})")
        capped = [k for k in ks
                  if caps[k] is not None and caps[k] >= figure_data.longest_run(run, d, k)]
        if capped:
            ax.plot(capped, [caps[k] for k in capped], "^", ms=11, mfc="none", color=color,
                    label=ceiling)
            ceiling = None
        base = next(((k, caps[k]) for k in ks if caps[k]), None)
        if base:
            ax.plot(ks, [base[1] / base[0] * k for k in ks], ":", color=color, label=ideal)
            ideal = None
        spread = [figure_data.decoded_spread(run, d, k, caps[k]) for k in ks]
        if all(spread):
            mean = np.array([s.mean for s in spread])
            std = np.array([s.std for s in spread])
            ax.fill_between(ks, mean - std, mean + std, color=color, alpha=0.2,
                            label=f"±1 std, decoded tokens at capacity ({run.label}, {d})")
        else:
            no_band.append(f"{run.label} ({d})")
    if no_band:
        note = textwrap.fill("no ±1 std band (too few samples at the capacity length of some k): "
                             + "; ".join(no_band), 70)
        ax.text(0.01, 0.99, note, transform=ax.transAxes, va="top", fontsize=7, in_layout=False)
    log2_axis(ax, "x")
    log2_axis(ax, "y")
    ax.set(xlabel="number of [mem] vectors k", ylabel="decoding capacity (tokens)",
           title="Fig. 4: capacity vs number of [mem] vectors")
    legend_right(ax)
    return fig


def build_eq1_figure(runs: list[Run]) -> Figure:
    """Fig. 5: Eq. 1 capacity vs token gain, and capacity utilization natural vs random."""
    pts = []
    for run in runs:
        eq1 = run.results.get("model_info", {}).get("eq1_capacity")
        for _, v, d in run.tasks("token_gain"):
            tg = figure_data.either(v, "token_gain")
            if tg is not None and eq1:
                util = figure_data.either(v, "capacity_utilization")
                std = figure_data.either(v, "token_gain", "_std") or 0.0
                pts.append((run.label, d, float(eq1), tg, std,
                            metrics.capacity_utilization(tg, eq1) if util is None else util))
    if not pts:
        raise Skip("no token gain results with an Eq. 1 capacity: run token_gain_<dataset>")
    fig, (ax, ax2) = new_figure(2)
    fig.set_size_inches(13.0, 5.0)
    colors = run_colors([r.label for r in runs])
    for index, (label, d, eq1, tg, std, _) in enumerate(pts):  # a colour per point
        ax.errorbar(eq1, tg, yerr=std, fmt="x" if d.startswith("random") else "o", capsize=3,
                    color=f"C{index % 10}", label=f"{label} ({d})")
    right = max(p[2] for p in pts) * 1.1
    ax.plot([0, right], [0, right], "k--", lw=1, label="y = x (Eq. 1 fully used)")
    # the gains are a few percent of Eq. 1 for small models: scale to them, let y = x leave
    ax.set_xlim(0, right)
    ax.set_ylim(0, max(p[3] + p[4] for p in pts) * 1.3)
    label_panel(ax, xlabel="Eq. 1 theoretical capacity (tokens)",
                    ylabel="token gain (tokens, mean ± std, full vectors)",
                    title="Fig. 5: theoretical capacity vs token gain")
    order = sorted({p[1] for p in pts}, key=lambda d: (d.startswith("random"), d))
    items = [(f"{d} ({'random' if d.startswith('random') else 'natural'})", lab, u)
             for d in order for lab, dd, _, _, _, u in pts if dd == d]
    bars(ax2, items, colors, label=lambda v: f"{v:.1%}")
    ax2.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.1%}"))
    ax2.set(xlabel="dataset", ylabel="capacity utilization (token gain / Eq. 1)",
            title="capacity utilization: natural vs random text")
    return fig


def build_accuracy_length_figure(runs: list[Run]) -> Figure:
    """Mean best accuracy vs text length, per dataset (panels) and model (lines)."""
    lines = [(run.label, s.get("dataset", "?"), int(s.get("n_mem", 1)),
              sorted((int(n), float(a)) for n, a in s["mean_accuracy"].items()))
             for run in runs for s in run.results.get("sweeps", []) if s.get("mean_accuracy")]
    if not lines:
        raise Skip("no length sweeps in the results")
    datasets = sorted({d for _, d, _, _ in lines})
    fig, axes = new_figure(len(datasets))
    dashes = ["-", "--", ":", "-."]
    ks = sorted({k for _, _, k, _ in lines})
    for ax, d in zip(axes, datasets, strict=True):
        mine = [(label, k, acc) for label, dd, k, acc in lines if dd == d]
        for index, (label, k, acc) in enumerate(mine):  # a colour per line of the panel
            ax.plot(*zip(*acc, strict=True), marker="o", ms=4, color=f"C{index % 10}",
                    ls=dashes[ks.index(k) % 4], label=f"{label}, {k} [mem]")
        for at in sorted({figure_data.threshold(run, d) for run in runs}):
            ax.axhline(at, ls="--", color="gray", label=f"capacity threshold {at:g}")
        log2_axis(ax)
        label_panel(ax, xlabel="text length (tokens)", ylabel="mean best accuracy (teacher-forced)",
                        ylim=(0, 1.03), title=f"accuracy vs length: {d}")
    return fig


def _analysis_panels(runs: list[Run], kind: str, keep: Callable[[dict], object]
                     ) -> tuple[Figure, list[tuple[object, Run, dict]]]:
    """A panel per analysis of this kind that `keep` accepts: (figure, [(ax, run, analysis)])."""
    items = [(run, a) for run in runs for a in run.analyses(kind) if keep(a)]
    if not items:
        raise Skip(f"no {kind} analysis: run {kind}_<dataset>")
    fig, axes = new_figure(len(items))
    return fig, [(ax, run, a) for ax, (run, a) in zip(axes, items, strict=True)]


def build_similarity_figure(runs: list[Run]) -> Figure:
    """Fig. 7: densities of cosine similarity, same text (intra) vs different texts (inter)."""
    fig, panels = _analysis_panels(
        runs, "similarity", lambda a: a.get("intra_cosine") or a.get("inter_cosine"))
    for ax, run, a in panels:
        sets = [(np.asarray(a.get(key) or [], dtype=float), name) for key, name in (
            ("intra_cosine", "same text (intra)"), ("inter_cosine", "different texts (inter)"))]
        allv = np.concatenate([v for v, _ in sets])
        lo, hi = allv.min() - 0.01, allv.max() + 0.01
        bins, grid = np.linspace(lo, hi, 31), np.linspace(lo, hi, 200)
        for i, (vals, name) in enumerate(sets):
            if len(vals):
                ax.hist(vals, bins=bins, density=True, alpha=0.4, color=f"C{i}",
                        label=f"{name}, n={len(vals)}")
            if len(vals) > 1 and vals.std() > 0:
                ax.plot(grid, kde(vals, grid), color=f"C{i}")
        label_panel(ax, xlabel="cosine similarity of [mem] vectors (unitless)", ylabel="density",
                        title=f"Fig. 7: {run.label}, {a.get('dataset', '?')}")
    return fig


def build_interpolation_figure(runs: list[Run]) -> Figure:
    """Fig. 8: accuracy along lines between two solutions of one text, min/max envelopes."""
    fig, panels = _analysis_panels(runs, "interpolation", lambda a: a.get("thetas") and any(
        len(c) == len(a["thetas"]) for c in a.get("curves") or []))
    for ax, run, a in panels:
        th = np.asarray(a["thetas"], dtype=float)
        curves = np.array([c for c in a["curves"] if len(c) == len(th)], dtype=float)
        for j, c in enumerate(curves):
            ax.plot(th, c, color="C0", alpha=0.3, lw=0.8,
                    label=f"one pair of solutions (n={len(curves)})" if j == 0 else None)
        ax.fill_between(th, curves.min(0), curves.max(0), color="C0", alpha=0.15,
                        label="min–max envelope")
        ax.plot(th, curves.min(0), "--", color="C3", label="min")
        ax.plot(th, curves.max(0), "--", color="C2", label="max")
        ax.plot(th, curves.mean(0), color="k", lw=2, label="mean")
        label_panel(ax, xlabel="θ (0 = first solution, 1 = second)",
                        ylabel="teacher-forced accuracy (fraction of tokens)", ylim=(0, 1.03),
                        title=f"Fig. 8: {run.label}, {a.get('dataset', '?')}")
    return fig


def _writer(build: Callable[[list[Run]], Figure], name: str) -> Callable[..., list[Path]]:
    def write(runs: list[Run], out_dir: Path, formats: Sequence[str] = ("png",)) -> list[Path]:
        """Draw the figure into out_dir/<name>.<format>; raises Skip when its data is missing."""
        return save(build(runs), Path(out_dir), name, formats)

    write.__name__ = write.__qualname__ = f"fig_{name.split('_', 1)[1]}"
    return write


fig_capacity = _writer(build_capacity_figure, "fig1_capacity")
fig_ce = _writer(build_ce_figure, "fig3_ce")
fig_mem_scaling = _writer(build_mem_scaling_figure, "fig4_mem_scaling")
fig_eq1 = _writer(build_eq1_figure, "fig5_eq1")
fig_accuracy_length = _writer(build_accuracy_length_figure, "fig_accuracy_length")
fig_similarity = _writer(build_similarity_figure, "fig7_similarity")
fig_interpolation = _writer(build_interpolation_figure, "fig8_interpolation")

FIGURES: dict[str, tuple[Callable[..., list[Path]], str]] = {
    "fig1_capacity": (fig_capacity, "Fig. 1: decoding capacity per model and dataset"),
    "fig3_ce": (fig_ce, "Fig. 3/6: text CE without vs with [mem]; lossless threshold"),
    "fig4_mem_scaling": (fig_mem_scaling, "Fig. 4: capacity vs number of [mem] vectors"),
    "fig5_eq1": (fig_eq1, "Fig. 5: Eq. 1 capacity vs token gain; utilization"),
    "fig_accuracy_length": (fig_accuracy_length, "Accuracy vs text length"),
    "fig7_similarity": (fig_similarity, "Fig. 7: cosine similarity, same vs different texts"),
    "fig8_interpolation": (fig_interpolation, "Fig. 8: accuracy along interpolation lines"),
}


def make_figures(runs: list[Run], out_dir: Path, formats: Sequence[str] = ("png",)
                 ) -> tuple[dict[str, list[Path]], dict[str, str]]:
    """Every figure whose data is there: (written {name: paths}, skipped {name: reason})."""
    written: dict[str, list[Path]] = {}
    skipped: dict[str, str] = {}
    for name, (draw, _) in FIGURES.items():
        try:
            written[name] = draw(runs, Path(out_dir), formats)
        except Skip as why:
            skipped[name] = str(why)
    return written, skipped
