"""The embedding-space analyses of the paper's Figures 7 and 8, over several solutions
(restarts with different seeds) of the same texts."""

from __future__ import annotations

import itertools

import torch

from cram_harness.engine.measure import text_logits, token_stats


def cosine_similarities(solutions: list[list[torch.Tensor]]) -> tuple[list[float], list[float]]:
    """(intra, inter): cosines between solutions of the same text, and of different texts.
    `solutions[i]` holds text i's (k, d) vectors, one per restart; each is flattened."""
    flat = [[s.flatten().float() for s in sols] for sols in solutions]
    intra = [float(torch.cosine_similarity(a, b, dim=0))
             for sols in flat for a, b in itertools.combinations(sols, 2)]
    inter = [float(torch.cosine_similarity(a, b, dim=0))
             for (i, si), (j, sj) in itertools.combinations(enumerate(flat), 2)
             for a in si for b in sj]
    return intra, inter


@torch.no_grad()
def interpolation_curves(
    model: torch.nn.Module, token_lists: list[list[int]], solutions: list[list[torch.Tensor]],
    thetas: list[float],
) -> list[list[float]]:
    """Teacher-forced accuracy at (1 - theta) * a + theta * b for every pair (a, b) of one
    text's solutions; one curve per pair."""
    curves = []
    for tokens, sols in zip(token_lists, solutions):
        ids = torch.tensor([tokens], device=model.device)
        mask = torch.ones_like(ids)
        for a, b in itertools.combinations(sols, 2):
            mems = torch.stack([(1 - t) * a + t * b for t in thetas]).to(model.device)
            batch_ids, batch_mask = ids.expand(len(thetas), -1), mask.expand(len(thetas), -1)
            logits = text_logits(model, batch_ids, batch_mask, mems)
            stats = token_stats(logits, batch_ids[:, 1:], batch_mask[:, 1:])
            curves.append(stats.accuracy.tolist())
    return curves
