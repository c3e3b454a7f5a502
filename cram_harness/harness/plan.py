"""The plan of a run: which sweeps (one per dataset, source, sampling, number of [mem]
vectors and restart, shared by the tasks that agree on these), which lengths fit, which
length each random text draws, what a record's key holds, and the lines said before the
run starts."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from cram_harness import metrics
from cram_harness.harness.settings import RunSettings
from cram_harness.harness.tasks import TaskConfig
from cram_harness.protocols import PAPER, Protocol
from cram_harness.results.records import RecordStore, record_key

# Bumped when records gain or change a field that results are made of (2: min_loss,
# greedy_accuracy, L counting BOS), so that older records are run again, not misread.
RECORD_VERSION = 2


@dataclass
class Sweep:
    """One dataset's length sweep at one number of [mem] vectors, shared by its tasks; what
    it ran is filled in as it runs (results are made of it)."""

    dataset: str
    source: dict
    n_mem: int
    lengths: list[int]
    num_samples: int
    past_capacity: int  # 0: every length of the grid
    stop_below: float  # 0: no floor
    threshold: float
    sampling: str = "grid"  # uniform: each text draws its length from [2, the one length]
    restart: int = 0  # analyses run several seeds per text: seed = run seed + restart
    keep_vectors: bool = False
    protocol: Protocol = PAPER
    tasks: list[str] = field(default_factory=list)
    task_lengths: dict[str, set[int]] = field(default_factory=dict)  # what each task reads
    keys: dict[int, list[str]] = field(default_factory=dict)  # length -> record keys
    tokens: dict[int, list[list[int]]] = field(default_factory=dict)  # aligned with keys
    ids: dict[int, list[str]] = field(default_factory=dict)  # text ids, aligned with keys
    short: dict[int, int] = field(default_factory=dict)  # length -> texts shorter than it
    carried: dict[int, list[float]] = field(default_factory=dict)  # climbs: not run, last acc
    stopped: dict | None = None
    engine: dict = field(default_factory=dict)  # the CramConfig it ran with

    @property
    def climbs(self) -> bool:
        """Texts climb the lengths warm-started (never in analyses, which keep each run)."""
        return self.protocol.climbs and not self.keep_vectors

    @property
    def label(self) -> str:
        return self.dataset + ("" if self.n_mem == 1 else f" k={self.n_mem}")

    @property
    def source_key(self) -> str:
        return source_key(self.source)

    def length_of(self, seed: int, text_id: str, length: int) -> int:
        """The length a text runs at: the grid's, or its own draw (sampling: uniform)."""
        return drawn_length(seed, text_id, length) if self.sampling == "uniform" else length


def source_key(source: dict) -> str:
    """One key per data source, whatever the order of its options: its texts load once."""
    return json.dumps(source, sort_keys=True)


def source_spec(task: TaskConfig, settings: RunSettings) -> dict:
    if settings.data_files:
        return {"kind": "local", "path": settings.data_files}
    return task.source


def plan_sweeps(task_cfgs: list[TaskConfig], settings: RunSettings) -> list[Sweep]:
    """One sweep per dataset, source, sampling, number of [mem] vectors and restart; tasks
    that agree on these share it and read all of its records (the paper pooled Table 1's
    gains over every length it ran)."""
    sweeps: dict[tuple, Sweep] = {}
    protocol = settings.protocol
    for task in task_cfgs:
        source = source_spec(task, settings)
        lengths = settings.lengths or task.lengths
        n = settings.samples(task.num_samples)
        past = task.past_capacity if settings.past_capacity is None else settings.past_capacity
        floor = task.stop_below if settings.stop_below is None else settings.stop_below
        analysis = task.kind in metrics.ANALYSIS_KINDS
        # Drawn lengths are the paper's protocol for random texts; climbing needs a grid.
        sampling = task.sampling if not protocol.climbs and not analysis else "grid"
        if sampling == "uniform":
            lengths = [max(lengths)]
        # Analyses and estimates run every length they ask for (no stop rule), apart from
        # the climbing sweeps; records are still shared through their keys.
        group = "analysis" if analysis else \
            "estimate" if task.kind == "capacity_estimate" else "sweep"
        for k in settings.mem_tokens or task.mem_tokens:
            for restart in range(task.restarts) if analysis else range(1):
                key = (task.dataset, source_key(source), sampling, k, group, restart)
                sweep = sweeps.setdefault(key, Sweep(
                    task.dataset, source, k, sorted(set(lengths)), n,
                    past if group == "sweep" else 0, floor if group == "sweep" else 0.0,
                    task.threshold, sampling=sampling, restart=restart, keep_vectors=analysis,
                    protocol=protocol))
                _join(sweep, task, lengths, n, past, floor, group == "sweep")
    return list(sweeps.values())


def _join(sweep: Sweep, task: TaskConfig, lengths: list[int], n: int, past: int,
          floor: float, stops: bool) -> None:
    """A task joins a sweep: the sweep runs what the most demanding of its tasks asks."""
    sweep.lengths = sorted(set(sweep.lengths) | set(lengths))
    if sweep.sampling == "uniform":  # one upper bound for the draws
        sweep.lengths = sweep.lengths[-1:]
    sweep.num_samples = max(sweep.num_samples, n)
    if stops:  # the most patient task decides
        sweep.past_capacity = 0 if not (past and sweep.past_capacity) \
            else max(sweep.past_capacity, past)
        sweep.stop_below = min(sweep.stop_below, floor)
    sweep.threshold = min(sweep.threshold, task.threshold)
    sweep.tasks.append(task.name)
    sweep.task_lengths[task.name] = set(lengths)


