"""How many texts to optimize together: as many as the free memory holds, within reason.

On a GPU the memory of a step is measured: a probe step at two batch sizes gives the peak's
fixed part and its part per sample, and the batch fills MEMORY_SHARE of the free memory with
them. Elsewhere it is estimated from the model's shapes (the activations the backward pass
keeps, and the fp32 logits over the vocabulary with their softmax and gradient). Checked
against measurement on SmolLM2-135M on the CPU: the estimate is 48 MiB per sample at 16
tokens (measured: 51) and 190 MiB at 64 tokens (measured: 140), so it errs on the safe side.
If either is wrong anyway, an out-of-memory batch is split in two (engine/schedule.py).
"""

from __future__ import annotations

import torch

from cram_harness.engine.measure import logits_budget

# On a CPU the step is compute-bound: beyond 8 samples the throughput stops growing
# (benchmarks/RESULTS.md: 2.09x at 8 against 1.89x at 4 on 2 cores), while results come
# back later and memory grows.
CPU_MAX_BATCH = 8
GPU_MAX_BATCH = 1024
MEMORY_SHARE = 0.7  # of the free memory; the rest is for the allocator's slack
MEASURED_SHARE = 0.85  # the same, where the step's memory was measured rather than estimated
SAFETY = 1.5  # over the estimate: kernels' workspaces, fragmentation
PROBE_BATCHES = (2, 4)


def free_memory_bytes(device: torch.device) -> int:
    """Free memory of the device: the GPU's own, or the host's available memory (psutil's
    `available`: what can be had without swapping, on every OS)."""
    if device.type == "cuda":  # what torch's allocator holds but does not use counts as free
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    import psutil

    return int(psutil.virtual_memory().available)


def step_bytes_per_sample(model: torch.nn.Module, n_positions: int, bf16: bool = False,
                          checkpointing: bool = False) -> int:
    """Estimated memory of one sample's forward and backward pass over `n_positions`."""
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") \
        else model.config
    d = cfg.hidden_size
    # A state-space config (Mamba) names its width by an expansion factor, and has no heads
    inner = getattr(cfg, "intermediate_size", None) or (
        d * (getattr(cfg, "expand", None) or getattr(cfg, "mamba_expand", None) or 4))
    heads = getattr(cfg, "num_attention_heads", None) or 0
    layers = cfg.num_hidden_layers
    act = 2 if bf16 else 4
    # Kept per token and layer: norms, q/k/v/attention output, residuals (~8d), the MLP's
    # gate/up/activation/product (~4 x inner), one row of attention weights per head, and a
    # state-space scan's own (without the fused mamba-ssm kernels)
    per_layer = n_positions * (8 * d + 4 * inner + heads * n_positions + _scan(cfg, inner)) * act
    kept = n_positions * d * act * layers + per_layer if checkpointing else per_layer * layers
    logits = n_positions * cfg.vocab_size * 4 * 3  # fp32 logits, log-softmax, their gradient
    if logits > logits_budget(model.device):  # in chunks (engine/measure.py): the hidden states
        logits = n_positions * d * 4 * 2  # the head reads, and their gradient
    return int((kept + logits) * SAFETY)


def _scan(cfg, inner: int) -> int:
    """Values a state-space layer keeps per token for its backward pass (without the fused
    mamba-ssm kernels): Mamba's selective scan its discretized inputs and states (~3 x inner
    x state), Mamba2's chunked scan its decay matrices (~20 x heads x chunk size). With the
    rest and the safety factor the estimate is 1.17x and 1.69x the measured memory a sample
    (benchmarks/RESULTS.md, bench_step_memory)."""
    state = getattr(cfg, "state_size", None) or getattr(cfg, "mamba_d_state", None) or 0
    chunk, ssm_heads = getattr(cfg, "chunk_size", None), getattr(cfg, "num_heads", None)
    if state and chunk and ssm_heads:
        return 20 * ssm_heads * chunk
    return 3 * inner * state


def auto_batch_size(model: torch.nn.Module, n_positions: int, n_texts: int, bf16: bool = False,
                    checkpointing: bool = False) -> int:
    """The batch size for `n_texts` texts of up to `n_positions` positions ([mem] included)."""
    device = model.device
    cap = GPU_MAX_BATCH if device.type == "cuda" else CPU_MAX_BATCH
    if device.type == "cuda" and n_texts > 1:
        fixed, per_sample = measure_step_memory(model, n_positions, "bf16" if bf16 else "fp32",
                                                checkpointing)
        fits = int((free_memory_bytes(device) * MEASURED_SHARE - fixed) // per_sample)
    else:
        per_sample = step_bytes_per_sample(model, n_positions, bf16, checkpointing)
        fits = int(free_memory_bytes(device) * MEMORY_SHARE // per_sample)
    return max(1, min(fits, cap, n_texts))


def _step(model: torch.nn.Module, n_positions: int, batch_size: int, dtype: str,
          checkpointing: bool = False) -> None:
    """One optimizer step's forward and backward pass on random tokens and vectors."""
    from cram_harness.engine.adapter import activation_checkpointing, compute_precision, init_memory
    from cram_harness.engine.measure import text_stats

    vocab = model.get_input_embeddings().weight.shape[0]
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(vocab, (batch_size, n_positions), generator=gen).to(model.device)
    mask = torch.ones_like(ids)
    mem = init_memory(model, 1, list(range(batch_size))).requires_grad_(True)
    with activation_checkpointing(model, checkpointing), compute_precision(model, dtype):
        stats = text_stats(model, ids, mask, mem)
    torch.autograd.grad(stats.loss.sum(), mem)


def measure_step_memory(model: torch.nn.Module, n_positions: int, dtype: str = "fp32",
                        checkpointing: bool = False) -> tuple[float, float]:
    """(fixed bytes, bytes per sample) of a step's peak GPU memory above what is allocated
    now, from probe steps at two batch sizes."""
    device = model.device
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    peaks = []
    for batch in PROBE_BATCHES:
        torch.cuda.reset_peak_memory_stats(device)
        _step(model, n_positions, batch, dtype, checkpointing)
        torch.cuda.synchronize(device)
        peaks.append(torch.cuda.max_memory_allocated(device) - before)
    (b1, b2), (p1, p2) = PROBE_BATCHES, peaks
    per_sample = max((p2 - p1) / (b2 - b1), 1.0)
    return max(p1 - b1 * per_sample, 0.0), per_sample


def time_step(model: torch.nn.Module, n_positions: int, batch_size: int,
              dtype: str = "fp32") -> float:
    """Seconds of one optimizer step's forward and backward pass, measured once on random
    tokens and vectors of this shape: what the evaluator's estimate of a run's time is made
    of. The second of two passes is timed (the first pays for warm-up)."""
    import time

    seconds = 0.0
    for _ in range(2):
        start = time.perf_counter()
        _step(model, n_positions, batch_size, dtype)
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    return seconds
