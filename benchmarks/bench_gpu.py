"""python benchmarks/bench_gpu.py [--shapes smollm2-135m,llama-3.2-1b,llama-3.2-3b]
                                  [--model SPEC --texts 8 --tokens 64] [--tiny]

The paper's way against ours on one GPU, in one run, at the shapes users run:
- paper: one text at a time with torch's AdamW and one `.item()` a step (the official loop's
  shape), the full fp32 logits;
- ours: the engine (`cram_harness.engine`), a batch as large as the measured probe step says
  fits, bf16 autocast over fp32 weights as the paper ran Llama.
Both run --steps timed steps after 2 warm-up steps; no text may stop early (the engine's
margin is set out of reach), so both do the same work per sample-step.

Per shape it prints sample-steps/s of each, their ratio, MFU (the model's FLOPs per
sample-step times the rate, over the bf16 matrix-product rate measured on this card at the
start), peak memory, the batch size, the seconds of one greedy decode of the whole batch
(one group, as the engine decodes) against decoding one text alone, and the engine's
bookkeeping (its step time over a bare forward and backward of the same batch).
Random weights of the real shapes: throughput does not depend on the weights' values.

With --model SPEC (a real model), it also crams --texts passages of the bundled novels at
--tokens tokens one at a time and as one batch, and prints each text's steps, accuracy and
greedy result both ways, and how many agree.

--tiny runs everything on tiny shapes on the CPU in seconds (the test suite does, so the
script cannot rot); its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from common import environment, print_header
from rich.console import Console
from rich.table import Table

from cram_harness.engine import measure
from cram_harness.engine.adapter import compute_precision, init_memory
from cram_harness.engine.batching import auto_batch_size
from cram_harness.engine.loop import CramConfig, cram_batch
from cram_harness.engine.measure import text_stats
from cram_harness.engine.schedule import cram_token_ids, decode_group

WARMUP = 2

# (hidden, intermediate, layers, heads, kv heads, vocab, tied embeddings, tokens)
SHAPES = {
    "smollm2-135m": (576, 1536, 30, 9, 3, 49152, True, 128),
    "llama-3.2-1b": (2048, 8192, 16, 32, 8, 128256, True, 512),
    "llama-3.2-3b": (3072, 8192, 28, 24, 8, 128256, True, 1024),
    "tiny": (64, 128, 2, 4, 2, 512, True, 16),
}


def random_model(shape: str, device: str):
    from transformers import AutoModelForCausalLM, LlamaConfig

    d, inner, layers, heads, kv, vocab, tied, _ = SHAPES[shape]
    config = LlamaConfig(hidden_size=d, intermediate_size=inner, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=kv, vocab_size=vocab,
                         tie_word_embeddings=tied, max_position_embeddings=8192,
                         attn_implementation="sdpa")
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.eval().requires_grad_(False)
    model.cram_spec = f"random {shape}"
    return model


def flops_per_sample_step(model, positions: int) -> float:
    """Model FLOPs of one sample's step: the forward pass (2 per weight per position, and
    the causal attention's scores and mixing) and the backward pass to the inputs only (the
    weights are frozen: once more the linear layers, twice more the attention)."""
    cfg = model.config
    weights = sum(p.numel() for name, p in model.named_parameters() if "embed_tokens" not in name)
    if cfg.tie_word_embeddings:  # the head is the embedding matrix, used as a product
        weights += model.get_input_embeddings().weight.numel()
    linear = 2 * weights * positions
    attention = 2 * cfg.num_hidden_layers * positions * positions * cfg.hidden_size  # causal
    return 2 * linear + 3 * attention


def matmul_tflops(device: torch.device) -> float:
    """The card's bf16 matrix-product rate, measured: the ceiling MFU is taken against."""
    if device.type != "cuda":
        return float("nan")
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(10):
        a @ b
    torch.cuda.synchronize()
    return 10 * 2 * 8192**3 / (time.perf_counter() - start) / 1e12


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def texts_of(model, count: int, tokens: int, seed: int = 0) -> list[list[int]]:
    vocab = model.get_input_embeddings().weight.shape[0]
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(3, vocab, (count, tokens), generator=gen).tolist()


