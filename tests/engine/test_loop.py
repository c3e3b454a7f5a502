import pytest
import torch

from cram_harness.engine.adapter import init_memory
from cram_harness.engine.loop import CramConfig, cram_batch, sample_seed
from cram_harness.engine.measure import text_logits, token_stats
from tests.tiny import make_tiny_model

TEXTS = [[5, 9, 12, 7, 30, 8, 21, 40, 11, 3], [5, 44, 6], [17, 18, 19, 20, 21, 22]]


def test_adamw_matches_torch_adamw():
    model = make_tiny_model("llama")
    tokens = TEXTS[0]
    config = CramConfig(lr=0.05, max_steps=6, patience=100)
    init = init_memory(model, 1, [sample_seed(0, tokens, 1)])
    seen = []
    cram_batch(model, [tokens], config, on_step=lambda info: seen.append(info.mean_loss))

    param = torch.nn.Parameter(init.clone())
    opt = torch.optim.AdamW([param], lr=0.05, betas=(0.9, 0.9), weight_decay=0.01, eps=1e-8)
    ids = torch.tensor([tokens])
    reference = []
    for _ in range(6):
        stats = token_stats(text_logits(model, ids, torch.ones_like(ids), param), ids[:, 1:],
                            torch.ones_like(ids[:, 1:]))
        reference.append(stats.loss.item())
        opt.zero_grad()
        stats.loss.sum().backward()
        opt.step()
    assert seen == pytest.approx(reference, rel=1e-5)


def test_batch_of_different_lengths_equals_one_at_a_time():
    model = make_tiny_model("gpt_neox")
    config = CramConfig(lr=0.05, max_steps=40, patience=15)
    batched = cram_batch(model, TEXTS, config)
    for tokens, together in zip(TEXTS, batched):
        (alone,) = cram_batch(model, [tokens], config)
        assert together.steps == alone.steps
        assert together.best_step == alone.best_step
        assert together.accuracy == alone.accuracy
        assert together.loss == pytest.approx(alone.loss, rel=1e-4)
        assert torch.allclose(together.memory, alone.memory, atol=1e-3)


def test_converged_sample_leaves_the_batch_and_stops_changing():
    model = make_tiny_model("gpt2")
    easy, hard = [5, 9, 12], list(range(4, 60))
    config = CramConfig(lr=0.1, max_steps=120, patience=1000)
    active = []
    out_easy, out_hard = cram_batch(model, [easy, hard], config,
                                    on_step=lambda info: active.append(info.active))
    assert out_easy.converged and out_easy.accuracy == 1.0
    assert out_easy.steps == out_easy.best_step < out_hard.steps
    assert active[out_easy.steps - 1] == 1  # the batch shrank when it converged
    (alone,) = cram_batch(model, [easy], config)
    assert torch.allclose(out_easy.memory, alone.memory, atol=1e-3)


def test_patience_stops_a_sample_that_no_longer_improves():
    model = make_tiny_model("gpt2")
    config = CramConfig(lr=0.05, max_steps=500, patience=10)
    stuck, improving = list(range(4, 80)), TEXTS[0] * 3
    out_stuck, out_improving = cram_batch(model, [stuck, improving], config)
    # The paper's count starts from 0: a text at 0% never improves, and stops at `patience`,
    # its first state kept as the best one there is.
    assert out_stuck.accuracy == 0.0 and out_stuck.best_step == 1 and out_stuck.steps == 10
    assert out_improving.accuracy > 0 and not out_improving.converged
    assert out_improving.best_step > 1 and out_improving.steps - out_improving.best_step == 10


def test_min_margin_makes_convergence_stricter():
    model = make_tiny_model("gpt2")
    tokens = [5, 9, 12, 7]
    (plain,) = cram_batch(model, [tokens], CramConfig(lr=0.1, max_steps=300))
    (strict,) = cram_batch(model, [tokens], CramConfig(lr=0.1, max_steps=300, min_margin=2.0))
    assert plain.converged and strict.converged
    assert strict.min_margin >= 2.0 > plain.min_margin
    assert strict.steps > plain.steps


def test_seed_reproduces_and_changes_results():
    model = make_tiny_model("llama")
    config = CramConfig(lr=0.05, max_steps=10)
    a = cram_batch(model, TEXTS[:2], config)
    b = cram_batch(model, TEXTS[:2], config)
    c = cram_batch(model, TEXTS[:2], CramConfig(lr=0.05, max_steps=10, seed=1))
    assert all(torch.equal(x.memory, y.memory) for x, y in zip(a, b))
    assert not torch.equal(a[0].memory, c[0].memory)


def test_warm_start_from_a_converged_state_stops_at_once():
    model = make_tiny_model("gpt2")
    tokens = [5, 9, 12, 7]
    (first,) = cram_batch(model, [tokens], CramConfig(lr=0.1, max_steps=300))
    assert first.converged
    (again,) = cram_batch(model, [tokens], CramConfig(lr=0.1), init=first.memory[None])
    assert again.converged and again.steps == 1
    assert torch.equal(again.memory, first.memory)


