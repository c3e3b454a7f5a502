"""The fast and max protocols against the paper's on the same texts and settings."""

import pytest

from cram_harness.harness.evaluator import RunSettings, evaluate
from cram_harness.protocols import FAST, MAX, PAPER, PROTOCOLS, SECOND_START_SEED_OFFSET
from cram_harness.results.records import SampleRecord
from tests.tiny import write_corpus

GRID = (2, 3, 4, 6, 8)


def run(model_dir, corpus, out, protocol, limit=3):
    settings = RunSettings(limit=limit, lengths=GRID, max_steps=150, lr=0.3, data_files=corpus,
                           output_path=str(out), device="cpu", past_capacity=0,
                           protocol=protocol, batch_size=limit)
    (res,) = evaluate(model_dir, ["capacity_pg19", "token_gain_pg19"], settings)
    return res


def test_fast_agrees_with_paper_within_one_grid_step_at_fewer_steps(tiny_model_dir, tmp_path):
    corpus = write_corpus(tmp_path / "corpus", books=4)
    paper = run(tiny_model_dir, corpus, tmp_path / "paper", "paper", limit=4)
    fast = run(tiny_model_dir, corpus, tmp_path / "fast", "fast", limit=4)
    cap_paper = paper["results"]["capacity_pg19"]["decoding_capacity,none"]
    cap_fast = fast["results"]["capacity_pg19"]["progressive_capacity,none"]
    # warm-started climbs are another statistic: never under the paper's names
    assert not any(key.startswith(("decoding_capacity", "token_gain"))
                   for task in fast["results"].values() for key in task)
    assert cap_paper is not None and cap_fast is not None  # the grid holds a capacity
    assert abs(GRID.index(cap_fast) - GRID.index(cap_paper)) <= 1, (cap_paper, cap_fast)
    assert fast["timings"]["optimizer_steps"] < paper["timings"]["optimizer_steps"]


def test_fast_stops_running_a_text_once_it_fails(tiny_model_dir, word_corpus, tmp_path):
    fast = run(tiny_model_dir, word_corpus, tmp_path, "fast")
    sweep = fast["sweeps"][0]
    run_counts = [sweep["samples"].get(str(length), 0) for length in GRID]
    assert run_counts == sorted(run_counts, reverse=True)  # never more texts at longer L
    assert run_counts[0] == 2 and run_counts[-1] < 2  # a text stopped: fast did something
    for length, n in sweep["samples"].items():
        assert n + sweep["carried"].get(length, 0) == 2  # two books in the corpus, all counted
    assert sum(sweep["carried"].values()) > 0


def test_max_climbs_only_while_greedy_decoding_is_exact(tiny_model_dir, word_corpus, tmp_path):
    from pathlib import Path

    from cram_harness.results.records import read_records

    res = run(tiny_model_dir, word_corpus, tmp_path, "max")
    assert res["config"]["protocol"] == "max"
    records = list(read_records(Path(res["results_file"]).parent / "records.jsonl"))
    assert records and all(r["config"]["min_margin"] == 0.5 for r in records)  # max's margin
    attempts: dict[str, dict[int, list[dict]]] = {}
    for rec in records:
        attempts.setdefault(rec["sample_id"], {}).setdefault(rec["length"], []).append(rec)
    retried = 0
    for runs in attempts.values():
        lengths = sorted(runs)
        assert lengths == [g for g in GRID if g <= lengths[-1]]  # no gaps: it climbed
        lost = []
        for length in lengths:
            first, *retry = runs[length]
            assert len(retry) == (0 if exact(first) else 1)  # a lost text gets one more start
            assert not retry or retry[0]["config"]["seed"] == SECOND_START_SEED_OFFSET
            retried += len(retry)
            lost.append(not any(exact(r) for r in runs[length]))
        # it went on past one lost length, never past two in a row
        assert not any(a and b for a, b in zip(lost[:-2], lost[1:-1]))
        if lengths[-1] < GRID[-1]:
            assert lost[-2:] == [True, True]
    assert retried  # the grid reaches lengths these texts cannot all hold
    capacity = res["results"]["capacity_pg19"]["progressive_greedy_capacity,none"]
    assert capacity is not None
    # every text decodes exactly at some length >= capacity (its vector there decodes the
    # shorter prefixes too, whatever the run at a shorter length found)
    for runs in attempts.values():
        assert any(exact(r) for length, rs in runs.items() if length >= capacity for r in rs)


