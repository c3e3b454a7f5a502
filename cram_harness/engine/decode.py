"""Greedy decoding from [mem] vectors, for every family of causal LM transformers can run.

Each family keeps what it has read in its own way, and transformers has renamed it over time:
an attention KV cache under `past_key_values` (`cache` from 5.24 on), a state-space model's
conv and SSM states under `cache_params` (Mamba, Mamba2, FalconMamba), and RecurrentGemma
keeps its recurrent state inside its layers and fills a cache container it is handed without
returning it. `IncrementalForward` feeds each family only its new tokens; a model that keeps
nothing is given the whole sequence again at every token (said once, it is slower).
"""

from __future__ import annotations

import inspect
import warnings

import torch
from torch import nn

# The names a forward takes its cache under, newest first; an output carries it by the same.
CACHE_NAMES = ("cache", "past_key_values", "cache_params")

_warned: set[str] = set()


def cache_argument(model: nn.Module) -> str | None:
    """The name the model's forward takes its cache under, or None if it takes none."""
    params = inspect.signature(model.forward).parameters
    return next((name for name in CACHE_NAMES if name in params), None)


def returned_cache(out) -> object | None:
    for name in CACHE_NAMES:
        cache = getattr(out, name, None)
        if cache is not None:
            return cache
    return None


class IncrementalForward:
    """Forward passes over one growing sequence: each call gives the embeddings of the new
    positions and gets their logits, the earlier positions read from the model's cache."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.argument = cache_argument(model)
        params = inspect.signature(model.forward).parameters
        # transformers < 5.x wants the positions by name for Mamba and RecurrentGemma
        self.positions = "cache_position" in params
        self.no_cache = {"use_cache": False} if "use_cache" in params else {}
        self.cache: object | None = None
        self.seen = 0  # positions the cache holds
        # Mamba before transformers 5.x numbers its first pass conv_kernel positions long,
        # whatever its length (generate does the same), and keeps its conv state by them
        self.shift = 0
        self.uncached: torch.Tensor | None = None  # the whole sequence, where nothing is kept

    def __call__(self, embeds: torch.Tensor) -> torch.Tensor:
        if self.uncached is not None:
            return self._rerun(embeds)
        if self.seen == 0:
            if self.argument is None:
                return self._start_rerun(embeds, self.model(inputs_embeds=embeds, **self.no_cache))
            out = self._forward(embeds, None)
            self.cache = returned_cache(out)
            if self.cache is None and self.argument in ("cache", "past_key_values"):
                out = self._handed_container(embeds)  # RecurrentGemma (transformers >= 5)
            if self.cache is None:
                return self._start_rerun(embeds, out)
            self.shift = max(0, getattr(self.model.config, "conv_kernel", 0) - embeds.shape[1])
        else:
            out = self._forward(embeds, self.cache)
            self.cache = returned_cache(out) or self.cache  # some fill it in place
        self.seen += embeds.shape[1]
        return out.logits

    def _forward(self, embeds: torch.Tensor, cache: object | None):
        kwargs = {} if cache is None else {self.argument: cache}
        if self.positions and self.seen > 0:  # the first pass's are the model's to choose
            start = self.seen + self.shift
            kwargs["cache_position"] = torch.arange(start, start + embeds.shape[1],
                                                    device=embeds.device)
        return self.model(inputs_embeds=embeds, use_cache=True, **kwargs)

    def _handed_container(self, embeds: torch.Tensor):
        from transformers import DynamicCache

        try:
            container = DynamicCache(config=self.model.config)
        except TypeError:  # transformers < 4.56 builds it without the config
            container = DynamicCache()
        try:
            out = self._forward(embeds, container)
        except (AttributeError, TypeError, ValueError):  # it wants a cache class of its own
            return self.model(inputs_embeds=embeds, **self.no_cache)  # (Jamba before 5.0)
        if container.get_seq_length() > 0:  # the model filled it: it is the cache
            self.cache = container
        return out

    def _start_rerun(self, embeds: torch.Tensor, out) -> torch.Tensor:
        name = type(self.model).__name__
        if name not in _warned:
            _warned.add(name)
            warnings.warn(f"{name} keeps no cache that greedy decoding can reuse: each token "
                          "is decoded by running the whole sequence again (slower, same result)",
                          stacklevel=4)
        self.uncached = embeds
        return out.logits

    def _rerun(self, embeds: torch.Tensor) -> torch.Tensor:
        self.uncached = torch.cat([self.uncached, embeds], dim=1)
        logits = self.model(inputs_embeds=self.uncached, **self.no_cache).logits
        return logits[:, -embeds.shape[1]:]


@torch.no_grad()
def greedy_decode(
    model: nn.Module, mem: torch.Tensor | None, seed_ids: torch.Tensor, num_new_tokens: int
) -> torch.Tensor:
    """Greedy continuation of `seed_ids` (B, s) after the [mem] prefix. Returns
    (B, num_new_tokens).

    A plain argmax loop rather than `generate`: the model's generation config may add logits
    processors (a repetition penalty, EOS held back by a minimum length) that would make
    "greedy" mean something else than the argmax teacher-forced accuracy is scored by
    (tests/engine/test_adapter.py checks it against `generate` where the two must agree)."""
    embed = model.get_input_embeddings()
    embeds = embed(seed_ids)
    if mem is not None:
        embeds = torch.cat([mem.to(embeds.dtype), embeds], dim=1)
    if num_new_tokens < 1:
        return seed_ids.new_zeros((seed_ids.shape[0], 0))
    forward = IncrementalForward(model)
    logits = forward(embeds)
    tokens = []
    while True:
        nxt = logits[:, -1].argmax(-1)
        tokens.append(nxt)
        if len(tokens) == num_new_tokens:
            return torch.stack(tokens, dim=1)
        logits = forward(embed(nxt[:, None]))
