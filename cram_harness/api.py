"""The Python API: `cram(model_or_spec, texts, ...) -> list[CramResult]`, and decoding an
adapter back to its text. The engine (`cram_harness.engine.schedule`) does the work."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from cram_harness.config import CramConfig
from cram_harness.engine import schedule
from cram_harness.engine.adapter import compute_precision, weights_refused
from cram_harness.engine.decode import greedy_decode
from cram_harness.engine.loop import StepInfo
from cram_harness.errors import CramError
from cram_harness.forecast import unlikely_texts
from cram_harness.models.load import load_model
from cram_harness.models.tokens import check_fits, check_tokens_fit, encode_text
from cram_harness.validation import BATCH, TOKENS, check_value, keyword


@dataclass
class CramResult(schedule.CramResult):
    """One crammed text (`engine.schedule.CramResult`) that can save itself as a PEFT adapter."""

    @classmethod
    def of(cls, result: schedule.CramResult) -> CramResult:
        return cls(**{f.name: getattr(result, f.name) for f in fields(result)})

    def save_adapter(self, path: str | os.PathLike) -> Path:
        """Write a PEFT PROMPT_TUNING adapter that `PeftModel.from_pretrained` loads and
        `generate(input_ids=seed, min_new_tokens=n, max_new_tokens=n)` decodes back, with
        n = num_predicted."""
        from cram_harness.integrations.peft import save_adapter

        if self._model is None:
            raise RuntimeError("this result has no model attached to save against")
        info = {**self.record(), "num_new_tokens": self.num_predicted}
        return save_adapter(path, self.memory, self._model, info)


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
    config: CramConfig | None = None,
    forecast: bool = True,
    **engine_options: Any,
) -> list[CramResult]:
    """Cram each text into `n_mem` [mem] vectors of a frozen causal LM.

    `model_or_spec` is a spec for `load_model` or a loaded model (then pass `tokenizer`).
    `engine_options` are `CramConfig` fields (lr, max_steps, patience, min_margin, dtype, seed,
    ...), or `config` a CramConfig already made (its n_mem is the number of vectors);
    `init` (B, k, d) warm-starts the vectors, e.g. from a loaded adapter.
    `on_result(index, result)` is called as each text finishes, before its batch does.
    `forecast`: warn, before any step, of texts unlikely to decode (a caller that said its
    own forecast passes False).
    """
    if isinstance(model_or_spec, (str, os.PathLike)):
        model, tokenizer = load_model(model_or_spec, device=device)
    else:
        model = model_or_spec
        if not callable(getattr(model, "get_input_embeddings", None)):
            raise CramError(f"cram() takes a model spec or a loaded causal LM first, not a "
                            f"{type(model).__name__}")
        if tokenizer is None:
            raise CramError("pass tokenizer= when giving a loaded model to cram()")
        refused = weights_refused(model)
        if refused:
            raise CramError(refused)
    texts = [texts] if isinstance(texts, str) else texts
    if not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) for t in texts):
        raise CramError(f"cram() takes a text or a list of texts, not {texts!r:.60}")
    if not texts:
        raise CramError("no texts given to cram")
    check_value("max_tokens", max_tokens, TOKENS, keyword)
    check_value("batch_size", batch_size, BATCH, keyword)
    if config is None:
        try:  # a value out of range is its declaration's one line (`lr= is nan: ...`)
            config = CramConfig(n_mem=n_mem, **engine_options)
        except TypeError as exc:  # an option CramConfig does not have
            raise CramError(f"bad engine option: {exc}") from exc
    elif engine_options:
        raise CramError("give cram() engine options or a config, not both")
    n_mem = config.n_mem
    check_fits(model, n_mem, max_tokens)
    width = model.get_input_embeddings().weight.shape[1]
    if init is not None and (init.dim() != 3 or init.shape[1:] != (n_mem, width)
                             or init.shape[0] != len(texts)):
        raise CramError(f"init holds vectors of shape {tuple(init.shape)}, but {len(texts)} "
                        f"text(s), n_mem {n_mem} and the model's width {width} need "
                        f"({len(texts)}, {n_mem}, {width}): a loaded adapter's vectors[None] "
                        "for one text")
    token_lists = [encode_text(tokenizer, t, max_tokens) for t in texts]
    check_tokens_fit(model, n_mem, token_lists)
    spec = getattr(model, "cram_spec", None) or getattr(model, "name_or_path", "")
    said = unlikely_texts(model, spec, token_lists, n_mem) if forecast else None
    if said:  # said before any step; a forecast never refuses a text
        warnings.warn(said, stacklevel=2)

    def result(i: int, res: schedule.CramResult) -> None:
        if on_result is not None:
            on_result(i, CramResult.of(res))

    return [CramResult.of(r) for r in schedule.cram_token_ids(
        model, token_lists, config, batch_size=batch_size, init=init, on_step=on_step,
        on_result=result, max_tokens=max_tokens)]


@dataclass
class Decoded:
    """A text decoded back from an adapter by greedy decoding."""

    token_ids: list[int]
    text: str
    matches: bool  # whether its tokens hash to the adapter's recorded text_sha256


def decode_adapter(path: str | os.PathLike, model: Any = None, tokenizer: Any = None, *,
                   device: str = "auto") -> Decoded:
    """Greedy-decode the text stored in an adapter written by `CramResult.save_adapter`, by
    our own decoding, exact on every transformers version. Without `model`, the base model
    the adapter names is loaded (`adapter_base_spec`: an alias, hub id or local path)."""
    from cram_harness.integrations.peft import adapter_base_spec, load_adapter

    if model is None:
        model, tokenizer = load_model(adapter_base_spec(path), device=device)
    elif tokenizer is None:
        raise CramError("pass tokenizer= with the model to decode_adapter()")
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
                   schedule.text_sha256(tokens) == info.get("text_sha256"))
