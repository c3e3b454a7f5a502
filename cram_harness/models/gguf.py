"""GGUF files: dequantized once by transformers, the plain fp32 weights cached under
``$CRAM_HARNESS_CACHE`` (default ``~/.cache/cram-harness``) so that later loads take seconds
instead of 20-90 s."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cram_harness.atomic import atomic_dir
from cram_harness.errors import CramError
from cram_harness.models.aliases import cache_dir
from cram_harness.models.checks import check_weights, first_line
from cram_harness.models.pretrained import from_pretrained, quiet


def from_gguf(path: Path, dtype: Any, notify: Callable[[str], None] | None = None
               ) -> tuple[Any, Any]:
    if not path.is_file():
        raise CramError(f"GGUF file {path} does not exist")
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise CramError(f"{path} is not a GGUF file (no GGUF magic at its start)")
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    cached = cache_dir() / "models" / f"{path.stem}-{key[:16]}"
    if not (cached / "config.json").is_file():
        if notify is not None:
            notify(f"dequantizing {path.name} once (20-90 s); the plain weights are cached in "
                   f"{cached.parent}")
        with quiet(all_of_stderr=True):
            _convert_gguf(path, cached)
    check_weights(cached, f"delete the cache entry {cached} and rerun: it is converted again")
    try:
        return from_pretrained(str(cached), dtype)
    except (OSError, ValueError) as exc:  # a cache entry damaged another way
        raise CramError(f"the cached copy of {path.name} in {cached} could not be loaded "
                        f"({first_line(exc)}): delete that directory and rerun: it is "
                        "converted again") from exc


def _convert_gguf(path: Path, target: Path) -> None:
    """Dequantize once and save plain weights; written to a temp dir, then renamed."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
    except (ValueError, KeyError, OSError, RuntimeError) as exc:
        raise CramError(f"could not read GGUF {path}: {first_line(exc)}") from exc
    # The weights are plain floats after loading; transformers only refuses to save them
    # because the model still carries the GGUF quantizer.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with atomic_dir(target, replace=False) as tmp:  # a process that converted it first wins
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
