"""MemPrefix: trainable [mem] vectors in front of a frozen causal LM's token embeddings.

Layout of one forward pass, per sample:  [mem_1 .. mem_k, e(t_1) .. e(t_N)], mask 1 everywhere
but on right padding. The logits at [mem] positions are dropped; the positions of
t_1..t_{N-1} predict t_2..t_N (the paper's loss). Right padding with causal attention does not
change a sample's logits beyond their last bits (the padded keys change the order of a few
sums), so texts of different lengths share one batch; texts of one length, as at a length of
the paper's grid, follow a one-text-at-a-time run bit for bit (tests/parity).
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator

import torch
from torch import nn

from cram_harness.engine.decode import greedy_decode
from cram_harness.engine.measure import TokenStats, text_logits, token_stats


def embedding_scale(model: nn.Module) -> float:
    """Factor the embedding module applies to its weights (Gemma multiplies by sqrt(d))."""
    module = model.get_input_embeddings()
    scale = getattr(module, "embed_scale", 1.0)
    return float(scale.item() if torch.is_tensor(scale) else scale)


def init_std(model: nn.Module) -> float:
    """Std of the token embeddings as the model sees them: the paper's std(embedding matrix),
    times the module's own scale where it has one (inputs_embeds bypass that module)."""
    weight = model.get_input_embeddings().weight
    return float(weight.float().std().item()) * embedding_scale(model)


def init_memory(model: nn.Module, n_mem: int, seeds: list[int]) -> torch.Tensor:
    """randn(k, d) * std per sample, each from its own seed so a sample's start does not
    depend on the batch it is in. Returns fp32 (B, k, d) on the model's device."""
    if n_mem < 1:
        raise ValueError(f"n_mem must be at least 1, got {n_mem}")
    d = model.get_input_embeddings().weight.shape[1]
    std = init_std(model)
    rows = []
    for seed in seeds:
        gen = torch.Generator().manual_seed(seed)
        rows.append(torch.randn(n_mem, d, generator=gen) * std)
    return torch.stack(rows).to(model.device)


_SUBSPACES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def embedding_subspace(model: nn.Module, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(center (d,), basis (d, rank)): the mean token embedding as the model sees it and the
    top-`rank` principal directions of the embeddings around it, fp32 on the model's device.
    A [mem] vector confined to center + span(basis) has `rank` free coordinates."""
    weight = model.get_input_embeddings().weight
    vocab, d = weight.shape
    if not 1 <= rank <= d:
        raise ValueError(f"subspace rank must be in 1..{d} (the model's width), got {rank}")
    cached = _SUBSPACES.setdefault(model, {})
    if rank not in cached:
        scale = embedding_scale(model)
        total = torch.zeros(d, dtype=torch.float64, device=weight.device)
        gram = torch.zeros(d, d, dtype=torch.float64, device=weight.device)
        for rows in weight.detach().split(32768):  # no fp32 copy of a 262k-row matrix
            rows = rows.double() * scale
            total += rows.sum(0)
            gram += rows.T @ rows
        center = total / vocab
        cov = gram / vocab - torch.outer(center, center)
        _, vectors = torch.linalg.eigh(cov)  # ascending eigenvalues
        basis = vectors[:, -rank:].flip(1)
        cached[rank] = (center.float(), basis.float().contiguous())
    return cached[rank]


@contextlib.contextmanager
def activation_checkpointing(model: nn.Module, enabled: bool = True) -> Iterator[None]:
    """Recompute each decoder layer's activations in the backward pass instead of keeping
    them: less memory for long texts, for a second forward pass per layer. transformers only
    checkpoints layers in training mode, so only the layers themselves are switched to it;
    their submodules stay in eval mode, so dropout stays off."""
    if not enabled:
        yield
        return
    if not getattr(model, "supports_gradient_checkpointing", False):
        raise ValueError(f"{type(model).__name__} does not support activation checkpointing")
    enable = getattr(model, "activation_checkpointing_enable", None)
    if enable is not None:  # transformers >= 5.x renamed it
        enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    layers = [m for m in model.modules() if getattr(m, "gradient_checkpointing", False) is True
              and not m.training]
    for layer in layers:
        layer.training = True
    try:
        yield
    finally:
        for layer in layers:
            layer.training = False
        disable = getattr(model, "activation_checkpointing_disable", None) \
            or model.gradient_checkpointing_disable
        disable()


def weights_refused(model: nn.Module) -> str | None:
    """Why the engine will not run on these weights, or None. fp16: its gradients underflow
    without loss scaling, which the engine does not do, and an underflowed gradient is a
    zero that no check sees."""
    if any(p.dtype == torch.float16 for p in model.parameters()):
        return ("fp16 weights are not supported (their gradients underflow unseen without "
                "loss scaling): load the model in fp32 (bf16 autocast on a GPU) or bf16")
    return None


@contextlib.contextmanager
def engine_mode(model: nn.Module) -> Iterator[None]:
    """The model as the engine needs it, whoever hands it over: in eval mode (no dropout: a
    GPT-2 built from its config has 0.1) and frozen (only the [mem] vectors learn); the
    caller's modes and flags are given back afterwards."""
    refused = weights_refused(model)
    if refused:
        raise ValueError(refused)
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    model.requires_grad_(False)
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training
        for param, flag in flags:
            param.requires_grad_(flag)


def compute_precision(model: nn.Module, dtype: str) -> contextlib.AbstractContextManager:
    """The engine's compute precision: "bf16" is bf16 autocast over fp32 weights and [mem]
    vectors (the paper's setting for Llama models), "fp32" plain."""
    return torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=dtype == "bf16")


def pad_right(token_ids: list[list[int]], pad_id: int, device: torch.device | str):
    """(ids, mask): right-padded (B, N) tensors; mask is 1 on real tokens."""
    width = max(len(t) for t in token_ids)
    ids = torch.full((len(token_ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(token_ids), width), dtype=torch.long)
    for row, tokens in enumerate(token_ids):
        ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        mask[row, : len(tokens)] = 1
    return ids.to(device), mask.to(device)


class MemPrefix(nn.Module):
    """A frozen causal LM with k trainable [mem] vectors per sample, (B, k, d) in fp32."""

    def __init__(self, model: nn.Module, memory: torch.Tensor):
        super().__init__()
        if memory.dim() == 2:
            memory = memory.unsqueeze(0)
        d = model.get_input_embeddings().weight.shape[1]
        if memory.shape[-1] != d:
            raise ValueError(f"[mem] vectors have size {memory.shape[-1]}, the model's is {d}")
        self.model = model
        model.requires_grad_(False)
        self.memory = nn.Parameter(memory.detach().float().to(model.device).clone())

    @classmethod
    def random(cls, model: nn.Module, n_mem: int = 1, seeds: list[int] | None = None):
        return cls(model, init_memory(model, n_mem, seeds or [0]))

    @property
    def n_mem(self) -> int:
        return self.memory.shape[1]

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
        temperature: float = 1.0,
    ) -> tuple[torch.Tensor, TokenStats]:
        """(text-position logits, per-sample stats whose `loss` is the paper's loss)."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        logits = text_logits(self.model, input_ids, attention_mask, self.memory)
        stats = token_stats(logits, input_ids[:, 1:], attention_mask[:, 1:], temperature)
        return logits, stats

    def generate(self, seed_ids: torch.Tensor, num_new_tokens: int) -> torch.Tensor:
        """Greedy decoding from the vectors, seeded with the first token (or BOS)."""
        return greedy_decode(self.model, self.memory, seed_ids, num_new_tokens)
