"""The results file, in lm-eval's layout: `results`, `groups`, `configs`, `versions`,
`n-samples`, `config`, with `"metric,filter"` keys and their stderr."""

from __future__ import annotations

import hashlib
import json
import math
import platform
import subprocess
import time
from collections import Counter
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from cram_harness import metrics
from cram_harness.results.records import SampleRecord

if TYPE_CHECKING:  # the harness hands them in: results are made without it
    from cram_harness.harness.tasks import TaskConfig
    from cram_harness.protocols import Protocol


def task_records(task: TaskConfig, sweeps: list, store: Any, n_mem: int
                 ) -> list[SampleRecord]:
    """The records a task reads: every length its dataset's sweep at `n_mem` ran (the paper
    pooled Table 1 over all of them), so tasks sharing a sweep never disagree. A NaN/inf run
    is recorded but never a result."""
    return [_as_read_by(sweep, r) for sweep in sweeps
            if task.name in sweep.tasks and sweep.n_mem == n_mem
            for keys in sweep.keys.values() for r in map(store.get, keys) if r.usable]


def _as_read_by(sweep: Any, record: SampleRecord) -> SampleRecord:
    """A record as the sweep that reads it sees it: records are shared by key between sweeps
    that crammed the same tokens, but the dataset and sampling are the reader's."""
    return record.replace(dataset=sweep.dataset, sampling=sweep.sampling)


def carried_records(task: TaskConfig, sweeps: list, n_mem: int) -> list[SampleRecord]:
    """Climbing protocols: texts that stopped climbing count at longer lengths with the
    accuracy they stopped at (not lossless)."""
    return [SampleRecord(key="carried", length=length, best_accuracy=acc, greedy_accuracy=acc,
                         greedy_exact=False)
            for s in sweeps if task.name in s.tasks and s.n_mem == n_mem
            for length, accs in s.carried.items() for acc in accs]


def task_metrics(task: TaskConfig, sweeps: list, store: Any, info: dict,
                 analyses: dict | None, protocol: Protocol) -> tuple[dict, list, dict]:
    """(metrics, records used, higher_is_better) of one task: the metric table's entries
    for its kind, at each number of [mem] vectors its sweeps ran (mem_scaling reports every
    one, `_k<k>`; the others their first)."""
    mems = sorted({s.n_mem for s in sweeps if task.name in s.tasks})
    analysis = (analyses or {}).get(task.name, {})
    values, used, directions = {}, [], {}
    for k in mems if task.kind == "mem_scaling" else mems[:1] or [None]:
        records = task_records(task, sweeps, store, k) if k is not None else []
        carried = carried_records(task, sweeps, k) if k is not None else []
        reading = metrics.Reading(records, protocol.credited(records + carried),
                                  task.threshold, info.get("eq1_capacity", math.nan), analysis)
        suffix = f"_k{k}" if task.kind == "mem_scaling" else ""
        for metric in metrics.metrics_of(task.kind):
            entries = metric.entries(reading, protocol.climbs, suffix)
            values.update(entries)
            if entries:
                directions.update(metric.directions(protocol.climbs, suffix))
        used += records
    if task.kind in metrics.ANALYSIS_KINDS:  # every restart's records: the solutions compared
        used = [r for s in sweeps if task.name in s.tasks
                for keys in s.keys.values() for r in map(store.get, keys)]
    return values, used, directions


def sweep_summary(sweeps: list, store: Any) -> list[dict]:
    rows = []
    for s in sweeps:
        recs = [store.get(k) for keys in s.keys.values() for k in keys]
        by_length = metrics.accuracy_table(
            [(r.length, r.best_accuracy) for r in recs if r.usable]
            + [(length, acc) for length, accs in s.carried.items() for acc in accs])
        rows.append({
            "dataset": s.dataset, "n_mem": s.n_mem, "restart": s.restart, "tasks": s.tasks,
            "source": s.source, "sampling": s.sampling, "engine": s.engine,
            "lengths_planned": s.lengths,
            # by the length each text was run at (drawn lengths for sampling: uniform)
            "mean_accuracy": {str(length): _mean(accs) for length, accs in by_length.items()},
            "carried": {str(k): len(v) for k, v in s.carried.items() if v},
            "optimizer_steps": sum(r.steps for r in recs),
            "samples": {str(length): len(keys) for length, keys in s.keys.items()},
            "texts_too_short": {str(k): v for k, v in s.short.items() if v},
            "numerical_faults": sum(not r.usable for r in recs),
            "past_capacity": s.past_capacity,
            "stop_below": s.stop_below,
            "stopped": s.stopped or {"length": None, "reason": "ran every planned length"},
        })
    return rows


