"""The records: `SampleRecord` reads and writes back any line, and the file a run appends to
keeps them whole: a line of another shape or cut anywhere (a killed run) is skipped, never
duplicated, and its sample runs again; any edit of a line is read or skipped; damaged vectors
of a warm start run again; keys do not depend on the order of options."""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cram_harness.results.records import RecordStore, SampleRecord, read_records, record_key
from tests.helpers import (
    MUTATIONS,
    PROPERTY,
    RUN,
    mutated,
    run_cli,
    whole_records,
)
from tests.tiny import record
from tests.tiny import record as a_record

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


@pytest.mark.parametrize("line, why", [
    ('{"key": "k1", "length": 8}', "'best_accuracy' is missing"),
    (json.dumps(record("k2", best_accuracy="high")), "'best_accuracy' is 'high'"),
    ("[1, 2, 3]", "it holds list"),
])


def test_a_record_line_of_another_shape_is_skipped_and_the_run_finishes(
        line, why, tiny_model_dir, books, tmp_path, capsys, recwarn):
    out = tmp_path / "results"
    argv = ["--model", tiny_model_dir, *RUN, "--data-files", books, "--output-path", str(out)]
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    (records,) = out.rglob("records.jsonl")
    kept = records.read_text().splitlines()
    records.write_text("\n".join([kept[0], line, *kept[1:]]) + "\n")
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    assert any(f"records.jsonl:2: not a record (key {why}" in str(w.message)
               or f"records.jsonl:2: not a record ({why}" in str(w.message) for w in recwarn)
    assert len([r for r in whole_records(records) if "best_accuracy" in r]) >= len(kept)


def test_any_edit_of_a_record_line_is_read_or_skipped(tmp_path):
    import warnings

    from cram_harness.results.records import read_records

    path = tmp_path / "records.jsonl"

    @MUTATIONS
    @given(mutated(record("k1")))
    def check(rec):
        path.write_text(json.dumps(rec) + "\n" + json.dumps(record("k2")) + "\n")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kept = [r["key"] for r in read_records(path)]  # never raises
        assert kept[-1] == "k2" and len(kept) in (1, 2)

    check()


payloads = st.dictionaries(st.text("abcxyz_", min_size=1, max_size=5),
                           st.one_of(st.integers(), st.floats(allow_nan=False), st.text()),
                           max_size=4)


def _line(rec: dict) -> str:
    return json.dumps(rec, sort_keys=True, allow_nan=True) + "\n"


def _keys_on_disk(path: Path) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [r["key"] for r in read_records(path)]


def _cut_and_resume(payloads_: list[dict], cut_of) -> list[str]:
    """Append records, cut the last one's line (a kill mid-write), reopen the store as a rerun
    does, append the cut record again if the store lost it; the keys then on disk."""
    records = [a_record(f"k{i}", **p) for i, p in enumerate(payloads_)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "records.jsonl"
        store = RecordStore(path)
        for rec in records[:-1]:
            store.append(rec)
        line = _line(records[-1])
        with open(path, "a", encoding="utf-8") as f:
            f.write(line[: cut_of(line)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            store = RecordStore(path)
        assert all(rec["key"] in store for rec in records[:-1])  # every whole record kept
        if records[-1]["key"] not in store:
            store.append(records[-1])  # the rerun redoes the sample that was cut
            assert path.read_text(encoding="utf-8").endswith("\n")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert RecordStore(path).get(records[-1]["key"]).to_json() == records[-1]
        return _keys_on_disk(path)


@PROPERTY
@given(st.lists(payloads, min_size=1, max_size=6), st.data())
def test_a_line_cut_anywhere_loses_no_whole_record_and_duplicates_none(payloads_, data):
    keys = _cut_and_resume(payloads_, lambda line: data.draw(st.integers(0, len(line) - 2)))
    assert sorted(keys) == sorted(f"k{i}" for i in range(len(payloads_)))


def test_a_line_cut_just_before_its_newline_is_not_duplicated():
    keys = _cut_and_resume([{"a": 1}, {"b": 2}], lambda line: len(line) - 1)
    assert sorted(keys) == ["k0", "k1"]


@PROPERTY
@given(st.dictionaries(st.text(min_size=1, max_size=8), st.integers(), max_size=6), st.data())
def test_record_keys_do_not_depend_on_option_order(optimizer, data):
    shuffled = dict(data.draw(st.permutations(list(optimizer.items()))))
    key = record_key("m", "sha", 8, 1, optimizer)
    assert key == record_key("m", "sha", 8, 1, shuffled)
    assert key != record_key("m", "sha", 16, 1, optimizer)
    assert key != record_key("m", "sha", 8, 2, optimizer)


def test_a_damaged_warm_start_is_run_again_with_one_warning(tiny_model_dir, books, tmp_path,
                                                            capsys, recwarn):
    out = tmp_path / "results"
    argv = ["--model", tiny_model_dir, *RUN, "--protocol", "fast", "--data-files", books,
            "--output-path", str(out)]
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    (records,) = out.rglob("records.jsonl")
    lines = [json.loads(line) for line in records.read_text().splitlines()]
    # as if stopped after length 4: its vectors are the warm starts of length 8, still to run
    records.write_text("".join(json.dumps(r) + "\n" for r in lines if r["length"] == 4))
    climbed = {r["sample_id"] for r in lines if r["length"] == 8}
    warm = next(r["key"] for r in lines if r["length"] == 4 and r["sample_id"] in climbed)
    vectors = records.parent / "vectors" / f"{warm}.safetensors"
    vectors.write_bytes(vectors.read_bytes()[:-9])  # truncated
    for _ in range(2):  # the rerun heals it: the next one has nothing left to warn about
        code, _, err = run_cli(argv, capsys)
        assert code == 0, err
    warned = [str(w.message) for w in recwarn if vectors.name in str(w.message)]
    assert len(warned) == 1 and "damaged" in warned[0] and "runs again" in warned[0], warned
    from safetensors.torch import load_file

    assert load_file(str(vectors))["memory"].shape[0] == 1
