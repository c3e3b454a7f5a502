"""PEFT's prompt-tuning `generate` with its KV cache, on every transformers.

transformers 5.24 renamed the cache that `prepare_inputs_for_generation` hands the model from
`past_key_values` to `cache`. PEFT 0.22 reads the name the installed transformers uses, so
its cached `generate` decodes a crammed text exactly on both sides of 5.24. PEFT up to
0.21.2 looks for `past_key_values` alone: on transformers >= 5.24 it finds no cache and puts
the prompt vectors in front of the input again at every step, and decodes another text.
`use_cache=False` avoids the cache and is exact with every PEFT, at the cost of a whole
forward pass per token.

`fix_peft_generate(peft_model)` mends that pair (PEFT <= 0.21.2, transformers >= 5.24): it
shows PEFT's own step the cache under both names, and hands the model the new name alone.
Where transformers still says `past_key_values` it changes nothing; where PEFT reads the cache
itself it is not needed, does nothing and says so once. CI runs
tests/integrations/test_peft_generate.py on the newest PEFT and on PEFT 0.21.2 with the
newest transformers (tox.ini).
"""

from __future__ import annotations

import warnings
from typing import Any

OLD, NEW = "past_key_values", "cache"
_said = []  # whether the "not needed" warning was given in this process


def peft_cache_name() -> str:
    """The name under which the installed PEFT hands the model its cache: the installed
    transformers' (PEFT >= 0.22), or `past_key_values` (PEFT <= 0.21.2). A model that takes
    its cache under another name (a state-space model's `cache_params` before transformers
    5.24) gets none from PEFT's cached generate."""
    try:
        from peft.import_utils import get_transformers_cache_name
    except ImportError:
        return OLD
    return get_transformers_cache_name()


def peft_reads_cache() -> bool:
    """Whether the installed PEFT hands the model its KV cache under the name the installed
    transformers uses (PEFT >= 0.22), whichever side of 5.24 it is."""
    try:
        from peft.import_utils import get_transformers_cache_name  # noqa: F401
    except ImportError:
        return False
    return True


def fix_peft_generate(peft_model: Any) -> Any:
    """Let this PEFT model's prompt-learning `generate` see the KV cache on transformers
    >= 5.24 where PEFT does not (<= 0.21.2); returns the model. Calling it twice, or where
    PEFT reads the cache itself, changes nothing."""
    if getattr(peft_model, "_cram_cache_fix", False):
        return peft_model
    if peft_reads_cache():
        if not _said:
            _said.append(True)
            warnings.warn("fix_peft_generate is not needed with this PEFT, which hands the "
                          "model its KV cache itself: it changes nothing", stacklevel=2)
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
