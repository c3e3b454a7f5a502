"""The paper's random baseline: words drawn uniformly from the most frequent English words."""

from __future__ import annotations

import random
from functools import lru_cache

from cram_harness.data.base import SourceText
from cram_harness.errors import CramError

# Texts are built whole before any model loads: a --limit of billions must not fill memory.
MAX_WORDS = 20_000_000


@lru_cache(maxsize=4)
def _top_words(vocab_size: int) -> tuple[str, ...]:
    import wordfreq

    return tuple(wordfreq.top_n_list("en", vocab_size))


class RandomWords:
    """Texts of words drawn uniformly from the most frequent English words: the paper's random
    baseline (it used GloVe's list; wordfreq's is the offline equivalent)."""

    def __init__(self, num_words: int = 5000, vocab_size: int = 100000) -> None:
        if num_words < 1 or vocab_size < 1:
            raise CramError(f"num_words and vocab_size must be >= 1, got {num_words}, {vocab_size}")
        self.num_words, self.vocab_size = num_words, vocab_size
        self.name = "random"

    def texts(self, limit: int | None = None, seed: int = 0) -> list[SourceText]:
        count = 100 if limit is None else limit
        if count < 0:
            raise CramError(f"limit must be >= 0 or None, got {limit}")
        if count * self.num_words > MAX_WORDS:  # every text is built before the model loads
            raise CramError(
                f"--limit {count} asks for {count} random texts of {self.num_words} words, "
                f"more than the {MAX_WORDS:,} words that are built in memory before a run: "
                f"give --limit {max(1, MAX_WORDS // self.num_words)} or less")
        words = _top_words(self.vocab_size)
        samples = []
        for i in range(count):  # one generator per sample: sample i is the same whatever the limit
            drawn = random.Random(f"{seed}:{i}").choices(words, k=self.num_words)
            samples.append(SourceText(f"random#{i}", " ".join(drawn)))
        return samples

    def describe(self) -> dict:
        from importlib.metadata import version

        return {"kind": "random", "num_words": self.num_words, "vocab_size": self.vocab_size,
                "word_list": f"wordfreq {version('wordfreq')} top_n_list('en')"}
