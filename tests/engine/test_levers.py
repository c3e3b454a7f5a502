"""The engine's levers beyond the paper: CE temperature, the embedding subspace, activation
checkpointing, and the batch size chosen from free memory."""

import pytest
import torch

from cram_harness.engine import batching
from cram_harness.engine.adapter import (
    activation_checkpointing,
    embedding_subspace,
    init_memory,
)
from cram_harness.engine.loop import CramConfig, cram_batch
from cram_harness.engine.measure import text_logits, token_stats
from cram_harness.engine.schedule import cram_token_ids
from tests.tiny import make_tiny_model

TOKENS = [5, 9, 12, 7, 30, 8]


def plain_ce(model, tokens, memory):
    ids = torch.tensor([tokens])
    with torch.no_grad():
        logits = text_logits(model, ids, torch.ones_like(ids), memory[None])
    return token_stats(logits, ids[:, 1:], torch.ones_like(ids[:, 1:])).loss.item()


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_temperature_changes_the_path_but_the_recorded_loss_is_plain_ce(temperature):
    model = make_tiny_model("llama")
    config = CramConfig(lr=0.05, max_steps=8, patience=100)
    (plain,) = cram_batch(model, [TOKENS], config)
    (tempered,) = cram_batch(model, [TOKENS], CramConfig(lr=0.05, max_steps=8, patience=100,
                                                         temperature=temperature))
    assert not torch.equal(plain.memory, tempered.memory)
    assert tempered.loss == pytest.approx(plain_ce(model, TOKENS, tempered.memory), rel=1e-4)


def test_subspace_is_the_embeddings_principal_directions():
    model = make_tiny_model("gemma3")  # scales its embeddings: the subspace must too
    center, basis = embedding_subspace(model, 8)
    assert basis.shape == (64, 8)
    assert torch.allclose(basis.T @ basis, torch.eye(8), atol=1e-4)
    seen = model.get_input_embeddings()(torch.arange(128)).float()
    assert torch.allclose(center, seen.mean(0), atol=1e-4)
    centered = seen - center
    kept = (centered @ basis).pow(2).sum()  # variance along the basis
    rand = torch.linalg.qr(torch.randn(64, 8, generator=torch.Generator().manual_seed(0)))[0]
    assert kept > (centered @ rand).pow(2).sum()  # more than along random directions
    with pytest.raises(ValueError, match="1..64"):
        embedding_subspace(model, 65)


def test_subspace_vectors_stay_in_the_subspace():
    model = make_tiny_model("gpt2")
    (out,) = cram_batch(model, [TOKENS], CramConfig(lr=0.1, max_steps=20, subspace=16))
    center, basis = embedding_subspace(model, 16)
    coords = (out.memory - center) @ basis
    assert torch.allclose(center + coords @ basis.T, out.memory, atol=1e-4)


def test_a_full_rank_subspace_crams_and_warm_starts_exactly():
    model = make_tiny_model("gpt2")
    tokens = [5, 9, 12, 7]
    (out,) = cram_batch(model, [tokens], CramConfig(lr=0.1, max_steps=150, subspace=64))
    assert out.converged and out.accuracy == 1.0
    (again,) = cram_batch(model, [tokens], CramConfig(lr=0.1, subspace=64),
                          init=out.memory[None])
    assert again.converged and again.steps == 1


def checkpointing(model):
    return any(getattr(m, "gradient_checkpointing", False) for m in model.modules())


def test_checkpointing_gives_the_same_gradients_and_restores_the_model():
    model = make_tiny_model("llama", hidden_dropout=0.5, attention_dropout=0.5)
    ids = torch.tensor([TOKENS])
    mem = init_memory(model, 1, [3])

    def grad():
        params = mem.clone().requires_grad_(True)
        stats = token_stats(text_logits(model, ids, torch.ones_like(ids), params), ids[:, 1:],
                            torch.ones_like(ids[:, 1:]))
        return torch.autograd.grad(stats.loss.sum(), params)[0]

    reference = grad()
    with activation_checkpointing(model):
        assert checkpointing(model)
        checkpointed = grad()
    assert torch.allclose(checkpointed, reference, atol=1e-5)  # dropout stayed off
    assert not checkpointing(model) and not any(m.training for m in model.modules())


def test_checkpointing_does_not_change_the_results():
    model = make_tiny_model("gpt_neox")
    base = dict(lr=0.05, max_steps=25, patience=100)
    (plain,) = cram_batch(model, [TOKENS], CramConfig(**base))
    (ckpt,) = cram_batch(model, [TOKENS], CramConfig(**base, checkpointing=True))
    assert ckpt.best_step == plain.best_step and ckpt.accuracy == plain.accuracy
    assert torch.allclose(ckpt.memory, plain.memory, atol=1e-4)


