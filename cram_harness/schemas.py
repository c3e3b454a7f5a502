"""What the files cram-harness reads back must hold, checked when they are read: an adapter's
cram.json, a results file, a line of records.jsonl. A file edited by hand, written by another
tool or damaged gives one line naming the file and the key, never a TypeError from deep
inside. Nothing here imports torch."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cram_harness import metrics


@dataclass(frozen=True)
class Key:
    """One key of a JSON object: what it must be, and whether it must be there."""

    name: str
    what: str  # said in the error: "a whole number >= 2"
    check: Callable[[Any], bool]
    required: bool = True


def is_int(value: Any) -> bool:
    """A whole number, which a bool (an int to Python) is not."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int or a float, not a bool (NaN and inf are numbers)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return is_number(value) and math.isfinite(value)


def _int(low: int = 0) -> Callable[[Any], bool]:
    return lambda v: is_int(v) and v >= low


def _share(value: Any) -> bool:
    return _number(value) and -1e-6 <= value <= 1 + 1e-6


def _token_ids(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(_int()(v) for v in value)


def _str(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _object(value: Any) -> bool:
    return isinstance(value, dict)


FINGERPRINT = (Key("model_type", "a name", _str), Key("d_model", "a whole number >= 1", _int(1)),
               Key("vocab_size", "a whole number >= 1", _int(1)),
               Key("num_layers", "a whole number", _int(), required=False))

CRAM_JSON = (
    # what decoding needs: an adapter made to prefix other tasks (lm-eval's) may lack them
    Key("seed_token_ids", "a non-empty list of token ids", _token_ids, required=False),
    Key("num_tokens", "a whole number >= 2 (seed included)", _int(2), required=False),
    Key("num_new_tokens", "a whole number >= 1", _int(1), required=False),
    Key("text_sha256", "a hex digest", _str, required=False),
    Key("model_spec", "a model spec", lambda v: isinstance(v, str), required=False),
    Key("base_model", "an object (model_type, d_model, vocab_size)", _object, required=False),
    Key("config", "an object of engine settings", _object, required=False),
    Key("retried_fp32", "true or false", lambda v: isinstance(v, bool), required=False),
)

RECORD = (
    Key("key", "a record key", _str),
    Key("length", "a whole number >= 2", _int(2)),
    Key("best_accuracy", "an accuracy in [0, 1]", _share),
    Key("base_accuracy", "an accuracy in [0, 1]", _share),
    Key("base_loss", "a number", lambda v: isinstance(v, int | float)),
    Key("best_loss", "a number", lambda v: isinstance(v, int | float)),
    # records of an older cram-harness lack these two (their keys never match a new run's)
    Key("min_loss", "a number", lambda v: isinstance(v, int | float), required=False),
    Key("token_gain", "a number", lambda v: isinstance(v, int | float)),
    Key("information_gain", "a number", lambda v: isinstance(v, int | float)),
    Key("information_gain_bits", "a number", lambda v: isinstance(v, int | float)),
    Key("greedy_exact", "true or false", lambda v: isinstance(v, bool)),
    Key("greedy_accuracy", "an accuracy in [0, 1]", _share, required=False),
    Key("steps", "a whole number >= 1", _int(1)),
    Key("num_tokens", "a whole number >= 2", _int(2)),
    Key("num_predicted", "a whole number >= 1", _int(1)),
    Key("sample_id", "a text id", lambda v: isinstance(v, str), required=False),
    Key("config", "an object of engine settings", _object, required=False),
)

RESULTS = (
    Key("results", "an object of task name -> metrics", lambda v: _object(v) and all(
        isinstance(k, str) and _object(m) for k, m in v.items())),
    Key("model_name", "a model spec", _str),
    Key("configs", "an object of task name -> task config", lambda v: _object(v) and all(
        _object(c) for c in v.values()), required=False),
    Key("model_info", "an object", _object, required=False),
    Key("config", "an object", _object, required=False),
    Key("engine", "an object", _object, required=False),
    Key("sweeps", "a list of sweeps (objects with dataset, n_mem, mean_accuracy)",
        lambda v: isinstance(v, list) and all(_sweep(s) for s in v), required=False),
)


def _sweep(value: Any) -> bool:
    return (_object(value) and isinstance(value.get("dataset", ""), str)
            and _int(1)(value.get("n_mem", 1))
            and _object(value.get("mean_accuracy", {}))
            and all(str(k).isdigit() and _number(a)
                    for k, a in value.get("mean_accuracy", {}).items()))


def problem(data: Any, keys: tuple[Key, ...]) -> str | None:
    """What is wrong with `data` against `keys`, in words (None when nothing is)."""
    if not isinstance(data, Mapping):
        return f"it holds {type(data).__name__}, not a JSON object"
    for key in keys:
        if key.name not in data:
            if key.required:
                return f"key {key.name!r} is missing"
            continue
        if not key.check(data[key.name]):
            shown = repr(data[key.name])
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            return f"key {key.name!r} is {shown}, expected {key.what}"
    return None


MODEL_INFO_NUMBERS = ("d_model", "eq1_capacity")


def _read_metric(key: str) -> bool:
    """Whether a results key is a metric of the table (under any protocol's name, per number
    of vectors, or its std): tables, reports and the leaderboard read those, so each must
    be a number or null where it is there."""
    name = re.sub(r"_k\d+$", "", key.split(",")[0].removesuffix("_std"))
    return name in metrics.reported_names()


def results_problem(data: Any) -> str | None:
    """`problem(data, RESULTS)`, and then the values that are read: a metric or a model's
    size of another type is named by task and key."""
    wrong = problem(data, RESULTS)
    if wrong:
        return wrong
    for task, entries in data["results"].items():
        for key, value in entries.items():
            if _read_metric(str(key)) and value is not None and not is_number(value):
                return f"key 'results' -> {task!r} -> {key!r} is {shown(value)}, expected a number"
    info = data.get("model_info", {})
    for key in MODEL_INFO_NUMBERS:
        value = info.get(key)
        if value is not None and not _number(value):
            return f"key 'model_info' -> {key!r} is {shown(value)}, expected a number"
    return None


def shown(value: Any) -> str:
    """A value as a one-line error shows it: its repr, cut at 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