def test_bf16_autocast_runs():
    model = make_tiny_model("llama")
    (out,) = cram_batch(model, [[5, 9, 12, 7]], CramConfig(lr=0.1, max_steps=5, dtype="bf16"))
    assert out.memory.dtype == torch.float32 and out.steps == 5


@pytest.mark.parametrize("bad", [dict(n_mem=0), dict(max_steps=0), dict(lr=0), dict(dtype="fp8")])
def test_bad_config_is_refused(bad):
    with pytest.raises(ValueError):
        CramConfig(**bad)


def test_a_one_token_text_is_refused():
    with pytest.raises(ValueError, match="at least 2 tokens"):
        cram_batch(make_tiny_model("llama"), [[5]], CramConfig())


# Continuous batching: a queue of texts, each with its own optimizer state and step count.
SAME_LENGTH = [[5, *range(10 + 3 * i, 14 + 3 * i)] for i in range(6)]  # 5 tokens each


def test_a_queue_through_one_slot_is_each_text_alone_bit_for_bit():
    """Texts that enter late start at their own step 1 (Adam's bias correction included)."""
    model = make_tiny_model("llama")
    config = CramConfig(lr=0.1, max_steps=60, patience=20)
    queued = cram_batch(model, SAME_LENGTH, config, slots=1)
    assert len({o.steps for o in queued}) > 1
    for tokens, ours in zip(SAME_LENGTH, queued):
        (alone,) = cram_batch(model, [tokens], config)
        assert (ours.steps, ours.best_step, ours.accuracy) == \
            (alone.steps, alone.best_step, alone.accuracy)
        assert ours.min_loss == alone.min_loss
        assert torch.equal(ours.memory, alone.memory)


def test_refilled_slots_follow_each_text_alone():
    """A text that takes a freed slot mid-run follows its one-at-a-time path (to the parity
    tests' tolerance: batched kernels may round otherwise)."""
    model = make_tiny_model("gpt_neox")
    config = CramConfig(lr=0.05, max_steps=40, patience=15)
    refilled = cram_batch(model, SAME_LENGTH, config, slots=2)
    for tokens, together in zip(SAME_LENGTH, refilled):
        (alone,) = cram_batch(model, [tokens], config)
        assert (together.steps, together.best_step, together.accuracy) == \
            (alone.steps, alone.best_step, alone.accuracy)
        assert together.loss == pytest.approx(alone.loss, rel=1e-4)
        assert torch.allclose(together.memory, alone.memory, atol=1e-3)


def test_the_batch_stays_full_while_texts_wait():
    model = make_tiny_model("llama")
    texts = SAME_LENGTH + [list(range(20, 50))]  # one that runs to the step cap
    infos = []
    outcomes = cram_batch(model, texts, CramConfig(lr=0.1, max_steps=80, patience=80),
                          slots=3, on_step=infos.append)
    assert all(o is not None for o in outcomes)
    full = [info for info in infos if info.total - info.finished - info.active > 0]
    assert full and all(info.stepped == info.slots == 3 for info in full)
    assert sum(info.stepped for info in infos) == sum(o.steps for o in outcomes)
    # whole batches, one after another, as before: the batch empties before the next one
    chunked = []
    cram_batch(model, texts, CramConfig(lr=0.1, max_steps=80, patience=80), slots=3,
               refill=False, on_step=chunked.append)
    assert any(info.stepped < info.slots and info.finished + info.active < info.total
               for info in chunked)


def test_texts_wait_longest_first_and_the_padding_is_counted():
    model = make_tiny_model("llama")
    texts = [[5, 6, 7], list(range(10, 20)), [5, 8, 9, 10], list(range(30, 39))]
    infos = []
    cram_batch(model, texts, CramConfig(lr=0.1, max_steps=2), slots=2, on_step=infos.append)
    assert (infos[0].width, infos[0].padded) == (10, 1)  # the two longest first
    assert (infos[-1].width, infos[-1].padded) == (4, 1)


def test_the_engine_runs_the_model_in_eval_mode_frozen_and_gives_it_back():
    model = make_tiny_model("gpt2")  # dropout 0.1 in training mode
    tokens = SAME_LENGTH[0]
    config = CramConfig(lr=0.1, max_steps=10)
    (in_eval,) = cram_batch(model, [tokens], config)
    model.train()
    model.requires_grad_(True)
    (handed_in_training,) = cram_batch(model, [tokens], config)
    assert torch.equal(handed_in_training.memory, in_eval.memory)  # no dropout ran
    assert model.training and all(p.requires_grad for p in model.parameters())
    assert all(p.grad is None for p in model.parameters())  # nothing but the vectors learned


def test_fp16_weights_are_refused_in_one_line():
    model = make_tiny_model("llama").half()
    with pytest.raises(ValueError, match="fp16 weights are not supported"):
        cram_batch(model, [SAME_LENGTH[0]], CramConfig(max_steps=2))
