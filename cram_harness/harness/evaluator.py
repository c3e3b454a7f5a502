"""evaluate(models, tasks, ...): the one entry point the CLI and Python users share.

For each model, the tasks' length sweeps are planned per dataset and number of [mem]
vectors, so tasks of one dataset share their optimization runs. Each finished sample is
appended at once to the model's record file; a rerun finds it there and does no work.
The results file is written when every task of the model is done.
"""

from __future__ import annotations

import gc
import json
import math
import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from cram_harness import metrics
from cram_harness.errors import CramError
from cram_harness.harness.distributed import Rank, from_environment
from cram_harness.harness.records import RecordStore, record_key
from cram_harness.harness.registry import resolve_tasks
from cram_harness.harness.tasks import ANALYSES, TaskConfig
from cram_harness.metrics import is_exact, usable
from cram_harness.reporting.console import Display
from cram_harness.results.build import build_results
from cram_harness.results.files import check_writable, model_dir, run_lock, write_results

PROTOCOLS = ("paper", "fast", "max")
PROGRESSIVE = ("fast", "max")  # texts climb the lengths, warm-started

# --protocol max: the levers later work found (SPEC section 3), each used unless the user set
# it. The lr is set relative to the spread of the model's embeddings (Adam moves each
# coordinate by ~lr a step, so the paper's absolute 1e-2 is 7% of SmolLM2's std and 1% of
# Gemma-3's); the margin makes the greedy decoding exact.
MAX_LR_PER_EMBEDDING_STD = 0.22
MAX_DEFAULTS = {"min_margin": 0.5, "temperature": 1.0}
# A run from one init fails now and then where a fresh one succeeds (SmolLM2-135M: a novel
# text lost at 8 tokens and decoded at 24), so max gives every lost text a second start.
RETRY_SEED_OFFSET = 1_000_003
# And a text that lost a length still tries the next one, warm-started from its best state
# there (a vector that decodes a longer text decodes its prefixes too, so a lost length is
# often the optimizer's miss, not the vector's limit); it stops after this many in a row.
MAX_LOST_LENGTHS = 1


@dataclass(frozen=True)
class RunSettings:
    """Everything a user can set for a run; written into the results file."""

    limit: int | float | None = None  # texts per length; below 1, a share of each task's
    lengths: tuple[int, ...] | None = None
    mem_tokens: tuple[int, ...] | None = None
    batch_size: int | None = None  # None: as many as the free memory holds
    device: str = "auto"
    dtype: str = "auto"  # the weights': auto is fp32, the paper's
    autocast: str = "auto"  # compute: auto is the paper's (bf16 autocast on a GPU, not Pythia)
    seed: int = 0
    max_steps: int | None = None
    lr: float | None = None
    min_margin: float | None = None
    temperature: float | None = None
    subspace: int | None = None
    checkpointing: bool = False
    compile: bool = False
    data_files: str | None = None
    past_capacity: int | None = None  # None: each task's own; 0 runs the whole grid
    stop_below: float | None = None  # None: each task's own; 0 is no floor
    output_path: str = "results"
    include_path: tuple[str, ...] = ()
    trust_remote_code: bool = False
    # paper: every text at every length. fast: a text climbs to the next length only while
    # it stays lossless, warm-started from its solution at the previous length; a text that
    # failed keeps its last accuracy for the longer lengths (longer prefixes are not easier).
    # max: climbs as fast does, only while greedy decoding is exact, with MAX_DEFAULTS.
    protocol: str = "paper"

    def samples(self, task_samples: int) -> int:
        """Texts per length for a task of `task_samples`: --limit's number or share of them."""
        if self.limit is None:
            return task_samples
        if self.limit < 1:  # lm-eval's fractional --limit
            return max(1, math.ceil(task_samples * self.limit))
        return int(self.limit)

    def engine_options(self, n_mem: int, model: Any) -> dict:
        """CramConfig fields for this run: the user's settings over the protocol's."""
        from cram_harness.engine.adapter import init_std
        from cram_harness.models.load import resolve_autocast

        opts: dict[str, Any] = {"n_mem": n_mem, "seed": self.seed,
                                "dtype": resolve_autocast(self.autocast, model),
                                "checkpointing": self.checkpointing, "compile": self.compile}
        if self.protocol == "max":
            opts.update(MAX_DEFAULTS, lr=round(MAX_LR_PER_EMBEDDING_STD * init_std(model), 6))
        for name in ("max_steps", "lr", "min_margin", "temperature", "subspace"):
            if getattr(self, name) is not None:
                opts[name] = getattr(self, name)
        return opts


