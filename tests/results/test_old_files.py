"""Files an earlier cram-harness wrote (tests/results/old_files, made at e271594) still read,
resume and render as they did: a rerun of their command finds every record and writes the
same results; the leaderboard, `show` and the report's tables show them as that version
did."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cram_harness import metrics
from tests.helpers import run_cli
from tests.tiny import make_tiny_model, make_word_tokenizer

OLD = Path(__file__).parent / "old_files"
COMMON = ["--model", "tiny", "--data-files", "books", "--limit", "2", "--lengths", "4,8",
          "--max-steps", "20", "--lr", "0.3", "--device", "cpu", "--batch-size", "2"]
RUNS = {
    "paper": ["--tasks", "cram_pg19,mem_scaling_pg19,capacity_estimate_pg19",
              "--mem-tokens", "1,2"],
    "fast": ["--tasks", "capacity_pg19,token_gain_pg19,info_gain_pg19", "--protocol", "fast"],
    "analyses": ["--tasks", "similarity_pg19,interpolation_pg19"],
}
# what differs between two runs of one command: the clock, the machine, where the code is
PER_RUN = ("date", "timings", "environment", "git_hash", "lm_eval_version", "higher_is_better")


def results_file(folder: Path) -> Path:
    (path,) = sorted(folder.glob("tiny/results_*.json"))
    return path


def comparable(path: Path) -> dict:
    data = json.loads(path.read_text())
    for key in PER_RUN:
        data.pop(key)
    for config in data["configs"].values():
        config.pop("path")  # the task file, where cram-harness is installed
    return data


@pytest.fixture(scope="module")
def old_files(tmp_path_factory) -> Path:
    """The old files, in a folder of their own beside the tiny model they were made with."""
    where = tmp_path_factory.mktemp("old")
    shutil.copytree(OLD, where, dirs_exist_ok=True)
    make_tiny_model("gpt2").save_pretrained(where / "tiny")
    make_word_tokenizer().save_pretrained(where / "tiny")
    return where


@pytest.mark.parametrize("run", list(RUNS))
def test_old_records_resume_into_the_same_results(run, old_files, tmp_path, monkeypatch,
                                                  capsys):
    folder = tmp_path / run
    shutil.copytree(old_files / run, folder)
    old = results_file(folder)
    old.rename(tmp_path / old.name)
    for samples in folder.glob("tiny/samples_*.jsonl"):
        samples.unlink()
    records = (folder / "tiny" / "records.jsonl").read_bytes()
    for name in ("tiny", "books"):
        (tmp_path / name).symlink_to(old_files / name)
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli([*COMMON, *RUNS[run], "--output-path", run], capsys)
    assert code == 0, err
    assert (folder / "tiny" / "records.jsonl").read_bytes() == records  # nothing crammed again
    new = results_file(folder)
    assert comparable(new) == comparable(tmp_path / old.name)
    # only the directions changed: now the metric table's, where every one said "higher"
    directions = json.loads(new.read_text())["higher_is_better"]
    for task, values in json.loads((tmp_path / old.name).read_text())["results"].items():
        written = {k.split(",")[0] for k in values if k != "alias" and "stderr" not in k}
        assert set(directions[task]) == written


def test_old_results_render_as_they_did(old_files, monkeypatch, capsys):
    monkeypatch.chdir(old_files)
    monkeypatch.setenv("COLUMNS", "120")
    files = sorted(str(p.relative_to(old_files)) for p in old_files.glob("*/tiny/results_*.json"))
    expected = old_files / "expected"
    for fmt, name in (("markdown", "leaderboard.md"), ("csv", "leaderboard.csv")):
        code, out, err = run_cli(["leaderboard", *files, "--format", fmt], capsys)
        assert code == 0, err
        # (the expected files were captured as text: csv's \r\n read as \n)
        assert out.replace("\r\n", "\n") == (expected / name).read_text(), name
    for path in files:
        code, out, err = run_cli(["show", path], capsys)
        assert code == 0, err
        assert out == (expected / f"show_{path.split('/')[0]}.txt").read_text(), path

    from cram_harness.reporting.html import settings_html, table_html
    from cram_harness.reporting.runs import load_runs
    from cram_harness.reporting.tables import load_results

    runs = load_runs(load_results(files))
    assert table_html(runs) + "\n" + settings_html(runs) == \
        (expected / "report_tables.html").read_text()


def test_old_results_are_read_under_the_metric_tables_names(old_files):
    """Every metric an old file holds is one of the table's, under a name it knows."""
    for path in old_files.glob("*/tiny/results_*.json"):
        for values in json.loads(path.read_text())["results"].values():
            for key in values:
                name = key.split(",")[0].removesuffix("_stderr").removesuffix("_std")
                name = name.rsplit("_k", 1)[0] if name.rsplit("_k", 1)[-1].isdigit() else name
                assert key == "alias" or name in metrics.reported_names(), key
