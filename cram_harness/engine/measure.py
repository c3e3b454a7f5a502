"""What one step measures per text: loss, accuracy, logit margin and first miss.

From the full logits (small shapes), or, where the fp32 (B, L, |V|) logits would be large,
from the last hidden states through the LM head in chunks of positions: each chunk's logits
are made, measured and dropped, and made again in the backward pass (activation
checkpointing), so the peak holds one chunk's logits instead of all of them. A 128k
vocabulary costs ~1.5 GiB a text at 1024 tokens the full way, for the logits, their
log-softmax and their gradient.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

# The step measures in chunks where the batch's fp32 logits would take more than this share
# of the device's memory. Measured on an H200 (benchmarks/RESULTS.md): where the full logits
# fit, chunks only cost time (Llama-3.2-1B at 512 tokens, compute-bound from batch ~80 on:
# 112 sample-steps/s whole, 96 in chunks), so they are for cards where the logits would crowd
# out the batch. Below it the one-chunk path runs, which is the reference loop's arithmetic
# bit for bit (tests/parity). LOGITS_BUDGET (bytes) overrides the share.
LOGITS_SHARE = 0.25
LOGITS_BUDGET: int | None = None


def logits_budget(device: torch.device) -> int:
    if LOGITS_BUDGET is not None:
        return LOGITS_BUDGET
    if device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory
    else:
        import psutil

        total = psutil.virtual_memory().total
    return int(total * LOGITS_SHARE)


@dataclass
class TokenStats:
    """Per-sample measurements over the predicted positions (all (B,) tensors)."""

    loss: torch.Tensor  # the training loss: mean CE at the CE temperature used
    nats: torch.Tensor  # mean CE in nats at temperature 1 (what the gains are made of)
    accuracy: torch.Tensor  # teacher-forced: share of positions whose argmax is the target
    min_margin: torch.Tensor  # smallest (target logit - best other logit); > 0 means argmax hit
    first_miss: torch.Tensor  # index of the first predicted position whose argmax misses;
    # the number of real positions where none does


def _piece(logits: torch.Tensor, targets: torch.Tensor, maskf: torch.Tensor,
           temperature: float) -> tuple[torch.Tensor, ...]:
    """(CE sum at the temperature, CE sum in nats, hits, min margin, first miss or width)
    of one run of positions, per sample."""
    logits = logits.float()

    def ce_sum(scaled: torch.Tensor) -> torch.Tensor:
        # over (positions, vocabulary) rows, as a plain CrossEntropyLoss sees them: a
        # transposed (B, V, N) input would reduce over the vocabulary in another order
        ce = nn.functional.cross_entropy(scaled.reshape(-1, scaled.shape[-1]),
                                         targets.reshape(-1), reduction="none")
        return (ce.view_as(maskf) * maskf).sum(1)

    loss = ce_sum(logits if temperature == 1.0 else logits / temperature)
    with torch.no_grad():
        nats = loss.detach() if temperature == 1.0 else ce_sum(logits)
        target_logit = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        # argmax, not topk's first index: the two may break an exact tie differently, and
        # accuracy is the argmax's (the paper's, and what greedy decoding picks).
        hit = logits.argmax(-1) == targets
        top2 = logits.topk(2, dim=-1).values
        best_other = torch.where(hit, top2[..., 1], top2[..., 0])
        margin = (target_logit - best_other).masked_fill(maskf == 0, float("inf")).min(1).values
        miss = ~hit & (maskf > 0)
        width = torch.full_like(miss[:, 0], miss.shape[1], dtype=torch.long)
        first = torch.where(miss.any(1), miss.int().argmax(1), width)  # argmax: first max
        hits = (hit.float() * maskf).sum(1)
    return loss, nats, hits, margin, first


def _combine(pieces: list[tuple[int, int, tuple[torch.Tensor, ...]]],
             maskf: torch.Tensor) -> TokenStats:
    """TokenStats from (offset, width, piece) runs of positions that tile the text."""
    count = maskf.sum(1).clamp(min=1)
    if len(pieces) == 1:  # the arithmetic of the reference loop, op for op
        (_, _, (loss, nats, hits, margin, first)), = pieces
    else:
        loss, nats, hits = (torch.stack([p[j] for _, _, p in pieces]).sum(0) for j in range(3))
        margin = torch.stack([p[3] for _, _, p in pieces]).min(0).values
        # a piece without a miss says its own width: the earliest miss of any piece is first
        no_miss = maskf.shape[1]
        first = torch.stack([torch.where(p[4] < width, p[4] + offset, no_miss)
                             for offset, width, p in pieces]).min(0).values
    first = torch.minimum(first, maskf.sum(1).long())  # no miss: the number of real positions
    return TokenStats(loss=loss / count, nats=nats / count, accuracy=hits / count,
                      min_margin=margin, first_miss=first)


def token_stats(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor,
                temperature: float = 1.0) -> TokenStats:
    """Loss, accuracy, margin and first miss per sample from (B, N, V) logits; `mask` marks
    real (non-padding) targets."""
    maskf = mask.float()
    return _combine([(0, targets.shape[1], _piece(logits, targets, maskf, temperature))], maskf)


def prefixed_inputs(
    model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
    mem: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """(inputs_embeds, attention mask, k): the [mem] vectors in front of the text's token
    embeddings, k of them per sample (0 without). A mask of None (no padding) stays None."""
    embeds = model.get_input_embeddings()(input_ids)
    if mem is None:
        return embeds, attention_mask, 0
    embeds = torch.cat([mem.to(embeds.dtype), embeds], dim=1)
    if attention_mask is not None:
        ones = torch.ones(mem.shape[:2], dtype=attention_mask.dtype,
                          device=attention_mask.device)
        attention_mask = torch.cat([ones, attention_mask], dim=1)
    return embeds, attention_mask, mem.shape[1]


def text_logits(
    model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
    mem: torch.Tensor | None,
) -> torch.Tensor:
    """Logits at the positions of t_1..t_{N-1} (B, N-1, V), with or without a [mem] prefix.
    `attention_mask` None: no row is padded."""
    embeds, mask, k = prefixed_inputs(model, input_ids, attention_mask, mem)
    out = model(inputs_embeds=embeds, attention_mask=mask, use_cache=False)
    return out.logits[:, k : k + input_ids.shape[1] - 1]


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compiled(module: nn.Module) -> nn.Module:
    """The module under torch.compile, compiled once per module. A batch whose size or
    width changes changes the step's shapes: torch recompiles once with those dimensions
    symbolic (its automatic dynamic shapes) and not again. Kernels fused by the compiler
    round differently from eager ones, so compiled runs are not the paper loop's bits."""
    if module not in _COMPILED:
        _COMPILED[module] = torch.compile(module)
    return _COMPILED[module]


