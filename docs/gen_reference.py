"""MkDocs hook: the generated parts of the docs, so that they cannot drift from the code.

A page asks for a generated part with a marker line; the hook replaces the marker:

    <!-- generated: cli-reference -->   every `cram-eval` command, argument and option
    <!-- generated: task-list -->       every registered task and group (the task registry)
    <!-- generated: lm-eval-tasks -->   the task names cram-harness adds to lm-eval
    <!-- generated: data-sources -->    every registered data source and its options
    <!-- generated: model-aliases -->   every registered model alias
    <!-- generated: model-families -->  the model families the tests check
    <!-- generated: engine-defaults --> the engine options and their defaults (CramConfig)
    <!-- generated: metric-table -->    every metric a results file holds (metrics.METRICS)

An unknown marker fails the build. Registered in mkdocs.yml under `hooks:`; the functions
are also importable (tests/test_docs.py checks the output against the click commands).
"""

from __future__ import annotations

import html
import inspect
import re
from pathlib import Path

import click
import yaml

_UNSET = getattr(click.core, "UNSET", None)  # click >= 8.3: "no default" is a sentinel
MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.MULTILINE)


def _cell(text: object) -> str:
    """Text for a markdown table cell: one line, HTML-escaped, pipes escaped."""
    flat = " ".join(str(text).split())
    return html.escape(flat, quote=False).replace("|", "\\|")


def _code(text: object) -> str:
    return "`" + str(text).replace("|", "\\|") + "`"


def _help_to_markdown(text: str | None) -> str:
    """Click help text as markdown: `\\b` paragraphs (kept verbatim by click) become
    console blocks, the others flowing paragraphs."""
    out = []
    for para in inspect.cleandoc(text or "").split("\n\n"):
        lines = para.splitlines()
        if lines and lines[0].strip() == "\b":
            out.append("```console\n" + "\n".join(f"$ {line.strip()}" for line in lines[1:])
                       + "\n```")
        elif para.strip():
            out.append(html.escape(" ".join(para.split()), quote=False))
    return "\n\n".join(out)


def _param_type(param: click.Parameter) -> str:
    if isinstance(param, click.Option) and param.is_flag:
        return "flag"
    if isinstance(param.type, click.Choice):
        return " \\| ".join(_code(c) for c in param.type.choices)
    return {"integer": "int"}.get(param.type.name, param.type.name)


def _param_row(param: click.Parameter) -> str:
    notes = []
    if isinstance(param, click.Argument):
        name = param.human_readable_name + ("..." if param.nargs == -1 else "")
        names = _code(name)
        notes.append("argument")
    else:
        names = ", ".join(_code(o) for o in [*param.opts, *param.secondary_opts])
    kind = _param_type(param)
    if param.required:
        notes.append("required")
    if getattr(param, "multiple", False):
        notes.append("repeatable")
    default = param.default
    unset = default is None or default is False or default == () or default is _UNSET
    if not unset and not callable(default):
        shown = ",".join(map(str, default)) if isinstance(default, (tuple, list)) else default
        notes.append(f"default {_code(shown)}")
    help_text = _cell(getattr(param, "help", None) or "")
    extra = "; ".join(notes)
    return f"| {names} | {kind} | {extra} | {help_text} |"


def cli_reference(group: click.Group | None = None, prog: str = "cram-eval") -> str:
    """Markdown for every command of the `cram-eval` click group, in definition order."""
    if group is None:
        from cram_harness.cli import cli as group
    root = click.Context(group, info_name=prog)
    parts = [_help_to_markdown(group.help), "", "Options of `cram-eval` itself: `--version`, "
             "`--help`; every command takes `--help` too."]
    for name, command in group.commands.items():
        ctx = click.Context(command, info_name=name, parent=root)
        usage = " ".join([prog, name, *command.collect_usage_pieces(ctx)])
        parts += ["", f"## `{prog} {name}`", "", _help_to_markdown(command.help), "",
                  f"```text\n{usage}\n```"]
        params = [p for p in command.params if p.name != "help"]
        if params:
            parts += ["", "| name | type | notes | description |", "|---|---|---|---|"]
            parts += [_param_row(p) for p in params]
    return "\n".join(parts) + "\n"


def _lengths(values) -> str:
    values = list(values)
    if len(values) <= 4:
        return ", ".join(map(str, values))
    return f"{values[0]}, {values[1]}, ..., {values[-1]} ({len(values)} lengths)"


def _source(spec: dict) -> str:
    options = ", ".join(f"{k}: {v}" for k, v in spec.items() if k != "kind")
    return f"{spec['kind']}" + (f" ({options})" if options else "")


def task_list() -> str:
    """Markdown tables of the registry's groups and tasks (built-in and installed plugins)."""
    from cram_harness.harness.registry import all_tasks
    from cram_harness.harness.tasks import GroupConfig

    items = all_tasks()
    groups = {n: g for n, g in sorted(items.items()) if isinstance(g, GroupConfig)}
    tasks = {n: t for n, t in sorted(items.items()) if not isinstance(t, GroupConfig)}
    parts = ["## Groups", "", "| group | tasks | description |", "|---|---|---|"]
    parts += [f"| {_code(n)} | {', '.join(_code(t) for t in g.tasks)} | {_cell(g.description)} |"
              for n, g in groups.items()]
    for dataset in sorted({t.dataset for t in tasks.values()}):
        mine = {n: t for n, t in tasks.items() if t.dataset == dataset}
        sources = sorted({_source(t.source) for t in mine.values()})
        parts += ["", f"## Dataset `{dataset}`", "",
                  f"Source: {', '.join(_code(s) for s in sources)}.", "",
                  "| task | kind | lengths | sampling | `[mem]` vectors | samples | "
                  "past capacity | description |", "|---|---|---|---|---|---|---|---|"]
        for name, t in mine.items():
            parts.append(
                f"| {_code(name)} | {t.kind} | {_lengths(t.lengths)} | {t.sampling} | "
                f"{', '.join(map(str, t.mem_tokens))} | {t.num_samples} | {t.past_capacity} | "
                f"{_cell(t.description)} |")
    return "\n".join(parts) + "\n"


