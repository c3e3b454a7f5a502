"""How many texts to optimize together: as many as the free memory holds, within reason.

The memory one sample needs for a step is estimated from the model's shapes (the activations
the backward pass keeps, and the fp32 logits over the vocabulary with their softmax and
gradient). Checked against measurement on SmolLM2-135M on the CPU: the estimate is 48 MiB
per sample at 16 tokens (measured: 51) and 190 MiB at 64 tokens (measured: 140), so it errs
on the safe side. If it is wrong anyway, an out-of-memory batch is split in two (api.py).
"""

from __future__ import annotations

import torch

# On a CPU the step is compute-bound: beyond 8 samples the throughput stops growing
# (benchmarks/RESULTS.md: 2.09x at 8 against 1.89x at 4 on 2 cores), while results come
# back later and memory grows.
CPU_MAX_BATCH = 8
GPU_MAX_BATCH = 1024
MEMORY_SHARE = 0.7  # of the free memory; the rest is for the allocator's slack
SAFETY = 1.5  # over the estimate: kernels' workspaces, fragmentation


def free_memory_bytes(device: torch.device) -> int:
    """Free memory of the device: the GPU's own, or the host's available memory (psutil's
    `available`: what can be had without swapping, on every OS)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    import psutil

    return int(psutil.virtual_memory().available)


def step_bytes_per_sample(model: torch.nn.Module, n_positions: int, bf16: bool = False,
                          checkpointing: bool = False) -> int:
    """Estimated memory of one sample's forward and backward pass over `n_positions`."""
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") \
        else model.config
    d = cfg.hidden_size
    inner = getattr(cfg, "intermediate_size", None) or 4 * d
    heads = getattr(cfg, "num_attention_heads", 1)
    layers = cfg.num_hidden_layers
    act = 2 if bf16 else 4
    # Kept per token and layer: norms, q/k/v/attention output, residuals (~8d), the MLP's
    # gate/up/activation/product (~4 x inner) and one row of attention weights per head.
    per_layer = n_positions * (8 * d + 4 * inner + heads * n_positions) * act
    kept = n_positions * d * act * layers + per_layer if checkpointing else per_layer * layers
    logits = n_positions * cfg.vocab_size * 4 * 3  # fp32 logits, log-softmax, their gradient
    return int((kept + logits) * SAFETY)


def auto_batch_size(model: torch.nn.Module, n_positions: int, n_texts: int, bf16: bool = False,
                    checkpointing: bool = False) -> int:
    """The batch size for `n_texts` texts of up to `n_positions` positions ([mem] included)."""
    device = model.device
    per_sample = step_bytes_per_sample(model, n_positions, bf16, checkpointing)
    fits = int(free_memory_bytes(device) * MEMORY_SHARE // per_sample)
    cap = GPU_MAX_BATCH if device.type == "cuda" else CPU_MAX_BATCH
    return max(1, min(fits, cap, n_texts))


def time_step(model: torch.nn.Module, n_positions: int, batch_size: int,
              dtype: str = "fp32") -> float:
    """Seconds of one optimizer step's forward and backward pass, measured once on random
    tokens and vectors of this shape: what the evaluator's estimate of a run's time is made
    of. The second of two passes is timed (the first pays for warm-up)."""
    import time

    from cram_harness.engine.adapter import compute_precision, init_memory, text_logits, token_stats

    vocab = model.get_input_embeddings().weight.shape[0]
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(vocab, (batch_size, n_positions), generator=gen).to(model.device)
    mask = torch.ones_like(ids)
    mem = init_memory(model, 1, list(range(batch_size))).requires_grad_(True)
    seconds = 0.0
    for _ in range(2):
        start = time.perf_counter()
        with compute_precision(model, dtype):
            logits = text_logits(model, ids, mask, mem)
        stats = token_stats(logits, ids[:, 1:], mask[:, 1:])
        torch.autograd.grad(stats.loss.sum(), mem)
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    return seconds
