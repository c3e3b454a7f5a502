"""Data sources: the texts to cram, from local files, Hugging Face datasets or random words.

Books follow the paper's preparation: Project Gutenberg boilerplate stripped, the book cut into
sentence-aligned chunks of 12k-25k words, and the second half of each chunk's sentences used as
the text (callers tokenize it and truncate it to L tokens). Heavy libraries (datasets, pandas,
pyarrow, wordfreq) are imported only when a source is read, so the CLI starts fast.
"""

from __future__ import annotations

import glob
import io
import json
import random
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice, zip_longest
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cram_harness.errors import CramError


@dataclass(frozen=True)
class SourceText:
    """One sample: a stable id (for records, caches and resume) and its text."""

    id: str
    text: str


# --- cleaning, sentences, chunks ------------------------------------------------------------

_START = re.compile(
    r"^[^\w\n]*\*+\s*START\s+OF\s+(THE|THIS)\s+PROJECT\s+GUTENBERG"
    r"|^[^\w\n]*\*+\s*END\*?\s*THE\s+SMALL\s+PRINT",
    re.IGNORECASE | re.MULTILINE,
)
_END = re.compile(
    r"^[^\w\n]*END\s+OF\s+(THE\s+|THIS\s+)?PROJECT\s+GUTENBERG", re.IGNORECASE | re.MULTILINE
)


def strip_gutenberg(text: str) -> str:
    """Cut Project Gutenberg's header (up to its START marker), the transcribers' credits and
    everything from the end line or END marker on (the licence), so only the book is crammed.
    Text without markers comes back stripped."""
    start = _START.search(text)
    begin = 0
    if start:
        newline = text.find("\n", start.start())
        begin = len(text) if newline < 0 else newline + 1
    end = _END.search(text, begin)
    body = text[begin : end.start() if end else len(text)].strip()
    if start:
        body = re.sub(r"\A(?i:produced\s+by\b).*?\n[ \t\r]*\n", "", body, flags=re.S).strip()
    return body


_BOUNDARY = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*(?= (?![a-z]))")
_ABBREVIATIONS = frozenset(
    "mr mrs ms messrs mme mlle dr st jr sr capt col gen lt sgt rev prof hon gov vol fig ch"
    " viz cf vs".split()
)


def split_sentences(text: str) -> list[str]:
    """Split after . ! ? (and closing quotes or brackets) followed by a space and not by a
    lowercase word; titles ("Mr.") and initials ("J.") do not end a sentence. Whitespace inside
    a sentence is collapsed to one space. A regex, not nltk, to stay light and offline."""
    flat = " ".join(text.split())
    sentences, start = [], 0
    for match in _BOUNDARY.finditer(flat):
        last = flat[start : match.end()].split()[-1].lstrip("\"'([\u201c\u2018")
        if last.count(".") == 1 and last.endswith(".") and (
            last[:-1].lower() in _ABBREVIATIONS or re.fullmatch(r"[A-HJ-Z]\.", last)
        ):
            continue
        sentences.append(flat[start : match.end()].strip())
        start = match.end()
    sentences.append(flat[start:].strip())
    return [s for s in sentences if s]


def _check_sizes(min_words: int, max_words: int) -> None:
    if not 1 <= min_words <= max_words:
        raise CramError(f"chunk sizes need 1 <= min_words <= max_words: {min_words}, {max_words}")


def chunk_sentences(
    sentences: list[str], min_words: int = 12000, max_words: int = 25000, seed: int = 0
) -> list[list[str]]:
    """The paper's chunks: consecutive sentence-aligned spans, each of a word count drawn
    uniformly in [min_words, max_words]. A chunk closes before the sentence that would take it
    past its drawn size (once it holds min_words), so it never splits a sentence; only a sentence
    longer than max_words - min_words can push a chunk past max_words. A trailing remainder under
    min_words is dropped unless it is the only chunk (a short book gives one chunk)."""
    _check_sizes(min_words, max_words)
    rng = random.Random(seed)
    chunks: list[list[str]] = []
    current: list[str] = []
    count, target = 0, rng.randint(min_words, max_words)
    for sentence in sentences:
        n = len(sentence.split())
        if current and count + n > target and count >= min_words:
            chunks.append(current)
            current, count, target = [], 0, rng.randint(min_words, max_words)
        current.append(sentence)
        count += n
    if current and (count >= min_words or not chunks):
        chunks.append(current)
    return chunks