@dataclass
class Sweep:
    """One dataset's length sweep at one number of [mem] vectors, shared by its tasks."""

    dataset: str
    source: dict
    n_mem: int
    lengths: list[int]
    num_samples: int
    past_capacity: int  # 0: every length of the grid
    stop_below: float  # 0: no floor
    threshold: float
    sampling: str = "grid"  # uniform: each text draws its length from [2, the one length]
    tasks: list[str] = field(default_factory=list)
    task_lengths: dict[str, set[int]] = field(default_factory=dict)  # what each task reads
    keys: dict[int, list[str]] = field(default_factory=dict)  # length -> record keys
    tokens: dict[int, list[list[int]]] = field(default_factory=dict)  # aligned with keys
    ids: dict[int, list[str]] = field(default_factory=dict)  # text ids, aligned with keys
    restart: int = 0  # analyses run several seeds per text: seed = run seed + restart
    keep_vectors: bool = False
    short: dict[int, int] = field(default_factory=dict)  # length -> texts shorter than it
    carried: dict[int, list[float]] = field(default_factory=dict)  # fast: not run, last acc
    stopped: dict | None = None
    engine: dict = field(default_factory=dict)  # the CramConfig it ran with

    @property
    def progressive(self) -> bool:
        return bool(self.protocol in PROGRESSIVE and not self.keep_vectors)

    protocol: str = "paper"


def evaluate(
    models: str | list[str], tasks: str | list[str], settings: RunSettings = RunSettings(),
    display: Display | None = None, rank: Rank | None = None,
) -> list[dict]:
    """Run tasks on each model in turn; returns one results dict per model (on rank 0).

    Under torchrun or accelerate, each process is a rank that takes its share of every
    length's samples; rank 0 writes the results file (see distributed.py)."""
    models = [m for m in ([models] if isinstance(models, str) else models) if m]
    names = [t for t in ([tasks] if isinstance(tasks, str) else tasks) if t]
    if not models:
        raise CramError("no model given: pass --model SPEC (`cram-eval ls models`)")
    task_cfgs = resolve_tasks(names, settings.include_path)
    _check_settings(settings)
    check_writable(Path(settings.output_path))
    sources = _load_sources(task_cfgs, settings)  # data errors surface before any model loads
    rank = rank or from_environment()
    display = display if display is not None and rank.is_main else Display()
    all_results = []
    for spec in models:
        out_dir = model_dir(Path(settings.output_path), spec)
        with run_lock(out_dir, rank.lock_name):  # before the model loads
            all_results.append(_evaluate_model(spec, names, task_cfgs, sources, settings,
                                               display, rank))
        gc.collect()
    return all_results if rank.is_main else []  # other ranks leave the reporting to rank 0


def _check_settings(s: RunSettings) -> None:
    for name in ("lengths", "mem_tokens"):
        values = getattr(s, name)
        if values is not None and (not values or any(v < 1 for v in values)):
            raise CramError(f"--{name.replace('_', '-')} must be positive integers, got {values}")
    if s.limit is not None and not (0 < s.limit < 1 or (s.limit >= 1 and s.limit == int(s.limit))):
        raise CramError(f"--limit must be a number of texts or a fraction in (0, 1), got "
                        f"{s.limit}")
    if s.protocol not in PROTOCOLS:
        raise CramError(f"unknown protocol {s.protocol!r}: use one of {', '.join(PROTOCOLS)}")
    # zero, negative, NaN, inf, overflow and floats where a whole number is needed: as
    # export, the API and task files check them
    from cram_harness.validation import check_options, cli_flag

    check_options({name: getattr(s, name) for name in (
        "max_steps", "lr", "min_margin", "temperature", "subspace", "seed", "batch_size",
        "past_capacity", "stop_below")}, cli_flag)
    for k in s.mem_tokens or ():
        check_options({"mem_tokens": k}, cli_flag)


