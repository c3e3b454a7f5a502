"""SampleRecord: a record file's line read by name, written back as it was read, with the
rules every reader shares."""

import json

import pytest

from cram_harness.results.records import RecordStore, SampleRecord
from tests.conftest import record

# A line as cram-harness 0.1 wrote it before min_loss, greedy_accuracy and first_mismatch.
OLD_LINE = {"key": "k1", "length": 8, "best_accuracy": 1.0, "base_accuracy": 0.25,
            "base_loss": 3.5, "best_loss": 0.1, "token_gain": 6.0, "information_gain": 27.2,
            "information_gain_bits": 39.2, "greedy_exact": True, "steps": 40,
            "num_tokens": 8, "num_predicted": 7, "config": {"lr": 0.01}, "seconds": 1.5}


def test_an_old_line_reads_and_writes_back_unchanged():
    rec = SampleRecord.from_json(OLD_LINE)
    assert rec.min_loss is None and rec.greedy_accuracy is None
    assert rec.to_json() == OLD_LINE
    assert rec["config"] == {"lr": 0.01} and dict(rec) == OLD_LINE  # reads as a mapping too


def test_a_line_of_today_round_trips_through_the_store(tmp_path):
    line = record(key="k2", first_mismatch=None, sample_id="pg19#3", dataset="pg19")
    store = RecordStore(tmp_path / "records.jsonl")
    store.append(line)
    on_disk = json.loads((tmp_path / "records.jsonl").read_text())
    assert on_disk == line
    again = RecordStore(tmp_path / "records.jsonl").get("k2")
    assert again == SampleRecord.from_json(line) and again.to_json() == line


@pytest.mark.parametrize("best, greedy, fault, lossless, exact", [
    (1.0, True, False, True, True),
    (1.0, False, False, True, False),  # teacher-forced 100%, greedy decoding missed
    (0.9, True, False, False, False),
    (1.0, True, True, False, False),  # a NaN/inf run is no result
])
def test_the_shared_rules(best, greedy, fault, lossless, exact):
    rec = SampleRecord(key="k", length=8, best_accuracy=best, greedy_exact=greedy,
                       numerical_fault=fault)
    assert rec.usable is not fault
    assert (rec.lossless, rec.exact) == (lossless, exact)
    assert rec.is_full() is (best <= 0.99) and rec.is_full(threshold=0.9) is (best <= 0.9)


def test_records_are_equal_when_their_lines_are():
    rec = SampleRecord.from_json(OLD_LINE)
    assert rec == OLD_LINE and rec == SampleRecord.from_json(dict(OLD_LINE))
    assert rec != SampleRecord.from_json({**OLD_LINE, "n_mem": 2})  # a field it only carries
    assert rec.replace(best_accuracy=0.5)["best_accuracy"] == 0.5