def paper_way(model, tokens: list[int], steps: int, dtype: str) -> float:
    """Seconds a step of the official loop's shape: one text, torch AdamW, `.item()`s."""
    device = model.device
    ids = torch.tensor([tokens], device=device)
    memory = torch.nn.Parameter(init_memory(model, 1, [0]))
    optimizer = torch.optim.AdamW([memory], lr=1e-2, betas=(0.9, 0.9), weight_decay=0.01)
    marks = []
    for _ in range(steps + WARMUP):
        with compute_precision(model, dtype):
            embeds = torch.cat([memory, model.get_input_embeddings()(ids)], dim=1)
            logits = model(inputs_embeds=embeds).logits[:, 1:-1].float()
        labels = ids[:, 1:]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 labels.reshape(-1))
        _ = (logits.argmax(-1) == labels).float().mean().item(), loss.item()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        marks.append(time.perf_counter())
    return (marks[-1] - marks[WARMUP - 1]) / steps


def our_way(model, batch: list[list[int]], steps: int, dtype: str) -> float:
    """Seconds a step of the engine on the whole batch."""
    config = CramConfig(max_steps=steps + WARMUP, patience=steps + WARMUP + 1,
                        min_margin=float("inf"), dtype=dtype)
    marks: dict[int, float] = {}

    def on_step(info) -> None:
        sync(model.device)
        marks[info.step] = time.perf_counter()

    outcomes = cram_batch(model, batch, config, on_step=on_step)
    assert all(o.steps == steps + WARMUP for o in outcomes), "a sample stopped early"
    return (marks[steps + WARMUP] - marks[WARMUP]) / steps


def bare_step(model, batch: list[list[int]], dtype: str, repeats: int = 3) -> float:
    """Seconds of the forward and backward pass alone, on the same batch."""
    ids = torch.tensor(batch, device=model.device)
    mask = torch.ones_like(ids)
    mem = init_memory(model, 1, list(range(len(batch)))).requires_grad_(True)
    seconds = []
    for _ in range(repeats + 1):
        sync(model.device)
        start = time.perf_counter()
        with compute_precision(model, dtype):
            stats = text_stats(model, ids, mask, mem)
        torch.autograd.grad(stats.loss.sum(), mem)
        sync(model.device)
        seconds.append(time.perf_counter() - start)
    return min(seconds[1:])


def decode_seconds(model, batch: list[list[int]], dtype: str, single: bool = True
                   ) -> tuple[float, float]:
    """(seconds to decode the whole batch as one group, seconds to decode one text, or NaN
    where not `single`)."""
    memories = list(init_memory(model, 1, list(range(len(batch)))))
    out = [float("nan"), float("nan")]
    for n, group in enumerate((batch, batch[:1] if single else [])):
        if not group:
            continue
        sync(model.device)
        start = time.perf_counter()
        decode_group(model, memories[: len(group)], group, dtype)
        sync(model.device)
        out[n] = time.perf_counter() - start
    return out[0], out[1]


