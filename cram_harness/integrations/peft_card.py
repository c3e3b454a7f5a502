"""The model card (README.md) of an exported adapter: what was crammed into the vectors, how
well it decodes, and the lines that load and decode it, so a Hub user needs nothing else."""

from __future__ import annotations

import textwrap

LOAD_AND_DECODE = '''\
```python
import json, torch
from huggingface_hub import hf_hub_download
from peft import AutoPeftModelForCausalLM
from transformers import AutoTokenizer

repo = "REPO"  # this adapter: a Hub repo or a local directory
model = AutoPeftModelForCausalLM.from_pretrained(repo)  # loads the base model too
tokenizer = AutoTokenizer.from_pretrained(model.peft_config["default"].base_model_name_or_path)
info = json.load(open(hf_hub_download(repo, "cram.json")))  # or the local cram.json
n = info["num_new_tokens"]
out = model.generate(input_ids=torch.tensor([info["seed_token_ids"]]), do_sample=False,
                     min_new_tokens=n, max_new_tokens=n)
print(tokenizer.decode(out[0]))
```'''


def _number(value: object, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def model_card(info: dict, base: str | None, revision: str | None,
               shape: tuple[int, int]) -> str:
    """The card's text, from the adapter's cram.json contents and its base model."""
    k, d = shape
    base_line = f"base_model: {base}\n" if base else ""
    spec = info.get("model_spec") or base or "the base model"
    rows = [("tokens crammed (L, BOS counted)", info.get("num_tokens")),
            ("teacher-forced accuracy", info.get("best_accuracy")),
            ("greedy decoding exact", info.get("greedy_exact")),
            ("token gain (tokens)", info.get("token_gain")),
            ("information gain (nats)", info.get("information_gain")),
            ("optimizer steps", info.get("steps"))]
    table = "\n".join(f"| {name} | {_number(value)} |" for name, value in rows
                      if value is not None)
    settings = ", ".join(f"{key} {value}" for key, value in (info.get("config") or {}).items()
                         if key in ("lr", "max_steps", "min_margin", "dtype", "seed"))
    where = f"`{base}`" + (f" at revision `{revision}`" if revision else "")
    note = ""
    if not str(spec).startswith("hf:"):
        note = textwrap.fill(
            f"Made with `{spec}`, whose weights are the local files at {where}: the vectors "
            "decode with exactly those weights. An offline alias's weights are a dequantized "
            "GGUF, which may differ from the full-precision checkpoint of the same name.", 92)
        note = f"\n{note}\n"
    return f"""---
library_name: peft
{base_line}tags:
- cram-harness
- prompt-tuning
- mem-prefix
---

# A text crammed into {k} `[mem]` vector{"s" if k > 1 else ""} of {spec}

A PEFT prompt-tuning adapter made by [cram-harness](https://pypi.org/project/cram-harness/):
{k} trainable input vector{"s" if k > 1 else ""} of width {d}, optimized for one text on the
frozen base model {where}, decode the text back by greedy generation from its first token.
{note}
| measurement | value |
|---|---|
{table}

Settings: {settings or "the paper's"}. `cram.json` holds the seed token, the length, the
text's hash and every setting; `cram-eval decode DIR --model SPEC` checks the decoded text
against the hash.

{LOAD_AND_DECODE}
"""
