"""Opt-in: PEFT's prompt-tuning `generate` with its KV cache, on transformers >= 5.24.

transformers 5.24 renamed the cache that `prepare_inputs_for_generation` hands the model from
`past_key_values` to `cache`. PEFT (0.21.2, the latest) still looks for `past_key_values`,
finds no cache, and so puts the prompt vectors in front of the input again at every step:
the text decoded is not the crammed one. `use_cache=False` avoids the cache and is exact on
every version, at the cost of a whole forward pass per token.

`fix_peft_generate(peft_model)` shows PEFT the cache under both names while PEFT's own step
runs, and hands the model the new name alone. Where transformers still says
`past_key_values`, or a PEFT release reads `cache`, it changes nothing. Remove it when PEFT
decodes right by itself: the strict expected failure in
tests/integrations/test_peft_generate.py says when.
"""

from __future__ import annotations

from typing import Any

OLD, NEW = "past_key_values", "cache"


def fix_peft_generate(peft_model: Any) -> Any:
    """Let this PEFT model's prompt-learning `generate` see the KV cache on transformers
    >= 5.24; returns the model. Calling it twice is harmless."""
    if getattr(peft_model, "_cram_cache_fix", False):
        return peft_model
    base_step = peft_model.base_model_prepare_inputs_for_generation
    peft_step = peft_model.prepare_inputs_for_generation
    inside = [False]  # only PEFT's own step sees the old name, never the base model's generate

    def base_prepare(*args: Any, **kwargs: Any) -> dict:
        out = base_step(*args, **kwargs)
        if inside[0] and NEW in out and OLD not in out:
            out[OLD] = out[NEW]
        return out

    def peft_prepare(*args: Any, **kwargs: Any) -> dict:
        inside[0] = True
        try:
            out = peft_step(*args, **kwargs)
        finally:
            inside[0] = False
        if NEW in out and OLD in out:
            cache = out.pop(OLD)
            if cache is not out[NEW]:  # PEFT put a cache of its own there (prefix tuning)
                out[NEW] = cache
        return out

    # Instance attributes: PEFT's generate installs `self.prepare_inputs_for_generation` on
    # the base model and puts `self.base_model_prepare_inputs_for_generation` back after.
    peft_model.base_model_prepare_inputs_for_generation = base_prepare
    peft_model.prepare_inputs_for_generation = peft_prepare
    peft_model._cram_cache_fix = True
    return peft_model
