"""python benchmarks/bench_speed.py [--texts 8] [--tokens 16] [--batch-size 8]

The paper's way against ours, in one run, on the same model, texts and optimizer settings:
- paper: one text at a time, the model loaded again for every text (as its code does);
- ours: the model loaded once, all texts in one batch, each sample leaving the batch as it
  converges.
Prints samples per hour of each and their ratio, with every text's steps and accuracy so
that the two runs can be seen to do the same work. Both use the paper's protocol (lr 1e-2,
betas 0.9/0.9, stop at 100% accuracy or after --patience steps without improvement) capped
at --max-steps, which is stated in the output.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import environment, novel_texts, print_header
from rich.console import Console
from rich.table import Table

from cram_harness.api import cram
from cram_harness.models.load import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--texts", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-steps", type=int, default=1000)
    parser.add_argument("--patience", type=int, default=300)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    texts = novel_texts(args.texts)
    options = {"max_steps": args.max_steps, "patience": args.patience}
    console = Console()

    paper, start = [], time.perf_counter()
    for text in texts:  # the paper's code: load, cram one text, repeat
        model, tokenizer = load_model(args.model, device=args.device, dtype=args.dtype)
        paper += cram(model, text, max_tokens=args.tokens, tokenizer=tokenizer, **options)
        del model
    paper_s = time.perf_counter() - start

    t0 = time.perf_counter()
    model, tokenizer = load_model(args.model, device=args.device, dtype=args.dtype)
    load_s = time.perf_counter() - t0
    ours = cram(model, texts, max_tokens=args.tokens, tokenizer=tokenizer,
                batch_size=args.batch_size, **options)
    ours_s = time.perf_counter() - t0

    settings = {"texts": f"{args.texts} passages of the shared novels, {args.tokens} tokens",
                "batch_size": args.batch_size, "engine": ours[0].config}
    print_header(console, "cram-harness speed: the paper's way against ours",
                 environment(model, args.model, load_s), settings)
    table = Table(title="per text (same settings both ways)")
    for col in ("text", "paper steps", "paper acc", "ours steps", "ours acc"):
        table.add_column(col, justify="right")
    for i, (p, o) in enumerate(zip(paper, ours)):
        table.add_row(str(i), str(p.steps), f"{p.best_accuracy:.3f}", str(o.steps),
                      f"{o.best_accuracy:.3f}")
    console.print(table)
    per_hour = {"paper": len(texts) * 3600 / paper_s, "ours": len(texts) * 3600 / ours_s}
    console.print(f"paper: {paper_s:.0f} s, {per_hour['paper']:.1f} samples/hour "
                  "(model loaded for every text)")
    console.print(f"ours:  {ours_s:.0f} s, {per_hour['ours']:.1f} samples/hour "
                  f"(one load, batch of {args.batch_size})")
    console.print(f"[bold]ratio: {per_hour['ours'] / per_hour['paper']:.2f}x[/bold]")
    if args.json:
        args.json.write_text(json.dumps({"settings": settings, "paper_s": paper_s,
                                         "ours_s": ours_s, "samples_per_hour": per_hour},
                                        indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