def test_step_memory_estimate_grows_with_length_and_shrinks_with_checkpointing():
    model = make_tiny_model("llama")
    short, long = (batching.step_bytes_per_sample(model, n) for n in (16, 256))
    assert 0 < short < long
    assert batching.step_bytes_per_sample(model, 256, checkpointing=True) < long
    assert batching.step_bytes_per_sample(model, 256, bf16=True) < long


def test_step_memory_estimate_counts_a_state_space_scan():
    """Mamba's selective scan keeps values per state dimension, Mamba2's per chunk position
    (benchmarks/bench_step_memory.py measures both); configs without heads work too."""
    from tests.tiny import make_family_model

    for family, field in (("mamba", "state_size"), ("mamba2", "chunk_size")):
        model = make_family_model(family)
        small = batching.step_bytes_per_sample(model, 64)
        setattr(model.config, field, getattr(model.config, field) * 4)
        assert batching.step_bytes_per_sample(model, 64) > small


def test_auto_batch_size_follows_free_memory(monkeypatch):
    model = make_tiny_model("llama")
    per_sample = batching.step_bytes_per_sample(model, 32)
    monkeypatch.setattr(batching, "free_memory_bytes", lambda device: per_sample * 5)
    assert batching.auto_batch_size(model, 32, n_texts=100) == 3  # 70% of 5 samples' worth
    assert batching.auto_batch_size(model, 32, n_texts=2) == 2
    monkeypatch.setattr(batching, "free_memory_bytes", lambda device: 10)
    assert batching.auto_batch_size(model, 32, n_texts=100) == 1  # never zero
    monkeypatch.setattr(batching, "free_memory_bytes", lambda device: 10**15)
    assert batching.auto_batch_size(model, 32, n_texts=100) == batching.CPU_MAX_BATCH


def test_cram_without_a_batch_size_sizes_its_batches(monkeypatch):
    model = make_tiny_model("gpt2")
    per_sample = batching.step_bytes_per_sample(model, len(TOKENS) + 1)
    monkeypatch.setattr(batching, "free_memory_bytes", lambda device: per_sample * 3)
    sizes = []
    texts = [TOKENS, TOKENS[:4], TOKENS[:5], TOKENS[1:], TOKENS[2:]]
    results = cram_token_ids(model, texts, CramConfig(lr=0.1, max_steps=3),
                             on_step=lambda info: sizes.append(info.slots))
    assert len(results) == 5 and set(sizes) == {2}  # two texts at a time


def test_compiled_steps_follow_the_eager_ones_and_a_shrinking_batch_runs():
    model = make_tiny_model("llama")
    texts = [[5, 10, 11, 12], TOKENS]  # the first converges early and leaves the batch
    base = dict(lr=0.1, max_steps=40, patience=40)
    eager_losses: list[list[float]] = []
    compiled_losses: list[list[float]] = []
    eager = cram_batch(model, texts, CramConfig(**base),
                       on_step=lambda info: eager_losses.append(info.losses.tolist()))
    fast = cram_batch(model, texts, CramConfig(**base, compile=True),
                      on_step=lambda info: compiled_losses.append(info.losses.tolist()))
    for ours, theirs in zip(compiled_losses[:3], eager_losses[:3]):
        assert ours == pytest.approx(theirs, rel=1e-4)
    assert [o.steps for o in fast][0] < 40  # the batch shrank and the compiled step went on
    assert fast[0].converged == eager[0].converged


def test_no_mask_reaches_the_model_where_no_text_is_padded():
    """Without padding the model gets no mask, so its attention takes the causal fast path
    (under torch.compile too, where transformers cannot look at a mask's values)."""
    model = make_tiny_model("llama")
    masks = []
    forward = model.forward

    def recording(*args, **kwargs):
        masks.append(kwargs.get("attention_mask"))
        return forward(*args, **kwargs)

    model.forward = recording
    cram_batch(model, [TOKENS, TOKENS[::-1]], CramConfig(lr=0.1, max_steps=2))
    assert masks and all(mask is None for mask in masks)
    masks.clear()
    cram_batch(model, [TOKENS, TOKENS[:3]], CramConfig(lr=0.1, max_steps=2))
    assert masks and all(mask is not None for mask in masks)


def test_compile_reaches_the_body_where_the_logits_go_in_chunks(monkeypatch):
    from cram_harness.engine import measure

    model = make_tiny_model("llama")
    compiled = []

    def fake_compile(module):
        compiled.append(module)
        return module

    monkeypatch.setattr(torch, "compile", fake_compile)
    monkeypatch.setattr(measure, "LOGITS_BUDGET", 2 * 128 * 4 * 2)  # 2 positions a chunk
    (out,) = cram_batch(model, [TOKENS], CramConfig(lr=0.1, max_steps=2, compile=True))
    body, _ = measure.head_split(model)
    assert compiled == [body] and out.steps == 2
