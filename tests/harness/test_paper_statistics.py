"""Numbers under the paper's names are the paper's statistics (docs/concepts.md, "The metrics"):
drawn lengths for random texts, gains pooled over the full vectors of every length, information
gain from the lowest CE of each run, capacity tasks that agree within one results file."""

import math

import pytest

from cram_harness import metrics
from cram_harness.harness.evaluator import RunSettings, evaluate
from cram_harness.harness.plan import drawn_length
from tests.helpers import records_of


def run(model_dir, tmp_path, tasks, **overrides):
    base = dict(limit=6, max_steps=40, lr=0.3, device="cpu", output_path=str(tmp_path),
                batch_size=6)
    (res,) = evaluate(model_dir, tasks, RunSettings(**{**base, **overrides}))
    return res


def test_random_texts_draw_their_lengths_as_the_paper_did(tiny_model_dir, tmp_path):
    res = run(tiny_model_dir, tmp_path, ["capacity_random", "info_gain_random"],
              lengths=(2, 4, 24))
    recs = records_of(res)
    assert len(recs) == 6 and {r["sampling"] for r in recs} == {"uniform"}
    for rec in recs:  # each text's own draw from [2, the longest length]
        assert rec["length"] == rec["num_tokens"] == drawn_length(0, rec["sample_id"], 24)
    assert len({r["length"] for r in recs}) > 1
    # capacity: the longest drawn length whose mean accuracy over its texts is >= 0.99
    table = metrics.accuracy_table((r["length"], r["best_accuracy"]) for r in recs)
    expected = max((n for n, accs in table.items() if sum(accs) / len(accs) >= 0.99),
                   default=None)
    assert res["results"]["capacity_random"]["decoding_capacity,none"] == expected
    assert res["sweeps"][0]["sampling"] == "uniform"


def test_a_draw_does_not_depend_on_the_other_texts():
    draws = [drawn_length(0, f"random#{i}", 1280) for i in range(200)]
    assert all(2 <= n <= 1280 for n in draws) and len(set(draws)) > 150
    assert drawn_length(1, "random#0", 1280) != drawn_length(0, "random#0", 1280) \
        or drawn_length(1, "random#1", 1280) != drawn_length(0, "random#1", 1280)


def test_climbing_protocols_use_the_grid_for_random_texts(tiny_model_dir, tmp_path):
    res = run(tiny_model_dir, tmp_path, ["capacity_random"], lengths=(2, 4), limit=2,
              protocol="fast")
    assert res["sweeps"][0]["sampling"] == "grid"
    assert {r["length"] for r in records_of(res)} <= {2, 4}


def test_information_gain_is_made_of_the_lowest_loss(tiny_model_dir, word_corpus, tmp_path):
    res = run(tiny_model_dir, tmp_path, ["token_gain_pg19", "info_gain_pg19"],
              data_files=word_corpus, lengths=(6, 12), limit=2, max_steps=25,
              past_capacity=0)
    recs = records_of(res)
    full = [r for r in recs if r["best_accuracy"] <= 0.99]
    assert full  # 12 tokens do not fit in 25 steps
    for r in recs:
        assert r["min_loss"] <= r["best_loss"]
        assert r["information_gain"] == pytest.approx(
            (r["base_loss"] - r["min_loss"]) * r["length"])
        assert r["token_gain"] == pytest.approx(
            (r["best_accuracy"] - r["base_accuracy"]) * r["length"])
    info = res["results"]["info_gain_pg19"]
    assert info["information_gain,none"] == pytest.approx(
        sum(r["information_gain"] for r in full) / len(full))
    assert info["information_gain_bits,none"] == pytest.approx(
        info["information_gain,none"] / math.log(2))
    # how many full vectors the gains are made of, and at which lengths
    assert info["n_full_vectors,none"] == len(full)
    by_length = res["full_vectors"]["info_gain_pg19"]
    assert sum(by_length.values()) == len(full)
    assert set(by_length) <= {"6", "12"}


