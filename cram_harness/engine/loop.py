"""The cramming engine: optimize [mem] vectors for many texts, a batch of them at a time. No
I/O.

Each text has its own vectors, its own AdamW state and its own step count (written out here,
vectorized over the batch), so a text leaves the batch when it finishes and the next text of
the queue takes its slot: the batch stays full until the queue runs dry, and a text follows
the same path whichever slot, batch or step it entered at. A text finishes when every target
is the argmax with at least `min_margin` to spare (the paper: 100% teacher-forced accuracy),
or after `patience` of its steps without improvement, or at `max_steps` of them. As in the
paper, a step improves only on a strictly higher accuracy than every step before (the count
starts from 0, so a text stuck at 0% runs out of patience from step 1); the state of the best
accuracy is kept, and the lowest cross-entropy of the whole run is tracked on its own, since
the paper's information gain is made of it (its analysis: `min(losses[:5000])`).

Beyond the paper (README, "Engine options"), as options: a CE temperature for the training
loss (the recorded loss is always plain CE), a minimum logit margin for convergence, a
low-dimensional reparametrization (`subspace`: the vector moves only along the top principal
directions of the token embeddings), and activation checkpointing for long texts.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from cram_harness.config import CramConfig  # declared once, with each option's range and help
from cram_harness.engine.adapter import (
    activation_checkpointing,
    compute_precision,
    embedding_subspace,
    engine_mode,
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

    step: int  # steps the batch has taken (each text counts its own: `text_steps_left`)
    active: int  # texts in the batch at this step
    finished: int
    total: int
    best_accuracies: torch.Tensor = field(repr=False)  # every text's, running or not
    losses: torch.Tensor = field(repr=False)  # the running texts' at this step
    slots: int = 0  # texts the batch holds while the queue lasts
    stepped: int = 0  # texts that took this step (those it finished included)
    width: int = 0  # positions of the step's longest text ([mem] not counted)
    padded: int = 0  # positions of padding in the step: stepped * width - real positions
    text_steps_left: int = 0  # steps the running and the waiting texts may still take

    @property
    def best_accuracy(self) -> float:
        """Mean over the texts of each one's best accuracy so far."""
        return float(self.best_accuracies.mean())

    @property
    def mean_loss(self) -> float:
        """Mean over the running samples of their loss at this step."""
        return float(self.losses.mean())


def sample_seed(seed: int, token_ids: list[int], n_mem: int) -> int:
    """Seed of one sample's init: from its own tokens, not its place in the batch."""
    digest = hashlib.sha256(f"{seed}|{n_mem}|{token_ids}".encode()).hexdigest()
    return int(digest[:8], 16)


