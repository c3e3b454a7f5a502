"""Turning a text into the token sequence that is crammed, and model limits."""

from __future__ import annotations

from typing import Any

from cram_harness.errors import CramError


def adds_bos(tokenizer: Any) -> bool:
    """Whether the tokenizer puts BOS first (Llama 3, Gemma) or not (SmolLM2, GPT-2, Pythia)."""
    bos = tokenizer.bos_token_id
    if bos is None:
        return False
    ids = tokenizer("a").input_ids
    return len(ids) > 0 and ids[0] == bos


def encode_text(tokenizer: Any, text: str, max_tokens: int | None = None) -> list[int]:
    """The crammed sequence: BOS (where the tokenizer adds one) and the text's tokens, cut to
    `max_tokens` in all, as the paper's `tokenizer(text, max_length=L, truncation=True)` did:
    L counts BOS.

    The first token seeds decoding; the rest are predicted. A text with fewer tokens than
    asked is used whole (callers record its real length)."""
    if isinstance(text, bytes | bytearray):  # the same rule as a file's bytes
        from cram_harness.data.text import decode_text

        text = decode_text(bytes(text), "the text given as bytes")
    if not isinstance(text, str):
        raise CramError(f"a text is {type(text).__name__}, not str: give a str or a list of "
                        "str (bytes given as texts are split into numbers: decode them first)")
    if "\x00" in text:
        raise CramError("the text holds NUL characters: it is binary, not text")
    if not text.strip():
        raise CramError("the text is empty or whitespace only: give at least two tokens of text")
    ids = tokenizer(text, add_special_tokens=False).input_ids
    if adds_bos(tokenizer):
        ids = [tokenizer.bos_token_id, *ids]
    if max_tokens is not None:
        ids = ids[:max_tokens]
    if len(ids) < 2:
        raise CramError(
            f"the text {text[:40]!r} has {len(ids)} token(s): at least 2 are needed "
            "(one seeds decoding, the rest are predicted)"
        )
    return ids


def context_length(model: Any) -> int | None:
    """The model's maximum sequence length, where its config says it."""
    cfg = getattr(model.config, "get_text_config", lambda: model.config)()
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(cfg, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def check_fits(model: Any, n_mem: int, max_tokens: int | None) -> None:
    """Fail early, naming the limit, when [mem] + text cannot fit in the context."""
    if n_mem < 1:
        raise CramError(f"the number of [mem] vectors must be at least 1, got {n_mem}")
    if max_tokens is not None and max_tokens < 1:
        raise CramError(f"max_tokens must be at least 1, got {max_tokens}")
    limit = context_length(model)
    if limit is not None and n_mem + 2 > limit:
        raise CramError(
            f"{n_mem} [mem] vector(s) leave no room for a text in the model's context of "
            f"{limit} positions (a text needs at least 2 tokens): use at most {limit - 2}")
    if limit is not None and max_tokens is not None and n_mem + max_tokens > limit:
        raise CramError(
            f"{max_tokens} tokens + {n_mem} [mem] vector(s) do not fit in the model's context "
            f"of {limit} positions: ask for at most {limit - n_mem} tokens"
        )


def check_tokens_fit(model: Any, n_mem: int, token_lists: list[list[int]]) -> None:
    """After encoding, before any model work: a text that, with its [mem] vectors, is longer
    than the context is one line naming both (the embedding lookup would fail deep inside)."""
    limit = context_length(model)
    longest = max((len(t) for t in token_lists), default=0)
    if limit is not None and n_mem + longest > limit:
        which = "the text has" if len(token_lists) == 1 else "the longest text has"
        raise CramError(
            f"{which} {longest} tokens, and with {n_mem} [mem] vector(s) that does not fit in "
            f"the model's context of {limit} positions: cut it to at most {limit - n_mem} "
            "tokens (--max-tokens, or max_tokens=)")
