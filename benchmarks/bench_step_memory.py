"""The batch estimate against measurement: memory a sample adds to one optimizer step, per
architecture (random weights of real shapes), next to what `engine.batching` estimates.

    python benchmarks/bench_step_memory.py [--tokens 128] [--archs llama,mamba,mamba2]

On the CPU each measurement runs in a fresh process (the peak resident size only grows), at
batch 1 and batch 4: a sample's memory is the difference over 3. On a GPU the allocator's
peak is read instead. `--tiny` runs small shapes in seconds (the test suite does).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

SHAPES = {  # the shapes of SmolLM2-135M, state-spaces/mamba-130m-hf, AntonV/mamba2-130m-hf
    "llama": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                  num_attention_heads=9, num_key_value_heads=3, vocab_size=49152),
    "mamba": dict(hidden_size=768, num_hidden_layers=24, state_size=16, expand=2,
                  vocab_size=50280),
    "mamba2": dict(hidden_size=768, num_hidden_layers=24, state_size=128, expand=2,
                   num_heads=24, head_dim=64, n_groups=1, vocab_size=50280),
}
TINY = dict(hidden_size=64, num_hidden_layers=2, vocab_size=128)
BATCHES = (1, 4)


def build(arch: str, tiny: bool):
    from transformers import AutoConfig, AutoModelForCausalLM

    shape = {**SHAPES[arch], **TINY} if tiny else SHAPES[arch]
    if tiny and arch == "mamba2":
        shape.update(num_heads=8, head_dim=16)
    if tiny and arch == "llama":
        shape.update(intermediate_size=128, num_attention_heads=4, num_key_value_heads=2)
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(arch, **shape))
    return model.eval().requires_grad_(False)


def measure(arch: str, tokens: int, batch: int, tiny: bool, device: str) -> float:
    """Bytes one step at this batch adds to the peak (run in its own process on a CPU)."""
    import resource

    import torch

    from cram_harness.engine.batching import _step

    model = build(arch, tiny).to(device)
    _step(model, 8, 1, "fp32")  # warm-up: the allocator's and the libraries' own memory
    if device == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        _step(model, tokens, batch, "fp32")
        torch.cuda.synchronize()
        return float(torch.cuda.max_memory_allocated() - before)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _step(model, tokens, batch, "fp32")
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", default=",".join(SHAPES))
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--tiny", action="store_true", help="small shapes, for the tests")
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--child", nargs=2, metavar=("ARCH", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.child:
        print(measure(args.child[0], args.tokens, int(args.child[1]), args.tiny, device))
        return
    from common import cpu_model, print_header
    from rich.console import Console

    from cram_harness.engine.batching import step_bytes_per_sample

    console = Console()
    print_header(console, "Memory a sample adds to a step: measured against the estimate",
                 {"device": device, "cpu": cpu_model(), "torch": torch.__version__,
                  "tokens": args.tokens, "weights": "fp32, random, real shapes"
                  + (" (tiny)" if args.tiny else ""), "batches": BATCHES})
    rows = []
    for arch in args.archs.split(","):
        peaks = []
        for batch in BATCHES:
            cmd = [sys.executable, __file__, "--child", arch, str(batch), "--tokens",
                   str(args.tokens)] + (["--tiny"] if args.tiny else [])
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            peaks.append(float(out.strip().splitlines()[-1]))
        measured = (peaks[1] - peaks[0]) / (BATCHES[1] - BATCHES[0])
        estimate = step_bytes_per_sample(build(arch, args.tiny), args.tokens + 1)
        rows.append({"arch": arch, "measured_mib": round(measured / 2**20, 1),
                     "estimate_mib": round(estimate / 2**20, 1),
                     "estimate_over_measured": round(estimate / max(measured, 1.0), 2)})
        console.print(f"  {arch:8} measured {rows[-1]['measured_mib']:9.1f} MiB a sample, "
                      f"estimate {rows[-1]['estimate_mib']:9.1f} MiB "
                      f"({rows[-1]['estimate_over_measured']}x)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
