"""The Python API: `cram(model_or_spec, texts, ...) -> list[CramResult]`."""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch

from cram_harness import metrics
from cram_harness.engine.adapter import (
    compute_precision,
    greedy_decode,
    pad_right,
    text_logits,
    token_stats,
)
from cram_harness.engine.batching import auto_batch_size
from cram_harness.engine.loop import CramConfig, StepInfo, cram_batch
from cram_harness.errors import CramError
from cram_harness.integrations.peft import save_adapter
from cram_harness.models.load import load_model
from cram_harness.models.tokens import check_fits, encode_text


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

    def save_adapter(self, path: str | os.PathLike) -> Path:
        """Write a PEFT PROMPT_TUNING adapter that `PeftModel.from_pretrained` loads and
        `generate(input_ids=seed, min_new_tokens=n, max_new_tokens=n)` decodes back, with
        n = num_predicted."""
        if self._model is None:
            raise RuntimeError("this result has no model attached to save against")
        info = {**self.record(), "num_new_tokens": self.num_predicted}
        return save_adapter(path, self.memory, self._model, info)


def text_sha256(token_ids: Sequence[int]) -> str:
    return hashlib.sha256(",".join(map(str, token_ids)).encode()).hexdigest()


def cram(
    model_or_spec: Any,
    texts: str | Sequence[str],
    n_mem: int = 1,
    max_tokens: int | None = None,
    *,
    tokenizer: Any = None,
    batch_size: int | None = None,
    init: torch.Tensor | None = None,
    device: str = "auto",
    on_step: Callable[[StepInfo], None] | None = None,
    on_result: Callable[[int, CramResult], None] | None = None,
    **engine_options: Any,
) -> list[CramResult]:
    """Cram each text into `n_mem` [mem] vectors of a frozen causal LM.

    `model_or_spec` is a spec for `load_model` or a loaded model (then pass `tokenizer`).
    `engine_options` are `CramConfig` fields (lr, max_steps, patience, min_margin, dtype, seed,
    ...); `init` (B, k, d) warm-starts the vectors, e.g. from a loaded adapter.
    `on_result(index, result)` is called as each text finishes, before its batch does.
    """
    if isinstance(model_or_spec, str):
        model, tokenizer = load_model(model_or_spec, device=device)
    else:
        model = model_or_spec
        if tokenizer is None:
            raise CramError("pass tokenizer= when giving a loaded model to cram()")
    texts = [texts] if isinstance(texts, str) else list(texts)
    if not texts:
        raise CramError("no texts given to cram")
    try:
        config = CramConfig(n_mem=n_mem, **engine_options)
    except (TypeError, ValueError) as exc:
        raise CramError(f"bad engine option: {exc}") from exc
    check_fits(model, n_mem, max_tokens)
    if init is not None and (init.dim() != 3 or init.shape[1] != n_mem):
        raise CramError(f"init holds vectors of shape {tuple(init.shape)}, but n_mem is {n_mem}: "
                        "pass n_mem=init.shape[1] (a loaded adapter's vectors[None])")
    token_lists = [encode_text(tokenizer, t, max_tokens) for t in texts]
    return cram_token_ids(model, token_lists, config, batch_size=batch_size, init=init,
                          on_step=on_step, on_result=on_result, max_tokens=max_tokens)


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
) -> list[CramResult]:
    """`cram` on token sequences already encoded (seed token first), in batches of
    `batch_size` (None: as many as the free memory holds, `batching.auto_batch_size`). A batch
    that runs out of memory is split in two and the run goes on."""
    size = batch_size or auto_batch_size(
        model, max(len(t) for t in token_lists) + config.n_mem, len(token_lists),
        bf16=config.dtype == "bf16", checkpointing=config.checkpointing)
    spec = getattr(model, "cram_spec", None) or getattr(model, "name_or_path", "")
    results: dict[int, CramResult] = {}

    def keep(i: int, result: CramResult) -> None:
        results[i] = result
        if on_result is not None:
            on_result(i, result)

    pending = [list(range(s, min(s + size, len(token_lists))))
               for s in range(0, len(token_lists), size)]
    while pending:
        chunk = [i for i in pending.pop(0) if i not in results]  # finished ones are kept
        if not chunk:
            continue
        try:
            _cram_chunk(model, [token_lists[i] for i in chunk], config,
                        None if init is None else init[chunk], on_step,
                        lambda j, r, chunk=chunk: keep(chunk[j], r), max_tokens, spec)
        except torch.OutOfMemoryError:
            if len(chunk) == 1:
                raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            half = len(chunk) // 2
            pending[:0] = [chunk[:half], chunk[half:]]
    return [results[i] for i in range(len(token_lists))]