def _select(rows: torch.Tensor, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """`new` where `rows` (B,) is true, else `old`."""
    return torch.where(rows.view(-1, *[1] * (new.dim() - 1)), new, old)


class _AdamW:
    """AdamW (decoupled weight decay) over one row per text, each row at its own step, with
    torch.optim.AdamW's own arithmetic: a text follows the path it follows under torch's
    optimizer (tests/parity), wherever it entered the batch. The bias corrections are tables
    of torch's float64 scalars by step, cast to float32 as its kernels cast them, looked up on
    the device (no host sync)."""

    def __init__(self, config: CramConfig, rows: torch.Tensor):
        self.config = config
        self.exp_avg = torch.zeros_like(rows)
        self.exp_sq = torch.zeros_like(rows)
        beta1, beta2 = config.betas
        steps = range(config.max_steps + 1)  # entry 0 is never used
        self.neg_step_size = torch.tensor(
            [-(config.lr / (1 - beta1**t)) if t else 0.0 for t in steps], device=rows.device)
        self.bias2_sqrt = torch.tensor([(1 - beta2**t) ** 0.5 for t in steps],
                                       device=rows.device)

    @torch.no_grad()
    def step(self, params: torch.Tensor, rows: torch.Tensor, grad: torch.Tensor,
             steps: torch.Tensor) -> None:
        """Update `params[rows]` (in place) by `grad`, row i being at its `steps[i]`-th step."""
        config, (beta1, beta2) = self.config, self.config.betas
        shape = (-1, *[1] * (grad.dim() - 1))
        p = params[rows].mul_(1 - config.lr * config.weight_decay)
        m = self.exp_avg[rows].lerp_(grad, 1 - beta1)
        v = self.exp_sq[rows].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (v.sqrt() / self.bias2_sqrt[steps].view(shape)).add_(config.eps)
        p.add_(m * self.neg_step_size[steps].view(shape) / denom)  # addcdiv's order
        params[rows], self.exp_avg[rows], self.exp_sq[rows] = p, m, v


class _Best:
    """Each text's best state so far and its stop rule's counters, one row per text."""

    def __init__(self, n: int, first_vectors: torch.Tensor):
        device = first_vectors.device
        self.mem = first_vectors.detach().clone()
        self.acc = torch.zeros(n, device=device)  # the paper's count starts from 0
        self.loss = torch.full((n,), float("inf"), device=device)
        self.min_loss = torch.full((n,), float("inf"), device=device)
        self.margin = torch.full((n,), -float("inf"), device=device)
        self.step = torch.zeros(n, dtype=torch.long, device=device)  # 0: nothing kept yet
        self.first_miss = torch.zeros(n, dtype=torch.long, device=device)
        self.since = torch.zeros(n, dtype=torch.long, device=device)
        self.converged = torch.zeros(n, dtype=torch.bool, device=device)
        self.fault = torch.zeros(n, dtype=torch.bool, device=device)

    def update(self, rows: torch.Tensor, steps: torch.Tensor, vectors: torch.Tensor, stats,
               min_margin: float) -> torch.Tensor:
        """Score the state the gradient was taken at (the paper's loop keeps the vector after
        that step's update; the state that was scored is the one that has the accuracy, so
        that is what is kept). Returns the rows this step ends: converged, or faulted."""
        acc, margin, nats = stats.accuracy, stats.min_margin, stats.nats.detach()
        faulty = ~torch.isfinite(nats)  # caught at the step it happens
        self.fault[rows] |= faulty
        perfect = (acc >= 1.0) & ~faulty
        best_acc, best_margin = self.acc[rows], self.margin[rows]
        improved = ~faulty & ((acc > best_acc) | (
            perfect & (best_acc >= 1.0) & (margin > best_margin)))
        # The first state is kept even at 0% (nothing better exists yet), but it only
        # counts as an improvement where it is one.
        keep = improved | (~faulty & (self.step[rows] == 0))
        # selects, not boolean indexing: that would cost a host sync a step
        self.mem[rows] = _select(keep, vectors, self.mem[rows])
        self.acc[rows] = _select(keep, acc, best_acc)
        self.loss[rows] = _select(keep, nats, self.loss[rows])
        self.margin[rows] = _select(keep, margin, best_margin)
        self.step[rows] = _select(keep, steps, self.step[rows])
        self.first_miss[rows] = _select(keep, stats.first_miss, self.first_miss[rows])
        self.min_loss[rows] = torch.where(faulty, self.min_loss[rows],
                                          torch.minimum(self.min_loss[rows], nats))
        self.since[rows] = torch.where(improved, 0, self.since[rows] + 1)
        converged = perfect & (margin >= min_margin)
        self.converged[rows] = converged
        return converged | faulty

    def outcome(self, i: int, steps: int, seconds: float) -> SampleOutcome:
        accuracy = float(self.acc[i])
        return SampleOutcome(
            memory=self.mem[i].cpu(), accuracy=accuracy, loss=float(self.loss[i]),
            min_loss=float(self.min_loss[i]), min_margin=float(self.margin[i]),
            best_step=int(self.step[i]), steps=steps, seconds=seconds,
            converged=bool(self.converged[i]), numerical_fault=bool(self.fault[i]),
            first_miss=None if accuracy >= 1.0 else int(self.first_miss[i]))


def cram_batch(
    model: torch.nn.Module,
    token_ids: list[list[int]],
    config: CramConfig = CramConfig(),
    init: torch.Tensor | None = None,
    on_step: Callable[[StepInfo], None] | None = None,
    on_finish: Callable[[int, SampleOutcome], None] | None = None,
    *,
    slots: int | None = None,
    refill: bool = True,
) -> list[SampleOutcome]:
    """Optimize one set of [mem] vectors per text, `slots` texts at a time (None: all at
    once). `init` (B, k, d) warm-starts them.

    The texts wait in a queue, longest first, and a text that finishes leaves its slot to the
    next; `refill=False` takes them in the order given, a whole batch at a time, each batch
    run until its last text finishes (the engine before continuous batching, kept for the
    benchmark that compares the two). A step that runs out of memory puts half the batch
    back in the queue, each text with its state, and the batch goes on at half its size.
    `on_finish(index, outcome)` is called as each text leaves the batch, so callers can store
    it before the rest are done."""
    if any(len(t) < 2 for t in token_ids):
        raise ValueError("every text needs at least 2 tokens (one seed, one to predict)")
    device = model.device
    n = len(token_ids)
    slots = n if slots is None else max(1, min(slots, n))
    if init is None:
        init = init_memory(model, config.n_mem, [sample_seed(config.seed, t, config.n_mem)
                                                 for t in token_ids])
    mem = init.detach().float().to(device).clone()
    center = basis = None
    if config.subspace:  # optimize coordinates; the vectors are center + coords @ basis.T
        center, basis = embedding_subspace(model, config.subspace)
        mem = (mem - center) @ basis

    def vectors(coords: torch.Tensor) -> torch.Tensor:
        return coords if basis is None else center + coords @ basis.T

    optimizer = _AdamW(config, mem)
    best = _Best(n, vectors(mem))
    ids_all, mask_all = pad_right(token_ids, pad_id=0, device=device)
    lengths = [len(t) for t in token_ids]  # on the host: the batch's width costs no sync
    text_step = torch.zeros(n, dtype=torch.long, device=device)  # each text's own count
    host_step = [0] * n  # the same, kept on the host without a sync
    entered = [0.0] * n  # when each text took its slot
    outcomes: list[SampleOutcome | None] = [None] * n
    waiting = deque(sorted(range(n), key=lambda i: -lengths[i]) if refill else range(n))
    running: list[int] = []  # on the host, in the order of the device's `rows`

    def batch_of(texts: list[int]) -> tuple[torch.Tensor, int, int]:
        """(rows, width, padded positions) of a batch of these texts."""
        width = max(lengths[i] for i in texts)  # no padding that no text needs
        return (torch.tensor(texts, device=device), width,
                width * len(texts) - sum(lengths[i] for i in texts))

    autocast = compute_precision(model, config.dtype)
    batch_step = 0
    with engine_mode(model), activation_checkpointing(model, config.checkpointing):
        while waiting or running:
            if waiting and len(running) < slots and (refill or not running):
                while waiting and len(running) < slots:
                    running.append(waiting.popleft())
                    entered[running[-1]] = time.perf_counter()
                rows, width, padded = batch_of(running)
            ids = ids_all[rows, :width]
            mask = mask_all[rows, :width] if padded else None  # None: the causal fast path
            params = mem[rows].requires_grad_(True)
            try:
                with autocast:
                    stats = text_stats(model, ids, mask, vectors(params), config.temperature,
                                       compile=config.compile)
                (grad,) = torch.autograd.grad(stats.loss.sum(), params)
            except torch.OutOfMemoryError:
                if len(running) == 1:
                    raise
                slots = len(running) // 2  # the rest wait, each with its state and steps
                waiting.extendleft(reversed(running[slots:]))
                running = running[:slots]
                del params
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                rows, width, padded = batch_of(running)
                continue
            batch_step += 1
            steps = text_step[rows] + 1
            text_step[rows] = steps
            for i in running:
                host_step[i] += 1
            done = best.update(rows, steps, vectors(params.detach()), stats, config.min_margin)
            optimizer.step(mem, rows, grad, steps)
            done |= (best.since[rows] >= config.patience) | (steps >= config.max_steps)

            stepped, stepped_width, stepped_padded = len(running), width, padded
            if bool(done.any()):  # the one host sync per step: the stop rule needs it
                now = time.perf_counter()
                gone = set(rows[done].tolist())
                left = [i for i in running if i in gone]
                running = [i for i in running if i not in gone]
                if running:
                    rows, width, padded = batch_of(running)
                for i in left:
                    outcomes[i] = best.outcome(i, host_step[i], now - entered[i])
                    if on_finish is not None:
                        on_finish(i, outcomes[i])
            if on_step is not None:
                most = sum(config.max_steps - host_step[i] for i in running) \
                    + len(waiting) * config.max_steps
                on_step(StepInfo(step=batch_step, active=len(running),
                                 finished=n - len(running) - len(waiting), total=n,
                                 best_accuracies=best.acc, losses=stats.nats.detach(),
                                 slots=slots, stepped=stepped, width=stepped_width,
                                 padded=stepped_padded, text_steps_left=most))

    return outcomes  # every text finished: the queue runs until the last one does
