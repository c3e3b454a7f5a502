"""Texts from local files: a directory, a file or a glob of .txt books and .jsonl, .csv or
.parquet tables (pandas and pyarrow are imported only when a table is read)."""

from __future__ import annotations

import glob
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cram_harness.data.base import EXTENSIONS, SourceText, StreamedSource, _line, _missing_column
from cram_harness.data.text import _check_sizes, _document_texts, read_text_file, strip_gutenberg
from cram_harness.errors import CramError


class LocalFiles(StreamedSource):
    """Texts from a directory, a file or a glob of .txt files (one book each) and .jsonl, .csv or
    .parquet files (one document per row, from `column`)."""

    def __init__(self, path: str, column: str = "text", chunk: bool = True,
                 min_words: int = 12000, max_words: int = 25000) -> None:
        _check_sizes(min_words, max_words)
        self.path, self.column, self.chunk = str(path), column, chunk
        self.min_words, self.max_words = min_words, max_words
        self.name = f"local:{self.path}"
        self.root, self.files = self._resolve(Path(self.path).expanduser())

    def _resolve(self, path: Path) -> tuple[Path, list[Path]]:
        if path.is_dir():
            root, files = path, sorted(
                p for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in EXTENSIONS and not p.name.startswith(".")
            )
        elif path.is_file():
            root, files = path.parent, [path]
        else:
            files = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
            files = [p for p in files if p.is_file()]
            root = Path(re.split(r"[*?\[]", str(path), maxsplit=1)[0] or ".")
            root = root if root.is_dir() else root.parent
        if not files:
            raise CramError(f"data path {self.path!r} matches no {'/'.join(EXTENSIONS)} file: "
                            "give an existing file, directory or glob")
        for file in files:
            if file.suffix.lower() not in EXTENSIONS:
                raise CramError(f"{file}: unsupported extension {file.suffix!r}; "
                                f"use {', '.join(EXTENSIONS)}")
        return root, files

    def _doc_name(self, file: Path) -> str:
        inside = file.is_relative_to(self.root)
        return file.relative_to(self.root).as_posix() if inside else file.as_posix()

    def _read_text(self, file: Path) -> str:
        return read_text_file(file)

    def _rows(self, file: Path) -> Iterator[tuple[int, Any]]:
        """(row number, value of the column) of each row of a table file."""
        if file.suffix.lower() == ".parquet":
            if file.stat().st_size == 0:
                raise CramError(f"{file} is empty: remove it or fill it")
            import pyarrow.parquet as pq

            try:
                table = pq.read_table(file)
            except Exception as exc:  # pyarrow raises several kinds for a broken file
                raise CramError(f"{file} is not a readable parquet file: {_line(exc)}") from exc
            if self.column not in table.column_names:
                raise _missing_column(str(file), self.column, table.column_names)
            yield from enumerate(table.column(self.column).to_pylist())
            return
        text = self._read_text(file)
        if file.suffix.lower() == ".csv":
            import pandas as pd

            try:
                frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
            except Exception as exc:  # pandas' ParserError and friends
                raise CramError(f"{file} is not a readable CSV file: {_line(exc)}") from exc
            if self.column not in frame.columns:
                raise _missing_column(str(file), self.column, list(frame.columns))
            yield from enumerate(frame[self.column].tolist())
            return
        for row, line in enumerate(line for line in text.splitlines() if line.strip()):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CramError(f"{file} row {row} is not valid JSON: {_line(exc)}") from exc
            if not isinstance(record, dict):
                raise CramError(f"{file} row {row} is not a JSON object with a {self.column!r} key")
            if self.column not in record:
                raise _missing_column(f"{file} row {row}", self.column, list(record))
            yield row, record[self.column]

    def _iter(self, seed: int) -> Iterator[SourceText]:
        opts = (self.chunk, self.min_words, self.max_words, seed)
        for file in self.files:
            name = self._doc_name(file)
            if file.suffix.lower() == ".txt":
                book = strip_gutenberg(self._read_text(file))
                if not book:
                    raise CramError(f"{file} holds only Project Gutenberg boilerplate, no text")
                yield from _document_texts(name, book, *opts)
                continue
            for row, value in self._rows(file):
                if value is not None and not isinstance(value, str):
                    raise CramError(f"{file} row {row}: {self.column!r} is not text: {value!r:.40}")
                if value:
                    doc = strip_gutenberg(value) if self.chunk else value
                    yield from _document_texts(f"{name}#{row}", doc, *opts)

    def describe(self) -> dict:
        return {"kind": "local", "path": self.path, "column": self.column, "chunk": self.chunk,
                "min_words": self.min_words, "max_words": self.max_words,
                "files": [self._doc_name(f) for f in self.files]}
