"""python benchmarks/bench_capacity.py [--texts 4] [--lengths 8,16,24,32,48,64]

Decoding capacity of SmolLM2-135M on the shared novels by the paper's grid protocol and by
`--protocol fast` (texts climb the grid while lossless, warm-started), in one run, on the
same texts and optimizer settings: capacity, greedy capacity, optimizer steps and wall time
of each. Goal: fast within one grid step of paper at no more than a third of its steps.
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

from cram_harness.evaluator import RunSettings, evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--texts", type=int, default=4)
    parser.add_argument("--lengths", default="8,16,24,32,48,64")
    parser.add_argument("--max-steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    grid = tuple(int(x) for x in args.lengths.split(","))
    console = Console()
    rows = {}
    for protocol in ("paper", "fast"):
        with tempfile.TemporaryDirectory() as out:
            settings = RunSettings(limit=args.texts, lengths=grid, max_steps=args.max_steps,
                                   batch_size=args.batch_size, device=args.device,
                                   data_files=str(DATA), output_path=out, stop_below=0,
                                   protocol=protocol)
            start = time.perf_counter()
            (res,) = evaluate(args.model, ["capacity_pg19"], settings)
            seconds = time.perf_counter() - start
        metrics = res["results"]["capacity_pg19"]
        rows[protocol] = {
            "capacity": metrics["decoding_capacity,none"],
            "greedy_capacity": metrics["greedy_capacity,none"],
            "optimizer_steps": res["timings"]["optimizer_steps"], "seconds": seconds,
            "mean_accuracy": res["sweeps"][0]["mean_accuracy"],
        }
    print_header(console, "cram-harness capacity: paper grid against --protocol fast",
                 {"model": args.model, "device": res["environment"]["device"],
                  "cpu": res["environment"]["processor"], "torch": res["environment"]["torch"]},
                 {"texts": f"{args.texts} texts of the novels in {DATA} (paper's chunking)",
                  "lengths": list(grid), "max_steps": args.max_steps,
                  "batch_size": args.batch_size})
    table = Table()
    for col in ("protocol", "capacity", "greedy capacity", "optimizer steps", "seconds",
                "mean accuracy by length"):
        table.add_column(col)
    for name, r in rows.items():
        accs = ", ".join(f"{k}: {v:.2f}" for k, v in r["mean_accuracy"].items())
        table.add_row(name, str(r["capacity"]), str(r["greedy_capacity"]),
                      str(r["optimizer_steps"]), f"{r['seconds']:.0f}", accs)
    console.print(table)
    share = rows["fast"]["optimizer_steps"] / rows["paper"]["optimizer_steps"]
    console.print(f"fast uses {share:.2f} of the paper protocol's optimizer steps")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
