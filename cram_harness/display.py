"""What the evaluator shows while it runs. The evaluator calls these hooks and never
prints; `Display` shows nothing, `RichDisplay` draws a live progress bar."""

from __future__ import annotations

import time
from typing import Any


class Display:
    """No-op hooks; subclass and override what you want to show."""

    def model_start(self, spec: str) -> None: ...
    def model_loaded(self, spec: str, info: dict, seconds: float) -> None: ...
    def length_start(self, task: str, n_mem: int, length: int, todo: int, cached: int) -> None: ...
    def step(self, info: Any) -> None: ...
    def sample_done(self, record: dict) -> None: ...
    def length_done(self, task: str, n_mem: int, length: int, mean_accuracy: float) -> None: ...
    def warn(self, message: str) -> None: ...
    def close(self) -> None: ...


class RichDisplay(Display):
    """A progress line per length: samples done and left, the running batch's best
    accuracy and loss, and the time left estimated from the samples finished so far."""

    def __init__(self, console: Any = None, stop_requested: Any = None):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
            TextColumn("left"), TimeRemainingColumn(),
            console=self.console, transient=False,
        )
        # A signal whose KeyboardInterrupt a library swallowed (a bare `except` around an
        # import, say) still stops the run at the next thing shown.
        self._stop_requested = stop_requested or (lambda: False)
        self._started = False  # started at the first length: a failed run draws nothing
        self._bar = None
        self._last = 0.0

    def model_start(self, spec: str) -> None:
        self.console.print(f"[bold]model[/] {spec}: loading")

    def _check_stop(self) -> None:
        if self._stop_requested():
            raise KeyboardInterrupt

    def model_loaded(self, spec: str, info: dict, seconds: float) -> None:
        self._check_stop()
        self.console.print(
            f"[bold]model[/] {spec}: d_model {info['d_model']}, |V| {info['vocab_size']}, "
            f"context {info['context_length']}, Eq. 1 capacity {info['eq1_capacity']:.0f} "
            f"tokens ({seconds:.1f} s to load)")

    def length_start(self, task: str, n_mem: int, length: int, todo: int, cached: int) -> None:
        self._check_stop()
        if not self._started:
            self.progress.start()
            self._started = True
        label = f"{task} k={n_mem} L={length}"
        self._bar = self.progress.add_task(label, total=todo + cached, completed=cached,
                                           status=f"{cached} from records" if cached else "")

    def step(self, info: Any) -> None:
        self._check_stop()
        now = time.monotonic()
        if self._bar is None or now - self._last < 0.5:
            return
        self._last = now
        self.progress.update(self._bar, status=(
            f"step {info.step}, {info.active} running, best acc {info.best_accuracy:.3f}, "
            f"loss {info.mean_loss:.3f}"))

    def sample_done(self, record: dict) -> None:
        if self._bar is not None:
            self.progress.advance(self._bar)

    def length_done(self, task: str, n_mem: int, length: int, mean_accuracy: float) -> None:
        if self._bar is not None:
            self.progress.update(self._bar, status=f"mean best accuracy {mean_accuracy:.3f}")
            self._bar = None

    def warn(self, message: str) -> None:
        from rich.markup import escape

        self.progress.console.print(f"[yellow]warning:[/] {escape(message)}")

    def close(self) -> None:
        if self._started:
            self.progress.stop()
