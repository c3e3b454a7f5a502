"""Capacity from one run: the information gain at a probe length predicts each text's
longest decodable prefix from its own CE without [mem]."""

import pytest
import torch

from cram_harness.engine.estimate import cumulative_cross_entropy, predicted_length
from cram_harness.harness.evaluator import RunSettings, evaluate
from tests.tiny import make_tiny_model


def test_predicted_length_counts_the_prefix_that_fits():
    cumulative = [1.0, 2.0, 5.0, 9.0]  # CE totals after 1, 2, 3, 4 predicted tokens
    assert predicted_length(cumulative, 4.9) == 3  # the seed (or BOS) + 2 predicted
    assert predicted_length(cumulative, 0.5) == 1
    assert predicted_length(cumulative, 100.0) == 5


def test_cumulative_cross_entropy_is_the_running_sum():
    model = make_tiny_model("gpt2")
    texts = [[5, 9, 12, 7, 30], [8, 6, 4]]
    (long, short) = cumulative_cross_entropy(model, texts)
    ids = torch.tensor([texts[0]])
    logits = model(ids).logits[0, :-1]
    ce = torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="none")
    assert long == pytest.approx(ce.cumsum(0).tolist(), rel=1e-5)
    assert len(short) == 2


def test_estimate_task_predicts_against_the_measured_grid(tiny_model_dir, word_corpus,
                                                         tmp_path):
    settings = RunSettings(limit=2, lengths=(2, 3, 4, 12), max_steps=60, lr=0.3,
                           data_files=word_corpus, output_path=str(tmp_path), device="cpu",
                           past_capacity=0)
    (res,) = evaluate(tiny_model_dir, ["capacity_estimate_pg19", "capacity_pg19"], settings)
    est = res["analyses"]["capacity_estimate_pg19"]
    assert est["probe_length"] == 12 and est["information_gain"] > 0
    assert len(est["texts"]) == 2
    for text in est["texts"]:
        assert 1 <= text["predicted"] and text["measured"] in (None, 2, 3, 4, 12)
    metrics = res["results"]["capacity_estimate_pg19"]
    assert metrics["predicted_capacity,none"] == min(t["predicted"] for t in est["texts"])
    assert "information_gain_stderr,none" in metrics
    if any(t["measured"] for t in est["texts"]):
        assert "prediction_error_tokens,none" in metrics