def _base_stats(model, token_lists, dtype) -> tuple[list[float], list[float]]:
    """(loss, accuracy) of each text without [mem], under the precision its vectors are
    trained in: the gains compare like with like."""
    ids, mask = pad_right(token_lists, pad_id=0, device=model.device)
    with torch.no_grad(), compute_precision(model, dtype):
        base = token_stats(text_logits(model, ids, mask, None), ids[:, 1:], mask[:, 1:])
    return base.loss.tolist(), base.accuracy.tolist()


def _cram_chunk(model, token_lists, config, init, on_step, on_result, max_tokens, spec):
    base_losses, base_accs = _base_stats(model, token_lists, config.dtype)
    results: dict[int, CramResult] = {}
    retry: list[int] = []

    def finish(i: int, out, retried: bool = False) -> None:
        if out.numerical_fault and config.dtype != "fp32" and not retried:
            retry.append(i)  # rerun in fp32 below; the bf16 numbers are never reported
            return
        tokens = token_lists[i]
        length, n = len(tokens), len(tokens) - 1
        seed = torch.tensor([tokens[:1]], device=model.device)
        with compute_precision(model, "fp32" if retried else config.dtype):
            decoded = greedy_decode(model, out.memory[None].to(model.device), seed, n)[0].tolist()
        mismatch = next((j for j in range(n) if decoded[j] != tokens[j + 1]), None)
        base_loss, base_acc = base_losses[i], base_accs[i]
        info_gain = metrics.information_gain(base_loss, out.min_loss, length)
        # a model that gives NaN/inf without [mem] is no result either
        fault = out.numerical_fault or not math.isfinite(base_loss)
        results[i] = CramResult(
            token_ids=list(tokens), num_tokens=length, num_predicted=n,
            requested_tokens=max_tokens, base_loss=base_loss, base_accuracy=base_acc,
            best_loss=out.loss, min_loss=out.min_loss, best_accuracy=out.accuracy,
            token_gain=metrics.token_gain(out.accuracy, base_acc, length),
            information_gain=info_gain, information_gain_bits=metrics.nats_to_bits(info_gain),
            min_margin=out.min_margin, steps=out.steps, best_step=out.best_step,
            seconds=out.seconds, converged=out.converged, retried_fp32=retried,
            numerical_fault=fault, greedy_exact=mismatch is None,
            greedy_accuracy=(n if mismatch is None else mismatch) / n, first_mismatch=mismatch,
            text_sha256=text_sha256(tokens), model_spec=spec,
            config=config.to_dict(), memory=out.memory, _model=model,
        )
        if on_result is not None:
            on_result(i, results[i])

    cram_batch(model, token_lists, config, init=init, on_step=on_step, on_finish=finish)
    if retry:
        fp32 = replace(config, dtype="fp32")
        sub_init = None if init is None else init[retry]
        texts = [token_lists[i] for i in retry]
        losses, accs = _base_stats(model, texts, "fp32")
        for i, loss, acc in zip(retry, losses, accs):
            base_losses[i], base_accs[i] = loss, acc
        outs = cram_batch(model, texts, fp32, init=sub_init, on_step=on_step)
        for i, out in zip(retry, outs):
            finish(i, out, retried=True)
    return [results[i] for i in range(len(token_lists))]


@dataclass
class Decoded:
    """A text decoded back from an adapter by greedy decoding."""

    token_ids: list[int]
    text: str
    matches: bool  # whether its tokens hash to the adapter's recorded text_sha256


def decode_adapter(path: str | os.PathLike, model: Any, tokenizer: Any) -> Decoded:
    """Greedy-decode the text stored in an adapter written by `CramResult.save_adapter`."""
    from cram_harness.integrations.peft import load_adapter

    memory, info = load_adapter(path, model)  # cram.json checked against its schema there
    if "seed_token_ids" not in info or "num_tokens" not in info:
        raise CramError(f"{path} has no cram.json with seed_token_ids and num_tokens (PEFT's "
                        "own save_pretrained does not copy it): without its seed token and "
                        "length there is no text to decode")
    seed = torch.tensor([info["seed_token_ids"]], device=model.device)
    n_new = info["num_tokens"] - seed.shape[1]
    if n_new < 1:
        raise CramError(f"{path}/cram.json: num_tokens {info['num_tokens']} leaves nothing to "
                        f"decode after {seed.shape[1]} seed token(s): export the adapter again")
    trained_in = "fp32" if info.get("retried_fp32") else info.get("config", {}).get("dtype")
    with compute_precision(model, trained_in or "fp32"):  # decode as the vectors were made
        new = greedy_decode(model, memory[None].to(model.device), seed, n_new)[0].tolist()
    tokens = info["seed_token_ids"] + new
    return Decoded(tokens, tokenizer.decode(tokens, skip_special_tokens=True),
                   text_sha256(tokens) == info.get("text_sha256"))
