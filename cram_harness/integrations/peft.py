"""Save and load [mem] vectors as a standard PEFT PROMPT_TUNING adapter plus `cram.json`.

    DIR/adapter_config.json        PEFT's PromptTuningConfig, with the base model's hub id and
                                   revision where known (AutoPeftModelForCausalLM loads it)
    DIR/adapter_model.safetensors  {"prompt_embeddings": (k, d) float32}
    DIR/cram.json                  what decoding needs and how the vectors were made
    DIR/README.md                  a model card: what was crammed, how well, how to decode it

PEFT's own `save_pretrained` of a loaded adapter keeps the first two files only; the whole
directory is what `push_adapter` uploads. Loading reads JSON and safetensors only: never pickle.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from cram_harness import schemas
from cram_harness.atomic import atomic_dir
from cram_harness.engine.decode import cache_argument
from cram_harness.errors import CramError
from cram_harness.models.info import base_fingerprint
from cram_harness.models.tokens import context_length

WEIGHTS_NAME = "adapter_model.safetensors"
CONFIG_NAME = "adapter_config.json"
CRAM_NAME = "cram.json"
CARD_NAME = "README.md"
PROMPT_KEY = "prompt_embeddings"


def quiet_peft_warnings() -> None:
    """Silence two warnings PEFT (0.21) causes at every load and generate of an adapter, which
    no user can act on: it reads a property transformers deprecated, and tells that prompt
    tuning ignores the position ids transformers' generate always passes."""
    warnings.filterwarnings("ignore", r"`is_gradient_checkpointing` is deprecated",
                            FutureWarning)
    warnings.filterwarnings("ignore", r"Position ids are not supported for parameter "
                            r"efficient tuning", UserWarning)


quiet_peft_warnings()  # imported by every adapter export, load and decode


def base_model_source(model: Any) -> tuple[str | None, str | None]:
    """(base_model_name_or_path, revision) for the adapter config: an offline alias's name
    (`adapter_base_spec` resolves it where the adapter is loaded), a GGUF file's path, the
    hub id and revision of an `hf:` spec (the commit the weights came from where the spec
    named none), else the absolute path of the local weights."""
    spec = str(getattr(model, "cram_spec", "") or "")
    local = _local_spec(spec)
    if local:  # not the dequantized cache folder: its name means nothing on another machine
        return local, None
    if spec.startswith("hf:"):
        repo, _, revision = spec[3:].partition("@")
        return repo, revision or getattr(model, "cram_commit", None) or getattr(
            model.config, "_commit_hash", None)
    path = getattr(model, "name_or_path", None)
    if path and Path(path).exists():
        return str(Path(path).resolve()), None
    return path or None, None


def _local_spec(spec: str) -> str | None:
    """An offline alias as itself, a GGUF file as `gguf:<absolute path>`; None otherwise."""
    from cram_harness.models.load import is_model_spec

    if spec.startswith("gguf:") or (spec.endswith(".gguf") and Path(spec).is_file()):
        return f"gguf:{Path(spec.removeprefix('gguf:')).expanduser().resolve()}"
    if spec and is_model_spec(spec) and not Path(spec).expanduser().exists():
        return spec  # no file or directory of that name: an alias
    return None


def adapter_base_spec(path: str | os.PathLike) -> str:
    """The model spec of an adapter's base, resolved here: the alias, hub id (at the recorded
    revision) or GGUF file it was made with, else the local directory its config names. An
    adapter of an older cram-harness named an alias's cache folder: its cram.json still
    holds the alias."""
    path = Path(path)
    config = _read_json(path / CONFIG_NAME)
    info = _read_json(path / CRAM_NAME) if (path / CRAM_NAME).is_file() else {}
    spec = str(info.get("model_spec") or "")
    local = _local_spec(spec)
    if local:
        return local
    base, revision = config.get("base_model_name_or_path"), config.get("revision")
    if spec.startswith("hf:"):
        return spec if "@" in spec or not revision else f"{spec}@{revision}"
    if not base:
        raise CramError(f"{path} names no base model: give the model it was made for")
    if _local_spec(base) or Path(base).is_dir():
        return _local_spec(base) or base
    if Path(base).is_absolute():
        raise CramError(f"{path} was made with the local model {base}, which is not on this "
                        "machine: give the model it was made for")
    return f"hf:{base}" + (f"@{revision}" if revision else "")