def exact(rec):
    return rec["greedy_exact"] and rec["best_accuracy"] == 1.0


def test_max_sets_the_lr_from_the_embeddings_unless_given(tiny_model_dir):
    from cram_harness.engine.adapter import init_std
    from cram_harness.models.load import load_model

    model, _ = load_model(tiny_model_dir, device="cpu")
    scaled = RunSettings(protocol="max").config(model, 1, MAX)
    assert scaled.lr == pytest.approx(MAX.lr_per_embedding_std * init_std(model), rel=1e-4)
    assert scaled.min_margin == 0.5
    assert RunSettings(protocol="max", lr=0.3).config(model, 1, MAX).lr == 0.3
    assert RunSettings().config(model, 1, PAPER).lr == 1e-2  # CramConfig's: the paper's


def rec(length=8, best=1.0, exact=True, text="a", **more):
    return SampleRecord(key=f"{text}{length}", length=length, best_accuracy=best,
                        greedy_exact=exact, sample_id=text, num_predicted=length - 1, **more)


def test_a_text_that_stops_climbing_carries_what_greedy_decoding_got_right():
    missed = rec(7, 1.0, exact=False, first_mismatch=3)
    assert MAX.stopped_accuracy(missed) == 0.5  # teacher-forced 100% is not lossless
    assert MAX.stopped_accuracy(missed.replace(best_accuracy=0.8)) == 0.8


def test_each_protocol_decides_who_climbs_by_its_own_rule():
    lossless_not_exact, exact = rec(best=1.0, exact=False), rec(best=1.0, exact=True)
    assert FAST.wins(lossless_not_exact) and not MAX.wins(lossless_not_exact)
    assert FAST.wins(exact) and MAX.wins(exact)
    assert not FAST.wins(exact.replace(numerical_fault=True))  # a NaN run is no result
    assert not PAPER.climbs and FAST.climbs and MAX.climbs
    assert MAX.lost_lengths_allowed == 1 and FAST.lost_lengths_allowed == 0


def test_climbs_are_credited_with_every_prefix_of_their_longest_exact_length():
    records = [rec(4, 0.5, exact=False), rec(8, 1.0), rec(16, 0.7, exact=False),
               rec(4, 0.25, exact=False, text="b")]
    credited = {(r.sample_id, r.length): r.best_accuracy for r in FAST.credited(records)}
    assert credited == {("a", 4): 1.0, ("a", 8): 1.0, ("a", 16): 0.7, ("b", 4): 0.25}
    assert [r.best_accuracy for r in PAPER.credited(records)] == [0.5, 1.0, 0.7, 0.25]


def test_the_names_of_a_climbs_numbers_say_so():
    from cram_harness.metrics import metric

    assert metric("decoding_capacity").key(PAPER.climbs) == "decoding_capacity"
    assert metric("decoding_capacity").key(FAST.climbs) == "progressive_capacity"
    assert metric("token_gain").key(MAX.climbs) == "progressive_token_gain"
    assert metric("n_full_vectors").key(MAX.climbs) == "n_full_vectors"  # a count is a count


def test_a_files_protocol_is_read_one_way():
    from cram_harness.protocols import protocol_of_file

    assert protocol_of_file(None) is PAPER  # a file from before protocols
    assert protocol_of_file("fast") is FAST
    newer = protocol_of_file("beam")  # a newer cram-harness's: not the paper's numbers
    assert newer.climbs and newer.name == "beam"


def test_the_cli_offers_the_protocol_table():
    from cram_harness.cli import cli

    (option,) = [p for p in cli.commands["run"].params if p.name == "protocol"]
    assert list(option.type.choices) == list(PROTOCOLS)
