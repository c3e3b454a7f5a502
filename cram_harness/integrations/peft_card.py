"""The model card (README.md) of an exported adapter: what was crammed into the vectors, how
well it decodes, and the lines that load and decode it, so a Hub user needs nothing else."""

from __future__ import annotations

import textwrap

# `use_cache=False`: exact with every PEFT (up to 0.21.2 PEFT misses the KV cache
# transformers >= 5.24 renamed, and its cached generate decodes another text there:
# integrations/peft_generate.py).
# Both snippets end alike: n new tokens, greedy, from the seed token the text began with.
_DECODE = '''\
n = info["num_new_tokens"]
out = model.generate(input_ids=torch.tensor([info["seed_token_ids"]]), do_sample=False,
                     min_new_tokens=n, max_new_tokens=n, use_cache=False)
print(tokenizer.decode(out[0]))
```'''

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
''' + _DECODE

# An offline alias or GGUF file is no Hub id: cram-harness loads the base model.
LOAD_LOCAL_BASE_AND_DECODE = '''\
```python
import json, torch
import cram_harness
from peft import PeftModel

model, tokenizer = cram_harness.load_model("SPEC")
model = PeftModel.from_pretrained(model, "DIR")  # this adapter's directory
info = json.load(open("DIR/cram.json"))
''' + _DECODE

WHICH_GENERATE = """\
Which `generate` call decodes the text: `use_cache=False`, as above, with every PEFT and
transformers. PEFT's default, cached `generate` decodes it too where PEFT finds the KV cache:
PEFT >= 0.22 with any transformers, an older PEFT with transformers < 5.24. PEFT up to 0.21.2
with transformers >= 5.24 misses the renamed cache and decodes another text, unless
`cram_harness.fix_peft_generate(model)` is called before `generate`. `cram-eval decode DIR`
(Python: `cram_harness.decode_adapter(DIR)`) decodes it with cram-harness's own loop, on any
version, and checks the text's hash."""

# A state-space base (Mamba) keeps its state as `cache_params`, no name PEFT knows.
STATE_SPACE_GENERATE = """\
Which `generate` call decodes the text: `use_cache=False`, as above, on every transformers
version. This base model keeps its state as `cache_params` (a state-space model), which
PEFT's prompt-tuning `generate` (0.22 included) does not take for a cache: the
default, cached call puts the vectors in front of the input again at every token and
decodes another text, on every version, and `fix_peft_generate` does not change that.
`cram-eval decode DIR` (Python: `cram_harness.decode_adapter(DIR)`) decodes it with
cram-harness's own loop and checks the text's hash."""


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in ("transformers", "peft", "cram-harness"):
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            continue
    return ", ".join(found)


def _number(value: object, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def model_card(info: dict, base: str | None, revision: str | None,
               shape: tuple[int, int], state_space: bool = False) -> str:
    """The card's text, from the adapter's cram.json contents and its base model
    (`state_space`: one whose cache PEFT's generate cannot use)."""
    k, d = shape
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
    local = not base or base.startswith("gguf:") or "/" not in base  # an alias or a GGUF
    base_line = "" if local else f"base_model: {base}\n"  # the Hub wants a repo or path there
    note = ""
    if local:
        note = (f"Made with `{spec}`, an offline model of cram-harness, which loads it on any "
                "machine that has it installed. An offline alias's weights are a dequantized "
                "GGUF, which may differ from the full-precision checkpoint of the same name: "
                "decode with the alias.")
    elif not str(spec).startswith("hf:"):
        note = (f"Made with `{spec}`, whose weights are the local files at {where}: the "
                "vectors decode with exactly those weights.")
    note = f"\n{textwrap.fill(note, 92)}\n" if note else ""
    snippet = LOAD_LOCAL_BASE_AND_DECODE.replace("SPEC", str(spec)) if local \
        else LOAD_AND_DECODE
    which = STATE_SPACE_GENERATE if state_space else WHICH_GENERATE
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
text's hash and every setting.

{snippet}

{textwrap.fill(which, 92)}

Made with {_versions()}.
"""
