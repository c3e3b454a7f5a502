"""Registries of tasks, model aliases and data sources, filled from the built-in files and
from third-party packages' entry points (plugins.py: each loaded when used).

Entry-point groups:
    cram_harness.tasks   -> a directory path, or a callable returning one (holding task YAML)
    cram_harness.models  -> a callable returning a GGUF path or a model directory (an alias;
                            the registry is models.load.MODELS)
    cram_harness.data    -> a DataSource factory, used as `source: {kind: <name>}`

Nothing here imports torch: `cram-eval ls` stays instant.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import types
import typing
from collections.abc import Iterable
from pathlib import Path

from cram_harness.errors import CramError
from cram_harness.harness.tasks import GroupConfig, TaskConfig, parse_file
from cram_harness.plugins import Registry, unknown_name


def _builtin_sources() -> dict[str, object]:
    from cram_harness.data import SOURCES

    return SOURCES


TASK_PLUGINS = Registry("task", "cram_harness.tasks")
DATA = Registry("data source", "cram_harness.data", _builtin_sources)


def builtin_task_dirs() -> list[Path]:
    """Task YAML shipped in the wheel (cram_harness/tasks) or in a checkout (./tasks)."""
    here = Path(__file__).resolve().parents[1]  # the package: cram_harness/
    return [d for d in (here / "tasks", here.parent / "tasks") if d.is_dir()][:1]


def plugin_task_dirs() -> list[Path]:
    """The task directories plugins add. A broken plugin's tasks are left out (its one line is
    in TASK_PLUGINS.problems()): only a run that names one of them fails, saying why."""
    dirs = []
    for name in TASK_PLUGINS.names():
        try:
            target = TASK_PLUGINS.get(name)
        except CramError:
            continue
        dirs.append(Path(target() if callable(target) else target))
    return dirs


def include_dir(given: str) -> Path:
    """An --include-path: a directory of task YAML, or one line naming what it is instead
    (nothing, a file, a symlink loop)."""
    path = Path(given).expanduser()
    try:
        path.resolve(strict=True)
    except FileNotFoundError:
        what = "is a symlink to nothing" if path.is_symlink() else "does not exist"
        raise CramError(f"--include-path {given} {what}: give a directory of task YAML") \
            from None
    except (RuntimeError, OSError) as exc:  # a symlink loop: RuntimeError up to Python 3.12
        why = getattr(exc, "strerror", None) or "a symlink loop"
        raise CramError(f"--include-path {given} cannot be followed ({why}): give a "
                        "directory of task YAML") from None
    if not path.is_dir():
        raise CramError(f"--include-path {given} is a file: give the directory of task YAML "
                        f"that holds it ({path.parent})")
    return path


def _task_files(directory: Path) -> list[Path]:
    """The *.yaml files under a directory; a directory or a link that is named so but holds
    no task is one line naming it."""
    try:
        paths = sorted(directory.rglob("*.yaml"))
    except OSError as exc:
        raise CramError(f"{exc.filename or directory}: cannot be searched for task YAML "
                        f"({exc.strerror}): fix or remove it") from None
    for path in paths:
        if path.is_dir():
            raise CramError(f"{path} is a directory named like a task file: rename it, or "
                            "move it out of the include path")
    return paths


@functools.cache
def _load_tasks(extra: tuple[str, ...]) -> dict[str, TaskConfig | GroupConfig]:
    found: dict[str, TaskConfig | GroupConfig] = {}
    for directory in [*builtin_task_dirs(), *plugin_task_dirs(), *map(include_dir, extra)]:
        for path in _task_files(directory):
            item = parse_file(path)
            if item.name in found:
                raise CramError(f"{path}: task name {item.name!r} is already defined in "
                                f"{found[item.name].path}")
            found[item.name] = item
    return found


def all_tasks(include: Iterable[str] = ()) -> dict[str, TaskConfig | GroupConfig]:
    """Every registered task and group, by name; `include` adds directories of YAML."""
    return _load_tasks(tuple(str(p) for p in include))


def resolve_tasks(names: Iterable[str], include: Iterable[str] = ()) -> list[TaskConfig]:
    """Task configs for names of tasks or groups, groups expanded, duplicates dropped."""
    registry = all_tasks(include)
    out: dict[str, TaskConfig] = {}

    def add(name: str, seen: tuple[str, ...] = ()) -> None:
        if name not in registry:
            broken = TASK_PLUGINS.problems()
            if broken:  # the task may be one of theirs
                raise CramError(f"unknown task {name!r}; a task plugin does not load: "
                                f"{next(iter(broken.values()))}")
            raise unknown_name("task", name, registry)
        item = registry[name]
        if isinstance(item, GroupConfig):
            if name in seen:
                raise CramError(f"{item.path}: group {name!r} includes itself")
            for sub in item.tasks:
                add(sub, (*seen, name))
        else:
            try:  # a source option of the wrong type fails here, before any model loads
                check_source(item.source)
            except CramError as exc:
                raise CramError(f"{item.path}: {exc}") from None
            out.setdefault(name, item)

    for name in names:
        add(name)
    if not out:
        raise CramError("no tasks given: pass --tasks NAME[,NAME...] (`cram-eval ls tasks`)")
    return list(out.values())


def group_members(names: Iterable[str], include: Iterable[str] = ()) -> dict[str, list[str]]:
    """The groups among `names`, each with the tasks it lists (the results file reports each
    group as its members' metrics)."""
    registry = all_tasks(include)
    return {name: list(registry[name].tasks) for name in names
            if isinstance(registry.get(name), GroupConfig)}


def make_source(spec: dict):
    """A data source from its task-YAML mapping, {kind: NAME, option: value, ...}, with
    errors a user can act on instead of TypeErrors."""
    factory, options = check_source(spec)
    return factory(**options)


def check_source(spec: dict) -> tuple[object, dict]:
    """(factory, options) of a source mapping whose kind, option names and option types are
    right; a CramError naming what is not."""
    kind = str(spec.get("kind"))
    factory = DATA.get(kind)  # one line if unknown, or if its plugin does not load
    options = {k: v for k, v in spec.items() if k != "kind"}
    params = inspect.signature(factory).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        for option in options:
            if option not in params:
                close = difflib.get_close_matches(option, list(params), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise CramError(f"data source {kind!r} has no option {option!r}{hint}: "
                                f"its options are {', '.join(params)}")
    for name, param in params.items():
        if param.default is param.empty and param.kind is param.POSITIONAL_OR_KEYWORD \
                and name not in options:
            raise CramError(f"data source {kind!r} needs the option {name!r}")
    for name, value in options.items():
        expected = _option_types(factory).get(name)
        if expected and not _is_a(value, expected):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in expected)
            raise CramError(f"data source {kind!r}: option {name!r} is {value!r}, expected "
                            f"{names}")
    return factory, options


def _option_types(factory: object) -> dict[str, tuple[type, ...]]:
    """A source's option types from its annotations, where they are plain (int, str, ...)."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # a plugin's annotations we cannot evaluate: not checked
        return {}
    plain = (int, float, str, bool, list, dict, type(None))
    out = {}
    for name, hint in hints.items():
        args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) \
            else (hint,)
        if args and all(a in plain for a in args):
            out[name] = tuple(args)
    return out


def _is_a(value: object, expected: tuple[type, ...]) -> bool:
    if isinstance(value, bool):  # a bool is an int to Python, never to a task file
        return bool in expected
    if isinstance(value, int) and float in expected:
        return True
    return isinstance(value, expected)
