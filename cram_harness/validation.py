"""The numbers a user gives: checked the same way by every entry point (`run`, `export`, the
Python API, task YAML) before any work, so that NaN, inf, a negative step count or a float
where a whole number is needed is one line naming the option, never an adapter of accuracy 0
or an error from deep inside torch. Pure functions; nothing here imports torch."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from cram_harness.errors import CramError
from cram_harness.schemas import shown

# Beyond these, a number is a typo, not a setting: 2**31 steps take years, a batch of a
# million texts fits no memory, a seed must fit torch's 64 bits.
MAX_STEPS = 2**31 - 1
MAX_BATCH = 2**20
SEEDS = (-(2**63), 2**64 - 1)  # what torch.manual_seed takes


def _whole(low: int, high: int = MAX_STEPS) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _real(test: Callable[[float], bool]) -> Callable[[Any], bool]:
    return lambda v: (isinstance(v, int | float) and not isinstance(v, bool)
                      and math.isfinite(v) and test(v))


def _betas(value: Any) -> bool:
    return (isinstance(value, list | tuple) and len(value) == 2
            and all(_real(lambda b: 0 <= b < 1)(b) for b in value))


# option -> (what it must be, in words; the test). Options are CramConfig's fields and the
# run's own numbers; a name not here is left to the caller (CramConfig names unknown ones).
RULES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "n_mem": ("a whole number of [mem] vectors >= 1", _whole(1)),
    "mem_tokens": ("a whole number of [mem] vectors >= 1", _whole(1)),
    "max_steps": (f"a whole number of steps in [1, {MAX_STEPS}]", _whole(1)),
    "patience": (f"a whole number of steps in [1, {MAX_STEPS}]", _whole(1)),
    "subspace": ("a whole number of dimensions >= 0 (0: all)", _whole(0)),
    "seed": (f"a whole number in [{SEEDS[0]}, {SEEDS[1]}]", _whole(*SEEDS)),
    "max_tokens": (f"a whole number of tokens in [2, {MAX_STEPS}]", _whole(2)),
    "batch_size": (f"a whole number of texts in [1, {MAX_BATCH}] (or auto)", _whole(1, MAX_BATCH)),
    "past_capacity": ("a whole number of lengths >= 0 (0: the whole grid)", _whole(0)),
    "lr": ("a finite number > 0", _real(lambda v: v > 0)),
    "temperature": ("a finite number > 0", _real(lambda v: v > 0)),
    "eps": ("a finite number > 0", _real(lambda v: v > 0)),
    "min_margin": ("a finite number >= 0", _real(lambda v: v >= 0)),
    "weight_decay": ("a finite number >= 0", _real(lambda v: v >= 0)),
    "stop_below": ("an accuracy in (0, 1], or 0 for no floor", _real(lambda v: 0 <= v <= 1)),
    "betas": ("two numbers in [0, 1)", _betas),
    "dtype": ("fp32 or bf16", lambda v: v in ("fp32", "bf16")),
    "checkpointing": ("true or false", lambda v: isinstance(v, bool)),
    "compile": ("true or false", lambda v: isinstance(v, bool)),
}


def check_options(options: Mapping[str, Any], spelling: Callable[[str], str] | None = None,
                  where: str = "") -> None:
    """Refuse the first option in `options` whose value makes no sense (None means "not
    given" and passes). `spelling` turns a name into what the user typed (`--max-steps`,
    `max_steps=`); `where` prefixes the line (a file's path)."""
    spell = spelling or (lambda name: name)
    for name, value in options.items():
        if value is None or name not in RULES:
            continue
        what, ok = RULES[name]
        if not ok(value):
            raise CramError(f"{where}{spell(name)} is {shown(value)}: expected {what}")


def cli_flag(name: str) -> str:
    """An option's name as the CLI spells it: max_steps -> --max-steps."""
    return "--" + name.replace("_", "-").replace("n-mem", "mem-tokens")


def check_engine_options(options: Mapping[str, Any]) -> None:
    """The Python API's check, spelled as its keyword arguments (`cram(..., lr=...)`):
    `cram` and `CramConfig` call it with their options before any work."""
    check_options(options, spelling=lambda name: f"{name}=")
