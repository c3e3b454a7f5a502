"""The public-domain novels shipped inside cram-harness: natural text without the network."""

from __future__ import annotations

from itertools import zip_longest
from pathlib import Path

from cram_harness.data.base import SourceText, _take
from cram_harness.data.local import LocalFiles

NOVELS = Path(__file__).resolve().parents[1] / "corpus" / "gutenberg"


class BundledNovels(LocalFiles):
    """The public-domain novels shipped inside cram-harness (cram_harness/corpus/gutenberg,
    PROVENANCE.md there says which), cut as the paper cut PG-19: natural text that needs no
    network."""

    def __init__(self, min_words: int = 12000, max_words: int = 25000) -> None:
        super().__init__(str(NOVELS), chunk=True, min_words=min_words, max_words=max_words)
        self.name = "gutenberg"

    def texts(self, limit: int | None = None, seed: int = 0) -> list[SourceText]:
        """The books' chunks taken in turn, one of each book before a second of any, so that a
        small --limit still reads every book."""
        by_book: dict[str, list[SourceText]] = {}
        for text in self._iter(seed):
            by_book.setdefault(text.id.split("#")[0], []).append(text)
        turns = zip_longest(*by_book.values())
        return _take((t for turn in turns for t in turn if t is not None), limit)

    def describe(self) -> dict:
        return {**super().describe(), "kind": "gutenberg", "path": "cram_harness/corpus/gutenberg",
                "provenance": "cram_harness/corpus/gutenberg/PROVENANCE.md"}
