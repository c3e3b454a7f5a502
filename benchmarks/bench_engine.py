"""python benchmarks/bench_engine.py [--steps 20] [--batch-sizes 1,4,8] [--lengths 16,64]

Throughput of the cramming engine (`cram_harness.engine.loop.cram_batch`) on a real model
(SmolLM2-135M by default) for several batch sizes and text lengths, in one run.

Each (length, batch size) runs the engine for a fixed number of steps on B different passages
of the shared Gutenberg novels, each cut to exactly L tokens. The first 2 steps warm up and are
not timed. `min_margin=1e9` and a patience above the step count make sure no sample converges or
stops early, so every configuration does the same amount of work. The lr and the rest of the
optimizer are the paper's. "Samples per hour" = sample-steps per hour / --steps-per-sample (a
paper-like mean number of steps to cram one text); it is an estimate of end-to-end throughput
that ignores samples leaving the batch once they converge.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import torch
from common import DATA, environment, print_header
from rich.console import Console
from rich.table import Table

from cram_harness.engine.loop import CramConfig, cram_batch
from cram_harness.models.load import load_model
from cram_harness.models.tokens import encode_text

WARMUP = 2
HEADER_CHARS = 20_000  # skip Project Gutenberg's header (roughly)


def int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def passages(tokenizer, length: int, count: int) -> list[list[int]]:
    """`count` consecutive, distinct passages of exactly `length` tokens from the novels."""
    out: list[list[int]] = []
    for path in sorted(DATA.glob("*.txt")):
        words = path.read_text(encoding="utf-8", errors="replace")[HEADER_CHARS:].split()[1:]
        for start in range(0, len(words) - length, length):  # a word is >= 1 token
            ids = encode_text(tokenizer, " ".join(words[start : start + length]), length)
            if len(ids) == length:
                out.append(ids)
            if len(out) == count:
                return out
    raise SystemExit(f"not enough text under {DATA} for {count} passages of {length} tokens")


def peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(model, batch: list[list[int]], steps: int, dtype: str,
            checkpointing: bool = False) -> float:
    """Seconds taken by `steps` engine steps on `batch`, after WARMUP untimed steps."""
    config = CramConfig(max_steps=steps + WARMUP, patience=steps + WARMUP + 1,
                        min_margin=1e9, dtype=dtype, checkpointing=checkpointing)
    marks: dict[int, float] = {}

    def on_step(info) -> None:
        if info.losses.is_cuda:  # the step's kernels are queued: wait for them
            torch.cuda.synchronize()
        marks[info.step] = time.perf_counter()

    outcomes = cram_batch(model, batch, config, on_step=on_step)
    assert all(o.steps == steps + WARMUP for o in outcomes), "a sample stopped early"
    return marks[steps + WARMUP] - marks[WARMUP]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m", help="model spec for load_model")
    parser.add_argument("--batch-sizes", type=int_list, default=[1, 4, 8], help="e.g. 1,4,8")
    parser.add_argument("--lengths", type=int_list, default=[16, 64], help="tokens, e.g. 16,64")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per configuration")
    parser.add_argument("--steps-per-sample", type=float, default=500.0,
                        help="mean steps to cram one text, for samples/hour (default 500)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32",
                        help="model weights and engine autocast dtype")
    parser.add_argument("--checkpointing", action="store_true",
                        help="activation checkpointing (on a CPU, run once with and once "
                             "without: the peak RSS is per process)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    t0 = time.perf_counter()
    model, tokenizer = load_model(args.model, dtype=args.dtype, device=args.device)
    load_s = time.perf_counter() - t0
    device = model.device
    env = environment(model, args.model, load_s)
    settings = {
        "batch_sizes": args.batch_sizes, "lengths": args.lengths, "steps": args.steps,
        "warmup_steps": WARMUP, "steps_per_sample": args.steps_per_sample,
        "engine": CramConfig(min_margin=1e9, dtype=args.dtype,
                             checkpointing=args.checkpointing).to_dict()
        | {"max_steps": "steps + warmup", "patience": "steps + warmup + 1"},
        "data": str(DATA),
    }
    console = Console()
    print_header(console, "cram-harness engine benchmark", env, settings)

    results = []
    for length in args.lengths:
        texts = passages(tokenizer, length, max(args.batch_sizes))
        base = None
        for bsz in args.batch_sizes:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            seconds = measure(model, texts[:bsz], args.steps, args.dtype, args.checkpointing)
            steps_s = args.steps / seconds
            per_hour = steps_s * bsz * 3600 / args.steps_per_sample
            base = base or per_hour  # the first batch size at this length is the reference
            results.append({
                "length": length, "batch_size": bsz, "seconds": seconds,
                "s_per_step": seconds / args.steps, "steps_per_s": steps_s,
                "sample_steps_per_s": steps_s * bsz, "samples_per_hour": per_hour,
                "speedup": per_hour / base, "peak_mem_mib": peak_memory_mib(device),
            })

    ref = args.batch_sizes[0]
    table = Table(title=f"{args.steps} timed steps per row; samples/hour assumes "
                        f"{args.steps_per_sample:g} steps per sample")
    for name in ("tokens", "B", "s/step", "steps/s", "smp-steps/s", "samples/h",
                 f"vs B={ref}", "peak MiB"):
        table.add_column(name, justify="right")
    for r in results:
        table.add_row(str(r["length"]), str(r["batch_size"]), f"{r['s_per_step']:.3f}",
                      f"{r['steps_per_s']:.2f}", f"{r['sample_steps_per_s']:.2f}",
                      f"{r['samples_per_hour']:.1f}", f"{r['speedup']:.2f}x",
                      f"{r['peak_mem_mib']:.0f}")
    console.print(table)
    mem_note = ("torch.cuda.max_memory_allocated, reset per row" if device.type == "cuda"
                else "max RSS of the process so far (getrusage), never reset")
    console.print(f"peak MiB: {mem_note}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"environment": env, "settings": settings, "results": results,
                   "peak_memory": mem_note}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