def fitting_lengths(lengths: list[int], n_mem: int, context: int | None) -> list[int]:
    """The lengths that fit in the context with the [mem] vectors; past it, the longest that
    fits stands in once for the rest (as the paper ran Pythia-160M at 2016 tokens with 32
    vectors in its 2048)."""
    if context is None:
        return list(lengths)
    room = context - n_mem
    fits = [n for n in lengths if n <= room]
    if len(fits) < len(lengths) and room >= 2 and (not fits or fits[-1] < room):
        fits.append(room)
    return fits


def planned_lengths(sweep: Sweep, context: int | None) -> list[int]:
    """The lengths the plan counts: those that fit in the context with the vectors."""
    return [n for n in sweep.lengths if context is None or n + sweep.n_mem <= context] \
        or sweep.lengths[:1]


def drawn_length(seed: int, text_id: str, longest: int) -> int:
    """The paper's length for a random text: uniform in [2, longest], from the text's own
    seed, so a text's length does not depend on the others or on --limit."""
    return random.Random(f"{seed}:{text_id}:{longest}").randint(2, longest)


def sweep_config(sweep: Sweep, settings: RunSettings, model: Any) -> tuple[Any, dict]:
    """The sweep's engine config, and the settings of it that a record's key holds."""
    config = settings.config(model, sweep.n_mem, sweep.protocol, seed_offset=sweep.restart)
    # Checkpointing changes memory, not results: records made with and without it are shared.
    key = {k: v for k, v in config.to_dict().items() if k not in ("n_mem", "checkpointing")}
    for lever in ("subspace", "compile"):  # off: records made before it existed resume
        if not key[lever]:
            del key[lever]
    key["weights"] = str(model.dtype)  # fp16 and fp32 weights must not share records
    key["record_version"] = RECORD_VERSION
    if sweep.climbs:  # warm starts change results: never mixed with paper
        key["protocol"] = sweep.protocol.name
    return config, key


def runs_to_do(sweep: Sweep, texts: list, tokenizer: Any, spec: str, store: RecordStore,
               settings: RunSettings, model: Any, lengths: list[int]) -> dict[int, int]:
    """Per length, the texts the plan counts: those long enough, less those already
    recorded (a resumed run). A climbing sweep's warm starts past its first length are
    not known before it runs: counted as to do."""
    from cram_harness.engine.schedule import text_sha256
    from cram_harness.models.tokens import encode_text

    _, key_settings = sweep_config(sweep, settings, model)
    todo = {}
    for i, length in enumerate(lengths):
        todo[length] = 0
        for sample in texts[: sweep.num_samples]:
            wanted = sweep.length_of(settings.seed, sample.id, length)
            tokens = encode_text(tokenizer, sample.text, wanted)
            if len(tokens) < wanted:
                continue
            key = record_key(spec, text_sha256(tokens), wanted, sweep.n_mem, key_settings)
            done = (not sweep.climbs or i == 0) and key in store and not (
                sweep.keep_vectors and not store.has_vectors(key))
            todo[length] += not done
    return todo


def plan_lines(sweeps: list[Sweep], settings: RunSettings, model: Any, context: int | None,
               todo: list[dict[int, int]] | None = None) -> list[str]:
    """What the run will do, said before it starts: its sweeps, how many runs at most (less
    those recorded before, `todo` per sweep and length), and about how long they take at
    most here (every run to its step limit, at the step time measured once on this machine,
    scaled by length and batch)."""
    from cram_harness.engine.batching import CPU_MAX_BATCH, time_step

    config = settings.config(model, 1, settings.protocol)  # the steps and precision it runs
    max_steps = config.max_steps
    parts, runs, recorded, steps = [], 0, 0, 0
    for i, s in enumerate(sweeps):
        lengths = planned_lengths(s, context)
        at = (f"lengths drawn from [2, {lengths[0]}]" if s.sampling == "uniform"
              else f"L = {', '.join(map(str, lengths))}")
        parts.append(f"{s.label} ({s.num_samples} texts, {at})")
        counts = todo[i] if todo else {n: s.num_samples for n in lengths}
        runs += sum(counts.values())
        recorded += s.num_samples * len(lengths) - sum(counts.values()) if todo else 0
        batch = settings.batch_size or min(s.num_samples, CPU_MAX_BATCH)
        steps += sum(-(-counts[n] // batch) * max_steps * (n + s.n_mem) for n in lengths)
    ref = min(64, max(max(s.lengths) for s in sweeps))
    # timed at a batch no larger than the texts there are: a --batch-size past them would
    # allocate for texts that never come
    batch = min(settings.batch_size or CPU_MAX_BATCH, max(s.num_samples for s in sweeps))
    per_position = time_step(model, ref + 1, batch, config.dtype) / (ref + 1)
    minutes = steps * per_position / 60
    before = f" ({recorded} recorded before, not run again)" if recorded else ""
    return [f"{len(sweeps)} sweep{'s' if len(sweeps) != 1 else ''}: {'; '.join(parts)}",
            f"at most {runs} run{'s' if runs != 1 else ''} of up to {max_steps} steps{before}, "
            f"about {_duration(minutes)} at most here (texts that converge take less)"]


def _duration(minutes: float) -> str:
    if minutes < 1:
        return "under a minute"
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"
