"""Reliability under bad input, interruption, concurrency and numerical or disk faults.

What must hold (docs/reliability.md): nothing finished is lost, nothing is half-written, every error
is one clear line (`error: ...`, exit code 2, no traceback unless --debug), and nothing executes
code found in a results file, a task YAML, an adapter or a dataset.

Runs stay small: a tiny GPT-2 (d=64, context 256), three short books, lengths 4 and 8, at most 40
steps. Processes get one thread each (OMP_NUM_THREADS=1): on a shared 2-core machine two threads per
process make a 0.2 s sample take 10 s. docs/reliability.md lists these tests."""

from __future__ import annotations

import errno
import json
import os
import pickle
import random
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cram_harness.atomic import write_json_atomic
from cram_harness.errors import CramError
from cram_harness.harness.evaluator import RunSettings
from cram_harness.results.records import RecordStore
from tests.conftest import word_sentences
from tests.helpers import (
    RUN,
    Proc,
    assert_one_error_line,
    env,
    flat,
    line_count,
    run_cli,
    whole_records,
)

N_SAMPLES = 6
# Sections of a results file that describe what was measured (not when, where or how fast).
MEASURED = ("results", "groups", "group_subtasks", "configs", "versions", "n-samples",
            "higher_is_better", "model_info", "sweeps", "analyses")


# --- helpers --------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """In-process runs: one torch thread, as the processes get (see the module docstring)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def measured(results_file: Path) -> dict:
    data = json.loads(results_file.read_text())
    config = {k: v for k, v in data["config"].items() if k != "output_path"}
    return {**{k: data[k] for k in MEASURED}, "config": config}


def without_timing(records: list[dict]) -> dict[str, dict]:
    return {r["key"]: {k: v for k, v in r.items() if k != "seconds"} for r in records}


def assert_nothing_half_written(model_dir: Path) -> None:
    """Every results and samples file parses whole; no temp file is left behind."""
    for path in model_dir.rglob("*"):
        if path.name.startswith("."):
            assert path.name.startswith(".lock"), f"temp file left behind: {path}"
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".jsonl":
            if path.stat().st_size:
                whole_records(path)


def assert_interrupted(proc: Proc) -> None:
    code = proc.wait()
    err = proc.stderr()
    assert code == 130, err
    lines = [line for line in err.splitlines() if line.startswith("interrupted")]
    assert lines == ["interrupted: every finished sample is saved; rerun the same command to "
                     "resume"], err
    assert "Traceback" not in err and not any(
        line.startswith("error") for line in err.splitlines()), err


# --- interruption and concurrency: the real CLI as processes ----------------------------------


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


# --- in-process faults: disk full, a kill mid-write, atomic results ---------------------------


def fast_run(tiny_model_dir: str, books: str, out: Path, *extra: str) -> list[str]:
    return ["--model", tiny_model_dir, "--tasks", "capacity_pg19", "--limit", "3", "--lengths",
            "4,8", "--max-steps", "5", "--lr", "0.3", "--batch-size", "1", "--past-capacity", "0",
            "--device", "cpu", "--data-files", books, "--output-path", str(out), *extra]


