"""One line for a folder that holds no loadable causal LM, or damaged weights, before
transformers fails on it with a traceback."""

from __future__ import annotations

import json
from pathlib import Path

from cram_harness.errors import CramError

WEIGHT_FILES = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.ckpt")
# Encoders that transformers also builds with a language-model head: they attend both ways
# unless configured as decoders, so a "next token" would be read from the text itself.
ENCODERS = ("bert", "roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "electra",
            "ernie", "bert-generation", "data2vec-text", "xmod", "roc_bert", "rembert",
            "megatron-bert", "big_bird", "roformer", "nezha")
# What AutoTokenizer reads from a directory; without any of them it builds no usable one.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json",
                   "vocab.txt", "spiece.model", "sentencepiece.bpe.model")


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
        raise CramError(f"{config} is not valid JSON ({first_line(exc)}): not a model "
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


def check_weights(path: Path, what_to_do: str) -> None:
    """One line naming a safetensors file that is damaged or truncated (a partial download,
    a full disk): its header is read and checked against the file's size, which is cheap."""
    from safetensors import SafetensorError, safe_open

    for file in sorted(path.glob("*.safetensors")):
        try:
            with safe_open(str(file), framework="pt"):
                pass
        except (SafetensorError, OSError) as exc:
            raise CramError(f"{file} is damaged or truncated ({first_line(exc)}): "
                            f"{what_to_do}") from None


def first_line(exc: BaseException) -> str:
    """An exception's message cut to one line, for the one line a user is shown."""
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
