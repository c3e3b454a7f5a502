"""The numbers the figures draw, read from a run's results file: a metric under the paper's
or a progressive protocol's name, capacities, information gain, the threshold each task
counted as decoded. Where a number is not in the results (capacity at a second number of
[mem] vectors, a gain without its task, the spread of decoded tokens), it is computed from the
records with the shared functions of `metrics`, with the task's own threshold."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

from cram_harness import metrics
from cram_harness.reporting.runs import Run
from cram_harness.results.records import SampleRecord
from cram_harness.schemas import is_number

# The task kinds whose `threshold` says what counts as decoded: capacity's, and the gains'
# (a "full" vector is one at or below it). Each question asks its own kinds first.
CAPACITY_KINDS = metrics.CAPACITY_KINDS + metrics.GAIN_KINDS
GAIN_KINDS = metrics.GAIN_KINDS[::-1] + metrics.CAPACITY_KINDS


def value(values: dict, key: str) -> float | None:
    """A metric of a results entry, None where it is missing, null or not a finite number."""
    v = values.get(metrics.result_key(key))
    ok = is_number(v) and math.isfinite(v)
    return float(v) if ok else None


def names(metric: str, suffix: str = "") -> list[str]:
    """The keys a metric is reported under (`suffix`: "_std", "_k2"): the paper's first,
    then the climbs' own."""
    return [name + suffix for name in metrics.metric(metric).names()]


def either(values: dict, metric: str, suffix: str = "") -> float | None:
    """A metric under the paper's name, else under a climbing protocol's own."""
    return next((value(values, n) for n in names(metric, suffix)
                 if metrics.result_key(n) in values), None)


def capacity(values: dict, suffix: str = "") -> float | None:
    """The capacity of a results entry: the paper's, or a climbing protocol's own."""
    return either(values, "decoding_capacity", suffix)


def has_capacity(values: dict) -> bool:
    return any(metrics.result_key(n) in values for n in names("decoding_capacity"))


def threshold(run: Run, dataset: str | None = None, kinds: tuple[str, ...] = CAPACITY_KINDS
              ) -> float:
    """The accuracy the run's tasks (of `dataset`, where given) counted as decoded: the config
    `threshold` of the first task of `kinds`, in that order; the paper's 0.99 where none is."""
    configs = run.results.get("configs", {})
    for kind in kinds:
        for name, _, d in run.tasks(kind):
            found = configs.get(name, {}).get("threshold")
            if (dataset is None or d == dataset) and isinstance(found, int | float):
                return float(found)
    return metrics.LOSSLESS_THRESHOLD


def threshold_text(runs: list[Run]) -> str:
    """The threshold the runs' capacity counts, for a title: one number, or "each task's"."""
    found = {threshold(run) for run in runs}
    return f"{found.pop():g}" if len(found) == 1 else "each task's threshold"


def info_gain(run: Run, recs: list[SampleRecord]) -> tuple[float, str] | None:
    """The model's mean information gain (nats): its info_gain tasks' results, pooled by their
    number of full vectors; else over the records' full vectors, each dataset's by its own
    threshold."""
    pairs = [(either(v, "information_gain"), value(v, "n_full_vectors") or 1.0)
             for _, v, _ in run.tasks("info_gain")]
    pairs = [(g, n) for g, n in pairs if g is not None]
    if pairs:
        return sum(g * n for g, n in pairs) / sum(n for _, n in pairs), "results"
    full = [r for r in recs if r.is_full(threshold(run, r.dataset, GAIN_KINDS))]
    gain = metrics.mean_std(r.information_gain for r in full)
    return (gain.mean, "full-vector samples") if gain.n else None


def scaling_series(run: Run) -> Iterator[tuple[str, dict[int, float | None]]]:
    """(dataset, {k: capacity}) from mem_scaling results, else from sweeps of several k."""
    found = False
    for _, values, dataset in run.tasks("mem_scaling"):
        caps = {int(m[2]): capacity(values, f"_k{m[2]}") for key in values
                if (m := re.fullmatch(rf"(\w+)_k(\d+),{metrics.FILTER}", key))
                and m[1] in names("decoding_capacity")}
        if caps:
            found = True
            yield dataset, caps
    if not found:
        yield from ((d, caps) for d, caps in sweep_capacities(run).items() if len(caps) > 1)


def sweep_capacities(run: Run) -> dict[str, dict[int, float | None]]:
    """dataset -> {k: capacity} of a run's sweeps. A capacity task reports its smallest k:
    that number is read from its results; the others are computed from the sweep's mean
    accuracies by `metrics.decoding_capacity`, with the dataset's threshold."""
    by_data: dict[str, dict[int, float | None]] = {}
    for s in run.results.get("sweeps", []):
        d = s.get("dataset", "?")
        table = {int(n): [float(a)] for n, a in (s.get("mean_accuracy") or {}).items()}
        by_data.setdefault(d, {})[int(s.get("n_mem", 1))] = metrics.decoding_capacity(
            table, threshold(run, d))
    for _, values, d in run.tasks("capacity"):
        if by_data.get(d) and has_capacity(values):
            by_data[d][min(by_data[d])] = capacity(values)
    return by_data


def longest_run(run: Run, dataset: str, n_mem: int) -> float:
    """The longest length the run's sweep of this dataset and k reached (inf if unknown)."""
    lengths = [int(n) for s in run.results.get("sweeps", [])
               if s.get("dataset", dataset) == dataset and int(s.get("n_mem", 1)) == n_mem
               for n in (s.get("mean_accuracy") or {})]
    return max(lengths, default=math.inf)


def decoded_spread(run: Run, dataset: str, n_mem: int, length: float | None
                   ) -> metrics.MeanStd | None:
    """Mean and std of the tokens each text decoded at `length` (the capacity), over the
    run's usable records of this dataset and k; None for fewer than two."""
    if length is None:
        return None
    got = metrics.mean_std(
        metrics.decoded_tokens(r.best_accuracy, r.length)
        for r in run.samples if r.usable and int(r.get("n_mem", 1)) == n_mem
        and (r.dataset or dataset) == dataset and r.length == length)
    return got if got.n > 1 else None


def scaling_hint(runs: list[Run]) -> str:
    """What to run for Fig. 4, for the datasets these runs used: a task they ran on it (so
    one that exists) over several numbers of vectors; the shipped capacity_random where
    they name no dataset."""
    ran: dict[str, str] = {}
    for run in runs:
        for name, _, dataset in run.tasks(*CAPACITY_KINDS):
            ran.setdefault(dataset, name)
    datasets = sorted(set(ran) | {s.get("dataset") for run in runs
                                  for s in run.results.get("sweeps", []) if s.get("dataset")})
    hints = [f"{ran[d]} --mem-tokens 1,2,4" if d in ran
             else f"a capacity task on {d} with --mem-tokens 1,2,4" for d in datasets]
    return "run " + (" or ".join(hints) or "capacity_random --mem-tokens 1,2,4")
