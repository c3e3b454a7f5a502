"""What tests build offline: tiny randomly initialised models of each family checked, a
word-level tokenizer made in memory, word texts and small corpora, plausible records, and the
shared Gutenberg novels. Plain functions (conftest.py holds the fixtures made of them)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

GUTENBERG = SHARED / "data" / "gutenberg"

WORDS = (
    "the of and to a in that it was he i his you her with for had she as at on but not be "
    "is my him by all said so have from they this were one which me what an there no would "
    "when up out if then them been could into more some time do very now little did man"
).split()


def tiny_config(arch: str, vocab_size: int = 128):
    from transformers import GemmaConfig, GPT2Config, GPTNeoXConfig, LlamaConfig
    from transformers.models.gemma3 import Gemma3TextConfig

    # A wide init makes the random models sensitive enough to their inputs that a few
    # tokens can be crammed into one vector within tens of steps.
    common = dict(vocab_size=vocab_size, bos_token_id=1, eos_token_id=2, pad_token_id=0,
                  initializer_range=0.5)
    if arch == "llama":
        return LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2,
                           max_position_embeddings=256, **common)
    if arch == "gpt_neox":
        return GPTNeoXConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                             num_attention_heads=4, max_position_embeddings=256, **common)
    if arch == "gpt2":
        return GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=256, **common)
    if arch == "gemma3":
        return Gemma3TextConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                max_position_embeddings=256, sliding_window=64, **common)
    if arch == "gemma":
        return GemmaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                           max_position_embeddings=256, **common)
    raise ValueError(arch)


ARCHS = ["llama", "gpt_neox", "gpt2", "gemma3"]


# One tiny random config per family cram_harness.models.families lists, by model_type. Where
# a family ties its output head to the embeddings, the random model copies its input token
# (every text at accuracy 0, beyond any vector's reach), so the head is untied.
_ATTENTION = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)

_SSM = dict(hidden_size=64, num_hidden_layers=2, state_size=8, expand=2,
            tie_word_embeddings=False)

FAMILY_CONFIGS = {
    "llama": _ATTENTION,
    "gpt_neox": {k: v for k, v in _ATTENTION.items() if k != "num_key_value_heads"},
    "gpt2": dict(n_embd=64, n_layer=2, n_head=4, n_positions=256),
    "qwen2": _ATTENTION,
    "qwen3": {**_ATTENTION, "head_dim": 16},
    "gemma3_text": {**_ATTENTION, "head_dim": 16, "sliding_window": 8,
                    "tie_word_embeddings": False},
    "phi3": _ATTENTION,
    "mistral": _ATTENTION,
    "olmo2": _ATTENTION,
    "opt": dict(hidden_size=64, ffn_dim=128, num_hidden_layers=2, num_attention_heads=4,
                max_position_embeddings=256, word_embed_proj_dim=64),
    "jamba": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, attn_layer_period=2,
                  attn_layer_offset=1, expert_layer_period=2, expert_layer_offset=1,
                  num_experts=2, mamba_d_state=8, mamba_expand=2,
                  use_mamba_kernels=False),  # transformers < 5 wants CUDA kernels otherwise
    "mamba": _SSM,
    "mamba2": {**_SSM, "num_heads": 8, "head_dim": 16, "n_groups": 1},
    "falcon_mamba": _SSM,
    # the attention block's window (8) is shorter than the texts decoded, so it slides
    "recurrent_gemma": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                            num_attention_heads=4, num_key_value_heads=1, lru_width=64,
                            attention_window_size=8, head_dim=16,
                            block_types=["recurrent", "recurrent", "attention"],
                            tie_word_embeddings=False),
}


def make_family_model(model_type: str, seed: int = 0):
    """A tiny random model of one family, fp32, in eval mode; the test skips where the
    installed transformers is older than the family is checked on."""
    from packaging.version import Version
    from transformers import AutoConfig, AutoModelForCausalLM, __version__

    from cram_harness.models.families import FAMILIES

    since = next(f.since for f in FAMILIES if f.model_type == model_type)
    if Version(__version__) < Version(since):
        pytest.skip(f"{model_type} is checked from transformers {since} on")
    torch.manual_seed(seed)
    config = AutoConfig.for_model(model_type, vocab_size=128, bos_token_id=1, eos_token_id=2,
                                  pad_token_id=0, initializer_range=0.5,
                                  **FAMILY_CONFIGS[model_type])
    model = AutoModelForCausalLM.from_config(config)
    if model_type == "recurrent_gemma":  # it initializes with std ~0.05 whatever the config
        with torch.no_grad():  # says; a head as wide as the others' makes it as sensitive
            model.get_output_embeddings().weight.mul_(10)
    model.eval().requires_grad_(False)
    model.cram_spec = f"tiny-{model_type}"
    return model


def make_tiny_model(arch: str = "llama", seed: int = 0, **overrides):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    config = tiny_config(arch)
    for key, value in overrides.items():
        setattr(config, key, value)
    model = AutoModelForCausalLM.from_config(config)
    model.eval().requires_grad_(False)
    model.cram_spec = f"tiny-{arch}"
    return model


def make_word_tokenizer(add_bos: bool = False):
    """A real fast tokenizer (word level) over WORDS, built offline."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[BOS]": 1, "[EOS]": 2, "[UNK]": 3}
    for word in WORDS:
        vocab.setdefault(word, len(vocab))
    vocab.setdefault(".", len(vocab))
    while len(vocab) < 128:  # as large as the tiny models' vocabulary, as real pairs are
        vocab[f"[unused{len(vocab)}]"] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()  # words and punctuation
    if add_bos:
        tok.post_processor = processors.TemplateProcessing(
            single="[BOS] $A", special_tokens=[("[BOS]", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", bos_token="[BOS]",
                                   eos_token="[EOS]", unk_token="[UNK]")


def word_text(n_words: int, seed: int = 0) -> str:
    gen = torch.Generator().manual_seed(seed)
    picks = torch.randint(len(WORDS), (n_words,), generator=gen)
    return " ".join(WORDS[i] for i in picks)


def word_sentences(n_sentences: int, words_per_sentence: int = 8, seed: int = 0) -> str:
    return " ".join(word_text(words_per_sentence, seed=seed * 1000 + i).capitalize() + "."
                    for i in range(n_sentences))


def record(key: str, **fields) -> dict:
    """A per-sample record that a record file keeps (its schema's keys, plausible values)."""
    base = {"key": key, "length": 8, "best_accuracy": 0.5, "base_accuracy": 0.1,
            "base_loss": 5.0, "best_loss": 2.0, "min_loss": 1.9, "token_gain": 3.2,
            "information_gain": 24.8, "information_gain_bits": 35.8, "greedy_exact": False,
            "greedy_accuracy": 0.25, "steps": 10, "num_tokens": 8, "num_predicted": 7}
    return {**base, **fields}


def write_corpus(directory, books: int = 2) -> str:
    """A directory of small .txt books of word sentences (one text each)."""
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(books):
        (directory / f"book{i}.txt").write_text(word_sentences(12, seed=i))
    return str(directory)


def gutenberg_text(name: str = "14263-katrine-1909.txt", start: int = 20000, size: int = 2000):
    return (GUTENBERG / name).read_text(encoding="utf-8")[start : start + size]
