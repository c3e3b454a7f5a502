"""`cram` under the paper's protocol against an independent one-text-at-a-time loop
(tests/parity/reference.py): same texts, same init vectors, fp32. Step counts, best accuracy,
best step and the best vectors are identical, and the lowest loss of each run agrees to float
precision (the two sum a text's CE in different orders)."""

import pytest
import torch

import cram_harness
from cram_harness.engine.adapter import init_memory
from cram_harness.engine.loop import sample_seed
from tests.conftest import make_tiny_model, make_word_tokenizer, word_text
from tests.parity.reference import reference_cram

# lr per architecture: the tiny models' embeddings differ in scale (Gemma multiplies its
# embeddings by sqrt(d)), and a text must converge in tens of steps for a fast test.
CASES = [("llama", 0.1), ("gpt_neox", 0.3), ("gemma", 2.0)]
MAX_STEPS, PATIENCE = 300, 60


def assert_same_run(ours, ref) -> None:
    assert ours.steps == ref.steps
    assert ours.best_step == ref.best_step
    assert ours.best_accuracy == ref.best_accuracy
    assert ours.min_loss == pytest.approx(ref.min_loss, rel=1e-6)
    assert torch.equal(ours.memory, ref.best_memory)


@pytest.mark.parametrize("arch,lr", CASES)
def test_a_batch_follows_the_reference_loop_text_by_text(arch, lr):
    model, tokenizer = make_tiny_model(arch), make_word_tokenizer()
    # Six texts of one length, as at one length of the paper's grid; they converge or run
    # out of patience at different steps, so the batch shrinks as it goes.
    texts = [word_text(5, seed=s) for s in range(6)]
    results = cram_harness.cram(model, texts, tokenizer=tokenizer, lr=lr, max_steps=MAX_STEPS,
                                patience=PATIENCE, batch_size=6)
    tokens = [r.token_ids for r in results]
    assert {len(t) for t in tokens} == {5}
    init = init_memory(model, 1, [sample_seed(0, t, 1) for t in tokens])
    for result, text_tokens, start in zip(results, tokens, init):
        assert_same_run(result, reference_cram(model, text_tokens, start, lr=lr,
                                               max_steps=MAX_STEPS, patience=PATIENCE))
    steps = [r.steps for r in results]
    assert len(set(steps)) > 1  # samples left the batch at different steps
    assert any(r.converged for r in results) and not all(r.converged for r in results)


def test_defaults_are_the_papers_protocol():
    from cram_harness.engine.loop import CramConfig

    config = CramConfig()
    assert (config.lr, config.betas, config.weight_decay, config.max_steps, config.patience) \
        == (1e-2, (0.9, 0.9), 0.01, 5000, 2000)
    assert (config.min_margin, config.temperature, config.dtype, config.subspace) \
        == (0.0, 1.0, "fp32", 0)


@pytest.mark.slow
def test_smollm2_follows_the_reference_loop(smollm2):
    from tests.conftest import gutenberg_text

    model, tokenizer = smollm2
    # The paper's settings on a short passage of a novel; capped so that the two loops
    # take about a minute together.
    (result,) = cram_harness.cram(model, gutenberg_text(), max_tokens=8, tokenizer=tokenizer,
                                  max_steps=120)
    (start,) = init_memory(model, 1, [sample_seed(0, result.token_ids, 1)])
    ref = reference_cram(model, result.token_ids, start, lr=1e-2, max_steps=120)
    assert_same_run(result, ref)
