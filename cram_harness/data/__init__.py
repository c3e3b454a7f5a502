"""Data sources: the texts to cram, from local files, Hugging Face datasets, the novels shipped
with cram-harness or random words. Heavy libraries (datasets, pandas, pyarrow, wordfreq) are
imported only when a source is read, so the CLI starts fast.

    base          SourceText, the DataSource protocol
    text          Gutenberg stripping, sentences, the paper's chunks
    local         LocalFiles         source kind `local`
    hub           HFDataset          source kind `hf`
    novels        BundledNovels      source kind `gutenberg`
    random_words  RandomWords        source kind `random`
"""

from __future__ import annotations

from collections.abc import Callable

from cram_harness.data.base import DataSource, SourceText
from cram_harness.data.hub import HFDataset
from cram_harness.data.local import LocalFiles
from cram_harness.data.novels import NOVELS, BundledNovels
from cram_harness.data.random_words import RandomWords
from cram_harness.data.text import (
    chunk_sentences,
    decode_text,
    read_text_file,
    second_half,
    split_sentences,
    strip_gutenberg,
)

SOURCES: dict[str, Callable[..., DataSource]] = {
    "local": LocalFiles,
    "hf": HFDataset,
    "random": RandomWords,
    "gutenberg": BundledNovels,
}

__all__ = ["SOURCES", "NOVELS", "BundledNovels", "DataSource", "HFDataset", "LocalFiles",
           "RandomWords", "SourceText", "chunk_sentences", "decode_text", "read_text_file",
           "second_half", "split_sentences", "strip_gutenberg"]
