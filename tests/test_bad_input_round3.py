"""Bad input, round three (issue #22): no command destroys what a user already has, and every
limit is named before any model work. Each case was exit 0 over lost data, or a raw exception
(IndexError, SafetensorError, MarkupError) before. The rule for all of them: one line that says
what was wrong and what to do, exit code 2, and every file that existed before is
byte-for-byte the same after."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import record
from tests.test_bad_input import write_results
from tests.test_reliability import RUN, assert_one_error_line, run_cli


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` by its path, with its bytes: compared before and after."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


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


# --- data loss ------------------------------------------------------------------------------


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


@pytest.fixture
def lora_folder(tmp_path) -> Path:
    """A LoRA training folder, as PEFT's trainer leaves it."""
    lora = tmp_path / "lora"
    (lora / "checkpoint-500").mkdir(parents=True)
    (lora / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8}))
    (lora / "adapter_model.safetensors").write_bytes(b"lora weights")
    (lora / "notes.md").write_text("lr sweep, run 3\n")
    (lora / "checkpoint-500" / "optimizer.pt").write_bytes(b"state")
    return lora


def test_export_never_deletes_another_adapter(lora_folder, tiny_model_dir, tmp_path, capsys):
    (tmp_path / "text.txt").write_text("she was at the")
    before = snapshot(lora_folder)
    code, _, err = run_cli(["export", "--model", tiny_model_dir, "--text",
                            str(tmp_path / "text.txt"), "--out", str(lora_folder),
                            "--max-steps", "2"], capsys)
    assert_one_error_line(code, err, str(lora_folder))
    assert snapshot(lora_folder) == before


def test_export_replaces_its_own_adapter_and_no_other(tiny_model_dir, tmp_path, capsys):
    (tmp_path / "text.txt").write_text("she was at the")
    argv = ["export", "--model", tiny_model_dir, "--text", str(tmp_path / "text.txt"), "--out",
            str(tmp_path / "adapter"), "--max-steps", "2"]
    for _ in range(2):  # a cram adapter it made itself is replaced whole
        code, _, err = run_cli(argv, capsys)
        assert code == 0, err
    (tmp_path / "adapter" / "my-notes.txt").write_text("keep me")  # now it holds more
    before = snapshot(tmp_path / "adapter")
    code, _, err = run_cli(argv, capsys)
    assert "my-notes.txt" in assert_one_error_line(code, err, str(tmp_path / "adapter"))
    assert snapshot(tmp_path / "adapter") == before


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
