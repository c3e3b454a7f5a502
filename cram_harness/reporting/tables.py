"""Tables from results files: the paper's Table 1 per model, and the leaderboard.
Reads JSON only; no torch."""

from __future__ import annotations

import csv
import html
import io
import json
import warnings
from collections.abc import Iterable
from pathlib import Path

from cram_harness import metrics, schemas
from cram_harness.config import engine_default
from cram_harness.errors import CramError
from cram_harness.protocols import protocol_of_file

COLUMNS = [
    ("model", "model"),
    ("dataset", "dataset"),
    ("protocol", "protocol"),
    ("precision", "precision"),
    ("lr", "lr"),
    ("max_steps", "max steps"),
    ("other", "other settings"),
    ("d_model", "d_model"),
    ("eq1", "Eq. 1"),
    ("capacity", "capacity"),
    ("greedy_capacity", "greedy capacity"),
    ("token_gain", "token gain"),
    ("information_gain", "info gain (nats)"),
    ("information_gain_bits", "info gain (bits)"),
    ("utilization", "utilization"),
    ("n_full_vectors", "full vectors"),
]
# Table 1's metric columns: column -> the metric it shows
METRIC_COLUMNS = {"capacity": "decoding_capacity", "greedy_capacity": "greedy_capacity",
                  "utilization": "capacity_utilization", "n_full_vectors": "n_full_vectors",
                  "token_gain": "token_gain", "information_gain": "information_gain",
                  "information_gain_bits": "information_gain_bits"}
FORMATS = ("table", "markdown", "csv", "html")
# The terminal table keeps to what fits 80 columns; the files carry every column.
TERMINAL = ("model", "dataset", "protocol", "precision", "lr", "capacity", "greedy_capacity",
            "token_gain", "information_gain", "eq1", "utilization")
SETTINGS = ("protocol", "precision", "lr", "max_steps", "other")
# engine settings beyond the paper's, named in a row's settings where they differ from its
OTHER_SETTINGS = tuple((key, name, engine_default(key)) for key, name in (
    ("min_margin", "margin"), ("temperature", "temperature"), ("subspace", "subspace"),
    ("patience", "patience")))
# the columns shown as mean ± std
MEAN_STD = tuple(col for col, name in METRIC_COLUMNS.items()
                 if metrics.metric(name).aggregation == "mean_std")
SHORT = {"capacity": "cap.", "greedy_capacity": "greedy", "token_gain": "token\ngain",
         "information_gain": "info\n(nats)", "utilization": "util."}


def load_results(paths: Iterable[str | Path]) -> list[dict]:
    """Results files, from files or directories (searched recursively for results_*.json),
    oldest first within a directory (the names carry the time). Tables built from several
    files of one model show the latest file's numbers."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(p.rglob("results_*.json"))
        elif p.is_file():
            files.append(p)
        else:
            raise CramError(f"{p} does not exist: give results files or directories")
    if not files:
        raise CramError(f"no results_*.json found in {', '.join(map(str, paths))}")
    loaded, skipped = [], []
    for f in files:
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
            wrong = schemas.results_problem(data)
        except (OSError, ValueError) as exc:  # unreadable, not UTF-8, not JSON
            wrong = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if wrong:  # a file that is not ours is named and skipped; the others still count
            skipped.append(f"{f}: {wrong}")
            continue
        data.setdefault("results_file", str(f))
        loaded.append(data)
    if not loaded:
        raise CramError(f"{skipped[0]}: not a cram-eval results file"
                        + (f" (nor the {len(skipped) - 1} others)" if len(skipped) > 1 else ""))
    for line in skipped:
        warnings.warn(f"{line}: not a cram-eval results file, skipped", stacklevel=2)
    return loaded


def _metric(task: dict, name: str, protocol: str, stat: str = ""):
    """A metric of a results entry under the file's protocol's name (`stat`: "_std")."""
    key = metrics.metric(name).key(protocol_of_file(protocol).climbs) + stat
    return task.get(metrics.result_key(key))


def settings_text(row: dict, keys: Iterable[str]) -> str:
    """Settings as a line: "paper · fp32 · lr 0.03 · 300 steps"."""
    words = {"protocol": "{}", "precision": "{}", "lr": "lr {}", "max_steps": "{} steps",
             "other": "{}"}
    return " · ".join(words[k].format(row[k]) for k in keys if row.get(k) is not None)


def precision_label(weights: str | None, compute: str | None) -> str:
    """How a run computed: fp32, bf16 autocast over fp32 weights, or low-precision weights."""
    weights = (weights or "float32").replace("torch.", "")
    if weights in ("bfloat16", "float16"):
        return f"{'bf16' if weights == 'bfloat16' else 'fp16'} weights"
    return "bf16 autocast" if compute == "bf16" else "fp32"


def run_settings(res: dict) -> dict:
    """Protocol, precision and lr of a results file: what keeps its rows apart from others'."""
    engine, cfg = res.get("engine") or {}, res.get("config") or {}
    lr = engine.get("lr", cfg.get("lr"))
    other = ", ".join(f"{name} {engine[key]:g}" for key, name, paper in OTHER_SETTINGS
                      if isinstance(engine.get(key), int | float) and engine[key] != paper)
    return {"protocol": engine.get("protocol") or cfg.get("protocol") or "paper",
            "precision": precision_label(engine.get("weights")
                                         or res.get("model_info", {}).get("dtype"),
                                         engine.get("dtype")),
            "lr": None if lr is None else f"{lr:g}",
            "max_steps": engine.get("max_steps", cfg.get("max_steps")),
            "other": other or None}


