"""What a setting's value must be, as a check a declaration carries (`config.option`): the
same check, and the same line, for every entry point (`run`, `export`, the Python API, the
lm-eval bridge, task YAML), before any work, so that NaN, inf, a negative step count or a
float where a whole number is needed is one line naming the option, never an adapter of
accuracy 0 or an error from deep inside torch. Pure functions; nothing here imports torch."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cram_harness.errors import CramError
from cram_harness.schemas import is_int, is_number, shown

# Beyond these, a number is a typo, not a setting: 2**31 steps take years, a batch of a
# million texts fits no memory, a seed must fit torch's 64 bits.
MAX_STEPS = 2**31 - 1
MAX_BATCH = 2**20
SEEDS = (-(2**63), 2**64 - 1)  # what torch.manual_seed takes


class OptionError(CramError, ValueError):
    """A setting that makes no sense: one line for the CLI (a CramError), a ValueError for
    code that builds a config itself."""


@dataclass(frozen=True)
class Check:
    """What a value must be, in words (said in the error) and as a test; `parse` is the
    type a command line reads it as (int, float, bool or str), `choices` its words."""

    what: str
    ok: Callable[[Any], bool]
    parse: type | None = None
    choices: tuple[str, ...] = ()


def whole(what: str, low: int, high: int = MAX_STEPS) -> Check:
    """A whole number in [low, high] (a bool is not one)."""
    return Check(what, lambda v: is_int(v) and low <= v <= high, int)


def real(what: str, test: Callable[[float], bool]) -> Check:
    """A finite number for which `test` holds."""
    return Check(what, lambda v: is_number(v) and math.isfinite(v) and test(v), float)


def one_of(*choices: str) -> Check:
    words = ", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 1 else choices[0]
    return Check(words, lambda v: v in choices, str, choices)


FLAG = Check("true or false", lambda v: isinstance(v, bool), bool)
POSITIVE = real("a finite number > 0", lambda v: v > 0)
NON_NEGATIVE = real("a finite number >= 0", lambda v: v >= 0)
# a logit margin: inf is a setting (never converged, so every step runs: fixed-step timings)
MARGIN = Check("a number >= 0 (inf: never converged, every step runs)",
               lambda v: is_number(v) and v >= 0, float)
STEPS = whole(f"a whole number of steps in [1, {MAX_STEPS}]", 1)
VECTORS = whole("a whole number of [mem] vectors >= 1", 1)
TOKENS = whole(f"a whole number of tokens in [2, {MAX_STEPS}]", 2)
BATCH = whole(f"a whole number of texts in [1, {MAX_BATCH}] (or auto)", 1, MAX_BATCH)
BETAS = Check("two numbers in [0, 1)", lambda v: isinstance(v, list | tuple) and len(v) == 2
              and all(real("", lambda b: 0 <= b < 1).ok(b) for b in v))


def check_value(name: str, value: Any, check: Check | None, spelling: Callable[[str], str],
                where: str = "") -> None:
    """Refuse a value its check does not pass (None means "not given" and passes)."""
    if value is not None and check is not None and not check.ok(value):
        raise OptionError(f"{where}{spelling(name)} is {shown(value)}: expected {check.what}")


def check_fields(values: Any, spelling: Callable[[str], str] | None = None,
                 where: str = "") -> None:
    """Refuse the first field of a declared dataclass (or of a mapping, by the fields of
    `values.__class__`) whose value its declaration's check does not pass. `spelling` turns
    a name into what the user typed (`--max-steps`, `max_steps=`); `where` prefixes the
    line (a file's path)."""
    spell = spelling or keyword
    for f in dataclasses.fields(values):
        check_value(f.name, getattr(values, f.name), f.metadata.get("check"), spell, where)


def keyword(name: str) -> str:
    """An option's name as the Python API and lm-eval's model_args spell it: `lr=`."""
    return f"{name}="