def _source_spec(task: TaskConfig, settings: RunSettings) -> dict:
    if settings.data_files:
        return {"kind": "local", "path": settings.data_files}
    return task.source


def _load_sources(task_cfgs: list[TaskConfig], settings: RunSettings) -> dict[str, list]:
    """Texts per source (keyed by its JSON), loaded once whatever the number of tasks."""
    from cram_harness.harness.registry import make_source

    loaded: dict[str, list] = {}
    limit = max(settings.samples(t.num_samples) for t in task_cfgs)
    for task in task_cfgs:
        spec = _source_spec(task, settings)
        key = json.dumps(spec, sort_keys=True)
        if key not in loaded:
            loaded[key] = make_source(spec).texts(limit=limit, seed=settings.seed)
            if not loaded[key]:
                raise CramError(f"data source {spec} gave no texts: check its path or options")
    return loaded


def plan_sweeps(task_cfgs: list[TaskConfig], settings: RunSettings) -> list[Sweep]:
    """One sweep per dataset, source, sampling, number of [mem] vectors and restart; tasks
    that agree on these share it and read all of its records (the paper pooled Table 1's
    gains over every length it ran)."""
    sweeps: dict[tuple, Sweep] = {}
    for task in task_cfgs:
        source = _source_spec(task, settings)
        lengths = settings.lengths or task.lengths
        n = settings.samples(task.num_samples)
        past = task.past_capacity if settings.past_capacity is None else settings.past_capacity
        floor = task.stop_below if settings.stop_below is None else settings.stop_below
        analysis = task.kind in ANALYSES
        # Drawn lengths are the paper's protocol for random texts; climbing needs a grid.
        sampling = task.sampling if settings.protocol == "paper" and not analysis else "grid"
        if sampling == "uniform":
            lengths = [max(lengths)]
        # Analyses and estimates run every length they ask for (no stop rule), apart from
        # the climbing sweeps; records are still shared through their keys.
        group = "analysis" if analysis else \
            "estimate" if task.kind == "capacity_estimate" else "sweep"
        restarts = range(task.restarts) if analysis else range(1)
        for k in settings.mem_tokens or task.mem_tokens:
            for restart in restarts:
                key = (task.dataset, json.dumps(source, sort_keys=True), sampling, k, group,
                       restart)
                sweep = sweeps.setdefault(key, Sweep(
                    task.dataset, source, k, sorted(set(lengths)), n,
                    past if group == "sweep" else 0, floor if group == "sweep" else 0.0,
                    task.threshold, sampling=sampling, restart=restart, keep_vectors=analysis,
                    protocol=settings.protocol))
                sweep.lengths = sorted(set(sweep.lengths) | set(lengths))
                if sampling == "uniform":  # one upper bound for the draws
                    sweep.lengths = sweep.lengths[-1:]
                sweep.num_samples = max(sweep.num_samples, n)
                if group == "sweep":  # the most patient task decides
                    sweep.past_capacity = 0 if not (past and sweep.past_capacity) \
                        else max(sweep.past_capacity, past)
                    sweep.stop_below = min(sweep.stop_below, floor)
                sweep.threshold = min(sweep.threshold, task.threshold)
                sweep.tasks.append(task.name)
                sweep.task_lengths[task.name] = set(lengths)
    return list(sweeps.values())