def save_adapter(path: str | os.PathLike, memory: torch.Tensor, model: Any, info: dict) -> Path:
    """Write the adapter directory atomically (temp dir, then rename); returns its path."""
    from peft import PromptTuningConfig, TaskType

    from cram_harness.integrations.peft_card import model_card

    memory = memory.detach().float().cpu().contiguous()
    if memory.dim() != 2:
        raise ValueError(f"expected (k, d) vectors, got shape {tuple(memory.shape)}")
    cfg = getattr(model.config, "get_text_config", lambda: model.config)()
    base, revision = base_model_source(model)
    config = PromptTuningConfig(
        task_type=TaskType.CAUSAL_LM,
        num_virtual_tokens=memory.shape[0],
        token_dim=memory.shape[1],
        num_transformer_submodules=1,
        # PEFT insists on a head count even for prompt tuning, which never uses it; a
        # state-space model (Mamba) has none, so it gets 1
        num_attention_heads=getattr(cfg, "num_attention_heads", None) or 1,
        num_layers=getattr(cfg, "num_hidden_layers", None),
        base_model_name_or_path=base,
        revision=revision,
    )
    target = check_adapter_target(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CramError(f"cannot write the adapter to {target}: {exc.strerror} "
                        f"({exc.filename}): choose another directory") from exc
    with atomic_dir(target) as tmp:
        config.save_pretrained(tmp)
        save_file({PROMPT_KEY: memory}, str(tmp / WEIGHTS_NAME))
        full_info = {**info, "base_model": base_fingerprint(model)}
        (tmp / CRAM_NAME).write_text(json.dumps(full_info, indent=2) + "\n")
        state_space = cache_argument(model) == "cache_params"
        (tmp / CARD_NAME).write_text(model_card(full_info, base, revision, tuple(memory.shape),
                                                state_space))
    return target


OURS = frozenset({CONFIG_NAME, WEIGHTS_NAME, CRAM_NAME, CARD_NAME})  # what save_adapter writes


def check_adapter_target(target: str | os.PathLike) -> Path:
    """Where an adapter may be written: a new or empty directory, or a cram adapter that
    save_adapter wrote (its cram.json says so, and it holds nothing else), to replace whole.
    Never a file, nor a directory of other things: another PEFT adapter, a training folder,
    the current directory, which the replacing would delete. Returns the resolved path."""
    target = Path(target)
    resolved = target.resolve()
    if resolved.exists() and not resolved.is_dir():
        raise CramError(f"{target} is a file: give a new directory for the adapter")
    entries = sorted(p.name for p in resolved.iterdir()) if resolved.is_dir() else []
    if not entries:
        return resolved
    if resolved == Path.cwd().resolve():
        raise CramError(f"{target} is the current directory, not an adapter: give a new "
                        "directory for the adapter (e.g. adapters/NAME)")
    if CONFIG_NAME not in entries:
        raise CramError(f"{target} is a directory of other files, not an adapter: give a new "
                        "directory for the adapter (e.g. adapters/NAME), or an adapter "
                        "directory to replace")
    why = None if CRAM_NAME in entries else f"it has no {CRAM_NAME}"
    if why is None:
        try:
            info = json.loads((resolved / CRAM_NAME).read_text(encoding="utf-8"))
            wrong = schemas.problem(info, schemas.CRAM_JSON)
            if not wrong and "base_model" not in info:
                wrong = "key 'base_model' is missing"
        except (OSError, ValueError) as exc:
            wrong = type(exc).__name__
        why = f"its {CRAM_NAME} is not one export wrote ({wrong})" if wrong else None
    others = [name for name in entries if name not in OURS]
    if why is None and others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3
                                        else "")
        why = f"it also holds {shown}"
    if why:
        raise CramError(f"{target} is not a cram adapter that export wrote ({why}), and "
                        "replacing it would delete what it holds: give a new directory for "
                        "the adapter")
    return resolved


