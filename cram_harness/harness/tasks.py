"""A task is data: a YAML file naming a data source, a length sweep and the metrics to read.

    task: capacity_pg19          # the name users pass to --tasks
    kind: capacity               # capacity | token_gain | info_gain | mem_scaling |
                                 # similarity | interpolation | capacity_estimate
    dataset: pg19                # tasks of one dataset share their optimization runs
    source: {kind: hf, repo: yurakuratov/pg19_valid_1k_chunks, split: train}
    lengths: [8, 16, 32, ...]    # token lengths L of the sweep (BOS counted, as the paper did)
    sampling: grid               # grid: every text at every length; uniform: each text draws
                                 # its length from [2, max(lengths)] (the paper's random texts)
    mem_tokens: [1]              # numbers of [mem] vectors k
    num_samples: 50
    past_capacity: 3             # stop after this many lengths in a row below the threshold
                                 # (0: the whole grid)
    stop_below: 0                # also stop once a length's mean accuracy is below this (0: off)
    threshold: 0.99              # accuracy that counts as decoded (capacity, full vectors)
    description: "..."           # shown by `cram-eval ls tasks`
    version: 1
    restarts: 4                  # similarity / interpolation: solutions per text
    num_thetas: 11               # interpolation: points on each line between two solutions

A group is `group: NAME` with `tasks: [...]`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from cram_harness import metrics
from cram_harness.errors import CramError
from cram_harness.metrics import LOSSLESS_THRESHOLD
from cram_harness.schemas import is_int, is_number
from cram_harness.validation import MAX_STEPS

# A kind is what a task reports: the kinds the metric table's entries name.
KINDS = tuple(dict.fromkeys(kind for m in metrics.METRICS for kind in m.kinds))
SAMPLINGS = ("grid", "uniform")


@dataclass(frozen=True)
class TaskConfig:
    name: str
    kind: str
    dataset: str
    source: dict
    lengths: tuple[int, ...]
    mem_tokens: tuple[int, ...] = (1,)
    num_samples: int = 50
    sampling: str = "grid"
    past_capacity: int = 3
    stop_below: float = 0.0
    threshold: float = LOSSLESS_THRESHOLD
    version: int = 1
    description: str = ""
    restarts: int = 4  # analyses: solutions per text, from different seeds
    num_thetas: int = 11  # interpolation: evenly spaced points from one solution to another
    path: str = field(default="", compare=False)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GroupConfig:
    name: str
    tasks: tuple[str, ...]
    description: str = ""
    path: str = ""


_REQUIRED = ("kind", "dataset", "source", "lengths")
_OPTIONAL = ("mem_tokens", "num_samples", "sampling", "past_capacity", "stop_below", "threshold",
             "version", "description", "restarts", "num_thetas")


def parse_file(path: Path) -> TaskConfig | GroupConfig:
    """Read one task or group YAML; a malformed file names the file and the key."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CramError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    except OSError as exc:  # a symlink loop or to nothing, no permission
        raise CramError(f"{path}: cannot be read as a task file ({exc.strerror}): fix or "
                        "remove it") from None
    if not isinstance(data, dict):
        raise CramError(f"{path}: a task file must hold a mapping with a 'task' or 'group' key")
    if "group" in data:
        return _parse_group(path, data)
    if "task" not in data:
        raise CramError(f"{path}: missing key 'task' (or 'group')")
    unknown = set(data) - {"task", *_REQUIRED, *_OPTIONAL}
    if unknown:
        raise CramError(f"{path}: unknown key {sorted(unknown)[0]!r} "
                        f"(known: task, {', '.join(_REQUIRED + _OPTIONAL)})")
    for key in _REQUIRED:
        if key not in data:
            raise CramError(f"{path}: missing key {key!r}")
    if data["kind"] not in KINDS:
        raise CramError(f"{path}: key 'kind' is {data['kind']!r}, expected one of {KINDS}")
    if not isinstance(data["source"], dict) or "kind" not in data["source"]:
        raise CramError(f"{path}: key 'source' must be a mapping with a 'kind'")
    opts = {k: data[k] for k in _OPTIONAL if k in data}
    if "mem_tokens" in opts:
        opts["mem_tokens"] = _positive_ints(path, "mem_tokens", opts["mem_tokens"])
    for key in ("num_samples", "restarts", "num_thetas"):
        if key in opts:
            opts[key] = _positive_ints(path, key, [opts[key]])[0]
    for key, what, ok in _SCALARS:
        if key in opts and not ok(opts[key]):
            raise CramError(f"{path}: key {key!r} is {opts[key]!r}, expected {what}")
    if opts.get("sampling", "grid") not in SAMPLINGS:
        raise CramError(f"{path}: key 'sampling' is {opts['sampling']!r}, expected one of "
                        f"{SAMPLINGS}")
    if "past_capacity" in opts and not (is_int(opts["past_capacity"])
                                        and opts["past_capacity"] >= 0):
        raise CramError(f"{path}: key 'past_capacity' must be a whole number >= 0 (0: the "
                        "whole grid)")
    return TaskConfig(name=str(data["task"]), kind=data["kind"], dataset=str(data["dataset"]),
                      source=dict(data["source"]),
                      lengths=_positive_ints(path, "lengths", data["lengths"]),
                      path=str(path), **opts)


_SCALARS = (
    ("threshold", "an accuracy in (0, 1]", lambda v: is_number(v) and 0 < v <= 1),
    ("stop_below", "an accuracy in [0, 1] (0: no floor)", lambda v: is_number(v) and 0 <= v <= 1),
    ("version", "a whole number", is_int),
    ("description", "a line of text", lambda v: isinstance(v, str)),
)


def _parse_group(path: Path, data: dict) -> GroupConfig:
    tasks = data.get("tasks")
    if not isinstance(tasks, list) or not tasks or not all(isinstance(t, str) for t in tasks):
        raise CramError(f"{path}: key 'tasks' must be a non-empty list of task names")
    return GroupConfig(name=str(data["group"]), tasks=tuple(tasks),
                       description=str(data.get("description", "")), path=str(path))


def _positive_ints(path: Path, key: str, value: object) -> tuple[int, ...]:
    if not isinstance(value, list) or not value or not all(
        is_int(v) and 0 < v <= MAX_STEPS for v in value
    ):
        raise CramError(f"{path}: key {key!r} must be a non-empty list of positive integers "
                        f"(at most {MAX_STEPS})")
    return tuple(sorted(set(value)))
