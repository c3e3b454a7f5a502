"""The options several commands share, each written once: the engine's (`EngineSettings`'
fields: `run` and `export`), the model's device and weights (`run`, `export`, `decode`) and
the task folders (`run`, `ls`); and the parsers of the options that are lists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from cram_harness.errors import CramError

ENGINE_OPTIONS = (
    click.option("--seed", type=int, default=0, show_default=True,
                 help="Seeds each text's initial vectors (and, in a run, the texts drawn)."),
    click.option("--max-steps", type=int, help="Optimizer steps per text (paper: 5000)."),
    click.option("--lr", type=float, help="Learning rate (paper: 1e-2)."),
    click.option("--min-margin", type=float,
                 help="Converged only when every target logit beats the runner-up by this "
                      "much."),
    click.option("--temperature", type=float,
                 help="CE temperature of the training loss (paper: 1; below 1 is colder)."),
    click.option("--subspace", type=int,
                 help="Optimize only this many coordinates along the token embeddings' top "
                      "principal directions (default: all of them)."),
    click.option("--autocast", type=click.Choice(["auto", "bf16", "off"]), default="auto",
                 show_default=True,
                 help="Compute precision over fp32 weights: auto is the paper's (bf16 autocast "
                      "on a GPU, fp32 for Pythia and on a CPU)."),
    click.option("--checkpointing", is_flag=True,
                 help="Activation checkpointing: less memory for long texts, for a second "
                      "forward pass per layer."),
    click.option("--compile", is_flag=True,
                 help="torch.compile the model: faster steps after a compile of about a minute "
                      "(worth it for runs of hundreds of steps); results differ in the last "
                      "bits."),
)

MODEL_OPTIONS = (
    click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:1, ..."),
    click.option("--dtype", default="auto", show_default=True,
                 help="The weights: auto (fp32, the paper's), fp32, bf16."),
)


# `run` reads tasks from it, `ls tasks` lists them
include_path = click.option("--include-path", multiple=True,
                            help="Extra directory of task YAML.")


def _all(options: tuple[Callable, ...]) -> Callable[[Callable], Callable]:
    def decorate(command: Callable) -> Callable:
        for option in reversed(options):  # listed in --help in the order above
            command = option(command)
        return command
    return decorate


engine_options = _all(ENGINE_OPTIONS)
model_options = _all(MODEL_OPTIONS)


def engine_settings(params: dict[str, Any]) -> dict[str, Any]:
    """Take the engine options out of a command's parameters: EngineSettings' fields."""
    from cram_harness.harness.settings import EngineSettings

    return {name: params.pop(name) for name in EngineSettings.__dataclass_fields__}


def ints(value: str | None, flag: str) -> tuple[int, ...] | None:
    """A comma-separated list of integers (None: not given)."""
    if value is None:
        return None
    try:
        return tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise CramError(f"{flag} takes comma-separated integers, got {value!r}") from None


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