def load_adapter(path: str | os.PathLike, model: Any) -> tuple[torch.Tensor, dict]:
    """(vectors (k, d) fp32, cram.json contents) of an adapter made for this model."""
    path = Path(path)
    if not path.is_dir():
        raise CramError(f"adapter directory {path} does not exist")
    weights = path / WEIGHTS_NAME
    if not weights.is_file():
        pickled = [p.name for p in path.glob("*.bin")] + [p.name for p in path.glob("*.pt")]
        what = f"only pickle files ({', '.join(pickled)}), which are never loaded" if pickled else (
            "no weights")
        raise CramError(f"{path} has {what}: an adapter needs {WEIGHTS_NAME}")
    config = _read_json(path / CONFIG_NAME)
    if config.get("peft_type") != "PROMPT_TUNING":
        raise CramError(
            f"{path} is a {config.get('peft_type')} adapter: only PROMPT_TUNING adapters hold "
            "[mem] vectors"
        )
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise CramError(f"{weights} is damaged ({exc}): write the adapter again") from exc
    if PROMPT_KEY not in tensors:
        raise CramError(f"{weights} has no {PROMPT_KEY!r} tensor: not a prompt-tuning adapter")
    memory = tensors[PROMPT_KEY].float()
    d_model = int(model.get_input_embeddings().weight.shape[1])
    if memory.dim() != 2 or memory.shape[1] != d_model:
        raise CramError(
            f"{path} holds vectors of shape {tuple(memory.shape)}, but this model's hidden size "
            f"is {d_model}: load it with the base model it was made for"
        )
    info = _read_json(path / CRAM_NAME) if (path / CRAM_NAME).is_file() else {}
    if info:  # validated against its schema: an edited file says what is wrong with it
        wrong = schemas.problem(info, schemas.CRAM_JSON) or (
            schemas.problem(info["base_model"], schemas.FINGERPRINT) if "base_model" in info
            else None)
        if wrong:
            raise CramError(f"{path / CRAM_NAME} is not a cram-harness adapter's: {wrong} "
                            "(export the adapter again)")
        vocab = base_fingerprint(model)["vocab_size"]
        if any(i >= vocab for i in info.get("seed_token_ids", [])):
            raise CramError(f"{path / CRAM_NAME}: seed token {max(info['seed_token_ids'])} is "
                            f"outside this model's vocabulary of {vocab}: not its adapter")
    made_for = info.get("base_model")
    if made_for and made_for != base_fingerprint(model):
        raise CramError(
            f"{path} was made for another base model ({made_for.get('model_type')}, "
            f"spec {info.get('model_spec')!r}): load it with that model"
        )
    limit, length = context_length(model), info.get("num_tokens", 2)
    if limit is not None and memory.shape[0] + length > limit:
        raise CramError(f"{path} holds {memory.shape[0]} vector(s) and a text of {length} "
                        f"tokens, which do not fit in this model's context of {limit} "
                        "positions: decode it with the model it was made for")
    return memory, info


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise CramError(f"{path} is missing: not a PEFT adapter directory") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CramError(f"{path} is not valid JSON ({exc}): write the adapter again") from exc
    if not isinstance(data, dict):
        raise CramError(f"{path} does not hold a JSON object")
    return data


def push_adapter(path: str | os.PathLike, repo_id: str, *, private: bool = False,
                 token: str | None = None) -> str:
    """Upload an adapter directory (cram.json and the card included) to a Hub model repo,
    creating it if needed; returns the repo's URL. PEFT's `push_to_hub` would upload its own
    save, which drops cram.json."""
    from huggingface_hub import HfApi

    from cram_harness.errors import is_unreachable

    path = Path(path)
    if not (path / CONFIG_NAME).is_file():
        raise CramError(f"{path} is not an adapter directory (no {CONFIG_NAME}): export one first")
    api = HfApi(token=token)
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(repo_id=repo_id, folder_path=str(path),
                          commit_message="cram-harness adapter")
    except Exception as exc:
        if is_unreachable(exc) or isinstance(exc, ValueError):  # a malformed repo id too
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise CramError(f"could not push {path} to the Hub repo {repo_id!r} ({first}): "
                            "check the network and `hf auth login`; the adapter on disk is "
                            "unchanged") from exc
        raise
    return str(url)
