"""Figures 7 and 8 as tasks: restarts per text, cosine similarities, interpolation."""

import itertools

import pytest
import torch

from cram_harness.engine.analysis import cosine_similarities, interpolation_curves
from cram_harness.harness.evaluator import RunSettings, evaluate
from tests.tiny import make_tiny_model


def test_cosine_similarities_by_hand():
    a, b, c = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 1.0]])
    intra, inter = cosine_similarities([[a, b], [c]])
    assert intra == pytest.approx([0.0])
    assert sorted(inter) == pytest.approx([2 ** -0.5, 2 ** -0.5])


def test_interpolation_endpoints_are_the_solutions_accuracies():
    model = make_tiny_model("gpt2")
    tokens = [5, 9, 12, 7]
    gen = torch.Generator().manual_seed(0)
    sols = [torch.randn(1, 64, generator=gen) for _ in range(3)]
    (curves) = interpolation_curves(model, [tokens], [sols], [0.0, 0.5, 1.0])
    assert len(curves) == 3  # every pair of three solutions
    from cram_harness.engine.measure import text_logits, token_stats

    ids = torch.tensor([tokens])
    for (a, b), curve in zip(itertools.combinations(sols, 2), curves):
        for mem, acc in ((a, curve[0]), (b, curve[-1])):
            stats = token_stats(text_logits(model, ids, torch.ones_like(ids), mem[None]),
                                ids[:, 1:], torch.ones_like(ids[:, 1:]))
            assert acc == pytest.approx(stats.accuracy.item())


def test_similarity_and_interpolation_tasks_share_restarts(tiny_model_dir, word_corpus,
                                                           tmp_path):
    settings = RunSettings(limit=2, max_steps=40, lr=0.3, data_files=word_corpus,
                           output_path=str(tmp_path), device="cpu", lengths=(5,))
    (res,) = evaluate(tiny_model_dir, ["similarity_pg19", "interpolation_pg19"], settings)
    sim = res["analyses"]["similarity_pg19"]
    assert len(sim["intra_cosine"]) == 2 * 6  # 2 texts, 4 restarts: 6 pairs each
    assert len(sim["inter_cosine"]) == 4 * 4  # 4 x 4 solutions across the two texts
    interp = res["analyses"]["interpolation_pg19"]
    assert len(interp["curves"]) == 12 and len(interp["thetas"]) == 11
    metrics = res["results"]
    assert -1 <= metrics["similarity_pg19"]["intra_cosine,none"] <= 1
    assert "inter_cosine_stderr,none" in metrics["similarity_pg19"]
    assert 0 <= metrics["interpolation_pg19"]["worst_midpoint_accuracy,none"] <= 1
    assert len(res["sweeps"]) == 4  # one per restart, shared by both tasks
    assert len(list(tmp_path.glob("*/vectors/*.safetensors"))) == 8
