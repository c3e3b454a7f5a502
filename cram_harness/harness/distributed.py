"""Runs spread over processes with the launchers users already have (torchrun, accelerate):
each rank takes every world-th pending sample, appends its own record file, and waits for
the others at each length so that all ranks take the same stop decisions; rank 0 writes
the results. Ranks share only the process group and the results directory."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Rank:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def owns(self, index: int) -> bool:
        """Whether the sample at this place in a length's list is this rank's: fixed by the
        list, not by what is already done, so ranks never race for a sample."""
        return index % self.world == self.rank

    @property
    def records_name(self) -> str:
        return "records.jsonl" if self.rank == 0 else f"records.rank{self.rank}.jsonl"

    @property
    def lock_name(self) -> str:
        return ".lock" if self.rank == 0 else f".lock.rank{self.rank}"

    def device(self, requested: str) -> str:
        """Each rank on its own GPU when there are GPUs and the user left the choice to us."""
        import torch

        if requested == "auto" and self.world > 1 and torch.cuda.is_available():
            return f"cuda:{self.local_rank}"
        return requested

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()


def from_environment() -> Rank:
    """The launcher's rank (RANK, WORLD_SIZE, LOCAL_RANK), joining its process group:
    NCCL on GPUs, gloo on CPUs. A plain run is rank 0 of 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Rank()
    import torch
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local)
        dist.init_process_group(backend=backend)
    return Rank(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=local)
