"""A full disk or a fault mid-write loses nothing finished and leaves nothing half-written:
one line that says what to do, the records whole, results written whole or not at all."""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cram_harness.atomic import write_json_atomic, write_text_atomic
from cram_harness.results.records import RecordStore
from tests.helpers import (
    N_SAMPLES,
    PROPERTY,
    assert_one_error_line,
    fast_run,
    run_cli,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # in-process runs: one torch thread


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


@PROPERTY
@given(st.text(st.characters(blacklist_categories=("Cs",))))
def test_atomic_write_gives_back_exactly_what_was_written(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "results_x.json"
        path.write_text("old")
        write_text_atomic(path, text)
        assert path.read_bytes().decode("utf-8") == text
        assert [p.name for p in Path(tmp).iterdir()] == ["results_x.json"]


@pytest.mark.parametrize("number, path, advice", [
    (errno.EFBIG, "results/big.jsonl", "size limit"),
    (errno.EACCES, "/srv/results", "permission denied"),
    (errno.ENOTDIR, "a-file/results", "is a file, not a directory"),
    (errno.EROFS, "/mnt/cd/results", "read-only"),
    (errno.EIO, "results/records.jsonl", "check the path"),
])
def test_any_os_error_reaching_the_cli_is_one_line_with_its_path(
        number, path, advice, monkeypatch, capsys):
    """The one boundary: wherever an OSError comes from, the user reads the path, what
    failed and what to do, exit 2, never a traceback."""
    from cram_harness import cli

    def fails(*args, **kwargs):
        raise OSError(number, os.strerror(number), path)

    monkeypatch.setattr(cli.cli, "main", fails)
    code, _, err = run_cli(["ls", "tasks"], capsys)
    line = assert_one_error_line(code, err, f"{path}: {os.strerror(number)}")
    assert advice in line
