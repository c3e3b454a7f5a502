"""Progress as plain lines, for output that is no terminal (a log file, a cluster job, nohup,
CI): the facts the live display draws, written a line at a time, at each finished text and
at least every `EVERY_S` seconds while a length runs."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from cram_harness.reporting.console import batch_steps_left, clock
from cram_harness.results.records import SampleRecord

EVERY_S = 30.0  # a line at least this often while texts are being crammed


class LogDisplay:
    """A line per event: the model, the plan, each length's start and end, each finished
    text (texts done, the batch's steps per second, the time left at most) and, between
    them, a line every `every` seconds."""

    shows_plan = True

    def __init__(self, stream: TextIO | None = None, every: float = EVERY_S,
                 stop_requested: Any = None, quiet: bool = False):
        self.stream = stream or sys.stderr
        self.every = every
        self.quiet = quiet  # warnings only
        self._stop_requested = stop_requested or (lambda: False)
        self._length: dict[str, Any] = {}
        self._last_line = 0.0
        self._info: Any = None

    def _say(self, line: str, warning: bool = False) -> None:
        if self.quiet and not warning:
            return
        print(line, file=self.stream, flush=True)
        self._last_line = time.monotonic()

    def _check_stop(self) -> None:
        if self._stop_requested():
            raise KeyboardInterrupt

    def model_start(self, spec: str) -> None:
        self._say(f"model {spec}: loading")

    def note(self, message: str) -> None:
        self._say(message)

    def model_loaded(self, spec: str, info: dict, seconds: float) -> None:
        self._check_stop()
        self._say(f"model {spec}: d_model {info['d_model']}, |V| {info['vocab_size']}, "
                  f"context {info['context_length']}, Eq. 1 capacity "
                  f"{info['eq1_capacity']:.0f} tokens ({seconds:.1f} s to load)")
        if info.get("checkpoint"):
            self.note(f"{spec} is {info['checkpoint']}")

    def plan(self, lines: list[str]) -> None:
        for line in lines:
            self._say(line)

    def length_start(self, label: str, length: int, todo: int, cached: int,
                     max_steps: int) -> None:
        self._check_stop()
        self._length = {"label": label, "todo": todo, "done": cached, "total": todo + cached,
                        "start": time.monotonic(), "before": 0, "step": 0}
        self._info = None
        what = f"{todo} text{'s' if todo != 1 else ''} to cram, at most {max_steps} steps each"
        self._say(f"{label}: {what}" + (f" ({cached} from records)" if cached else "")
                  if todo else f"{label}: {cached} texts, all from records")

    def step(self, info: Any) -> None:
        self._check_stop()
        run = self._length
        if not run:
            return
        if info.step < run["step"]:  # the length's next queue started (a rerun)
            run["before"] += run["step"]
        run["step"], self._info = info.step, info
        if time.monotonic() - self._last_line >= self.every:
            self._say(self._progress())

    def _progress(self) -> str:
        run, info = self._length, self._info
        line = f"{run['label']}: {run['done']}/{run['total']} texts"
        if info is None:
            return line
        elapsed = time.monotonic() - run["start"]
        steps = run["before"] + info.step
        rate = steps / elapsed if elapsed > 0 else 0.0
        left = batch_steps_left(info) / rate if rate > 0 else None
        return (f"{line}, step {steps}, {rate:.2f} steps/s, best accuracy "
                f"{info.best_accuracy:.2f}" + (f", at most {clock(left)} left" if left else ""))

    def sample_done(self, record: SampleRecord) -> None:
        if not self._length:
            return
        self._length["done"] += 1
        exact = "greedy exact" if record.get("greedy_exact") else "not exact"
        self._say(f"{self._progress()} (a text done in {record.get('steps')} steps: accuracy "
                  f"{record.get('best_accuracy', 0.0):.3f}, {exact})")

    def length_done(self, label: str, length: int, mean_accuracy: float) -> None:
        took = time.monotonic() - self._length["start"] if self._length else 0.0
        self._say(f"{label}: done in {clock(took)}, mean best accuracy {mean_accuracy:.3f}")
        self._length = {}

    def warn(self, message: str) -> None:
        self._say(f"warning: {message}", warning=True)

    def close(self) -> None:
        pass  # every line is written as it happens


def choose_display(quiet: bool = False, stop_requested: Any = None) -> Any:
    """The live display where progress goes to a terminal (stderr), plain lines where it
    goes to a file or a pipe; with `quiet`, warnings only."""
    if quiet or not sys.stderr.isatty():
        return LogDisplay(stop_requested=stop_requested, quiet=quiet)
    from cram_harness.reporting.console import RichDisplay

    return RichDisplay(stop_requested=stop_requested)
