"""evaluate(models, tasks, settings): the one entry point the CLI and Python users share.

For each model, the tasks' length sweeps are planned per dataset and number of [mem]
vectors (plan.py), so tasks of one dataset share their optimization runs; each sweep runs
length by length (sweep.py), appending each finished sample to the model's record file at
once, so a rerun finds it there and does no work. The results file is written when every
task of the model is done.
"""

from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Any

from cram_harness import metrics
from cram_harness.errors import CramError
from cram_harness.harness.analysis_tasks import run_analysis, run_estimate
from cram_harness.harness.display import Display
from cram_harness.harness.distributed import Rank, from_environment
from cram_harness.harness.plan import (
    plan_lines,
    plan_sweeps,
    planned_lengths,
    runs_to_do,
    source_key,
    source_spec,
)
from cram_harness.harness.registry import group_members, resolve_tasks
from cram_harness.harness.settings import RunSettings
from cram_harness.harness.sweep import ModelContext, SweepRunner
from cram_harness.harness.tasks import TaskConfig
from cram_harness.results.build import build_results
from cram_harness.results.files import check_writable, model_dir, run_lock, write_results
from cram_harness.results.records import RecordStore

__all__ = ["RunSettings", "evaluate"]


def evaluate(
    models: str | list[str], tasks: str | list[str], settings: RunSettings | None = None,
    display: Display | None = None, rank: Rank | None = None,
) -> list[dict]:
    """Run tasks on each model in turn; returns one results dict per model (on rank 0).

    Under torchrun or accelerate, each process is a rank that takes its share of every
    length's samples; rank 0 writes the results file (see distributed.py)."""
    settings = settings or RunSettings()
    models = [m for m in ([models] if isinstance(models, str) else models) if m]
    names = [t for t in ([tasks] if isinstance(tasks, str) else tasks) if t]
    if not models:
        raise CramError("no model given: pass --model SPEC (`cram-eval ls models`)")
    task_cfgs = resolve_tasks(names, settings.include_path)
    settings.check()
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


def _load_sources(task_cfgs: list[TaskConfig], settings: RunSettings) -> dict[str, list]:
    """Texts per source (keyed by its JSON), loaded once whatever the number of tasks."""
    from cram_harness.harness.registry import make_source

    loaded: dict[str, list] = {}
    limit = max(settings.samples(t.num_samples) for t in task_cfgs)
    for task in task_cfgs:
        spec = source_spec(task, settings)
        key = source_key(spec)
        if key not in loaded:
            loaded[key] = make_source(spec).texts(limit=limit, seed=settings.seed)
            if not loaded[key]:
                raise CramError(f"data source {spec} gave no texts: check its path or options")
    return loaded


def _evaluate_model(spec: str, names: list[str], task_cfgs: list[TaskConfig], sources: dict,
                    settings: RunSettings, display: Display, rank: Rank) -> dict:
    from cram_harness.models.info import model_info
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
    ctx = ModelContext(spec, model, tokenizer, info, store, settings, display, rank)
    if rank.is_main and display.shows_plan:
        todo = [runs_to_do(s, sources[s.source_key], tokenizer, spec, store, settings, model,
                           planned_lengths(s, info["context_length"])) for s in sweeps]
        display.plan(plan_lines(sweeps, settings, model, info["context_length"], todo))
    opt_s = sum(SweepRunner(sweep, sources[sweep.source_key], ctx).sweep_lengths()
                for sweep in sweeps)
    analyses = {t.name: run_analysis(t, sweeps, store, model)
                for t in task_cfgs if t.kind in metrics.ANALYSIS_KINDS and rank.is_main}
    analyses.update({t.name: run_estimate(t, sweeps, store, model)
                     for t in task_cfgs if t.kind == "capacity_estimate" and rank.is_main})
    results, samples = build_results(
        spec=spec, task_cfgs=task_cfgs, sweeps=sweeps, store=store,
        model_info=info, settings=settings.to_config(), protocol=settings.protocol,
        analyses=analyses,
        timings={"model_load_s": load_s, "optimization_s": opt_s,
                 "total_s": time.time() - started, **queue_timings(ctx.queue)},
        device=str(model.device), groups=group_members(names, settings.include_path))
    if rank.is_main:
        results["results_file"] = str(write_results(out_dir, results, samples))
    rank.barrier()  # no rank leaves before the results are written
    del model
    _free_accelerator_memory()
    return results


def queue_timings(queue: Any) -> dict:
    """How full the batches stayed and what decoding cost (the engine's QueueStats)."""
    return {"batch_steps": queue.batch_steps, "occupancy": round(queue.occupancy, 4),
            "padded_share": round(queue.padded_share, 4),
            "decode_share": round(queue.decode_share, 4)}


def _free_accelerator_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
