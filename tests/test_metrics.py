import math

import pytest

from cram_harness import metrics
from cram_harness.results.record import SampleRecord


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
    gains = metrics.full_vector_gains(records)
    assert gains["token_gain"].mean == pytest.approx(25)
    assert gains["token_gain"].std == pytest.approx(math.sqrt(50))
    assert gains["token_gain"].n == 2
    assert gains["information_gain"].stderr == pytest.approx(math.sqrt(200) / math.sqrt(2))


def test_mean_std_edge_cases():
    one = metrics.mean_std([3.0])  # no spread from one value: NaN, as pandas' std
    assert (one.mean, one.n) == (3.0, 1) and math.isnan(one.std) and math.isnan(one.stderr)
    assert metrics.mean_std([]).n == 0 and math.isnan(metrics.mean_std([]).mean)


def test_accuracy_table_groups_by_length():
    pairs = [(16, 1.0), (8, 0.5), (16, 0.75)]
    assert metrics.accuracy_table(pairs) == {8: [0.5], 16: [1.0, 0.75]}


def test_utilization():
    assert metrics.capacity_utilization(50, 200) == pytest.approx(0.25)