def table1_rows(results: list[dict]) -> list[dict]:
    """One row per model, dataset, protocol, precision and lr, in the shape of the paper's
    Table 1. Files are read in order: a later file replaces an earlier one's numbers only in
    the row of the same settings, never another protocol's."""
    rows: dict[tuple, dict] = {}
    for res in results:
        info = res.get("model_info", {})
        settings = run_settings(res)
        protocol = settings["protocol"]
        for name, task in res["results"].items():
            config = res.get("configs", {}).get(name, {})
            dataset, kind = config.get("dataset", "?"), config.get("kind")
            key = (res["model_name"], dataset, *settings.values())
            row = rows.setdefault(key, {
                "model": res["model_name"], "dataset": dataset, **settings,
                "d_model": info.get("d_model"), "eq1": info.get("eq1_capacity")})
            for col, metric in METRIC_COLUMNS.items():
                # a column shows the metric of the kinds that report it for Table 1 (a
                # capacity estimate's information gain is another: its probe length's alone)
                if kind is not None and kind not in metrics.metric(metric).kinds:
                    continue
                found = _metric(task, metric, protocol)
                if found is not None:
                    row[col] = (found, _metric(task, metric, protocol, "_std")) \
                        if col in MEAN_STD else found
    return sorted(rows.values(), key=lambda r: (r["dataset"], -(r.get("capacity") or 0)))


def fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, tuple):
        mean, std = value
        if mean is None:
            return "-"
        return f"{mean:.1f} ± {std:.1f}" if std is not None else f"{mean:.1f}"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.0f}"
    return str(value)


def render(rows: list[dict], fmt_name: str = "table") -> str:
    """Rows as markdown, csv or html text ('table' is drawn by `rich_table`)."""
    header = [title for _, title in COLUMNS]
    cells = [[fmt(row.get(key)) for key, _ in COLUMNS] for row in rows]
    if fmt_name == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c) + " |" for c in cells]
        return "\n".join(lines) + "\n"
    if fmt_name == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(csv_columns())
        for row in rows:
            writer.writerow([_csv_value(row.get(key.removesuffix("_std")),
                                        std=key.endswith("_std")) for key in csv_columns()])
        return buf.getvalue()
    if fmt_name == "html":
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in cells)
        return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>cram-harness "
                "leaderboard</title></head><body>\n<table>\n<thead><tr>" + head +
                "</tr></thead>\n<tbody>" + body + "</tbody>\n</table>\n</body></html>\n")
    raise CramError(f"unknown format {fmt_name!r}: use one of {', '.join(FORMATS)}")


def is_leaderboard(text: str) -> bool:
    """Whether `text` (a file's start) is a leaderboard `render` or the table wrote, in any
    format: such a file may be written over."""
    first = text.lstrip().split("\n", 1)[0]
    return (first.startswith("model,dataset,") and ",capacity" in first  # csv
            or first.startswith("| model | dataset |")  # markdown
            or "<title>cram-harness leaderboard</title>" in text[:400]  # html
            or "cram-harness leaderboard" in first)  # the rich table's title


def _csv_value(value, std: bool = False):
    if isinstance(value, tuple):
        value = value[1 if std else 0]
    return "" if value is None else value


def csv_columns() -> list[str]:
    """The CSV's columns: each mean-and-std metric as two, so that no std is lost."""
    return [c for key, _ in COLUMNS
            for c in ((key, f"{key}_std") if key in MEAN_STD else (key,))]


def terminal_cell(key: str, value) -> str:
    """A cell as the paper prints it, short enough for 80 columns: gains in tokens with one
    decimal, in nats as whole numbers, utilization as a percentage."""
    if key in ("information_gain", "information_gain_bits") and isinstance(value, tuple) \
            and value[0] is not None:
        mean, std = value
        return f"{mean:.0f} ± {std:.0f}" if std is not None else f"{mean:.0f}"
    if key == "utilization" and isinstance(value, float):
        return f"{value:.1%}"
    return fmt(value)


def rich_table(rows: list[dict], title: str = "cram-harness: Table 1"):
    """Table 1 for a terminal, within 80 columns: settings that every row shares go into
    the caption; those that tell rows apart go under each row's model name."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    varying = [k for k in SETTINGS if len({str(r.get(k)) for r in rows}) > 1]
    caption = settings_text(rows[0], [k for k in SETTINGS if k not in varying]) if rows else ""
    table = Table(title=title, caption=caption or None, box=box.SIMPLE_HEAD, padding=(0, 1),
                  collapse_padding=True, show_edge=False, pad_edge=False)
    keys = [k for k in TERMINAL if k not in SETTINGS]
    for key in keys:
        title_ = SHORT.get(key, dict(COLUMNS)[key])
        if key in ("model", "dataset"):  # names fold only when they must
            table.add_column(title_, overflow="fold")
        else:
            table.add_column(title_, justify="right", no_wrap=True)
    for row in rows:
        cells = [escape(terminal_cell(key, row.get(key))) for key in keys]
        if varying:
            cells[0] += "\n[dim]" + escape(settings_text(row, varying)) + "[/]"
        table.add_row(*cells)
    return table
