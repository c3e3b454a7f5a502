import math
import statistics

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from cram_harness import metrics
from cram_harness.results.records import SampleRecord
from tests.helpers import PROPERTY


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


def sample(length: int, accuracy: float, **fields) -> SampleRecord:
    return SampleRecord(key=f"{length}-{accuracy}", length=length, best_accuracy=accuracy,
                        greedy_accuracy=accuracy, greedy_exact=accuracy == 1.0, **fields)


def test_a_task_writes_its_kinds_entries_under_its_protocols_names():
    recs = [sample(8, 1.0), sample(16, 0.5, token_gain=6.0), sample(16, 0.7, token_gain=9.0)]
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
    recs = [sample(8, 1.0, steps=10), sample(8, 0.5, steps=30)]
    written = {}
    for m in metrics.metrics_of("capacity"):
        written.update(m.entries(metrics.Reading(recs, recs)))
    assert written["mean_steps,none"] == 20 and written["mean_steps_std,none"] > 0
    assert steps.directions() == {"mean_steps": False, "mean_steps_std": False}
    assert "mean_steps" in metrics.reported_names()
    bad = {"results": {"t": {"mean_steps,none": "twenty"}}, "model_name": "m"}
    assert "mean_steps" in schemas.results_problem(bad)


# --- properties, on generated inputs (hypothesis) ----------------------------------


unit = st.floats(0.0, 1.0)

lengths = st.sampled_from([8, 16, 32, 48, 64, 80, 96, 128, 160, 192, 256, 320, 384, 512, 768])


def same(a: metrics.MeanStd, b: metrics.MeanStd) -> bool:
    """Equal, NaN (no samples) included."""
    return all(x == y or (math.isnan(x) and math.isnan(y))
               for x, y in zip((a.mean, a.std, a.stderr, a.n), (b.mean, b.std, b.stderr, b.n)))


record = st.builds(
    SampleRecord,
    key=st.just("k"),
    length=st.just(8),
    greedy_exact=st.booleans(),
    best_accuracy=unit,
    token_gain=st.floats(-2000, 2000),
    information_gain=st.floats(-1e4, 1e4),
    information_gain_bits=st.floats(-1e4, 1e4),
)


@PROPERTY
@given(st.lists(record, max_size=30).flatmap(lambda recs: st.tuples(st.just(recs),
                                                                       st.permutations(recs))))


def test_full_vector_gains_do_not_depend_on_sample_order(pair):
    records, shuffled = pair

    def gains(recs):
        reading = metrics.Reading(recs)
        return {m.name: m.compute(reading) for m in metrics.METRICS
                if set(m.kinds) & set(metrics.GAIN_KINDS) and m.aggregation == "mean_std"}

    before, after = gains(records), gains(shuffled)
    assert before.keys() == after.keys() == {"token_gain", "information_gain",
                                             "information_gain_bits"}
    for name in before:
        assert same(before[name], after[name]), name
    full = [r for r in records if r.best_accuracy <= metrics.LOSSLESS_THRESHOLD]
    assert before["token_gain"].n == len(full)


accuracy_tables = st.dictionaries(lengths, st.lists(unit, min_size=1, max_size=8), max_size=8)


@PROPERTY
@given(table=accuracy_tables, data=st.data())
def test_raising_an_accuracy_never_lowers_decoding_capacity(table, data):
    assume(table)
    length = data.draw(st.sampled_from(sorted(table)))
    i = data.draw(st.integers(0, len(table[length]) - 1))
    raised = {k: list(v) for k, v in table.items()}
    raised[length][i] = data.draw(st.floats(table[length][i], 1.0))
    before, after = metrics.decoding_capacity(table), metrics.decoding_capacity(raised)
    assert (after if after is not None else -1) >= (before if before is not None else -1)


@PROPERTY
@given(table=accuracy_tables)
def test_decoding_capacity_is_a_tested_length_or_none(table):
    capacity = metrics.decoding_capacity(table)
    assert capacity is None or capacity in table
    perfect = {k: [1.0] * len(v) for k, v in table.items()}
    assert metrics.decoding_capacity(perfect) == (max(table) if table else None)


@PROPERTY
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=50))
def test_mean_std_matches_the_statistics_module(values):
    stats = metrics.mean_std(values)
    scale = max(1.0, max(abs(v) for v in values))
    assert stats.n == len(values)
    assert stats.mean == pytest.approx(statistics.fmean(values), rel=1e-12, abs=1e-12 * scale)
    if len(values) == 1:
        assert math.isnan(stats.std) and math.isnan(stats.stderr)
    else:
        assert stats.std == pytest.approx(statistics.stdev(values), rel=1e-9, abs=1e-9 * scale)
        assert stats.stderr == pytest.approx(statistics.stdev(values) / math.sqrt(len(values)),
                                             rel=1e-9, abs=1e-9 * scale)


@PROPERTY
@given(d=st.integers(1, 16384), vocab=st.integers(2, 1_000_000))
def test_eq1_capacity_grows_with_d_and_shrinks_with_the_vocabulary(d, vocab):
    eq1 = metrics.theoretical_capacity(d, vocab)
    assert eq1 > 0
    assert metrics.theoretical_capacity(d + 1, vocab) > eq1
    assert metrics.theoretical_capacity(d, vocab + 1) < eq1
