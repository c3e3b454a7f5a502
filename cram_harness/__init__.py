"""cram-harness: how much text fits into an LLM's input vectors.

The public API is imported lazily so that `cram-eval --help` does not import torch.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_model": "cram_harness.models.load",
    "cram": "cram_harness.api",
    "CramResult": "cram_harness.api",
    "decode_adapter": "cram_harness.api",
    "CramConfig": "cram_harness.config",
    "cram_batch": "cram_harness.engine.loop",
    "MemPrefix": "cram_harness.engine.adapter",
    "save_adapter": "cram_harness.integrations.peft",
    "load_adapter": "cram_harness.integrations.peft",
    "push_adapter": "cram_harness.integrations.peft",
    "fix_peft_generate": "cram_harness.integrations.peft_generate",
    "CramError": "cram_harness.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cram_harness' has no attribute {name!r}")
