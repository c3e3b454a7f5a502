"""One registry for each thing packages can add: names from a built-in table and from
packages' entry points, each loaded only when its name is asked for. Listing the names loads
nothing, so a broken plugin breaks only what uses it, in one line that names the plugin.

Nothing here imports torch: `cram-eval ls` stays instant.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points

from cram_harness.errors import CramError


@functools.cache
def _points(group: str) -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for point in entry_points(group=group):
        found.setdefault(point.name, point)
    return found


@functools.cache
def _load(point: EntryPoint, kind: str) -> object:
    try:
        return point.load()
    except Exception as exc:  # whatever a plugin's import raises, it is the plugin's fault
        package = getattr(point.dist, "name", None)
        source = f"{point.value}" + (f", package {package}" if package else "")
        why = (str(exc).strip().splitlines() or [""])[0]
        raise CramError(f"the {kind} plugin {point.name!r} ({source}) does not load "
                        f"({type(exc).__name__}: {why}): fix or uninstall that package") \
            from exc


def unknown_name(kind: str, name: str, known: Iterable[str]) -> CramError:
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(known[:12])}"
    listing = {"task": "tasks", "model": "models", "data source": "data"}.get(kind, f"{kind}s")
    return CramError(f"unknown {kind} {name!r}: {hint} (`cram-eval ls {listing}` lists them)")


class Registry:
    """Names of one kind (model alias, data source, task directory): the built-in ones
    first, then those of the entry-point group `group`."""

    def __init__(self, kind: str, group: str,
                 builtin: Callable[[], Mapping[str, object]] = dict):
        self.kind, self.group, self._builtin = kind, group, builtin

    def _plugins(self) -> dict[str, EntryPoint]:
        builtin = self._builtin()
        return {name: p for name, p in _points(self.group).items() if name not in builtin}

    def names(self) -> list[str]:
        return sorted({*self._builtin(), *self._plugins()})

    def __contains__(self, name: object) -> bool:
        return name in self._builtin() or name in self._plugins()

    def get(self, name: str) -> object:
        """The entry, loaded; a CramError if the name is unknown or its plugin is broken."""
        builtin = self._builtin()
        if name in builtin:
            return builtin[name]
        plugins = self._plugins()
        if name not in plugins:
            raise unknown_name(self.kind, name, self.names())
        return _load(plugins[name], self.kind)

    def problems(self) -> dict[str, str]:
        """Each plugin that does not load, with its one line (this loads them all)."""
        out = {}
        for name in self._plugins():
            try:
                self.get(name)
            except CramError as exc:
                out[name] = str(exc)
        return out
