"""Helpers that several test files share: the CLI as a process or in this process, the
checks its output must pass, small results files and record readers, and the early-step
comparison of the parity tests. A plain module, not a test file: test files import from here
and never from one another."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st

from cram_harness import cli
from cram_harness.engine.loop import cram_batch
from cram_harness.errors import CramError
from cram_harness.results.records import read_records
from tests.tiny import word_sentences

# --- the CLI ----------------------------------------------------------------------------------

# The run every interruption test repeats: 3 texts x lengths 4, 8 = 6 samples, one at a time.
RUN = ["--tasks", "capacity_pg19", "--limit", "3", "--lengths", "4,8", "--max-steps", "40",
       "--lr", "0.3", "--batch-size", "1", "--past-capacity", "0", "--device", "cpu"]


def env(**extra: str) -> dict:
    """The environment of a cram-eval process: one thread (on a shared 2-core machine two
    threads per process make a 0.2 s sample take 10 s), offline, a wide terminal."""
    return {**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "HF_HUB_OFFLINE": "1", **extra}


# Runs the real CLI with a signal delivered to itself at an exact moment: inside a record
# append (the line written and flushed, not yet fsynced) or while the results file is being
# written (its temp file complete, not yet renamed). os.kill to oneself raises the handler's
# KeyboardInterrupt from os.kill itself, so the moment is exact, not a race.
SELF_SIGNAL = r"""
import os, signal, sys, types
from pathlib import Path
from cram_harness import atomic
from cram_harness.results import records

where, sig = os.environ["CRAM_TEST_AT"], getattr(signal, os.environ["CRAM_TEST_SIGNAL"])


def with_hook(name, hook):
    fake = types.ModuleType("os")
    fake.__dict__.update(vars(os))
    real = getattr(os, name)

    def wrapped(*args):
        hook(*args)
        return real(*args)

    setattr(fake, name, wrapped)
    return fake


def before_results_rename(src, dst):
    if Path(dst).name.startswith("results_"):
        assert Path(src).stat().st_size > 0
        os.kill(os.getpid(), sig)


if where == "record-write":
    records.os = with_hook("fsync", lambda fd: os.kill(os.getpid(), sig))
elif where == "results-write":
    atomic.os = with_hook("replace", before_results_rename)
from cram_harness.cli import main

main()
"""


class Proc:
    """A cram-eval process whose output goes to files (pipes could fill and block it)."""

    def __init__(self, args: list[str], logs: Path, *, at: str | None = None,
                 sig: str = "SIGINT"):
        self.out, self.err = logs.with_suffix(".out"), logs.with_suffix(".err")
        code = ["-c", SELF_SIGNAL] if at else ["-m", "cram_harness"]
        extra = {"CRAM_TEST_AT": at, "CRAM_TEST_SIGNAL": sig} if at else {}
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.popen = subprocess.Popen([sys.executable, *code, *args], stdout=out,
                                          stderr=err, env=env(**extra), cwd=logs.parent)

    def wait(self, timeout: float = 300) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()  # never leave a run behind a failed test
            raise

    def stderr(self) -> str:
        return self.err.read_text()

    def stdout(self) -> str:
        return self.out.read_text()

    def signal(self, sig: int) -> None:
        self.popen.send_signal(sig)

    def wait_until(self, moment, what: str, timeout: float = 240) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if moment():
                return
            if self.popen.poll() is not None:
                raise AssertionError(f"the run ended (code {self.popen.returncode}) before "
                                     f"{what}:\n{self.stderr()}")
            time.sleep(0.005)
        self.popen.kill()
        raise AssertionError(f"timed out waiting for {what}")


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """`cram-eval ARGV` in this process: (exit code, stdout, stderr)."""
    before = signal.getsignal(signal.SIGTERM)  # main() installs its own SIGTERM handler
    code = 0
    try:
        cli.main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        signal.signal(signal.SIGTERM, before)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error_line(code: int, err: str, message: str, exit_code: int = 2) -> str:
    assert code == exit_code, err
    lines = [line for line in err.splitlines() if line.startswith("error")]
    assert len(lines) == 1, err
    assert message in lines[0], lines[0]
    assert "Traceback" not in err, err
    return lines[0]


def flat(text: str) -> str:
    """Rich wraps long lines at the terminal width; compare words, not line breaks."""
    return " ".join(text.split())


def cram_eval(*args, cwd=None, timeout=300):
    """`cram-eval ARGS` as a separate process (stdout and stderr captured as text)."""
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "cram_harness", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=timeout)


# --- files a run leaves -----------------------------------------------------------------------


def line_count(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def whole_records(path: Path) -> list[dict]:
    """Every line of a records file, each required to be whole JSON."""
    text = path.read_text()
    assert text.endswith("\n"), "a record line was left half-written"
    return [json.loads(line) for line in text.splitlines()]


def write_results(path: Path, **override) -> Path:
    """A small valid results file at `path`; `override` replaces (None: removes) its keys."""
    data = {"model_name": "tiny", "results": {"capacity_x": {"decoding_capacity,none": 8}},
            "configs": {"capacity_x": {"dataset": "x", "kind": "capacity"}},
            "sweeps": [{"dataset": "x", "n_mem": 1, "mean_accuracy": {"8": 1.0}}], **override}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({k: v for k, v in data.items() if v is not None}))
    return path


def records_of(result) -> list[dict]:
    """The records an evaluate() result's run wrote beside its results file."""
    return list(read_records(Path(result["results_file"]).parent / "records.jsonl"))


