"""python benchmarks/bench_table1.py [--models smollm2-135m,gemma3-270m] [--texts 4]

The paper's Table 1 rows (capacity, token gain, information gain, Eq. 1, utilization) for
the offline models, on the public-domain novels shipped with cram-harness (the kind of book
PG-19 holds: the `gutenberg` tasks) and on random words, through the product's own
evaluator, then the leaderboard of the models. Random words run the paper's way
(each text draws its length from [2, the longest --lengths]) and on the grid
(`capacity_random_grid`), side by side. Last, information gain by the paper's definition
(the run's lowest CE, times L) against the one this project used before (the CE at the
best-accuracy step, times L - 1), on the same records.

The results stay in --output (default: table1-results): `cram-eval leaderboard DIR` and
`cram-eval report DIR` read them again, and a rerun resumes instead of starting over.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from common import cpu_model, print_header
from rich.console import Console

from cram_harness.harness.evaluator import RunSettings, evaluate
from cram_harness.metrics import mean_std
from cram_harness.reporting.runs import read_samples
from cram_harness.reporting.tables import load_results, render, rich_table, table1_rows

KINDS = ("capacity", "token_gain", "info_gain")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="smollm2-135m,gemma3-270m")
    parser.add_argument("--datasets", default="gutenberg,random")
    parser.add_argument("--texts", type=int, default=4, help="texts per length and dataset")
    parser.add_argument("--lengths", default="8,16,32,64")
    parser.add_argument("--protocol", default="paper", choices=("paper", "fast", "max"))
    parser.add_argument("--max-steps", type=int, default=5000, help="paper: 5000")
    parser.add_argument("--past-capacity", type=int,
                        help="lengths to run past capacity (default: the tasks' 3; 0: all)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--output", type=Path, default=Path("table1-results"))
    args = parser.parse_args()
    lengths = [int(x) for x in args.lengths.split(",")]
    datasets = args.datasets.split(",")
    tasks = [f"{kind}_{d}" for d in datasets for kind in KINDS]
    if "random" in datasets:
        tasks.append("capacity_random_grid")  # the grid, beside the paper's drawn lengths
    settings = RunSettings(limit=args.texts, lengths=tuple(lengths), max_steps=args.max_steps,
                           protocol=args.protocol, past_capacity=args.past_capacity,
                           device=args.device, output_path=str(args.output))
    console = Console()
    seconds = {}
    for model in args.models.split(","):
        start = time.perf_counter()
        evaluate(model, tasks, settings)
        seconds[model] = time.perf_counter() - start
    print_header(console, "cram-harness Table 1: offline models, novels and random words",
                 {"models": args.models, "cpu": cpu_model(), "device": args.device},
                 {"datasets": datasets, "texts": f"{args.texts} per length and dataset",
                  "lengths": lengths, "protocol": args.protocol, "max_steps": args.max_steps,
                  "past_capacity": "the tasks' 3" if args.past_capacity is None
                  else args.past_capacity,
                  "wall time": {m: f"{s:.0f} s" for m, s in seconds.items()},
                  "results": str(args.output)})
    results = load_results([args.output])
    rows = table1_rows(results)
    console.print(rich_table(rows, title="Table 1 (leaderboard)"))
    print(render(rows, "markdown"))  # plain: a console would wrap the markdown's lines
    print(information_gain_definitions(results))


def information_gain_definitions(results: list[dict]) -> str:
    """Markdown: mean information gain over the full vectors of each model and dataset, by
    the paper's definition and by the one used before, from the same sample records."""
    lines = ["| model | dataset | full vectors | paper: (base - min CE) x L | "
             "before: (base - CE at best accuracy) x (L - 1) |", "|---|---|---:|---:|---:|"]
    for res in results:
        seen: dict[str, dict] = {}
        for rec in read_samples(res):
            if rec.min_loss is not None and rec.is_full():
                seen.setdefault(rec["key"], rec)
        by_data: dict[str, list[dict]] = {}
        for rec in seen.values():
            by_data.setdefault(rec["dataset"], []).append(rec)
        for dataset, recs in sorted(by_data.items()):
            new = mean_std(r["information_gain"] for r in recs)
            old = mean_std((r["base_loss"] - r["best_loss"]) * r["num_predicted"] for r in recs)
            lines.append(f"| {res['model_name']} | {dataset} | {new.n} | "
                         f"{new.mean:.1f} ± {new.std:.1f} | {old.mean:.1f} ± {old.std:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
