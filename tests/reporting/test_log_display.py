"""Progress for output that is no terminal: a plain line at each finished text and at least
every `every` seconds between them, with the facts the live display draws."""

import io
import re
from types import SimpleNamespace

import torch

from cram_harness.reporting import log_display


def test_a_line_per_finished_text_and_one_every_so_often_between(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(log_display.time, "monotonic", lambda: clock[0])
    out = io.StringIO()
    display = log_display.LogDisplay(out, every=30.0)
    display.length_start("gutenberg L=8", 8, todo=3, cached=1, max_steps=100)
    stamps = []
    for step in range(1, 101):
        clock[0] += 1.0
        display.step(SimpleNamespace(step=step, active=3, slots=3, best_accuracy=0.5,
                                     text_steps_left=3 * (100 - step),
                                     best_accuracies=torch.zeros(1)))
        if step == 45:
            display.sample_done({"steps": 45, "best_accuracy": 1.0, "greedy_exact": True})
        stamps.append((clock[0], out.getvalue().count("\n")))
    display.length_done("gutenberg L=8", 8, 0.95)
    lines = out.getvalue().splitlines()
    assert lines[0] == "gutenberg L=8: 3 texts to cram, at most 100 steps each (1 from records)"
    assert "2/4 texts" in lines[2] and "a text done in 45 steps" in lines[2]
    assert "greedy exact" in lines[2] and "1.00 steps/s" in lines[2]
    assert lines[1].startswith("gutenberg L=8: 1/4 texts, step 30, 1.00 steps/s")
    assert "at most 0:01:10 left" in lines[1]  # 70 steps to go at a step a second
    assert lines[-1] == "gutenberg L=8: done in 0:01:40, mean best accuracy 0.950"
    # never more than `every` seconds without a line while the length runs
    said = [t for (t, n), (_, m) in zip(stamps, stamps[1:]) if m > n]
    assert max(b - a for a, b in zip([0.0] + said, said + [100.0])) <= 30.0


def test_a_run_whose_output_is_a_file_logs_each_text_and_quiet_logs_none(tiny_model_dir,
                                                                         tmp_path):
    """As a cluster job runs it: stdout and stderr to a file, no terminal."""
    import subprocess
    import sys

    from tests.tiny import word_sentences

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "book.txt").write_text(word_sentences(12))
    logs = []
    for extra in ([], ["--quiet"]):
        log = tmp_path / f"log{len(logs)}.txt"
        with open(log, "w") as out:
            proc = subprocess.run(
                [sys.executable, "-m", "cram_harness", "--model", tiny_model_dir, "--tasks",
                 "capacity_pg19", "--limit", "2", "--lengths", "4", "--max-steps", "10",
                 "--lr", "0.3", "--data-files", str(corpus), "--output-path",
                 str(tmp_path / f"results{len(logs)}"), *extra],
                stdout=out, stderr=subprocess.STDOUT, timeout=300)
        assert proc.returncode == 0, log.read_text()
        logs.append(log.read_text())
    shown, quiet = logs
    started = re.search(r"L=4: (\d) texts? to cram, at most 10 steps each", shown)
    assert started, shown
    done = [line for line in shown.splitlines() if "a text done in" in line]
    assert len(done) == int(started[1]) and "steps/s" in done[-1], shown
    assert "\x1b[" not in shown  # plain lines, no terminal codes
    assert "a text done in" not in quiet and "texts to cram" not in quiet
    assert "Table 1" in quiet  # the results are still said


def test_export_shows_its_progress_in_a_log(tiny_model_dir, tmp_path):
    from tests.helpers import cram_eval

    (tmp_path / "text.txt").write_text("she was at the door")
    proc = cram_eval("export", "--model", tiny_model_dir, "--text", str(tmp_path / "text.txt"),
                     "--out", str(tmp_path / "adapter"), "--max-steps", "5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("forecast:") and sum("forecast:" in x for x in lines) == 1
    assert any("1 text to cram, at most 5 steps each" in x for x in lines), proc.stderr
    assert "mean best accuracy" in lines[-1]
