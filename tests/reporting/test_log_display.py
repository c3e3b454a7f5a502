"""Progress for output that is no terminal: a plain line at each finished text and at least
every `every` seconds between them, with the facts the live display draws."""

import io
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
