"""Sharded runs under torchrun on the CPU (gloo): same results as one process, and a rank
killed mid-run loses nothing that was finished."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cram_harness.results.records import read_records
from tests.tiny import write_corpus

ARGS = ["--tasks", "capacity_pg19,token_gain_pg19", "--limit", "3", "--lengths", "4,8",
        "--max-steps", "30", "--lr", "0.3", "--batch-size", "1", "--past-capacity", "0"]


def launch(model, corpus, out, nproc):
    prefix = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
              "--master_port", str(29500 + os.getpid() % 1000), "-m", "cram_harness"] \
        if nproc > 1 else [sys.executable, "-m", "cram_harness"]
    return subprocess.Popen([*prefix, "--model", model, "--data-files", corpus,
                             "--output-path", str(out), *ARGS],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def results_of(out: Path) -> dict:
    (path,) = out.glob("*/results_*.json")
    return json.loads(path.read_text())["results"]


def all_records(out: Path) -> list[dict]:
    return [r for f in sorted(out.glob("*/records*.jsonl")) for r in read_records(f)]


@pytest.fixture
def corpus(tmp_path):
    return write_corpus(tmp_path / "corpus", books=3)


@pytest.mark.slow  # a whole process run, ~15 s or more: tox runs it, `pytest` alone not
def test_two_ranks_give_the_results_of_one(tiny_model_dir, corpus, tmp_path):
    one, two = launch(tiny_model_dir, corpus, tmp_path / "one", 1), \
        launch(tiny_model_dir, corpus, tmp_path / "two", 2)
    for proc in (one, two):
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
    assert results_of(tmp_path / "one") == results_of(tmp_path / "two")
    files = sorted(p.name for p in (tmp_path / "two").glob("*/records*.jsonl"))
    assert files == ["records.jsonl", "records.rank1.jsonl"]  # each rank its own
    keys = [r["key"] for r in all_records(tmp_path / "two")]
    assert len(keys) == len(set(keys)) == 6


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@pytest.mark.slow  # a whole process run, ~15 s or more: tox runs it, `pytest` alone not
def test_a_killed_rank_loses_nothing_and_a_rerun_finishes(tiny_model_dir, corpus, tmp_path):
    out = tmp_path / "out"
    proc = launch(tiny_model_dir, corpus, out, 2)
    deadline = time.time() + 300
    while len(all_records(out)) < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    before = {r["key"] for r in all_records(out)}
    workers = _children(proc.pid)
    assert workers and proc.poll() is None
    os.kill(workers[-1], signal.SIGKILL)
    proc.communicate(timeout=300)
    assert proc.returncode != 0
    kept = {r["key"] for r in all_records(out)}
    assert before <= kept  # nothing finished was lost

    rerun = launch(tiny_model_dir, corpus, out, 2)
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err[-2000:]
    keys = [r["key"] for r in all_records(out)]
    assert len(keys) == len(set(keys)) == 6  # no duplicate, none missing

    again = launch(tiny_model_dir, corpus, out, 1)  # another number of ranks: no new work
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err[-2000:]
    assert len(all_records(out)) == 6
