"""Results files and what is written from them: a file of another shape or type is named and
skipped, any edit reads or is one line, and leaderboard, report and a run's output never
write over a file cram-eval did not write."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given

from tests.helpers import (
    MUTATIONS,
    RUN,
    assert_one_error_line,
    env,
    loads_or_one_line,
    model_slug,
    mutated,
    run_cli,
    snapshot,
    write_results,
)
from tests.tiny import record


@pytest.mark.parametrize("override, message", [
    ({"results": {"capacity_x": 3}}, "'results' is"),
    ({"model_name": None}, "'model_name' is missing"),
    ({"sweeps": [{"dataset": "x", "n_mem": 1, "mean_accuracy": {"eight": 1.0}}]}, "'sweeps'"),
])


@pytest.mark.parametrize("command", ["show", "leaderboard"])
def test_a_results_file_of_another_shape_is_named(override, message, command, tmp_path, capsys):
    bad = write_results(tmp_path / "r" / "m" / "results_2026-01-01T00-00-00.json", **override)
    code, _, err = run_cli([command, str(bad)], capsys)
    line = assert_one_error_line(code, err, message)
    assert str(bad) in line and "not a cram-eval results file" in line


def test_a_foreign_results_file_is_skipped_and_the_rest_read(tmp_path, capsys, recwarn):
    write_results(tmp_path / "r" / "good" / "results_2026-01-01T00-00-00.json")
    write_results(tmp_path / "r" / "bad" / "results_2026-01-01T00-00-00.json", results=[1])
    code, out, err = run_cli(["leaderboard", str(tmp_path / "r"), "--format", "markdown"],
                             capsys)
    assert code == 0, err
    assert "| tiny | x |" in out
    (warning,) = [str(w.message) for w in recwarn]
    assert "bad/results_2026-01-01T00-00-00.json" in warning and "skipped" in warning


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


@pytest.mark.parametrize("override, message", [
    ({"results": {"capacity_x": {"decoding_capacity,none": "eight"}}},
     "key 'results' -> 'capacity_x' -> 'decoding_capacity,none' is 'eight', expected a number"),
    ({"results": {"capacity_x": {"token_gain,none": [1], "token_gain_std,none": 1.0}}},
     "'token_gain,none' is [1]"),
    ({"results": {"capacity_x": {"decoding_capacity,none": True}}}, "is True"),
    ({"model_info": {"d_model": "wide"}}, "key 'model_info' -> 'd_model' is 'wide'"),
])


@pytest.mark.parametrize("command", ["show", "leaderboard", "report"])
def test_metric_values_of_the_wrong_type_name_file_and_key(override, message, command,
                                                           tmp_path, capsys):
    bad = write_results(tmp_path / "r" / "m" / "results_2026-01-01T00-00-00.json", **override)
    extra = ["-o", str(tmp_path / "site")] if command == "report" else []
    code, _, err = run_cli([command, str(bad), *extra], capsys)
    line = assert_one_error_line(code, err, message)
    assert str(bad) in line


def test_any_edit_of_a_results_file_reads_and_tabulates_or_is_one_line(tmp_path):
    from cram_harness.reporting.tables import load_results, render, rich_table, table1_rows

    original = json.loads(write_results(tmp_path / "orig.json").read_text())
    path = tmp_path / "r" / "results_2026-01-01T00-00-00.json"
    path.parent.mkdir()

    @MUTATIONS
    @given(mutated(original))
    def check(data):
        path.write_text(json.dumps(data))

        def read_and_show():
            rows = table1_rows(load_results([path]))
            render(rows, "csv"), render(rows, "markdown"), rich_table(rows)

        loads_or_one_line(read_and_show)

    check()


@pytest.fixture
def results_dir(tmp_path) -> Path:
    """A results directory as a run leaves it: records, a results file and a samples file."""
    res = tmp_path / "RES"
    model = res / "tiny"
    write_results(model / "results_2026-01-01T00-00-00.json")
    (model / "records.jsonl").write_text(json.dumps(record("k1")) + "\n")
    (model / "samples_capacity_x_2026-01-01T00-00-00.jsonl").write_text("{}\n")
    (model / "vectors").mkdir()
    (model / "vectors" / "k1.safetensors").write_bytes(b"vectors")
    return res


def test_leaderboard_output_under_a_file_is_one_line(tmp_path, capsys):
    good = write_results(tmp_path / "r" / "m" / "results_2026-01-01T00-00-00.json")
    (tmp_path / "FILE").write_text("keep me")
    for fmt in ("csv", "table"):
        code, _, err = run_cli(["leaderboard", str(good), "--format", fmt, "--output",
                                str(tmp_path / "FILE" / "x.csv")], capsys)
        assert_one_error_line(code, err, "is in the way")
    assert (tmp_path / "FILE").read_text() == "keep me"


@pytest.mark.parametrize("target", ["tiny/records.jsonl", "tiny/results_2026-01-01T00-00-00.json",
                                    "tiny/samples_capacity_x_2026-01-01T00-00-00.jsonl",
                                    "tiny/vectors/k1.safetensors", "notes.txt"])


@pytest.mark.parametrize("fmt", ["csv", "table"])
def test_leaderboard_never_writes_over_a_file_it_did_not_write(target, fmt, results_dir,
                                                                capsys):
    (results_dir / "notes.txt").write_text("my notes, not a leaderboard\n")
    before = snapshot(results_dir)
    code, _, err = run_cli(["leaderboard", str(results_dir), "--format", fmt, "--output",
                            str(results_dir / target)], capsys)
    line = assert_one_error_line(code, err, str(results_dir / target))
    assert "--output" in line
    assert snapshot(results_dir) == before


@pytest.mark.parametrize("fmt", ["csv", "markdown", "html", "table"])
def test_leaderboard_replaces_its_own_output(fmt, results_dir, tmp_path, capsys):
    out = tmp_path / f"board.{fmt}"
    for _ in range(2):  # the second writes over the first
        code, _, err = run_cli(["leaderboard", str(results_dir), "--format", fmt, "--output",
                                str(out)], capsys)
        assert code == 0, err
    code, _, err = run_cli(["leaderboard", str(results_dir), "--format", "csv", "--output",
                            str(out)], capsys)  # and another format over it
    assert code == 0, err
    assert out.read_text().startswith("model,dataset")


def test_report_never_writes_over_a_page_it_did_not_write(results_dir, tmp_path, capsys):
    out = tmp_path / "site"
    out.mkdir()
    (out / "report.html").write_text("<html>my own page</html>")
    before = snapshot(out)
    code, _, err = run_cli(["report", str(results_dir), "-o", str(out)], capsys)
    assert_one_error_line(code, err, str(out / "report.html"))
    assert snapshot(out) == before


@pytest.mark.parametrize("in_the_way", ["model-dir-a-file", "lock-a-directory",
                                        "records-a-directory"])


def test_something_in_the_way_of_the_results_is_one_line(in_the_way, tiny_model_dir, books,
                                                          tmp_path, capsys):
    out = tmp_path / "results"
    target = out / model_slug(tiny_model_dir)
    if in_the_way == "model-dir-a-file":
        out.mkdir()
        target.write_text("keep me")
    else:
        target.mkdir(parents=True)
        (target / (".lock" if in_the_way == "lock-a-directory" else "records.jsonl")).mkdir()
    argv = ["--model", tiny_model_dir, *RUN, "--data-files", books, "--output-path", str(out)]
    code, _, err = run_cli(argv, capsys)
    assert_one_error_line(code, err, "is a directory, where the records file should be"
                          if in_the_way == "records-a-directory" else "move it")
    if in_the_way == "model-dir-a-file":
        assert target.read_text() == "keep me"


def test_the_data_loss_cases_as_processes(results_dir, lora_folder, tmp_path):
    """The two commands that destroyed data, and a number export took, as real processes:
    exit 2, stdout empty, one line on stderr, every file as it was."""


    (tmp_path / "text.txt").write_text("she was at the")
    before = snapshot(tmp_path)
    cases = [
        (["leaderboard", str(results_dir), "--format", "csv", "--output",
          str(results_dir / "tiny" / "records.jsonl")], "a records file"),
        (["export", "--model", "smollm2-135m", "--text", str(tmp_path / "text.txt"), "--out",
          str(lora_folder)], "is not a cram adapter that export wrote"),
        (["export", "--model", "smollm2-135m", "--text", str(tmp_path / "text.txt"), "--out",
          str(tmp_path / "new"), "--lr", "nan"], "--lr is nan"),
    ]
    for argv, message in cases:
        proc = subprocess.run([sys.executable, "-m", "cram_harness", *argv],
                              capture_output=True, text=True, env=env(), timeout=120)
        assert proc.returncode == 2 and not proc.stdout, proc.stderr
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert snapshot(tmp_path) == before
