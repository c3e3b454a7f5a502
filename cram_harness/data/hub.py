"""Texts from a Hugging Face dataset (the paper's PG-19 and fanfics chunks), with one clear
line when the Hub cannot be reached."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cram_harness.data.base import SourceText, StreamedSource, _line, _missing_column
from cram_harness.data.text import (
    _check_sizes,
    _document_texts,
    second_half,
    split_sentences,
    strip_gutenberg,
)
from cram_harness.errors import CramError, is_unreachable


class HFDataset(StreamedSource):
    """Texts from a Hugging Face dataset. chunk=True cuts whole books as the paper did with
    deepmind/pg19; chunk=False takes rows that are chunks already (as in
    yurakuratov/pg19_valid_1k_chunks) and, with take_second_half, keeps the second half of each
    row's sentences, as the paper did."""

    def __init__(self, repo: str, split: str = "test", column: str = "text", chunk: bool = False,
                 config: str | None = None, min_words: int = 12000, max_words: int = 25000,
                 take_second_half: bool = True) -> None:
        _check_sizes(min_words, max_words)
        self.repo, self.split, self.column, self.config = repo, split, column, config
        self.chunk, self.take_second_half = chunk, take_second_half
        self.min_words, self.max_words = min_words, max_words
        self.name = f"hf:{repo}"

    def _load(self) -> Any:
        import datasets

        try:
            return datasets.load_dataset(self.repo, self.config, split=self.split)
        except Exception as exc:
            detail = _line(exc)
            if is_unreachable(exc):
                raise CramError(
                    f"could not load Hugging Face dataset {self.repo!r} ({detail}): download it "
                    "where there is network (it is then cached), or point the task at local files "
                    "with `--data-files PATH`"
                ) from exc
            if isinstance(exc, ValueError):  # a wrong config or split name
                raise CramError(f"could not load dataset {self.repo!r}: {detail}") from exc
            if "scripts are no longer supported" in detail:  # datasets >= 4 runs no code
                raise CramError(f"dataset {self.repo!r} is a loading script, which is never run: "
                                "use a dataset of data files (parquet, json, csv, text), or "
                                "--data-files PATH") from exc
            raise

    def _iter(self, seed: int) -> Iterator[SourceText]:
        dataset = self._load()
        if self.column not in dataset.column_names:
            raise _missing_column(f"dataset {self.repo!r}", self.column, dataset.column_names)
        for row, value in enumerate(dataset[self.column]):
            if not isinstance(value, str) or not value.strip():
                continue
            doc_id = f"{self.repo}#{row}"
            if self.chunk:
                book = strip_gutenberg(value)
                yield from _document_texts(doc_id, book, True, self.min_words, self.max_words, seed)
            elif self.take_second_half:
                yield SourceText(doc_id, second_half(split_sentences(value)))
            else:
                yield SourceText(doc_id, value.strip())

    def describe(self) -> dict:
        return {"kind": "hf", "repo": self.repo, "config": self.config, "split": self.split,
                "column": self.column, "chunk": self.chunk,
                "take_second_half": self.take_second_half,
                "min_words": self.min_words, "max_words": self.max_words}
