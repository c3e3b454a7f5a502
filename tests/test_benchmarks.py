"""The benchmark scripts run end to end (on a tiny model, a few steps: their numbers come
from real models, see benchmarks/RESULTS.md) and print what they measured."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
ENV = {**os.environ, "COLUMNS": "200", "HF_HUB_OFFLINE": "1"}


def bench(script: str, *args: str, cwd: Path) -> str:
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True,
                          text=True, env=ENV, cwd=cwd, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


NOVELS = pytest.mark.skipif(not (BENCH.parents[1] / "shared" / "data" / "gutenberg").is_dir(),
                            reason="the shared novels are not beside the checkout")


@NOVELS
def test_bench_capacity_compares_the_three_protocols(tiny_model_dir, tmp_path):
    out = bench("bench_capacity.py", "--model", tiny_model_dir, "--texts", "2", "--lengths",
                "2,4", "--max-steps", "5", "--device", "cpu", "--json", str(tmp_path / "r.json"),
                cwd=tmp_path)
    rows = json.loads((tmp_path / "r.json").read_text())
    assert set(rows) == {"paper", "fast", "max"}
    assert rows["max"]["engine"]["min_margin"] == 0.5 and rows["paper"]["engine"]["lr"] == 0.01
    assert "of the paper protocol's optimizer steps" in out


@pytest.mark.slow  # a whole process run, ~15 s or more: tox runs it, `pytest` alone not
def test_bench_table1_writes_rows_and_a_leaderboard(tiny_model_dir, tmp_path):
    out = bench("bench_table1.py", "--models", tiny_model_dir, "--texts", "2", "--lengths",
                "2,4", "--max-steps", "5", "--device", "cpu", "--output", str(tmp_path / "t1"),
                cwd=tmp_path)
    leaderboard, definitions = out.split("| model | dataset | full vectors")
    rows = [line.split(" | ")[:2] for line in leaderboard.splitlines() if line.startswith("| ")]
    assert rows[0] == ["| model", "dataset"]
    # one row per dataset: random words the paper's way and on the grid, side by side
    assert sorted(r[1] for r in rows[1:]) == ["gutenberg", "random", "random_grid"]
    assert "paper: (base - min CE) x L" in definitions


def test_bench_gpu_runs_on_tiny_shapes_on_the_cpu(tiny_model_dir, tmp_path):
    out = bench("bench_gpu.py", "--tiny", "--model", tiny_model_dir, "--texts", "2",
                "--tokens", "6", "--max-steps", "5", "--json", str(tmp_path / "g.json"),
                cwd=tmp_path)
    payload = json.loads((tmp_path / "g.json").read_text())
    (row,) = payload["rows"]
    assert row["shape"] == "tiny" and row["batch"] >= 1
    assert row["ours_sample_steps_s"] > 0 and row["paper_sample_steps_s"] > 0
    assert row["decode_batch_s"] > 0 and row["decode_one_s"] > 0
    assert len(payload["agreement"]["pairs"]) == 2
    assert "identical steps, accuracy and greedy result" in out


@pytest.mark.slow  # a whole process run, ~15 s or more: tox runs it, `pytest` alone not
def test_bench_step_memory_measures_an_architecture(tmp_path):
    out = bench("bench_step_memory.py", "--tiny", "--tokens", "16", "--archs", "mamba2",
                "--json", str(tmp_path / "rows.json"), cwd=tmp_path)
    assert "measured" in out and "estimate" in out
    (row,) = json.loads((tmp_path / "rows.json").read_text())
    assert row["arch"] == "mamba2" and row["estimate_mib"] > 0


def test_bench_sweep_compares_fixed_batches_with_the_queue(tmp_path):
    out = bench("bench_sweep.py", "--tiny", "--texts", "5", "--tokens", "8", "--batch-size",
                "2", "--max-steps", "6", "--drawn", "--json", str(tmp_path / "s.json"),
                cwd=tmp_path)
    (row,) = json.loads((tmp_path / "s.json").read_text()).values()
    chunks, queue = row["ways"]["chunks"], row["ways"]["queue"]
    # the tiny model holds no text: each runs to the cap, the same steps both ways (which
    # way fills the batch better is tests/engine/test_loop.py's, with texts that converge)
    assert chunks["text_steps"] == queue["text_steps"] == 5 * 6
    assert chunks["occupancy"] == queue["occupancy"] == 30 / (3 * 6 * 2)
    assert queue["padded_share"] < chunks["padded_share"]  # the queue waits longest first
    assert "texts have the same steps" in out
