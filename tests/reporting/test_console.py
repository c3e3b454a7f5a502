"""The run's progress line: the time it says is left falls steadily through a length's
batches, texts that converge early included, instead of jumping."""

import io
from types import SimpleNamespace

import torch

from cram_harness.reporting import console


def test_time_left_falls_steadily_across_batches(monkeypatch):
    from rich.console import Console

    clock = [0.0]
    monkeypatch.setattr(console.time, "monotonic", lambda: clock[0])
    display = console.RichDisplay(Console(file=io.StringIO(), width=80))
    display.length_start("gutenberg L=8", 8, todo=6, cached=0, max_steps=100)
    lefts = []
    for batch, early in ((4, {30: 2, 60: 1}), (2, {})):  # 6 texts: a batch of 4, one of 2
        active = batch
        for step in range(1, 101):
            clock[0] += 1.0  # a second a step
            for _ in range(early.get(step, 0)):
                active -= 1
                display.sample_done({})
            display.step(SimpleNamespace(step=step, active=active, finished=batch - active,
                                         total=batch, best_accuracy=0.5,
                                         best_accuracies=torch.zeros(1)))
            lefts.append(display.progress.tasks[0].fields["left"])
        for _ in range(active):
            display.sample_done({})
    assert lefts[0] == 199  # every step still allowed: 99 of the first batch, 100 of the next
    assert all(b <= a for a, b in zip(lefts, lefts[1:]))  # never up, across the batches too
    assert lefts[100] == 99 and lefts[-1] == 0
    display.close()


def test_the_rich_display_has_every_hook_the_evaluator_calls():
    """The evaluator calls harness/display.py's hooks on whatever display it is given."""
    import inspect

    from cram_harness.harness.display import Display

    hooks = {name for name, _ in inspect.getmembers(Display, inspect.isfunction)}
    assert hooks <= {name for name, _ in inspect.getmembers(console.RichDisplay,
                                                            inspect.isfunction)}
    assert console.RichDisplay.shows_plan
