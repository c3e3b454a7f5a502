"""Running one sweep, length by length: `jobs` says what to cram at a length, `run` crams
and records it, `advance` reads the length's records and decides which texts climb on and
whether the sweep goes on. Each finished sample is appended to the record file at once, so a
rerun finds it and does no work."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from cram_harness.errors import CramError
from cram_harness.harness.distributed import Rank
from cram_harness.harness.plan import Sweep, fitting_lengths, sweep_config
from cram_harness.harness.settings import RunSettings
from cram_harness.protocols import SECOND_START_SEED_OFFSET, better
from cram_harness.results.records import RecordStore, SampleRecord, record_key


def _queue_stats() -> Any:
    from cram_harness.engine.schedule import QueueStats  # torch: only once a model runs

    return QueueStats()


@dataclass
class ModelContext:
    """What every sweep of one model shares."""

    spec: str
    model: Any
    tokenizer: Any
    info: dict
    store: RecordStore
    settings: RunSettings
    display: Any
    rank: Rank
    queue: Any = field(default_factory=_queue_stats)  # over every sweep's batches


class Job(NamedTuple):
    key: str
    text_id: str
    tokens: list[int]
    warm: str | None  # the key of the record whose vectors it starts from


class SweepRunner:
    def __init__(self, sweep: Sweep, texts: list, ctx: ModelContext):
        self.sweep, self.texts, self.ctx = sweep, texts[: sweep.num_samples], ctx
        self.config, self.key_settings = sweep_config(sweep, ctx.settings, ctx.model)
        sweep.engine = self.config.to_dict()
        d_model = ctx.info["d_model"]
        if self.config.subspace > d_model:
            raise CramError(f"--subspace {self.config.subspace} is more than {ctx.spec}'s "
                            f"{d_model} dimensions: give at most that, or 0 for all")
        self.keep_vectors = sweep.keep_vectors or sweep.climbs  # climbs start from them
        self.alive: dict[str, str] | None = None  # climbing: text id -> key of its last win
        self.last_accuracy: dict[str, float] = {}  # climbing: where a text stopped
        self.lost: dict[str, int] = {}  # climbing: lengths lost in a row, per text
        self.below, self.reached = 0, False  # lengths in a row below the threshold; any above
        self.seconds = 0.0

    def sweep_lengths(self) -> float:
        """Every length until a stop rule holds; returns the seconds spent cramming."""
        sweep, context = self.sweep, self.ctx.info["context_length"]
        lengths = fitting_lengths(sweep.lengths, sweep.n_mem, context)
        if lengths != sweep.lengths:
            what = "drawn up to" if sweep.sampling == "uniform" else "run up to"
            self.ctx.display.warn(
                f"lengths are {what} {lengths[-1]}, not {sweep.lengths[-1]}: {sweep.n_mem} "
                f"[mem] + a longer text do not fit in the context of {context}")
        for length in lengths:
            jobs = self.jobs(length)
            if not sweep.keys[length]:
                reason = "no text is that long" if self.alive is None or sweep.short[length] \
                    else f"no text is lossless any more ({sweep.protocol.name} protocol)"
                self.ctx.display.warn(f"{sweep.dataset}: {reason} at {length} tokens; the sweep "
                                      "stops here")
                sweep.stopped = {"length": length, "reason": reason}
                break
            self.ctx.display.length_start(
                f"{sweep.label} L{'<=' if sweep.sampling == 'uniform' else '='}{length}",
                length, len(jobs), len(sweep.keys[length]) - len(jobs), self.config.max_steps)
            self.cram(jobs, self.config, length)
            if sweep.protocol.second_start:
                self.second_start(length)
            if not self.advance(length):
                break
        else:
            if lengths and lengths != sweep.lengths and sweep.sampling == "grid":
                dropped = next(n for n in sweep.lengths if n not in lengths)
                sweep.stopped = {"length": dropped, "reason": (
                    f"context of {context} positions (ran {lengths[-1]}, the longest that "
                    "fits)")}
        return self.seconds

    def jobs(self, length: int) -> list[Job]:
        """The length's texts (keys, ids, tokens noted on the sweep) and, of those, the ones
        this rank must cram: not recorded yet, or recorded without the vectors it needs."""
        from cram_harness.engine.schedule import text_sha256
        from cram_harness.models.tokens import encode_text

        sweep, store, ctx = self.sweep, self.ctx.store, self.ctx
        jobs, keys, ids, token_lists, short = [], [], [], [], 0
        for sample in self.texts:
            if self.alive is not None and sample.id not in self.alive:
                continue  # it stopped climbing; its last accuracy is carried
            wanted = sweep.length_of(ctx.settings.seed, sample.id, length)
            tokens = encode_text(ctx.tokenizer, sample.text, wanted)
            if len(tokens) < wanted:
                short += 1  # recorded as such, never run at a length it does not reach
                continue
            warm = self.alive[sample.id] if self.alive is not None else None
            # a warm start is part of what made the record (resumes never mix starts)
            made = self.key_settings if warm is None else {**self.key_settings,
                                                           "warm_start": warm}
            key = record_key(ctx.spec, text_sha256(tokens), wanted, sweep.n_mem, made)
            keys.append(key)
            ids.append(sample.id)
            token_lists.append(tokens)
            missing = key not in store or (self.keep_vectors and not store.has_vectors(key))
            if missing and ctx.rank.owns(len(keys) - 1):  # by place, not by what is done
                jobs.append(Job(key, sample.id, tokens, warm))
        sweep.keys[length], sweep.tokens[length], sweep.short[length] = keys, token_lists, short
        sweep.ids[length] = ids
        sweep.carried[length] = list(self.last_accuracy.values())
        return jobs

    def cram(self, jobs: list[Job], config: Any, length: int) -> None:
        """Cram the jobs (all warm or all cold), storing each record as it finishes; then,
        in a distributed run, wait for the other ranks and read their records."""
        import torch

        from cram_harness.engine.schedule import cram_token_ids

        sweep, store, ctx = self.sweep, self.ctx.store, self.ctx

        def store_result(index: int, result: Any) -> None:
            job = jobs[index]
            record = SampleRecord.from_json({
                **result.record(), "key": job.key, "dataset": sweep.dataset,
                "sample_id": job.text_id, "length": result.num_tokens, "n_mem": sweep.n_mem,
                "restart": sweep.restart, "sampling": sweep.sampling})
            if self.keep_vectors:  # vectors first: a record means its vectors are there
                store.save_vectors(job.key, result.memory)
            store.append(record)
            ctx.display.sample_done(record)

        started = time.time()
        if jobs:
            init = None if jobs[0].warm is None else torch.stack(
                [store.load_vectors(job.warm) for job in jobs])
            cram_token_ids(ctx.model, [job.tokens for job in jobs], config, init=init,
                           batch_size=ctx.settings.batch_size, on_step=ctx.display.step,
                           on_result=store_result, stats=ctx.queue,
                           max_tokens=None if sweep.sampling == "uniform" else length)
        if ctx.rank.world > 1:  # every rank reads the others' records before going on
            ctx.rank.barrier()
            store.refresh()
        self.seconds += time.time() - started

    def second_start(self, length: int) -> None:
        """A fresh start, with another seed, for each text that lost the length; the
        better of its two records is its result there."""
        from cram_harness.engine.schedule import text_sha256

        sweep, store, ctx = self.sweep, self.ctx.store, self.ctx
        keys, ids, token_lists = sweep.keys[length], sweep.ids[length], sweep.tokens[length]
        retry_settings = {**self.key_settings, "attempt": 2}
        retry_keys = [record_key(ctx.spec, text_sha256(t), len(t), sweep.n_mem, retry_settings)
                      for t in token_lists]
        jobs = [Job(rkey, text_id, tokens, None) for i, (key, rkey, text_id, tokens)
                in enumerate(zip(keys, retry_keys, ids, token_lists))
                if not store.get(key).exact and rkey not in store and ctx.rank.owns(i)]
        self.cram(jobs, replace(self.config, seed=self.config.seed + SECOND_START_SEED_OFFSET),
                 length)
        for i, (key, rkey) in enumerate(zip(keys, retry_keys)):
            if rkey in store and better(store.get(rkey), store.get(key)):
                keys[i] = rkey

    def advance(self, length: int) -> bool:
        """Read the length's records: which texts climb on, and whether a stop rule holds
        (False: the sweep stops here, the reason noted on it)."""
        sweep, protocol = self.sweep, self.sweep.protocol
        keys, ids = sweep.keys[length], sweep.ids[length]
        records = {t: self.ctx.store.get(k) for t, k in zip(ids, keys)}
        accuracies = [r.best_accuracy for r in records.values() if r.usable]
        accuracies += sweep.carried[length]
        mean = sum(accuracies) / len(accuracies) if accuracies else 0.0
        self.ctx.display.length_done(sweep.label, length, mean)
        if sweep.climbs:
            self.lost = {t: 0 if protocol.wins(r) else self.lost.get(t, 0) + 1
                         for t, r in records.items()}
            self.alive = {t: keys[ids.index(t)] for t, r in records.items()
                          if self.lost[t] <= protocol.lost_lengths_allowed and r.usable}
            # A faulted run is no result: its text neither climbs nor carries an accuracy.
            self.last_accuracy.update({t: protocol.stopped_accuracy(r) for t, r in records.items()
                                       if t not in self.alive and r.usable})
        self.below = self.below + 1 if mean < sweep.threshold else 0
        self.reached = self.reached or mean >= sweep.threshold
        if sweep.past_capacity and self.below >= sweep.past_capacity:
            where = "past capacity" if self.reached else "no length reached it"
            sweep.stopped = {"length": length, "reason": (
                f"{self.below} lengths in a row below mean accuracy {sweep.threshold}: "
                f"{where}, with full vectors for the gains (--past-capacity 0 runs the whole "
                "grid)")}
            return False
        if sweep.stop_below and mean < sweep.stop_below:
            sweep.stopped = {"length": length, "reason": (
                f"mean best accuracy {mean:.3f} fell below the floor {sweep.stop_below}")}
            return False
        return True
