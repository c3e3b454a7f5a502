"""Interruption and concurrency, with the real CLI as processes: a run stopped at any moment
(Ctrl-C, SIGTERM, a kill) and resumed gives what an uninterrupted run gives; a second writer
is refused, not interleaved; a second Ctrl-C exits quietly with the records whole."""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path

import pytest

from tests.helpers import (
    N_SAMPLES,
    RUN,
    Proc,
    assert_nothing_half_written,
    assert_one_error_line,
    line_count,
    model_slug,
    whole_records,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # in-process runs: one torch thread


# Sections of a results file that describe what was measured (not when, where or how fast).
MEASURED = ("results", "groups", "group_subtasks", "configs", "versions", "n-samples",
            "higher_is_better", "model_info", "sweeps", "analyses")


def measured(results_file: Path) -> dict:
    data = json.loads(results_file.read_text())
    config = {k: v for k, v in data["config"].items() if k != "output_path"}
    return {**{k: data[k] for k in MEASURED}, "config": config}


def without_timing(records: list[dict]) -> dict[str, dict]:
    return {r["key"]: {k: v for k, v in r.items() if k != "seconds"} for r in records}


def assert_interrupted(proc: Proc) -> None:
    code = proc.wait()
    err = proc.stderr()
    assert code == 130, err
    lines = [line for line in err.splitlines() if line.startswith("interrupted")]
    assert lines == ["interrupted: every finished sample is saved; rerun the same command to "
                     "resume"], err
    assert "Traceback" not in err and not any(
        line.startswith("error") for line in err.splitlines()), err


@pytest.fixture(scope="module")
def race(tiny_model_dir, books, tmp_path_factory):
    """Three identical runs started together on one output directory. The one that gets the
    lock runs to the end: its results are the uninterrupted reference for the tests below."""
    out = tmp_path_factory.mktemp("race")
    args = ["--model", tiny_model_dir, *RUN, "--data-files", books, "--output-path",
            str(out / "results")]
    procs = [Proc(args, out / f"writer{i}") for i in range(3)]
    codes = [p.wait() for p in procs]
    (model_dir,) = (out / "results").iterdir()
    return procs, codes, model_dir


@pytest.mark.slow  # a whole process run, ~15 s or more: tox runs it, `pytest` alone not
def test_concurrent_writers_one_runs_the_others_are_refused(race):
    procs, codes, model_dir = race
    assert sorted(codes) == [0, 2, 2], [p.stderr() for p in procs]
    for proc, code in zip(procs, codes):
        if code == 2:
            line = assert_one_error_line(code, proc.stderr(), "is in use by another cram-eval run")
            assert "pass another --output-path" in line
            assert not proc.stdout()  # refused before it did anything
    records = whole_records(model_dir / "records.jsonl")  # never interleaved mid-line
    assert len(records) == len({r["key"] for r in records}) == N_SAMPLES
    assert len(list(model_dir.glob("results_*.json"))) == 1
    assert_nothing_half_written(model_dir)


@pytest.mark.slow  # a whole process run, ~15 s or more: tox runs it, `pytest` alone not
def test_interrupted_at_five_moments_then_resumed_equals_an_uninterrupted_run(
        race, tiny_model_dir, books, tmp_path):
    """SIGINT / SIGTERM while the model loads, after the first record, at a random moment of
    optimization, inside a record write and inside the results write; then the same command
    again. The records and results must equal the uninterrupted run's, nothing duplicated,
    nothing missing, nothing half-written."""
    _, codes, reference_dir = race
    assert 0 in codes
    args = ["--model", tiny_model_dir, *RUN, "--data-files", books, "--output-path",
            str(tmp_path / "results")]
    records = tmp_path / "results" / Path(reference_dir).name / "records.jsonl"
    rng = random.Random(1568)

    # 1. SIGINT while the model loads (torch is being imported): nothing written yet.
    proc = Proc(args, tmp_path / "p1")
    proc.wait_until(lambda: "loading" in proc.stderr(), "the model load")
    proc.signal(signal.SIGINT)
    assert_interrupted(proc)
    assert line_count(records) == 0

    # 2. SIGINT as soon as the first record line appears (the next sample is optimizing).
    proc = Proc(args, tmp_path / "p2")
    proc.wait_until(lambda: line_count(records) >= 1, "the first record")
    proc.signal(signal.SIGINT)
    assert_interrupted(proc)
    done = line_count(records)
    assert 1 <= done < N_SAMPLES

    # 3. SIGTERM at a random moment of optimization, after this run has finished a sample.
    proc = Proc(args, tmp_path / "p3")
    proc.wait_until(lambda: line_count(records) > done, "a new record")
    delay = rng.uniform(0.0, 0.05)
    time.sleep(delay)
    proc.signal(signal.SIGTERM)
    assert_interrupted(proc)
    done = line_count(records)
    assert done < N_SAMPLES, f"the run finished before the signal ({delay:.3f} s)"

    # 4. SIGTERM inside a record append: the line is written but not yet synced.
    proc = Proc(args, tmp_path / "p4", at="record-write", sig="SIGTERM")
    assert_interrupted(proc)
    assert line_count(records) == done + 1  # the record it was writing is whole on disk
    whole_records(records)

    # 5. SIGINT while the results file is written: its temp file is complete, not renamed.
    proc = Proc(args, tmp_path / "p5", at="results-write", sig="SIGINT")
    assert_interrupted(proc)
    assert line_count(records) == N_SAMPLES
    assert not list(records.parent.glob("results_*.json"))

    # The same command again: no optimization left, results written.
    proc = Proc(args, tmp_path / "p6")
    assert proc.wait() == 0, proc.stderr()
    assert line_count(records) == N_SAMPLES  # nothing optimized twice

    resumed = whole_records(records)
    keys = [r["key"] for r in resumed]
    assert len(keys) == len(set(keys)) == N_SAMPLES  # none duplicated
    assert without_timing(resumed) == without_timing(
        whole_records(reference_dir / "records.jsonl"))  # none missing, same numbers
    (results_file,) = records.parent.glob("results_*.json")
    (reference,) = reference_dir.glob("results_*.json")
    assert measured(results_file) == measured(reference)
    assert_nothing_half_written(records.parent)


def test_a_second_ctrl_c_exits_quietly_with_the_records_whole(tiny_model_dir, books, tmp_path):
    args = ["--model", tiny_model_dir, *RUN, "--data-files", books, "--output-path",
            str(tmp_path / "results")]
    records = tmp_path / "results" / model_slug(tiny_model_dir) / "records.jsonl"
    proc = Proc(args, tmp_path / "p")
    proc.wait_until(lambda: line_count(records) >= 1, "the first record")
    proc.signal(signal.SIGINT)
    time.sleep(0.01)
    proc.signal(signal.SIGINT)
    assert proc.wait() == 130
    assert "Traceback" not in proc.stderr(), proc.stderr()
    whole_records(records)