_SPLITS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def head_split(model: nn.Module) -> tuple[nn.Module, nn.Module] | None:
    """(body, head): the model without its LM head, and the head, where the head's output on
    the body's last hidden states is the model's logits (checked once per model on a small
    input; a model that changes its logits after the head, such as Gemma 2's soft-capping,
    gets None and is measured the full way)."""
    if model in _SPLITS:
        return _SPLITS[model]
    body, head = getattr(model, "base_model", None), model.get_output_embeddings()
    split = None
    if body is not None and body is not model and head is not None:
        embeds = model.get_input_embeddings()(torch.tensor([[1, 2, 3, 4]], device=model.device))
        with torch.no_grad(), torch.autocast(model.device.type, enabled=False):
            full = model(inputs_embeds=embeds, use_cache=False).logits.float()
            try:
                mine = head(_last_hidden(body(inputs_embeds=embeds, use_cache=False))).float()
            except (TypeError, AttributeError, RuntimeError):
                mine = None
        if mine is not None and mine.shape == full.shape and torch.allclose(
                mine, full, rtol=1e-4, atol=1e-4 * float(full.abs().max().clamp(min=1))):
            split = (body, head)
    _SPLITS[model] = split
    return split


def _last_hidden(out) -> torch.Tensor:
    hidden = getattr(out, "last_hidden_state", None)
    return out[0] if hidden is None else hidden


def chunk_positions(model: nn.Module, batch: int, positions: int) -> int:
    """Positions per chunk for a step over (batch, positions): all of them while the fp32
    logits fit in the budget, else as many as do (at least one)."""
    vocab = model.get_output_embeddings().weight.shape[0] if model.get_output_embeddings() \
        is not None else model.config.vocab_size
    per_position, budget = batch * vocab * 4, logits_budget(model.device)
    return positions if per_position * positions <= budget else max(1, budget // per_position)


def text_stats(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
               mem: torch.Tensor | None, temperature: float = 1.0,
               compile: bool = False) -> TokenStats:
    """The step's measurements of the text positions, with or without a [mem] prefix, in
    chunks of positions where the full logits would be large and the model allows it.
    `attention_mask` None: no row is padded (the attention's causal fast path, also under
    torch.compile, where transformers cannot look at a mask's values). `compile`: the
    model's forward, or its body where the logits go in chunks, under torch.compile."""
    targets = input_ids[:, 1:]
    tmask = torch.ones_like(targets) if attention_mask is None else attention_mask[:, 1:]
    width = targets.shape[1]
    chunk = chunk_positions(model, input_ids.shape[0], width)
    split = head_split(model) if chunk < width else None
    if split is None:
        logits = text_logits(compiled(model) if compile else model, input_ids, attention_mask,
                             mem)
        return token_stats(logits, targets, tmask, temperature)
    body, head = split
    embeds, mask, k = prefixed_inputs(model, input_ids, attention_mask, mem)
    hidden = _last_hidden((compiled(body) if compile else body)(
        inputs_embeds=embeds, attention_mask=mask, use_cache=False))
    hidden = hidden[:, k : k + width]
    maskf = tmask.float()

    def measure(h, t, m):
        return _piece(head(h), t, m, temperature)

    pieces = []
    for start in range(0, width, chunk):
        end = min(start + chunk, width)
        piece = checkpoint(measure, hidden[:, start:end], targets[:, start:end],
                           maskf[:, start:end], use_reentrant=False)
        pieces.append((start, end - start, piece))
    return _combine(pieces, maskf)
