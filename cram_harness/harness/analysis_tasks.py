"""What analysis and estimate tasks compute from a run's sweeps once they ran: Fig. 7's
cosines and Fig. 8's interpolations, and each text's capacity predicted from its
cross-entropy."""

from __future__ import annotations

from typing import Any

from cram_harness import metrics
from cram_harness.harness.plan import Sweep
from cram_harness.harness.tasks import TaskConfig
from cram_harness.results.records import RecordStore


def run_analysis(task: TaskConfig, sweeps: list[Sweep], store: RecordStore, model) -> dict:
    """Fig. 7 / Fig. 8 data of an analysis task, at its first length and [mem] count."""
    from cram_harness.engine.analysis import cosine_similarities, interpolation_curves

    mine = sorted((s for s in sweeps if task.name in s.tasks), key=lambda s: s.restart)
    length, n_mem = min(mine[0].task_lengths[task.name]), mine[0].n_mem
    runs = [s for s in mine if s.n_mem == n_mem and length in s.keys]
    if not runs:
        return {"kind": task.kind, "dataset": task.dataset, "length": length}
    solutions = [[store.load_vectors(s.keys[length][i]) for s in runs]
                 for i in range(len(runs[0].keys[length]))]
    out: dict[str, Any] = {"kind": task.kind, "dataset": task.dataset, "length": length,
                           "n_mem": n_mem, "restarts": len(runs)}
    if task.kind == "similarity":
        out["intra_cosine"], out["inter_cosine"] = cosine_similarities(solutions)
    else:
        thetas = [i / (task.num_thetas - 1) for i in range(task.num_thetas)] \
            if task.num_thetas > 1 else [0.5]
        out["thetas"] = thetas
        out["curves"] = interpolation_curves(model, runs[0].tokens[length], solutions, thetas)
    return out


def run_estimate(task: TaskConfig, sweeps: list[Sweep], store: RecordStore, model) -> dict:
    """Each text's longest decodable prefix predicted from its own CE and the information
    gain measured at the task's (probe) length; against the measured one where the run also
    swept that dataset's grid (e.g. with capacity_<dataset>)."""
    from cram_harness.engine.estimate import cumulative_cross_entropy, predicted_length

    probe_sweep = next(s for s in sweeps if task.name in s.tasks)
    probe = max(probe_sweep.task_lengths[task.name] & set(probe_sweep.keys), default=None)
    out: dict[str, Any] = {"kind": task.kind, "dataset": task.dataset, "probe_length": probe}
    if probe is None:
        return {**out, "reason": "the probe length was not run"}
    recs = [store.get(k) for k in probe_sweep.keys[probe]]
    full = [r for r in recs if r.is_full(task.threshold) and r.usable]
    if not full:
        return {**out, "reason": f"no vector is full at {probe} tokens: probe a longer length"}
    gain = metrics.mean_std(r.information_gain for r in full)
    cumulative = cumulative_cross_entropy(model, probe_sweep.tokens[probe])
    measured = _lossless_lengths(task, sweeps, store, probe_sweep.n_mem)
    texts = []
    for text_id, cum in zip(probe_sweep.ids[probe], cumulative):
        predicted = predicted_length(cum, gain.mean)
        texts.append({"sample_id": text_id, "predicted": predicted,
                      "at_least": predicted >= probe, "measured": measured.get(text_id)})
    return {**out, "n_mem": probe_sweep.n_mem, "information_gain": gain.mean,
            "information_gain_stderr": gain.stderr, "n_full_vectors": gain.n, "texts": texts}


def _lossless_lengths(task: TaskConfig, sweeps: list[Sweep], store: RecordStore,
                      n_mem: int) -> dict[str, int]:
    """Text id -> the longest length at which it was decoded exactly, from the run's other
    sweeps of the same dataset."""
    longest: dict[str, int] = {}
    for s in sweeps:
        if s.dataset != task.dataset or s.n_mem != n_mem or s.keep_vectors:
            continue
        for length, keys in s.keys.items():
            for text_id, key in zip(s.ids[length], keys):
                rec = store.get(key)
                if rec.exact:
                    longest[text_id] = max(longest.get(text_id, 0), rec.length)
    return longest
