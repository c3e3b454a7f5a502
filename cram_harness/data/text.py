"""Texts the paper's way: Project Gutenberg boilerplate stripped, a book cut into sentence-
aligned chunks of 12k-25k words, and the second half of each chunk's sentences used as the
text (callers tokenize it and truncate it to L tokens). A regex, not nltk: light and offline."""

from __future__ import annotations

import random
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

from cram_harness.data.base import SourceText
from cram_harness.errors import CramError

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


def read_text_file(path: str | Path) -> str:
    """A text file's contents, refusing binary, non-UTF-8 and empty files in one line each."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise CramError(f"cannot read {file}: {exc.strerror}") from exc
    return decode_text(data, str(file))


def decode_text(data: bytes, name: str) -> str:
    """Bytes as text (a file's, stdin's, or bytes given to the API), with the same one line
    for each way they are not text: binary (NUL bytes), not UTF-8, empty."""
    if b"\x00" in data[:65536]:
        raise CramError(f"{name} is a binary file (it holds NUL bytes), not text: give UTF-8 text")
    try:
        text = data.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as exc:
        raise CramError(f"{name} is not UTF-8 (bad byte at offset {exc.start}): "
                        "convert it to UTF-8") from exc
    if not text.strip():
        raise CramError(f"{name} is empty or only whitespace: give a text to cram")
    return text
