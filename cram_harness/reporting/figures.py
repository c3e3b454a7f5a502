"""The paper's figures from results files: Fig. 1 (capacity), 3/6 (CE without vs with [mem]),
4 (capacity vs number of [mem] vectors), 5 (Eq. 1 vs token gain, utilization), accuracy vs
length, 7 (cosine similarity) and 8 (interpolation). Only the report command imports this
module; it draws on matplotlib's Agg canvas and never touches pyplot's global state."""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from cram_harness.atomic import atomic_path
from cram_harness.metrics import LOSSLESS_THRESHOLD as THRESHOLD
from cram_harness.metrics import full_vector_gains
from cram_harness.reporting.runs import Run

DPI = 130
MIN_FIT_POINTS = 3  # a line through two points says nothing about the slope's spread


class Skip(Exception):  # noqa: N818 - a figure skipped for missing data, not an error
    """A figure whose data is missing; str() is the one-line reason."""


def _val(values: dict, metric: str) -> float | None:
    v = values.get(f"{metric},none")
    ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    return float(v) if ok else None


def _either(values: dict, metric: str) -> float | None:
    """A metric under the paper's name, else under a progressive protocol's own."""
    value = _val(values, metric)
    return value if value is not None else _val(values, f"progressive_{metric}")


def _figure(panels: int = 1, width: float = 7.0) -> tuple[Figure, list]:
    cols = min(panels, 3)
    rows = math.ceil(panels / cols)
    size = (width, 4.5) if panels == 1 else (5.2 * cols, 4.3 * rows)
    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = list(fig.subplots(rows, cols, squeeze=False).ravel())
    for ax in axes[panels:]:
        ax.set_visible(False)
    return fig, axes[:panels]


def _save(fig: Figure, out_dir: Path, name: str, formats: Sequence[str]) -> list[Path]:
    paths = []
    for fmt in formats:
        path = out_dir / f"{name}.{fmt}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=DPI)
        paths.append(path)
    return paths


def _colors(runs: list[Run]) -> dict[str, str]:
    """One color per run label, the same in every figure."""
    return {run.label: f"C{i % 10}" for i, run in enumerate(runs)}


def _legend_right(ax, **kw: object) -> None:
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), **kw)


def _log2(ax, axis: str = "x") -> None:
    """A base-2 log axis with plain numbers (8, 16, 32) as tick labels."""
    getattr(ax, f"set_{axis}scale")("log", base=2)
    getattr(ax, f"{axis}axis").set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def _bars(ax, items: list[tuple[str, str, float | None]], colors: dict[str, str],
          label: Callable[[float], str] = lambda v: f"{v:.0f}") -> None:
    """Grouped bars: x = dataset, one bar per run label (the legend); a missing value is an
    empty slot labelled "none". The value axis starts at 0."""
    groups = list(dict.fromkeys(g for g, _, _ in items))
    hues = [h for h in colors if any(h == hh for _, hh, _ in items)]
    width = 0.8 / len(hues)
    for j, hue in enumerate(hues):
        xs = [groups.index(g) + (j - (len(hues) - 1) / 2) * width for g, h, _ in items if h == hue]
        vals = [v for _, h, v in items if h == hue]
        bars = ax.bar(xs, [v or 0.0 for v in vals], width, label=hue, color=colors[hue])
        ax.bar_label(bars, ["none" if v is None else label(v) for v in vals], fontsize=8)
    ax.set_xticks(range(len(groups)), groups)
    _legend_right(ax, title="model")
    top = max((v for _, _, v in items if v), default=1.0)
    ax.set_ylim(0, top * 1.15)


def _capacity(values: dict, suffix: str = "") -> float | None:
    """The capacity of a results entry: the paper's, or a progressive protocol's own."""
    for name in (f"decoding_capacity{suffix}", f"progressive_capacity{suffix}"):
        if f"{name},none" in values:
            return _val(values, name)
    return None


def _has_capacity(values: dict) -> bool:
    return any(k in values for k in ("decoding_capacity,none", "progressive_capacity,none"))


