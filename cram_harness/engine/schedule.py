"""Cram many texts: a queue of them through a batch as large as the memory holds (engine/
loop.py), a bf16 run whose loss went NaN/inf redone in fp32, and greedy decoding of the texts
that reached 100% teacher-forced accuracy, in groups. No I/O: results go to the caller's
`on_result`.

A text below 100% needs no decoding: greedy decoding follows the teacher-forced argmax up to
its first miss, so that miss is where decoding would fail. A text at 100% may still fail
(argmax ties flip between the batched pass and the token-by-token one: docs/concepts.md,
"What lossless means here"), so those are decoded, many at once: they share one prefix length
([mem] + seed token), so a group needs no padding and decoding it costs about what decoding
one text does.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import torch

from cram_harness import metrics
from cram_harness.engine.adapter import compute_precision, engine_mode, pad_right
from cram_harness.engine.batching import auto_batch_size
from cram_harness.engine.decode import greedy_decode
from cram_harness.engine.loop import CramConfig, SampleOutcome, StepInfo, cram_batch
from cram_harness.engine.measure import text_logits, token_stats

# Texts at 100% wait to be decoded together until the queue runs dry, or until the first of
# them has waited DECODE_COST_RATIO times as long as the last decode took (DECODE_WAIT_S at
# least): a decode costs about the same for one text as for many (one forward pass a token),
# so decoding costs at most ~5% of the wall time, and a stopped run loses little finished
# work.
DECODE_COST_RATIO = 19.0
DECODE_WAIT_S = 60.0


@dataclass
class CramResult:
    """One crammed text: its metrics, its best [mem] vectors (k, d), and how it was made."""

    token_ids: list[int]
    num_tokens: int  # L: tokens in the crammed sequence, seed (first token or BOS) included
    num_predicted: int  # L - 1: the positions predicted from the vectors
    requested_tokens: int | None
    base_loss: float  # mean CE in nats without [mem]
    base_accuracy: float
    best_loss: float  # mean CE (nats) of the best-accuracy state
    min_loss: float  # the lowest mean CE (nats) of any step: what information gain is made of
    best_accuracy: float
    token_gain: float  # (best_accuracy - base_accuracy) * L, as the paper computed it
    information_gain: float  # (base_loss - min_loss) * L, nats, as the paper computed it
    information_gain_bits: float
    min_margin: float
    steps: int
    best_step: int
    seconds: float
    converged: bool
    retried_fp32: bool  # the bf16 run hit a NaN/inf loss; these numbers are the fp32 rerun
    numerical_fault: bool  # the loss went NaN/inf even in fp32: not a result, never reported
    greedy_exact: bool
    greedy_accuracy: float  # share of the predicted tokens greedy decoding gave back before
    # its first miss (after it, generation follows its own text, not this one)
    first_mismatch: int | None  # index into the predicted tokens of the first greedy miss
    text_sha256: str
    model_spec: str
    config: dict
    memory: torch.Tensor = field(repr=False)
    _model: Any = field(default=None, repr=False, compare=False)

    @property
    def seed_token_ids(self) -> list[int]:
        return self.token_ids[:1]

    def record(self) -> dict:
        """The JSON-ready metrics and settings (no vectors)."""
        skip = {"memory", "_model", "token_ids"}
        rec = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}
        rec["seed_token_ids"] = self.seed_token_ids
        return rec


def text_sha256(token_ids: Sequence[int]) -> str:
    return hashlib.sha256(",".join(map(str, token_ids)).encode()).hexdigest()


@dataclass
class QueueStats:
    """How full the batch stayed over a call of `cram_token_ids`, and what decoding cost."""

    batch_steps: int = 0
    slot_steps: int = 0  # the batch's size summed over its steps: what was there to use
    text_steps: int = 0  # texts in the batch summed over its steps: what was used
    positions: int = 0  # positions the steps ran (text and padding, [mem] not counted)
    padded: int = 0  # of them, padding
    decode_s: float = 0.0
    wall_s: float = 0.0

    def add(self, info: StepInfo) -> None:
        self.batch_steps += 1
        self.slot_steps += info.slots
        self.text_steps += info.stepped
        self.positions += info.stepped * info.width
        self.padded += info.padded

    @property
    def occupancy(self) -> float:
        """Share of the batch's slots that held a text, over all steps."""
        return self.text_steps / self.slot_steps if self.slot_steps else 0.0

    @property
    def padded_share(self) -> float:
        return self.padded / self.positions if self.positions else 0.0

    @property
    def decode_share(self) -> float:
        return self.decode_s / self.wall_s if self.wall_s else 0.0


