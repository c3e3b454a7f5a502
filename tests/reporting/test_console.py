"""The run's progress line: the time it says is left falls steadily through a length's
queue of texts, texts that converge early and texts that take their slots included, instead
of jumping."""

import io
from types import SimpleNamespace

import torch

from cram_harness.reporting import console


def test_time_left_falls_steadily_through_the_queue(monkeypatch):
    from rich.console import Console

    clock = [0.0]
    monkeypatch.setattr(console.time, "monotonic", lambda: clock[0])
    display = console.RichDisplay(Console(file=io.StringIO(), width=80))
    display.length_start("gutenberg L=8", 8, todo=6, cached=0, max_steps=100)
    # 6 texts through 4 slots: two converge early (their own step 30 and 60) and the two
    # waiting ones take their places
    converges_at = [30, 60, 100, 100, 100, 100]
    waiting, running, steps = [4, 5], [0, 1, 2, 3], [0] * 6
    lefts, step = [], 0
    while running:
        step += 1
        clock[0] += 1.0  # a second a step
        for i in running:
            steps[i] += 1
        for i in [i for i in running if steps[i] == converges_at[i]]:
            running.remove(i)
            display.sample_done({})
        while waiting and len(running) < 4:
            running.append(waiting.pop(0))
        left = sum(100 - steps[i] for i in running) + 100 * len(waiting)
        display.step(SimpleNamespace(step=step, active=len(running), slots=4,
                                     text_steps_left=left, best_accuracy=0.5,
                                     best_accuracies=torch.zeros(1)))
        lefts.append(display.progress.tasks[0].fields["left"])
    assert lefts[0] == 149  # the 596 steps left of 6 texts (4 took one), 4 at a time
    assert all(b <= a for a, b in zip(lefts, lefts[1:]))  # never up
    assert lefts[-1] == 0 and step == 160
    display.close()


def test_the_rich_display_has_every_hook_the_evaluator_calls():
    """The evaluator calls harness/display.py's hooks on whatever display it is given."""
    import inspect

    from cram_harness.harness.display import Display

    hooks = {name for name, _ in inspect.getmembers(Display, inspect.isfunction)}
    assert hooks <= {name for name, _ in inspect.getmembers(console.RichDisplay,
                                                            inspect.isfunction)}
    assert console.RichDisplay.shows_plan
