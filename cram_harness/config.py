"""`CramConfig`, the engine's options, each declared once: its type, default (the paper's),
range and help in one field, as PEFT declares its configs (`field(default=...,
metadata={"help": ...})`). From these declarations come the checks (`CramConfig` refuses a
value out of range in one line naming it), the settings a user gives (harness/settings.py's
`EngineSettings` takes its fields from here), the `run` and `export` options (cli/options.py),
the lm-eval bridge's model_args, the results' engine block and the docs' table of defaults.

Nothing here imports torch: the CLI's --help reads these declarations."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from cram_harness.validation import (
    BETAS,
    FLAG,
    MARGIN,
    NON_NEGATIVE,
    POSITIVE,
    SEEDS,
    STEPS,
    VECTORS,
    Check,
    check_fields,
    one_of,
    whole,
)

_UNSET: Any = object()


def option(default: Any, help: str, check: Check | None = None, *,
           flag: str | None = None) -> Any:
    """A declared setting: a dataclass field with its default, its help (one sentence or
    two, as `--help` shows it), the check its values must pass and, where the command line
    spells it otherwise than `--name`, its flag."""
    return field(default=default, metadata={"help": help, "check": check, "flag": flag})


def given(name: str, default: Any = None) -> Any:
    """A user's setting of CramConfig's option `name`: the same declaration, with a default
    that means "not given" (None: the protocol's value, else the paper's)."""
    return field(default=default, metadata=CramConfig.__dataclass_fields__[name].metadata)


def engine_default(name: str) -> Any:
    """The paper's value of an option (CramConfig's default)."""
    return CramConfig.__dataclass_fields__[name].default


def flag(f: dataclasses.Field) -> str:
    """An option's flag on the command line: `--max-steps`, or its declared spelling."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


@dataclass(frozen=True)
class CramConfig:
    """Optimizer and stop rule; the defaults are the paper's protocol."""

    n_mem: int = option(1, "Number of [mem] vectors k per text.", VECTORS, flag="--mem-tokens")
    lr: float = option(1e-2, "AdamW learning rate, constant.", POSITIVE)
    betas: tuple[float, float] = option((0.9, 0.9), "AdamW betas.", BETAS)
    weight_decay: float = option(0.01, "AdamW decoupled weight decay.", NON_NEGATIVE)
    eps: float = option(1e-8, "AdamW epsilon.", POSITIVE)
    max_steps: int = option(5000, "Optimizer steps per text, at most.", STEPS)
    patience: int = option(2000, "Stop a text after this many steps without a better "
                                 "accuracy.", STEPS)
    # beyond the paper: > 0 keeps greedy decoding exact under other kernels' reductions
    min_margin: float = option(0.0, "Converged only when every target logit beats the "
                                    "runner-up by this much (0: the paper's rule, 100% "
                                    "accuracy).", MARGIN)
    temperature: float = option(1.0, "CE temperature of the training loss (1: plain "
                                     "cross-entropy; below 1 is colder).", POSITIVE)
    dtype: str = option("fp32", "Compute precision: fp32, or bf16 autocast over fp32 "
                                "weights.", one_of("fp32", "bf16"))
    subspace: int = option(0, "Optimize only this many coordinates along the token "
                              "embeddings' top principal directions (0: all of them).",
                           whole("a whole number of dimensions >= 0 (0: all)", 0))
    checkpointing: bool = option(False, "Activation checkpointing: less memory for long "
                                        "texts, for a second forward pass per layer (the "
                                        "same results).", FLAG)
    compile: bool = option(False, "torch.compile the model: faster steps after a compile "
                                  "of about a minute (worth it for runs of hundreds of "
                                  "steps); results differ in the last bits.", FLAG)
    seed: int = option(0, "Seeds each text's initial vectors (and, in a run, the texts "
                          "drawn).", whole(f"a whole number in [{SEEDS[0]}, {SEEDS[1]}]",
                                           *SEEDS))

    def __post_init__(self) -> None:
        check_fields(self)  # one line naming the option: `lr= is nan: expected ...`

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
