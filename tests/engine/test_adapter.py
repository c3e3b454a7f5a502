import math

import pytest
import torch

from cram_harness.engine.adapter import (
    MemPrefix,
    init_memory,
    init_std,
    pad_right,
)
from cram_harness.engine.decode import greedy_decode
from cram_harness.engine.measure import text_logits, token_stats
from tests.tiny import ARCHS, make_tiny_model


def test_token_stats_on_hand_made_logits():
    logits = torch.tensor([[[2.0, 1.0, 0.0], [0.0, 3.0, 2.5], [1.0, 1.0, 5.0]]])
    targets = torch.tensor([[0, 2, 2]])
    mask = torch.tensor([[1, 1, 0]])  # the last position is padding
    stats = token_stats(logits, targets, mask)
    ce = torch.nn.functional.cross_entropy(logits[0, :2], targets[0, :2])
    assert stats.loss.item() == pytest.approx(ce.item(), rel=1e-6)
    assert stats.accuracy.item() == pytest.approx(0.5)
    assert stats.min_margin.item() == pytest.approx(-0.5)  # 2.5 - 3.0 at position 1


def test_temperature_scales_the_loss_only():
    logits = torch.randn(2, 5, 11)
    targets = torch.randint(11, (2, 5))
    mask = torch.ones(2, 5, dtype=torch.long)
    cold, warm = token_stats(logits, targets, mask, 0.5), token_stats(logits, targets, mask)
    assert not torch.allclose(cold.loss, warm.loss)
    assert torch.equal(cold.accuracy, warm.accuracy)


@pytest.mark.versions  # attention masks and generate's cache change between releases
@pytest.mark.parametrize("arch", ARCHS)
def test_padding_never_changes_a_samples_logits(arch):
    model = make_tiny_model(arch)
    texts = [[5, 9, 12, 7, 30, 8], [5, 44, 6], [17, 18, 19, 20]]
    mem = init_memory(model, 2, seeds=[1, 2, 3])
    ids, mask = pad_right(texts, 0, "cpu")
    batched = text_logits(model, ids, mask, mem)
    for i, tokens in enumerate(texts):
        one = torch.tensor([tokens])
        alone = text_logits(model, one, torch.ones_like(one), mem[i : i + 1])
        assert torch.allclose(batched[i, : len(tokens) - 1], alone[0], atol=1e-4)


def test_init_std_follows_the_embedding_as_the_model_sees_it():
    llama = make_tiny_model("llama")
    assert init_std(llama) == pytest.approx(llama.get_input_embeddings().weight.std().item())
    gemma = make_tiny_model("gemma3")
    raw = gemma.get_input_embeddings().weight.std().item()
    assert init_std(gemma) == pytest.approx(raw * math.sqrt(64), rel=1e-4)
    mem = init_memory(gemma, 4, seeds=[0])
    assert mem.std().item() == pytest.approx(init_std(gemma), rel=0.5)


def test_init_is_per_sample_seeded():
    model = make_tiny_model("llama")
    a = init_memory(model, 1, seeds=[7, 8])
    b = init_memory(model, 1, seeds=[8])
    assert torch.equal(a[1], b[0])
    assert not torch.equal(a[0], a[1])


@pytest.mark.parametrize("arch", ARCHS)
def test_greedy_decode_agrees_with_teacher_forced_argmax(arch):
    model = make_tiny_model(arch)
    mem = init_memory(model, 1, seeds=[3, 4])
    seed = torch.tensor([[5], [6]])
    decoded = greedy_decode(model, mem, seed, 6)
    assert decoded.shape == (2, 6)
    full = torch.cat([seed, decoded], dim=1)
    logits = text_logits(model, full, torch.ones_like(full), mem)
    assert torch.equal(logits.argmax(-1), decoded)


@pytest.mark.versions  # attention masks and generate's cache change between releases
@pytest.mark.parametrize("arch", ARCHS)
def test_greedy_decode_is_what_generate_gives(arch):
    """Our KV-cached argmax loop against transformers' own generate from the same embeddings
    (no logits processors on these models): the same tokens."""
    model = make_tiny_model(arch)
    mem = init_memory(model, 2, seeds=[3, 4])
    seed = torch.tensor([[5], [6]])
    ours = greedy_decode(model, mem, seed, 8)
    embeds = torch.cat([mem, model.get_input_embeddings()(seed)], dim=1)
    theirs = model.generate(inputs_embeds=embeds, attention_mask=torch.ones(embeds.shape[:2],
                            dtype=torch.long), do_sample=False, max_new_tokens=8,
                            min_new_tokens=8, pad_token_id=0, eos_token_id=None)
    assert torch.equal(ours, theirs[:, -8:])


def test_mem_prefix_forward_gives_the_papers_loss():
    model = make_tiny_model("llama")
    prefix = MemPrefix.random(model, n_mem=3, seeds=[0, 1])
    assert prefix.memory.shape == (2, 3, 64) and prefix.memory.requires_grad
    ids = torch.tensor([[4, 5, 6, 7], [8, 9, 10, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    logits, stats = prefix(ids, mask)
    assert logits.shape == (2, 3, 128)
    stats.loss.sum().backward()
    assert prefix.memory.grad is not None and prefix.memory.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in model.parameters())


def test_mem_prefix_rejects_vectors_of_the_wrong_size():
    model = make_tiny_model("llama")
    with pytest.raises(ValueError, match="size 16"):
        MemPrefix(model, torch.zeros(1, 1, 16))
