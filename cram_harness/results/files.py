"""Where results go: one directory per model under the output path, files written whole."""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from cram_harness.atomic import write_json_atomic, write_text_atomic
from cram_harness.errors import CramError


def check_writable(path: Path) -> None:
    """Fail before any optimization if results could not be written."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise CramError(f"cannot write to the output path {path} ({exc.strerror}): "
                        "choose another with --output-path") from exc


def model_dir(output: Path, spec: str) -> Path:
    """results/<model slug>: hf:org/name@rev -> hf__org__name@rev."""
    slug = re.sub(r"[^A-Za-z0-9._@-]+", "__", spec.strip("/")).strip("_") or "model"
    return output / slug


@contextlib.contextmanager
def run_lock(directory: Path, name: str = ".lock") -> Iterator[None]:
    """One run at a time per model directory (per rank, for distributed runs): a second
    one is refused, not interleaved. The holder's pid is kept beside the lock, to name it."""
    owner = directory / f"{name}.owner"
    lock = FileLock(directory / name, blocking=False)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except Timeout:
        try:
            holder = owner.read_text().strip() or "another process"
        except OSError:
            holder = "another process"
        raise CramError(f"{directory} is in use by another cram-eval run ({holder}): wait "
                        "for it to finish, or pass another --output-path") from None
    except OSError as exc:  # a file where the model's directory goes, a directory for a lock
        raise CramError(f"{exc.filename or directory} is in the way of the results in "
                        f"{directory} ({exc.strerror}): move it, or pass another "
                        "--output-path") from None
    try:
        owner.write_text(f"pid {os.getpid()}\n")
        yield
    finally:
        lock.release()


# The files cram-eval reads back (a run's records, results and samples, warm-start vectors,
# adapters): a report written over one of them would lose it.
READ_BACK = (("records*.jsonl", "a records file"), ("results_*.json", "a results file"),
             ("samples_*.jsonl", "a samples file"), ("*.safetensors", "saved vectors"),
             ("cram.json", "an adapter's cram.json"),
             ("adapter_config.json", "an adapter's config"))


def check_report_output(path: Path, is_report: Callable[[str], bool], what: str,
                        option: str = "--output") -> None:
    """Before anything is written: refuse an output that would replace a file cram-eval reads
    back, or an existing file that `is_report` does not recognise as a `what` it wrote."""
    resolved = path.resolve()
    for pattern, kind in READ_BACK:
        if fnmatch.fnmatch(resolved.name, pattern):
            raise CramError(f"{path} is {kind}, which cram-eval reads back: give {option} "
                            f"another file for the {what}")
    if not resolved.is_file():
        return  # new, or a directory in the way (atomic_path names it)
    try:
        with open(resolved, "rb") as f:
            head = f.read(65536).decode("utf-8", errors="replace")
    except OSError as exc:
        raise CramError(f"cannot read {path} ({exc.strerror}): give {option} another "
                        "file") from None
    if head.strip() and not is_report(head):
        raise CramError(f"{path} exists and is not a {what} cram-eval wrote: give {option} a "
                        "new file, or move this one away first")


def write_results(out_dir: Path, results: dict, samples: dict[str, list[dict]]) -> Path:
    """results_<time>.json and samples_<task>_<time>.jsonl, like lm-eval's --log_samples."""
    stamp = time.strftime("%Y-%m-%dT%H-%M-%S")
    for task, records in samples.items():
        lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
        write_text_atomic(out_dir / f"samples_{task}_{stamp}.jsonl", lines)
    path = out_dir / f"results_{stamp}.json"
    write_json_atomic(path, results)
    return path
