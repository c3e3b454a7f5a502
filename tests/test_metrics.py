import math

import pytest

from cram_harness import metrics
from cram_harness.results.records import SampleRecord


def test_gains():
    assert metrics.token_gain(0.9, 0.4, 100) == pytest.approx(50)
    assert metrics.information_gain(3.0, 0.5, 10) == pytest.approx(25)
    assert metrics.nats_to_bits(math.log(2)) == pytest.approx(1)


@pytest.mark.parametrize(
    "d, vocab, expected",
    [(768, 50304, 787), (2048, 128256, 1931), (3072, 128256, 2897), (4096, 128256, 3862)],
)
def test_eq1_matches_the_papers_table(d, vocab, expected):
    assert round(metrics.theoretical_capacity(d, vocab)) == expected


def test_decoding_capacity_is_the_longest_length_at_threshold():
    table = {8: [1.0, 1.0], 16: [1.0, 0.99], 32: [1.0, 0.9], 64: [0.5, 0.4]}
    assert metrics.decoding_capacity(table) == 16
    assert metrics.decoding_capacity({8: [0.5]}) is None
    # Capacity is the largest passing length, even past a failing one (the paper's rule).
    assert metrics.decoding_capacity({8: [1.0], 16: [0.5], 32: [1.0]}) == 32


def test_full_vector_gains_use_only_full_vectors():
    records = [SampleRecord(key=str(i), length=8, best_accuracy=acc, greedy_exact=False,
                            token_gain=tg, information_gain=ig, information_gain_bits=bits)
               for i, (acc, tg, ig, bits) in enumerate(
                   [(1.0, 10, 40, 57.7), (0.9, 20, 100, 144), (0.5, 30, 120, 173)])]
    reading = metrics.Reading(records)
    gain = metrics.metric("token_gain").compute(reading)
    assert gain.mean == pytest.approx(25)
    assert gain.std == pytest.approx(math.sqrt(50))
    assert gain.n == 2 == metrics.metric("n_full_vectors").compute(reading)
    info = metrics.metric("information_gain").compute(reading)
    assert info.stderr == pytest.approx(math.sqrt(200) / math.sqrt(2))


def test_mean_std_edge_cases():
    one = metrics.mean_std([3.0])  # no spread from one value: NaN, as pandas' std
    assert (one.mean, one.n) == (3.0, 1) and math.isnan(one.std) and math.isnan(one.stderr)
    assert metrics.mean_std([]).n == 0 and math.isnan(metrics.mean_std([]).mean)


def test_accuracy_table_groups_by_length():
    pairs = [(16, 1.0), (8, 0.5), (16, 0.75)]
    assert metrics.accuracy_table(pairs) == {8: [0.5], 16: [1.0, 0.75]}


def test_utilization():
    assert metrics.capacity_utilization(50, 200) == pytest.approx(0.25)


# --- the metric table -------------------------------------------------------------------------


def test_every_metric_is_declared_whole():
    from cram_harness.harness.tasks import KINDS

    seen: dict[str, metrics.Metric] = {}
    for m in metrics.METRICS:
        assert m.aggregation in metrics.AGGREGATIONS, m.name
        assert set(m.kinds) <= set(KINDS), m.name
        assert m.unit and m.paper, m.name
        if m.lm_eval and m.lm_eval != "count":
            assert m.sample, m.name  # the bridge pools this record field
        first = seen.setdefault(m.name, m)
        # one name, one meaning: entries of a name differ only in the kinds they serve
        assert (first.higher_is_better, first.unit) == (m.higher_is_better, m.unit), m.name
        assert first is m or not set(first.kinds) & set(m.kinds), m.name
    assert set(metrics.ANALYSIS_KINDS) < set(KINDS)


def test_which_way_is_better():
    """Capacities, gains and accuracies are better high; an error and a spread low; Figs.
    7-8's cosines and accuracies between solutions describe, neither way."""
    better = {m.name: m.higher_is_better for m in metrics.METRICS}
    assert better["prediction_error_tokens"] is False
    assert {better[n] for n in ("intra_cosine", "inter_cosine", "midpoint_accuracy",
                                "worst_midpoint_accuracy")} == {None}
    assert all(better[n] for n in ("decoding_capacity", "greedy_capacity", "token_gain",
                                   "information_gain", "information_gain_bits",
                                   "capacity_utilization", "predicted_capacity",
                                   "measured_capacity", "n_full_vectors", "best_accuracy"))
    assert metrics.metric("token_gain").directions() == {"token_gain": True,
                                                          "token_gain_std": False}
    assert metrics.metric("intra_cosine").directions() == {"intra_cosine": None,
                                                            "intra_cosine_std": None}


def record(length: int, accuracy: float, **fields) -> SampleRecord:
    return SampleRecord(key=f"{length}-{accuracy}", length=length, best_accuracy=accuracy,
                        greedy_accuracy=accuracy, greedy_exact=accuracy == 1.0, **fields)


def test_a_task_writes_its_kinds_entries_under_its_protocols_names():
    recs = [record(8, 1.0), record(16, 0.5, token_gain=6.0), record(16, 0.7, token_gain=9.0)]
    reading = metrics.Reading(recs, recs, eq1_capacity=100.0)
    written = {}
    for m in metrics.metrics_of("token_gain"):
        written.update(m.entries(reading, climbs=True))
    assert list(written) == [
        "n_full_vectors,none", "n_full_vectors_stderr,none", "progressive_token_gain,none",
        "progressive_token_gain_stderr,none", "progressive_token_gain_std,none",
        "progressive_capacity_utilization,none"]
    assert written["progressive_token_gain,none"] == pytest.approx(7.5)
    assert written["n_full_vectors_stderr,none"] == "N/A"
    capacity = metrics.metric("decoding_capacity")
    assert capacity.entries(reading, suffix="_k2") == {
        "decoding_capacity_k2,none": 8, "decoding_capacity_k2_stderr,none": "N/A"}
    # a metric with nothing to report is not written (no curves, no interpolation entry)
    assert metrics.metric("midpoint_accuracy").entries(reading) == {}


def test_adding_a_metric_is_one_entry(monkeypatch):
    """docs/architecture.md's worked example: one entry (and its function) and the results,
    their directions, the files' check and the readers all have it."""
    from cram_harness import schemas

    steps = metrics.Metric(
        "mean_steps", lambda r: metrics.mean_std(x.steps for x in r.records), "mean_std",
        False, ("capacity",), "steps", "optimizer steps per text")
    monkeypatch.setattr(metrics, "METRICS", (*metrics.METRICS, steps))
    recs = [record(8, 1.0, steps=10), record(8, 0.5, steps=30)]
    written = {}
    for m in metrics.metrics_of("capacity"):
        written.update(m.entries(metrics.Reading(recs, recs)))
    assert written["mean_steps,none"] == 20 and written["mean_steps_std,none"] > 0
    assert steps.directions() == {"mean_steps": False, "mean_steps_std": False}
    assert "mean_steps" in metrics.reported_names()
    bad = {"results": {"t": {"mean_steps,none": "twenty"}}, "model_name": "m"}
    assert "mean_steps" in schemas.results_problem(bad)