def _lm_eval_task_dir() -> Path | None:
    """The lm-eval task YAML, found as `lm_eval_bridge.task_dir` does, without importing
    lm-eval (slow)."""
    import cram_harness

    here = Path(cram_harness.__file__).resolve().parent
    for candidate in (here / "lm_eval_tasks", here.parent / "plugins" / "lm_eval"):
        if candidate.is_dir():
            return candidate
    return None


def lm_eval_tasks() -> str:
    directory = _lm_eval_task_dir()
    if directory is None:
        raise RuntimeError("cram-harness's lm-eval task YAML is missing")
    parts = ["| lm-eval task | tags | cram-harness task |", "|---|---|---|"]
    for path in sorted(directory.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        tags = ", ".join(_code(t) for t in data.get("tag", []))
        parts.append(f"| {_code(data['task'])} | {tags} | "
                     f"{_code(data['metadata']['cram_task'])} |")
    return "\n".join(parts) + "\n"


def _signature(factory) -> str:
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return ""
    shown = []
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        shown.append(_code(p.name if p.default is p.empty else f"{p.name}: {p.default!r}"))
    return ", ".join(shown)


def data_sources() -> str:
    from cram_harness.harness.registry import DATA

    parts = ["| `kind` | options (defaults) | description |", "|---|---|---|"]
    for name in DATA.names():
        factory = DATA.get(name)
        doc = inspect.getdoc(factory) or ""
        parts.append(f"| {_code(name)} | {_signature(factory)} | "
                     f"{_cell(doc.split(chr(10) * 2)[0])} |")
    return "\n".join(parts) + "\n"


def model_aliases() -> str:
    from cram_harness.models.load import ALIASES, MODELS

    parts = ["| alias | from |", "|---|---|"]
    for name in MODELS.names():
        origin = "built in" if name in ALIASES else "a plugin (entry point)"
        parts.append(f"| {_code(name)} | {origin} |")
    return "\n".join(parts) + "\n"


def model_families() -> str:
    from cram_harness.models.families import FAMILIES

    parts = ["| family (`model_type`) | kind | checked from transformers | a checkpoint |",
             "|---|---|---|---|"]
    for family in FAMILIES:
        parts.append(f"| {_code(family.model_type)} | {family.kind} | {family.since} | "
                     f"`hf:{family.example}` |")
    return "\n".join(parts) + "\n"


def engine_defaults() -> str:
    """CramConfig's fields, as declared (cram_harness/config.py): default, range, help."""
    from dataclasses import fields

    from cram_harness.config import CramConfig, flag
    from cram_harness.harness.settings import EngineSettings

    user = {f.name for f in fields(EngineSettings)}
    parts = ["| option | default | values | meaning |", "|---|---|---|---|"]
    for f in fields(CramConfig):
        check = f.metadata["check"]
        cli = f" (`{flag(f)}`)" if f.name in user or f.metadata.get("flag") else ""
        parts.append(f"| `{f.name}`{cli} | `{f.default!r}` | {_cell(check.what)} | "
                     f"{_cell(f.metadata['help'])} |")
    return "\n".join(parts) + "\n"


def metric_table() -> str:
    from cram_harness.metrics import AGGREGATIONS, METRICS

    better = {True: "higher", False: "lower", None: "neither"}
    parts = ["| metric | under fast, max | task kinds | aggregation | better | unit | what |",
             "|---|---|---|---|---|---|---|"]
    for m in METRICS:
        kinds = ", ".join(map(_code, m.kinds)) or "lm-eval's tasks"
        parts.append(f"| {_code(m.name)} | {_code(m.climbing_name) if m.climbing_name else '='}"
                     f" | {kinds} | {_cell(AGGREGATIONS[m.aggregation])} | "
                     f"{better[m.higher_is_better]} | {m.unit} | {_cell(m.paper)} |")
    return "\n".join(parts) + "\n"


GENERATORS = {
    "cli-reference": cli_reference,
    "task-list": task_list,
    "lm-eval-tasks": lm_eval_tasks,
    "data-sources": data_sources,
    "model-aliases": model_aliases,
    "model-families": model_families,
    "engine-defaults": engine_defaults,
    "metric-table": metric_table,
}


def render(markdown: str, where: str = "page") -> str:
    """The page with every marker replaced by its generated markdown."""

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise ValueError(f"{where}: unknown generated part {name!r} "
                             f"(known: {', '.join(GENERATORS)})")
        return GENERATORS[name]()

    return MARKER.sub(replace, markdown)


def on_page_markdown(markdown: str, page, config, files, **kwargs) -> str:
    """MkDocs hook event."""
    return render(markdown, page.file.src_uri)
