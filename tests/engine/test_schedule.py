"""engine/schedule.py and engine/measure.py: the step measured in chunks of positions equals
the full measurement, texts below 100% are not decoded (their first teacher-forced miss is where
greedy decoding fails), and texts at 100% are decoded together, as each would be alone."""

import pytest
import torch

from cram_harness.engine import measure, schedule
from cram_harness.engine.adapter import init_memory, pad_right
from cram_harness.engine.decode import greedy_decode
from cram_harness.engine.loop import CramConfig
from tests.tiny import make_tiny_model

ARCHS = ["llama", "gpt_neox", "gpt2", "gemma3"]
TEXTS = [[5, 9, 12, 7, 30, 8, 21, 40, 11, 3], [5, 44, 6], [17, 18, 19, 20, 21, 22]]


def test_first_miss_on_hand_made_logits():
    logits = torch.tensor([[[2.0, 1.0, 0.0], [0.0, 3.0, 2.5], [1.0, 1.0, 5.0]],
                           [[2.0, 1.0, 0.0], [0.0, 3.0, 2.5], [1.0, 1.0, 5.0]]])
    targets = torch.tensor([[0, 2, 2], [0, 1, 0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    stats = measure.token_stats(logits, targets, mask)
    assert stats.first_miss.tolist() == [1, 2]  # the second misses nothing it is scored on


@pytest.mark.parametrize("arch", ARCHS)
def test_chunked_measurement_equals_the_full_one(arch, monkeypatch):
    model = make_tiny_model(arch)
    ids, mask = pad_right(TEXTS, 0, "cpu")
    mem = init_memory(model, 2, [1, 2, 3]).requires_grad_(True)
    full = measure.text_stats(model, ids, mask, mem)
    (full_grad,) = torch.autograd.grad(full.loss.sum(), mem)
    # a budget of 3 positions' logits: the 9 predicted positions go in chunks of 3
    assert measure.chunk_positions(model, len(TEXTS), 9) == 9
    monkeypatch.setattr(measure, "LOGITS_BUDGET", len(TEXTS) * 128 * 4 * 3)
    assert measure.head_split(model) is not None
    assert measure.chunk_positions(model, len(TEXTS), 9) == 3  # else nothing below is chunked
    chunked = measure.text_stats(model, ids, mask, mem)
    (chunked_grad,) = torch.autograd.grad(chunked.loss.sum(), mem)
    for name in ("loss", "nats", "accuracy", "min_margin"):
        assert torch.allclose(getattr(chunked, name), getattr(full, name), rtol=1e-5,
                              atol=1e-6), name
    assert torch.equal(chunked.first_miss, full.first_miss)
    assert (chunked_grad - full_grad).abs().max() <= 1e-5 * full_grad.abs().max()


def test_a_model_that_changes_its_logits_after_the_head_is_measured_the_full_way():
    capped = make_tiny_model("llama")
    forward = capped.forward

    def softcapped(*args, **kwargs):
        out = forward(*args, **kwargs)
        out.logits = 3.0 * torch.tanh(out.logits / 3.0)
        return out

    capped.forward = softcapped
    assert measure.head_split(capped) is None


@pytest.mark.parametrize("arch", ARCHS)
def test_decoding_a_group_equals_decoding_each_text_alone(arch):
    model = make_tiny_model(arch)
    texts = [[5, *range(10, 10 + n)] for n in (3, 7, 12, 1)]
    memories = list(init_memory(model, 2, [11, 12, 13, 14]))
    together = schedule.decode_group(model, memories, texts, "fp32")
    for tokens, mem, got in zip(texts, memories, together):
        alone = greedy_decode(model, mem[None], torch.tensor([tokens[:1]]), len(tokens) - 1)
        assert got == alone[0].tolist()


def _count_decodes(monkeypatch) -> list[int]:
    sizes = []
    real = schedule.decode_group

    def counting(model, memories, token_lists, dtype):
        sizes.append(len(token_lists))
        return real(model, memories, token_lists, dtype)

    monkeypatch.setattr(schedule, "decode_group", counting)
    return sizes


def test_only_texts_at_full_accuracy_are_decoded_and_the_rest_fail_where_teacher_forcing_did(
        monkeypatch):
    model = make_tiny_model("llama")
    sizes = _count_decodes(monkeypatch)
    texts = [[5, *range(10 + 3 * i, 13 + 3 * i)] for i in range(6)] + [list(range(20, 50))]
    results = schedule.cram_token_ids(model, texts, CramConfig(lr=0.1, max_steps=150, patience=60),
                                 batch_size=len(texts))
    perfect = [r for r in results if r.best_accuracy == 1.0]
    short = [r for r in results if r.best_accuracy < 1.0]
    assert perfect and short
    assert sum(sizes) == len(perfect)  # nothing else was decoded ...
    assert len(sizes) < len(perfect)  # ... and not one by one
    for r in results:  # against a real decode of every text, one at a time
        decoded = greedy_decode(model, r.memory[None], torch.tensor([r.token_ids[:1]]),
                                r.num_predicted)[0].tolist()
        miss = next((j for j, t in enumerate(decoded) if t != r.token_ids[j + 1]), None)
        assert r.first_mismatch == miss
        assert r.greedy_exact == (miss is None)
        assert r.greedy_accuracy == pytest.approx((r.num_predicted if miss is None else miss)
                                                  / r.num_predicted)


def test_results_reach_the_caller_as_soon_as_they_are_decoded(monkeypatch):
    model = make_tiny_model("llama")
    monkeypatch.setattr(schedule, "DECODE_WAIT_S", 0.0)  # no waiting: decoded as each finishes
    monkeypatch.setattr(schedule, "DECODE_COST_RATIO", 0.0)
    seen = []
    texts = [[5, *range(10 + 3 * i, 13 + 3 * i)] for i in (0, 1, 3, 4)]
    results = schedule.cram_token_ids(model, texts, CramConfig(lr=0.1, max_steps=150),
                                 on_result=lambda i, r: seen.append(i), batch_size=4)
    assert sorted(seen) == [0, 1, 2, 3]
    steps = [results[i].steps for i in seen]
    assert steps == sorted(steps)  # in the order they left the batch
