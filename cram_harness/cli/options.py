"""The options several commands share, made from the settings' declarations (`config.option`:
`EngineSettings`' fields for `run` and `export`, `RunSettings`' for `run`, the model's device
and weights for `run`, `export` and `decode`, the task folders for `run` and `ls`), and the
parsers of the options that are lists."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import click

from cram_harness.config import engine_default, flag
from cram_harness.errors import CramError
from cram_harness.harness.settings import EngineSettings, RunSettings


def declared(name: str, settings: type = RunSettings,
             **click_kwargs: Any) -> Callable[[Callable], Callable]:
    """The click option of a declared setting (a field of `settings`: RunSettings, its
    EngineSettings included, or CramConfig): its flag, help, type and default as declared;
    `click_kwargs` where the command line reads it otherwise (a list as text, `auto` for
    none)."""
    f = settings.__dataclass_fields__[name]
    check = f.metadata.get("check")
    kwargs: dict[str, Any] = {"help": f.metadata["help"]}
    if isinstance(f.default, bool):
        kwargs["is_flag"] = True
    elif check is not None and check.choices:
        kwargs["type"] = click.Choice(list(check.choices))
    elif check is not None and check.parse in (int, float):
        kwargs["type"] = check.parse
    if f.default is None and name in EngineSettings.__dataclass_fields__:
        kwargs["help"] += f"  [default: the protocol's, else the paper's {engine_default(name)}]"
    elif f.default is not None and not isinstance(f.default, bool | tuple):
        kwargs.update(default=getattr(f.default, "name", f.default), show_default=True)
    kwargs.update(click_kwargs)
    return click.option(flag(f), name, **kwargs)


def _all(names: tuple[str, ...]) -> Callable[[Callable], Callable]:
    def decorate(command: Callable) -> Callable:
        for name in reversed(names):  # listed in --help in the declarations' order
            command = declared(name)(command)
        return command
    return decorate


ENGINE = tuple(f.name for f in dataclasses.fields(EngineSettings))
engine_options = _all(ENGINE)
model_options = _all(("device", "dtype"))
# `run` reads tasks from it, `ls tasks` lists them
include_path = declared("include_path", multiple=True)


def engine_settings(params: dict[str, Any]) -> dict[str, Any]:
    """Take the engine options out of a command's parameters: EngineSettings' fields."""
    return {name: params.pop(name) for name in ENGINE}


def ints(value: str | None, option: str) -> tuple[int, ...] | None:
    """A comma-separated list of integers (None: not given)."""
    if value is None:
        return None
    try:
        return tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise CramError(f"{option} takes comma-separated integers, got {value!r}") from None


def batch_size(value: str) -> int | None:
    """A positive integer, or auto (None: as many as the free memory holds)."""
    if value == "auto":
        return None
    try:
        size = int(value)
    except ValueError:
        size = 0
    if size < 1:
        raise CramError(f"--batch-size takes a positive integer or auto, got {value!r}")
    return size
