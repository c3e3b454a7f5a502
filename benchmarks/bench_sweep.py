"""python benchmarks/bench_sweep.py [--model smollm2-135m] [--texts 15] [--tokens 16]
                                    [--batch-size 4] [--max-steps 5000] [--drawn]
       python benchmarks/bench_sweep.py --device cuda --shapes smollm2-135m,llama-3.2-1b

One length's sweep, as a user waits for it, two ways in one run on the same texts:
- chunks: the texts cut into batches of --batch-size in their order, each batch run until
  its last text finishes (the engine before continuous batching: `refill=False`);
- queue: continuous batching, a text that finishes leaving its slot to the next one, the
  texts waiting longest first.

Texts: the novels `capacity_gutenberg` runs (shipped inside cram-harness, cut as the paper
cut PG-19), each cut to --tokens tokens; they finish at very different steps. With --drawn
each draws its length from [2, --tokens], as the paper's random texts do (padding). With
--shapes, random weights of the real shapes (bench_gpu.py's) on random-token texts.
The optimizer is the paper's (lr 1e-2, patience 2000, at most 5000 steps) unless set.

Prints, per way: wall time, the batch's steps, slot occupancy (the texts in the batch summed
over its steps, over the batch size summed over them), the padded share of the positions
run, the share of wall time spent decoding; and per text the steps, best accuracy and greedy
result both ways, and how many agree (they agree exactly where the CPU's kernels give a text
the same bits in any batch; elsewhere within the parity tests' tolerance).

--tiny runs a tiny random model on the CPU in seconds (the test suite does, so the script
cannot rot); its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch
from common import environment, print_header
from rich.console import Console
from rich.table import Table

from cram_harness.engine.loop import CramConfig
from cram_harness.engine.schedule import QueueStats, cram_token_ids

WAYS = {"chunks": False, "queue": True}  # the name and `refill`


def novel_token_lists(tokenizer, count: int, tokens: int) -> list[list[int]]:
    """The first `count` texts of the bundled novels, as capacity_gutenberg takes them."""
    from cram_harness.data.novels import BundledNovels
    from cram_harness.models.tokens import encode_text

    texts = BundledNovels().texts(limit=count)
    return [encode_text(tokenizer, t.text, tokens) for t in texts]


def random_token_lists(model, count: int, tokens: int) -> list[list[int]]:
    vocab = model.get_input_embeddings().weight.shape[0]
    gen = torch.Generator().manual_seed(0)
    return torch.randint(3, vocab, (count, tokens), generator=gen).tolist()


def load(args):
    if args.shape:
        from bench_gpu import random_model

        start = time.perf_counter()
        model = random_model(args.shape, args.device)
        spec = f"random {args.shape}"
        texts = random_token_lists(model, args.texts, args.tokens)
        return model, spec, texts, time.perf_counter() - start
    from cram_harness.models.load import load_model

    start = time.perf_counter()
    model, tokenizer = load_model(args.model, device=args.device)
    load_s = time.perf_counter() - start
    return model, args.model, novel_token_lists(tokenizer, args.texts, args.tokens), load_s


def drawn(token_lists: list[list[int]], seed: int = 0) -> list[list[int]]:
    """Each text cut to a length drawn from [2, its length]."""
    rng = random.Random(seed)
    return [t[: rng.randint(2, len(t))] for t in token_lists]


def run_way(model, texts, config, batch_size: int, refill: bool) -> dict:
    stats = QueueStats()
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    results = cram_token_ids(model, texts, config, batch_size=batch_size, refill=refill,
                             stats=stats)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - start
    return {
        "wall_s": wall, "batch_steps": stats.batch_steps, "text_steps": stats.text_steps,
        "occupancy": stats.occupancy, "padded_share": stats.padded_share,
        "decode_share": stats.decode_s / wall,
        "texts": [{"steps": r.steps, "best_accuracy": r.best_accuracy,
                   "greedy_exact": r.greedy_exact, "min_loss": r.min_loss} for r in results],
    }


def same(a: dict, b: dict) -> bool:
    return (a["steps"], a["best_accuracy"], a["greedy_exact"]) == \
        (b["steps"], b["best_accuracy"], b["greedy_exact"])


def report(console: Console, rows: dict) -> None:
    table = Table(title="one length's sweep, two ways")
    for col in ("way", "wall s", "vs chunks", "batch steps", "text steps", "occupancy",
                "padded", "decoding"):
        table.add_column(col, justify="right")
    for way, row in rows.items():
        table.add_row(way, f"{row['wall_s']:.1f}",
                      f"{row['wall_s'] / rows['chunks']['wall_s']:.2f}x",
                      str(row["batch_steps"]), str(row["text_steps"]),
                      f"{row['occupancy']:.2f}", f"{row['padded_share']:.1%}",
                      f"{row['decode_share']:.1%}")
    console.print(table)
    texts = Table(title="per text: steps, best accuracy, greedy exact")
    for col in ("text", "chunks", "queue", "same"):
        texts.add_column(col, justify="right")
    pairs = list(zip(rows["chunks"]["texts"], rows["queue"]["texts"]))
    for i, (a, b) in enumerate(pairs):
        texts.add_row(str(i), *(f"{t['steps']}  {t['best_accuracy']:.3f}  "
                                f"{'yes' if t['greedy_exact'] else 'no'}" for t in (a, b)),
                      "yes" if same(a, b) else "no")
    console.print(texts)
    agree = sum(same(a, b) for a, b in pairs)
    console.print(f"{agree} of {len(pairs)} texts have the same steps, best accuracy and greedy "
                  "result both ways")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m", help="a load_model spec")
    parser.add_argument("--shapes", default="",
                        help="random weights of these shapes instead (bench_gpu.py's)")
    parser.add_argument("--texts", type=int, default=15)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-steps", type=int, default=5000)
    parser.add_argument("--patience", type=int, default=2000)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32",
                        help="the engine's compute (bf16: autocast)")
    parser.add_argument("--drawn", action="store_true",
                        help="each text draws its length from [2, --tokens] (random texts)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tiny", action="store_true", help="a tiny random model (a smoke test)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.tiny:
        args.shapes, args.device = "tiny", "cpu"
    console = Console()
    out = {}
    for shape in args.shapes.split(",") if args.shapes else [None]:
        args.shape = shape
        model, spec, texts, load_s = load(args)
        if args.drawn:
            texts = drawn(texts)
        config = CramConfig(lr=args.lr, max_steps=args.max_steps, patience=args.patience,
                            dtype=args.dtype)
        print_header(console, "bench_sweep: fixed batches against continuous batching",
                     environment(model, spec, load_s),
                     {"texts": f"{len(texts)} of {min(map(len, texts))}-{max(map(len, texts))} "
                               "tokens", "batch size": args.batch_size,
                      "engine": {k: v for k, v in config.to_dict().items()
                                 if k in ("lr", "max_steps", "patience", "dtype")}})
        for refill in WAYS.values():  # warm-up: the first call's one-time costs, both ways
            cram_token_ids(model, texts[:2], CramConfig(max_steps=2), batch_size=2,
                           refill=refill)
        rows = {way: run_way(model, texts, config, args.batch_size, refill)
                for way, refill in WAYS.items()}
        report(console, rows)
        out[spec] = {"settings": vars(args), "ways": rows}
        del model
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
