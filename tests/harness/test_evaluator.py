import json
import multiprocessing
import warnings

import pytest

from cram_harness.engine import schedule
from cram_harness.errors import CramError
from cram_harness.harness.display import Display
from cram_harness.harness.evaluator import RunSettings, evaluate
from cram_harness.results.records import RecordStore, read_records
from tests.helpers import records_of
from tests.tiny import record

TASKS = ["capacity_pg19", "token_gain_pg19", "info_gain_pg19"]


def settings(tmp_path, corpus, **overrides):
    base = dict(limit=2, lengths=(4, 8), batch_size=2, max_steps=15, lr=0.3, device="cpu",
                data_files=corpus, output_path=str(tmp_path / "results"), past_capacity=0)
    return RunSettings(**{**base, **overrides})


class Recorder(Display):
    def __init__(self, stop_after=None):
        self.done, self.warnings, self.stop_after = [], [], stop_after

    def sample_done(self, record):
        self.done.append(record["key"])
        if self.stop_after is not None and len(self.done) >= self.stop_after:
            raise KeyboardInterrupt

    def warn(self, message):
        self.warnings.append(message)

    def plan(self, lines):
        self.planned = lines


def test_tasks_of_a_dataset_share_one_sweep(tiny_model_dir, word_corpus, tmp_path):
    rec = Recorder()
    (res,) = evaluate(tiny_model_dir, TASKS, settings(tmp_path, word_corpus), rec)
    assert len(rec.done) == 4  # 2 texts x 2 lengths, not three times that
    assert len(res["sweeps"]) == 1 and res["sweeps"][0]["tasks"] == TASKS
    for task in TASKS:
        assert res["n-samples"][task]["effective"] == 4
    cap = res["results"]["capacity_pg19"]
    assert set(cap) >= {"alias", "decoding_capacity,none", "decoding_capacity_stderr,none"}
    gains = res["results"]["token_gain_pg19"]
    assert {"token_gain,none", "token_gain_stderr,none", "capacity_utilization,none"} <= set(gains)
    info = res["results"]["info_gain_pg19"]
    assert {"information_gain,none", "information_gain_bits_stderr,none"} <= set(info)
    for key in ("results", "groups", "configs", "versions", "n-samples", "config",
                "model_info", "environment", "timings"):
        assert key in res
    assert res["model_info"]["d_model"] == 64 and res["model_info"]["eq1_capacity"] > 0
    assert res["config"]["model"] == tiny_model_dir and res["versions"]["capacity_pg19"] == 2
    assert res["environment"]["torch"]
    on_disk = json.loads(open(res["results_file"]).read())
    assert on_disk["results"] == res["results"]


def test_rerun_does_no_optimization(tiny_model_dir, word_corpus, tmp_path, monkeypatch):
    s = settings(tmp_path, word_corpus)
    (first,) = evaluate(tiny_model_dir, TASKS, s)

    def no_work(*args, **kwargs):
        raise AssertionError("a finished sample was optimized again")

    monkeypatch.setattr(schedule, "cram_batch", no_work)
    (again,) = evaluate(tiny_model_dir, TASKS, s)
    assert again["results"] == first["results"]


def test_resume_after_interruption_equals_an_uninterrupted_run(
        tiny_model_dir, word_corpus, tmp_path):
    s = settings(tmp_path, word_corpus, batch_size=1)
    with pytest.raises(KeyboardInterrupt):
        evaluate(tiny_model_dir, TASKS, s, Recorder(stop_after=3))
    rec = Recorder()
    rec.shows_plan = True
    (resumed,) = evaluate(tiny_model_dir, TASKS, s, rec)
    assert len(rec.done) == 1  # only the sample that was not finished
    # the plan counts what is left, not what the interrupted run already recorded
    assert "at most 1 run of up to 15 steps (3 recorded before, not run again)" in \
        rec.planned[1]
    (clean,) = evaluate(tiny_model_dir, TASKS, settings(tmp_path / "clean", word_corpus,
                                                        batch_size=1))
    assert resumed["results"] == clean["results"]
    keys = [r["key"] for r in records_of(resumed)]
    assert len(keys) == len(set(keys)) == 4


def test_sweep_stops_below_the_floor_and_says_why(tiny_model_dir, word_corpus, tmp_path):
    s = settings(tmp_path, word_corpus, lengths=(4, 8, 16), stop_below=1.0, max_steps=2)
    (res,) = evaluate(tiny_model_dir, ["capacity_pg19"], s)
    sweep = res["sweeps"][0]
    assert sweep["stopped"]["length"] == 4 and "below the floor" in sweep["stopped"]["reason"]
    assert list(sweep["mean_accuracy"]) == ["4"]


def test_lengths_beyond_the_context_are_dropped_with_a_warning(
        tiny_model_dir, word_corpus, tmp_path):
    rec = Recorder()
    (res,) = evaluate(tiny_model_dir, ["capacity_pg19"],
                      settings(tmp_path, word_corpus, lengths=(4, 300)), rec)
    assert any("context of 256" in w for w in rec.warnings)
    assert list(res["sweeps"][0]["samples"]) == ["4", "255"]  # 255: the longest that fits


def test_texts_shorter_than_a_length_are_counted_not_run(tiny_model_dir, tmp_path):
    (tmp_path / "short.txt").write_text("The man said to her. She was at the door.")
    (res,) = evaluate(tiny_model_dir, ["capacity_pg19"],
                      settings(tmp_path, str(tmp_path / "short.txt"), lengths=(2, 64)),
                      Recorder())
    sweep = res["sweeps"][0]
    assert sweep["samples"] == {"2": 1, "64": 0} and sweep["texts_too_short"] == {"64": 1}
    assert sweep["stopped"] == {"length": 64, "reason": "no text is that long"}


def test_unwritable_output_fails_before_any_work(tiny_model_dir, word_corpus, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CramError, match="cannot write to the output path"):
        evaluate("no-such-model-is-loaded", TASKS,
                 settings(tmp_path, word_corpus, output_path=str(blocker / "out")))


def test_unknown_names_fail_with_the_closest(word_corpus, tmp_path):
    with pytest.raises(CramError, match="did you mean capacity_pg19"):
        evaluate("x", ["capacity_pg91"], settings(tmp_path, word_corpus))
    with pytest.raises(CramError, match=r"--lengths is \(0, 8\): expected positive integers"):
        evaluate("x", TASKS, settings(tmp_path, word_corpus, lengths=(0, 8)))


def test_damaged_record_line_is_skipped_and_the_rest_kept(tmp_path):
    path = tmp_path / "records.jsonl"
    store = RecordStore(path)
    store.append(record("a"))
    with open(path, "a") as f:
        f.write('{"key": "b", "v"')  # killed mid-write
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = RecordStore(path)
    assert "a" in store and "b" not in store and caught
    store.append(record("c"))  # starts on a fresh line
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert [r["key"] for r in read_records(path)] == ["a", "c"]


def _append_many(path, writer, n):
    store = RecordStore(path)
    for i in range(n):
        store.append(record(f"{writer}-{i}", payload="x" * 5000))


def test_two_writers_never_interleave_records(tmp_path):
    path = tmp_path / "records.jsonl"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(path, w, 200)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    lines = path.read_text().splitlines()
    assert len(lines) == 400
    assert {json.loads(line)["key"] for line in lines} == {
        f"{w}-{i}" for w in range(2) for i in range(200)}