# --- parity ------------------------------------------------------------------------------------

# Over the first steps, before rounding has grown, a batch's losses agree with one text at a
# time to this tolerance on every CPU (tests/parity/test_paper_loop.py says why).
EARLY_STEPS, EARLY_TOLERANCE = 5, 1e-4


def losses_by_step(model, tokens, config) -> list[list[float]]:
    """Each step's per-text losses of one cram_batch run."""
    seen: list[list[float]] = []
    cram_batch(model, tokens, config, on_step=lambda info: seen.append(info.losses.tolist()))
    return seen


# --- runs, edits and snapshots that the subject files share ---------------------------------


def model_slug(spec: str) -> str:
    """The folder a model's results go to under the output path (`results.files.model_dir`)."""
    from cram_harness.results.files import model_dir

    return model_dir(Path("."), spec).name


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` by its path, with its bytes: compared before and after."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10**7) | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=8)

MUTATIONS = settings(max_examples=60, deadline=None, database=None)


@st.composite
def mutated(draw, original: dict):
    """The object with a few keys replaced by any JSON, deleted or added; or any JSON."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON)
    data = json.loads(json.dumps(original))
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(sorted(data) or ["x"]))
        action = draw(st.sampled_from(["replace", "delete", "add", "nest"]))
        if action == "replace" or (action == "nest" and not isinstance(data.get(key), dict)):
            data[key] = draw(JSON)
        elif action == "delete":
            data.pop(key, None)
        elif action == "add":
            data[draw(st.text(max_size=6))] = draw(JSON)
        else:
            inner = data[key]
            if inner:
                inner[draw(st.sampled_from(sorted(inner)))] = draw(JSON)
    return data


def loads_or_one_line(read) -> None:
    try:
        read()
    except CramError as exc:
        assert "\n" not in str(exc) and str(exc)


# No example database: nothing is written into the checkout.
PROPERTY = settings(max_examples=75, deadline=None, database=None)


def run_args(tmp: Path, model: str, extra: list[str]) -> list[str]:
    """A good small run, with `extra` overriding its flags (click keeps the last value)."""
    (tmp / "book.txt").write_text(word_sentences(12))
    # --data-files would replace a task's own source: left out when a task YAML is given.
    data = [] if "--include-path" in extra else ["--data-files", str(tmp / "book.txt")]
    return ["--model", model, "--tasks", "capacity_pg19", "--limit", "1", "--lengths", "4",
            "--max-steps", "2", "--device", "cpu", *data, "--output-path", str(tmp / "out"),
            *extra]


GOOD_TASK = "task: mine\nkind: capacity\ndataset: d\nsource: {kind: random}\nlengths: [8]\n"


def fast_run(tiny_model_dir: str, books: str, out: Path, *extra: str) -> list[str]:
    return ["--model", tiny_model_dir, "--tasks", "capacity_pg19", "--limit", "3", "--lengths",
            "4,8", "--max-steps", "5", "--lr", "0.3", "--batch-size", "1", "--past-capacity", "0",
            "--device", "cpu", "--data-files", books, "--output-path", str(out), *extra]


N_SAMPLES = 6


def assert_nothing_half_written(model_dir: Path) -> None:
    """Every results and samples file parses whole; no temp file is left behind."""
    for path in model_dir.rglob("*"):
        if path.name.startswith("."):
            assert path.name.startswith(".lock"), f"temp file left behind: {path}"
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".jsonl":
            if path.stat().st_size:
                whole_records(path)
