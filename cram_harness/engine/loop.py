"""The cramming engine: optimize [mem] vectors for a batch of texts at once. No I/O.

Each sample has its own vectors and its own AdamW state (written out here, vectorized over
the batch, so that a finished sample can leave the batch with its state). A sample finishes
when every target is the argmax with at least `min_margin` to spare (the paper: 100%
teacher-forced accuracy), or after `patience` steps without improvement, or at `max_steps`.
As in the paper, a step improves only on a strictly higher accuracy than every step before
(the count starts from 0, so a text stuck at 0% runs out of patience from step 1); the state of
the best accuracy is kept, and the lowest cross-entropy of the whole run is tracked on its own,
since the paper's information gain is made of it (its analysis: `min(losses[:5000])`).

Beyond the paper (SPEC section 3), as options: a CE temperature for the training loss (the
recorded loss is always plain CE), a minimum logit margin for convergence, a low-dimensional
reparametrization (`subspace`: the vector moves only along the top principal directions of
the token embeddings), and activation checkpointing for long texts.
"""

from __future__ import annotations

import hashlib
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from cram_harness.config import CramConfig  # declared once, with each option's range and help
from cram_harness.engine.adapter import (
    activation_checkpointing,
    compute_precision,
    embedding_subspace,
    init_memory,
    pad_right,
)
from cram_harness.engine.measure import text_stats


@dataclass
class SampleOutcome:
    """Best state of one sample. `memory` is (k, d) fp32 on the CPU."""

    memory: torch.Tensor
    accuracy: float
    loss: float  # CE (nats) of the best-accuracy state
    min_loss: float  # the lowest CE (nats) of any step of the run: the paper's information gain
    min_margin: float
    best_step: int
    steps: int
    seconds: float
    converged: bool
    numerical_fault: bool = False  # the loss went NaN/inf (e.g. bf16 overflow): not a result
    first_miss: int | None = None  # best state: first predicted position whose argmax misses


@dataclass
class StepInfo:
    """What a progress display may show after a step (the engine never prints). The
    accuracy and loss stay on the device until read, so a display that reads them twice a
    second costs no host-device sync on the other steps."""

    step: int
    active: int
    finished: int
    total: int
    best_accuracies: torch.Tensor = field(repr=False)
    losses: torch.Tensor = field(repr=False)

    @property
    def best_accuracy(self) -> float:
        """Mean over the batch of each sample's best accuracy so far."""
        return float(self.best_accuracies.mean())

    @property
    def mean_loss(self) -> float:
        """Mean over the running samples of their loss at this step."""
        return float(self.losses.mean())


def sample_seed(seed: int, token_ids: list[int], n_mem: int) -> int:
    """Seed of one sample's init: from its own tokens, not its place in the batch."""
    digest = hashlib.sha256(f"{seed}|{n_mem}|{token_ids}".encode()).hexdigest()
    return int(digest[:8], 16)


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compiled(model: torch.nn.Module) -> torch.nn.Module:
    """The model under torch.compile, compiled once per model. A batch that shrinks as texts
    converge changes the step's shapes: torch recompiles once with those dimensions symbolic
    (its automatic dynamic shapes) and not again. Kernels fused by the compiler round
    differently from eager ones, so compiled runs are not the paper loop's bits."""
    if model not in _COMPILED:
        _COMPILED[model] = torch.compile(model)
    return _COMPILED[model]