def _evaluate_model(spec, names, task_cfgs, sources, settings, display, rank) -> dict:
    from cram_harness.models.load import load_model

    started = time.time()
    display.model_start(spec)
    model, tokenizer = load_model(spec, dtype=settings.dtype, device=rank.device(settings.device),
                                  trust_remote_code=settings.trust_remote_code,
                                  notify=display.note)
    info = model_info(model, tokenizer)
    load_s = time.time() - started
    display.model_loaded(spec, info, load_s)
    out_dir = model_dir(Path(settings.output_path), spec)
    store = RecordStore(out_dir / rank.records_name)
    sweeps = plan_sweeps(task_cfgs, settings)
    for sweep in sweeps:  # before any work: [mem] vectors that leave no room for a text
        if info["context_length"] is not None and sweep.n_mem + 2 > info["context_length"]:
            raise CramError(
                f"{sweep.n_mem} [mem] vectors leave no room for a text in {spec}'s context "
                f"of {info['context_length']} positions (a text needs at least 2 tokens): give "
                f"--mem-tokens {info['context_length'] - 2} or less")
    if rank.is_main and display.shows_plan:
        todo = [runs_to_do(s, sources[json.dumps(s.source, sort_keys=True)], tokenizer, spec,
                           store, settings, model, planned_lengths(s, info)) for s in sweeps]
        display.plan(plan_lines(sweeps, settings, model, info, todo))
    opt_s = 0.0
    for sweep in sweeps:
        opt_s += _run_sweep(sweep, model, tokenizer, info, spec, store, sources, settings,
                            display, rank)
    analyses = {t.name: run_analysis(t, sweeps, store, model)
                for t in task_cfgs if t.kind in ANALYSES and rank.is_main}
    analyses.update({t.name: run_estimate(t, sweeps, store, model)
                     for t in task_cfgs if t.kind == "capacity_estimate" and rank.is_main})
    results, samples = build_results(
        spec=spec, requested=names, task_cfgs=task_cfgs, sweeps=sweeps, store=store,
        model_info=info, settings=asdict(settings), analyses=analyses,
        timings={"model_load_s": load_s, "optimization_s": opt_s,
                 "total_s": time.time() - started},
        device=str(model.device), include_path=settings.include_path)
    if rank.is_main:
        results["results_file"] = str(write_results(out_dir, results, samples))
    rank.barrier()  # no rank leaves before the results are written
    del model
    _free_accelerator_memory()
    return results


def planned_lengths(sweep: Sweep, info: dict) -> list[int]:
    """The lengths the plan counts: those that fit in the context with the vectors."""
    limit = info["context_length"]
    return [n for n in sweep.lengths if limit is None or n + sweep.n_mem <= limit] \
        or sweep.lengths[:1]


