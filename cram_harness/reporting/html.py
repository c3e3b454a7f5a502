"""One self-contained HTML report of results files: the figures (PNG, embedded as data URIs),
Table 1, the figures skipped and why, and the settings every number came from. The page
loads nothing from the network; matplotlib is imported only when the report is written."""

from __future__ import annotations

import base64
import html
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cram_harness.atomic import write_text_atomic
from cram_harness.reporting.tables import COLUMNS, SETTINGS, fmt, settings_text, table1_rows

if TYPE_CHECKING:
    from cram_harness.reporting.runs import Run

# Margins on every screen, and nothing wider than the window: tables take its width and
# wrap their cells, figures scale down.
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; padding: 0 2em; max-width: 1100px;
       color: #222; line-height: 1.4; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.8em; width: 100%; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.35em; text-align: right; vertical-align: top;
         overflow-wrap: break-word; }
caption { caption-side: bottom; color: #555; padding-top: 0.3em; }
th:first-child, td:first-child, .settings td { text-align: left; }
thead th { background: #f2f2f2; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; } code { font-size: 0.9em; overflow-wrap: anywhere; }
"""
# Tells a headless browser (and the tests) whether every image decoded and whether the page
# fits its window with a margin: no network involved.
SCRIPT = """
window.addEventListener("load", function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) { if (imgs[i].complete && imgs[i].naturalWidth > 0) ok++; }
  var body = document.body, page = document.documentElement, widest = 0;
  var boxes = document.querySelectorAll("table, figure, img, p, h1, h2");
  for (var j = 0; j < boxes.length; j++) {
    widest = Math.max(widest, boxes[j].getBoundingClientRect().right);
  }
  body.setAttribute("data-images-loaded", ok + "/" + imgs.length);
  body.setAttribute("data-layout", JSON.stringify({
    window: window.innerWidth, page: page.scrollWidth, right: Math.ceil(widest),
    left: Math.floor(document.querySelector("h1").getBoundingClientRect().left)}));
});
"""
CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
       "script-src 'unsafe-inline'")
PACKAGES = ("cram-harness", "torch", "transformers", "peft", "lm_eval", "datasets")


def is_report(text: str) -> bool:
    """Whether `text` (a file's start) is a report.html that `render_report` wrote."""
    return "<title>cram-harness report</title>" in text


def write_report(results: list[dict], out_dir: Path,
                 formats: Sequence[str] = ("png",)) -> Path:
    """Write the figures (PNG always, plus `formats`) and out_dir/report.html; return its path."""
    from cram_harness.reporting.figures import make_figures
    from cram_harness.reporting.runs import load_runs

    out_dir = Path(out_dir)
    runs = load_runs(results)
    written, skipped = make_figures(runs, out_dir, tuple(dict.fromkeys(("png", *formats))))
    path = out_dir / "report.html"
    write_text_atomic(path, render_report(runs, written, skipped))
    return path


def render_report(runs: list[Run], written: dict[str, list[Path]],
                  skipped: dict[str, str]) -> str:
    """The page as text, from runs and make_figures' (written, skipped)."""
    from cram_harness.reporting.figures import FIGURES

    e = html.escape
    parts = [
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">",
        "<title>cram-harness report</title>",
        f"<style>{STYLE}</style><script>{SCRIPT}</script></head><body>",
        "<h1>cram-harness report</h1>",
        f"<p>Written {e(time.strftime('%Y-%m-%d %H:%M:%S'))} from {len(runs)} results "
        f"file{'s' if len(runs) != 1 else ''}: "
        + ", ".join(f"<b>{e(r.label)}</b>" for r in runs) + ". Units: lengths and gains in "
        "tokens, cross-entropy and information gain in nats. Runs of one model with different "
        "settings are kept apart; their labels name the settings that differ.</p>",
        "<h2>Table 1</h2>", table_html(runs),
        "<h2>Figures</h2>",
    ]
    for name, paths in written.items():
        png = next((p for p in paths if p.suffix == ".png"), None)
        if png is None:
            continue
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        title = FIGURES[name][1] if name in FIGURES else name
        others = ", ".join(e(p.name) for p in paths if p is not png)
        parts.append(
            f"<figure id=\"{e(name)}\"><img src=\"data:image/png;base64,{data}\" "
            f"alt=\"{e(title)}\"><figcaption>{e(title)} ({e(png.name)}"
            + (f"; also {others}" if others else "") + ")</figcaption></figure>")
    if not written:
        parts.append("<p>No figure could be drawn from these results.</p>")
    parts.append("<h2>Skipped figures</h2>")
    if skipped:
        parts.append("<ul class=\"skipped\">" + "".join(
            f"<li><b>{e(FIGURES[n][1] if n in FIGURES else n)}</b>: {e(why)}</li>"
            for n, why in skipped.items()) + "</ul>")
    else:
        parts.append("<p>None: every figure had its data.</p>")
    parts += ["<h2>Settings</h2>", "<p>Which settings and protocol each number came from "
              "(\"default\": the task's or the engine's own value).</p>",
              settings_html(runs), "</body></html>\n"]
    return "\n".join(parts)


def table_html(runs: list[Run]) -> str:
    """Table 1, one row per run label and dataset (runs of different settings stay apart)."""
    rows = table1_rows([{**r.results, "model_name": r.label} for r in runs])
    if not rows:
        return "<p>No task results.</p>"
    # as in the terminal: shared settings in the caption, differing ones under the model
    varying = [k for k in SETTINGS if len({str(r.get(k)) for r in rows}) > 1]
    shared = settings_text(rows[0], [k for k in SETTINGS if k not in varying])
    columns = [(key, title) for key, title in COLUMNS if key not in SETTINGS]
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in columns)
    body = ""
    for row in rows:
        cells = [html.escape(fmt(row.get(key))) for key, _ in columns]
        if varying:
            cells[0] += f"<br><small>{html.escape(settings_text(row, varying))}</small>"
        body += "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>\n"
    caption = f"<caption>{html.escape(shared)}</caption>" if shared else ""
    return (f"<table class=\"table1\">{caption}<thead><tr>{head}</tr></thead>\n<tbody>\n"
            f"{body}</tbody></table>")