def _select(rows: torch.Tensor, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """`new` where `rows` (B,) is true, else `old`."""
    return torch.where(rows.view(-1, *[1] * (new.dim() - 1)), new, old)


def cram_batch(
    model: torch.nn.Module,
    token_ids: list[list[int]],
    config: CramConfig = CramConfig(),
    init: torch.Tensor | None = None,
    on_step: Callable[[StepInfo], None] | None = None,
    on_finish: Callable[[int, SampleOutcome], None] | None = None,
) -> list[SampleOutcome]:
    """Optimize one set of [mem] vectors per text. `init` (B, k, d) warm-starts them.

    `on_finish(index, outcome)` is called as each sample leaves the batch, so callers can
    store it before the rest of the batch is done."""
    if any(len(t) < 2 for t in token_ids):
        raise ValueError("every text needs at least 2 tokens (one seed, one to predict)")
    device = model.device
    n = len(token_ids)
    if init is None:
        seeds = [sample_seed(config.seed, t, config.n_mem) for t in token_ids]
        init = init_memory(model, config.n_mem, seeds)
    mem = init.detach().float().to(device).clone()
    center = basis = None
    if config.subspace:  # optimize coordinates; the vectors are center + coords @ basis.T
        center, basis = embedding_subspace(model, config.subspace)
        mem = (mem - center) @ basis

    def vectors(coords: torch.Tensor) -> torch.Tensor:
        return coords if basis is None else center + coords @ basis.T

    exp_avg = torch.zeros_like(mem)
    exp_sq = torch.zeros_like(mem)
    ids_all, mask_all = pad_right(token_ids, pad_id=0, device=device)
    lengths = [len(t) for t in token_ids]  # on the host: the batch's width costs no sync

    best_mem = vectors(mem).detach().clone()
    best_acc = torch.zeros(n, device=device)  # the paper's count starts from 0
    best_loss = torch.full((n,), float("inf"), device=device)
    min_loss = torch.full((n,), float("inf"), device=device)
    best_margin = torch.full((n,), -float("inf"), device=device)
    best_step = torch.zeros(n, dtype=torch.long, device=device)
    first_miss = torch.zeros(n, dtype=torch.long, device=device)
    since_best = torch.zeros(n, dtype=torch.long, device=device)
    done_steps = torch.zeros(n, dtype=torch.long)
    done_secs = torch.zeros(n, dtype=torch.float64)
    converged = torch.zeros(n, dtype=torch.bool, device=device)
    fault = torch.zeros(n, dtype=torch.bool, device=device)

    outcomes: list[SampleOutcome | None] = [None] * n

    def _outcome(i: int) -> SampleOutcome:
        return SampleOutcome(
            memory=best_mem[i].cpu(), accuracy=float(best_acc[i]), loss=float(best_loss[i]),
            min_loss=float(min_loss[i]), min_margin=float(best_margin[i]),
            best_step=int(best_step[i]), steps=int(done_steps[i]), seconds=float(done_secs[i]),
            converged=bool(converged[i]), numerical_fault=bool(fault[i]),
            first_miss=None if float(best_acc[i]) >= 1.0 else int(first_miss[i]),
        )

    active = torch.arange(n, device=device)
    width = max(lengths)
    beta1, beta2 = config.betas
    autocast = compute_precision(model, config.dtype)
    net = compiled(model) if config.compile else model
    start = time.perf_counter()
    with activation_checkpointing(model, config.checkpointing):
        for step in range(1, config.max_steps + 1):
            ids, mask = ids_all[active, :width], mask_all[active, :width]
            params = mem[active].requires_grad_(True)
            with autocast:
                stats = text_stats(net, ids, mask, vectors(params), config.temperature)
            (grad,) = torch.autograd.grad(stats.loss.sum(), params)

            # Score the state the gradient was taken at. The paper's loop keeps the vector
            # after that step's update; the state that was scored is the one that has the
            # accuracy, so that is what we keep.
            acc, margin, nats = stats.accuracy, stats.min_margin, stats.nats.detach()
            faulty = ~torch.isfinite(nats)  # caught at the step it happens
            fault[active] |= faulty
            perfect = (acc >= 1.0) & ~faulty
            improved = ~faulty & ((acc > best_acc[active]) | (
                perfect & (best_acc[active] >= 1.0) & (margin > best_margin[active])
            ))
            # The first state is kept even at 0% (nothing better exists yet), but it only
            # counts as an improvement where it is one.
            keep = improved | (~faulty & (best_step[active] == 0))

            # selects, not boolean indexing: that would cost a host sync a step
            best_mem[active] = _select(keep, vectors(params.detach()), best_mem[active])
            best_acc[active] = _select(keep, acc, best_acc[active])
            best_loss[active] = _select(keep, nats, best_loss[active])
            best_margin[active] = _select(keep, margin, best_margin[active])
            best_step[active] = _select(keep, torch.full_like(best_step[active], step),
                                        best_step[active])
            first_miss[active] = _select(keep, stats.first_miss, first_miss[active])
            min_loss[active] = torch.where(faulty, min_loss[active],
                                           torch.minimum(min_loss[active], nats))
            since_best[active] = torch.where(improved, 0, since_best[active] + 1)
            is_converged = perfect & (margin >= config.min_margin)
            converged[active] = is_converged

            # AdamW (decoupled weight decay), with torch.optim.AdamW's own arithmetic, so that
            # a sample follows the same path as under torch's optimizer (tests/parity).
            with torch.no_grad():
                p = mem[active]
                p.mul_(1 - config.lr * config.weight_decay)
                m = exp_avg[active].lerp_(grad, 1 - beta1)
                v = exp_sq[active].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                step_size = config.lr / (1 - beta1**step)
                denom = (v.sqrt() / (1 - beta2**step) ** 0.5).add_(config.eps)
                p.addcdiv_(m, denom, value=-step_size)
                mem[active], exp_avg[active], exp_sq[active] = p, m, v

            finished = is_converged | faulty | (since_best[active] >= config.patience)
            if step == config.max_steps:
                finished = torch.ones_like(finished)
            if bool(finished.any()):  # the one host sync per step: the stop rule needs it
                gone = active[finished].cpu()
                done_steps[gone] = step
                done_secs[gone] = time.perf_counter() - start
                active = active[~finished]
                if len(active):  # drop padding no active sample needs
                    width = max(lengths[i] for i in active.tolist())
                for i in gone.tolist():
                    outcomes[i] = _outcome(i)
                    if on_finish is not None:
                        on_finish(i, outcomes[i])
            if on_step is not None:
                on_step(StepInfo(step=step, active=len(active), finished=n - len(active), total=n,
                                 best_accuracies=best_acc, losses=nats))
            if len(active) == 0:
                break

    return outcomes  # every sample finished: the last step finishes all that remain
