"""python benchmarks/bench_capacity.py [--texts 4] [--lengths 8,16,24,32,48,64]

Decoding capacity of SmolLM2-135M on the shared novels by the paper's grid protocol,
`--protocol fast` (texts climb the grid while lossless, warm-started) and `--protocol max`
(climbs while greedy decoding is exact, with later work's levers), in one run, on the same
texts: capacity, each text's longest greedy-exact length (tokens per vector), optimizer steps
and wall time of each. Goals: fast within one grid step of paper at no more than a third of
its steps; max at least 1.3x the paper protocol's tokens per vector, all greedy-exact.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from common import DATA, print_header
from rich.console import Console
from rich.table import Table

from cram_harness.harness.evaluator import RunSettings, evaluate
from cram_harness.metrics import metric, result_key
from cram_harness.protocols import PROTOCOLS
from cram_harness.results.records import read_records


def _key(name: str, protocol: str) -> str:
    """A metric's key in the results under the protocol's name for it."""
    return result_key(metric(name).key(PROTOCOLS[protocol].climbs))


def tokens_per_vector(records: list[dict]) -> dict[str, int]:
    """Each text's longest length that greedy decoding gives back exactly (0: none)."""
    longest: dict[str, int] = {}
    for rec in records:
        exact = rec["greedy_exact"] and not rec.get("numerical_fault")
        longest[rec["sample_id"]] = max(longest.get(rec["sample_id"], 0),
                                        rec["length"] if exact else 0)
    return longest


def run_protocol(protocol: str, args, grid: tuple[int, ...]) -> tuple[dict, dict]:
    with tempfile.TemporaryDirectory() as out:
        settings = RunSettings(limit=args.texts, lengths=grid, max_steps=args.max_steps,
                               batch_size=args.batch_size, device=args.device,
                               data_files=str(DATA), output_path=out, past_capacity=0,
                               protocol=protocol)
        start = time.perf_counter()
        (res,) = evaluate(args.model, ["capacity_pg19"], settings)
        seconds = time.perf_counter() - start
        records = list(read_records(Path(res["results_file"]).parent / "records.jsonl"))
    found = res["results"]["capacity_pg19"]
    per_text = tokens_per_vector(records)
    row = {
        # under fast and max these are their own statistic (progressive_capacity)
        "capacity": found[_key("decoding_capacity", protocol)],
        "greedy_capacity": found[_key("greedy_capacity", protocol)],
        "tokens_per_vector": per_text,
        "mean_tokens_per_vector": sum(per_text.values()) / len(per_text),
        "optimizer_steps": res["timings"]["optimizer_steps"], "seconds": seconds,
        "mean_accuracy": res["sweeps"][0]["mean_accuracy"],
        "engine": {k: records[0]["config"][k] for k in ("lr", "min_margin", "temperature",
                                                        "subspace")},
    }
    return row, res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--texts", type=int, default=4)
    parser.add_argument("--lengths", default="8,16,24,32,48,64")
    parser.add_argument("--protocols", default="paper,fast,max")
    parser.add_argument("--max-steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    grid = tuple(int(x) for x in args.lengths.split(","))
    console = Console()
    rows = {}
    for protocol in args.protocols.split(","):
        rows[protocol], res = run_protocol(protocol, args, grid)
    env = res["environment"]
    print_header(console, "cram-harness capacity: the paper's grid, --protocol fast and max",
                 {"model": args.model, "device": env["device"], "cpu": env["processor"],
                  "torch": env["torch"]},
                 {"texts": f"{args.texts} texts of the novels in {DATA} (paper's chunking)",
                  "lengths": list(grid), "max_steps": args.max_steps,
                  "batch_size": args.batch_size or "auto"})
    table = Table()
    for col in ("protocol", "lr / margin", "capacity", "greedy capacity",
                "tokens per vector (each text)", "optimizer steps", "seconds"):
        table.add_column(col)
    for name, r in rows.items():
        each = ", ".join(str(v) for v in r["tokens_per_vector"].values())
        table.add_row(name, f"{r['engine']['lr']:g} / {r['engine']['min_margin']:g}",
                      str(r["capacity"]), str(r["greedy_capacity"]),
                      f"{r['mean_tokens_per_vector']:.1f} ({each})",
                      str(r["optimizer_steps"]), f"{r['seconds']:.0f}")
    console.print(table)
    for name, r in rows.items():
        accs = ", ".join(f"{k}: {v:.2f}" for k, v in r["mean_accuracy"].items())
        console.print(f"{name}: mean best accuracy by length {accs}")
    if "paper" in rows:
        paper = rows["paper"]
        for name in ("fast", "max"):
            if name in rows:
                steps = rows[name]["optimizer_steps"] / paper["optimizer_steps"]
                gain = rows[name]["mean_tokens_per_vector"] / max(
                    paper["mean_tokens_per_vector"], 1e-9)
                console.print(f"{name}: {steps:.2f} of the paper protocol's optimizer steps, "
                              f"{gain:.2f}x its tokens per vector")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
