"""Capacity from one run (the paper's finding): a text is decodable from the [mem] vectors
iff its own cross-entropy without them is below the model's information gain. So the gain
measured once, at a length well past capacity, predicts each text's longest decodable
prefix from a single forward pass over the text."""

from __future__ import annotations

import torch

from cram_harness.engine.adapter import engine_mode, pad_right
from cram_harness.engine.measure import text_logits


@torch.no_grad()
def cumulative_cross_entropy(model: torch.nn.Module,
                             token_lists: list[list[int]]) -> list[list[float]]:
    """For each text, the running total (nats) of the CE of predicting its tokens after the
    seed, without [mem]: entry j covers the first j + 1 predicted tokens."""
    ids, mask = pad_right(token_lists, pad_id=0, device=model.device)
    with engine_mode(model):
        logits = text_logits(model, ids, mask, None).float()
    ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
    return [ce[i, : len(t) - 1].cumsum(0).tolist() for i, t in enumerate(token_lists)]


def predicted_length(cumulative_ce: list[float], information_gain: float) -> int:
    """The longest prefix L (tokens of the sequence, the unit of the length grid: the seed
    token or BOS included) whose CE without [mem] fits in the information gain. The first
    token is free: it seeds decoding."""
    fits = sum(1 for total in cumulative_ce if total <= information_gain)  # totals increase
    return fits + 1
