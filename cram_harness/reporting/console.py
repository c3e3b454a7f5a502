"""What the evaluator shows while it runs: `RichDisplay` implements its hooks
(harness/display.py) with a live progress line per length; the evaluator never prints."""

from __future__ import annotations

import time
from typing import Any

from cram_harness.results.records import SampleRecord


def clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def batch_steps_left(info: Any) -> int:
    """The batch's steps left at most: every step the running and the waiting texts are
    still allowed, a batch of them at a time."""
    return -(-info.text_steps_left // max(info.slots, 1))


class RichDisplay:
    """One line per length, within 80 columns: texts done, the batch's step, its texts' best
    accuracy, and the time left at most: every step the running and the waiting texts are
    still allowed, a batch of them at a time, at the length's mean step time so far. Texts
    that converge leave early, so it only falls; a windowed rate would jump as greedy
    decoding pauses the steps."""

    shows_plan = True

    def __init__(self, console: Any = None, stop_requested: Any = None):
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(bar_width=12),
            TextColumn("{task.fields[texts]}"), TextColumn("{task.fields[status]}"),
            _time_column(), console=self.console, transient=False,
        )
        # A signal whose KeyboardInterrupt a library swallowed (a bare `except` around an
        # import, say) still stops the run at the next thing shown.
        self._stop_requested = stop_requested or (lambda: False)
        self._started = False  # started at the first length: a failed run draws nothing
        self._bar = None
        self._done = self._total = 0
        self._last = 0.0
        self._length: dict[str, Any] = {}  # the running length's steps, batches and clock

    def _check_stop(self) -> None:
        if self._stop_requested():
            raise KeyboardInterrupt

    def model_start(self, spec: str) -> None:
        from rich.markup import escape

        self.console.print(f"[bold]model[/] {escape(spec)}: loading")

    def note(self, message: str) -> None:
        from rich.markup import escape

        self.console.print(f"[dim]{escape(message)}[/]")

    def model_loaded(self, spec: str, info: dict, seconds: float) -> None:
        from rich.markup import escape

        self._check_stop()
        self.console.print(
            f"[bold]model[/] {escape(spec)}: d_model {info['d_model']}, |V| {info['vocab_size']}, "
            f"context {info['context_length']}, Eq. 1 capacity {info['eq1_capacity']:.0f} "
            f"tokens ({seconds:.1f} s to load)", highlight=False)
        if info.get("checkpoint"):
            self.note(f"{spec} is {info['checkpoint']}")

    def plan(self, lines: list[str]) -> None:
        for line in lines:  # plain text: names and paths in it are never markup
            self.console.print(line, highlight=False, markup=False)

    def length_start(self, label: str, length: int, todo: int, cached: int,
                     max_steps: int) -> None:
        self._check_stop()
        if not self._started:
            self.progress.start()
            self._started = True
        self._done, self._total = cached, todo + cached
        self._length = {"todo": todo, "cached": cached, "max_steps": max_steps, "before": 0,
                        "step": 0, "start": time.monotonic()}
        from rich.markup import escape

        self._bar = self.progress.add_task(
            escape(label), total=max_steps if todo else 1, completed=0 if todo else 1,
            texts=self._texts(), status="from records" if not todo else "starting", left=None)

    def _texts(self) -> str:
        return f"{self._done}/{self._total} texts"

    def step(self, info: Any) -> None:
        self._check_stop()
        run = self._length
        if run and info.step < run["step"]:  # the length's next queue started (a rerun)
            run["before"] += run["step"]
        if run:
            run["step"] = info.step
        now = time.monotonic()
        if self._bar is None or now - self._last < 0.5:
            return
        self._last = now
        done = run["before"] + info.step  # the batch's steps at this length so far
        left = batch_steps_left(info)
        seconds = (now - run["start"]) / max(done, 1) * left
        self.progress.update(self._bar, completed=done, total=done + left, left=seconds,
                             status=f"step {info.step}, acc {info.best_accuracy:.2f}")

    def sample_done(self, record: SampleRecord) -> None:
        if self._bar is not None:
            self._done += 1
            self.progress.update(self._bar, texts=self._texts())

    def length_done(self, label: str, length: int, mean_accuracy: float) -> None:
        if self._bar is not None:
            (task,) = [t for t in self.progress.tasks if t.id == self._bar]
            self.progress.update(self._bar, completed=task.total,
                                 status=f"mean acc {mean_accuracy:.3f}")
            self._bar = None

    def warn(self, message: str) -> None:
        from rich.markup import escape

        self.progress.console.print(f"[yellow]warning:[/] {escape(message)}")

    def close(self) -> None:
        if self._started:
            self.progress.stop()


def _time_column() -> Any:
    """The time a length has left at most (RichDisplay.step), once there is a rate; the time
    it took, once done."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class TimeLeft(ProgressColumn):
        def render(self, task: Any) -> Text:
            if task.finished:
                return Text(f"took {clock(task.finished_time or task.elapsed or 0)}", "cyan")
            left = task.fields.get("left")
            return Text("" if left is None else f"{clock(left)} left", "cyan")

    return TimeLeft()
