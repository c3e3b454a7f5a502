"""Numerical faults, out-of-memory and a second run on the same directory."""

import math

import pytest
import torch

import cram_harness
from cram_harness.engine import loop as cramming
from cram_harness.errors import CramError
from cram_harness.harness.evaluator import RunSettings, evaluate
from cram_harness.results.files import model_dir, run_lock
from tests.tiny import make_tiny_model, make_word_tokenizer

TEXTS = ["she was at the door", "the little man said to her"]


def poison(model, token_id, only_under_autocast=True):
    """Make every sample holding `token_id` produce NaN embeddings (a bf16 overflow stand-in)."""

    def hook(module, inputs, output):
        if only_under_autocast and not torch.is_autocast_enabled("cpu"):
            return output
        rows = (inputs[0] == token_id).any(1)
        output = output.clone()
        output[rows] = float("nan")
        return output

    return model.get_input_embeddings().register_forward_hook(hook)


def test_nan_in_bf16_is_retried_in_fp32_and_recorded():
    model, tok = make_tiny_model("gpt2"), make_word_tokenizer()
    little = tok.convert_tokens_to_ids("little")
    handle = poison(model, little)
    try:
        clean, retried = cram_harness.cram(model, TEXTS, tokenizer=tok, lr=0.3, max_steps=20,
                                           dtype="bf16")
    finally:
        handle.remove()
    assert not clean.retried_fp32 and not clean.numerical_fault
    assert retried.retried_fp32 and not retried.numerical_fault
    assert retried.config["dtype"] == "bf16"  # what was asked; the retry is flagged
    assert math.isfinite(retried.best_loss) and retried.steps > 1


def test_nan_in_fp32_is_flagged_never_a_result():
    model, tok = make_tiny_model("gpt2"), make_word_tokenizer()
    handle = poison(model, tok.convert_tokens_to_ids("little"), only_under_autocast=False)
    try:
        clean, broken = cram_harness.cram(model, TEXTS, tokenizer=tok, lr=0.3, max_steps=20)
    finally:
        handle.remove()
    assert broken.numerical_fault and broken.steps == 1 and not broken.converged
    assert not clean.numerical_fault


def test_out_of_memory_splits_the_batch(monkeypatch):
    model, tok = make_tiny_model("gpt2"), make_word_tokenizer()
    real = cramming.text_stats
    sizes = []

    def small_memory(model, ids, mask, mem, temperature, compile=False):
        sizes.append(ids.shape[0])
        if ids.shape[0] > 1:
            raise torch.OutOfMemoryError("simulated")
        return real(model, ids, mask, mem, temperature, compile=compile)

    monkeypatch.setattr(cramming, "text_stats", small_memory)
    seen = []
    texts = TEXTS + ["it was in his"]
    results = cram_harness.cram(model, texts, tokenizer=tok, lr=0.3, max_steps=5,
                                batch_size=4, on_result=lambda i, r: seen.append(i))
    assert sorted(seen) == [0, 1, 2] and len(results) == 3
    # 3 ran out of memory: one text goes on, two wait with their states, one at a time after
    assert sizes[0] == 3 and set(sizes[1:]) == {1}
    monkeypatch.setattr(cramming, "text_stats", real)
    alone = cram_harness.cram(model, texts, tokenizer=tok, lr=0.3, max_steps=5, batch_size=1)
    for ours, theirs in zip(results, alone):  # no step lost or taken twice
        assert (ours.steps, ours.best_step) == (theirs.steps, theirs.best_step)
        assert torch.equal(ours.memory, theirs.memory)


def test_a_second_run_on_the_same_directory_is_refused(tiny_model_dir, word_corpus, tmp_path):
    settings = RunSettings(limit=1, lengths=(4,), max_steps=2, data_files=word_corpus,
                           output_path=str(tmp_path), device="cpu")
    with run_lock(model_dir(tmp_path, tiny_model_dir)):
        with pytest.raises(CramError, match="in use by another cram-eval run"):
            evaluate(tiny_model_dir, ["capacity_pg19"], settings)
    (res,) = evaluate(tiny_model_dir, ["capacity_pg19"], settings)  # free again
    assert res["n-samples"]["capacity_pg19"]["effective"] == 1