def cram_token_ids(
    model: Any,
    token_lists: list[list[int]],
    config: CramConfig,
    *,
    batch_size: int | None = None,
    init: torch.Tensor | None = None,
    on_step: Callable[[StepInfo], None] | None = None,
    on_result: Callable[[int, CramResult], None] | None = None,
    max_tokens: int | None = None,
    refill: bool = True,
    stats: QueueStats | None = None,
) -> list[CramResult]:
    """Cram token sequences (seed token first), `batch_size` at a time (None: as many as the
    free memory holds, `batching.auto_batch_size`): a text that finishes leaves its slot to
    the next one (`refill=False`: whole batches, one after another, as before continuous
    batching). `on_result(index, result)` is called as each text's result is complete.
    `stats`, if given, is filled with the batch's occupancy, padding and decode time."""
    size = batch_size or auto_batch_size(
        model, max(len(t) for t in token_lists) + config.n_mem, len(token_lists),
        bf16=config.dtype == "bf16", checkpointing=config.checkpointing)
    spec = getattr(model, "cram_spec", None) or getattr(model, "name_or_path", "")
    results: list[CramResult | None] = [None] * len(token_lists)

    def keep(i: int, result: CramResult) -> None:
        results[i] = result
        if on_result is not None:
            on_result(i, result)

    started = time.perf_counter()
    texts = _Texts(model, token_lists, config, max_tokens, spec, size, keep, stats)
    with engine_mode(model):
        texts.run(init, on_step, refill)
    if stats is not None:
        stats.wall_s += time.perf_counter() - started
    return results


def _half_after(exc: torch.OutOfMemoryError, count: int) -> int:
    """Where to split `count` texts that ran out of memory together; one text alone can't be."""
    if count == 1:
        raise exc
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return count // 2


def base_stats(model: Any, token_lists: list[list[int]], dtype: str, group: int | None = None
               ) -> tuple[list[float], list[float]]:
    """(loss, accuracy) of each text without [mem], under the precision its vectors are
    trained in (the gains compare like with like), `group` texts at a time (None: all). A
    group that does not fit in memory is measured in halves."""
    group = group or len(token_lists)
    if len(token_lists) > group:
        parts = [base_stats(model, token_lists[s:s + group], dtype, group)
                 for s in range(0, len(token_lists), group)]
        return [x for p in parts for x in p[0]], [x for p in parts for x in p[1]]
    try:
        ids, mask = pad_right(token_lists, pad_id=0, device=model.device)
        with torch.no_grad(), compute_precision(model, dtype):
            base = token_stats(text_logits(model, ids, mask, None), ids[:, 1:], mask[:, 1:])
        return base.loss.tolist(), base.accuracy.tolist()
    except torch.OutOfMemoryError as exc:
        return base_stats(model, token_lists, dtype, _half_after(exc, len(token_lists)))


def decode_group(model: Any, memories: list[torch.Tensor], token_lists: list[list[int]],
                 dtype: str) -> list[list[int]]:
    """Greedy-decode each text's continuation of its seed token from its (k, d) vectors, all
    in one batch (they share the prefix length), as many tokens as the text has after it.
    A group that does not fit in memory is decoded in halves."""
    try:
        seeds = torch.tensor([t[:1] for t in token_lists], device=model.device)
        mem = torch.stack(memories).to(model.device)
        with compute_precision(model, dtype):
            out = greedy_decode(model, mem, seeds, max(len(t) for t in token_lists) - 1)
        return [row[: len(t) - 1] for row, t in zip(out.tolist(), token_lists)]
    except torch.OutOfMemoryError as exc:
        half = _half_after(exc, len(token_lists))
        return (decode_group(model, memories[:half], token_lists[:half], dtype)
                + decode_group(model, memories[half:], token_lists[half:], dtype))