def build_capacity_figure(runs: list[Run]) -> Figure:
    """Fig. 1: decoding capacity per model and dataset (one bar each)."""
    items = [(d, run.label, _capacity(v)) for run in runs
             for _, v, d in run.tasks("capacity") if _has_capacity(v)]
    if not items:
        raise Skip("no capacity results: run capacity_<dataset> or cram_<dataset>")
    if not any(v for _, _, v in items):
        raise Skip("no capacity to draw: no length reached mean accuracy 0.99 (run shorter "
                   "lengths, or more steps)")
    fig, (ax,) = _figure(width=8.5)
    _bars(ax, items, _colors(runs))
    ax.set(xlabel="dataset", ylabel="decoding capacity (tokens)",
           title="Fig. 1: decoding capacity of one [mem] vector (mean accuracy ≥ 0.99)")
    return fig


def _info_gain(run: Run, recs: list[dict]) -> tuple[float, str] | None:
    """The model's mean information gain (nats): the results', else over full-vector samples."""
    pairs = [(_either(v, "information_gain"), _val(v, "n_full_vectors") or 1.0)
             for _, v, _ in run.tasks("info_gain")]
    pairs = [(g, n) for g, n in pairs if g is not None]
    if pairs:
        return sum(g * n for g, n in pairs) / sum(n for _, n in pairs), "results"
    gain = full_vector_gains(recs)["information_gain"]
    return (gain.mean, "full-vector samples") if gain.n else None


def build_ce_figure(runs: list[Run]) -> Figure:
    """Fig. 3/6: per model, the text's CE without [mem] vs with [mem] (total nats)."""
    panels = []
    for run in runs:
        recs = [r for r in run.samples if r.usable and all(
            isinstance(r.get(k), int | float) for k in ("base_loss", "min_loss", "num_tokens"))]
        if recs:
            k = min(int(r.get("n_mem", 1)) for r in recs)
            panels.append((run, k, [r for r in recs if int(r.get("n_mem", 1)) == k]))
    if not panels:
        raise Skip("no per-sample records (samples_<task>_<time>.jsonl beside the results file)")
    fig, axes = _figure(len(panels))
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
        ig = _info_gain(run, recs)
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
        ax.set(xlabel="text CE without [mem] (nats: mean CE x L)",
               ylabel="lowest CE with [mem] (nats: min mean CE x L)",
               title=f"{run.label}: {k} [mem] vector{'s' if k > 1 else ''}")
        ax.legend(fontsize=7)
    return fig


def _scaling_series(run: Run) -> Iterator[tuple[str, dict[int, float | None]]]:
    """(dataset, {k: capacity}) from mem_scaling results, else from sweeps of several k."""
    found = False
    for _, values, dataset in run.tasks("mem_scaling"):
        caps = {int(m[2]): _capacity(values, f"_k{m[2]}") for key in values
                if (m := re.fullmatch(r"(decoding|progressive)_capacity_k(\d+),none", key))}
        if caps:
            found = True
            yield dataset, caps
    if found:
        return
    by_data: dict[str, dict[int, float | None]] = {}
    for s in run.results.get("sweeps", []):
        acc = {int(n): float(a) for n, a in (s.get("mean_accuracy") or {}).items()}
        ok = [n for n, a in acc.items() if a >= THRESHOLD]
        by_data.setdefault(s.get("dataset", "?"), {})[int(s.get("n_mem", 1))] = (
            float(max(ok)) if ok else None)
    yield from ((d, caps) for d, caps in by_data.items() if len(caps) > 1)


def _longest_run(run: Run, dataset: str, n_mem: int) -> float:
    """The longest length the run's sweep of this dataset and k reached (inf if unknown)."""
    lengths = [int(n) for s in run.results.get("sweeps", [])
               if s.get("dataset", dataset) == dataset and int(s.get("n_mem", 1)) == n_mem
               for n in (s.get("mean_accuracy") or {})]
    return max(lengths, default=math.inf)


def _scaling_hint(runs: list[Run]) -> str:
    """What to run for Fig. 4, for the datasets these runs used: their mem_scaling task
    where one exists, else a capacity task over several numbers of vectors."""
    from cram_harness.harness.registry import all_tasks

    known = all_tasks()
    datasets = sorted({s.get("dataset") for run in runs for s in run.results.get("sweeps", [])
                       if s.get("dataset")}) or ["random"]
    hints = [f"mem_scaling_{d}" if f"mem_scaling_{d}" in known
             else f"capacity_{d} --mem-tokens 1,2,4" for d in datasets]
    return "run " + " or ".join(hints)


