"""Table 1 from results files: each column shows its metric as the task kinds that report it
for Table 1 measured it."""

from __future__ import annotations

from cram_harness.reporting.tables import table1_rows


def test_a_capacity_estimates_information_gain_is_not_table_1s():
    """The estimate reports the information gain at its probe length alone, without a std:
    another statistic than Table 1's, pooled over every length the info_gain task ran."""
    results = {
        "model_name": "m",
        "results": {
            "info_gain_x": {"information_gain,none": 40.0, "information_gain_std,none": 9.0,
                            "n_full_vectors,none": 3},
            "capacity_estimate_x": {"information_gain,none": 45.0,
                                    "information_gain_stderr,none": 2.0,
                                    "predicted_capacity,none": 4},
        },
        "configs": {"info_gain_x": {"kind": "info_gain", "dataset": "x"},
                    "capacity_estimate_x": {"kind": "capacity_estimate", "dataset": "x"}},
    }
    (row,) = table1_rows([results])
    assert row["information_gain"] == (40.0, 9.0)
    assert row["n_full_vectors"] == 3
    # a file that does not say its tasks' kinds is read as before: every task's entries
    results["configs"] = {}
    (row,) = table1_rows([results])
    assert row["information_gain"] == (45.0, None)