def test_the_sweep_runs_past_capacity_then_stops(tiny_model_dir, word_corpus, tmp_path):
    res = run(tiny_model_dir, tmp_path, ["capacity_pg19", "token_gain_pg19"],
              data_files=word_corpus, lengths=(2, 12, 16, 20, 24, 32), limit=2, max_steps=40,
              past_capacity=2)
    sweep = res["sweeps"][0]
    accs = {int(n): a for n, a in sweep["mean_accuracy"].items()}
    assert accs[2] >= 0.99  # capacity, then two lengths in a row below it, then the stop
    assert list(accs) == [2, 12, 16] and accs[12] < 0.99 and accs[16] < 0.99
    assert sweep["stopped"]["length"] == 16
    assert "past capacity" in sweep["stopped"]["reason"]


TASK = """task: {name}
kind: {kind}
dataset: lines
source: {{kind: local, path: {corpus}}}
lengths: {lengths}
mem_tokens: [1]
num_samples: 2
past_capacity: 0
"""


def test_capacity_and_mem_scaling_agree_in_one_file(tiny_model_dir, word_corpus, tmp_path):
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    # the grids differ, as capacity_pg19's and mem_scaling_pg19's do: 4 is only in the second
    for name, kind, lengths in (("cap_lines", "capacity", [2, 16]),
                                ("scaling_lines", "mem_scaling", [2, 4, 16])):
        (tasks / f"{name}.yaml").write_text(TASK.format(name=name, kind=kind, lengths=lengths,
                                                        corpus=word_corpus))
    res = run(tiny_model_dir, tmp_path / "out", ["cap_lines", "scaling_lines"], limit=2,
              max_steps=150, include_path=(str(tasks),))
    assert len(res["sweeps"]) == 1  # one k=1 sweep, read whole by both tasks
    accs = res["sweeps"][0]["mean_accuracy"]
    assert accs["4"] >= 0.99 > accs["16"]  # the length only one grid has decides
    capacity = res["results"]["cap_lines"]["decoding_capacity,none"]
    assert capacity == res["results"]["scaling_lines"]["decoding_capacity_k1,none"] == 4


def test_paper_precision_by_default(tiny_model_dir, tmp_path):
    from cram_harness.models.load import load_model, resolve_autocast

    model, _ = load_model(tiny_model_dir, device="cpu")
    assert str(model.dtype) == "torch.float32"  # --dtype auto: the paper's fp32 weights
    assert resolve_autocast("auto", model) == "fp32"  # no autocast on a CPU
    assert resolve_autocast("bf16", model) == "bf16"
    res = run(tiny_model_dir, tmp_path, ["capacity_random"], lengths=(3,), limit=1,
              max_steps=2)
    assert res["engine"]["dtype"] == "fp32" and res["engine"]["weights"] == "float32"
    assert res["engine"]["protocol"] == "paper" and res["engine"]["lr"] == 0.3


def test_past_the_context_the_longest_length_that_fits_stands_in():
    from cram_harness.harness.plan import fitting_lengths

    # Pythia-160M's 2048 positions with 32 vectors: the paper ran 2016 tokens
    assert fitting_lengths([8, 1568, 2048, 2560], 32, 2048) == [8, 1568, 2016]
    assert fitting_lengths([8, 16], 1, 2048) == [8, 16]
    assert fitting_lengths([300, 400], 1, 256) == [255]
    assert fitting_lengths([8, 255, 300], 1, 256) == [8, 255]  # already there: not twice


def test_greedy_accuracy_counts_the_text_up_to_the_first_miss(tiny_model_dir, word_corpus,
                                                              tmp_path):
    res = run(tiny_model_dir, tmp_path, ["capacity_pg19"], data_files=word_corpus,
              lengths=(16,), limit=2, max_steps=5, past_capacity=0)
    for rec in records_of(res):
        n, miss = rec["num_predicted"], rec["first_mismatch"]
        assert rec["greedy_accuracy"] == (1.0 if miss is None else miss / n)
