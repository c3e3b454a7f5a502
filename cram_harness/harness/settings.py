"""What a user sets: `EngineSettings` (the optimizer's, shared by every entry point) and
`RunSettings` (a whole run's, an EngineSettings plus the sweep's and the files'). Each option
is a field here, once: the CLI's options, the lm-eval bridge and the results file's `config`
are made from these fields."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from cram_harness.errors import CramError
from cram_harness.protocols import PAPER, Protocol, protocol_named
from cram_harness.validation import check_options, cli_flag

# The engine options a user may give, checked by validation.RULES; None: the protocol's or
# the paper's value (CramConfig's default).
TUNABLE = ("max_steps", "lr", "min_margin", "temperature", "subspace")


@dataclass(frozen=True, kw_only=True)
class EngineSettings:
    """The optimizer's settings a user gives; `config` resolves them for one model."""

    seed: int = 0  # each text's initial vectors (and, in a run, the texts drawn)
    max_steps: int | None = None
    lr: float | None = None
    min_margin: float | None = None
    temperature: float | None = None
    subspace: int | None = None
    autocast: str = "auto"  # compute: auto is the paper's (bf16 autocast on a GPU, not Pythia)
    checkpointing: bool = False
    compile: bool = False

    def check(self, spelling=cli_flag) -> None:
        """One line for the first setting that makes no sense (NaN, zero steps, ...)."""
        check_options({name: getattr(self, name) for name in ("seed", *TUNABLE)}, spelling)

    def options(self, model: Any, n_mem: int, protocol: Protocol = PAPER,
                seed_offset: int = 0) -> dict[str, Any]:
        """CramConfig's fields for `model`: the user's settings over the protocol's."""
        from cram_harness.engine.adapter import init_std
        from cram_harness.models.load import resolve_autocast

        opts: dict[str, Any] = {
            "n_mem": n_mem, "seed": self.seed + seed_offset,
            "dtype": resolve_autocast(self.autocast, model),
            "checkpointing": self.checkpointing, "compile": self.compile,
            **protocol.defaults(init_std(model) if protocol.lr_per_embedding_std else 0.0)}
        opts.update({name: getattr(self, name) for name in TUNABLE
                     if getattr(self, name) is not None})
        return opts

    def config(self, model: Any, n_mem: int, protocol: Protocol = PAPER,
               seed_offset: int = 0) -> Any:
        """The engine's CramConfig for `model` (a bad combination is one line)."""
        from cram_harness.engine.loop import CramConfig

        try:
            return CramConfig(**self.options(model, n_mem, protocol, seed_offset))
        except ValueError as exc:
            raise CramError(f"bad engine setting: {exc}") from exc


@dataclass(frozen=True, kw_only=True)
class RunSettings(EngineSettings):
    """Everything a user can set for a run; written into the results file."""

    limit: int | float | None = None  # texts per length; below 1, a share of each task's
    lengths: tuple[int, ...] | None = None
    mem_tokens: tuple[int, ...] | None = None
    batch_size: int | None = None  # None: as many as the free memory holds
    device: str = "auto"
    dtype: str = "auto"  # the weights': auto is fp32, the paper's
    data_files: str | None = None
    past_capacity: int | None = None  # None: each task's own; 0 runs the whole grid
    stop_below: float | None = None  # None: each task's own; 0 is no floor
    output_path: str = "results"
    include_path: tuple[str, ...] = ()
    trust_remote_code: bool = False
    protocol: str = "paper"  # a key of protocols.PROTOCOLS

    @property
    def rules(self) -> Protocol:
        return protocol_named(self.protocol)

    def samples(self, task_samples: int) -> int:
        """Texts per length for a task of `task_samples`: --limit's number or share of them."""
        if self.limit is None:
            return task_samples
        if self.limit < 1:  # lm-eval's fractional --limit
            return max(1, math.ceil(task_samples * self.limit))
        return int(self.limit)

    def check(self, spelling=cli_flag) -> None:
        """Before any work: one line for the first setting that makes no sense."""
        for name in ("lengths", "mem_tokens"):
            values = getattr(self, name)
            if values is not None and (not values or any(v < 1 for v in values)):
                raise CramError(f"{spelling(name)} must be positive integers, got {values}")
        limit = self.limit
        if limit is not None and not (0 < limit < 1 or (limit >= 1 and limit == int(limit))):
            raise CramError(f"--limit must be a number of texts or a fraction in (0, 1), got "
                            f"{limit}")
        protocol_named(self.protocol)  # an unknown protocol is one line
        super().check(spelling)
        check_options({"batch_size": self.batch_size, "past_capacity": self.past_capacity,
                       "stop_below": self.stop_below}, spelling)
        for k in self.mem_tokens or ():
            check_options({"mem_tokens": k}, spelling)