def build_mem_scaling_figure(runs: list[Run]) -> Figure:
    """Fig. 4: capacity vs number of [mem] vectors, the ideal linear line, ±1 std bands."""
    series = [(run, d, caps) for run in runs for d, caps in _scaling_series(run)]
    if not series:
        raise Skip(f"no capacity per number of [mem] vectors: {_scaling_hint(runs)}")
    series = [(run, d, caps) for run, d, caps in series if any(caps.values())]
    if not series:
        raise Skip("no tested length reached mean accuracy 0.99 at any number of [mem] vectors")
    fig, (ax,) = _figure(width=9.0)
    styles, no_band = {}, []
    ideal: str | None = "ideal (dotted): capacity at k=1 × k"
    ceiling: str | None = "△ reached the longest length run: a lower bound, not a plateau"
    for index, (run, d, caps) in enumerate(series):
        color = f"C{index % 10}"  # one colour per series, not per model
        ks = sorted(caps)
        ys = np.array([np.nan if caps[k] is None else caps[k] for k in ks], dtype=float)
        style = styles.setdefault(d, "osDvp"[len(styles) % 5])
        ax.plot(ks, ys, f"{style}-", color=color, label=f"{run.label} ({d})")
        capped = [k for k in ks if caps[k] is not None and caps[k] >= _longest_run(run, d, k)]
        if capped:
            ax.plot(capped, [caps[k] for k in capped], "^", ms=11, mfc="none", color=color,
                    label=ceiling)
            ceiling = None
        base = next(((k, caps[k]) for k in ks if caps[k]), None)
        if base:
            ax.plot(ks, [base[1] / base[0] * k for k in ks], ":", color=color, label=ideal)
            ideal = None
        spread = []
        for k in ks:
            got = [float(r["best_accuracy"]) * int(r["length"]) for r in run.samples
                   if int(r.get("n_mem", 1)) == k and r.get("dataset", d) == d
                   and caps[k] is not None and int(r.get("length", -1)) == caps[k]]
            spread.append((np.mean(got), np.std(got, ddof=1)) if len(got) > 1 else None)
        if all(spread):
            mean, std = np.array(spread, dtype=float).T
            ax.fill_between(ks, mean - std, mean + std, color=color, alpha=0.2,
                            label=f"±1 std, decoded tokens at capacity ({run.label}, {d})")
        else:
            no_band.append(f"{run.label} ({d})")
    if no_band:
        note = textwrap.fill("no ±1 std band (too few samples at the capacity length of some k): "
                             + "; ".join(no_band), 70)
        ax.text(0.01, 0.99, note, transform=ax.transAxes, va="top", fontsize=7, in_layout=False)
    _log2(ax, "x")
    _log2(ax, "y")
    ax.set(xlabel="number of [mem] vectors k", ylabel="decoding capacity (tokens)",
           title="Fig. 4: capacity vs number of [mem] vectors")
    _legend_right(ax)
    return fig