def peak_gib(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" \
        else float("nan")


def throughput_row(model, shape: str, tokens: int, steps: int, dtype: str, peak: float,
                   batch_limit: int | None, single_decode: bool = True) -> dict:
    device = model.device
    paper_s = paper_way(model, texts_of(model, 1, tokens)[0], steps, dtype)
    positions = tokens + 1
    batch_size = auto_batch_size(model, positions, batch_limit or 10**6, bf16=dtype == "bf16")
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    batch = texts_of(model, batch_size, tokens, seed=1)
    ours_s = our_way(model, batch, steps, dtype)
    memory = peak_gib(device)
    bare_s = bare_step(model, batch, dtype)
    decode_s, decode_one_s = decode_seconds(model, batch, dtype, single_decode)
    flops = flops_per_sample_step(model, positions)
    rate = batch_size / ours_s
    return {
        "shape": shape, "tokens": tokens, "batch": batch_size,
        "paper_sample_steps_s": 1 / paper_s, "ours_sample_steps_s": rate,
        "ratio": rate * paper_s, "ours_tflops": rate * flops / 1e12,
        "paper_tflops": flops / paper_s / 1e12,
        "mfu": rate * flops / 1e12 / peak, "peak_gib": memory,
        "step_s": ours_s, "bare_step_s": bare_s, "bookkeeping": 1 - bare_s / ours_s,
        "decode_batch_s": decode_s, "decode_one_s": decode_one_s,
        "decode_in_steps": decode_s / ours_s,
    }


def agreement(model, tokenizer, count: int, tokens: int, max_steps: int, dtype: str) -> list:
    """Each text crammed alone and in one batch: (steps, accuracy, greedy) both ways."""
    from cram_harness.data.novels import BundledNovels
    from cram_harness.models.tokens import encode_text

    texts = BundledNovels(min_words=200, max_words=400).texts(limit=None)
    step = max(1, len(texts) // count)
    token_lists = [encode_text(tokenizer, texts[i * step].text, tokens) for i in range(count)]
    config = CramConfig(max_steps=max_steps, dtype=dtype)
    alone = cram_token_ids(model, token_lists, config, batch_size=1)
    together = cram_token_ids(model, token_lists, config, batch_size=count)
    return [{"alone": (a.steps, a.best_accuracy, a.greedy_exact),
             "batched": (b.steps, b.best_accuracy, b.greedy_exact)}
            for a, b in zip(alone, together)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default="smollm2-135m,llama-3.2-1b,llama-3.2-3b",
                        help=f"random-weight shapes, of {', '.join(SHAPES)}")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per way")
    parser.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16",
                        help="autocast over fp32 weights (bf16: the paper's Llama setting)")
    parser.add_argument("--batch-limit", type=int, help="at most this batch size")
    parser.add_argument("--logits-budget-mib", type=int,
                        help="fp32 logits above this are measured in chunks (default: "
                             f"{measure.LOGITS_SHARE:.0%} of the device's memory)")
    parser.add_argument("--no-single-decode", action="store_true",
                        help="skip timing the decode of one text alone (minutes at 3B)")
    parser.add_argument("--model", help="also a real model (a load_model spec)")
    parser.add_argument("--texts", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--max-steps", type=int, default=2000)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny shapes on the CPU (a smoke test)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.tiny:
        args.shapes, args.device, args.steps = "tiny", "cpu", 2
    if args.logits_budget_mib:
        measure.LOGITS_BUDGET = args.logits_budget_mib * 2**20
    device = torch.device(args.device)
    console = Console(width=160)  # the table's 13 columns
    peak = matmul_tflops(device)
    rows, models = [], {}
    for shape in args.shapes.split(","):
        model = random_model(shape, args.device)
        models.setdefault("env", environment(model, "random weights", 0.0))
        rows.append(throughput_row(model, shape, SHAPES[shape][-1], args.steps, args.dtype,
                                   peak, args.batch_limit, not args.no_single_decode))
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    settings = {"steps": f"{args.steps} timed after {WARMUP} warm-up", "dtype": args.dtype,
                "logits in chunks above": f"{measure.logits_budget(device) / 2**30:.1f} GiB",
                "bf16 matmul TFLOP/s (measured)": round(peak, 1)}
    print_header(console, "cram-harness on one GPU: the paper's way against ours",
                 models["env"], settings)
    table = Table(title="sample-steps/s (random weights of the real shapes)")
    for name in ("shape", "L", "paper", "ours", "B", "ratio", "TFLOP/s", "MFU", "peak GiB",
                 "decode B", "decode 1", "= steps", "bookkeeping"):
        table.add_column(name, justify="right")
    for r in rows:
        table.add_row(r["shape"], str(r["tokens"]), f"{r['paper_sample_steps_s']:.1f}",
                      f"{r['ours_sample_steps_s']:.1f}", str(r["batch"]), f"{r['ratio']:.1f}x",
                      f"{r['ours_tflops']:.0f}", f"{r['mfu']:.0%}", f"{r['peak_gib']:.1f}",
                      f"{r['decode_batch_s']:.1f}s", f"{r['decode_one_s']:.1f}s",
                      f"{r['decode_in_steps']:.0f}", f"{r['bookkeeping']:.0%}")
    console.print(table)
    console.print("decode B: greedy decode of the whole batch as one group; decode 1: of one "
                  "text alone; = steps: the batch's decode in steps of the batch; bookkeeping: "
                  "the engine's step time beyond a bare forward and backward")
    payload = {"environment": models["env"], "settings": settings, "rows": rows}
    if args.model:
        from cram_harness.models.load import load_model

        model, tokenizer = load_model(args.model, device=args.device)
        pairs = agreement(model, tokenizer, args.texts, args.tokens, args.max_steps, args.dtype)
        table = Table(title=f"{args.model}: {args.texts} novel passages of {args.tokens} tokens, "
                            f"at most {args.max_steps} steps")
        for name in ("text", "alone: steps", "acc", "exact", "batched: steps", "acc", "exact"):
            table.add_column(name, justify="right")
        for i, p in enumerate(pairs):
            (s1, a1, e1), (s2, a2, e2) = p["alone"], p["batched"]
            table.add_row(str(i), str(s1), f"{a1:.3f}", str(e1), str(s2), f"{a2:.3f}", str(e2))
        console.print(table)
        same = sum(p["alone"] == p["batched"] for p in pairs)
        console.print(f"identical steps, accuracy and greedy result: {same} of {len(pairs)}")
        payload["agreement"] = {"model": args.model, "pairs": pairs}
    if args.json:
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