def plan_lines(sweeps: list[Sweep], settings: RunSettings, model: Any, info: dict,
               todo: list[dict[int, int]] | None = None) -> list[str]:
    """What the run will do, said before it starts: its sweeps, how many runs at most (less
    those recorded before, `todo` per sweep and length), and about how long they take at
    most here (every run to its step limit, at the step time measured once on this machine,
    scaled by length and batch)."""
    from cram_harness.engine.batching import CPU_MAX_BATCH, time_step

    max_steps = settings.max_steps or 5000
    parts, runs, recorded, steps = [], 0, 0, 0
    for i, s in enumerate(sweeps):
        lengths = planned_lengths(s, info)
        at = (f"lengths drawn from [2, {lengths[0]}]" if s.sampling == "uniform"
              else f"L = {', '.join(map(str, lengths))}")
        parts.append(f"{s.dataset}{'' if s.n_mem == 1 else f' k={s.n_mem}'} "
                     f"({s.num_samples} texts, {at})")
        counts = todo[i] if todo else {n: s.num_samples for n in lengths}
        runs += sum(counts.values())
        recorded += s.num_samples * len(lengths) - sum(counts.values()) if todo else 0
        batch = settings.batch_size or min(s.num_samples, CPU_MAX_BATCH)
        steps += sum(-(-counts[n] // batch) * max_steps * (n + s.n_mem) for n in lengths)
    ref = min(64, max(max(s.lengths) for s in sweeps))
    # timed at a batch no larger than the texts there are: a --batch-size past them would
    # allocate for texts that never come
    batch = min(settings.batch_size or CPU_MAX_BATCH, max(s.num_samples for s in sweeps))
    per_position = time_step(model, ref + 1, batch, settings.engine_options(1, model)["dtype"]) \
        / (ref + 1)
    minutes = steps * per_position / 60
    before = f" ({recorded} recorded before, not run again)" if recorded else ""
    return [f"{len(sweeps)} sweep{'s' if len(sweeps) != 1 else ''}: {'; '.join(parts)}",
            f"at most {runs} run{'s' if runs != 1 else ''} of up to {max_steps} steps{before}, "
            f"about {_duration(minutes)} at most here (texts that converge take less)"]


def _duration(minutes: float) -> str:
    if minutes < 1:
        return "under a minute"
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def model_info(model: Any, tokenizer: Any) -> dict:
    from cram_harness.integrations.peft import base_fingerprint
    from cram_harness.models.load import CHECKPOINTS
    from cram_harness.models.tokens import adds_bos, context_length

    fp = base_fingerprint(model)
    spec = getattr(model, "cram_spec", "")
    return {
        "checkpoint": CHECKPOINTS.get(spec, spec),
        "model_type": fp["model_type"], "d_model": fp["d_model"], "vocab_size": fp["vocab_size"],
        "num_layers": fp["num_layers"], "context_length": context_length(model),
        "adds_bos": adds_bos(tokenizer),
        "eq1_capacity": metrics.theoretical_capacity(fp["d_model"], fp["vocab_size"]),
        "dtype": str(model.dtype).replace("torch.", ""),
    }


# Bumped when records gain or change a field that results are made of (2: min_loss,
# greedy_accuracy, L counting BOS), so that older records are run again, not misread.
RECORD_VERSION = 2


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


def drawn_length(seed: int, text_id: str, longest: int) -> int:
    """The paper's length for a random text: uniform in [2, longest], from the text's own
    seed, so a text's length does not depend on the others or on --limit."""
    return random.Random(f"{seed}:{text_id}:{longest}").randint(2, longest)


def sweep_optimizer(sweep: Sweep, settings: RunSettings, model: Any) -> tuple[Any, dict]:
    """The sweep's engine config, and the settings of it that a record's key holds."""
    from cram_harness.engine.loop import CramConfig

    options = settings.engine_options(sweep.n_mem, model)
    try:
        config = CramConfig(**{**options, "seed": options["seed"] + sweep.restart})
    except ValueError as exc:
        raise CramError(f"bad engine setting: {exc}") from exc
    # Checkpointing changes memory, not results: records made with and without it are shared.
    optimizer = {k: v for k, v in config.to_dict().items() if k not in ("n_mem", "checkpointing")}
    for lever in ("subspace", "compile"):  # off: records made before it existed resume
        if not optimizer[lever]:
            del optimizer[lever]
    optimizer["weights"] = str(model.dtype)  # fp16 and fp32 weights must not share records
    optimizer["record_version"] = RECORD_VERSION
    if sweep.progressive:  # warm starts change results: never mixed with paper
        optimizer["protocol"] = settings.protocol
    return config, optimizer


def runs_to_do(sweep: Sweep, texts: list, tokenizer: Any, spec: str, store: RecordStore,
               settings: RunSettings, model: Any, lengths: list[int]) -> dict[int, int]:
    """Per length, the texts the plan counts: those long enough, less those already
    recorded (a resumed run). A progressive sweep's warm starts past its first length are
    not known before it runs: counted as to do."""
    from cram_harness.engine.run import text_sha256
    from cram_harness.models.tokens import encode_text

    _, optimizer = sweep_optimizer(sweep, settings, model)
    todo = {}
    for i, length in enumerate(lengths):
        todo[length] = 0
        for sample in texts[: sweep.num_samples]:
            wanted = drawn_length(settings.seed, sample.id, length) \
                if sweep.sampling == "uniform" else length
            tokens = encode_text(tokenizer, sample.text, wanted)
            if len(tokens) < wanted:
                continue
            key = record_key(spec, text_sha256(tokens), wanted, sweep.n_mem, optimizer)
            done = (not sweep.progressive or i == 0) and key in store and not (
                sweep.keep_vectors and not store.has_vectors(key))
            todo[length] += not done
    return todo


def _run_sweep(sweep, model, tokenizer, info, spec, store, sources, settings, display,
               rank: Rank) -> float:
    import torch

    from cram_harness.engine.run import cram_token_ids, text_sha256
    from cram_harness.models.tokens import encode_text

    texts = sources[json.dumps(sweep.source, sort_keys=True)][: sweep.num_samples]
    config, optimizer = sweep_optimizer(sweep, settings, model)
    sweep.engine = config.to_dict()
    if config.subspace > info["d_model"]:
        raise CramError(f"--subspace {config.subspace} is more than {spec}'s {info['d_model']} "
                        "dimensions: give at most that, or 0 for all")
    progressive = sweep.progressive
    keep_vectors = sweep.keep_vectors or progressive
    limit = info["context_length"]
    label = sweep.dataset + ("" if sweep.n_mem == 1 else f" k={sweep.n_mem}")
    seconds = 0.0
    alive: dict[str, str] | None = None  # progressive: text id -> key of its last solution
    last_acc: dict[str, float] = {}  # progressive: accuracy where a text stopped climbing
    lost: dict[str, int] = {}  # progressive: lengths lost in a row, per text
    below, reached = 0, False  # lengths in a row below the threshold; whether one passed
    lengths = fitting_lengths(sweep.lengths, sweep.n_mem, limit)
    if lengths != sweep.lengths:
        what = "drawn up to" if sweep.sampling == "uniform" else "run up to"
        display.warn(f"lengths are {what} {lengths[-1]}, not {sweep.lengths[-1]}: "
                     f"{sweep.n_mem} [mem] + a longer text do not fit in the context of {limit}")
    for length in lengths:
        jobs, keys, ids, token_lists, short = [], [], [], [], 0
        for sample in texts:
            if alive is not None and sample.id not in alive:
                continue  # it stopped climbing; its last accuracy is carried
            wanted = drawn_length(settings.seed, sample.id, length) \
                if sweep.sampling == "uniform" else length
            tokens = encode_text(tokenizer, sample.text, wanted)
            if len(tokens) < wanted:
                short += 1  # recorded as such, never run at a length it does not reach
                continue
            warm = alive[sample.id] if alive is not None else None
            # a warm start is part of what made the record (resumes never mix starts)
            made = optimizer if warm is None else {**optimizer, "warm_start": warm}
            key = record_key(spec, text_sha256(tokens), wanted, sweep.n_mem, made)
            keys.append(key)
            ids.append(sample.id)
            token_lists.append(tokens)
            if key not in store or (keep_vectors and not store.has_vectors(key)):
                if rank.owns(len(keys) - 1):  # by place in the length's list, not by what is done
                    jobs.append((key, sample.id, tokens, warm))
        sweep.keys[length], sweep.tokens[length], sweep.short[length] = keys, token_lists, short
        sweep.ids[length] = ids
        sweep.carried[length] = list(last_acc.values())
        if not keys:
            reason = "no text is that long" if alive is None or short else \
                f"no text is lossless any more ({settings.protocol} protocol)"
            display.warn(f"{sweep.dataset}: {reason} at {length} tokens; the sweep stops here")
            sweep.stopped = {"length": length, "reason": reason}
            break
        display.length_start(f"{label} L{'<=' if sweep.sampling == 'uniform' else '='}{length}",
                             length, len(jobs), len(keys) - len(jobs), config.max_steps)

        def run_jobs(jobs: list, config: Any, length: int = length) -> float:
            """Cram (key, text id, tokens, warm-start key or None) jobs; stores each result
            as it finishes. Returns the seconds it took."""
            def store_result(index: int, result: Any) -> None:
                key, sample_id, _, _ = jobs[index]
                record = {**result.record(), "key": key, "dataset": sweep.dataset,
                          "sample_id": sample_id, "length": result.num_tokens,
                          "n_mem": sweep.n_mem, "restart": sweep.restart,
                          "sampling": sweep.sampling}
                if keep_vectors:  # vectors first: a record means its vectors are there
                    store.save_vectors(key, result.memory)
                store.append(record)
                display.sample_done(record)

            t0 = time.time()
            if jobs:  # this rank's pending samples
                warm = [job[3] for job in jobs]
                init = None if warm[0] is None else torch.stack(
                    [store.load_vectors(w) for w in warm])
                cram_token_ids(model, [job[2] for job in jobs], config, init=init,
                               batch_size=settings.batch_size, on_step=display.step,
                               on_result=store_result,
                               max_tokens=None if sweep.sampling == "uniform" else length)
            if rank.world > 1:  # every rank reads the others' records before going on
                rank.barrier()
                store.refresh()
            return time.time() - t0

        seconds += run_jobs(jobs, config)
        if settings.protocol == "max":  # a second, fresh start where the first one lost
            retry_opt = {**optimizer, "attempt": 2}
            retry_keys = [record_key(spec, text_sha256(t), len(t), sweep.n_mem, retry_opt)
                          for t in token_lists]
            retries = [(rkey, text_id, tokens, None) for i, (key, rkey, text_id, tokens)
                       in enumerate(zip(keys, retry_keys, ids, token_lists))
                       if not is_exact(store.get(key)) and rkey not in store and rank.owns(i)]
            seconds += run_jobs(retries, replace(config, seed=config.seed + RETRY_SEED_OFFSET))
            for i, (key, rkey) in enumerate(zip(keys, retry_keys)):
                if rkey in store and _better(store.get(rkey), store.get(key)):
                    keys[i] = rkey  # the text's result at this length is its better attempt
        recs = {t: store.get(k) for t, k in zip(ids, keys)}
        accs = [r["best_accuracy"] for r in recs.values() if usable(r)]
        accs += sweep.carried[length]
        mean_acc = sum(accs) / len(accs) if accs else 0.0
        display.length_done(label, length, mean_acc)
        if progressive:
            lost = {t: 0 if _climbs(r, settings.protocol) else lost.get(t, 0) + 1
                    for t, r in recs.items()}
            allowed = MAX_LOST_LENGTHS if settings.protocol == "max" else 0
            alive = {t: keys[ids.index(t)] for t, r in recs.items()
                     if lost[t] <= allowed and usable(r)}
            # A faulted run is no result: its text neither climbs nor carries an accuracy.
            last_acc.update({t: _stopped_accuracy(r) for t, r in recs.items()
                             if t not in alive and usable(r)})
        below = below + 1 if mean_acc < sweep.threshold else 0
        reached = reached or mean_acc >= sweep.threshold
        if sweep.past_capacity and below >= sweep.past_capacity:
            where = "past capacity" if reached else "no length reached it"
            sweep.stopped = {"length": length, "reason": (
                f"{below} lengths in a row below mean accuracy {sweep.threshold}: {where}, "
                "with full vectors for the gains (--past-capacity 0 runs the whole grid)")}
            break
        if sweep.stop_below and mean_acc < sweep.stop_below:
            sweep.stopped = {"length": length, "reason": (
                f"mean best accuracy {mean_acc:.3f} fell below the floor {sweep.stop_below}")}
            break
    else:
        if lengths and lengths != sweep.lengths and sweep.sampling == "grid":
            dropped = next(n for n in sweep.lengths if n not in lengths)
            sweep.stopped = {"length": dropped, "reason": (
                f"context of {limit} positions (ran {lengths[-1]}, the longest that fits)")}
    return seconds


def _climbs(rec: dict, protocol: str) -> bool:
    """Whether a text won this length: lossless (fast), or greedy-exact too (max)."""
    if protocol == "max":
        return is_exact(rec)
    return rec["best_accuracy"] >= 1.0 and usable(rec)


def _better(new: dict, old: dict) -> bool:
    if is_exact(new) != is_exact(old):
        return is_exact(new)
    return new["best_accuracy"] > old["best_accuracy"]


def _stopped_accuracy(rec: dict) -> float:
    """What a text that stopped climbing counts at the longer lengths: its best accuracy or,
    where that was 100% but greedy decoding missed (max protocol), the share of the text
    greedy decoding got right before its first miss."""
    if rec["best_accuracy"] >= 1.0 and not rec["greedy_exact"] \
            and rec.get("first_mismatch") is not None:
        return rec["first_mismatch"] / rec["num_predicted"]
    return rec["best_accuracy"]


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
    full = [r for r in recs if r["best_accuracy"] <= task.threshold and usable(r)]
    if not full:
        return {**out, "reason": f"no vector is full at {probe} tokens: probe a longer length"}
    gain = metrics.mean_std(r["information_gain"] for r in full)
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
                if is_exact(rec):
                    longest[text_id] = max(longest.get(text_id, 0), rec["length"])
    return longest


def _free_accelerator_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