def full_disk_at(monkeypatch, n: int, partial: bool = True) -> None:
    """The n-th record append fails with ENOSPC, after writing half its line (a short write)."""
    real = RecordStore.append
    calls = []

    def append(self, record):
        calls.append(record["key"])
        if len(calls) == n:
            if partial:
                line = json.dumps(record.to_json(), sort_keys=True) + "\n"
                with open(self.path, "ab") as f:
                    f.write(line[: len(line) // 2].encode())
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
        return real(self, record)

    monkeypatch.setattr(RecordStore, "append", append)


def test_full_disk_mid_run_is_one_line_and_loses_nothing(
        tiny_model_dir, books, tmp_path, monkeypatch, capsys):
    argv = fast_run(tiny_model_dir, books, tmp_path)
    full_disk_at(monkeypatch, 3)
    code, out, err = run_cli(argv, capsys)
    assert code != 0
    assert_one_error_line(code, err, "the disk is full", exit_code=2)
    (records,) = tmp_path.glob("*/records.jsonl")
    before = records.read_bytes()
    assert before.count(b"\n") == 2 and not before.endswith(b"\n")  # 2 whole + half a line
    assert not list(records.parent.glob("results_*.json"))

    monkeypatch.undo()  # space again: the same command resumes
    with pytest.warns(UserWarning, match="incomplete last line skipped"):
        code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    after = records.read_bytes()
    assert after.startswith(before)  # nothing already written was lost or rewritten
    lines = after.decode().splitlines()
    assert len(lines) == N_SAMPLES + 1  # the damaged line stays, skipped
    good = []
    for line in lines:
        try:
            good.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    assert len(good) == len({r["key"] for r in good}) == N_SAMPLES
    assert_nothing_half_written_except_records(records.parent)


def assert_nothing_half_written_except_records(model_dir: Path) -> None:
    for path in model_dir.iterdir():
        assert not path.name.startswith(".") or path.name.startswith(".lock"), path
        if path.name.startswith("results_"):
            json.loads(path.read_text())


def test_full_disk_says_what_to_do_and_exits_2(tiny_model_dir, books, tmp_path, monkeypatch,
                                               capsys):
    full_disk_at(monkeypatch, 1, partial=False)
    code, out, err = run_cli(fast_run(tiny_model_dir, books, tmp_path), capsys)
    line = assert_one_error_line(code, err, "error:", exit_code=2)
    assert "resume" in line and "--debug" not in line


def test_debug_shows_the_traceback_of_an_unexpected_fault(tiny_model_dir, books, tmp_path,
                                                          monkeypatch, capsys):
    full_disk_at(monkeypatch, 1, partial=False)
    with pytest.raises(OSError, match="No space left on device"):
        run_cli([*fast_run(tiny_model_dir, books, tmp_path), "--debug"], capsys)


@pytest.mark.parametrize("fault", [OSError(errno.ENOSPC, "No space left on device"),
                                   KeyboardInterrupt()], ids=["ENOSPC", "interrupt"])
def test_results_write_is_atomic(tmp_path, monkeypatch, fault):
    path = tmp_path / "results_x.json"
    write_json_atomic(path, {"results": {"old": 1}})
    real_fsync, seen = os.fsync, []

    def failing_fsync(fd):
        temps = [p for p in tmp_path.iterdir() if p.name.startswith(".results_x.json.")]
        seen.append([p.stat().st_size for p in temps])  # the temp file exists, written
        raise fault

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(type(fault)):
        write_json_atomic(path, {"results": {"new": 2 * ["x" * 10000]}})
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert seen and seen[0] and seen[0][0] > 0
    assert json.loads(path.read_text()) == {"results": {"old": 1}}  # the previous file intact
    assert [p.name for p in tmp_path.iterdir()] == ["results_x.json"]  # no temp file left


def test_atomic_files_get_the_usual_permissions(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    write_json_atomic(tmp_path / "results_x.json", {"results": {}})
    (tmp_path / "plain.json").write_text("{}")
    mode = stat.S_IMODE((tmp_path / "results_x.json").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "plain.json").stat().st_mode) == 0o666 & ~umask


# --- bad input: one line, exit code 2, no traceback -------------------------------------------


def data_file(name: str, content: bytes):
    def build(tmp: Path) -> list[str]:
        (tmp / name).write_bytes(content)
        return ["--data-files", str(tmp / name)]

    return build


def task_yaml(text: str, task: str = "mine"):
    def build(tmp: Path) -> list[str]:
        (tmp / "tasks").mkdir()
        (tmp / "tasks" / "mine.yaml").write_text(text)
        return ["--include-path", str(tmp / "tasks"), "--tasks", task]

    return build


def flags(*args: str):
    return lambda tmp: list(args)


GOOD_TASK = "task: mine\nkind: capacity\ndataset: d\nsource: {kind: random}\nlengths: [8]\n"
PWN = "!!python/object/apply:os.system [\"touch {marker}\"]"
GUTENBERG_ONLY = (b"The Project Gutenberg eBook of Nothing\n*** START OF THE PROJECT GUTENBERG "
                  b"EBOOK NOTHING ***\n\n*** END OF THE PROJECT GUTENBERG EBOOK NOTHING ***\n"
                  b"Project Gutenberg License.\n")

# (id, how to build the arguments, the words the one error line must hold). These fail before
# a model is loaded; the run arguments default to a good task on good data.
BEFORE_THE_MODEL = [
    ("empty-txt", data_file("empty.txt", b""), "is empty or only whitespace"),
    ("whitespace-txt", data_file("blank.txt", b" \n\t\r\n  "), "is empty or only whitespace"),
    ("binary-txt", data_file("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
     "is a binary file"),
    ("latin1-txt", data_file("latin1.txt", "Caf\u00e9 au lait.".encode("latin-1")),
     "is not UTF-8"),
    ("utf16-txt", data_file("utf16.txt", "A book.".encode("utf-16")), "binary file"),
    ("jsonl-without-text", data_file("rows.jsonl", b'{"story": "A b."}\n'),
     "has no column 'text'; its columns are: story"),
    ("csv-without-text", data_file("rows.csv", b"story,n\nA b.,1\n"),
     "has no column 'text'; its columns are: story, n"),
    ("jsonl-row-not-object", data_file("rows.jsonl", b"[1, 2]\n"), "is not a JSON object"),
    ("jsonl-text-not-string", data_file("rows.jsonl", b'{"text": 5}\n'), "'text' is not text"),
    ("jsonl-broken", data_file("rows.jsonl", b'{"text": \n{"text": "A."}\n'), "not valid JSON"),
    ("parquet-broken", data_file("rows.parquet", b"PAR1 not really"), "not a readable parquet"),
    ("unsupported-extension", data_file("notes.md", b"Some notes."), "unsupported extension"),
    ("gutenberg-boilerplate-only", data_file("boilerplate.txt", GUTENBERG_ONLY),
     "only Project Gutenberg boilerplate"),
    ("missing-data-path", flags("--data-files", "/no/such/books/*.txt"), "matches no"),
    ("lengths-zero", flags("--lengths", "0,8"), "--lengths is (0, 8): expected positive integers"),
    ("lengths-negative", flags("--lengths=-4,8"), "--lengths is (-4, 8): expected positive"),
    ("lengths-empty", flags("--lengths", ","), "--lengths is (): expected positive integers"),
    ("lengths-not-integer", flags("--lengths", "8.5"), "comma-separated integers"),
    ("mem-tokens-zero", flags("--mem-tokens", "0"), "--mem-tokens is (0,): expected positive"),
    ("mem-tokens-negative", flags("--mem-tokens=-1"), "--mem-tokens is (-1,): expected positive"),
    ("limit-zero", flags("--limit", "0"), "--limit takes a whole number of texts or a fraction"),
    ("batch-size-zero", flags("--batch-size", "0"), "--batch-size takes a positive integer"),
    ("batch-size-word", flags("--batch-size", "many"), "--batch-size takes a positive integer"),
    ("temperature-zero", flags("--temperature", "0"), "--temperature is 0.0: expected a finite"),
    ("lr-negative", flags("--lr=-0.1"), "--lr is -0.1: expected a finite number > 0"),
    ("subspace-negative", flags("--subspace=-2"), "--subspace is -2: expected a whole number"),
    ("unknown-task", flags("--tasks", "capacity_pg20"), "did you mean capacity_pg19"),
    ("unknown-data-source", task_yaml(GOOD_TASK.replace("random", "randm")),
     "unknown data source 'randm': did you mean random"),
    ("data-source-bad-option", task_yaml(GOOD_TASK.replace("{kind: random}",
                                                           "{kind: random, words: 3}")),
     "data source 'random' has no option 'words'"),
    ("yaml-syntax", task_yaml("task: mine\nkind: capacity\n  dataset: [d\n"), "not valid YAML"),
    ("yaml-lengths-string", task_yaml(GOOD_TASK.replace("[8]", "eight")),
     "'lengths' must be a non-empty list of positive integers"),
    ("yaml-lengths-negative", task_yaml(GOOD_TASK.replace("[8]", "[8, -16]")),
     "'lengths' must be a non-empty list of positive integers"),
    ("yaml-unknown-kind", task_yaml(GOOD_TASK.replace("capacity", "capacty")),
     "key 'kind' is 'capacty'"),
    ("yaml-unknown-key", task_yaml(GOOD_TASK + "lenghts: [8]\n"), "unknown key 'lenghts'"),
    ("yaml-not-a-mapping", task_yaml("- capacity\n- pg19\n"), "must hold a mapping"),
    ("yaml-group-includes-itself", task_yaml("group: mine\ntasks: [mine]\n"),
     "group 'mine' includes itself"),
    ("yaml-duplicate-task-name", task_yaml(GOOD_TASK.replace("mine", "capacity_pg19")),
     "task name 'capacity_pg19' is already defined"),
    ("output-path-under-a-file", lambda tmp: ["--output-path", str(_file(tmp) / "results")],
     "cannot write to the output path"),
    ("output-path-is-a-file", lambda tmp: ["--output-path", str(_file(tmp))],
     "cannot write to the output path"),
]


def _file(tmp: Path) -> Path:
    (tmp / "a-file").write_text("not a directory")
    return tmp / "a-file"


def run_args(tmp: Path, model: str, extra: list[str]) -> list[str]:
    """A good small run, with `extra` overriding its flags (click keeps the last value)."""
    (tmp / "book.txt").write_text(word_sentences(12))
    # --data-files would replace a task's own source: left out when a task YAML is given.
    data = [] if "--include-path" in extra else ["--data-files", str(tmp / "book.txt")]
    return ["--model", model, "--tasks", "capacity_pg19", "--limit", "1", "--lengths", "4",
            "--max-steps", "2", "--device", "cpu", *data, "--output-path", str(tmp / "out"),
            *extra]


@pytest.mark.parametrize("build, message", [c[1:] for c in BEFORE_THE_MODEL],
                         ids=[c[0] for c in BEFORE_THE_MODEL])
def test_bad_input_before_the_model_is_one_line(build, message, tmp_path, capsys,
                                                monkeypatch):
    def never_load(*args, **kwargs):
        raise AssertionError("a model was loaded for a run that cannot succeed")

    monkeypatch.setattr("cram_harness.models.load.load_model", never_load)
    argv = run_args(tmp_path, "no-model-is-loaded", build(tmp_path))
    code, out, err = run_cli(argv, capsys)
    assert_one_error_line(code, err, message)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.json*"))


# A few of the same as real processes: what a user sees, interpreter start included.
@pytest.mark.parametrize("case", ["binary-txt", "lengths-zero", "yaml-syntax",
                                  "output-path-under-a-file"])
def test_bad_input_as_a_process_is_one_line(case, tmp_path):
    (build, message) = {c[0]: c[1:] for c in BEFORE_THE_MODEL}[case]
    argv = run_args(tmp_path, "no-model-is-loaded", build(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "cram_harness", *argv], capture_output=True,
                          text=True, env=env(), timeout=60)
    assert proc.returncode == 2 and not proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def _model_dir_without_config(tmp: Path) -> str:
    (tmp / "empty-model").mkdir()
    return str(tmp / "empty-model")


def _fake_gguf(tmp: Path) -> str:
    (tmp / "model.gguf").write_bytes(b"PK\x03\x04 a zip, not a gguf")
    return f"gguf:{tmp / 'model.gguf'}"


# Bad model specs and settings found when the model loads.
AT_THE_MODEL = [
    ("unknown-alias", lambda tmp: "gemma3-27m", [], "did you mean 'gemma3-270m'"),
    ("unknown-spec", lambda tmp: "no/such/model", [], "unknown model 'no/such/model'"),
    ("offline-hub", lambda tmp: "hf:org/x", [], "hf download org/x --local-dir DIR"),
    ("offline-hub-revision", lambda tmp: "hf:org/x@v2", [], "could not load hf:org/x"),
    ("missing-gguf", lambda tmp: f"gguf:{tmp / 'none.gguf'}", [], "does not exist"),
    ("not-a-gguf", _fake_gguf, [], "not a GGUF file"),
    ("directory-without-config", _model_dir_without_config, [], "has no config.json"),
    ("unknown-dtype", None, ["--dtype", "fp8"], "unknown dtype 'fp8'"),
    ("subspace-too-wide", None, ["--subspace", "65"], "is more than"),
]


@pytest.mark.parametrize("model, extra, message", [c[1:] for c in AT_THE_MODEL],
                         ids=[c[0] for c in AT_THE_MODEL])
def test_bad_model_is_one_line(model, extra, message, tiny_model_dir, tmp_path, capsys):
    spec = tiny_model_dir if model is None else model(tmp_path)
    code, out, err = run_cli(run_args(tmp_path, spec, extra), capsys)
    assert_one_error_line(code, err, message)
    assert not list((tmp_path / "out").rglob("records.jsonl"))


def test_text_shorter_than_a_length_is_counted_not_an_error(tiny_model_dir, books, tmp_path,
                                                            capsys):
    argv = fast_run(tiny_model_dir, books, tmp_path)
    argv[argv.index("4,8")] = "4,64"  # the texts have about 54 tokens
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    (results,) = tmp_path.glob("*/results_*.json")
    (sweep,) = json.loads(results.read_text())["sweeps"]
    assert sweep["texts_too_short"] == {"64": 3} and sweep["samples"] == {"4": 3, "64": 0}
    assert "stopped at 64: no text is that long" in flat(out)
    assert "warning: pg19: no text is that long" in flat(err)


def test_a_length_above_the_context_is_dropped_with_a_warning(tiny_model_dir, books, tmp_path,
                                                              capsys):
    argv = fast_run(tiny_model_dir, books, tmp_path)
    argv[argv.index("4,8")] = "4,300"
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    # past the context, the longest length that fits (255) stands in for the rest
    assert "warning: lengths are run up to 255, not 300" in flat(err)
    assert "context of 256" in flat(err)
    (results,) = tmp_path.glob("*/results_*.json")
    (sweep,) = json.loads(results.read_text())["sweeps"]
    assert sweep["samples"] == {"4": 3, "255": 0}  # the books are shorter than that
    assert sweep["stopped"] == {"length": 255, "reason": "no text is that long"}


@pytest.fixture
def every_length_too_long(tiny_model_dir, books, tmp_path, capsys):
    argv = fast_run(tiny_model_dir, books, tmp_path)
    argv[argv.index("4,8")] = "300,400"
    code, out, err = run_cli(argv, capsys)
    return code, out, err, tmp_path


def test_every_length_above_the_context_is_a_clear_outcome(every_length_too_long):
    """Nothing can be measured: a warning names the limit, the summary says where the sweep
    stopped and why, the results file says no sample was run; no optimization is done."""
    code, out, err, out_dir = every_length_too_long
    assert code == 0, err
    assert "context of 256" in flat(err)
    assert "stopped at 255: no text is that long" in flat(out)
    (results,) = out_dir.glob("*/results_*.json")
    data = json.loads(results.read_text())
    assert data["n-samples"]["capacity_pg19"]["effective"] == 0
    assert data["results"]["capacity_pg19"]["decoding_capacity,none"] is None
    assert not list(out_dir.glob("*/records.jsonl"))


def test_context_warning_keeps_its_words(every_length_too_long):
    code, out, err, _ = every_length_too_long
    assert "1 [mem] + a longer text do not fit in the context of 256" in flat(err)


@pytest.mark.parametrize("kind, command", [
    ("task", ["--model", "x", "--tasks", "capacity_pg20"]),
    ("data source", None),
])
def test_the_command_an_error_suggests_exists(kind, command, tmp_path, capsys):
    if command is None:
        (tmp_path / "t").mkdir()
        (tmp_path / "t" / "mine.yaml").write_text(GOOD_TASK.replace("random", "nosuch"))
        command = ["--model", "x", "--tasks", "mine", "--include-path", str(tmp_path / "t")]
    code, out, err = run_cli(command, capsys)
    line = assert_one_error_line(code, err, f"unknown {kind}")
    suggested = line.split("`")[1].split()
    assert suggested[:2] == ["cram-eval", "ls"]
    code, out, err = run_cli(suggested[1:], capsys)
    assert code == 0 and out, err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_output_directory_is_one_line(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, out, err = run_cli(run_args(tmp_path, "x", ["--output-path", str(locked)]), capsys)
    finally:
        locked.chmod(0o700)
    assert_one_error_line(code, err, "cannot write to the output path")


# --- adapters given to `cram-eval decode` -----------------------------------------------------


class WritesAMarker:
    """A pickle that creates a file when it is loaded: proof that it was (never) loaded."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def adapter(tiny_model_dir, tmp_path_factory) -> Path:
    import cram_harness
    from cram_harness.models.load import load_model

    model, tok = load_model(tiny_model_dir, device="cpu")
    (result,) = cram_harness.cram(model, "she was at the", tokenizer=tok, lr=0.3, max_steps=2)
    return result.save_adapter(tmp_path_factory.mktemp("adapter") / "adapter")


def _hidden_32(path: Path, marker: Path) -> None:
    from safetensors.torch import save_file

    save_file({"prompt_embeddings": torch.zeros(1, 32)}, str(path / "adapter_model.safetensors"))


def _other_base(path: Path, marker: Path) -> None:
    info = json.loads((path / "cram.json").read_text())
    info["base_model"] = {**info["base_model"], "model_type": "llama", "num_layers": 16}
    (path / "cram.json").write_text(json.dumps(info))


def _pickle_bin(path: Path, marker: Path) -> None:
    (path / "adapter_model.safetensors").unlink()
    (path / "adapter_model.bin").write_bytes(pickle.dumps(WritesAMarker(marker)))


def _pickle_named_safetensors(path: Path, marker: Path) -> None:
    (path / "adapter_model.safetensors").write_bytes(pickle.dumps(WritesAMarker(marker)))


def _config_not_json(path: Path, marker: Path) -> None:
    (path / "adapter_config.json").write_text("{'peft_type': PROMPT_TUNING")


def _not_from_cram_harness(path: Path, marker: Path) -> None:
    (path / "cram.json").unlink()


def _gone(path: Path, marker: Path) -> None:
    shutil.rmtree(path)


ADAPTERS = [
    ("wrong-hidden-size", _hidden_32, "this model's hidden size is 64"),
    ("another-base-model", _other_base, "made for another base model"),
    ("pickle-weights", _pickle_bin, "only pickle files (adapter_model.bin), which are never"),
    ("pickle-named-safetensors", _pickle_named_safetensors, "is damaged"),
    ("config-not-json", _config_not_json, "is not valid JSON"),
    ("foreign-prompt-tuning-adapter", _not_from_cram_harness, "has no cram.json with"),
    ("missing-directory", _gone, "does not exist"),
]


@pytest.mark.parametrize("damage, message", [c[1:] for c in ADAPTERS],
                         ids=[c[0] for c in ADAPTERS])
def test_bad_adapter_is_one_line_and_never_unpickled(damage, message, adapter, tiny_model_dir,
                                                     tmp_path, capsys, monkeypatch):
    def no_pickle(*args, **kwargs):
        raise AssertionError("torch.load (pickle) was called on an adapter")

    monkeypatch.setattr(torch, "load", no_pickle)
    path, marker = tmp_path / "adapter", tmp_path / "pwned"
    shutil.copytree(adapter, path)
    damage(path, marker)
    code, out, err = run_cli(["decode", str(path), "--model", tiny_model_dir, "--device", "cpu"],
                             capsys)
    assert_one_error_line(code, err, message)
    assert not marker.exists() and not out


# --- nothing executes code from a file ---------------------------------------------------------


def test_the_marker_pickle_does_run_when_unpickled(tmp_path):
    """The check the security tests rely on: loading WritesAMarker creates its file."""
    pickle.loads(pickle.dumps(WritesAMarker(tmp_path / "m")))
    assert (tmp_path / "m").exists()


@pytest.mark.parametrize("command", [["show", "{file}"], ["leaderboard", "{dir}"],
                                     ["report", "{dir}", "-o", "{dir}/report"]])
def test_a_results_file_that_is_not_json_is_one_line(command, tmp_path, capsys):
    # Only the one-line refusal is checked: no reader of results files could run code (they
    # are json.loads), so a "never unpickled" marker here guarded a path that does not exist.
    (tmp_path / "results").mkdir()
    bad = tmp_path / "results" / "results_2026-01-01T00-00-00.json"
    bad.write_bytes(pickle.dumps({"results": {}}))
    argv = [a.format(file=bad, dir=tmp_path / "results") for a in command]
    code, out, err = run_cli(argv, capsys)
    assert_one_error_line(code, err, "not a cram-eval results file")


@pytest.mark.parametrize("where", ["top", "source", "lengths"])
def test_task_yaml_python_tags_never_run(where, tmp_path, capsys):
    marker = tmp_path / "pwned"
    tag = PWN.format(marker=marker)
    text = {"top": tag + "\n", "source": GOOD_TASK.replace("{kind: random}", tag),
            "lengths": GOOD_TASK.replace("[8]", tag)}[where]
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "evil.yaml").write_text(text)
    code, out, err = run_cli(["ls", "tasks", "--include-path", str(tmp_path / "t")], capsys)
    line = assert_one_error_line(code, err, "evil.yaml: not valid YAML")
    assert "python/object/apply:os.system" in line
    assert not marker.exists()


def test_a_dataset_loading_script_never_runs(tmp_path):
    """A dataset repo may carry a loading script, which `datasets` runs where remote code is
    trusted (before datasets 3 it ran unless told not to). Loading one must not run it, and
    says so in one line: the script here creates a marker file at import."""
    from cram_harness.data import HFDataset

    marker = tmp_path / "pwned"
    repo = tmp_path / "books"
    repo.mkdir()
    (repo / "books.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (repo / "books.jsonl").write_text('{"text": "One. Two. Three."}\n')
    with pytest.raises(CramError, match="loading script, which is never run"):
        HFDataset(str(repo), split="train").texts(1, 0)
    assert not marker.exists()


def test_remote_code_is_off_unless_asked(tiny_model_dir, tmp_path, capsys, monkeypatch):
    import transformers

    from cram_harness.models import load as models

    assert RunSettings().trust_remote_code is False
    seen = []
    for cls in (transformers.AutoModelForCausalLM, transformers.AutoTokenizer):
        real = cls.from_pretrained

        def spy(*args, real=real, **kwargs):
            seen.append(kwargs)
            return real(*args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", spy)
    models.load_model(tiny_model_dir, device="cpu")
    assert len(seen) == 2 and all(kw.get("trust_remote_code") is False for kw in seen)

    asked = []

    def stop(spec, **kwargs):
        asked.append(kwargs["trust_remote_code"])
        raise CramError("stopped here by the test")

    monkeypatch.setattr(models, "load_model", stop)
    base = run_args(tmp_path, "hf:org/x", [])
    for extra in ([], ["--trust-remote-code"]):
        code, out, err = run_cli([*base, *extra], capsys)
        assert_one_error_line(code, err, "stopped here by the test")
    assert asked == [False, True]