def second_half(sentences: list[str]) -> str:
    """The paper's text of a chunk: its second half of sentences (the larger half when odd)."""
    return " ".join(sentences[len(sentences) // 2 :])


def _document_texts(
    doc_id: str, text: str, chunk: bool, min_words: int, max_words: int, seed: int
) -> Iterator[SourceText]:
    """A document's samples. Each document draws its chunk sizes from its own seed, so its
    chunks do not depend on the documents before it."""
    if not chunk:
        if text.strip():
            yield SourceText(doc_id, text.strip())
        return
    doc_seed = zlib.crc32(f"{seed}:{doc_id}".encode())
    sep = "." if "#" in doc_id else "#"  # book.txt#3, but rows: file.jsonl#7.3
    chunks = chunk_sentences(split_sentences(text), min_words, max_words, doc_seed)
    for i, sentences in enumerate(chunks):
        yield SourceText(f"{doc_id}{sep}{i}", second_half(sentences))


# --- sources --------------------------------------------------------------------------------


@runtime_checkable
class DataSource(Protocol):
    """What tasks read texts from; `describe()` goes into results so they say what was used."""

    name: str

    def texts(self, limit: int | None, seed: int) -> list[SourceText]: ...

    def describe(self) -> dict: ...


def _take(samples: Iterator[SourceText], limit: int | None) -> list[SourceText]:
    if limit is not None and limit < 0:
        raise CramError(f"limit must be >= 0 or None, got {limit}")
    return list(islice(samples, limit))


def _line(exc: BaseException) -> str:
    """The first line of an error, so a CramError stays one line."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _missing_column(where: str, column: str, columns: list) -> CramError:
    have = ", ".join(map(str, columns)) or "none"
    return CramError(f"{where} has no column {column!r}; its columns are: {have}")


EXTENSIONS = (".txt", ".jsonl", ".csv", ".parquet")


def read_text_file(path: str | Path) -> str:
    """A text file's contents, refusing binary, non-UTF-8 and empty files in one line each."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise CramError(f"cannot read {file}: {exc.strerror}") from exc
    if b"\x00" in data[:65536]:
        raise CramError(f"{file} is a binary file, not text: remove it or point at text files")
    try:
        text = data.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as exc:
        raise CramError(f"{file} is not UTF-8 (bad byte at offset {exc.start}): "
                        "convert it to UTF-8") from exc
    if not text.strip():
        raise CramError(f"{file} is empty or only whitespace: remove it or fill it")
    return text


class LocalFiles:
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

    def texts(self, limit: int | None = None, seed: int = 0) -> list[SourceText]:
        return _take(self._iter(seed), limit)

    def describe(self) -> dict:
        return {"kind": "local", "path": self.path, "column": self.column, "chunk": self.chunk,
                "min_words": self.min_words, "max_words": self.max_words,
                "files": [self._doc_name(f) for f in self.files]}


def _network_errors() -> tuple[type[BaseException], ...]:
    """The exception types that mean the Hub could not be reached (offline mode, no network,
    a repo that is not there or is gated), from the libraries that raise them."""
    kinds: list[type[BaseException]] = [ConnectionError, TimeoutError]
    try:
        from huggingface_hub import errors

        kinds += [errors.OfflineModeIsEnabled, errors.LocalEntryNotFoundError,
                  errors.RepositoryNotFoundError, errors.HfHubHTTPError]
    except ImportError:
        pass
    for module, name in (("requests", "RequestException"), ("httpx", "TransportError"),
                         ("datasets.exceptions", "DatasetNotFoundError")):
        try:
            kinds.append(getattr(__import__(module, fromlist=[name]), name))
        except (ImportError, AttributeError):
            pass
    return tuple(kinds)


def _is_unreachable(exc: BaseException) -> bool:
    """Offline, network or not-found errors, by type: a disk error is not one of them."""
    return isinstance(exc, _network_errors())


class HFDataset:
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
            if _is_unreachable(exc):
                raise CramError(
                    f"could not load Hugging Face dataset {self.repo!r} ({detail}): download it "
                    "where there is network (it is then cached), or point the task at local files "
                    "with `--data-files PATH`"
                ) from exc
            if isinstance(exc, ValueError):  # a wrong config or split name
                raise CramError(f"could not load dataset {self.repo!r}: {detail}") from exc
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

    def texts(self, limit: int | None = None, seed: int = 0) -> list[SourceText]:
        return _take(self._iter(seed), limit)

    def describe(self) -> dict:
        return {"kind": "hf", "repo": self.repo, "config": self.config, "split": self.split,
                "column": self.column, "chunk": self.chunk,
                "take_second_half": self.take_second_half,
                "min_words": self.min_words, "max_words": self.max_words}


NOVELS = Path(__file__).resolve().parent / "corpus" / "gutenberg"


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


SOURCES: dict[str, Callable[..., DataSource]] = {
    "local": LocalFiles,
    "hf": HFDataset,
    "random": RandomWords,
    "gutenberg": BundledNovels,
}
