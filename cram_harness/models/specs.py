"""What a model spec names: an alias, a local folder or GGUF file, or a Hub repo (lm-eval's
`pretrained=` spelling included). Nothing here loads a model."""

from __future__ import annotations

import re
from pathlib import Path

from cram_harness.errors import CramError
from cram_harness.models.aliases import MODELS


def is_model_spec(spec: str) -> bool:
    """Whether `spec` names a model without the Hub: an alias, a local directory or GGUF file."""
    path = Path(spec).expanduser()
    return spec.startswith("gguf:") or spec in MODELS or path.is_dir() \
        or (path.suffix == ".gguf" and path.is_file())


def hub_spec(pretrained: str, revision: str | None = None) -> str:
    """A model spec from lm-eval's `pretrained=` (and `revision=`): an `org/name` that is not
    a local path means the Hub, as it does for lm-eval's own `hf` model."""
    if not pretrained.startswith("hf:") and not is_model_spec(pretrained) \
            and re.fullmatch(r"[\w.-]+/[\w.-]+", pretrained):
        pretrained = f"hf:{pretrained}"
    if revision:
        if not pretrained.startswith("hf:"):
            raise CramError(f"revision={revision} needs a Hub model, not {pretrained!r}")
        pretrained = f"{pretrained.partition('@')[0]}@{revision}"
    return pretrained