class _Texts:
    """The texts of one call through the engine: their base measurements, the queue, the
    fp32 reruns of bf16 runs that faulted, and their decoding in groups."""

    def __init__(self, model, token_lists, config, max_tokens, spec, slots, on_result, stats):
        self.model, self.tokens, self.config = model, token_lists, config
        self.max_tokens, self.spec, self.slots = max_tokens, spec, slots
        self.on_result, self.stats = on_result, stats
        self.base_losses, self.base_accs = base_stats(model, token_lists, config.dtype, slots)
        self.retry: list[int] = []
        self.waiting: list[tuple[int, SampleOutcome, bool]] = []  # at 100%, to be decoded
        self.waiting_since = 0.0
        self.decode_s = 0.0  # how long the last decode took

    def run(self, init: torch.Tensor | None, on_step, refill: bool) -> None:
        def step(info: StepInfo) -> None:
            if self.stats is not None:
                self.stats.add(info)
            if on_step is not None:
                on_step(info)

        cram_batch(self.model, self.tokens, self.config, init=init, on_step=step,
                   on_finish=self.finish, slots=self.slots, refill=refill)
        self.decode_waiting()
        if not self.retry:
            return
        retry, fp32 = self.retry, replace(self.config, dtype="fp32")
        texts = [self.tokens[i] for i in retry]
        losses, accs = base_stats(self.model, texts, "fp32", self.slots)
        for i, loss, acc in zip(retry, losses, accs):
            self.base_losses[i], self.base_accs[i] = loss, acc
        outs = cram_batch(self.model, texts, fp32, init=None if init is None else init[retry],
                          on_step=step, slots=self.slots, refill=refill)
        for i, out in zip(retry, outs):
            self.finish(i, out, retried=True)
        self.decode_waiting()

    def finish(self, i: int, out: SampleOutcome, retried: bool = False) -> None:
        if out.numerical_fault and self.config.dtype != "fp32" and not retried:
            self.retry.append(i)  # rerun in fp32; the bf16 numbers are never reported
            return
        if out.accuracy < 1.0 or out.numerical_fault:
            self.report(i, out, retried, out.first_miss or 0)
            return
        if not self.waiting:
            self.waiting_since = time.perf_counter()
        self.waiting.append((i, out, retried))
        waited = time.perf_counter() - self.waiting_since
        if waited >= max(DECODE_WAIT_S, DECODE_COST_RATIO * self.decode_s):
            self.decode_waiting()

    def decode_waiting(self) -> None:
        start = time.perf_counter()
        for retried in (False, True):  # decoded in the precision the vectors were made in
            group = [(i, out) for i, out, r in self.waiting if r == retried]
            if not group:
                continue
            texts = [self.tokens[i] for i, _ in group]
            dtype = "fp32" if retried else self.config.dtype
            decoded = decode_group(self.model, [out.memory for _, out in group], texts, dtype)
            for (i, out), tokens, new in zip(group, texts, decoded):
                miss = next((j for j, tok in enumerate(new) if tok != tokens[j + 1]), None)
                self.report(i, out, retried, miss)
        self.waiting = []
        self.decode_s = time.perf_counter() - start
        if self.stats is not None:
            self.stats.decode_s += self.decode_s

    def report(self, i: int, out: SampleOutcome, retried: bool, mismatch: int | None) -> None:
        tokens = self.tokens[i]
        length, n = len(tokens), len(tokens) - 1
        base_loss, base_acc = self.base_losses[i], self.base_accs[i]
        info_gain = metrics.information_gain(base_loss, out.min_loss, length)
        # a model that gives NaN/inf without [mem] is no result either
        fault = out.numerical_fault or not math.isfinite(base_loss)
        self.on_result(i, CramResult(
            token_ids=list(tokens), num_tokens=length, num_predicted=n,
            requested_tokens=self.max_tokens, base_loss=base_loss, base_accuracy=base_acc,
            best_loss=out.loss, min_loss=out.min_loss, best_accuracy=out.accuracy,
            token_gain=metrics.token_gain(out.accuracy, base_acc, length),
            information_gain=info_gain, information_gain_bits=metrics.nats_to_bits(info_gain),
            min_margin=out.min_margin, steps=out.steps, best_step=out.best_step,
            seconds=out.seconds, converged=out.converged, retried_fp32=retried,
            numerical_fault=fault, greedy_exact=mismatch is None,
            greedy_accuracy=(n if mismatch is None else mismatch) / n, first_mismatch=mismatch,
            text_sha256=text_sha256(tokens), model_spec=self.spec,
            config=self.config.to_dict(), memory=out.memory, _model=self.model,
        ))