def build_eq1_figure(runs: list[Run]) -> Figure:
    """Fig. 5: Eq. 1 capacity vs token gain, and capacity utilization natural vs random."""
    pts = []
    for run in runs:
        eq1 = run.results.get("model_info", {}).get("eq1_capacity")
        for _, v, d in run.tasks("token_gain"):
            tg = _either(v, "token_gain")
            if tg is not None and eq1:
                util = _either(v, "capacity_utilization")
                pts.append((run.label, d, float(eq1), tg, _either(v, "token_gain_std") or 0.0,
                            tg / eq1 if util is None else util))
    if not pts:
        raise Skip("no token gain results with an Eq. 1 capacity: run token_gain_<dataset>")
    fig, (ax, ax2) = _figure(2)
    fig.set_size_inches(13.0, 5.0)
    colors = _colors(runs)
    for index, (label, d, eq1, tg, std, _) in enumerate(pts):  # a colour per point
        ax.errorbar(eq1, tg, yerr=std, fmt="x" if d.startswith("random") else "o", capsize=3,
                    color=f"C{index % 10}", label=f"{label} ({d})")
    right = max(p[2] for p in pts) * 1.1
    ax.plot([0, right], [0, right], "k--", lw=1, label="y = x (Eq. 1 fully used)")
    # the gains are a few percent of Eq. 1 for small models: scale to them, let y = x leave
    ax.set_xlim(0, right)
    ax.set_ylim(0, max(p[3] + p[4] for p in pts) * 1.3)
    ax.set(xlabel="Eq. 1 theoretical capacity (tokens)",
           ylabel="token gain (tokens, mean ± std, full vectors)",
           title="Fig. 5: theoretical capacity vs token gain")
    ax.legend(fontsize=7)
    order = sorted({p[1] for p in pts}, key=lambda d: (d.startswith("random"), d))
    items = [(f"{d} ({'random' if d.startswith('random') else 'natural'})", lab, u)
             for d in order for lab, dd, _, _, _, u in pts if dd == d]
    _bars(ax2, items, colors, label=lambda v: f"{v:.1%}")
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
    fig, axes = _figure(len(datasets))
    dashes = ["-", "--", ":", "-."]
    ks = sorted({k for _, _, k, _ in lines})
    for ax, d in zip(axes, datasets, strict=True):
        mine = [(label, k, acc) for label, dd, k, acc in lines if dd == d]
        for index, (label, k, acc) in enumerate(mine):  # a colour per line of the panel
            ax.plot(*zip(*acc, strict=True), marker="o", ms=4, color=f"C{index % 10}",
                    ls=dashes[ks.index(k) % 4], label=f"{label}, {k} [mem]")
        ax.axhline(THRESHOLD, ls="--", color="gray", label="capacity threshold 0.99")
        _log2(ax)
        ax.set(xlabel="text length (tokens)", ylabel="mean best accuracy (teacher-forced)",
               ylim=(0, 1.03), title=f"accuracy vs length: {d}")
        ax.legend(fontsize=7)
    return fig


def _kde(vals: np.ndarray, grid: np.ndarray) -> np.ndarray:
    h = 1.06 * vals.std(ddof=1) * len(vals) ** -0.2  # Silverman's rule
    z = (grid[:, None] - vals[None, :]) / h
    return np.exp(-0.5 * z**2).mean(axis=1) / (h * math.sqrt(2 * math.pi))


def build_similarity_figure(runs: list[Run]) -> Figure:
    """Fig. 7: densities of cosine similarity, same text (intra) vs different texts (inter)."""
    items = [(run, a) for run in runs for a in run.analyses("similarity")
             if a.get("intra_cosine") or a.get("inter_cosine")]
    if not items:
        raise Skip("no similarity analysis: run similarity_<dataset>")
    fig, axes = _figure(len(items))
    for ax, (run, a) in zip(axes, items, strict=True):
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
                ax.plot(grid, _kde(vals, grid), color=f"C{i}")
        ax.set(xlabel="cosine similarity of [mem] vectors (unitless)", ylabel="density",
               title=f"Fig. 7: {run.label}, {a.get('dataset', '?')}")
        ax.legend(fontsize=7)
    return fig


def build_interpolation_figure(runs: list[Run]) -> Figure:
    """Fig. 8: accuracy along lines between two solutions of one text, min/max envelopes."""
    items = [(run, a) for run in runs for a in run.analyses("interpolation") if a.get("thetas")
             and any(len(c) == len(a["thetas"]) for c in a.get("curves") or [])]
    if not items:
        raise Skip("no interpolation analysis: run interpolation_<dataset>")
    fig, axes = _figure(len(items))
    for ax, (run, a) in zip(axes, items, strict=True):
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
        ax.set(xlabel="θ (0 = first solution, 1 = second)",
               ylabel="teacher-forced accuracy (fraction of tokens)", ylim=(0, 1.03),
               title=f"Fig. 8: {run.label}, {a.get('dataset', '?')}")
        ax.legend(fontsize=7)
    return fig


def _writer(build: Callable[[list[Run]], Figure], name: str) -> Callable[..., list[Path]]:
    def write(runs: list[Run], out_dir: Path, formats: Sequence[str] = ("png",)) -> list[Path]:
        """Draw the figure into out_dir/<name>.<format>; raises Skip when its data is missing."""
        return _save(build(runs), Path(out_dir), name, formats)

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
