"""What a loaded model is, in the numbers results and adapters record: its shapes, context,
tokenizer habits and Eq. 1's capacity."""

from __future__ import annotations

from typing import Any

from cram_harness import metrics
from cram_harness.models.aliases import CHECKPOINTS
from cram_harness.models.tokens import adds_bos, context_length


def base_fingerprint(model: Any) -> dict[str, Any]:
    """What an adapter must match: the shapes that give its vectors a meaning."""
    cfg = getattr(model.config, "get_text_config", lambda: model.config)()
    return {
        "model_type": cfg.model_type,
        "d_model": int(model.get_input_embeddings().weight.shape[1]),
        "vocab_size": int(cfg.vocab_size),
        "num_layers": int(getattr(cfg, "num_hidden_layers", 0) or 0),
    }


def model_info(model: Any, tokenizer: Any) -> dict[str, Any]:
    """The results file's `model_info`."""
    fp = base_fingerprint(model)
    spec = getattr(model, "cram_spec", "")
    return {
        "checkpoint": CHECKPOINTS.get(spec, spec),
        "model_type": fp["model_type"], "d_model": fp["d_model"], "vocab_size": fp["vocab_size"],
        "num_layers": fp["num_layers"], "context_length": context_length(model),
        "adds_bos": adds_bos(tokenizer),
        "eq1_capacity": metrics.theoretical_capacity(fp["d_model"], fp["vocab_size"]),
        "dtype": str(model.dtype).replace("torch.", ""),
    }
