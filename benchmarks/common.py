"""What every benchmark prints first: the machine, the model and the settings; and the
texts they share (the public-domain novels beside the checkout)."""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path

import torch
from rich.console import Console

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gutenberg"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment(model, spec: str, load_s: float) -> dict:
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") \
        else model.config
    device = model.device
    return {
        "model": spec, "d_model": cfg.hidden_size, "vocab_size": cfg.vocab_size,
        "layers": cfg.num_hidden_layers, "weights": str(model.dtype).replace("torch.", ""),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch": torch.__version__, "cpu": cpu_model(), "os_cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "model_load_s": round(load_s, 1),
    }


def print_header(console: Console, title: str, *sections: dict) -> None:
    console.print(f"[bold]{title}[/bold]")
    for section in sections:
        for key, value in section.items():
            if isinstance(value, dict):
                value = ", ".join(f"{k}={v}" for k, v in value.items())
            console.print(f"  {key:18} {value}", soft_wrap=True)


def novel_texts(count: int, words: int = 400, seed: int = 0) -> list[str]:
    """`count` texts from the shared novels: the paper's preparation (Gutenberg stripped,
    sentence-aligned chunks, second half of each), with chunks of ~`words` words so that
    three novels give many texts."""
    from cram_harness.data import LocalFiles

    source = LocalFiles(str(DATA), min_words=words, max_words=int(words * 1.5))
    texts = source.texts(limit=None, seed=seed)
    if len(texts) < count:
        raise SystemExit(f"only {len(texts)} texts under {DATA}; ask for fewer")
    step = len(texts) // count  # spread over the three books
    return [texts[i * step].text for i in range(count)]
