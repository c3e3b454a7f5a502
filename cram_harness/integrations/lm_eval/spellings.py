"""lm-eval's spellings on cram-eval's command line, where they mean the same: `--output_path`
for `--output-path` (any option, underscores for dashes), space-separated `--tasks a b`,
`--log_samples` (samples are always written), and `--model_args pretrained=...,dtype=...`.
Nothing here imports torch."""

from __future__ import annotations

import math
from collections.abc import Sequence

from cram_harness.errors import CramError

# --model_args keys and the run options they stand for
MODEL_ARGS = {"pretrained": "model", "revision": "revision", "dtype": "dtype",
              "device": "device", "trust_remote_code": "trust_remote_code",
              "batch_size": "batch_size"}


def normalize(args: list[str]) -> list[str]:
    """A `run` command line in cram-eval's own spelling."""
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        if name.startswith("--") and "_" in name:
            arg = name.replace("_", "-") + eq + value
        i += 1
        if arg == "--log-samples":
            continue  # lm-eval's opt-in; cram-eval always writes samples_<task>_<time>.jsonl
        out.append(arg)
        if arg == "--tasks":  # lm-eval also takes `--tasks a b c`
            names = []
            while i < len(args) and not args[i].startswith("-"):
                names.append(args[i])
                i += 1
            if names:
                out.append(",".join(names))
    return out


def is_true(value: object) -> bool:
    """A key=value flag as lm-eval users write it: True, true, 1, yes."""
    return value is True or str(value).lower() in ("true", "1", "yes")


def parse_key_values(text: str | None, option: str,
                     known: Sequence[str] | None = None) -> dict[str, str]:
    """`key=value,key=value` (lm-eval's --model_args, --wandb_args, --hf_hub_log_args); with
    `known`, a key outside it is one line naming the keys cram-eval reads."""
    if not text:
        return {}
    pairs = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise CramError(f"{option} takes key=value pairs separated by commas, got {item!r}")
        pairs[key.strip()] = value.strip()
    unknown = sorted(set(pairs) - set(known)) if known is not None else []
    if unknown:
        raise CramError(f"{option} has no key {unknown[0]!r}: cram-eval reads {', '.join(known)}")
    return pairs


def model_args(models: str | None, text: str | None) -> tuple[str, dict[str, str]]:
    """(model specs, run options) from --model and lm-eval's --model_args: `pretrained=` is
    the model (a Hub id becomes `hf:ID`, with `@revision`), the other keys set the options
    of the same meaning."""
    from cram_harness.models.load import hub_spec

    given = parse_key_values(text, "--model_args", known=list(MODEL_ARGS))
    options = {MODEL_ARGS[k]: v for k, v in given.items() if k not in ("pretrained", "revision")}
    pretrained = given.get("pretrained")
    if pretrained and models not in (None, "hf", "cram"):
        raise CramError(f"--model {models} and --model_args pretrained={pretrained} both name "
                        "a model: give one of them")
    if pretrained:
        models = hub_spec(pretrained, given.get("revision"))
    elif given.get("revision"):
        models = ",".join(hub_spec(m, given["revision"]) for m in (models or "").split(","))
    if not models or models in ("hf", "cram"):
        raise CramError("no model given: pass --model SPEC or --model_args pretrained=SPEC "
                        "(`cram-eval ls models`)")
    return models, options


def limit(value: str | None) -> float | int | None:
    """--limit: a number of texts, or (below 1) a share of each task's, as in lm-eval."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        raise CramError(f"--limit takes a number of texts or a fraction below 1, got {value!r}")\
            from None
    if not math.isfinite(number) or number <= 0 or (number >= 1 and not number.is_integer()):
        raise CramError(f"--limit takes a whole number of texts or a fraction in (0, 1), "
                        f"got {value}")
    return number if number < 1 else int(number)