def _value(value: object) -> str:
    if value is None:
        return "default"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value)) or "-"
    return str(value)


def run_settings(run: Run) -> dict[str, str]:
    """The settings of one run, as text, in the order the report shows them."""
    cfg = run.results.get("config", {})
    env = run.results.get("environment", {})
    out = {"model": run.model, "tasks": _value(list(run.results.get("results", {})))}
    for key in ("limit", "lengths", "mem_tokens", "protocol", "lr", "max_steps", "min_margin",
                "temperature", "subspace", "seed", "dtype", "autocast", "batch_size",
                "past_capacity", "stop_below"):
        value = run.setting(key)  # the records' own value where the config says default
        if key in cfg or value is not None:
            out[key] = _value(value)
    out["device"] = _value(env.get("gpu") or env.get("device") or cfg.get("device"))
    out["packages"] = ", ".join(f"{p} {env[p]}" for p in PACKAGES if env.get(p)) or "-"
    out["results file"] = _value(run.results.get("results_file"))
    return out


def settings_html(runs: list[Run]) -> str:
    """One column per run, one row per setting."""
    table = [run_settings(r) for r in runs]
    keys = list(dict.fromkeys(k for t in table for k in t))
    head = "<th>setting</th>" + "".join(f"<th>{html.escape(r.label)}</th>" for r in runs)
    body = "".join(
        f"<tr><td>{html.escape(k)}</td>"
        + "".join(f"<td><code>{html.escape(t.get(k, '-'))}</code></td>" for t in table)
        + "</tr>\n" for k in keys)
    return (f"<table class=\"settings\"><thead><tr>{head}</tr></thead>\n<tbody>\n{body}"
            "</tbody></table>")
