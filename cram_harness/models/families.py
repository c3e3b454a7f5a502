"""The families of causal LM that cram-harness is checked on: each runs through the whole
engine (cram, batched and alone, greedy decode, the adapter reloaded by PEFT) on a tiny
random model of its architecture in tests/engine/test_architectures.py. Other families that
transformers loads as causal LMs are likely to work too; these are the ones known to."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    model_type: str  # transformers' name for the architecture (config.model_type)
    kind: str  # how it keeps what it has read: attention, state-space, recurrent, hybrid
    example: str  # a checkpoint of the family on the Hub
    since: str = "4.50"  # the oldest transformers it is checked on (older ones hold bugs)


FAMILIES = (
    Family("llama", "attention", "meta-llama/Llama-3.2-1B"),
    Family("gpt_neox", "attention", "EleutherAI/pythia-160m"),
    Family("gpt2", "attention", "openai-community/gpt2"),
    Family("qwen2", "attention", "Qwen/Qwen2.5-0.5B"),
    Family("qwen3", "attention", "Qwen/Qwen3-0.6B", "4.57"),
    Family("gemma3_text", "attention", "google/gemma-3-270m", "4.57"),
    Family("phi3", "attention", "microsoft/Phi-3-mini-4k-instruct"),
    Family("mistral", "attention", "mistralai/Mistral-7B-v0.1"),
    Family("olmo2", "attention", "allenai/OLMo-2-0425-1B"),
    Family("opt", "attention", "facebook/opt-125m"),
    Family("jamba", "hybrid", "ai21labs/Jamba-tiny-dev", "5.0"),
    Family("mamba", "state-space", "state-spaces/mamba-130m-hf", "4.57"),
    Family("mamba2", "state-space", "AntonV/mamba2-130m-hf"),
    Family("falcon_mamba", "state-space", "tiiuae/falcon-mamba-7b", "4.57"),
    Family("recurrent_gemma", "recurrent", "google/recurrentgemma-2b", "5.0"),
)


def family_lines() -> list[str]:
    """What `cram-eval ls models` says of the families, a line per kind."""
    kinds: dict[str, list[str]] = {}
    for family in FAMILIES:
        later = f" (transformers >= {family.since})" if family.since != "4.50" else ""
        kinds.setdefault(family.kind, []).append(family.model_type + later)
    return ["families checked (each on a tiny model in the tests; others may work):"] + [
        textwrap.fill(", ".join(names), 96, initial_indent=f"  {kind:12} ",
                      subsequent_indent=" " * 15) for kind, names in kinds.items()]
