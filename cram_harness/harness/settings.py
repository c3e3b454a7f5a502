"""What a user sets: `EngineSettings` (the optimizer's, shared by every entry point) and
`RunSettings` (a whole run's: an EngineSettings plus the sweep's and the files'). Each is a
declared field (`config.option`: type, default, range and help in one place; the engine's
own are CramConfig's declarations, taken by `config.given`), from which the CLI's options,
the checks, the lm-eval bridge's model_args and the results' config block are made. The
protocol is an object from here to the results file."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from cram_harness.config import CramConfig, engine_default, flag, given, option
from cram_harness.models.devices import AUTOCAST_CHOICES
from cram_harness.protocols import PAPER, PROTOCOLS, Protocol, protocol_named
from cram_harness.schemas import is_int
from cram_harness.validation import BATCH, Check, check_fields, one_of, real, whole


def cli_flag(name: str) -> str:
    """A setting's name as the CLI spells it: max_steps -> --max-steps."""
    fields = {**RunSettings.__dataclass_fields__, **CramConfig.__dataclass_fields__}
    return flag(fields[name]) if name in fields else "--" + name.replace("_", "-")


@dataclass(frozen=True, kw_only=True)
class EngineSettings:
    """The optimizer's settings a user gives; `config` resolves them for one model. None:
    the protocol's value, else the paper's (CramConfig's default)."""

    seed: int = given("seed", engine_default("seed"))
    max_steps: int | None = given("max_steps")
    lr: float | None = given("lr")
    min_margin: float | None = given("min_margin")
    temperature: float | None = given("temperature")
    subspace: int | None = given("subspace")
    autocast: str = option("auto", "Compute precision over fp32 weights: auto is the paper's "
                                   "(bf16 autocast on a GPU, fp32 for Pythia and on a CPU).",
                           one_of(*AUTOCAST_CHOICES))
    checkpointing: bool = given("checkpointing", engine_default("checkpointing"))
    compile: bool = given("compile", engine_default("compile"))

    def check(self, spelling=cli_flag) -> None:
        """One line for the first setting that makes no sense (NaN, zero steps, ...)."""
        check_fields(self, spelling)

    def config(self, model: Any, n_mem: int, protocol: Protocol = PAPER,
               seed_offset: int = 0) -> CramConfig:
        """The engine's CramConfig for `model`, the one place a user's settings become it:
        the user's settings over the protocol's, over the paper's (CramConfig's defaults);
        a bad combination is one line."""
        from cram_harness.engine.adapter import init_std
        from cram_harness.models.devices import resolve_autocast

        given_here = {f.name: getattr(self, f.name) for f in dataclasses.fields(EngineSettings)
                      if f.name in CramConfig.__dataclass_fields__
                      and getattr(self, f.name) is not None}
        return CramConfig(**{
            **protocol.defaults(init_std(model) if protocol.lr_per_embedding_std else 0.0),
            **given_here, "n_mem": n_mem, "seed": self.seed + seed_offset,
            "dtype": resolve_autocast(self.autocast, model)})


# a protocol by its name (a Protocol once given: RunSettings.__post_init__)
PROTOCOL = Check(one_of(*PROTOCOLS).what, lambda v: getattr(v, "name", v) in PROTOCOLS, str,
                 tuple(PROTOCOLS))


def _limit(value: Any) -> bool:
    return value >= 1 and value == int(value) or 0 < value < 1


def _positive_ints(value: Any) -> bool:
    return bool(value) and all(is_int(v) and v >= 1 for v in value)


@dataclass(frozen=True, kw_only=True)
class RunSettings(EngineSettings):
    """Everything a user can set for a run; written into the results file (`to_config`)."""

    limit: int | float | None = option(
        None, "Texts per length, or below 1 a share of each task's (default: each task's own).",
        real("a whole number of texts or a fraction in (0, 1)", _limit))
    lengths: tuple[int, ...] | None = option(
        None, "Token lengths to sweep, e.g. 8,16,32 (default: the task's).",
        Check("positive integers", _positive_ints))
    mem_tokens: tuple[int, ...] | None = option(
        None, "Numbers of [mem] vectors, e.g. 1,2,4 (default: the task's).",
        Check("positive integers", _positive_ints))
    batch_size: int | None = option(
        None, "Texts optimized together; auto: as many as the free memory holds.",
        BATCH)
    device: str = option("auto", "cpu, cuda, cuda:1, ...")
    dtype: str = option("auto", "The weights: auto (fp32, the paper's), fp32, bf16.")
    data_files: str | None = option(
        None, "Local texts for every task: a directory, a glob, or a .txt/.jsonl/.csv/.parquet "
              "file.")
    past_capacity: int | None = option(
        None, "Stop the sweep after this many lengths in a row whose mean accuracy is below "
              "0.99: past capacity, with full vectors for the gains (default: the task's, 3; 0 "
              "runs the whole grid).",
        whole("a whole number of lengths >= 0 (0: the whole grid)", 0))
    stop_below: float | None = option(
        None, "Also stop once a length's mean accuracy falls below this floor (default: the "
              "task's, none).", real("an accuracy in (0, 1], or 0 for no floor",
                                     lambda v: 0 <= v <= 1))
    output_path: str = option("results", "Results go to OUTPUT_PATH/<model>/ (records, "
                                         "results, samples).")
    include_path: tuple[str, ...] = option((), "Extra directory of task YAML.")
    trust_remote_code: bool = option(False, "Allow model code from the hub.")
    protocol: Protocol = option(PAPER, " ".join(f"{p.name}: {p.help}" for p in
                                                PROTOCOLS.values()), PROTOCOL)

    def __post_init__(self) -> None:
        if isinstance(self.protocol, str):  # a name given in Python: its object from here on
            object.__setattr__(self, "protocol", protocol_named(self.protocol))

    def samples(self, task_samples: int) -> int:
        """Texts per length for a task of `task_samples`: --limit's number or share of them."""
        if self.limit is None:
            return task_samples
        if self.limit < 1:  # lm-eval's fractional --limit
            return max(1, math.ceil(task_samples * self.limit))
        return int(self.limit)

    def check(self, spelling=cli_flag) -> None:
        """Before any work: one line for the first setting that makes no sense."""
        check_fields(self, spelling)

    def to_config(self) -> dict[str, Any]:
        """The results file's config block: every setting, the protocol by its name."""
        return {f.name: getattr(self, f.name) if f.name != "protocol" else self.protocol.name
                for f in dataclasses.fields(self)}