def engine_settings(sweeps: list, protocol: str, model_info: dict) -> dict:
    """The optimizer settings of the run's first sweep (they differ between sweeps only in
    n_mem and seed), with the protocol and the weights' dtype."""
    engine = next((dict(s.engine) for s in sweeps if s.engine), {})
    engine.pop("n_mem", None)
    return {**engine, "protocol": protocol, "weights": model_info.get("dtype")}


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def build_results(*, spec, task_cfgs, sweeps, store, model_info, settings, timings, device,
                  protocol: Protocol, groups: dict[str, list[str]] | None = None,
                  analyses=None) -> tuple[dict, dict[str, list[dict]]]:
    """The results file's content and each task's sample records (`settings`: the run's
    config block; `protocol`: the run's, which names and credits its numbers; `groups`: the
    groups the user asked for, each with its member tasks)."""
    results, configs, versions, n_samples, higher, samples = {}, {}, {}, {}, {}, {}
    full_vectors: dict[str, dict[str, int]] = {}
    for task in task_cfgs:
        values, used, higher[task.name] = task_metrics(task, sweeps, store, model_info,
                                                       analyses, protocol)
        results[task.name] = {"alias": task.name, **values}
        configs[task.name] = task.to_dict()
        versions[task.name] = task.version
        n_samples[task.name] = {"original": task.num_samples,
                                "effective": len(used)}
        samples[task.name] = [r.to_json() for r in used]
        if task.kind in metrics.kinds_reporting("n_full_vectors"):
            full_vectors[task.name] = _full_vectors_by_length(used, task.threshold)
    group_subtasks = {name: [t for t in members if t in results]
                      for name, members in (groups or {}).items()}
    merged = {name: {"alias": name} for name in group_subtasks}
    for name, subtasks in group_subtasks.items():
        for t in subtasks:
            merged[name].update({k: v for k, v in results[t].items() if k != "alias"})
    return {
        "results": results,
        "groups": merged,
        "group_subtasks": group_subtasks,
        "configs": configs,
        "versions": versions,
        "n-samples": n_samples,
        "higher_is_better": higher,
        "config": {"model": spec, "model_args": f"pretrained={spec}", **settings},
        # what the engine ran with, the protocol's and the model's defaults resolved
        "engine": engine_settings(sweeps, protocol.name, model_info),
        "model_info": model_info,
        "sweeps": sweep_summary(sweeps, store),
        "full_vectors": full_vectors,  # per gains task: length -> full vectors pooled there
        "analyses": analyses or {},
        "environment": environment(device),
        "timings": {**timings, "optimizer_steps": sum(
            store.get(k).steps for sw in sweeps for keys in sw.keys.values() for k in keys)},
        "model_name": spec,
        "date": time.time(),
        # as lm-eval writes them, so its tooling and habits carry over
        "task_hashes": task_hashes(samples),
        "lm_eval_version": _version("lm_eval"),
        "git_hash": git_hash(),
    }, samples


def _full_vectors_by_length(records: list[SampleRecord], threshold: float) -> dict[str, int]:
    """length -> how many of the records there have a full vector (the gains' pool)."""
    counts = Counter(r.length for r in records if r.is_full(threshold))
    return {str(length): n for length, n in sorted(counts.items())}


def task_hashes(samples: dict[str, list[dict]]) -> dict[str, str]:
    """A hash of each task's sample records, as lm-eval's `task_hashes`: two runs with the
    same hash crammed the same texts to the same results."""
    return {task: hashlib.sha256("".join(json.dumps(r, sort_keys=True) for r in recs)
                                 .encode()).hexdigest()
            for task, recs in samples.items()}


def git_hash() -> str | None:
    """The commit of the git checkout the run started in, as lm-eval records it (None
    outside one)."""
    try:
        out = subprocess.run(["git", "describe", "--always"], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def environment(device: str) -> dict:
    env = {"python": platform.python_version(), "platform": platform.platform(),
           "processor": _cpu_name(), "device": device}
    for pkg in ("cram-harness", "torch", "transformers", "peft", "lm_eval", "datasets"):
        env[pkg] = _version(pkg)
    if device.startswith("cuda"):
        import torch

        env["gpu"] = torch.cuda.get_device_name(0)
    return env


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()
